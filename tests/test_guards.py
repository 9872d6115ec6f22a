"""Live guards on role-play through a real llama.cpp server; the fault proxy puts CAMEL's `Instruction:` marker in
front of chosen real answers, so that the assistant's turn 1 is a role flip exactly where the test wants one."""

import json
from pathlib import Path

import pytest

from helpers import db_rows as rows, openai_args, run_sim
from fault_proxy import FORWARD, INSTRUCTION_MARKER, FaultProxy

FLIP = INSTRUCTION_MARKER
ROLEPLAY = ["scenario.n_episodes=1", "scenario.max_turns=4", "scenario.max_tokens=16", "runner.progress=false", "runner.analyze=[]"]


def guarded_run(tmp_path: Path, server: str, script: tuple[str, ...], guard: str) -> tuple[Path, tuple, list]:
    """Run one guarded episode behind the proxy; its episode row and its guard annotations."""
    db = tmp_path / "guarded.db"
    with FaultProxy(server, script=script) as proxy:
        result = run_sim(
            ["run", *openai_args(proxy.base_url), *ROLEPLAY, f"store.path={db}", f"scenario.guards=[{guard}]"], tmp_path
        )
    assert result.returncode == 0, result.stderr
    (episode,) = rows(db, "SELECT status, termination_reason, n_turns FROM episodes")
    actions = rows(db, "SELECT name, turn_idx, detail_json FROM annotations WHERE analyzer = 'guard' ORDER BY id")
    return db, episode, [(name, idx, json.loads(detail)) for name, idx, detail in actions]


def test_stop_ends_the_episode_after_the_flipped_turn(tmp_path: Path, llama_server: str) -> None:
    db, episode, actions = guarded_run(tmp_path, llama_server, (FORWARD, FLIP), "{analyzer: role_flip, action: stop}")
    assert episode == ("done", "guard_stop: role_flip (role_flipped) at turn 1", 2)
    assert actions == [("guard_stop", 1, {"analyzer": "role_flip", "reason": "role_flipped", "tries": 1})]
    assert rows(db, "SELECT content LIKE 'Instruction: %' FROM turns WHERE idx = 1") == [(1,)]


def test_flag_marks_the_turn_and_lets_the_episode_run_on(tmp_path: Path, llama_server: str) -> None:
    _, episode, actions = guarded_run(tmp_path, llama_server, (FORWARD, FLIP), "{analyzer: role_flip, action: flag}")
    assert episode[2] == 4 and episode[1].endswith("(guards: 1 guard_flag)")
    assert [(name, idx) for name, idx, _ in actions] == [("guard_flag", 1)]


@pytest.mark.parametrize(("script", "max_tries", "stored_flip"), [((FORWARD, FLIP, FORWARD), 3, False), ((FORWARD, FLIP, FLIP), 2, True)])
def test_regenerate_replaces_a_flipped_turn_up_to_max_tries(tmp_path: Path, llama_server: str, script, max_tries, stored_flip) -> None:
    guard = f"{{analyzer: role_flip, action: regenerate, max_tries: {max_tries}}}"
    db, episode, actions = guarded_run(tmp_path, llama_server, script, guard)
    # Only turn 1 is scripted; a later real turn may copy a stored "Instruction:" and be regenerated too.
    ((name, idx, detail),) = [action for action in actions if action[1] == 1]
    assert (name, idx, detail["tries"]) == ("guard_regenerate", 1, 2)
    assert detail["reason"] == ("role_flipped" if stored_flip else "passed")
    assert rows(db, "SELECT content LIKE 'Instruction: %' FROM turns WHERE idx = 1") == [(int(stored_flip),)]
    assert episode[2] == 4 and episode[1].endswith(f"(guards: {len(actions)} guard_regenerate)")
