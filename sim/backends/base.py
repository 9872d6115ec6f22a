"""The small interface every model backend implements: chat messages and sampling in, a completion out."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from sim.config import build
from sim.errors import SimError
from sim.messages import ChatMessage, SamplingParams
from sim.registry import Registry

# The key sent when backend.api_key_env is null: servers that need no key still require the SDKs to send one, and
# an SDK given none reads a variable of its own choosing (OPENAI_API_KEY) that the config never named.
NO_KEY = "not-needed"


@dataclass
class Completion:
    """What a backend returns for one request."""

    text: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float
    raw: dict[str, Any] = field(default_factory=dict)
    logprob: float | None = None  # sum of the sampled tokens' log-probabilities, when asked for and given
    # Each sampled token's text and log-probability, in order, when asked for and given: the text of the tokens
    # joined is the completion's text, so a part of the answer (a label) can be traced to its own tokens.
    token_logprobs: list[tuple[str, float]] | None = None

    def __post_init__(self) -> None:
        if self.token_logprobs is None:
            return
        # The request cache keeps completions as JSON, which gives each pair back as a list.
        self.token_logprobs = [(str(token), float(logprob)) for token, logprob in self.token_logprobs]
        if self.logprob is None:
            self.logprob = float(sum(logprob for _, logprob in self.token_logprobs))


def choice_token_logprobs(choice: dict[str, Any]) -> list[tuple[str, float]] | None:
    """The (token, log-probability) pairs of an OpenAI-shaped chat choice, or None when it carries none."""
    tokens = (choice.get("logprobs") or {}).get("content")
    if not tokens:
        return None
    return [(str(token["token"]), float(token["logprob"])) for token in tokens]


@dataclass(frozen=True)
class Pricing:
    """What a backend's tokens cost: USD per million prompt (input) and completion (output) tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The cost of one request's tokens."""
        return (prompt_tokens * self.input_usd_per_mtok + completion_tokens * self.output_usd_per_mtok) / 1e6


# The schemas' type of `max_concurrency`: a number, or `auto` (sim/limits.py). OmegaConf has no int-or-string
# type, so the backends check it themselves (check_max_concurrency).
MaxConcurrency = Any


@dataclass
class BackendConfig:
    """What the schema of every backend has: `pricing`, `{input_usd_per_mtok: X, output_usd_per_mtok: Y}` (USD per
    million prompt and completion tokens; null: unpriced, the presets' setting), turns the ledger's tokens into cost
    and lets `runner.max_cost_usd` cap a run. Typed loosely, as OmegaConf cannot merge a mapping into a structured
    node left null; `build_backend` checks it."""

    pricing: Any = None


def build_backend(node: DictConfig, what: str) -> "Backend":
    """A backend from its config, carrying the config's pricing (checked) rather than handing it to the constructor."""
    settings = OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)
    pricing = settings.pop("pricing", None)
    if pricing is not None:
        prices = {key: pricing.get(key) for key in ("input_usd_per_mtok", "output_usd_per_mtok")} if isinstance(pricing, dict) else {}
        if not prices or set(pricing) != set(prices) or any(
            not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0 for value in prices.values()
        ):
            raise SimError(f"{what}.pricing needs input_usd_per_mtok and output_usd_per_mtok, each a number >= 0, got {pricing}")
    backend: Backend = build(OmegaConf.create(settings), what)
    if pricing is not None:
        backend.pricing = Pricing(**{key: float(value) for key, value in prices.items()})
    return backend


