"""The embedded backend on the real bundled SmolLM2 model."""

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from sim.backends.base import backends
from sim.backends.embedded import BUNDLED_CAVEAT, EmbeddedBackend, bundled_model_path
from sim.errors import SimError
from sim.messages import ChatMessage, SamplingParams

MESSAGES = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "Name a fruit.")]


@pytest.fixture(scope="module")
def backend():
    backend = backends.create("embedded", n_ctx=1024)
    yield backend
    asyncio.run(backend.aclose())


def complete(backend: EmbeddedBackend, seed: int, temperature: float = 0.9):
    params = SamplingParams(temperature=temperature, top_p=0.95, max_tokens=24, seed=seed)
    return asyncio.run(backend.complete(MESSAGES, params))


def test_bundled_model_ships_in_the_wheel() -> None:
    path = bundled_model_path()
    assert path.is_file() and path.suffix == ".gguf"
    with path.open("rb") as handle:
        assert handle.read(4) == b"GGUF"


@pytest.mark.slow
def test_completion_has_text_and_accounting(backend: EmbeddedBackend) -> None:
    completion = complete(backend, seed=1)
    assert completion.text.strip()
    assert completion.finish_reason in ("stop", "length")
    assert completion.prompt_tokens and completion.prompt_tokens > len(MESSAGES)
    assert 0 < completion.completion_tokens <= 24
    assert completion.latency_ms > 0
    assert backend.model == "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.mark.slow
def test_same_seed_same_text_other_seeds_vary(backend: EmbeddedBackend) -> None:
    first = complete(backend, seed=7).text
    assert complete(backend, seed=7).text == first
    others = {complete(backend, seed=seed, temperature=1.5).text for seed in range(8, 14)}
    assert len(others) > 1


@pytest.mark.slow
def test_request_hash_depends_on_every_input(backend: EmbeddedBackend) -> None:
    params = SamplingParams(seed=1)
    base = backend.request_hash(MESSAGES, params)
    assert backend.request_hash(MESSAGES, params) == base
    assert backend.request_hash(MESSAGES, SamplingParams(seed=2)) != base
    assert backend.request_hash(MESSAGES[:1], params) != base
    assert backend.request_hash(MESSAGES, params, sample_index=1) != base


def test_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="no such GGUF file"):
        backends.create("embedded", model_path=str(tmp_path / "nope.gguf"))


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a model")
    with pytest.raises(SimError, match="cannot load"):
        backends.create("embedded", model_path=str(fake))


@pytest.mark.slow
def test_logprobs_asked_of_a_model_opened_without_logits_all_are_given() -> None:
    backend = backends.create("embedded", n_ctx=1024)
    try:
        params = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=16, seed=2)
        plain = asyncio.run(backend.complete(MESSAGES, params))
        asked = asyncio.run(backend.complete(MESSAGES, replace(params, logprobs=True)))
    finally:
        asyncio.run(backend.aclose())
    assert plain.token_logprobs is None and plain.logprob is None
    tokens = asked.token_logprobs
    assert tokens and len(tokens) == asked.completion_tokens and all(logprob <= 0 for _, logprob in tokens)
    assert "".join(token for token, _ in tokens) == asked.text
    assert asked.logprob == pytest.approx(sum(logprob for _, logprob in tokens))
    # The model opened again with logits for every position is the same model: same seed, same answer.
    assert asked.text == plain.text


def test_a_negative_state_cache_size_is_a_clear_error() -> None:
    with pytest.raises(SimError) as refused:
        backends.create("embedded", state_cache_mb=-1)
    assert str(refused.value) == "backend.state_cache_mb must not be negative, got -1"


CHEF = [ChatMessage("system", "You are a chef who answers in detail."), ChatMessage("user", "How do I bake bread?")]
PIRATE = [ChatMessage("system", "You are a pirate captain."), ChatMessage("user", "Tell me about your ship.")]


def interleaved(backend: EmbeddedBackend, params: SamplingParams, turns: int = 2) -> list[tuple[str, int, int]]:
    """Two conversations taking turns, as a run's episodes do: each answer's text, prompt tokens sent and prompt
    tokens llama.cpp evaluated for it."""
    conversations = [list(CHEF), list(PIRATE)]
    answers = []
    for _ in range(turns):
        for messages in conversations:
            before = backend.prompt_tokens_evaluated
            completion = asyncio.run(backend.complete(messages, params))
            answers.append((completion.text, completion.prompt_tokens, backend.prompt_tokens_evaluated - before))
            messages += [ChatMessage("assistant", completion.text), ChatMessage("user", "Go on, tell me more.")]
    return answers


@pytest.fixture(scope="module")
def cached_and_uncached():
    pair = backends.create("embedded", n_ctx=1024), backends.create("embedded", n_ctx=1024, state_cache_mb=0)
    yield pair
    for backend in pair:
        asyncio.run(backend.aclose())


@pytest.mark.slow
def test_the_state_cache_evaluates_only_what_a_turn_added_and_changes_no_answer(cached_and_uncached) -> None:
    cached, uncached = cached_and_uncached
    greedy = SamplingParams(temperature=0.0, max_tokens=24, seed=3)
    with_cache, without = interleaved(cached, greedy), interleaved(uncached, greedy)
    # Reading a prompt from a restored state gives the numbers of reading it whole: the same greedy answers.
    assert [text for text, _, _ in with_cache] == [text for text, _, _ in without]
    assert all(text.strip() for text, _, _ in with_cache)
    (_, chef_1, _), (_, pirate_1, _), (_, chef_2, chef_2_read), (_, pirate_2, pirate_2_read) = with_cache
    # Each second turn reads only what came after its own first prompt, although the other conversation came between.
    assert (chef_2_read, pirate_2_read) == (chef_2 - chef_1, pirate_2 - pirate_1)
    # Without the cache it reads all but the few tokens its prompt shares with the request just before.
    (_, _, _), (_, _, _), (_, _, chef_2_uncached), (_, _, pirate_2_uncached) = without
    assert chef_2_uncached > chef_2 - 10 and pirate_2_uncached > pirate_2 - 10


@pytest.mark.slow
def test_a_fixed_seed_gives_the_same_conversations_from_a_fresh_or_a_warm_cache(cached_and_uncached) -> None:
    cached, _ = cached_and_uncached
    sampled = SamplingParams(temperature=0.9, top_p=0.95, max_tokens=24, seed=11)
    fresh = backends.create("embedded", n_ctx=1024)
    try:
        first = [text for text, _, _ in interleaved(fresh, sampled)]
        # The same requests again: now every prompt is already in the cache.
        again = [text for text, _, _ in interleaved(fresh, sampled)]
    finally:
        asyncio.run(fresh.aclose())
    other_backend = [text for text, _, _ in interleaved(cached, sampled)]
    assert first == again == other_backend
    assert len(set(first)) == len(first)


@pytest.mark.slow
def test_the_bundled_model_says_what_its_runs_can_show() -> None:
    bundled = backends.create("embedded", state_cache_mb=0)
    chosen = backends.create("embedded", model_path=str(bundled_model_path()), state_cache_mb=0)
    try:
        assert bundled.caveat == BUNDLED_CAVEAT and "not role behavior" in BUNDLED_CAVEAT
        assert chosen.caveat is None  # a model the user chose is theirs to judge
    finally:
        bundled.release()
        chosen.release()
