"""Domain objects to the JSON shapes of ``openapi.yaml``. The only place dicts are built for the wire."""

from __future__ import annotations

import base64
from decimal import Decimal
from typing import Any

from qstash_sim.domain.commands import PublishResult
from qstash_sim.domain.journal import JournalEntry
from qstash_sim.domain.ledger import Ledger
from qstash_sim.domain.message import Delivery, DlqEntry, Message
from qstash_sim.domain.queue import Queue
from qstash_sim.domain.schedule import Schedule


def _body_fields(body: bytes, text_key: str = "body", b64_key: str = "bodyBase64") -> dict[str, str]:
    if not body:
        return {}
    try:
        return {text_key: body.decode("utf-8")}
    except UnicodeDecodeError:
        return {b64_key: base64.b64encode(body).decode("ascii")}


def _header_map(headers: dict[str, str], content_type: str | None) -> dict[str, list[str]]:
    out = {k: [v] for k, v in headers.items()}
    if content_type:
        out["Content-Type"] = [content_type]
    return out


def message(m: Message) -> dict[str, Any]:
    """``Message`` schema."""
    out: dict[str, Any] = {
        "messageId": m.message_id,
        "url": m.url,
        "method": m.method,
        "header": _header_map(m.headers, m.content_type),
        **_body_fields(m.body),
        "maxRetries": m.max_retries,
        "timeout": m.timeout_ms,
        "notBefore": m.not_before_ms,
        "createdAt": m.created_ms,
        "callerIP": m.caller_ip,
        "callerIp": m.caller_ip,
        "state": m.state.value,
        "retried": m.retried,
        "history": [
            {
                k: v
                for k, v in (
                    ("time", h.time_ms),
                    ("state", h.state.value),
                    ("retried", h.retried),
                    ("responseStatus", h.response_status),
                    ("error", h.error),
                    ("nextDeliveryTime", h.next_delivery_ms),
                )
                if v is not None
            }
            for h in m.history
        ],
    }
    if m.retry_delay_expr:
        out["retryDelayExpression"] = m.retry_delay_expr
    if m.queue_name:
        out["queueName"] = m.queue_name
    if m.schedule_id:
        out["scheduleId"] = m.schedule_id
    if m.labels:
        out["label"] = m.labels[0]
        out["labels"] = list(m.labels)
    if m.flow_control is not None:
        out["flowControlKey"] = m.flow_control.key
    if m.next_delivery_ms is not None:
        out["nextDeliveryTime"] = m.next_delivery_ms
    if m.dlq_id:
        out["dlqId"] = m.dlq_id
    return out


def note_dedups(entry: JournalEntry, results: list[PublishResult]) -> None:
    """Record on a request's journal entry which earlier message swallowed each duplicate it carried
    (``detail.deduplicated``: ``[{messageId, dedupId}]``), for the dashboard's *why*."""
    dups = [{"messageId": r.message_id, "dedupId": r.dedup_id} for r in results if r.deduplicated]
    if dups:
        entry.detail.setdefault("deduplicated", []).extend(dups)


def dlq_entry(e: DlqEntry) -> dict[str, Any]:
    """``DlqMessage`` schema: the message plus its last response."""
    out = message(e.message)
    out["dlqId"] = e.dlq_id
    if e.response_status is not None:
        out["responseStatus"] = e.response_status
    out["responseHeader"] = e.response_headers
    out.update(_body_fields(e.response_body, "responseBody", "responseBodyBase64"))
    return out


def queue(q: Queue) -> dict[str, Any]:
    """``Queue`` schema."""
    return {
        "name": q.name,
        "createdAt": q.created_ms,
        "updatedAt": q.updated_ms,
        "parallelism": q.parallelism,
        "lag": q.lag,
        "paused": q.paused,
    }


