"""The embedded backend on the real bundled SmolLM2 model."""

import asyncio
from dataclasses import replace
from pathlib import Path

import pytest

from sim.backends import ChatMessage, SamplingParams
from sim.backends.embedded import EmbeddedBackend, bundled_model_path
from sim.errors import SimError

MESSAGES = [ChatMessage("system", "You are a helpful assistant."), ChatMessage("user", "Name a fruit.")]


@pytest.fixture(scope="module")
def backend():
    backend = EmbeddedBackend(n_ctx=1024)
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


def test_completion_has_text_and_accounting(backend: EmbeddedBackend) -> None:
    completion = complete(backend, seed=1)
    assert completion.text.strip()
    assert completion.finish_reason in ("stop", "length")
    assert completion.prompt_tokens and completion.prompt_tokens > len(MESSAGES)
    assert 0 < completion.completion_tokens <= 24
    assert completion.latency_ms > 0
    assert backend.model == "SmolLM2-135M-Instruct.Q4_1.gguf"


def test_same_seed_same_text_other_seeds_vary(backend: EmbeddedBackend) -> None:
    first = complete(backend, seed=7).text
    assert complete(backend, seed=7).text == first
    others = {complete(backend, seed=seed, temperature=1.5).text for seed in range(8, 14)}
    assert len(others) > 1


def test_request_hash_depends_on_every_input(backend: EmbeddedBackend) -> None:
    params = SamplingParams(seed=1)
    base = backend.request_hash(MESSAGES, params)
    assert backend.request_hash(MESSAGES, params) == base
    assert backend.request_hash(MESSAGES, SamplingParams(seed=2)) != base
    assert backend.request_hash(MESSAGES[:1], params) != base
    assert backend.request_hash(MESSAGES, params, sample_index=1) != base


def test_missing_model_path_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="no such GGUF file"):
        EmbeddedBackend(model_path=str(tmp_path / "nope.gguf"))


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path) -> None:
    fake = tmp_path / "fake.gguf"
    fake.write_text("not a model")
    with pytest.raises(SimError, match="cannot load"):
        EmbeddedBackend(model_path=str(fake))


@pytest.mark.slow
def test_logprobs_asked_of_a_model_opened_without_logits_all_are_given() -> None:
    backend = EmbeddedBackend(n_ctx=1024)
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
