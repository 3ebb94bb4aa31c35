"""The engine's timeline: one heap of events on the world's clock, and what moves through it.

Every future happening (attempts, retries, cron fires, scenario timeline steps via :meth:`Scheduler.at`)
is an entry ``(due_ms, seq, event)`` in one heap, so the cost per event is O(log n). ``advance(dt)``
moves the virtual clock to each due instant in order and runs what is due there to completion (real HTTP
deliveries included: virtual time never moves during one), then stops at the target. A runner task
(``start()``) runs work due *now* promptly, so a plain publish is delivered without anyone calling
``advance``.

Cooperative: draining yields to the event loop (``await asyncio.sleep(0)``) after every
:data:`YIELD_EVERY` events, so a long ``advance`` (up to 500,000 events) does not stop the server from
answering other requests meanwhile. Yielding never reorders events: those due are still popped and run in
``(due_ms, seq)`` order; a request served meanwhile may add events, which run after the ones already due.

What an event *does* is the subclass's (:class:`~qstash_sim.engine.engine.Engine`): :meth:`_is_live`
(stale events are skipped lazily, when popped) and :meth:`_run_batch`.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Callable, MutableSequence
from datetime import timedelta
from typing import Any

from qstash_sim.base.clock import MAX_TIME_MS, Clock, VirtualClock
from qstash_sim.base.durations import to_ms
from qstash_sim.domain.world import World
from qstash_sim.engine.events import (
    CALL,
    MAX_ADVANCE_EVENTS,
    MAX_ADVANCE_MS,
    YIELD_EVERY,
    AdvanceLimitError,
    Event,
)

__all__ = ["Scheduler"]

log = logging.getLogger("qstash_sim.engine")


class Scheduler:
    """A heap of events on ``world.clock``, run in ``(due_ms, seq)`` order; subclasses say what events do.

    ``errors`` collects unexpected exceptions caught in the runner (a bounded deque, for tests).
    """

    def __init__(self, world: World, *, errors: MutableSequence[BaseException] | None = None) -> None:
        self.world = world
        self._heap: list[tuple[int, int, Event]] = []
        self._seq = 0
        self._epoch = 0  # bumped by reset(): work begun before it must not write into the new world
        self._lock = asyncio.Lock()
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[Any]] = set()  # attempts on the wire (real sockets)
        self._stir: asyncio.Event | None = None  # set when an attempt lands or an event is pushed
        self._closed = False
        self._events_run = 0  # live events run since start: what max_advance_events counts
        self._yielded_at = 0  # _events_run at the last yield to the event loop
        self.max_advance_ms = MAX_ADVANCE_MS
        self.max_advance_events = MAX_ADVANCE_EVENTS
        self.errors: MutableSequence[BaseException] = errors if errors is not None else []

    # what subclasses define

    def _is_live(self, seq: int, ev: Event) -> bool:
        """Whether a popped event still matters (else it is dropped unrun)."""
        if ev.kind == CALL:
            return ev.alive is None or ev.alive()
        raise NotImplementedError

    async def _run_batch(self, batch: list[tuple[int, Event]]) -> None:
        """Run the live events due at one instant, in ``seq`` order."""
        raise NotImplementedError

    # lifecycle

    async def close(self) -> None:
        """Stop the runner and wait for the work in flight."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        await self._join_inflight()

    def reset(self) -> None:
        """Drop every event; work begun before is discarded when it ends."""
        self._heap.clear()
        self._epoch += 1

    @property
    def clock(self) -> Clock:
        """The world's clock."""
        return self.world.clock

    @property
    def now(self) -> int:
        """The current time in ms."""
        return self.world.clock.now_ms()

    @property
    def pending_events(self) -> int:
        """Live events in the heap (stale ones, e.g. of a cancelled message, are not counted). O(n)."""
        return sum(1 for _, seq, ev in self._heap if self._is_live(seq, ev))

    @property
    def next_due_ms(self) -> int | None:
        """When the earliest live event is due, or ``None`` when nothing is scheduled."""
        self._drop_stale_head()
        return self._heap[0][0] if self._heap else None

    def at(self, due_ms: int, callback: Callable[[], None], *, alive: Callable[[], bool] | None = None) -> None:
        """Run ``callback()`` when the clock reaches ``due_ms``, in ``(due_ms, seq)`` order with every other event.

        O(log n). A ``due_ms`` in the past runs on the next drain. ``alive()`` (checked when popped, and by
        :attr:`pending_events`) returning ``False`` makes the event a no-op, e.g. for an unloaded scenario's
        timeline step. ``reset()`` drops it like every other event. The callback must not raise.
        """
        self._push(due_ms, Event(CALL, call=callback, alive=alive))

    async def advance(self, delta: timedelta | float | str) -> int:
        """Move the virtual clock by ``delta``, running every event due on the way, in order.

        Returns the new time. Events pushed while running (retries due before the target) run too.

        Bounded work: a ``delta`` over :attr:`max_advance_ms` (400 days) raises :class:`AdvanceLimitError`
        before anything runs; once :attr:`max_advance_events` (500,000) events have run, it stops after
        the instant being run and raises :class:`AdvanceLimitError`: what ran stays done, and the clock
        stays at that instant (the last event run), so advancing again goes on from there.
        """
        clock = self._virtual_clock("advance")
        ms = to_ms(delta)
        if ms < 0:
            raise ValueError(f"cannot advance by a negative delta ({delta!r})")
        if ms > self.max_advance_ms:
            raise AdvanceLimitError(
                f"{ms} ms is over the limit of one advance ({self.max_advance_ms // 86_400_000} days, "
                f"{self.max_advance_ms // 1000} seconds); advance in several steps"
            )
        if clock.now + ms > MAX_TIME_MS:
            raise AdvanceLimitError(
                f"advancing by {ms} ms would pass the clock's last instant, {MAX_TIME_MS} (9999-12-31T23:59:59.999Z)"
            )
        async with self._lock:
            target = clock.now + ms
            start = self._events_run
            epoch = self._epoch
            while True:
                await self._drain_now()
                if epoch != self._epoch:  # reset() while this advance yielded: the new world starts afresh
                    return clock.now
                ran = self._events_run - start
                if ran >= self.max_advance_events:
                    raise AdvanceLimitError(
                        f"stopped after {ran} events (the limit of one advance is {self.max_advance_events}, "
                        f"--max-advance-events) at {clock.now} ms, {target - clock.now} ms short of the target; "
                        "the events run so far are done and the clock is at the last of them: advance again to go on"
                    )
                due = self.next_due_ms
                if due is None or due > target:
                    break
                clock.move_to(max(due, clock.now))
            clock.move_to(target)
            return target

    async def settle(self) -> None:
        """Run everything due now (and what that makes due now) without moving time."""
        async with self._lock:
            await self._drain_now()
        await self._join_inflight()

    async def run_until(self, predicate: Callable[[], bool], limit: timedelta | float | str) -> bool:
        """Advance event by event until ``predicate()`` holds (``True``) or ``limit`` has passed (``False``).

        On success the clock stays at the instant the predicate became true.
        """
        clock = self._virtual_clock("run_until")
        async with self._lock:
            target = clock.now + to_ms(limit)
            epoch = self._epoch
            while True:
                await self._drain_now()
                if epoch != self._epoch:  # reset() while this ran: stop here
                    return bool(predicate())
                if predicate():
                    return True
                due = self.next_due_ms
                if due is None or due > target:
                    clock.move_to(target)
                    return bool(predicate())
                clock.move_to(max(due, clock.now))

    def start(self) -> None:
        """Start the runner task (in the running loop): work due now runs without anyone advancing."""
        if self._runner is None or self._runner.done():
            self._closed = False
            self._wake = asyncio.Event()
            self._runner = asyncio.get_running_loop().create_task(self._run(), name="qstash-sim-engine")

    async def idle(self) -> None:
        """Return once nothing is due now and no delivery is in flight."""
        while True:
            async with self._lock:
                await self._drain_now()
            await self._join_inflight()
            due = self.next_due_ms
            if not self._inflight and (due is None or due > self.now):
                return

    def _push(self, due: int, ev: Event) -> int:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, ev))
        self._poke()  # a sleeping real-clock runner must re-plan its wake-up
        return self._seq

    def _drop_stale_head(self) -> None:
        heap = self._heap
        while heap and not self._is_live(heap[0][1], heap[0][2]):
            heapq.heappop(heap)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()
        if self._stir is not None:
            self._stir.set()

    def _virtual_clock(self, what: str) -> VirtualClock:
        clock = self.world.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError(f"{what}() needs a VirtualClock; this engine runs on {clock!r}")
        return clock

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        real = not self.world.clock.is_virtual
        while not self._closed:
            wake.clear()
            try:
                async with self._lock:
                    await self._drain_now(wait=not real)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one bad event kill the runner; keep it for tests
                log.exception("engine runner error")
                self.errors.append(exc)
            await self.world.clock.wait_until(self.next_due_ms if real else None, wake)

    async def _join_inflight(self) -> None:
        # asyncio.wait, not gather: a caller that stops waiting (cancelled) leaves the attempts on the wire.
        while self._inflight:
            await asyncio.wait(list(self._inflight))

    async def _drain_now(self, *, wait: bool = True) -> None:
        """Pop and run every event due at or before now, batch by batch, until none is due now.

        With ``wait`` (a virtual clock), it also waits for every attempt on the wire to land (what they
        make due now runs too): an instant is over only when nothing started at it is still in flight,
        so the clock never passes an answer that has not arrived. Attempts on the wire run concurrently;
        a slow one holds back nothing but the end of the instant. Yields to the event loop every
        :data:`YIELD_EVERY` events (popping a huge batch included); events a request adds meanwhile sort
        after the ones already due, so the order is the same.
        """
        heap = self._heap
        epoch = self._epoch
        while True:
            if self._stir is None:
                self._stir = asyncio.Event()
            self._stir.clear()
            now = self.now
            batch: list[tuple[int, Event]] = []
            while heap and heap[0][0] <= now:
                _, seq, ev = heapq.heappop(heap)
                if self._is_live(seq, ev):
                    batch.append((seq, ev))
                    if len(batch) % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                        if epoch != self._epoch:  # reset() meanwhile: these events belong to the old world
                            return
            if not batch:
                if not (wait and self._inflight):
                    return
                await self._stir.wait()  # an attempt landed (or someone pushed an event)
                if epoch != self._epoch:
                    return
                continue
            await self._run_batch(batch)
            if self._events_run - self._yielded_at >= YIELD_EVERY:  # _maybe_yield, without a coroutine per batch
                await self._maybe_yield()
            if epoch != self._epoch:
                return

    async def _maybe_yield(self) -> None:
        """Let the event loop serve others once :data:`YIELD_EVERY` events ran since the last yield."""
        if self._events_run - self._yielded_at >= YIELD_EVERY:
            self._yielded_at = self._events_run
            await asyncio.sleep(0)

    def _caught(self, what: str, exc: Exception) -> None:
        log.error("engine error while %s: %s: %s", what, type(exc).__name__, exc)
        exc.__traceback__ = None  # keep the error, not every frame (and message) it references
        self.errors.append(exc)
