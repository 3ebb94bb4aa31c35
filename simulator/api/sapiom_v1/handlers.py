"""Handlers of the Sapiom messaging gateway (``/v1/qstash/...``): thin, one core call each."""

from __future__ import annotations

from qstash_sim.api import wire as serialize
from qstash_sim.core.service import PublishResult
from qstash_sim.http.dispatch import Ctx, Reply, handles


def _publish_reply(results: list[PublishResult], *, many: bool) -> Reply:
    bodies: list[dict[str, object]] = []
    for r in results:
        b: dict[str, object] = {"messageId": r.message_id, "url": r.url}
        if r.deduplicated:
            b["deduplicated"] = True
        bodies.append(b)
    ids = [r.message_id for r in results if not r.deduplicated]
    return Reply(bodies if many else bodies[0], message_ids=ids, quantity=len(results))


@handles("publishMessage")
async def publish(ctx: Ctx) -> Reply:
    """POST /v1/qstash/publish/{destination}"""
    r = ctx.sim.publish(ctx.caller, ctx.params["destination"], ctx.body, ctx.headers)
    return _publish_reply([r], many=False)


@handles("enqueueMessage")
async def enqueue(ctx: Ctx) -> Reply:
    """POST /v1/qstash/enqueue/{queueName}/{destination}"""
    r = ctx.sim.publish(
        ctx.caller, ctx.params["destination"], ctx.body, ctx.headers, queue=ctx.params["queueName"]
    )
    return _publish_reply([r], many=False)


@handles("batchMessages")
async def batch(ctx: Ctx) -> Reply:
    """POST /v1/qstash/batch"""
    return _publish_reply(ctx.sim.batch(ctx.caller, ctx.json), many=True)


@handles("getMessage")
async def get_message(ctx: Ctx) -> Reply:
    """GET /v1/qstash/messages/{messageId}"""
    return Reply(serialize.message(ctx.sim.get_message(ctx.caller, ctx.params["messageId"])))


@handles("cancelMessage")
async def cancel_message(ctx: Ctx) -> Reply:
    """DELETE /v1/qstash/messages/{messageId}"""
    return Reply({"cancelled": ctx.sim.cancel_message(ctx.caller, ctx.params["messageId"])}, status=202)


@handles("listQueues")
async def list_queues(ctx: Ctx) -> Reply:
    """GET /v1/qstash/queues"""
    return Reply([serialize.queue(q) for q in ctx.sim.list_queues(ctx.caller)])


@handles("getQueue")
async def get_queue(ctx: Ctx) -> Reply:
    """GET /v1/qstash/queues/{name}"""
    return Reply(serialize.queue(ctx.sim.get_queue(ctx.caller, ctx.params["name"])))


@handles("deleteQueue")
async def delete_queue(ctx: Ctx) -> Reply:
    """DELETE /v1/qstash/queues/{name}"""
    name = ctx.params["name"]
    return Reply({"deleted": name, "cancelled": ctx.sim.delete_queue(ctx.caller, name)})


@handles("pauseQueue")
async def pause_queue(ctx: Ctx) -> Reply:
    """POST /v1/qstash/queues/{name}/pause"""
    return Reply(serialize.queue(ctx.sim.pause_queue(ctx.caller, ctx.params["name"])))


@handles("resumeQueue")
async def resume_queue(ctx: Ctx) -> Reply:
    """POST /v1/qstash/queues/{name}/resume"""
    return Reply(serialize.queue(ctx.sim.resume_queue(ctx.caller, ctx.params["name"])))


@handles("createSchedule")
async def create_schedule(ctx: Ctx) -> Reply:
    """POST /v1/qstash/schedules/{destination}"""
    s = ctx.sim.create_schedule(ctx.caller, ctx.params["destination"], ctx.body, ctx.headers)
    return Reply({"scheduleId": s.schedule_id})


@handles("listSchedules")
async def list_schedules(ctx: Ctx) -> Reply:
    """GET /v1/qstash/schedules"""
    return Reply([serialize.schedule(s) for s in ctx.sim.list_schedules(ctx.caller)])


@handles("getSchedule")
async def get_schedule(ctx: Ctx) -> Reply:
    """GET /v1/qstash/schedules/{scheduleId}"""
    return Reply(serialize.schedule(ctx.sim.get_schedule(ctx.caller, ctx.params["scheduleId"])))


@handles("deleteSchedule")
async def delete_schedule(ctx: Ctx) -> Reply:
    """DELETE /v1/qstash/schedules/{scheduleId}"""
    sid = ctx.params["scheduleId"]
    ctx.sim.delete_schedule(ctx.caller, sid)
    return Reply({"deleted": sid})


@handles("pauseSchedule")
async def pause_schedule(ctx: Ctx) -> Reply:
    """PATCH /v1/qstash/schedules/{scheduleId}/pause"""
    return Reply(serialize.schedule(ctx.sim.pause_schedule(ctx.caller, ctx.params["scheduleId"])))


@handles("resumeSchedule")
async def resume_schedule(ctx: Ctx) -> Reply:
    """PATCH /v1/qstash/schedules/{scheduleId}/resume"""
    return Reply(serialize.schedule(ctx.sim.resume_schedule(ctx.caller, ctx.params["scheduleId"])))


handles("pauseSchedulePost")(pause_schedule)
handles("resumeSchedulePost")(resume_schedule)
