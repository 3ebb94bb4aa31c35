"""The journal: every inbound request and every delivery attempt, in order, on virtual time.

Tests and users read it to see what happened and why: which operation a request hit, its status,
which scenario rule fired, which messages it created, and each attempt those messages made.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("qstash_sim")


@dataclass(slots=True)
class JournalEntry:
    """One line of the journal.

    ``kind`` is ``request`` (an inbound API call), ``attempt`` (a delivery attempt), ``fire`` (a cron
    fire), ``warning`` (e.g. an unknown ``Upstash-*`` header) or ``scenario`` (a timeline step).
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


class Journal:
    """Append-only, ordered record of what the simulator did."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []
        self._seq = 0

    def reset(self) -> None:
        """Forget everything."""
        self.entries.clear()
        self._seq = 0

    def add(self, time_ms: int, kind: str, **fields: Any) -> JournalEntry:
        """Append an entry and return it (the caller may still fill in ``status`` etc.)."""
        self._seq += 1
        entry = JournalEntry(seq=self._seq, time_ms=time_ms, kind=kind, **fields)
        self.entries.append(entry)
        return entry

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
