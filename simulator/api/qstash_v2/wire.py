"""Domain objects to the native QStash v2 JSON shapes (``Qstash*`` schemas of ``openapi.yaml``).

Rules of every shape here: optional fields are omitted, never ``null``; timestamps are Unix ms; header maps
are ``{name: [values]}``; where QStash's documents disagree on a spelling both are sent (``callerIP`` and
``callerIp``); ``Upstash-Redact-Fields`` turns stored values into ``REDACTED:<sha256 hex>``.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from qstash_sim.api.wire import queue  # ``QstashQueue`` has the fields of ``Queue``, all required by qstash-py
from qstash_sim.core.events import CANCELLED
from qstash_sim.core.events import Event as LogEvent
from qstash_sim.core.flowview import FlowKeyView
from qstash_sim.domain.commands import CallbackSettings, PublishResult
from qstash_sim.domain.message import DlqEntry, Message
from qstash_sim.domain.schedule import Schedule
from qstash_sim.domain.topic import UrlGroup

__all__ = [
    "dlq_entry",
    "flow_key",
    "log_entry",
    "message",
    "publish_results",
    "queue",
    "schedule",
    "url_group",
]


def _redacted(value: bytes) -> str:
    return "REDACTED:" + hashlib.sha256(value).hexdigest()


class _Redact:
    """What ``Upstash-Redact-Fields`` (``body``, ``header``/``headers``, ``header[Name]``) hides."""

    def __init__(self, spec: str | None) -> None:
        parts = [p.strip() for p in (spec or "").split(",") if p.strip()]
        self.body = "body" in parts
        self.all_headers = any(p in ("header", "headers") for p in parts)
        self.headers = {p[7:-1].lower() for p in parts if p.startswith("header[") and p.endswith("]")}

    def header(self, name: str, value: str) -> str:
        hide = self.all_headers or name.lower() in self.headers
        return _redacted(value.encode()) if hide else value


def _header_map(headers: dict[str, str], content_type: str | None, redact: _Redact) -> dict[str, list[str]]:
    out = {k: [redact.header(k, v)] for k, v in headers.items()}
    if content_type:
        out["Content-Type"] = [content_type]
    return out


def _body(body: bytes, redact: _Redact) -> dict[str, str]:
    if not body:
        return {}
    if redact.body:
        return {"body": _redacted(body)}
    try:
        return {"body": body.decode("utf-8")}
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(body).decode("ascii")}


def _callbacks(out: dict[str, Any], cb: CallbackSettings | None, fcb: CallbackSettings | None, plural: bool) -> None:
    suffix = "Headers" if plural else "Header"
    if cb is not None:
        out["callback"] = cb.url
        if cb.headers:
            out["callback" + suffix] = {k: [v] for k, v in cb.headers.items()}
    if fcb is not None:
        out["failureCallback"] = fcb.url
        if fcb.headers:
            out["failureCallback" + suffix] = {k: [v] for k, v in fcb.headers.items()}


def _common(out: dict[str, Any], m: Message | Schedule) -> None:
    """Fields a message and a schedule share: labels, queue, flow control, caller."""
    if m.queue_name:
        out["queueName"] = m.queue_name
    if m.labels:
        out["label"] = m.labels[0]
        out["labels"] = list(m.labels)
    fc = m.flow_control
    if fc is not None:
        out["flowControlKey"] = fc.key
        if fc.parallelism is not None:
            out["parallelism"] = fc.parallelism
        if fc.rate is not None:
            out["rate"] = fc.rate
            out["period"] = fc.period_s
    out["callerIP"] = m.caller_ip
    out["callerIp"] = m.caller_ip


def message(m: Message) -> dict[str, Any]:
    """``QstashMessage``: ``notBefore`` is when its next attempt may start."""
    redact = _Redact(m.redact)
    out: dict[str, Any] = {
        "messageId": m.message_id,
        "url": m.url,
        "method": m.method,
        "header": _header_map(m.headers, m.content_type, redact),
        **_body(m.body, redact),
        "maxRetries": m.max_retries,
        "notBefore": m.next_delivery_ms if m.next_delivery_ms is not None else m.not_before_ms,
        "createdAt": m.created_ms,
    }
    if m.retry_delay_expr:
        out["retryDelayExpression"] = m.retry_delay_expr
    if m.topic_name:
        out["topicName"] = m.topic_name
    if m.endpoint_name:
        out["endpointName"] = m.endpoint_name
    if m.schedule_id:
        out["scheduleId"] = m.schedule_id
    _callbacks(out, m.callback, m.failure_callback, plural=False)
    _common(out, m)
    return out


def dlq_entry(e: DlqEntry) -> dict[str, Any]:
    """``QstashDlqMessage``: the message plus its last answer (``responseStatus`` 0 when none came)."""
    out = message(e.message)
    out["notBefore"] = e.message.not_before_ms
    out["dlqId"] = e.dlq_id
    out["responseStatus"] = e.response_status or 0
    if e.response_headers:
        out["responseHeader"] = {k: list(v) for k, v in e.response_headers.items()}
    if e.response_body:
        try:
            out["responseBody"] = e.response_body.decode("utf-8")
        except UnicodeDecodeError:
            out["responseBodyBase64"] = base64.b64encode(e.response_body).decode("ascii")
    elif e.error:
        out["responseBody"] = e.error  # no answer at all: why (timeout, connection refused, ...)
    return out


def log_entry(ev: LogEvent) -> dict[str, Any]:
    """``QstashLogEntry``: one state change; ``CANCELLED`` is spelled ``CANCELED`` (qstash-py's enum)."""
    m, h = ev.message, ev.step
    redact = _Redact(m.redact)
    out: dict[str, Any] = {
        "time": ev.time_ms,
        "messageId": m.message_id,
        "state": "CANCELED" if ev.state == CANCELLED else ev.state,
        "url": m.url,
        "method": m.method,
        "header": _header_map(m.headers, m.content_type, redact),
        "maxRetries": m.max_retries,
        "timeout": m.timeout_ms,
    }
    if m.body:
        body = _redacted(m.body).encode() if redact.body else m.body
        out["body"] = base64.b64encode(body).decode("ascii")
    if h.error and ev.state in ("ERROR", "FAILED"):
        out["error"] = h.error
    if h.response_status is not None:
        out["responseStatus"] = h.response_status
    if h.next_delivery_ms is not None:
        out["nextDeliveryTime"] = h.next_delivery_ms
    for key, value in (("topicName", m.topic_name), ("endpointName", m.endpoint_name), ("scheduleId", m.schedule_id)):
        if value:
            out[key] = value
    if m.retry_delay_expr:
        out["retryDelayExpr"] = m.retry_delay_expr
        out["retryDelayExpression"] = m.retry_delay_expr
    _callbacks(out, m.callback, m.failure_callback, plural=True)
    _common(out, m)
    del out["callerIP"], out["callerIp"]  # not a log field
    return out


def schedule(s: Schedule) -> dict[str, Any]:
    """``QstashSchedule``: ``delay`` and ``timeout`` in seconds; ``lastScheduleStates`` only once it fired."""
    redact = _Redact(s.redact)
    out: dict[str, Any] = {
        "scheduleId": s.schedule_id,
        "cron": s.cron,
        "destination": s.destination,
        "createdAt": s.created_ms,
        "method": s.method,
        "retries": s.retries,
        "isPaused": s.is_paused,
        "header": _header_map(s.headers, s.content_type, redact),
        **_body(s.body, redact),
        "delay": s.delay_ms // 1000,
        "timeout": max(1, s.timeout_ms // 1000),
    }
    if s.retry_delay_expr:
        out["retryDelayExpression"] = s.retry_delay_expr
    if s.last_schedule_time is not None:
        out["lastScheduleTime"] = s.last_schedule_time
    if s.next_schedule_time is not None:
        out["nextScheduleTime"] = s.next_schedule_time
    if s.last_schedule_states:
        out["lastScheduleStates"] = dict(s.last_schedule_states)
    _callbacks(out, s.callback, s.failure_callback, plural=False)
    _common(out, s)
    return out


def url_group(g: UrlGroup) -> dict[str, Any]:
    """``QstashUrlGroup``."""
    return {
        "name": g.name,
        "createdAt": g.created_ms,
        "updatedAt": g.updated_ms,
        "endpoints": [{"url": e.url, **({"name": e.name} if e.name else {})} for e in g.endpoints],
    }


def flow_key(v: FlowKeyView) -> dict[str, Any]:
    """``QstashFlowControlKey``: every field present (qstash-js' type promises all of them)."""
    return {
        "flowControlKey": v.key,
        "waitListSize": v.wait_list_size,
        "parallelismMax": v.parallelism or 0,
        "parallelismCount": v.parallelism_count,
        "rateMax": v.rate or 0,
        "rateCount": v.rate_count,
        "ratePeriod": v.period_s,
        "ratePeriodStart": (v.period_start_ms or 0) // 1000,
        "isPaused": v.paused,
        "isPinnedParallelism": v.pinned_parallelism,
        "isPinnedRate": v.pinned_rate,
    }


def publish_results(results: list[PublishResult]) -> list[dict[str, Any]]:
    """``{messageId, url, deduplicated?}`` per message."""
    out: list[dict[str, Any]] = []
    for r in results:
        b: dict[str, Any] = {"messageId": r.message_id, "url": r.url}
        if r.deduplicated:
            b["deduplicated"] = True
        out.append(b)
    return out
