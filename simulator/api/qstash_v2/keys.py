"""``/v2/keys`` (signing keys, also qstash-js' dev-mode probe) and flow control (``/v2/flowControl``:
the keys, their waitlists and counters, pause, resume, pin, unpin, resetRate; ``/v2/globalParallelism``)."""

from __future__ import annotations

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.core import flowview
from qstash_sim.http.surface import Ctx, Reply

__all__ = [
    "get_flow_control_key",
    "get_global_parallelism",
    "get_signing_keys",
    "list_flow_control_keys",
    "pause_flow_control_key",
    "pin_flow_control_key",
    "reset_flow_control_rate",
    "resume_flow_control_key",
    "rotate_signing_keys",
    "unpin_flow_control_key",
]


async def get_signing_keys(ctx: Ctx) -> Reply:
    """GET /v2/keys: the keys that sign this account's deliveries (``current``) and the next ones."""
    keys = ctx.sim.account(ctx.caller.account).signing_keys
    return Reply({"current": keys.current, "next": keys.next})


async def rotate_signing_keys(ctx: Ctx) -> Reply:
    """POST /v2/keys/rotate: ``next`` becomes ``current``; a new ``next`` is drawn from the seed."""
    keys = ctx.sim.rotate_signing_keys(ctx.caller.account)
    return Reply({"current": keys.current, "next": keys.next})


async def list_flow_control_keys(ctx: Ctx) -> Reply:
    """GET /v2/flowControl"""
    return Reply([wire.flow_key(v) for v in flowview.flow_keys(ctx.sim, ctx.caller)])


async def get_flow_control_key(ctx: Ctx) -> Reply:
    """GET /v2/flowControl/{flowControlKey}"""
    return Reply(wire.flow_key(flowview.flow_key(ctx.sim, ctx.caller, ctx.params["flowControlKey"])))


async def get_global_parallelism(ctx: Ctx) -> Reply:
    """GET /v2/globalParallelism: the account's attempts in flight; the simulator's cap (0: none)."""
    cap, count = flowview.global_parallelism(ctx.sim, ctx.caller)
    return Reply({"parallelismMax": cap, "parallelismCount": count})


async def pause_flow_control_key(ctx: Ctx) -> Reply:
    """POST /v2/flowControl/{flowControlKey}/pause"""
    return Reply(wire.flow_key(flowview.pause(ctx.sim, ctx.caller, ctx.params["flowControlKey"])))


async def resume_flow_control_key(ctx: Ctx) -> Reply:
    """POST /v2/flowControl/{flowControlKey}/resume"""
    return Reply(wire.flow_key(flowview.resume(ctx.sim, ctx.caller, ctx.params["flowControlKey"])))


async def pin_flow_control_key(ctx: Ctx) -> Reply:
    """POST /v2/flowControl/{flowControlKey}/pin?parallelism=&rate=&period="""
    q = ctx.query
    view = flowview.pin(
        ctx.sim,
        ctx.caller,
        ctx.params["flowControlKey"],
        parallelism=q.get("parallelism"),
        rate=q.get("rate"),
        period_s=q.get("period"),
    )
    return Reply(wire.flow_key(view))


async def unpin_flow_control_key(ctx: Ctx) -> Reply:
    """POST /v2/flowControl/{flowControlKey}/unpin?parallelism=true&rate=true"""
    q = ctx.query
    view = flowview.unpin(
        ctx.sim,
        ctx.caller,
        ctx.params["flowControlKey"],
        parallelism=bool(q.get("parallelism")),
        rate=bool(q.get("rate")),
    )
    return Reply(wire.flow_key(view))


async def reset_flow_control_rate(ctx: Ctx) -> Reply:
    """POST /v2/flowControl/{flowControlKey}/resetRate"""
    return Reply(wire.flow_key(flowview.reset_rate(ctx.sim, ctx.caller, ctx.params["flowControlKey"])))
