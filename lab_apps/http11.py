"""A lean HTTP/1.1 client for the load generator's hot path.

Why not httpx here: on this machine httpx.AsyncClient spends about 1.2 ms of
CPU per request even with keep-alive, so a generator built on it falls
behind schedule near 300 req/s on its core, before the apps it measures
saturate; without keep-alive (gunicorn's sync workers close every
connection) it is worse. A load generator must be much cheaper than what it
measures, so the requests go through this client, an ``asyncio.Protocol``
that writes a request and parses one response: status line, headers,
Content-Length or chunked bodies, keep-alive or close. Everything else in
the lab (health checks, the apps' own NoSQL calls) uses httpx.
"""

from __future__ import annotations

import asyncio
from collections import deque


class ResponseError(ConnectionError):
    """The connection failed or closed before a whole response arrived."""


class Response:
    __slots__ = ("status", "headers", "body", "sent")

    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body
        self.sent = 0.0  # loop time the request was written (after waiting for a connection)


class _Connection(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future | None = None
        self.open = True
        self.keep_alive = True
        self._reset()

    def _reset(self) -> None:
        self.status = 0
        self.headers: dict[str, str] | None = None
        self.length: int | None = None
        self.chunked = False
        self.body = bytearray()

    def connection_made(self, transport) -> None:
        self.transport = transport

    def connection_lost(self, exc) -> None:
        self.open = False
        if self.waiter is not None and not self.waiter.done():
            if self.headers is not None and self.length is None and not self.chunked:
                self._finish()  # a body delimited by the connection closing
            else:
                self.waiter.set_exception(ResponseError("connection closed before the response was complete"))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if self.waiter is None or self.waiter.done():
            return
        if self.headers is None:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            del self.buffer[:end + 4]
            try:
                self.status = int(head[0].split(" ", 2)[1])
            except (IndexError, ValueError):
                self.waiter.set_exception(ResponseError(f"bad status line {head[0]!r}"))
                return
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            self.headers = headers
            self.keep_alive = headers.get("connection", "").lower() != "close"
            self.chunked = "chunked" in headers.get("transfer-encoding", "").lower()
            if "content-length" in headers:
                self.length = int(headers["content-length"])
        if self.chunked:
            self._chunks()
        elif self.length is not None and len(self.buffer) >= self.length:
            self.body = self.buffer[:self.length]
            del self.buffer[:self.length]
            self._finish()

    def _chunks(self) -> None:
        while True:
            line_end = self.buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self.buffer[:line_end].split(b";")[0], 16)
            if len(self.buffer) < line_end + 2 + size + 2:
                return
            self.body += self.buffer[line_end + 2:line_end + 2 + size]
            del self.buffer[:line_end + 2 + size + 2]
            if size == 0:
                self._finish()
                return

    def _finish(self) -> None:
        response = Response(self.status, self.headers or {}, bytes(self.body))
        self._reset()
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(response)


class Client:
    """Requests to one host and port; reuses idle connections, opens more as needed,
    up to ``max_connections`` (then a request waits for one, as in wrk or a
    fixed pool of users: the coordinated-omission lesson)."""

    def __init__(self, host: str, port: int, max_connections: int = 1024) -> None:
        self.host, self.port = host, port
        self.idle: deque[_Connection] = deque()
        self.all: set[_Connection] = set()
        self.slots = asyncio.Semaphore(max_connections)

    async def request(self, method: str, path: str, body: bytes | None = None,
                      headers: dict[str, str] | None = None) -> Response:
        async with self.slots:
            return await self._request(method, path, body, headers)

    async def _request(self, method: str, path: str, body: bytes | None,
                       headers: dict[str, str] | None) -> Response:
        loop = asyncio.get_running_loop()
        conn = None
        while self.idle:
            candidate = self.idle.pop()
            if candidate.open:
                conn = candidate
                break
        if conn is None:
            _transport, conn = await loop.create_connection(_Connection, self.host, self.port)
            self.all.add(conn)
        lines = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        conn.waiter = loop.create_future()
        sent = loop.time()
        conn.transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        try:
            response = await conn.waiter
        except BaseException:
            conn.transport.close()  # a cancelled or failed exchange leaves the connection unusable
            self.all.discard(conn)
            raise
        finally:
            conn.waiter = None
        response.sent = sent
        if conn.keep_alive and conn.open:
            self.idle.append(conn)
        else:
            conn.transport.close()
            self.all.discard(conn)
        return response

    def close(self) -> None:
        for conn in self.all:
            if conn.transport is not None:
                conn.transport.close()
        self.all.clear()
        self.idle.clear()
