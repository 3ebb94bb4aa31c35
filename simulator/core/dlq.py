"""The dead-letter queue, surface-neutral: list (filters, cursor), get, delete, retry.

Each account's DLQ (``Account.dlq``) holds its failed messages oldest first, capped by
``Limits.dlq_per_account``. DLQ ids are ``"<ms>-<seq>"`` and grow with time, so a page's ``cursor`` is
the last id it holds and the next page starts after it (entries deleted meanwhile do not shift it).

A retry publishes the entry again as a **new** message (a new id) with the stored destination, body,
headers and settings (``overrides`` replace some), and removes the entry.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from qstash_sim.core.filters import Filter, Selection
from qstash_sim.domain.commands import Caller, MessageSettings, PublishCommand, PublishResult
from qstash_sim.domain.message import DlqEntry
from qstash_sim.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = ["MAX_PAGE", "Page", "delete", "delete_selected", "dlq_key", "get", "page", "retry", "retry_selected"]

MAX_PAGE = 100  # entries per list page (QStash: default and maximum 100)


@dataclasses.dataclass(slots=True)
class Page:
    """Entries of one call, and where the next call starts (``None``: nothing more)."""

    entries: list[DlqEntry]
    cursor: str | None = None


def dlq_key(dlq_id: str, where: str = "query cursor") -> tuple[int, int]:
    """``"1767225600000-3"`` -> ``(1767225600000, 3)``; ``BadRequest`` naming ``where`` otherwise."""
    ms, sep, seq = dlq_id.partition("-")
    if not sep or not ms.isdigit() or not seq.isdigit() or len(ms) > 16 or len(seq) > 9:
        raise BadRequest(f"{where}: expected a DLQ id such as 1767225600000-0 (from a previous answer), got {dlq_id!r}")
    return int(ms), int(seq)


def _matches(e: DlqEntry, f: Filter) -> bool:
    return f.message(e.message) and f.time(e.created_ms) and f.status(e.response_status or 0)


def _ordered(core: SimulatorCore, caller: Caller, f: Filter, latest_first: bool) -> list[DlqEntry]:
    entries = [e for e in core.account(caller.account).dlq.values() if _matches(e, f)]
    return entries[::-1] if latest_first else entries


def _after(entries: list[DlqEntry], cursor: str | None, latest_first: bool) -> list[DlqEntry]:
    if cursor is None:
        return entries
    key = dlq_key(cursor)
    if latest_first:
        return [e for e in entries if dlq_key(e.dlq_id) < key]
    return [e for e in entries if dlq_key(e.dlq_id) > key]


def page(
    core: SimulatorCore,
    caller: Caller,
    selection: Selection,
    *,
    cursor: str | None = None,
    count: int = MAX_PAGE,
    latest_first: bool = False,
) -> Page:
    """A page of the caller's DLQ: by ids (exactly those that exist, no cursor) or by filter."""
    acc = core.account(caller.account)
    if selection.ids is not None:
        return Page([acc.dlq[i] for i in selection.ids if i in acc.dlq])
    rest = _after(_ordered(core, caller, selection.filter, latest_first), cursor, latest_first)
    n = max(1, count)
    chosen = rest[:n]
    return Page(chosen, chosen[-1].dlq_id if len(rest) > n else None)


def get(core: SimulatorCore, caller: Caller, dlq_id: str) -> DlqEntry:
    """One DLQ entry of the caller's account, or 404."""
    entry = core.account(caller.account).dlq.get(dlq_id)
    if entry is None:
        raise NotFound(f"dlq message {dlq_id} not found")
    return entry


def delete(core: SimulatorCore, caller: Caller, dlq_id: str) -> None:
    """Remove one entry (404 if absent: a second delete of the same id is 404)."""
    get(core, caller, dlq_id)
    del core.account(caller.account).dlq[dlq_id]


def delete_selected(
    core: SimulatorCore, caller: Caller, selection: Selection, *, cursor: str | None, count: int
) -> Page:
    """Delete the selected entries (ids: those that exist; filters or all: at most ``count`` per call)."""
    chosen = page(core, caller, selection, cursor=cursor, count=count)
    dlq = core.account(caller.account).dlq
    for e in chosen.entries:
        dlq.pop(e.dlq_id, None)
    return chosen


def _settings(e: DlqEntry, overrides: Mapping[str, Any]) -> MessageSettings:
    m = e.message
    s = MessageSettings(
        url=m.url,
        method=m.method,
        content_type=m.content_type,
        headers=dict(m.headers),
        retries=m.max_retries,
        retry_delay_expr=m.retry_delay_expr,
        timeout_ms=m.timeout_ms,
        labels=list(m.labels),
        callback=m.callback,
        failure_callback=m.failure_callback,
        flow_control=m.flow_control,
        redact=m.redact,
    )
    return dataclasses.replace(s, **overrides) if overrides else s


def retry(
    core: SimulatorCore, caller: Caller, dlq_id: str, overrides: Mapping[str, Any] | None = None
) -> PublishResult:
    """Publish entry ``dlq_id`` again as a new message (``overrides``: ``MessageSettings`` fields) and
    remove it from the DLQ; 404 if absent."""
    return _retry(core, caller, [get(core, caller, dlq_id)], overrides or {})[0]


def retry_selected(
    core: SimulatorCore,
    caller: Caller,
    selection: Selection,
    *,
    cursor: str | None,
    count: int,
    overrides: Mapping[str, Any] | None = None,
) -> tuple[list[PublishResult], str | None]:
    """Retry the selected entries: by ids all of them or none (404 naming the first unknown one); by
    filters or all at most ``count`` (oldest first), with the cursor of the rest."""
    if selection.ids is not None:
        acc = core.account(caller.account)
        missing = [i for i in selection.ids if i not in acc.dlq]
        if missing:
            raise NotFound(f"dlq message {missing[0]} not found (nothing was retried)")
        chosen = Page([acc.dlq[i] for i in selection.ids])
    else:
        chosen = page(core, caller, selection, cursor=cursor, count=count)
    return _retry(core, caller, chosen.entries, overrides or {}), chosen.cursor


def _retry(
    core: SimulatorCore, caller: Caller, entries: Iterable[DlqEntry], overrides: Mapping[str, Any]
) -> list[PublishResult]:
    commands = [(e, _settings(e, overrides)) for e in entries]  # every override is checked before any publish
    dlq = core.account(caller.account).dlq
    out: list[PublishResult] = []
    for e, settings in commands:
        m = e.message
        cmd = PublishCommand(settings, m.body, m.queue_name, topic_name=m.topic_name, endpoint_name=m.endpoint_name)
        out.append(core.publish(caller, cmd))
        dlq.pop(e.dlq_id, None)
    return out
