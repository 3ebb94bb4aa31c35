"""Handlers of the Sapiom messaging gateway (``/v1/qstash/...``): each turns the request into a command
at the edge (:mod:`qstash_sim.http.headers`: Sapiom's gateway drops callbacks and flow control; the
``upstash-*`` pairs of a destination's query string are applied as headers) and calls one core method."""

from __future__ import annotations

from qstash_sim.api import wire
from qstash_sim.domain.commands import PublishResult
from qstash_sim.http.headers import batch_commands, check_name, publish_command, schedule_command
from qstash_sim.http.query_config import check_config, merge_config, split_config
from qstash_sim.http.surface import Ctx, Reply


def _publish_reply(ctx: Ctx, results: list[PublishResult], *, many: bool) -> Reply:
    """200; a publish or enqueue that was a duplicate answers 202 (QStash's status for a deduplicated
    publish: the first message's id, ``deduplicated: true``). A batch stays 200, as on ``/v2``: each
    duplicate item carries ``deduplicated: true``."""
    wire.note_dedups(ctx.entry, results)
    bodies: list[dict[str, object]] = []
    for r in results:
        b: dict[str, object] = {"messageId": r.message_id, "url": r.url}
        if r.deduplicated:
            b["deduplicated"] = True
        bodies.append(b)
    ids = [r.message_id for r in results if not r.deduplicated]
    duplicate = not many and bool(results) and not ids
    return Reply(
        bodies if many else bodies[0], status=202 if duplicate else 200, message_ids=ids, quantity=len(results)
    )


def _destination(ctx: Ctx) -> tuple[str, dict[str, str]]:
    """The destination without its ``upstash-*`` query pairs, and the headers with those pairs applied
    (:mod:`qstash_sim.http.query_config`; a real header wins)."""
    dest, config = split_config(ctx.params["destination"])
    check_config(ctx.op, config, strict=ctx.sim.strict, warn=ctx.warn)
    return dest, merge_config(ctx.headers, config)


async def publish(ctx: Ctx) -> Reply:
    """POST /v1/qstash/publish/{destination}"""
    dest, headers = _destination(ctx)
    cmd = publish_command(dest, headers, ctx.body, warn=ctx.warn)
    return _publish_reply(ctx, [ctx.sim.publish(ctx.caller, cmd)], many=False)


async def enqueue(ctx: Ctx) -> Reply:
    """POST /v1/qstash/enqueue/{queueName}/{destination}"""
    dest, headers = _destination(ctx)
    cmd = publish_command(dest, headers, ctx.body, queue=ctx.params["queueName"], warn=ctx.warn)
    return _publish_reply(ctx, [ctx.sim.publish(ctx.caller, cmd)], many=False)


async def batch(ctx: Ctx) -> Reply:
    """POST /v1/qstash/batch"""
    return _publish_reply(ctx, ctx.sim.batch(ctx.caller, batch_commands(ctx.json, warn=ctx.warn)), many=True)


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
    dest, headers = _destination(ctx)
    s = ctx.sim.create_schedule(ctx.caller, schedule_command(dest, headers, ctx.body, warn=ctx.warn))
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
