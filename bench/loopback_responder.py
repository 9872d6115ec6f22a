"""A minimal OpenAI-compatible chat endpoint on loopback that answers every request after a fixed latency.

Run as its own process so that its CPU time is not counted as the harness's:
    python bench/loopback_responder.py --port 8765 --latency-ms 200

With `--slots N` it generates N answers at once, as a server with N generation slots does, and turns every request
beyond them away at once with HTTP 429 and `Retry-After: --retry-after`; GET /stats says how many requests it
answered and turned away.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import dataclass
from typing import Optional

COMPLETION = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 0,
        "model": "bench",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Instruction: continue with the next step.\nInput: None"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 100, "completion_tokens": 12, "total_tokens": 112},
    }
).encode()
MODELS = json.dumps({"object": "list", "data": [{"id": "bench", "object": "model", "owned_by": "bench"}]}).encode()
BUSY = json.dumps({"error": {"message": "all slots are busy", "type": "rate_limit_exceeded"}}).encode()


@dataclass
class Slots:
    """Generation slots (None: as many as requests) and what the server answered so far."""

    size: Optional[int]
    retry_after_s: float
    busy: int = 0
    answered: int = 0
    refused: int = 0


def response(body: bytes, status: str = "200 OK", headers: str = "") -> bytes:
    """An HTTP/1.1 keep-alive response carrying `body`."""
    head = f"HTTP/1.1 {status}\r\n{headers}Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def answer(slots: Slots, latency_s: float) -> bytes:
    """A completion after `latency_s`, or at once a 429 when every slot is busy."""
    if slots.size is not None and slots.busy >= slots.size:
        slots.refused += 1
        return response(BUSY, "429 Too Many Requests", f"Retry-After: {slots.retry_after_s:g}\r\n")
    slots.busy += 1
    try:
        await asyncio.sleep(latency_s)
    finally:
        slots.busy -= 1  # free before the answer goes out, as a server frees a slot when generation ends
    slots.answered += 1
    return response(COMPLETION)


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency_s: float, slots: Slots) -> None:
    """Answer requests on one connection until the client closes it."""
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if length:
                await reader.readexactly(length)
            method, path = head.split(b" ", 2)[:2]
            if method == b"GET" and path.endswith(b"/stats"):
                writer.write(response(json.dumps({"answered": slots.answered, "refused": slots.refused}).encode()))
            elif method == b"GET":
                writer.write(response(MODELS))
            else:
                writer.write(await answer(slots, latency_s))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionResetError):
        pass
    finally:
        writer.close()


async def main(port: int, latency_s: float, slots: Slots) -> None:
    """Serve until killed."""
    server = await asyncio.start_server(lambda r, w: serve_connection(r, w, latency_s, slots), "127.0.0.1", port, backlog=1024)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--latency-ms", type=float, default=200.0)
    parser.add_argument("--slots", type=int, help="answers generated at once; 429 beyond them (default: no limit)")
    parser.add_argument("--retry-after", type=float, default=1.0, help="seconds a 429 asks the client to wait")
    args = parser.parse_args()
    asyncio.run(main(args.port, args.latency_ms / 1000, Slots(args.slots, args.retry_after)))
