"""Handlers of the Sapiom messaging gateway (``/v1/qstash/...``): each turns the request into a command
at the edge (:mod:`qstash_sim.http.headers`: Sapiom's gateway drops callbacks and flow control) and calls
one core method."""

from __future__ import annotations

from qstash_sim.api import wire
from qstash_sim.domain.commands import PublishResult
from qstash_sim.http.headers import batch_commands, check_name, publish_command, schedule_command
from qstash_sim.http.surface import Ctx, Reply


def _publish_reply(results: list[PublishResult], *, many: bool) -> Reply:
    bodies: list[dict[str, object]] = []
    for r in results:
        b: dict[str, object] = {"messageId": r.message_id, "url": r.url}
        if r.deduplicated:
            b["deduplicated"] = True
        bodies.append(b)
    ids = [r.message_id for r in results if not r.deduplicated]
    return Reply(bodies if many else bodies[0], message_ids=ids, quantity=len(results))


async def publish(ctx: Ctx) -> Reply:
    """POST /v1/qstash/publish/{destination}"""
    cmd = publish_command(ctx.params["destination"], ctx.headers, ctx.body, warn=ctx.warn)
    return _publish_reply([ctx.sim.publish(ctx.caller, cmd)], many=False)


async def enqueue(ctx: Ctx) -> Reply:
    """POST /v1/qstash/enqueue/{queueName}/{destination}"""
    cmd = publish_command(
        ctx.params["destination"], ctx.headers, ctx.body, queue=ctx.params["queueName"], warn=ctx.warn
    )
    return _publish_reply([ctx.sim.publish(ctx.caller, cmd)], many=False)


async def batch(ctx: Ctx) -> Reply:
    """POST /v1/qstash/batch"""
    return _publish_reply(ctx.sim.batch(ctx.caller, batch_commands(ctx.json, warn=ctx.warn)), many=True)


async def get_message(ctx: Ctx) -> Reply:
    """GET /v1/qstash/messages/{messageId}"""
    return Reply(wire.message(ctx.sim.get_message(ctx.caller, ctx.params["messageId"])))


async def cancel_message(ctx: Ctx) -> Reply:
    """DELETE /v1/qstash/messages/{messageId}"""
    return Reply({"cancelled": ctx.sim.cancel_message(ctx.caller, ctx.params["messageId"])}, status=202)


async def list_queues(ctx: Ctx) -> Reply:
    """GET /v1/qstash/queues"""
    return Reply([wire.queue(q) for q in ctx.sim.list_queues(ctx.caller)])


def _queue_name(ctx: Ctx) -> str:
    return check_name(ctx.params["queueName"], "path queueName")


async def get_queue(ctx: Ctx) -> Reply:
    """GET /v1/qstash/queues/{queueName}"""
    return Reply(wire.queue(ctx.sim.get_queue(ctx.caller, _queue_name(ctx))))


async def delete_queue(ctx: Ctx) -> Reply:
    """DELETE /v1/qstash/queues/{queueName}"""
    name = _queue_name(ctx)
    cancelled = ctx.sim.delete_queue(ctx.caller, name)
    return Reply({"deleted": name, "cancelled": cancelled})


async def pause_queue(ctx: Ctx) -> Reply:
    """POST /v1/qstash/queues/{queueName}/pause"""
    return Reply(wire.queue(ctx.sim.pause_queue(ctx.caller, _queue_name(ctx))))


async def resume_queue(ctx: Ctx) -> Reply:
    """POST /v1/qstash/queues/{queueName}/resume"""
    return Reply(wire.queue(ctx.sim.resume_queue(ctx.caller, _queue_name(ctx))))


async def create_schedule(ctx: Ctx) -> Reply:
    """POST /v1/qstash/schedules/{destination}"""
    s = ctx.sim.create_schedule(
        ctx.caller, schedule_command(ctx.params["destination"], ctx.headers, ctx.body, warn=ctx.warn)
    )
    return Reply({"scheduleId": s.schedule_id})


async def list_schedules(ctx: Ctx) -> Reply:
    """GET /v1/qstash/schedules"""
    return Reply([wire.schedule(s) for s in ctx.sim.list_schedules(ctx.caller)])


async def get_schedule(ctx: Ctx) -> Reply:
    """GET /v1/qstash/schedules/{scheduleId}"""
    return Reply(wire.schedule(ctx.sim.get_schedule(ctx.caller, ctx.params["scheduleId"])))


async def delete_schedule(ctx: Ctx) -> Reply:
    """DELETE /v1/qstash/schedules/{scheduleId}"""
    sid = ctx.params["scheduleId"]
    ctx.sim.delete_schedule(ctx.caller, sid)
    return Reply({"deleted": sid})


async def pause_schedule(ctx: Ctx) -> Reply:
    """PATCH (or POST) /v1/qstash/schedules/{scheduleId}/pause"""
    return Reply(wire.schedule(ctx.sim.pause_schedule(ctx.caller, ctx.params["scheduleId"])))


async def resume_schedule(ctx: Ctx) -> Reply:
    """PATCH (or POST) /v1/qstash/schedules/{scheduleId}/resume"""
    return Reply(wire.schedule(ctx.sim.resume_schedule(ctx.caller, ctx.params["scheduleId"])))
