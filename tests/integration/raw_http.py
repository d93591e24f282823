"""HTTP/1.1 over a raw socket, for requests no well-behaved client sends (tests only).

Malformed heads, lying Content-Length, chunked bodies, and bodies trickled byte by byte; the
answer records how long the server took and whether it closed without answering.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Answer:
    """The first response on the connection; `status` None when closed without one."""

    status: int | None
    body: bytes
    seconds: float

    @property
    def reason(self) -> str | None:
        """The contract's body `status`, when the body is one of ingest's JSON answers."""
        with contextlib.suppress(ValueError):
            value = json.loads(self.body)
            if isinstance(value, dict):
                return str(value.get("status"))
        return None


def request_head(
    headers: Sequence[tuple[str, str]], path: str = "/webhooks/stripe", method: str = "POST"
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *(f"{k}: {v}" for k, v in headers)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(*chunks: bytes) -> list[bytes]:
    """Chunked transfer encoding frames for `chunks`, then the last chunk."""
    return [b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks] + [b"0\r\n\r\n"]


async def exchange(
    port: int,
    parts: Sequence[bytes],
    pause: float = 0.0,
    timeout: float = 30.0,
    hold_open: bool = True,
) -> Answer:
    """Send `parts` (sleeping `pause` between them) while reading the first response.

    The connection stays open after the last part (`hold_open`), as a slow or lying client
    keeps it: only the server decides when the exchange ends.
    """
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def send() -> None:
        with contextlib.suppress(ConnectionError):
            for index, part in enumerate(parts):
                if index and pause:
                    await asyncio.sleep(pause)
                writer.write(part)
                await writer.drain()
            if not hold_open:
                writer.write_eof()

    sender = asyncio.create_task(send())
    try:
        async with asyncio.timeout(timeout):
            answer = await _read_response(reader)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()
    status, body = answer
    return Answer(status, body, time.monotonic() - started)


async def _read_response(reader: asyncio.StreamReader) -> tuple[int | None, bytes]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None, b""
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines if line)
    }
    length = int(headers.get("content-length", "0"))
    with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
        return int(status_line.split()[1]), await reader.readexactly(length)
    return int(status_line.split()[1]), b""
