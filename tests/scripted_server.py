"""A loopback OpenAI-compatible server whose answers a test scripts: it plays a model (a judge, an annotator) by
a function of the request's messages, and records every request it was sent."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

MODEL = "scripted"
# answer(messages) -> the reply's text; messages as sent, a list of {"role": ..., "content": ...}.
Answer = Callable[[list[dict[str, Any]]], str]


class ScriptedServer:
    """Serves `/v1/models` and `/v1/chat/completions` on 127.0.0.1; each completion's text is `answer(messages)`.
    `requests` holds every chat request body received (with `slots`, every one a slot took), in order of arrival.
    Each answer reports a prompt token per word of the messages and a completion token per word of the reply, or
    the fixed (prompt, completion) `usage`.

    With `slots`, it answers that many completions at once, as a server with a fixed number of generation slots
    does, and turns each request beyond them away with HTTP 429 and `Retry-After: retry_after_s`. `attempts` holds
    (arrival time on the monotonic clock, status, body) of every completion request, `peak` the most it was
    handling at once."""

    def __init__(
        self,
        answer: Answer,
        model: str = MODEL,
        logprob: float | None = None,
        usage: tuple[int, int] | None = None,
        slots: int | None = None,
        retry_after_s: float = 1.0,
    ) -> None:
        self.answer = answer
        self.model = model
        self.logprob = logprob
        self.usage = usage
        self.slots = slots
        self.retry_after_s = retry_after_s
        self.requests: list[dict[str, Any]] = []
        self.attempts: list[tuple[float, int, dict[str, Any]]] = []
        self.busy = 0  # completion requests being handled now, turned away or not
        self.generating = 0  # of those, the ones a slot took
        self.peak = 0
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The server's OpenAI base URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def backend_args(self, prefix: str = "backend") -> list[str]:
        """Overrides that make `prefix` (`backend`, or a judge such as `analyzer.digression.judge`) this server."""
        args = [f"{prefix}.base_url={self.base_url}", f"{prefix}.model={self.model}", f"{prefix}.api_key_env=null"]
        return ([f"{prefix}=openai"] if prefix == "backend" else []) + args

    def wait_for_requests(self, count: int, timeout_s: float = 60) -> None:
        """Return once `count` requests have arrived, or after `timeout_s` (the test's own asserts then fail)."""
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)

    def __enter__(self) -> "ScriptedServer":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def admit(self, body: dict[str, Any]) -> bool:
        """Count a completion request in; whether a slot takes it (always, without `slots`)."""
        with self.lock:
            self.busy += 1
            self.peak = max(self.peak, self.busy)
            admitted = self.slots is None or self.generating < self.slots
            self.generating += admitted
            self.attempts.append((time.monotonic(), 200 if admitted else 429, body))
            return admitted

    def done(self, admitted: bool) -> None:
        """Count a completion request out once its answer is ready, before it is sent: a client that has it may send
        the next one at once, and finds the slot free, as with a server that frees a slot when generation ends."""
        with self.lock:
            self.busy -= 1
            self.generating -= admitted

    def completion(self, body: dict[str, Any]) -> dict[str, Any]:
        """The chat-completion response to one request body."""
        with self.lock:
            self.requests.append(body)
        text, finish_reason = self.answer(body.get("messages") or []), "stop"
        # As a model does, a reply longer than max_tokens (a word a token here) is cut there and says so.
        if (limit := body.get("max_tokens")) and len(text.split()) > limit:
            text, finish_reason = " ".join(text.split()[:limit]), "length"
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}
        if body.get("logprobs") and self.logprob is not None:
            choice["logprobs"] = {"content": [{"token": text, "logprob": self.logprob, "bytes": None, "top_logprobs": []}]}
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        prompt, completion = self.usage or (words, len(text.split()))
        return {
            "id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()), "model": self.model,
            "choices": [choice], "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/models"):
                    self._send(200, {"object": "list", "data": [{"id": server.model, "object": "model", "owned_by": "test"}]})
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                admitted = server.admit(body)
                try:
                    payload = server.completion(body) if admitted else {"error": {"message": "all slots are busy"}}
                finally:
                    server.done(admitted)
                if admitted:
                    self._send(200, payload)
                else:
                    self._send(429, payload, {"Retry-After": str(server.retry_after_s)})

        return Handler
