"""Any OpenAI-compatible chat endpoint (OpenAI, `vllm serve`, llama.cpp server, Ollama), over aiohttp or the official
SDK (sim/backends/openai_http.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, Mapping, Optional

from omegaconf import MISSING

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
from sim.backends.openai_http import ConnectionFailure, HTTPStatusFailure, MalformedBody, RequestTimeout, chat_client
from sim.errors import SimError, one_line, require_positive
from sim.limits import check_max_concurrency
from sim.messages import ChatMessage, SamplingParams

# Server errors that say it is overloaded (unavailable, or a gateway's timeout), beside 429 and our own timeouts.
OVERLOAD_STATUS = (503, 504)


@dataclass
class OpenAIConfig(BackendConfig):
    """Schema of `backend=openai` and its presets."""

    _target_: str = "sim.backends.openai_api.OpenAIBackend"
    base_url: str = "https://api.openai.com/v1"
    model: str = MISSING
    api_key_env: Optional[str] = "OPENAI_API_KEY"
    max_concurrency: MaxConcurrency = 16
    timeout_s: float = 60.0
    check_model: bool = True
    # aiohttp: the lean client, about a tenth of the SDK's CPU per request; sdk: the official AsyncOpenAI client.
    http_client: str = "aiohttp"


def retry_after_seconds(headers: Mapping[str, str] | None) -> Optional[float]:
    """Seconds a server asked us to wait, from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    if (millis := headers.get("retry-after-ms")) is not None:
        try:
            return max(float(millis) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
        except (TypeError, ValueError):
            return None


@backends.register("openai", config=OpenAIConfig)
class OpenAIBackend(Backend):
    """Chat completions over HTTP (`backend.http_client`: aiohttp or the official SDK); retries are left to the runner
    so they are counted."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key_env: str | None,
        max_concurrency: int | str,
        timeout_s: float,
        check_model: bool,
        http_client: str,
    ) -> None:
        check_max_concurrency(max_concurrency)
        require_positive("backend.timeout_s", timeout_s)
        if not base_url.startswith(("http://", "https://")):
            raise SimError(f"backend.base_url must start with http:// or https://, got {base_url!r}")
        api_key = read_api_key("openai", api_key_env) if api_key_env else NO_KEY
        self.base_url = base_url
        self._model = model
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.check_model = check_model
        self.timeout_s = timeout_s
        self._client = chat_client(http_client, base_url, api_key, timeout_s)

    @property
    def model(self) -> str:
        """The served model name."""
        return self._model

    @property
    def identity(self) -> str:
        """Endpoint and model: two servers serving one model name are different backends."""
        return f"{self.base_url}|{self._model}"

    async def check(self) -> None:
        """Reach the server, prove the key works, and (with `check_model`) that the model is served."""
        try:
            served = await self._client.model_ids()
        except (ConnectionFailure, RequestTimeout) as exc:
            why = str(exc) or f"no answer within {self.timeout_s:g} s"
            raise BackendSetupError(
                f"backend=openai: cannot reach {self.base_url} ({why}); is the server running? check backend.base_url"
            ) from None
        except MalformedBody as exc:
            if not self.check_model:
                return  # an odd /models says nothing about chat; the run's own retries deal with a bad chat answer
            raise BackendSetupError(
                f"backend=openai: {self.base_url}/models gave no model list ({exc}); set backend.check_model=false "
                "to start without checking the model"
            ) from None
        except HTTPStatusFailure as exc:
            if exc.status == 429 or exc.status >= 500:
                return  # busy right now: the run's own retries deal with that
            if exc.status == 404 and not self.check_model:
                return  # some proxies serve no /models; nothing else to learn here
            raise self._setup_error(exc) from None
        if self.check_model and self._model not in served:
            shown = ", ".join(served[:10]) + (", ..." if len(served) > 10 else "")
            raise BackendSetupError(
                f"backend=openai: model {self._model!r} is not served at {self.base_url} "
                f"(available: {shown or 'none'}); check backend.model"
            )

    def _setup_error(self, exc: HTTPStatusFailure) -> BackendSetupError:
        if exc.status in (401, 403):
            where = f"the key in {self.api_key_env}" if self.api_key_env else "no key (backend.api_key_env=null)"
            return BackendSetupError(
                f"backend=openai: {self.base_url} rejected {where} with HTTP {exc.status}; check backend.api_key_env"
            )
        if exc.status == 404:
            return BackendSetupError(
                f"backend=openai: {self.base_url} answered 404 for model {self._model!r}; check backend.base_url and backend.model"
            )
        return BackendSetupError(f"backend=openai: {self.base_url} answered HTTP {exc.status}: {exc.message}")

    async def complete(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        """One chat completion; transient failures raise a retryable BackendError."""
        payload = {
            "model": self._model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
            "seed": params.seed,
        }
        if params.logprobs:
            payload["logprobs"] = True
        started = time.perf_counter()
        try:
            data = await self._client.post_chat(payload)
        except HTTPStatusFailure as exc:
            if exc.status in (401, 403, 404):
                raise self._setup_error(exc) from None
            wait = retry_after_seconds(exc.headers)
            if exc.status == 429:
                raise BackendError("HTTP 429 rate limited", True, wait, overload=True) from exc
            if exc.status >= 500:
                raise BackendError(f"HTTP {exc.status}", True, wait, overload=exc.status in OVERLOAD_STATUS) from exc
            raise BackendError(f"HTTP {exc.status}: {exc.message}") from exc
        except RequestTimeout as exc:
            raise BackendError("request timed out", True, overload=True) from exc
        except ConnectionFailure as exc:
            raise BackendError(f"connection failed ({exc})", True) from exc
        except MalformedBody as exc:
            raise BackendError(f"malformed response ({exc})", True) from exc
        completion = _completion(data, latency_ms=(time.perf_counter() - started) * 1000)
        if params.logprobs and completion.token_logprobs is None:
            raise no_logprobs("openai", f"{self.base_url} returned no log-probabilities for model {self._model!r}")
        return completion

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


def _completion(data: Any, latency_ms: float) -> Completion:
    """A Completion from a chat-completion JSON body; anything else is a retryable malformed response."""
    try:
        choice = data["choices"][0]
        text = choice["message"].get("content")
        usage = data.get("usage") or {}
        tokens = choice_token_logprobs(choice)
    except (TypeError, KeyError, IndexError, AttributeError):
        raise BackendError(f"malformed response ({one_line(repr(data), 80)})", True) from None
    if not text:
        raise BackendError("empty completion", True)
    return Completion(
        text=text,
        finish_reason=choice.get("finish_reason"),
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        latency_ms=latency_ms,
        raw=data,
        token_logprobs=tokens,
    )
