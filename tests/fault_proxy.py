"""A loopback HTTP proxy in front of an OpenAI-compatible server that injects faults at a configurable rate."""

from __future__ import annotations

import json
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("429_retry_after", "429", "500", "502", "503", "reset", "stall", "truncated", "not_json", "empty_content")
# Scripted entries beyond the faults: pass one request through untouched, or put CAMEL's user marker in front of
# the upstream model's real answer (a role flip when an assistant says it), for testing live guards.
FORWARD = "forward"
INSTRUCTION_MARKER = "instruction_marker"


class FaultProxy:
    """Forwards to `upstream`; each chat-completion request fails with probability `rate`, with the next of `faults`
    in turn, so that a run of a few times `len(faults) / rate` requests meets every kind."""

    def __init__(
        self,
        upstream: str,
        rate: float = 0.0,
        faults: tuple[str, ...] = FAULTS,
        stall_s: float = 3.0,
        seed: int = 0,
        required_key: str | None = None,
        script: tuple[str, ...] = (),
        retry_after_s: float = 0.2,
    ):
        self.upstream = upstream.rstrip("/")
        self.script = list(script)
        self.retry_after_s = retry_after_s
        self.required_key = required_key
        self.rate = rate
        self.faults = faults
        self.stall_s = stall_s
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """The proxy's OpenAI base URL."""
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def pick(self) -> str | None:
        """The fault for the next request (the scripted ones first), or None to forward it."""
        with self.lock:
            if self.script:
                fault = self.script.pop(0)
            else:
                fired = sum(self.counts[f] for f in self.faults)
                fault = self.faults[fired % len(self.faults)] if self.random.random() < self.rate else None
            fault = None if fault == FORWARD else fault
            self.counts[fault or "forwarded"] += 1
            return fault

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _authorized(self) -> bool:
                if proxy.required_key is None or self.headers.get("Authorization") == f"Bearer {proxy.required_key}":
                    return True
                error = json.dumps({"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}})
                self._send(401, error.encode(), {"Content-Type": "application/json"})
                return False

            def do_GET(self) -> None:
                if self._authorized():
                    self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if not self._authorized():
                    return
                fault = proxy.pick() if self.path.endswith("/chat/completions") else None
                try:
                    if fault is None:
                        self._forward(body)
                    else:
                        self._inject(fault, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _send(self, status: int, payload: bytes, headers: dict[str, str] | None = None, length: int | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload) if length is None else length))
                self.end_headers()
                self.wfile.write(payload)

            def _fetch(self, body: bytes | None) -> tuple[int, bytes]:
                request = urllib.request.Request(proxy.upstream + self.path.removeprefix("/v1"), data=body, method=self.command)
                request.add_header("Content-Type", "application/json")
                try:
                    with urllib.request.urlopen(request, timeout=300) as response:
                        return response.status, response.read()
                except urllib.error.HTTPError as error:
                    return error.code, error.read()

            def _forward(self, body: bytes | None) -> None:
                status, payload = self._fetch(body)
                self._send(status, payload, {"Content-Type": "application/json"})

            def _inject(self, fault: str, body: bytes) -> None:
                error = json.dumps({"error": {"message": f"injected {fault}", "type": "injected"}}).encode()
                if fault == INSTRUCTION_MARKER:
                    status, payload = self._fetch(body)
                    reply = json.loads(payload)
                    message = reply["choices"][0]["message"]
                    message["content"] = f"Instruction: {message['content']}"
                    self._send(status, json.dumps(reply).encode(), {"Content-Type": "application/json"})
                elif fault == "429_retry_after":
                    self._send(429, error, {"Content-Type": "application/json", "Retry-After": str(proxy.retry_after_s)})
                elif fault in ("429", "500", "502", "503"):
                    self._send(int(fault), error, {"Content-Type": "application/json"})
                elif fault == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    self.close_connection = True
                elif fault == "stall":
                    time.sleep(proxy.stall_s)
                    self.close_connection = True
                elif fault == "truncated":
                    payload = json.dumps({"id": "x", "object": "chat.completion", "choices": [{"index": 0}]}).encode()
                    self._send(200, payload[: len(payload) // 2], {"Content-Type": "application/json"}, length=len(payload))
                    self.close_connection = True
                elif fault == "not_json":
                    self._send(200, b"<html>gateway says hello</html>", {"Content-Type": "application/json"})
                elif fault == "empty_content":
                    message = {"role": "assistant", "content": ""}
                    payload = {
                        "id": "x", "object": "chat.completion", "created": 0, "model": "m",
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    }
                    self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        return Handler
