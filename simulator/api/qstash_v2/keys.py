"""``/v2/keys`` (signing keys, also qstash-js' dev-mode probe) and the flow-control reads
(``/v2/flowControl``, ``/v2/globalParallelism``): what exists, truthfully (nothing is enforced yet)."""

from __future__ import annotations

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.core import flowview
from qstash_sim.http.surface import Ctx, Reply

__all__ = [
    "get_flow_control_key",
    "get_global_parallelism",
    "get_signing_keys",
    "list_flow_control_keys",
    "rotate_signing_keys",
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
    """GET /v2/globalParallelism: the account's attempts in flight; no limit (``parallelismMax`` 0)."""
    count = sum(1 for m in ctx.sim.account(ctx.caller.account).messages.values() if flowview.in_flight(m))
    return Reply({"parallelismMax": 0, "parallelismCount": count})
