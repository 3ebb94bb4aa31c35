"""``/v2/schedules``: create (a URL or a URL group; ``CRON_TZ``, ``Upstash-Schedule-Id``, delay, retries,
queue, callbacks), list, get, delete, pause and resume (``PATCH``, what the SDKs send, and ``POST``)."""

from __future__ import annotations

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.config import schedule_command, target
from qstash_sim.core import topics
from qstash_sim.http.surface import Ctx, Reply

__all__ = [
    "create_schedule",
    "delete_schedule",
    "get_schedule",
    "list_schedules",
    "pause_schedule",
    "resume_schedule",
]


async def create_schedule(ctx: Ctx) -> Reply:
    """POST /v2/schedules/{destination}"""
    dest = target(ctx, ctx.params["destination"])
    cmd = schedule_command(ctx, dest)
    if dest.group is not None:
        topics.get_url_group(ctx.sim, ctx.caller, dest.group)  # 404 for an unknown group
    return Reply({"scheduleId": ctx.sim.create_schedule(ctx.caller, cmd).schedule_id})


async def list_schedules(ctx: Ctx) -> Reply:
    """GET /v2/schedules"""
    return Reply([wire.schedule(s) for s in ctx.sim.list_schedules(ctx.caller)])


async def get_schedule(ctx: Ctx) -> Reply:
    """GET /v2/schedules/{scheduleId}"""
    return Reply(wire.schedule(ctx.sim.get_schedule(ctx.caller, ctx.params["scheduleId"])))


async def delete_schedule(ctx: Ctx) -> Reply:
    """DELETE /v2/schedules/{scheduleId}: it fires no more (messages it produced go on)."""
    sid = ctx.params["scheduleId"]
    ctx.sim.delete_schedule(ctx.caller, sid)
    return Reply({"deleted": sid})


async def pause_schedule(ctx: Ctx) -> Reply:
    """PATCH (or POST) /v2/schedules/{scheduleId}/pause"""
    return Reply(wire.schedule(ctx.sim.pause_schedule(ctx.caller, ctx.params["scheduleId"])))


async def resume_schedule(ctx: Ctx) -> Reply:
    """PATCH (or POST) /v2/schedules/{scheduleId}/resume"""
    return Reply(wire.schedule(ctx.sim.resume_schedule(ctx.caller, ctx.params["scheduleId"])))