def schedule(s: Schedule) -> dict[str, Any]:
    """``Schedule`` schema."""
    out: dict[str, Any] = {
        "scheduleId": s.schedule_id,
        "cron": s.cron,
        "destination": s.destination,
        "createdAt": s.created_ms,
        "method": s.method,
        "retries": s.retries,
        "header": _header_map(s.headers, s.content_type),
        **_body_fields(s.body),
        "delay": s.delay_ms // 1000,
        "timeout": s.timeout_ms,
        "callerIP": "127.0.0.1",
        "callerIp": "127.0.0.1",
        "isPaused": s.is_paused,
        "lastScheduleStates": dict(s.last_schedule_states),
    }
    if s.retry_delay_expr:
        out["retryDelayExpression"] = s.retry_delay_expr
    if s.queue_name:
        out["queueName"] = s.queue_name
    if s.labels:
        out["label"] = s.labels[0]
        out["labels"] = list(s.labels)
    if s.last_schedule_time is not None:
        out["lastScheduleTime"] = s.last_schedule_time
    if s.next_schedule_time is not None:
        out["nextScheduleTime"] = s.next_schedule_time
    return out


def journal_entry(e: JournalEntry) -> dict[str, Any]:
    """``JournalEntry`` schema."""
    return {
        "seq": e.seq,
        "time": e.time_ms,
        "kind": e.kind,
        "account": e.account,
        "requestId": e.request_id,
        "operation": e.operation,
        "method": e.method,
        "path": e.path,
        "status": e.status,
        "messageIds": list(e.message_ids),
        "messageId": e.message_id,
        "retried": e.retried,
        "url": e.url,
        "outcome": e.outcome,
        "error": e.error,
        "rule": e.rule,
        "warnings": list(e.warnings),
        "detail": e.detail,
        "sourceMessageId": e.source_message_id,
    }


def delivery(d: Delivery) -> dict[str, Any]:
    """``Delivery`` schema (the inbox)."""
    return {
        "seq": d.seq,
        "time": d.time_ms,
        "account": d.account,
        "messageId": d.message_id,
        "url": d.url,
        "method": d.method,
        "headers": dict(d.headers),
        **_body_fields(d.body),
        "retried": d.retried,
        "virtual": d.virtual,
        "status": d.status,
        "error": d.error,
    }


def _money(x: Decimal) -> str:
    return format(x.normalize(), "f") if x else "0"


def _ledger_totals(
    led: Ledger, account: str | None, agent: str | None
) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """Spend per account and per agent among the charges matching the filters (running totals: exact)."""
    if account is None and agent is None:
        return dict(led.by_account), dict(led.by_agent)
    accounts: dict[str, Decimal] = {}
    agents: dict[str, Decimal] = {}
    if agent is None:  # one account: its total, and its agents' from the pairs
        if account in led.by_account:
            accounts[account] = led.by_account[account]  # type: ignore[index]
    for (acc, ag), amount in led.by_pair.items():
        if (account is None or acc == account) and (agent is None or ag == agent):
            accounts.setdefault(acc, Decimal(0))
            if agent is not None:
                accounts[acc] += amount
            agents[ag] = agents.get(ag, Decimal(0)) + amount
    return accounts, agents


def ledger(
    led: Ledger, *, account: str | None = None, agent: str | None = None, limit: int | None = None
) -> dict[str, Any]:
    """``Ledger`` schema: exact totals per account and agent, and the newest ``limit`` entries kept."""
    entries = list(led.select(account=account, agent=agent))
    if limit is not None:
        entries = entries[len(entries) - limit :] if limit else []
    accounts, agents = _ledger_totals(led, account, agent)
    return {
        "total": _money(led.total(account=account, agent=agent)),
        "accounts": {k: _money(v) for k, v in accounts.items()},
        "agents": {k: _money(v) for k, v in agents.items()},
        "evicted": led.entries.evicted,
        "entries": [
            {
                "time": e.time_ms,
                "account": e.account,
                "agent": e.agent,
                "transactionId": e.transaction_id,
                "requestId": e.request_id,
                "operation": e.operation,
                "quantity": e.quantity,
                "unitPrice": _money(e.unit_price),
                "amount": _money(e.amount),
            }
            for e in entries
        ],
    }
