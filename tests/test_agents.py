"""Each agent sees the conversation from its own side."""

from agents.camel import TASK_DONE, camel_pair
from sim.records import Turn


def test_camel_pair_prompts_name_roles_and_task() -> None:
    user, assistant = camel_pair("Python Programmer", "Stock Trader", "build a bot")
    assert user.role == "user" and assistant.role == "assistant"
    assert "Never forget you are a Stock Trader and I am a Python Programmer" in user.system_prompt
    assert "Here is the task: build a bot." in assistant.system_prompt
    assert TASK_DONE in user.system_prompt


def test_views_swap_sides() -> None:
    user, assistant = camel_pair("A", "U", "task")
    transcript = [
        Turn(idx=0, speaker="U", role="user", content="Instruction: one\nInput: None"),
        Turn(idx=1, speaker="A", role="assistant", content="Solution: one"),
    ]
    user_view = user.view(transcript)
    assert [m.role for m in user_view] == ["system", "user", "assistant", "user"]
    assert user_view[1].content == user.opening
    assert user_view[3].content == "Solution: one"
    assistant_view = assistant.view(transcript)
    assert [m.role for m in assistant_view] == ["system", "user", "assistant"]
    assert assistant_view[1].content.startswith("Instruction: one")


def test_consecutive_partner_turns_merge() -> None:
    _, assistant = camel_pair("A", "U", "task")
    transcript = [
        Turn(idx=0, speaker="U", role="user", content="first"),
        Turn(idx=1, speaker="X", role="user", content="second"),
    ]
    view = assistant.view(transcript)
    assert [m.role for m in view] == ["system", "user"]
    assert view[1].content == "first\n\nsecond"
