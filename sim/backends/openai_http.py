"""The two HTTP clients of `backend=openai`, behind one small interface that raises the same four failures.

- `aiohttp` (the default): a plain aiohttp session. Its HTTP parser is written in C, so a chat request costs about
  a tenth of the CPU of the official SDK's (httpx, pure Python; bench/runner_throughput.py), which is what bounds
  a run's throughput at hundreds of requests in flight.
- `sdk`: the official `AsyncOpenAI` client, for endpoints or setups that need what it adds.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.parse
import urllib.request
from abc import ABC, abstractmethod
from typing import Any, Mapping, Optional

from sim.errors import one_line, require_one_of


class HTTPStatusFailure(Exception):
    """The server answered with an error status; `message` is the error it gave, or the start of its body."""

    def __init__(self, status: int, headers: Mapping[str, str], message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.headers = headers
        self.message = message


class RequestTimeout(Exception):
    """No complete answer within the backend's `timeout_s`."""


class ConnectionFailure(Exception):
    """The server could not be reached, or it dropped the connection before a complete answer."""


class MalformedBody(Exception):
    """A success status whose body is not JSON."""


# Headers the SDK's client adds from these environment variables; the aiohttp client adds them too, so that both
# send the same request.
ENVIRONMENT_HEADERS = (("OpenAI-Organization", "OPENAI_ORG_ID"), ("OpenAI-Project", "OPENAI_PROJECT_ID"))


class ChatClient(ABC):
    """Posts chat completions and lists models at one OpenAI-compatible base URL."""

    @abstractmethod
    async def post_chat(self, payload: dict[str, Any]) -> Any:
        """The JSON body the server answered `payload` with."""

    @abstractmethod
    async def model_ids(self) -> list[str]:
        """The ids of the models the server lists."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the connection pool."""


class AiohttpChatClient(ChatClient):
    """A lean client on aiohttp: one pooled session, JSON in and out, nothing validated but the status."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.base_url = base_url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self.headers.update({header: os.environ[name] for header, name in ENVIRONMENT_HEADERS if os.environ.get(name)})
        # The whole request, connecting included (the SDK's httpx applies its timeout to each phase instead).
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.proxy = environment_proxy(self.base_url)
        # Made on first use, and again in another event loop: an aiohttp session belongs to the loop it was made in,
        # and the backend is built before the run's loop starts.
        self._session: Any = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def _open(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop:
            self._session = self._aiohttp.ClientSession(
                # No pool limit: the run's request limit already bounds what is in flight.
                connector=self._aiohttp.TCPConnector(limit=0),
                headers=self.headers,
                timeout=self.timeout,
            )
            self._loop = loop
        return self._session

    async def _request(self, method: str, path: str, body: bytes | None = None) -> Any:
        aiohttp = self._aiohttp
        try:
            async with self._open().request(method, f"{self.base_url}{path}", data=body, proxy=self.proxy) as response:
                content = await response.read()
                status, headers = response.status, response.headers
        except asyncio.TimeoutError:
            raise RequestTimeout() from None
        except aiohttp.ClientError as exc:  # unreachable, dropped, or an answer that is not HTTP: as the SDK's client
            raise ConnectionFailure(one_line(str(exc), 200) or type(exc).__name__) from None
        if not 200 <= status < 300:
            raise HTTPStatusFailure(status, headers, _error_message(content))
        try:
            return json.loads(content)
        except ValueError as exc:
            raise MalformedBody(one_line(f"{exc}: {content[:80]!r}", 200)) from None

    async def post_chat(self, payload: dict[str, Any]) -> Any:
        """The JSON body the server answered `payload` with."""
        return await self._request("POST", "/chat/completions", json.dumps(payload).encode())

    async def model_ids(self) -> list[str]:
        """The ids of the models the server lists."""
        body = await self._request("GET", "/models")
        try:
            return [str(model["id"]) for model in body["data"]]
        except (TypeError, KeyError) as exc:
            raise MalformedBody(f"no model list ({one_line(repr(exc), 80)})") from None

    async def aclose(self) -> None:
        """Close the connection pool."""
        if self._session is not None and self._loop is asyncio.get_running_loop():
            await self._session.close()
        self._session = self._loop = None


def environment_proxy(url: str) -> str | None:
    """The proxy `https_proxy`, `http_proxy` or `all_proxy` sets for `url`, unless `no_proxy` exempts it."""
    # Read once here: aiohttp's trust_env reads it again in a worker thread on every request, which costs more CPU
    # than the request itself.
    parts = urllib.parse.urlsplit(url)
    if parts.hostname is None or urllib.request.proxy_bypass(parts.netloc.rpartition("@")[2]):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(parts.scheme) or proxies.get("all")
    if proxy and "://" not in proxy:
        proxy = f"http://{proxy}"  # `host:port`, as httpx reads it
    return proxy


def _error_message(content: bytes) -> str:
    """The `error.message` of an OpenAI-shaped error body, or the body's start."""
    text = content.decode("utf-8", "replace")
    try:
        error = json.loads(text).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return one_line(str(message) if message else text, 200) or "no body"


class SDKChatClient(ChatClient):
    """The official `AsyncOpenAI` client, through its low-level `post` (no typed models), retries left to the run."""

    def __init__(self, base_url: str, api_key: str, timeout_s: float) -> None:
        import openai

        self._openai = openai
        self._client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=0)

    async def _call(self, request: Any) -> Any:
        openai = self._openai
        try:
            return await request
        except openai.APITimeoutError:
            raise RequestTimeout() from None
        except openai.APIConnectionError as exc:
            cause = exc.__cause__ or exc.__context__
            raise ConnectionFailure(one_line(str(cause) if cause else str(exc), 200) or type(exc).__name__) from None
        except openai.APIStatusError as exc:
            raise HTTPStatusFailure(exc.status_code, exc.response.headers, one_line(exc.message, 200)) from None
        except (openai.APIResponseValidationError, ValueError) as exc:  # ValueError: a body that claims JSON but is not
            raise MalformedBody(one_line(str(exc), 200)) from None

    async def post_chat(self, payload: dict[str, Any]) -> Any:
        """The JSON body the server answered `payload` with."""
        return await self._call(self._client.post("/chat/completions", body=payload, cast_to=dict))

    async def model_ids(self) -> list[str]:
        """The ids of the models the server lists."""

        async def listed() -> list[str]:
            return [model.id async for model in self._client.models.list()]

        return await self._call(listed())

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.close()


CLIENTS: dict[str, type[ChatClient]] = {"aiohttp": AiohttpChatClient, "sdk": SDKChatClient}


def chat_client(name: str, base_url: str, api_key: str, timeout_s: float) -> ChatClient:
    """The client `backend.http_client` names; a SimError naming the known ones otherwise."""
    require_one_of("backend.http_client", name, CLIENTS)
    return CLIENTS[name](base_url, api_key, timeout_s)
