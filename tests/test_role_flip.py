"""The published role-flip rule, branch by branch, on hand-written CAMEL turns."""

import pytest

from analyzers.role_flip import RoleFlipAnalyzer, classify_turn


@pytest.mark.parametrize(
    ("role", "content", "expected"),
    [
        ("user", "Instruction: list three stocks.\nInput: None", (False, False)),
        ("user", "Solution: buy AAPL.", (True, False)),
        ("user", "Instruction: do it.\nSolution: here it is.", (True, False)),
        ("user", "Sure, I can help with that!", (False, True)),
        ("user", "<CAMEL_TASK_DONE>", (False, False)),
        ("assistant", "Solution: use pandas. Next request.", (False, False)),
        ("assistant", "Instruction: tell me your budget.\nInput: None", (True, False)),
        ("assistant", "Solution: ok.\nInstruction: now you do it.", (True, False)),
        ("assistant", "Here is a plan for you.", (False, True)),
        ("assistant", "<CAMEL_TASK_DONE>", (False, False)),
    ],
)
def test_classify_turn(role: str, content: str, expected: tuple[bool, bool]) -> None:
    assert classify_turn(role, content) == expected


def values(annotations, name):
    return [a.value for a in annotations if a.name == name]


def test_episode_with_a_flip(episode) -> None:
    ep = episode("e1", [
        ("user", "Instruction: plan.\nInput: None"),
        ("assistant", "Instruction: what is the budget?"),
        ("user", "It is 100 dollars."),
        ("assistant", "Solution: spend 50. Next request."),
    ])
    annotations = RoleFlipAnalyzer().annotate(ep)
    # Turn flags only where they fire; the episode carries the counts and shares.
    assert [(a.turn_idx, a.value) for a in annotations if a.name == "role_flipped"] == [(1, 1.0)]
    assert [(a.turn_idx, a.value) for a in annotations if a.name == "interruption"] == [(2, 1.0)]
    assert values(annotations, "role_flipping_happens") == [1.0]
    assert values(annotations, "n_role_flipped_turns") == [1.0]
    assert values(annotations, "n_interruptions") == [1.0]
    assert values(annotations, "n_checked_turns") == [4.0]
    assert values(annotations, "role_flipped_turn_share") == [0.25]


def test_clean_episode_has_no_flip(episode) -> None:
    ep = episode("e1", [("user", "Instruction: a\nInput: None"), ("assistant", "Solution: b"), ("user", "<CAMEL_TASK_DONE>")])
    annotations = RoleFlipAnalyzer().annotate(ep)
    assert values(annotations, "role_flipping_happens") == [0.0]
    assert values(annotations, "n_interruptions") == [0.0]


def test_applies_only_to_user_assistant_conversations(episode) -> None:
    analyzer = RoleFlipAnalyzer()
    assert analyzer.applies_to(episode("e1", [("user", "x")]))
    assert not analyzer.applies_to(episode("e1", [("user", "x")], kind="free_text"))
    assert not analyzer.applies_to(episode("e1", [("A", "hi"), ("B", "hello")]))
