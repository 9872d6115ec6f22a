"""The in-process vLLM engine (`vllm.LLM`), fed batches of concurrent chat requests; needs a GPU and `[vllm]`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import MISSING

from sim.backends.base import BackendConfig, Backend, MaxConcurrency, BackendError, Completion, backends
from sim.backends.batching import MicroBatcher
from sim.errors import SimError, require_at_least, require_positive, require_score
from sim.limits import check_max_concurrency
from sim.messages import ChatMessage, SamplingParams


@dataclass
class VLLMConfig(BackendConfig):
    """Schema of `backend=vllm`."""

    _target_: str = "sim.backends.vllm_engine.VLLMBackend"
    model: str = MISSING
    dtype: str = "auto"
    tensor_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_model_len: Optional[int] = None
    max_batch: int = 256
    batch_wait_ms: float = 10.0
    max_concurrency: MaxConcurrency = 256


def load_vllm() -> Any:
    """The vllm module, or a SimError saying how to get it and that it needs a GPU."""
    try:
        import vllm
    except ImportError:
        raise SimError("backend=vllm needs the vllm package: pip install 'artifact-sim[vllm]' (Linux with a CUDA GPU)") from None
    import torch

    if not torch.cuda.is_available():
        raise SimError("backend=vllm needs a CUDA GPU and none is visible; use backend=embedded or backend=vllm_server")
    return vllm


@backends.register("vllm", config=VLLMConfig)
class VLLMBackend(Backend):
    """Concurrent requests are gathered into `LLM.chat` batches, each request keeping its own sampling seed."""

    def __init__(
        self,
        model: str,
        dtype: str,
        tensor_parallel_size: int,
        gpu_memory_utilization: float,
        max_model_len: Optional[int],
        max_batch: int,
        batch_wait_ms: float,
        max_concurrency: int | str,
    ) -> None:
        # Checked before vLLM is imported and the weights loaded, which take minutes on a GPU.
        for key, value in (("tensor_parallel_size", tensor_parallel_size), ("max_batch", max_batch)):
            require_positive(f"backend.{key}", value)
        check_max_concurrency(max_concurrency)
        if max_model_len is not None:
            require_positive("backend.max_model_len", max_model_len)
        require_score("backend.gpu_memory_utilization", gpu_memory_utilization)
        require_at_least("backend.batch_wait_ms", batch_wait_ms, 0)
        vllm = load_vllm()
        engine = vllm.LLM(
            model=model,
            dtype=dtype,
            tensor_parallel_size=tensor_parallel_size,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
        )
        self._setup(engine, vllm.SamplingParams, model, max_batch, batch_wait_ms, max_concurrency)

    @classmethod
    def with_engine(
        cls, engine: Any, sampling_params_cls: Any, model: str, max_batch: int = VLLMConfig.max_batch,
        batch_wait_ms: float = VLLMConfig.batch_wait_ms,
    ) -> "VLLMBackend":
        """Wrap an engine that is already loaded (in a notebook, say) instead of loading one."""
        backend = cls.__new__(cls)
        backend._setup(engine, sampling_params_cls, model, max_batch, batch_wait_ms, max_batch)
        return backend

    def _setup(
        self, engine: Any, sampling_params_cls: Any, model: str, max_batch: int, batch_wait_ms: float, max_concurrency: int | str
    ) -> None:
        self._engine = engine
        self._sampling_params_cls = sampling_params_cls
        self._model = model
        self.max_concurrency = max_concurrency
        self.batcher: MicroBatcher[tuple[list[ChatMessage], SamplingParams], Completion] = MicroBatcher(
            self._run_batch, max_batch=max_batch, wait_s=batch_wait_ms / 1000
        )

    @property
    def model(self) -> str:
        """The model path or name given to vLLM."""
        return self._model

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """Join the next batch."""
        return await self.batcher.submit((messages, params))

    def _run_batch(self, requests: list[tuple[list[ChatMessage], SamplingParams]]) -> list[Completion]:
        started = time.perf_counter()
        conversations = [[{"role": m.role, "content": m.content} for m in messages] for messages, _ in requests]
        sampling = [
            self._sampling_params_cls(
                # logprobs=0: the sampled token's log-probability alone, none of the other likely tokens.
                temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens, seed=p.seed, logprobs=0 if p.logprobs else None
            )
            for _, p in requests
        ]
        try:
            outputs = self._engine.chat(conversations, sampling_params=sampling, use_tqdm=False)
        except (ValueError, RuntimeError) as exc:
            raise BackendError(f"vllm: {exc}") from exc
        latency_ms = (time.perf_counter() - started) * 1000
        completions = []
        for output, (_, params) in zip(outputs, requests):
            sample = output.outputs[0]
            completions.append(
                Completion(
                    text=sample.text,
                    finish_reason=sample.finish_reason,
                    prompt_tokens=len(output.prompt_token_ids or []),
                    completion_tokens=len(sample.token_ids),
                    latency_ms=latency_ms,
                    raw={"request_id": output.request_id, "batch_size": len(requests)},
                    token_logprobs=sampled_logprobs(sample) if params.logprobs else None,
                )
            )
        return completions

    async def aclose(self) -> None:
        """Stop the batcher; the engine is freed with the process."""
        await self.batcher.aclose()


def sampled_logprobs(sample: Any) -> list[tuple[str, float]]:
    """Each sampled token's text and log-probability from a vLLM CompletionOutput asked for logprobs: `logprobs`
    holds one mapping per position from token id to a Logprob (logprob, rank, decoded_token)."""
    entries = [position[token] for token, position in zip(sample.token_ids, sample.logprobs)]
    return [(entry.decoded_token or "", entry.logprob) for entry in entries]
