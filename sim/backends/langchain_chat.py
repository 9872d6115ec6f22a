"""Any LangChain chat model, built from config with Hydra's `_target_`; needs the `[langchain]` extra."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any, Optional

from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import MISSING, DictConfig, OmegaConf

from sim.backends.base import (
    BackendConfig,
    MaxConcurrency,
    NO_KEY,
    Backend,
    BackendError,
    BackendSetupError,
    Completion,
    backends,
    choice_token_logprobs,
    no_logprobs,
    read_api_key,
)
from sim.config import scrub
from sim.errors import SimError, one_line
from sim.limits import check_max_concurrency
from sim.messages import ChatMessage, SamplingParams

RETRYABLE_STATUS = {408, 409, 429, 500, 502, 503, 504}
# Those that say the provider has more requests than it takes now: rate limited, unavailable, timed out.
OVERLOAD_STATUS = {408, 429, 503, 504}


@dataclass
class LangChainConfig(BackendConfig):
    """Schema of `backend=langchain`: `chat_model` is a `_target_` node, e.g. langchain_openai.ChatOpenAI."""

    _target_: str = "sim.backends.langchain_chat.LangChainBackend"
    _recursive_: bool = False
    chat_model: Any = MISSING
    api_key_env: Optional[str] = None
    max_concurrency: MaxConcurrency = 4


@backends.register("langchain", config=LangChainConfig)
class LangChainBackend(Backend):
    """Sampling parameters go to the chat model as OpenAI-style call arguments (temperature, top_p, max_tokens, seed)."""

    def __init__(self, chat_model: DictConfig, api_key_env: Optional[str], max_concurrency: int | str) -> None:
        try:
            from langchain_core.language_models import BaseChatModel
        except ImportError:
            raise SimError("backend=langchain needs langchain-core: pip install 'artifact-sim[langchain]'") from None
        check_max_concurrency(max_concurrency)
        if typed := [key for key in chat_model if key == "api_key" or str(key).endswith("_api_key")]:
            raise SimError(
                f"backend.chat_model.{typed[0]}: a key is never given in the config; "
                "put it in an environment variable and name that in backend.api_key_env"
            )
        extra: dict[str, Any] = {}
        if api_key_env:
            extra["api_key"] = read_api_key("langchain", api_key_env)
        elif takes_api_key(chat_model.get("_target_")):
            # Without an explicit key, models such as ChatOpenAI read OPENAI_API_KEY from the environment on their
            # own: a key nobody named in the config would be sent to whatever base_url says.
            extra["api_key"] = NO_KEY
        try:
            self._chat = instantiate(chat_model, **extra)
        except InstantiationException as exc:
            raise SimError(f"backend.chat_model: cannot build {chat_model.get('_target_')}: {one_line(str(exc.__cause__ or exc), 200)}") from None
        if not isinstance(self._chat, BaseChatModel):
            raise SimError(f"backend.chat_model: {type(self._chat).__name__} is not a LangChain BaseChatModel")
        self.max_concurrency = max_concurrency
        settings = json.dumps(scrub(OmegaConf.to_container(OmegaConf.create(chat_model), resolve=True)), sort_keys=True, default=str)
        self._identity = hashlib.sha256(settings.encode()).hexdigest()

    @property
    def identity(self) -> str:
        """A hash of the whole chat model config without its secrets: two providers (or endpoints, or settings)
        serving one model name give different answers."""
        return self._identity

    @property
    def model(self) -> str:
        """The chat model's own model name, or its class name."""
        for attribute in ("model_name", "model", "model_id"):
            value = getattr(self._chat, attribute, None)
            if isinstance(value, str) and value:
                return value
        return type(self._chat).__name__

    async def check(self) -> None:
        """One tiny request before the run: a rejected key or an unreachable endpoint stops the run."""
        try:
            await self.complete([ChatMessage("user", "ping")], SamplingParams(max_tokens=1))
        except BackendError as exc:
            cause = exc.__cause__
            status = _status_of(cause) if cause is not None else None
            if status in (401, 403):
                raise BackendSetupError(f"backend=langchain: the provider rejected the key (HTTP {status}); check backend.api_key_env") from None
            if status == 404:
                raise BackendSetupError("backend=langchain: the provider answered 404; check backend.chat_model's model and base_url") from None
            if cause is not None and "connection" in type(cause).__name__.lower():
                raise BackendSetupError(f"backend=langchain: cannot reach the provider ({exc}); check backend.chat_model.base_url") from None

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """One `ainvoke`; HTTP 429/5xx and timeouts from the provider are retryable. Log-probabilities, when asked
        for, come from chat models with a `logprobs` setting (ChatOpenAI and its kin); others refuse the request."""
        from langchain_core.messages import AIMessage, HumanMessage, SystemMessage

        kinds = {"system": SystemMessage, "user": HumanMessage, "assistant": AIMessage}
        asked = {"logprobs": True} if params.logprobs else {}
        if asked and "logprobs" not in (getattr(type(self._chat), "model_fields", None) or {}):
            raise no_logprobs("langchain", f"chat model {type(self._chat).__name__} does not return log-probabilities (it has no logprobs setting)")
        started = time.perf_counter()
        try:
            message = await self._chat.ainvoke(
                [kinds[m.role](content=m.content) for m in messages],
                temperature=params.temperature,
                top_p=params.top_p,
                max_tokens=params.max_tokens,
                seed=params.seed,
                **asked,
            )
        except Exception as exc:  # providers raise their own SDK's errors; classify by what they carry
            status = _status_of(exc)
            timed_out = isinstance(exc, TimeoutError) or "timeout" in type(exc).__name__.lower()
            connection = "connection" in type(exc).__name__.lower()
            retryable = timed_out or connection or status in RETRYABLE_STATUS
            overload = timed_out or status in OVERLOAD_STATUS
            raise BackendError(f"langchain {type(exc).__name__}: {one_line(str(exc), 200)}", retryable, overload=overload) from exc
        latency_ms = (time.perf_counter() - started) * 1000
        usage = getattr(message, "usage_metadata", None) or {}
        metadata = getattr(message, "response_metadata", None) or {}
        text = message.content if isinstance(message.content, str) else str(message.content)
        try:
            # OpenAI-style chat models keep the choice's logprobs ({"content": [...]}) in the response metadata.
            tokens = choice_token_logprobs(metadata)
        except (TypeError, KeyError, ValueError, AttributeError):
            tokens = None  # another provider's shape, which nothing here reads
        if asked and tokens is None:
            raise no_logprobs("langchain", f"chat model {type(self._chat).__name__} returned no log-probabilities (none in OpenAI's shape)")
        return Completion(
            text=text,
            finish_reason=metadata.get("finish_reason"),
            prompt_tokens=usage.get("input_tokens"),
            completion_tokens=usage.get("output_tokens"),
            latency_ms=latency_ms,
            raw={"response_metadata": metadata, "usage_metadata": dict(usage)},
            token_logprobs=tokens,
        )


def takes_api_key(target: Any) -> bool:
    """Whether the chat model class named by `target` has an `api_key` argument (a field or an alias of one);
    False for anything that is not a pydantic model class that can be imported, which then fails to build later."""
    try:
        cls = get_class(str(target))
    except Exception:  # an unimportable target is reported by `instantiate` with its own message
        return False
    fields = getattr(cls, "model_fields", None)
    if not isinstance(fields, dict):
        return False
    return any(name == "api_key" or getattr(field, "alias", None) == "api_key" for name, field in fields.items())


def _status_of(exc: BaseException) -> Any:
    """The HTTP status a provider's exception carries, if any."""
    return getattr(exc, "status_code", None) or getattr(getattr(exc, "response", None), "status_code", None)
