"""backend=openai's two HTTP clients (aiohttp, the default, and the official SDK) against loopback servers that
answer oddly: both must end in the same failure, and a run must never stop on an answer it can retry."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

import sim.compose  # noqa: F401  (registers every backend)
from scripted_server import ScriptedServer
from sim.backends import BackendError, BackendSetupError, backends
from sim.backends.openai_http import environment_proxy
from sim.errors import SimError
from sim.messages import ChatMessage, SamplingParams

CLIENTS = ["aiohttp", "sdk"]
PROMPT = [ChatMessage("user", "Hi")]


class OddServer:
    """Answers every request on /v1 with `status` and `body`, and records each request's headers."""

    def __init__(self, status: int, body: bytes) -> None:
        self.headers: list[dict[str, str]] = []
        odd = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                odd.headers.append(dict(self.headers))
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def not_http() -> Iterator[str]:
    """A base URL whose server answers every connection with a line that is not HTTP, then hangs up."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            with connection:
                connection.recv(65536)
                connection.sendall(b"NOT-HTTP garbage\r\n\r\n")

    threading.Thread(target=serve, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    listener.close()


def openai(base_url: str, http_client: str, **settings: object):
    """A keyless `openai` backend at `base_url` over `http_client`."""
    return backends.create("openai", base_url=base_url, model="scripted", api_key_env=None, http_client=http_client, **settings)


def complete(backend) -> object:
    """One completion (or the exception it raised), with the backend closed after it in the same loop."""

    async def once() -> object:
        try:
            return await backend.complete(PROMPT, SamplingParams(max_tokens=4))
        except Exception as exc:  # the test looks at which failure it was
            return exc
        finally:
            await backend.aclose()

    return asyncio.run(once())


@pytest.mark.parametrize("http_client", CLIENTS)
def test_an_answer_that_is_not_http_is_a_retryable_connection_failure(not_http: str, http_client: str) -> None:
    failure = complete(openai(not_http, http_client))
    assert isinstance(failure, BackendError) and failure.retryable and str(failure).startswith("connection failed ("), failure
    with pytest.raises(BackendSetupError, match=r"^backend=openai: cannot reach .*; is the server running\? check backend.base_url$"):
        asyncio.run(openai(not_http, http_client).check())


@pytest.mark.parametrize(("status", "retryable"), [(300, False), (400, False), (500, True), (503, True)])
@pytest.mark.parametrize("http_client", CLIENTS)
def test_every_status_outside_2xx_is_a_failure_and_only_server_errors_are_retried(http_client: str, status: int, retryable: bool) -> None:
    server = OddServer(status, json.dumps({"error": {"message": "no"}}).encode())
    try:
        failure = complete(openai(server.base_url, http_client))
    finally:
        server.close()
    assert isinstance(failure, BackendError) and failure.retryable == retryable
    assert str(failure).startswith(f"HTTP {status}"), failure


@pytest.mark.parametrize("http_client", CLIENTS)
def test_a_models_list_that_is_no_list_is_refused_only_when_the_model_is_checked(http_client: str) -> None:
    server = OddServer(200, json.dumps({"models": ["scripted"]}).encode())
    try:
        with pytest.raises(BackendSetupError, match=r"backend=openai: .*(gave no model list|is not served).*backend\.(check_)?model"):
            asyncio.run(openai(server.base_url, http_client).check())
        asyncio.run(openai(server.base_url, http_client, check_model=False).check())
    finally:
        server.close()


@pytest.mark.parametrize("http_client", CLIENTS)
def test_one_backend_serves_one_event_loop_after_another(http_client: str, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    with ScriptedServer(lambda messages: "Hello.") as server:
        backend = openai(server.base_url, http_client)
        first = asyncio.run(backend.complete(PROMPT, SamplingParams(max_tokens=4)))  # its loop closed, session left
        second = complete(backend)
    assert first.text == second.text == "Hello."


def test_both_clients_send_the_organization_and_project_the_environment_names(monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-test")
    server = OddServer(200, json.dumps({"choices": [{"message": {"content": "Hi."}, "finish_reason": "stop"}]}).encode())
    try:
        for http_client in CLIENTS:
            assert complete(openai(server.base_url, http_client)).text == "Hi."
    finally:
        server.close()
    sent = [{key.lower(): value for key, value in headers.items()} for headers in server.headers]
    assert [(h["openai-organization"], h["openai-project"]) for h in sent] == [("org-test", "proj-test")] * 2


def test_a_base_url_without_a_scheme_is_refused_in_one_line() -> None:
    with pytest.raises(SimError, match=r"^backend.base_url must start with http:// or https://, got 'localhost:8000/v1'$"):
        openai("localhost:8000/v1", "aiohttp")


@pytest.mark.parametrize(
    ("environment", "url", "proxy"),
    [
        ({}, "https://api.example.com/v1", None),
        ({"https_proxy": "http://proxy:3128"}, "https://api.example.com/v1", "http://proxy:3128"),
        ({"http_proxy": "proxy:3128"}, "http://api.example.com/v1", "http://proxy:3128"),
        ({"all_proxy": "http://proxy:3128"}, "http://api.example.com/v1", "http://proxy:3128"),
        ({"https_proxy": "http://proxy:3128", "no_proxy": "api.example.com"}, "https://api.example.com/v1", None),
        ({"http_proxy": "http://proxy:3128", "no_proxy": "localhost:8000"}, "http://localhost:8000/v1", None),
        ({"http_proxy": "http://proxy:3128", "no_proxy": "localhost:8000"}, "http://localhost:9000/v1", "http://proxy:3128"),
    ],
)
def test_the_proxy_is_read_from_the_environment_as_httpx_reads_it(monkeypatch, environment: dict, url: str, proxy: str | None) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert environment_proxy(url) == proxy
