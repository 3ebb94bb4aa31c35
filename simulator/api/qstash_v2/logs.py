"""``GET /v2/events`` (what both SDKs call) and ``GET /v2/logs``: the messages' histories as log entries."""

from __future__ import annotations

from typing import Any

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.selection import filter_of
from qstash_sim.core import events
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["list_events"]

# a `state` filter -> the states it selects (IN_PROGRESS: any in flight; CANCELLED is an alias of CANCELED)
_STATES = {
    "IN_PROGRESS": frozenset({"ACTIVE", "RETRY", "ERROR"}),
    "CANCELED": frozenset({events.CANCELLED}),
    "CANCELLED": frozenset({events.CANCELLED}),
}


async def list_events(ctx: Ctx) -> Reply:
    """GET /v2/events: ``{"events": [...], "logs": [...], "cursor"?}``, newest first by default."""
    state = ctx.query.get("state")
    states = None if state is None else _STATES.get(state, frozenset({state}))
    page = events.page(
        ctx.sim,
        ctx.caller,
        filter_of(ctx, message_id_keys=("messageId", "messageIds")),
        states=states,
        cursor=ctx.query.get("cursor"),
        count=int(ctx.query.get("count") or 100),
        latest_first=ctx.query.get("order") != "earliestFirst",
    )
    entries = [wire.log_entry(e) for e in page.events]
    body: dict[str, Any] = {"events": entries, "logs": entries}
    if page.cursor is not None:
        body["cursor"] = page.cursor
    return Reply(body)
