"""The scripted backend, the stand-in for a model in the fast tests: its answers, cuts, counts and cache identity,
and a role-play that its script ends."""

import asyncio
from pathlib import Path

from omegaconf import OmegaConf

from helpers import scripted_args
from sim.backends.base import backends, build_backend
from sim.backends.scripted import ScriptedBackend, tokens
from sim.camel import TASK_DONE
from sim.compose import compose_config
from sim.messages import ChatMessage, SamplingParams

SYSTEM = ChatMessage("system", "You are a planner.")


def answer(backend: ScriptedBackend, messages: list[ChatMessage], **params) -> tuple[str, str, int, int]:
    """Text, finish reason and the prompt and completion token counts of one completion."""
    completion = asyncio.run(backend.complete(messages, SamplingParams(**params)))
    return completion.text, completion.finish_reason, completion.prompt_tokens, completion.completion_tokens


def test_each_agent_gets_the_replies_in_order_then_from_the_first_again() -> None:
    backend = backends.create("scripted", replies=["First.", "Second one."])
    conversation = [SYSTEM, ChatMessage("user", "Go on.")]
    said = []
    for _ in range(3):
        text = answer(backend, conversation)[0]
        said.append(text)
        conversation += [ChatMessage("assistant", text), ChatMessage("user", "Go on.")]
    assert said == ["First.", "Second one.", "First."]
    # Another conversation starts from the first reply, whatever was asked before.
    assert answer(backend, [SYSTEM, ChatMessage("user", "Hello there.")])[0] == "First."


def test_without_replies_the_last_message_is_echoed_with_a_token_a_word() -> None:
    text, finish, prompt, completion = answer(backends.create("scripted"), [SYSTEM, ChatMessage("user", "Say it  back, please.")])
    assert (text, finish) == ("Say it  back, please.", "stop")
    assert (prompt, completion) == (4 + 4, 4)


def test_a_reply_longer_than_max_tokens_is_cut_there() -> None:
    backend = backends.create("scripted", replies=["one two three four five"])
    assert answer(backend, [SYSTEM], max_tokens=3)[:2] == ("one two three ", "length")
    assert answer(backend, [SYSTEM], max_tokens=5)[:2] == ("one two three four five", "stop")


def test_log_probabilities_only_when_asked_and_their_tokens_make_the_text() -> None:
    backend = backends.create("scripted", replies=["Label: 2 (positive)"])
    asked = asyncio.run(backend.complete([SYSTEM], SamplingParams(logprobs=True)))
    assert "".join(token for token, _ in asked.token_logprobs) == asked.text
    assert [token for token, _ in asked.token_logprobs] == ["Label: ", "2 ", "(positive)"] and asked.logprob == 0.0
    assert asyncio.run(backend.complete([SYSTEM], SamplingParams())).token_logprobs is None


def test_tokens_keep_every_character() -> None:
    for text in ("", " lead", "trail ", "a\n\nb  c", "one"):
        assert "".join(tokens(text)) == text


def test_another_script_is_another_cache_identity() -> None:
    messages, params = [SYSTEM], SamplingParams()
    hashes = {backends.create("scripted", replies=replies).request_hash(messages, params) for replies in (["a"], ["b"], [], ["a", "b"])}
    assert len(hashes) == 4
    same = [backends.create("scripted", replies=["a"]).request_hash(messages, params) for _ in range(2)]
    assert same[0] == same[1]


def test_the_preset_composes_with_the_schemas_defaults() -> None:
    node = compose_config(["backend=scripted", "backend.replies=[Hi.,'Bye, then.']"]).backend
    assert OmegaConf.to_container(node)["replies"] == ["Hi.", "Bye, then."]
    backend = build_backend(node, "backend")
    assert isinstance(backend, ScriptedBackend) and (backend.model, backend.replies) == ("scripted", ["Hi.", "Bye, then."])
    assert build_backend(compose_config(["backend=scripted"]).backend, "backend").replies == []


def test_a_role_play_ends_when_the_scripted_user_says_the_task_is_done(generate, db_rows, tmp_path: Path) -> None:
    replies = ("Instruction: Name a fruit. Input: None", TASK_DONE)
    report = generate(*scripted_args(*replies, model="script-1"), "scenario.n_episodes=2", "scenario.max_turns=10",
                      "runner.analyze=[role_flip]", "run.id=s")
    assert report.caveat.startswith("backend=scripted answers from a fixed script")
    db = tmp_path / "sim.db"
    assert db_rows(db, "SELECT backend, model, status FROM runs") == [("scripted", "script-1", "done")]
    assert db_rows(db, "SELECT termination_reason, n_turns FROM episodes") == [("task_done", 3)] * 2
    turns = db_rows(db, "SELECT role, content, completion_tokens, finish_reason FROM turns WHERE episode_id = 's-e0000' ORDER BY idx")
    # The user's first and second replies, the assistant's first between them.
    assert [(role, content) for role, content, _, _ in turns] == [("user", replies[0]), ("assistant", replies[0]), ("user", replies[1])]
    assert [(tokens_, finish) for _, _, tokens_, finish in turns] == [(6, "stop"), (6, "stop"), (1, "stop")]
    # The assistant's "Instruction:" is a role flip, found in the scripted data as in a model's.
    flags = db_rows(db, "SELECT turn_idx FROM annotations WHERE name = 'role_flipped' AND value = 1 AND episode_id = 's-e0000'")
    assert flags == [(1,)]
    assert "model: script-1" in db_rows(db, "SELECT config_yaml FROM runs")[0][0]
