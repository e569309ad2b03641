"""A tiny HTTP/1.1 server on asyncio streams (keep-alive, Content-Length bodies) that can
also misbehave at the transport level: hang, reset the connection, stream a huge body.

Raw streams rather than a framework so the fakes control every byte the client sees.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

__all__ = ["Answer", "HttpServer", "Request"]

_REASONS = {
    200: "OK",
    201: "Created",
    304: "Not Modified",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    # transport-level misbehaviour: "hang", "reset", "huge"
    action: str | None = None


Handler = Callable[[Request], Awaitable[Answer]]


class HttpServer:
    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def start(self, port: int = 0) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port, backlog=1024)
        self.port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)  # type: ignore[arg-type]
        try:
            while True:
                request = await self._read(reader)
                if request is None:
                    break
                answer = await self.handler(request)
                if not await self._write(writer, answer):
                    break
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            # Stopping the fake ends the connection quietly; asyncio's stream callback
            # would otherwise report a cancelled handler as an error.
            pass
        finally:
            self._tasks.discard(task)  # type: ignore[arg-type]
            writer.close()

    async def _read(self, reader: asyncio.StreamReader) -> Request | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if ":" in line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0") or 0))
        parts = urlsplit(target)
        return Request(method, parts.path, dict(parse_qsl(parts.query)), headers, body)

    async def _write(self, writer: asyncio.StreamWriter, answer: Answer) -> bool:
        if answer.action == "hang":
            await asyncio.sleep(3600)
        if answer.action == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        reason = _REASONS.get(answer.status, "Status")
        head = [f"HTTP/1.1 {answer.status} {reason}"]
        headers = dict(answer.headers)
        if answer.action == "huge":
            headers["Connection"] = "close"  # no length: the client reads until close
        else:
            headers["Content-Length"] = str(len(answer.body))
        head += [f"{k}: {v}" for k, v in headers.items()]
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        if answer.action == "huge":
            chunk = b"[" + b"0," * 65536
            for _ in range(20 * 1024 * 1024 // len(chunk)):
                writer.write(chunk)
                await writer.drain()
            return False
        writer.write(answer.body)
        await writer.drain()
        return True
