"""Logs (QStash's events): a projection of the messages' histories, filtered and paginated.

Every history step of every message the account still keeps is one event: ``CREATED``, ``ACTIVE``,
``ERROR``, ``RETRY``, ``DELIVERED``, ``FAILED``; a cancel is two, ``CANCEL_REQUESTED`` then ``CANCELLED``
(the spelling is the surface's to choose). Nothing is stored twice: the events live and go with their
messages (``Limits.messages`` caps the final ones kept).

Order is newest first by default; ties are broken by message id, then step, so pages are stable. The cursor
names the last event of a page (``"<ms>.<messageId>.<step>"``); the next page starts after it.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from qstash_sim.core.filters import Filter
from qstash_sim.domain.commands import Caller
from qstash_sim.domain.message import EventState, HistoryEvent, Message
from qstash_sim.errors import BadRequest

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = ["CANCEL_REQUESTED", "CANCELLED", "MAX_PAGE", "STATES", "Event", "Page", "page"]

CANCEL_REQUESTED = "CANCEL_REQUESTED"
CANCELLED = EventState.CANCELLED.value
STATES = frozenset([*(s.value for s in EventState), CANCEL_REQUESTED])
MAX_PAGE = 1000  # events per page

Key = tuple[int, str, int]


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One state change of ``message``: ``state`` is an :class:`EventState` value or ``CANCEL_REQUESTED``."""

    time_ms: int
    state: str
    message: Message
    step: HistoryEvent
    key: Key


def _events(m: Message) -> list[Event]:
    out: list[Event] = []
    for i, h in enumerate(m.history):
        if h.state is EventState.CANCELLED:
            out.append(Event(h.time_ms, CANCEL_REQUESTED, m, h, (h.time_ms, m.message_id, 2 * i)))
        out.append(Event(h.time_ms, h.state.value, m, h, (h.time_ms, m.message_id, 2 * i + 1)))
    return out


def _cursor_key(cursor: str) -> Key:
    ms, _, rest = cursor.partition(".")
    mid, _, step = rest.rpartition(".")
    if not (ms.isdigit() and step.isdigit() and mid and len(ms) <= 16 and len(step) <= 9):
        raise BadRequest(f"query cursor: expected a cursor from a previous answer, got {cursor!r}")
    return int(ms), mid, int(step)


def cursor_of(e: Event) -> str:
    """The cursor naming event ``e`` (the next page starts after it)."""
    t, mid, step = e.key
    return f"{t}.{mid}.{step}"


@dataclasses.dataclass(slots=True)
class Page:
    events: list[Event]
    cursor: str | None = None


def page(
    core: SimulatorCore,
    caller: Caller,
    f: Filter,
    *,
    states: frozenset[str] | None = None,
    cursor: str | None = None,
    count: int = 100,
    latest_first: bool = True,
) -> Page:
    """A page of the caller's events matching ``f`` (message attributes; dates on the event's time) and
    ``states`` (``None``: all), at most ``count`` (capped at :data:`MAX_PAGE`)."""
    after = _cursor_key(cursor) if cursor is not None else None
    acc = core.account(caller.account)
    found: list[Event] = []
    for m in acc.messages.values():
        if not f.message(m):
            continue
        for e in _events(m):
            if (states is None or e.state in states) and f.time(e.time_ms):
                if after is None or (e.key < after if latest_first else e.key > after):
                    found.append(e)
    found.sort(key=lambda e: e.key, reverse=latest_first)
    n = min(max(1, count), MAX_PAGE)
    chosen = found[:n]
    return Page(chosen, cursor_of(chosen[-1]) if len(found) > n else None)
