"""``POST /v2/publish/{destination}``, ``POST /v2/enqueue/{queueName}/{destination}``, ``POST /v2/batch``.

A URL answers an object, a URL group an array (one element per endpoint); 202 when every message of the
answer was a duplicate (the first message's id, ``deduplicated: true``).
"""

from __future__ import annotations

from typing import Any

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.config import Target, batch_items, publish_command, target
from qstash_sim.api.wire import note_dedups
from qstash_sim.core import topics
from qstash_sim.domain.commands import PublishCommand, PublishResult
from qstash_sim.errors import NotFound
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["batch", "enqueue", "publish"]


def _send(ctx: Ctx, cmd: PublishCommand, group: str | None) -> list[PublishResult]:
    if group is None:
        return [ctx.sim.publish(ctx.caller, cmd)]
    return topics.publish_to_group(ctx.sim, ctx.caller, cmd, group)


def _reply(ctx: Ctx, dest: Target, results: list[PublishResult]) -> Reply:
    note_dedups(ctx.entry, results)
    bodies = wire.publish_results(results)
    body: Any = bodies if dest.group is not None else bodies[0]
    duplicate = bool(results) and all(r.deduplicated for r in results)
    ids = [r.message_id for r in results if not r.deduplicated]
    return Reply(body, status=202 if duplicate else 200, message_ids=ids, quantity=len(ids))


async def publish(ctx: Ctx) -> Reply:
    """POST /v2/publish/{destination}"""
    dest = target(ctx, ctx.params["destination"])
    return _reply(ctx, dest, _send(ctx, publish_command(ctx, dest), dest.group))


async def enqueue(ctx: Ctx) -> Reply:
    """POST /v2/enqueue/{queueName}/{destination}"""
    dest = target(ctx, ctx.params["destination"])
    cmd = publish_command(ctx, dest, queue=ctx.params["queueName"])
    return _reply(ctx, dest, _send(ctx, cmd, dest.group))


async def batch(ctx: Ctx) -> Reply:
    """POST /v2/batch: every item checked first (its URL group must exist), then all are published."""
    items = batch_items(ctx, ctx.surface.contract.operation("qstash.publish"))
    for i, (cmd, group) in enumerate(items):
        if group is None:
            ctx.sim.refuse_self(cmd.settings.url, f"body /{i}/destination")
        else:
            try:
                topics.get_url_group(ctx.sim, ctx.caller, group)
            except NotFound as exc:
                raise NotFound(f"body /{i}/destination: {exc.message}") from None
    out: list[Any] = []
    created = 0
    ids: list[str] = []
    for cmd, group in items:
        results = _send(ctx, cmd, group)
        note_dedups(ctx.entry, results)
        bodies = wire.publish_results(results)
        out.append(bodies if group is not None else bodies[0])
        fresh = [r.message_id for r in results if not r.deduplicated]
        ids.extend(fresh)
        created += len(fresh)
    return Reply(out, message_ids=ids, quantity=created)
