"""``/v2/messages``: get a message that is not final yet, cancel one, cancel many.

As in QStash, a message is forgotten by this API once it is delivered, failed (then it is in the DLQ) or
cancelled: 404 (logs, the DLQ and ``/_sim/state`` keep it).
"""

from __future__ import annotations

from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.selection import selection_of
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["cancel_message", "cancel_messages", "get_message"]


async def get_message(ctx: Ctx) -> Reply:
    """GET /v2/messages/{messageId}"""
    return Reply(wire.message(ctx.sim.pending_message(ctx.caller, ctx.params["messageId"])))


async def cancel_message(ctx: Ctx) -> Reply:
    """DELETE /v2/messages/{messageId}: 202 ``{"cancelled": 1}`` (qstash-js parses the body)."""
    msg = ctx.sim.pending_message(ctx.caller, ctx.params["messageId"])
    return Reply({"cancelled": ctx.sim.cancel_message(ctx.caller, msg.message_id)}, status=202)


async def cancel_messages(ctx: Ctx) -> Reply:
    """DELETE /v2/messages: by ids (query or body), by filters, or all; 202 ``{"cancelled": n}``."""
    return Reply({"cancelled": ctx.sim.cancel_messages(ctx.caller, selection_of(ctx, "messageIds"))}, status=202)
