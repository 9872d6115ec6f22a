"""The hf and langchain backends on real local models, and the vLLM backend where it can run."""

import asyncio
import re
import secrets
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from helpers import db_rows as rows, SERVED_MODEL, TINY
from fault_proxy import FaultProxy
from sim.backends.base import NO_KEY, backends
from sim.backends.batching import MicroBatcher
from sim.backends import embedded, langchain_chat  # noqa: F401  (registers them)
from sim.backends.vllm_engine import VLLMBackend
from sim.errors import SimError
from sim.messages import ChatMessage, SamplingParams
from test_bad_input import assert_one_line_error


@pytest.fixture(scope="session")
def hf_model_dir(tmp_path_factory) -> Path:
    """The bundled SmolLM2 weights and tokenizer, de-quantized from its GGUF into a transformers model directory."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sim.backends.embedded import bundled_model_path

    gguf = bundled_model_path()
    target = tmp_path_factory.mktemp("hf") / "smollm2-135m-instruct"
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    plain = AutoModelForCausalLM.from_config(quantized.config)
    plain.load_state_dict(quantized.state_dict())
    plain.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def test_hf_backend_runs_a_roleplay(sim, tmp_path: Path, hf_model_dir: Path) -> None:
    result = sim("run", "backend=hf", f"backend.model_path={hf_model_dir}", *TINY, "scenario.n_episodes=1", "scenario.max_turns=2")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    assert rows(db, "SELECT backend, model, status FROM runs") == [("hf", "smollm2-135m-instruct", "done")]
    turns = rows(db, "SELECT role, content, prompt_tokens, completion_tokens FROM turns ORDER BY idx")
    assert [t[0] for t in turns] == ["user", "assistant"]
    assert all(t[1] and t[2] > 100 and 0 < t[3] <= 40 for t in turns)


def test_hf_backend_is_seeded(hf_model_dir: Path) -> None:
    from sim.backends import hf_pipeline  # noqa: F401  (registers it; imported here as it loads transformers)

    backend = backends.create("hf", model_path=str(hf_model_dir))
    messages = [ChatMessage("user", "Name a fruit.")]

    def text(seed: int) -> str:
        return asyncio.run(backend.complete(messages, SamplingParams(temperature=1.0, max_tokens=12, seed=seed))).text

    assert text(3) == text(3)
    assert len({text(seed) for seed in range(4, 9)}) > 1


@pytest.mark.slow
def test_hf_backend_returns_the_models_own_token_logprobs(hf_model_dir: Path) -> None:
    import torch

    from sim.backends import hf_pipeline  # noqa: F401  (registers it; imported here as it loads transformers)

    backend = backends.create("hf", model_path=str(hf_model_dir))
    messages = [ChatMessage("user", "Name a fruit.")]
    completion = asyncio.run(backend.complete(messages, SamplingParams(temperature=0.9, max_tokens=12, seed=3, logprobs=True)))
    assert completion.token_logprobs is not None and len(completion.token_logprobs) == completion.completion_tokens
    assert "".join(token for token, _ in completion.token_logprobs) == completion.text
    assert completion.logprob == pytest.approx(sum(logprob for _, logprob in completion.token_logprobs))
    # The same log-probabilities from one forward pass over prompt and answer: the model's, not the sampler's.
    model, tokenizer = backend._pipe.model, backend._pipe.tokenizer
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Name a fruit."}], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    answer = torch.tensor([completion.raw["token_ids"]])
    with torch.no_grad():
        logits = model(torch.cat([prompt["input_ids"], answer], dim=1)).logits[0].float()
    start = prompt["input_ids"].shape[1]
    expected = torch.log_softmax(logits[start - 1 : -1], dim=-1)[torch.arange(answer.shape[1]), answer[0]]
    assert [logprob for _, logprob in completion.token_logprobs] == pytest.approx(expected.tolist(), abs=1e-3)
    assert asyncio.run(backend.complete(messages, SamplingParams(max_tokens=4, seed=3))).token_logprobs is None


def test_hf_backend_needs_a_model_directory(sim, tmp_path: Path) -> None:
    assert_one_line_error(sim("run", "backend=hf", f"backend.model_path={tmp_path}", *TINY), "not a local transformers model directory")


def langchain_args(base_url: str, *extra: str) -> list[str]:
    """Overrides that point `backend=langchain` (ChatOpenAI) at a keyless local server."""
    return [
        "backend=langchain", f"backend.chat_model.base_url={base_url}", f"backend.chat_model.model={SERVED_MODEL}",
        "backend.api_key_env=null", *extra,
    ]


def test_langchain_backend_against_the_llama_server(sim, tmp_path: Path, llama_server: str, monkeypatch) -> None:
    # A key in the environment that the config never named: ChatOpenAI would pick it up by itself if let.
    sentinel = f"sk-sentinel-{secrets.token_hex(8)}"
    monkeypatch.setenv("OPENAI_API_KEY", sentinel)
    # The proxy answers 401 to anything but the placeholder: the run succeeding proves every request sent it.
    with FaultProxy(llama_server, required_key=NO_KEY) as proxy:
        result = sim(
            "run", *langchain_args(proxy.base_url, "backend.max_concurrency=1"), *TINY, "scenario.n_episodes=1", "scenario.max_turns=2",
        )
        assert result.returncode == 0, result.stderr
        assert proxy.counts["forwarded"] >= 2
    db = tmp_path / "runs" / "sim.db"
    ((backend, model, config),) = rows(db, "SELECT backend, model, config_yaml FROM runs")
    assert (backend, model) == ("langchain", SERVED_MODEL)
    assert "api_key_env: null" in config
    assert sentinel not in db.read_bytes().decode("latin-1")
    turns = rows(db, "SELECT content, prompt_tokens, completion_tokens, finish_reason FROM turns")
    assert len(turns) == 2 and all(t[0] and t[1] and t[2] and t[3] in ("stop", "length") for t in turns)


def test_langchain_never_sends_a_key_that_the_config_did_not_name(sim, tmp_path: Path, llama_server: str, monkeypatch) -> None:
    sentinel = f"sk-sentinel-{secrets.token_hex(8)}"
    monkeypatch.setenv("OPENAI_API_KEY", sentinel)
    chat_model = OmegaConf.create({"_target_": "langchain_openai.ChatOpenAI", "model": SERVED_MODEL, "base_url": llama_server})
    built = backends.create("langchain", chat_model=chat_model)._chat
    assert built.openai_api_key.get_secret_value() == NO_KEY and built.root_async_client.api_key == NO_KEY
    # A server that wants exactly that variable's key rejects the run: the key was never sent.
    with FaultProxy(llama_server, required_key=sentinel) as proxy:
        result = sim("run", *langchain_args(proxy.base_url), *TINY)
        assert proxy.counts["forwarded"] == 0
    assert_one_line_error(result, "backend=langchain: the provider rejected the key (HTTP 401)")


def test_langchain_takes_a_key_only_from_the_named_variable(monkeypatch) -> None:
    monkeypatch.setenv("SIM_TEST_LANGCHAIN_KEY", "sk-named")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-named")
    chat_model = OmegaConf.create({"_target_": "langchain_openai.ChatOpenAI", "model": SERVED_MODEL})
    built = backends.create("langchain", chat_model=chat_model, api_key_env="SIM_TEST_LANGCHAIN_KEY")._chat
    assert built.openai_api_key.get_secret_value() == "sk-named"
    typed = OmegaConf.create({"_target_": "langchain_openai.ChatOpenAI", "model": SERVED_MODEL, "openai_api_key": "sk-typed"})
    with pytest.raises(SimError, match=r"^backend\.chat_model\.openai_api_key: a key is never given in the config"):
        backends.create("langchain", chat_model=typed)


def test_langchain_unreachable_provider_fails_the_run(sim, tmp_path: Path) -> None:
    result = sim("run", *langchain_args("http://127.0.0.1:9/v1"), *TINY, "run.id=lc")
    assert_one_line_error(result, "backend=langchain: cannot reach the provider")
    assert rows(tmp_path / "runs" / "sim.db", "SELECT status FROM runs") == [("failed",)]


def test_langchain_target_must_be_a_chat_model(sim) -> None:
    result = sim("run", "backend=langchain", "backend.chat_model._target_=collections.OrderedDict", "backend.api_key_env=null", *TINY)
    assert_one_line_error(result, "is not a LangChain BaseChatModel")


@pytest.mark.parametrize(
    ("name", "settings", "message"),
    [
        ("embedded", {"n_threads": -2}, "backend.n_threads must be positive (or null for all cores), got -2"),
        ("embedded", {"n_threads": 0}, "backend.n_threads must be positive (or null for all cores), got 0"),
        ("embedded", {"n_ctx": 0}, "backend.n_ctx must be positive, got 0"),
        ("langchain", {"chat_model": {"_target_": "x"}, "max_concurrency": 0}, "backend.max_concurrency must be positive, got 0"),
        # vLLM's settings are checked before vLLM is imported, so these hold on machines without it or a GPU.
        ("vllm", {"model": "m", "max_batch": 0}, "backend.max_batch must be positive, got 0"),
        ("vllm", {"model": "m", "max_concurrency": -1}, "backend.max_concurrency must be positive, got -1"),
        ("vllm", {"model": "m", "tensor_parallel_size": 0}, "backend.tensor_parallel_size must be positive, got 0"),
        ("vllm", {"model": "m", "max_model_len": -4096}, "backend.max_model_len must be positive, got -4096"),
        ("vllm", {"model": "m", "gpu_memory_utilization": 1.5}, "backend.gpu_memory_utilization must be in (0, 1], got 1.5"),
        ("vllm", {"model": "m", "batch_wait_ms": -1}, "backend.batch_wait_ms must not be negative, got -1.0"),
    ],
)
def test_backend_sizes_and_counts_below_their_minimum_are_refused(name: str, settings: dict, message: str) -> None:
    with pytest.raises(SimError, match=f"^{re.escape(message)}$"):
        backends.create(name, **settings)


def vllm_usable() -> bool:
    try:
        import torch
        import vllm  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.mark.skipif(not vllm_usable(), reason="vLLM and a CUDA GPU are needed for the in-process vLLM engine")
def test_vllm_backend_runs_a_roleplay(sim, tmp_path: Path, hf_model_dir: Path) -> None:
    result = sim("run", "backend=vllm", f"backend.model={hf_model_dir}", *TINY, "runner.concurrency=4")
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path / "runs" / "sim.db", "SELECT DISTINCT status FROM episodes") == [("done",)]


@pytest.mark.skipif(vllm_usable(), reason="checks the message shown where vLLM or a GPU is missing")
def test_vllm_backend_says_what_is_missing(sim) -> None:
    assert_one_line_error(sim("run", "backend=vllm", "backend.model=/models/any", *TINY), "backend=vllm needs")


class RecordingEngine:
    """Stands in for `vllm.LLM`, which needs a GPU: answers each conversation with its seed and records batch sizes.
    Asked for logprobs (0: the sampled token's alone), it gives what vLLM documents for a CompletionOutput: per
    position, a mapping from token id to a Logprob with `logprob` and `decoded_token`, here the sampled token and
    a likelier one it did not sample."""

    def __init__(self) -> None:
        self.batches: list[int] = []
        self.sampling_params: list[dict] = []

    def chat(self, conversations, sampling_params, use_tqdm):
        self.batches.append(len(conversations))
        self.sampling_params += sampling_params
        return [
            SimpleNamespace(
                request_id=str(i),
                prompt_token_ids=list(range(len(conv[-1]["content"]))),
                outputs=[SimpleNamespace(
                    text=f"seed {params['seed']}", finish_reason="stop", token_ids=[1, 2],
                    logprobs=None if params["logprobs"] is None else [
                        {1: SimpleNamespace(logprob=-0.5, decoded_token="seed"), 9: SimpleNamespace(logprob=-0.1, decoded_token="x")},
                        {2: SimpleNamespace(logprob=-1.25, decoded_token=f" {params['seed']}"), 9: SimpleNamespace(logprob=-0.2, decoded_token="x")},
                    ],
                )],
            )
            for i, (conv, params) in enumerate(zip(conversations, sampling_params))
        ]


def test_vllm_backend_batches_concurrent_requests_and_keeps_each_seed() -> None:
    engine = RecordingEngine()
    backend = VLLMBackend.with_engine(engine, dict, model="m", max_batch=8, batch_wait_ms=50)

    async def many() -> list:
        requests = [
            backend.complete([ChatMessage("user", "x" * (i + 1))], SamplingParams(seed=100 + i)) for i in range(20)
        ]
        results = await asyncio.gather(*requests)
        await backend.aclose()
        return results

    results = asyncio.run(many())
    assert [r.text for r in results] == [f"seed {100 + i}" for i in range(20)]
    assert [r.prompt_tokens for r in results] == [i + 1 for i in range(20)]
    assert sum(engine.batches) == 20 and max(engine.batches) == 8 and len(engine.batches) == 3


def test_vllm_backend_asks_for_the_sampled_tokens_logprobs_only_when_the_request_does() -> None:
    engine = RecordingEngine()
    backend = VLLMBackend.with_engine(engine, dict, model="m", max_batch=8, batch_wait_ms=50)

    async def both() -> list:
        results = await asyncio.gather(
            backend.complete([ChatMessage("user", "x")], SamplingParams(seed=1, logprobs=True)),
            backend.complete([ChatMessage("user", "y")], SamplingParams(seed=2)),
        )
        await backend.aclose()
        return results

    asked, plain = asyncio.run(both())
    assert [params["logprobs"] for params in engine.sampling_params] == [0, None]
    assert asked.token_logprobs == [("seed", -0.5), (" 1", -1.25)] and asked.logprob == -1.75
    assert "".join(token for token, _ in asked.token_logprobs) == asked.text
    assert plain.token_logprobs is None and plain.logprob is None


def test_micro_batcher_fails_only_its_own_batch() -> None:
    def run_batch(items: list[int]) -> list[int]:
        if 13 in items:
            raise ValueError("unlucky batch")
        return [item * 2 for item in items]

    async def scenario() -> tuple:
        batcher = MicroBatcher(run_batch, max_batch=4, wait_s=0.02)
        first = await asyncio.gather(*(batcher.submit(i) for i in range(4)))
        bad = await asyncio.gather(batcher.submit(13), return_exceptions=True)
        after = await batcher.submit(5)
        await batcher.aclose()
        return first, bad, after, batcher.batch_sizes

    first, bad, after, sizes = asyncio.run(scenario())
    assert first == [0, 2, 4, 6] and isinstance(bad[0], ValueError) and after == 10
    assert sizes == [4, 1, 1]
