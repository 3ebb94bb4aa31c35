"""What the engine's heap holds, and the bounds of one ``advance``: shared by :mod:`qstash_sim.engine.engine`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from qstash_sim.base.clock import Clock
from qstash_sim.domain.message import Message
from qstash_sim.domain.schedule import Schedule
from qstash_sim.engine.transport import Outcome

# The most one ``advance`` may do: a span of virtual time (checked before any work) and a number of events
# (checked as they run). Without them ``advance("1000y")`` with a per-minute schedule fires ~5e8 times on
# the event loop, and nothing else is served for hours.
MAX_ADVANCE_MS = 400 * 86_400_000  # 400 days
MAX_ADVANCE_EVENTS = 500_000  # about 15 s of work on one core: an advance must answer in time
# Events run between two yields to the event loop. Serving one request takes the loop a few passes, so
# this is what sets a request's latency during a long advance: 100 events (a few ms) keep it in the tens
# of ms; a yield costs a few microseconds.
YIELD_EVERY = 100
SEND_CHUNK = 1_000  # kept for compatibility: the cap on attempts on the wire is Limits.in_flight now


SignClock = Literal["process", "virtual"] | Clock


class AdvanceLimitError(ValueError):
    """An ``advance`` over :attr:`Engine.max_advance_ms`, or one that ran :attr:`Engine.max_advance_events`."""


ATTEMPT, COMPLETE, FIRE, CALL = 0, 1, 2, 3  # the kinds of Event


@dataclass(slots=True)
class Event:
    """One heap entry's payload (the entry is ``(due_ms, seq, event)``)."""

    kind: int
    msg: Message | None = None
    schedule: Schedule | None = None
    generation: int = 0
    outcome: Outcome | None = None  # for COMPLETE: the answer that arrives later on the virtual clock
    call: Callable[[], None] | None = None  # for CALL: what to run (see Engine.at)
    alive: Callable[[], bool] | None = None  # for CALL: False once the caller no longer wants it run
