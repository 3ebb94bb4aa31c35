"""Fault scenarios on inbound API calls: the ``before`` hook and the middleware that carry out a
:class:`~simulator.scenarios.Fired`.

Installed by :func:`install` (from ``build_app``), first in the dispatcher's ``before`` list, so a scenario
answers before the payment layer. Only operations that declare ``x-fault-statuses`` in ``openapi.yaml`` are
matched (never ``/_sim/...``); the rule that fired goes into the journal entry's ``rule``.

==========  =====================================================================================
RESPOND     the scenario's status/headers/JSON body instead of the handler (after ``latency``)
PASS        the handler runs as usual; extra headers (limiter) are added; answered after ``latency``
DROP        the handler does not run; the connection is closed without an answer
RESET       the handler does not run; the connection is reset (``SO_LINGER`` 0, then abort: TCP RST)
MALFORMED   the handler runs; its status goes out with the JSON body cut in half (invalid on purpose)
==========  =====================================================================================

Every injected answer is valid against ``openapi.yaml`` (scenario files may only use the statuses it
documents), except MALFORMED, whose whole point is a body that is not valid JSON.

Latency is real time (an SDK's timeout is a wall-clock timer), at most ``MAX_INBOUND_LATENCY_MS`` (30 s); it
does not move the virtual clock. Dropped, reset and malformed calls are journalled with ``outcome``
``drop``/``reset``/``malformed``; a dropped or reset call has ``status: null``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from qstash_sim.errors import ApiError
from qstash_sim.http.dispatch import Ctx, Dispatcher, json_response
from qstash_sim.http.headers import parse_destination
from qstash_sim.scenarios.loader import MAX_INBOUND_LATENCY_MS
from qstash_sim.scenarios.runtime import Fired, FiredKind, InboundContext

__all__ = ["APP_FAULTS", "FaultHook", "install"]

# Placeholder status of a dropped/reset call (nginx's "closed without response"); never reaches the wire.
_NO_RESPONSE = 444


@dataclass(slots=True)
class _Pending:
    fired: Fired
    ctx: Ctx


_KEY: web.RequestKey[_Pending] = web.RequestKey("qstash_sim.fault", _Pending)


class FaultHook:
    """The scenario layer of one app: ``hook`` (a dispatcher ``before`` hook) and ``middleware``.

    ``sleep`` is how latency is waited for (``asyncio.sleep``); tests replace it to observe the delay
    without waiting.
    """

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.sim = dispatcher.sim
        contract = dispatcher.contract
        self.allowed: dict[str, set[int]] = {
            op_id: {int(s) for s in op.extensions["x-fault-statuses"]}
            for op_id, op in contract.operations.items()
            if "x-fault-statuses" in op.extensions
        }
        self.sim.chaos.use_contract(self.allowed)
        self.sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep

    async def hook(self, ctx: Ctx) -> web.StreamResponse | None:
        """Dispatcher ``before`` hook: ask the scenarios about this call; answer now or leave a note."""
        op_id = ctx.op.operation_id
        scenarios = self.sim.chaos.scenarios
        if op_id not in self.allowed or len(scenarios) == 0:
            return None
        request = ctx.request
        fired = scenarios.match_inbound(_context(ctx), self.sim.world.now, self.sim.world.faults)
        if fired is None:
            return None
        ctx.entry.rule = fired.rule
        request[_KEY] = _Pending(fired, ctx)
        if fired.kind is FiredKind.RESPOND:
            assert fired.status is not None
            ctx.entry.status = fired.status
            if isinstance(fired.body, dict) and isinstance(fired.body.get("error"), str):
                ctx.entry.error = fired.body["error"]
            return json_response(fired.body, fired.status, dict(fired.headers) or None)
        if fired.kind in (FiredKind.DROP, FiredKind.RESET):
            return web.Response(status=_NO_RESPONSE)  # the middleware closes the connection instead
        return None  # PASS, MALFORMED: the handler runs

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """Carry out what :meth:`hook` decided, after the dispatcher (and the handler, if it ran)."""
        response = await handler(request)
        pending: _Pending | None = request.get(_KEY)
        if pending is None:
            return response
        fired, entry = pending.fired, pending.ctx.entry
        if fired.latency_ms > 0:
            await self.sleep(min(fired.latency_ms, MAX_INBOUND_LATENCY_MS) / 1000)
        kind = fired.kind
        if kind in (FiredKind.DROP, FiredKind.RESET):
            entry.status = None
            entry.outcome = kind.value
            entry.error = f"connection {'dropped' if kind is FiredKind.DROP else 'reset'} by scenario rule {fired.rule}"
            _close(request, reset=kind is FiredKind.RESET)
            return response  # aiohttp cannot write it to the closed transport and moves on
        if kind is FiredKind.MALFORMED and isinstance(response, web.Response):
            body = response.body if isinstance(response.body, bytes) else b""
            response.body = body[: max(1, len(body) // 2)]
            entry.outcome = kind.value
            return response
        if fired.headers and kind is FiredKind.PASS:
            response.headers.update(fired.headers)
        return response


def _context(ctx: Ctx) -> InboundContext:
    """What the matcher sees of a call: operation, method, raw path, account, queue, destination, headers."""
    request, params = ctx.request, ctx.params
    queue = params.get("queueName")
    if queue is None and ctx.op.path_template.startswith("/v1/qstash/queues/"):
        queue = params.get("name")
    if queue is None:
        queue = request.headers.get("Upstash-Queue-Name")
    destination = params.get("destination")
    if destination is not None:
        with contextlib.suppress(ApiError):  # an invalid destination is the handler's 400; match it raw
            destination = parse_destination(destination)
    return InboundContext(
        operation=ctx.op.operation_id,
        method=request.method,
        path=request.raw_path,
        account=ctx.caller.account,
        queue=queue,
        destination=destination,
        headers=dict(request.headers),
        url=f"{request.scheme}://{request.host}{request.raw_path}",
    )


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


APP_FAULTS: web.AppKey[FaultHook] = web.AppKey("faults", FaultHook)


def install(app: web.Application, dispatcher: Dispatcher) -> FaultHook:
    """Put the scenario layer first in ``dispatcher.before`` (ahead of the payment layer) and its middleware
    around the dispatcher. Call it after every other ``before`` hook is installed."""
    faults = FaultHook(dispatcher)
    dispatcher.before.insert(0, faults.hook)
    app.middlewares.append(faults.middleware)
    app[APP_FAULTS] = faults
    return faults
