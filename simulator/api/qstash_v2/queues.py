"""``/v2/queues``: upsert (parallelism, paused), list, get (``lag``), delete, pause, resume."""

from __future__ import annotations

from typing import Any

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.http.headers import check_name
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["delete_queue", "get_queue", "list_queues", "pause_queue", "resume_queue", "upsert_queue"]


def _name(ctx: Ctx) -> str:
    return check_name(ctx.params["queueName"], "path queueName")


async def upsert_queue(ctx: Ctx) -> Reply:
    """POST /v2/queues ``{"queueName", "parallelism"?, "paused"?}``: the queue after the change."""
    body: dict[str, Any] = ctx.json if isinstance(ctx.json, dict) else {}
    name = check_name(str(body.get("queueName", "")), "body /queueName")
    q = ctx.sim.upsert_queue(ctx.caller, name, parallelism=body.get("parallelism"), paused=body.get("paused"))
    return Reply(wire.queue(q))


async def list_queues(ctx: Ctx) -> Reply:
    """GET /v2/queues"""
    return Reply([wire.queue(q) for q in ctx.sim.list_queues(ctx.caller)])


async def get_queue(ctx: Ctx) -> Reply:
    """GET /v2/queues/{queueName}"""
    return Reply(wire.queue(ctx.sim.get_queue(ctx.caller, _name(ctx))))


async def delete_queue(ctx: Ctx) -> Reply:
    """DELETE /v2/queues/{queueName}: its messages that are not final are cancelled."""
    name = _name(ctx)
    return Reply({"deleted": name, "cancelled": ctx.sim.delete_queue(ctx.caller, name)})


async def pause_queue(ctx: Ctx) -> Reply:
    """POST /v2/queues/{queueName}/pause"""
    return Reply(wire.queue(ctx.sim.pause_queue(ctx.caller, _name(ctx))))


async def resume_queue(ctx: Ctx) -> Reply:
    """POST /v2/queues/{queueName}/resume"""
    return Reply(wire.queue(ctx.sim.resume_queue(ctx.caller, _name(ctx))))
