"""The journal: every inbound request and every delivery attempt, in order, on virtual time.

Tests and users read it to see what happened and why: which operation a request hit, its status,
which scenario rule fired, which messages it created, and each attempt those messages made.

A long-running server keeps only the newest entries (:class:`Retained`, capped by ``Limits.journal``):
the oldest are dropped first and counted, and an entry is found by its ``seq`` in O(1), so a page after a
cursor costs only the page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

log = logging.getLogger("qstash_sim")

T = TypeVar("T")

_COMPACT_AT = 4096  # dropped slots at the front before the list is compacted (amortised O(1) per drop)


class Retained(Generic[T]):
    """The newest ``cap`` items appended (all of them when ``cap`` is ``None``), oldest first.

    Items are numbered 1, 2, 3, ... in the order they were appended (their ``seq``); appending past the cap
    drops the oldest and counts it (:attr:`evicted`). Numbers stay contiguous, so the item numbered ``seq``
    is found in O(1) and :meth:`since` starts anywhere without a scan. It compares equal to a list with the
    same items (``inbox == []``).
    """

    __slots__ = ("_head", "_items", "appended", "cap")

    def __init__(self, cap: int | None = None) -> None:
        self._items: list[Any] = []  # slots before _head are dropped (None), compacted now and then
        self._head = 0
        self.appended = 0  # items ever appended since the last clear: the seq of the newest
        self.cap = cap

    @property
    def evicted(self) -> int:
        """How many items were dropped to stay under the cap (since the last :meth:`clear`)."""
        return self.appended - len(self)

    @property
    def first_seq(self) -> int:
        """The seq of the oldest item kept (``appended + 1`` when empty)."""
        return self.appended - len(self) + 1

    def append(self, item: T) -> int:
        """Keep ``item`` (dropping the oldest past the cap); return its seq."""
        items = self._items
        items.append(item)
        self.appended += 1
        cap = self.cap
        if cap is not None and len(items) - self._head > cap:
            self._trim()
        return self.appended

    def set_cap(self, cap: int | None) -> None:
        """Change the cap; lowering it drops (and counts) the oldest items at once."""
        self.cap = cap
        if cap is not None and len(self) > cap:
            self._trim()

    def _trim(self) -> None:
        assert self.cap is not None
        items = self._items
        while len(items) - self._head > self.cap:
            items[self._head] = None  # free it now, not at the next compaction
            self._head += 1
        if self._head >= _COMPACT_AT and self._head * 2 >= len(items):
            del items[: self._head]
            self._head = 0

    def clear(self) -> None:
        """Forget every item and restart numbering at 1."""
        self._items.clear()
        self._head = 0
        self.appended = 0

    def since(self, seq: int) -> Iterator[tuple[int, T]]:
        """``(seq, item)`` for each item kept numbered after ``seq``, in order (O(1) to start).

        Safe while items are appended or dropped: it goes on from where it was, skipping what was dropped.
        """
        nxt = seq + 1
        while True:  # re-read the positions at each step: cheap, and right whatever happened meanwhile
            items, head = self._items, self._head
            first = self.appended - len(items) + head + 1
            if nxt < first:
                nxt = first
            i = head + nxt - first
            if i >= len(items):
                return
            yield nxt, cast("T", items[i])
            nxt += 1

    def __len__(self) -> int:
        return len(self._items) - self._head

    def __iter__(self) -> Iterator[T]:
        return iter(cast("list[T]", self._items[self._head :]))

    def __getitem__(self, index: int) -> T:
        n = len(self)
        if index < 0:
            index += n
        if not 0 <= index < n:
            raise IndexError("index out of range")
        return cast("T", self._items[self._head + index])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Retained):
            return list(self) == list(other)
        if isinstance(other, list):
            return list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Retained({len(self)} of {self.appended}, cap={self.cap})"


@dataclass(slots=True)
class JournalEntry:
    """One line of the journal.

    ``kind`` is ``request`` (an inbound API call), ``attempt`` (a delivery attempt), ``fire`` (a cron
    fire), ``callback`` (a (failure) callback message published after an attempt), ``warning`` (e.g. an
    unknown ``Upstash-*`` header), ``scenario`` (a timeline step) or ``workflow`` (a workflow run started or
    ended: ``detail`` holds ``workflowRunId`` and ``event``, e.g. ``RUN_SUCCESS``).
    """

    seq: int
    time_ms: int
    kind: str
    account: str | None = None
    request_id: str | None = None
    operation: str | None = None
    method: str | None = None
    path: str | None = None
    status: int | None = None
    message_ids: list[str] = field(default_factory=list)
    message_id: str | None = None
    retried: int | None = None
    url: str | None = None
    outcome: str | None = None
    error: str | None = None
    rule: str | None = None
    warnings: list[str] = field(default_factory=list)
    detail: dict[str, Any] = field(default_factory=dict)
    source_message_id: str | None = None  # a (failure) callback's entries: the message it reports on


class Journal:
    """Append-only, ordered record of what the simulator did: the newest ``cap`` entries (``None``: all).

    ``seq`` numbers every entry ever added (since the last reset), dropped ones included, so a gap before
    the first entry kept is what :attr:`evicted` counts.
    """

    def __init__(self, cap: int | None = None) -> None:
        self.entries: Retained[JournalEntry] = Retained(cap)

    @property
    def evicted(self) -> int:
        """Entries dropped (oldest first) to stay under the cap, since the last reset."""
        return self.entries.evicted

    def set_cap(self, cap: int | None) -> None:
        """Keep at most ``cap`` entries from now on (``None``: no limit); lowering it drops the oldest."""
        self.entries.set_cap(cap)

    def reset(self) -> None:
        """Forget everything."""
        self.entries.clear()

    def add(self, time_ms: int, kind: str, **fields: Any) -> JournalEntry:
        """Append an entry and return it (the caller may still fill in ``status`` etc.)."""
        return self.keep(JournalEntry(seq=0, time_ms=time_ms, kind=kind, **fields))

    def keep(self, entry: JournalEntry) -> JournalEntry:
        """Number ``entry`` (its ``seq``) and append it; return it."""
        entry.seq = self.entries.appended + 1
        self.entries.append(entry)
        return entry

    def since(self, seq: int) -> Iterator[JournalEntry]:
        """The entries kept with a ``seq`` over ``seq``, in order (starts in O(1))."""
        return (e for _, e in self.entries.since(seq))

    def warn(self, time_ms: int, message: str, **fields: Any) -> JournalEntry:
        """Record a warning and log it."""
        log.warning("%s", message)
        return self.add(time_ms, "warning", error=message, **fields)

    def __iter__(self) -> Iterator[JournalEntry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self.entries)

    def of_kind(self, kind: str) -> list[JournalEntry]:
        """Entries of one kind, in order."""
        return [e for e in self.entries if e.kind == kind]