class BackendError(Exception):
    """A request that failed; retried when `retryable`, otherwise recorded as the episode's failure, with the
    `attempts` made for it. `overload`: the server said it has more requests than it can take (429, 503, a
    timeout), which shrinks an adaptive request limit."""

    def __init__(
        self, message: str, retryable: bool = False, retry_after: float | None = None, attempts: int = 1, overload: bool = False
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts
        self.overload = overload


class BackendSetupError(SimError):
    """The backend cannot serve this run at all (unreachable, unknown model, rejected key): the run stops."""


def no_logprobs(backend: str, why: str) -> BackendSetupError:
    """The one-line refusal of a backend asked for log-probabilities it cannot give (`why` says what it lacks)."""
    return BackendSetupError(f"backend={backend}: {why}; set scenario.logprobs=false")


class Backend(ABC):
    """A chat model. Backends know nothing of scenarios, agents or the store."""

    name: str  # set by the registry
    max_concurrency: int | str = 1  # requests in flight at once, or `auto` (sim/limits.py)
    pricing: Optional[Pricing] = None  # set by build_backend from the config; None: unpriced
    # What data from this model can and cannot show, said with every run it generates (None: nothing to say).
    caveat: Optional[str] = None

    @property
    @abstractmethod
    def model(self) -> str:
        """The model identifier recorded with every run."""

    @abstractmethod
    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """Sample one completion for `messages`."""

    @property
    def identity(self) -> str:
        """What distinguishes this backend's answers in the request cache beyond its kind and model."""
        return self.model

    async def check(self) -> None:
        """Fail fast with BackendSetupError before a run starts; the default has nothing to check."""

    async def aclose(self) -> None:
        """Release the model or connection; the default holds nothing."""

    def request_hash(self, messages: list[ChatMessage], params: SamplingParams, sample_index: int = 0) -> str:
        """A stable key for one request, so that identical requests can be recognised and cached."""
        payload = {
            "backend": self.name,
            "model": self.model,
            "identity": self.identity,
            # vars() rather than asdict(): the same flat dicts, so the same keys as ever, without asdict's deep copy,
            # which cost more than the hash itself on every request.
            "messages": [vars(m) for m in messages],
            "params": vars(params),
            "sample_index": sample_index,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()


def read_api_key(backend: str, env_name: str) -> str:
    """The key in the environment variable `env_name`; a SimError naming it when it is unset."""
    key = os.environ.get(env_name, "")
    if not key:
        raise SimError(
            f"backend={backend}: environment variable {env_name} is not set "
            "(set it, or backend.api_key_env=null for a server without keys)"
        )
    return key


class LocalModelBackend(Backend):
    """A model loaded from a local path into this process and run one request at a time in a worker thread."""

    def __init__(self, path: Path) -> None:
        self._path = path
        # Local inference libraries share one model state (and global seeds): one request at a time.
        self._lock = asyncio.Lock()
        # Always the same thread: llama.cpp's thread pools belong to the thread that calls them, and a pool left
        # behind by another thread keeps spinning on the cores a new one needs.
        self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix=type(self).__name__)

    @property
    def model(self) -> str:
        """The model file's or directory's name."""
        return self._path.name

    @property
    def identity(self) -> str:
        """The full model path: two files with one name are different models."""
        return str(self._path.resolve())

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """Run `generate` in a worker thread so the event loop stays responsive."""
        async with self._lock:
            started = time.perf_counter()
            work = asyncio.get_running_loop().run_in_executor(self._worker, self.generate, messages, params)
            try:
                completion = await asyncio.shield(work)
            except asyncio.CancelledError:
                # A thread cannot be stopped: hold the lock until it is done, through repeated
                # cancellations, so that aclose never frees the model under running native code.
                while not work.done():
                    try:
                        await asyncio.wait([work])
                    except asyncio.CancelledError:
                        continue
                raise
            except (ValueError, RuntimeError) as exc:  # e.g. a prompt longer than the context window
                raise BackendError(f"{self.name}: {exc}") from exc
            completion.latency_ms = (time.perf_counter() - started) * 1000
        return completion

    async def aclose(self) -> None:
        """Wait for a generation still running in its thread, then release the model and the thread."""
        async with self._lock:
            self.release()
            self._worker.shutdown()

    def release(self) -> None:
        """Free the loaded model; the default leaves it to the garbage collector."""

    @abstractmethod
    def generate(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """Blocking generation; `latency_ms` is filled in by `complete`."""


backends: Registry[Backend] = Registry("backend", build_backend)
