"""Callbacks (native QStash): ``Upstash-Callback`` after every attempt, ``Upstash-Failure-Callback`` once the
retries are exhausted.

Each is a **new message** of the same account (its own id, signed like any delivery, with its own retries),
``POST`` by default, with ``Content-Type: application/json`` and QStash's callback body::

    {"status", "header", "body" (base64), "retried", "maxRetries", "sourceMessageId", "url", "method",
     "sourceHeader", "sourceBody" (base64), "topicName"?, "endpointName"?, "scheduleId"?, "callerIP",
     "notBefore", "createdAt", "dlqId" (failure callback only)}

Its settings come from ``Upstash-Callback-*`` (``-Method``, ``-Timeout``, ``-Retries``, ``-Retry-Delay``,
``-Delay``, ``-Forward-*``); what is not given is the source message's (QStash: "uses the original retry
settings unless Upstash-Callback-* headers are set"). A callback message has no callbacks of its own.
"""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any

from qstash_sim.domain.commands import CallbackSettings, Caller, MessageSettings, PublishCommand
from qstash_sim.domain.message import EventState, Message
from qstash_sim.engine.transport import Outcome
from qstash_sim.errors import ApiError

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = ["after_attempt", "callback_body"]

_ANSWERED = (EventState.DELIVERED, EventState.ERROR, EventState.FAILED)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def callback_body(msg: Message, outcome: Outcome, dlq_id: str | None = None) -> dict[str, Any]:
    """QStash's callback payload for the attempt of ``msg`` that just ended with ``outcome``."""
    retried = next((h.retried for h in reversed(msg.history) if h.state in _ANSWERED), msg.retried)
    source_header = {k: [v] for k, v in msg.headers.items()}
    if msg.content_type:
        source_header["Content-Type"] = [msg.content_type]
    body: dict[str, Any] = {
        "status": outcome.status if outcome.status is not None else 0,
        "header": {k: list(v) for k, v in outcome.headers.items()},
        "body": _b64(outcome.body),
        "retried": retried,
        "maxRetries": msg.max_retries,
        "sourceMessageId": msg.message_id,
        "url": msg.url,
        "method": msg.method,
        "sourceHeader": source_header,
        "sourceBody": _b64(msg.body),
        "callerIP": msg.caller_ip,
        "notBefore": msg.not_before_ms,
        "createdAt": msg.created_ms,
    }
    for key, value in (("topicName", msg.topic_name), ("endpointName", msg.endpoint_name)):
        if value:
            body[key] = value
    if msg.schedule_id:
        body["scheduleId"] = msg.schedule_id
    if outcome.error:
        body["error"] = outcome.error
    if dlq_id is not None:
        body["dlqId"] = dlq_id
    return body


def _publish(core: SimulatorCore, msg: Message, cb: CallbackSettings, payload: dict[str, Any], kind: str) -> None:
    settings = MessageSettings(
        url=cb.url,
        method=cb.method,
        content_type="application/json",
        headers=dict(cb.headers),
        delay_ms=cb.delay_ms,
        retries=cb.retries if cb.retries is not None else msg.max_retries,
        retry_delay_expr=cb.retry_delay_expr if cb.retry_delay_expr is not None else msg.retry_delay_expr,
        timeout_ms=cb.timeout_ms if cb.timeout_ms is not None else msg.timeout_ms,
    )
    caller = Caller(account=msg.account, caller_ip=msg.caller_ip)
    body = json.dumps(payload, separators=(",", ":")).encode()
    try:
        result = core.publish(caller, PublishCommand(settings, body))
    except ApiError as exc:  # e.g. a callback URL that is the simulator's own address
        core.world.journal.warn(
            core.world.now,
            f"{kind} of {msg.message_id} to {cb.url} not sent: {exc.message}",
            account=msg.account,
            source_message_id=msg.message_id,
        )
        return
    made = core.world.accounts.get(msg.account).messages.get(result.message_id)
    if made is not None:  # linked before its first attempt (the engine runs it on a later step)
        made.source_message_id, made.callback_kind = msg.message_id, kind
    detail: dict[str, Any] = {"callbackKind": kind, "retried": payload["retried"], "status": payload["status"]}
    if "dlqId" in payload:
        detail["dlqId"] = payload["dlqId"]
    core.world.journal.add(
        core.world.now,
        "callback",
        account=msg.account,
        message_id=result.message_id,
        url=cb.url,
        method=cb.method,
        source_message_id=msg.message_id,
        detail=detail,
    )


def after_attempt(core: SimulatorCore, msg: Message, outcome: Outcome, failed: bool) -> None:
    """The engine's hook after each attempt of ``msg``: publish its callback, and, once it failed for good,
    its failure callback (with the DLQ id)."""
    if msg.callback is not None:
        _publish(core, msg, msg.callback, callback_body(msg, outcome), "callback")
    if failed and msg.failure_callback is not None:
        _publish(core, msg, msg.failure_callback, callback_body(msg, outcome, msg.dlq_id), "failureCallback")
