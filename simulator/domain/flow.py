"""Flow control: what a message asks (``Upstash-Flow-Control-Key`` / ``-Value``) and the state of a key.

A key limits the deliveries of every message that names it, across queues and plain publishes:
``parallelism`` in flight at once, and ``rate`` starts per ``period``. QStash's rate model: a period starts at
the first start after the previous one ended (``ratePeriodStart``) and admits at most ``rate`` starts until it
ends. A message's value updates the key's limits, unless they are pinned.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["FlowControl", "FlowKey"]


@dataclass(frozen=True, slots=True)
class FlowControl:
    """What one message asks: ``FlowControl("user-42", parallelism=2, rate=10, period_s=60)``."""

    key: str
    parallelism: int | None = None  # None: no limit on deliveries in flight
    rate: int | None = None  # None: no limit on starts per period
    period_s: int = 1  # the rate's period, seconds (QStash's default: 1 s)


@dataclass(slots=True)
class FlowKey:
    """The state of one flow-control key of one account."""

    key: str
    parallelism: int | None = None
    rate: int | None = None
    period_s: int = 1
    paused: bool = False
    pinned_parallelism: bool = False
    pinned_rate: bool = False
    in_flight: set[str] = field(default_factory=set)  # message ids of attempts started and not finished
    waiting: deque[str] = field(default_factory=deque)  # message ids held back, in arrival order
    period_start_ms: int | None = None  # when the current rate period started (None: none running)
    period_count: int = 0  # starts admitted in the current period
    release_at_ms: int | None = None  # when a timer will release the waitlist (the period's end), if planned

    @property
    def period_ms(self) -> int:
        """The rate period in ms."""
        return self.period_s * 1000

    def period_running(self, now: int) -> bool:
        """Whether a rate period has started and not ended at ``now``."""
        return self.period_start_ms is not None and now < self.period_start_ms + self.period_ms

    def rate_count(self, now: int) -> int:
        """Starts admitted in the period running at ``now`` (0 when none runs)."""
        return self.period_count if self.period_running(now) else 0

    def adopt(self, fc: FlowControl) -> None:
        """Take the limits a new message asks for, except pinned ones."""
        if not self.pinned_parallelism:
            self.parallelism = fc.parallelism
        if not self.pinned_rate:
            self.rate, self.period_s = fc.rate, fc.period_s
