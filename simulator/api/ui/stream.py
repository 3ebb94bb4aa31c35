"""``GET /_sim/events/stream``: the journal as server-sent events, bounded.

A :class:`JournalStream` is an async iterator of byte chunks the HTTP adapter sends as they come: first
the kept entries after ``since``, then (``live``) each new one, checked every :data:`POLL_S` seconds (the
journal has no listeners; a poll costs one comparison when nothing happened). At most :data:`MAX_STREAMS`
live ones are open at once per server; each ends when the client leaves or the server stops (the adapter
closes it). Not live (a client that did not ask for ``text/event-stream``: curl, a contract fuzzer), it
sends at most :data:`BACKLOG` entries and ends.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from qstash_sim.api import wire
from qstash_sim.domain.journal import JournalEntry
from qstash_sim.http.dispatch import encode_json

if TYPE_CHECKING:
    from qstash_sim.simulator import Simulator

__all__ = ["BACKLOG", "BATCH", "HEARTBEAT_S", "MAX_STREAMS", "POLL_S", "JournalStream", "StreamSlots"]

MAX_STREAMS = 8  # open event streams per server (429 beyond)
POLL_S = 0.1  # seconds between looks at the journal when nothing is new
HEARTBEAT_S = 15.0  # a comment line after this long without an event
BATCH = 500  # entries per chunk at most (a long backlog goes out in several chunks, the loop free between)
BACKLOG = 10_000  # entries a stream that is not live sends before it ends


class StreamSlots:
    """How many streams are open; :meth:`take` refuses past :data:`MAX_STREAMS`."""

    def __init__(self, cap: int = MAX_STREAMS) -> None:
        self.cap = cap
        self.open = 0

    def take(self) -> bool:
        if self.open >= self.cap:
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open = max(0, self.open - 1)


def _is_read(e: JournalEntry) -> bool:
    return e.kind == "request" and e.method == "GET" and (e.path or "").startswith("/_sim/")


def _event(e: JournalEntry) -> str:
    return f"id: {e.seq}\nevent: journal\ndata: {encode_json(wire.journal_entry(e))}\n\n"


class JournalStream:
    """The chunks of one event stream (see the module docstring); holds a slot until closed."""

    def __init__(
        self, sim: Simulator, slots: StreamSlots | None, *, since: int = 0, reads: bool = False, live: bool = True
    ) -> None:
        self.sim = sim
        self.slots = slots  # the live streams' slot this one holds (None: not live, no slot)
        self.live = live
        self.sent = 0
        self.last = since
        self.reads = reads
        self._closed = False
        self._started = False

    def __aiter__(self) -> JournalStream:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        if not self._started:
            self._started = True
            return b"retry: 2000\n: qstash-sim journal\n\n"
        idle = 0.0
        while True:
            chunk = self._pending()
            if chunk:
                return chunk
            if not self.live:
                await self.aclose()
                raise StopAsyncIteration
            await asyncio.sleep(POLL_S)
            idle += POLL_S
            if idle >= HEARTBEAT_S:
                return b": heartbeat\n\n"

    def _pending(self) -> bytes:
        """The events written since the last look (at most :data:`BATCH`), then the clock; empty if none."""
        entries = self.sim.world.journal.entries
        parts: list[str] = []
        if entries.appended < self.last:  # a reset restarted the numbering
            self.last = 0
            parts.append("event: reset\ndata: {}\n\n")
        sent = 0
        room = BATCH if self.live else min(BATCH, BACKLOG - self.sent)
        for seq, e in entries.since(self.last) if room > 0 else ():
            self.last = seq
            if not self.reads and _is_read(e):
                continue
            parts.append(_event(e))
            sent += 1
            if sent >= room:
                break
        self.sent += sent
        if not parts:
            return b""
        clock = self.sim.clock
        parts.append(f"event: clock\ndata: {encode_json({'now': clock.now_ms(), 'virtual': clock.is_virtual})}\n\n")
        return "".join(parts).encode()

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            if self.slots is not None:
                self.slots.give_back()
