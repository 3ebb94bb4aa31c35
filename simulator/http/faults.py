"""Faults on inbound API calls: the surface hook that asks the simulator's features (fault scenarios)
about each call, and notes what the server must do.

Only operations that declare ``x-fault-statuses`` in ``openapi.yaml`` are asked about (never the
``/_sim/`` control plane); the rule that fired goes into the journal entry's ``rule``.

==========  =====================================================================================
RESPOND     the scenario's status/headers/JSON body instead of the handler (after ``latency``)
PASS        the handler runs as usual; extra headers (limiter) are added; answered after ``latency``
DROP        the handler does not run; the connection is closed without an answer
RESET       the handler does not run; the connection is reset (TCP RST)
MALFORMED   the handler runs; its status goes out with the JSON body cut in half (invalid on purpose)
==========  =====================================================================================

Every injected answer is valid against ``openapi.yaml`` (scenario files may only use the statuses it
documents), except MALFORMED, whose whole point is a body that is not valid JSON. The socket tricks
(latency, drop, reset, cutting the body) are the server adapter's: :mod:`qstash_sim.http.aiohttp_app`.
Latency is real time (an SDK's timeout is a wall-clock timer), at most ``MAX_INBOUND_LATENCY_MS`` (30 s).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from qstash_sim.core.feature import FiredKind, InboundContext
from qstash_sim.errors import ApiError
from qstash_sim.http.dispatch import NO_RESPONSE
from qstash_sim.http.headers import parse_destination
from qstash_sim.http.surface import Ctx, Hook, Reply

__all__ = ["FaultHook"]


class FaultHook(Hook):
    """Asks the simulator's features about every call of an operation in ``allowed`` (``x-fault-statuses``)."""

    def __init__(self, allowed: Mapping[str, frozenset[int]]) -> None:
        self.allowed = dict(allowed)

    def before(self, ctx: Ctx) -> Reply | None:
        """Answer now (RESPOND, DROP, RESET) or leave a note for the server (PASS, MALFORMED)."""
        if ctx.op.operation_id not in self.allowed:
            return None
        fired = ctx.sim.inbound(_context(ctx))
        if fired is None:
            return None
        ctx.entry.rule = fired.rule
        ctx.state["fault"] = fired
        if fired.kind is FiredKind.RESPOND:
            assert fired.status is not None
            if isinstance(fired.body, dict) and isinstance(fired.body.get("error"), str):
                ctx.entry.error = fired.body["error"]
            return Reply(fired.body, fired.status, dict(fired.headers), fault=fired)
        if fired.kind in (FiredKind.DROP, FiredKind.RESET):
            return Reply(None, NO_RESPONSE, fault=fired)  # the server closes the connection instead
        return None  # PASS, MALFORMED: the handler runs


def _context(ctx: Ctx) -> InboundContext:
    """What the matcher sees of a call: operation, method, raw path, account, queue, destination, headers."""
    request, params = ctx.request, ctx.params
    queue = params.get("queueName")
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
        url=request.url,
    )
