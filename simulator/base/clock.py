"""The simulator's one source of "now", and the only place that reads the wall clock or sleeps.

* :class:`VirtualClock` only moves when told to (``advance``/``move_to``); the engine wraps those calls
  so that events due on the way run in order.
* :class:`RealClock` follows the process's wall clock (``time.time_ns``). A time-freezing library in a
  user's test (freezegun, time-machine) moves it like every other reading in the process; the pytest
  fixture runs on a :class:`VirtualClock`, which no such library touches.

Times are integer milliseconds since the Unix epoch.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

from qstash_sim.base.durations import to_ms

__all__ = ["DEFAULT_START_MS", "MAX_TIME_MS", "Clock", "RealClock", "VirtualClock", "format_ms", "real_monotonic_ms"]

DEFAULT_START_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
MAX_TIME_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z: the latest instant a datetime can hold


def real_monotonic_ms() -> float:
    """Monotonic milliseconds of this process (for measuring how long a real HTTP exchange took)."""
    return time.perf_counter_ns() / 1_000_000


def format_ms(ms: int) -> str:
    """``1767225600000`` -> ``"2026-01-01T00:00:00.000Z"`` (for logs and error messages)."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


@runtime_checkable
class Clock(Protocol):
    """What the core asks for the time."""

    is_virtual: bool

    def now_ms(self) -> int:
        """The current time in integer ms since the epoch."""
        ...

    async def wait_until(self, ms: int | None, wake: asyncio.Event) -> None:
        """Return when time ``ms`` is reached (real clock only) or when ``wake`` is set.

        ``ms=None`` waits for ``wake`` alone. A virtual clock never moves by itself, so it only waits
        for ``wake``.
        """
        ...


class VirtualClock:
    """A manual clock. ``VirtualClock().now`` -> ``1767225600000`` (2026-01-01T00:00Z).

    ``advance`` and ``move_to`` only move time; nothing runs. Use the engine's ``advance`` to move time
    *and* run what falls due. ``watch(fn)`` calls ``fn(ms)`` each time the clock is moved or set (e.g. to
    keep the process's own clock at virtual time: ``conftest_plugin``'s ``clock.process_time()``).
    """

    __slots__ = ("_now", "_watchers")
    is_virtual = True

    def __init__(self, start_ms: int | datetime = DEFAULT_START_MS) -> None:
        self._now = _as_ms(start_ms)
        self._watchers: list[Callable[[int], None]] = []

    def watch(self, fn: Callable[[int], None]) -> Callable[[], None]:
        """Call ``fn(now_ms)`` whenever the clock moves or is set; returns what stops it."""
        self._watchers.append(fn)

        def stop() -> None:
            if fn in self._watchers:
                self._watchers.remove(fn)

        return stop

    @property
    def now(self) -> int:
        """The current virtual time in ms."""
        return self._now

    def now_ms(self) -> int:
        """The current virtual time in ms."""
        return self._now

    def advance(self, delta: timedelta | float | str) -> int:
        """Move forward by ``delta`` (``timedelta``, seconds, or ``"2m"``); returns the new time."""
        ms = to_ms(delta)
        if ms < 0:
            raise ValueError(f"cannot advance by a negative delta ({delta!r}); a clock only moves forward")
        return self.move_to(self._now + ms)

    def move_to(self, t: int | datetime) -> int:
        """Jump to an absolute time (ms or aware ``datetime``); moving backwards is a ``ValueError``."""
        ms = _as_ms(t)
        if ms < self._now:
            raise ValueError(f"cannot move the clock backwards from {format_ms(self._now)} to {format_ms(ms)}")
        if ms != self._now:
            self._now = ms
            for fn in self._watchers:
                fn(ms)
        return self._now

    def set(self, t: int | datetime) -> int:
        """Put the clock at ``t``, backwards included: only for a reset, when nothing is scheduled."""
        ms = _as_ms(t)
        _check_range(ms)
        self._now = ms
        for fn in self._watchers:
            fn(ms)
        return self._now

    async def wait_until(self, ms: int | None, wake: asyncio.Event) -> None:
        """Virtual time never passes by itself: wait for ``wake`` only."""
        await wake.wait()

    def __repr__(self) -> str:
        return f"VirtualClock({format_ms(self._now)})"


class RealClock:
    """The process's wall clock (``time.time_ns``): what ``qstash-sim serve --clock real`` runs on."""

    __slots__ = ()
    is_virtual = False

    @property
    def now(self) -> int:
        """The current wall time in ms."""
        return self.now_ms()

    def now_ms(self) -> int:
        """The current wall time in ms."""
        return time.time_ns() // 1_000_000

    async def wait_until(self, ms: int | None, wake: asyncio.Event) -> None:
        """Sleep until wall time ``ms`` or until ``wake`` is set, whichever comes first."""
        if wake.is_set():
            return
        timeout = None if ms is None else max(0.0, (ms - self.now_ms()) / 1000)
        if timeout == 0.0:
            return
        try:
            await asyncio.wait_for(wake.wait(), timeout)
        except TimeoutError:
            pass

    def __repr__(self) -> str:
        return "RealClock()"


def _check_range(ms: int) -> None:
    if not 0 <= ms <= MAX_TIME_MS:
        raise ValueError(f"{ms} ms is outside the clock's range: 0 (1970) to {MAX_TIME_MS} (9999-12-31T23:59:59.999Z)")


def _as_ms(t: int | datetime) -> int:
    if isinstance(t, datetime):
        if t.tzinfo is None:
            raise ValueError(f"datetime {t!r} has no timezone; pass an aware datetime (e.g. tzinfo=UTC)")
        return (t - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)
    if isinstance(t, bool) or not isinstance(t, int):
        raise TypeError(f"time must be int ms since the epoch or an aware datetime, got {type(t).__name__}")
    return t
