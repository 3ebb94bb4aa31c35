"""Loopback destinations that misbehave, for the nothing-lost soak (issue 11, H1).

Each :class:`HostileSink` listens on its own 127.0.0.1 port and does one thing to every connection, so a
message's behaviour is its destination's port:

* ``retry-after``: 503 with a 400-digit ``Retry-After`` and garbage ``X-RateLimit-Reset*`` values;
* ``garbage``: bytes that are not HTTP, then close;
* ``reset-connect``: a TCP RST (``SO_LINGER`` 0) as soon as the connection is accepted;
* ``reset-request``: a TCP RST once the whole request has been read;
* ``hang``: reads the request and never answers (until the simulator hangs up);
* ``huge``: 200 with a chunked body of 1 MiB + 64 KiB, streamed chunk by chunk;
* ``non-retryable``: 489 with ``Upstash-NonRetryable-Error: true``.

Every request read is recorded like the well-behaved sink does (message id and ``Upstash-Retried``, body,
path), and every connection counted, so the test can check that each real attempt reached its destination
exactly once. Each connection's handler is bounded in time (:data:`HANDLER_TIMEOUT_S`); nothing sleeps.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import struct
from collections import Counter
from dataclasses import dataclass, field


class Behaviour(enum.StrEnum):
    """What a destination does; ``OK`` is the well-behaved sink of the soak itself."""

    OK = "ok"
    RETRY_AFTER = "retry-after"
    GARBAGE = "garbage"
    RESET_CONNECT = "reset-connect"
    RESET_REQUEST = "reset-request"
    HANG = "hang"
    HUGE = "huge"
    NON_RETRYABLE = "non-retryable"


HOSTILE = tuple(b for b in Behaviour if b is not Behaviour.OK)
HANDLER_TIMEOUT_S = 30.0  # the most one connection is served (a hang is cut by the simulator after 1 s)
RETRY_AFTER_VALUE = "1" * 400  # 400 digits: once overflowed float() inside the engine (finding H1)
# Garbage in the other headers a destination may ask a delay with; none of them is a usable delay.
RATE_LIMIT_GARBAGE = (
    "NaN",
    "-1",
    "1e999",
    "9" * 400,
    "Tue, 99 Foo 99999 99:99:99 GMT",
    "0x10",
    "soon",
    "99999999999h",
    "inf",
    "5m-10s",
)
GARBAGE_BYTES = b"\x00\x01\xfe\xffSSH-2.0-certainly-not-http\r\n\r\n" + bytes(range(256)) * 4
HUGE_CHUNK = 64 * 1024
HUGE_CHUNKS = 17  # 1 MiB + 64 KiB: more than the simulator keeps of an answer (it stops reading at 1 MiB)
NON_RETRYABLE_BODY = b'{"error":"do not retry this"}'


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST instead of a FIN: linger on, timeout 0, then abort."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass(slots=True)
class Request:
    path: str
    headers: dict[str, str]
    body: bytes


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    """One HTTP/1.1 request with a ``Content-Length`` body (what the simulator sends), or ``None`` at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head[:-4].decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(lines[0].split(" ")[1], headers, body)


@dataclass(slots=True)
class HostileSink:
    """One misbehaving destination on its own port."""

    behaviour: Behaviour
    seen: Counter[tuple[str, int]] = field(default_factory=Counter)  # (message id, retried) -> requests
    bodies: dict[str, bytes] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    open: int = 0  # connections open right now
    accepted: asyncio.Event = field(default_factory=asyncio.Event)  # set at each new connection
    failures: list[str] = field(default_factory=list)  # what went wrong on our side (must stay empty)
    server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> int:
        """Listen on 127.0.0.1 (any free port); return the port."""
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self.open += 1
        self.accepted.set()
        try:
            await asyncio.wait_for(self._one(reader, writer), HANDLER_TIMEOUT_S)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the simulator hung up (after 1 MiB of a huge body, at the timeout of a hang): expected
        except TimeoutError:
            self.failures.append(f"{self.behaviour}: a connection outlived {HANDLER_TIMEOUT_S}s")
        except Exception as exc:  # a bug of this module: reported by the test, never swallowed
            self.failures.append(f"{self.behaviour}: {type(exc).__name__}: {exc}")
        finally:
            self.open -= 1
            if not writer.transport.is_closing():
                writer.close()
            self._tasks.discard(task)

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        b = self.behaviour
        if b is Behaviour.RESET_CONNECT:
            _rst(writer)
            return
        req = await _read_request(reader)
        if req is None:
            return
        mid = req.headers["upstash-message-id"]
        self.seen[(mid, int(req.headers["upstash-retried"]))] += 1
        self.bodies[mid] = req.body
        self.paths[mid] = req.path
        if b is Behaviour.RETRY_AFTER:
            n = int(req.path.rstrip("/").rsplit("/", 1)[-1])
            body = b'{"error":"slow down"}'
            writer.write(
                (
                    "HTTP/1.1 503 Service Unavailable\r\n"
                    f"Retry-After: {RETRY_AFTER_VALUE}\r\n"
                    f"X-RateLimit-Reset: {RATE_LIMIT_GARBAGE[n % len(RATE_LIMIT_GARBAGE)]}\r\n"
                    f"X-RateLimit-Reset-Requests: {RATE_LIMIT_GARBAGE[(n + 1) % len(RATE_LIMIT_GARBAGE)]}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
                ).encode()
                + body
            )
            await writer.drain()
        elif b is Behaviour.GARBAGE:
            writer.write(GARBAGE_BYTES)
            await writer.drain()
        elif b is Behaviour.RESET_REQUEST:
            _rst(writer)
        elif b is Behaviour.HANG:
            await reader.read()  # until the simulator gives up on us (EOF), bounded by HANDLER_TIMEOUT_S
        elif b is Behaviour.HUGE:
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            chunk = f"{HUGE_CHUNK:x}\r\n".encode() + b"x" * HUGE_CHUNK + b"\r\n"
            for _ in range(HUGE_CHUNKS):
                writer.write(chunk)
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        elif b is Behaviour.NON_RETRYABLE:
            writer.write(
                (
                    "HTTP/1.1 489 Non Retryable\r\nUpstash-NonRetryable-Error: true\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(NON_RETRYABLE_BODY)}\r\nConnection: close\r\n\r\n"
                ).encode()
                + NON_RETRYABLE_BODY
            )
            await writer.drain()
        else:
            raise AssertionError(f"not a hostile behaviour: {b}")
