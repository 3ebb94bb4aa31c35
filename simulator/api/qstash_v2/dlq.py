"""``/v2/dlq``: list (filters, cursor, count), get, delete one or many, retry one or many (new ids)."""

from __future__ import annotations

from typing import Any

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.config import retry_overrides
from qstash_sim.api.qstash_v2.selection import selection_of
from qstash_sim.core import dlq
from qstash_sim.http.surface import Ctx, Reply

__all__ = [
    "delete_dlq_message",
    "delete_dlq_messages",
    "get_dlq_message",
    "list_dlq",
    "retry_dlq_message",
    "retry_dlq_messages",
]


def _count(ctx: Ctx, cap: int | None = None) -> int:
    n = int(ctx.query.get("count") or dlq.MAX_PAGE)
    return min(n, cap) if cap is not None else n


async def list_dlq(ctx: Ctx) -> Reply:
    """GET /v2/dlq: ``{"messages": [...], "cursor"?}`` (oldest first unless ``order=latestFirst``)."""
    page = dlq.page(
        ctx.sim,
        ctx.caller,
        selection_of(ctx, "dlqIds"),
        cursor=ctx.query.get("cursor"),
        count=_count(ctx, dlq.MAX_PAGE),
        latest_first=ctx.query.get("order") == "latestFirst",
    )
    body: dict[str, Any] = {"messages": [wire.dlq_entry(e) for e in page.entries]}
    if page.cursor is not None:
        body["cursor"] = page.cursor
    return Reply(body)


async def get_dlq_message(ctx: Ctx) -> Reply:
    """GET /v2/dlq/{dlqId}"""
    return Reply(wire.dlq_entry(dlq.get(ctx.sim, ctx.caller, ctx.params["dlqId"])))


async def delete_dlq_message(ctx: Ctx) -> Reply:
    """DELETE /v2/dlq/{dlqId}: a second delete of the same id is 404."""
    dlq.delete(ctx.sim, ctx.caller, ctx.params["dlqId"])
    return Reply({"deleted": 1})


async def delete_dlq_messages(ctx: Ctx) -> Reply:
    """DELETE /v2/dlq: by ids (query or body), by filters or all (at most ``count``, with a cursor)."""
    page = dlq.delete_selected(
        ctx.sim, ctx.caller, selection_of(ctx, "dlqIds"), cursor=ctx.query.get("cursor"), count=_count(ctx)
    )
    body: dict[str, Any] = {"deleted": len(page.entries)}
    if page.cursor is not None:
        body["cursor"] = page.cursor
    return Reply(body)


async def retry_dlq_message(ctx: Ctx) -> Reply:
    """POST /v2/dlq/retry/{dlqId}: 201 ``{"messageId"}`` (a new message)."""
    result = dlq.retry(ctx.sim, ctx.caller, ctx.params["dlqId"], retry_overrides(ctx))
    return Reply({"messageId": result.message_id}, status=201, message_ids=[result.message_id])


async def retry_dlq_messages(ctx: Ctx) -> Reply:
    """POST /v2/dlq/retry: 201 ``{"responses": [{"messageId"}], "cursor"?}``."""
    results, cursor = dlq.retry_selected(
        ctx.sim,
        ctx.caller,
        selection_of(ctx, "dlqIds"),
        cursor=ctx.query.get("cursor"),
        count=_count(ctx),
        overrides=retry_overrides(ctx),
    )
    body: dict[str, Any] = {"responses": [{"messageId": r.message_id} for r in results]}
    if cursor is not None:
        body["cursor"] = cursor
    ids = [r.message_id for r in results]
    return Reply(body, status=201, message_ids=ids, quantity=len(ids))
