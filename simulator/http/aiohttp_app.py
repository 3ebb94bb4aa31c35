"""The aiohttp adapter: one catch-all route that hands every request to the :class:`Dispatcher`.

:func:`build_app` builds the application from a list of surfaces (``qstash_sim.api.default_surfaces()``:
the ones qstash-sim serves). The adapter turns an ``aiohttp.web.Request`` into an
:class:`~qstash_sim.http.surface.InboundRequest` (reading the body within the limits), the dispatcher's
:class:`~qstash_sim.http.dispatch.Response` into an ``aiohttp.web.Response``, and carries out a fault
scenario's socket tricks: latency (real time), a dropped or reset connection, a body cut short.
Errors aiohttp raises itself (its own 404/405/413) get QStash's JSON body too.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiohttp import web

from qstash_sim.core.feature import FiredKind
from qstash_sim.errors import PayloadTooLarge
from qstash_sim.http.dispatch import (
    DEFAULT_MAX_BODY,
    DEFAULT_READ_TIMEOUT,
    Dispatcher,
    Response,
    encode_json,
)
from qstash_sim.http.protocol import DEFAULT_MAX_HEADER_SIZE, handler_args
from qstash_sim.http.surface import InboundRequest, Surface
from qstash_sim.scenarios.loader import MAX_INBOUND_LATENCY_MS
from qstash_sim.simulator import Simulator

__all__ = ["APP_DISPATCHER", "APP_FAULTS", "APP_SIM", "FaultRunner", "build_app"]

_JSON = "application/json"


class FaultRunner:
    """Carries out a fault's socket trick while answering. ``sleep`` waits the latency (tests replace it)."""

    def __init__(self) -> None:
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    async def apply(self, request: web.Request, response: Response, out: web.Response) -> web.StreamResponse:
        fault = response.fault
        assert fault is not None
        if fault.latency_ms > 0:
            await self.sleep(min(fault.latency_ms, MAX_INBOUND_LATENCY_MS) / 1000)
        if fault.kind in (FiredKind.DROP, FiredKind.RESET):
            _close(request, reset=fault.kind is FiredKind.RESET)
            return out  # aiohttp cannot write it to the closed transport and moves on
        if fault.kind is FiredKind.MALFORMED:
            out.body = response.body[: max(1, len(response.body) // 2)]
        return out


def _close(request: web.Request, *, reset: bool) -> None:
    transport = request.transport
    if transport is None or transport.is_closing():
        return
    if reset:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # Linger on, timeout 0: close() sends RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


def _body_reader(request: web.Request) -> Callable[[int], Awaitable[bytes]]:
    async def read(limit: int) -> bytes:
        """The body, refused (413) as soon as it is known to exceed ``limit``: never buffering more."""
        length = request.content_length
        if length is not None and length > limit:
            raise PayloadTooLarge(f"body: {length} bytes is over the limit of {limit} bytes")
        content = request.content
        if content.is_eof():  # the whole body arrived with the head
            return content.read_nowait()
        if not request.body_exists:
            return b""
        chunks: list[bytes] = []
        size = 0
        async for chunk in content.iter_chunked(65536):
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body: over the limit of {limit} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    return read


@web.middleware
async def http_errors_as_json(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Outermost: an error aiohttp raises itself (``web.HTTPException``: 404/405/413...) gets QStash's JSON body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return web.Response(
            body=encode_json({"error": text}).encode(), status=exc.status, headers=headers, content_type=_JSON
        )


async def _send_stream(request: web.Request, response: Response, stopping: asyncio.Event) -> web.StreamResponse:
    """Send ``response.stream`` chunk by chunk until it ends, the client leaves or the server stops."""
    assert response.stream is not None
    out = web.StreamResponse(status=response.status, headers=response.headers)
    chunks = response.stream
    stop = asyncio.ensure_future(stopping.wait())
    try:
        await out.prepare(request)
        while not stopping.is_set():
            nxt = asyncio.ensure_future(anext(chunks))
            await asyncio.wait((nxt, stop), return_when=asyncio.FIRST_COMPLETED)
            if not nxt.done():
                nxt.cancel()
                await asyncio.gather(nxt, return_exceptions=True)  # let the generator see it before aclose
                break
            try:
                chunk = nxt.result()
            except StopAsyncIteration:
                break
            await out.write(chunk)
    except (ConnectionError, RuntimeError):  # the client went away (aiohttp raises either)
        pass
    finally:
        stop.cancel()
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()
    return out


APP_SIM: web.AppKey[Simulator] = web.AppKey("sim", Simulator)
APP_DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher", Dispatcher)
APP_FAULTS: web.AppKey[FaultRunner] = web.AppKey("faults", FaultRunner)


def build_app(
    sim: Simulator,
    surfaces: Sequence[Surface],
    *,
    max_body: int = DEFAULT_MAX_BODY,
    strict: bool | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
) -> web.Application:
    """The aiohttp application serving ``sim`` through ``surfaces`` (``qstash_sim.api.default_surfaces()``
    gives the ones ``qstash-sim serve`` offers).

    ``read_timeout``: seconds a request head, then its body, may take to arrive (408 after that; the head
    part needs :func:`qstash_sim.server.start_site`). ``max_header_size``: the HTTP parser's limit on the
    request line and on each header field, in bytes (a larger one is refused with 400).
    """
    dispatcher = Dispatcher(sim, surfaces, max_body=max_body, read_timeout=read_timeout, strict=strict)
    sim.scenarios.use_contract(dispatcher.fault_statuses())
    faults = FaultRunner()
    stopping = asyncio.Event()  # set when the server stops: open streams end at once

    async def handle(request: web.Request) -> web.StreamResponse:
        inbound = InboundRequest(
            method=request.method,
            raw_path=request.raw_path,
            headers=request.headers,
            query=request.query,
            scheme=request.scheme,
            host=request.host,
            remote=request.remote,
            read_body=_body_reader(request),
        )
        response = await dispatcher.dispatch(inbound)
        if response.stream is not None:
            return await _send_stream(request, response, stopping)
        typed = any(k.lower() == "content-type" for k in response.headers)
        out = web.Response(
            body=response.body,
            status=response.status,
            headers=response.headers or None,
            content_type=None if typed else _JSON,
        )
        if response.fault is not None:
            return await faults.apply(request, response, out)
        return out

    # aiohttp's own limit is above ours so that our reader answers 413 with the QStash body.
    app = web.Application(client_max_size=max_body + 1, handler_args=handler_args(max_header_size))
    app.middlewares.append(http_errors_as_json)
    app[APP_SIM] = sim
    app[APP_DISPATCHER] = dispatcher
    app[APP_FAULTS] = faults
    # Every path, newlines and odd escapes included (aiohttp matches the decoded path; ".*" stops at "\n"):
    # routing is the contract's job (404/405 with the JSON body), never aiohttp's.
    app.router.add_route("*", r"/{tail:[\s\S]*}", handle)

    async def _start(_: web.Application) -> None:
        sim.start()

    async def _stop(_: web.Application) -> None:
        await sim.close()

    async def _shutdown(_: web.Application) -> None:
        stopping.set()

    app.on_startup.append(_start)
    app.on_shutdown.append(_shutdown)
    app.on_cleanup.append(_stop)
    return app
