"""The delivery engine: one event heap for attempts, retries, cron fires and queue releases.

Every future happening (attempts, retries, cron fires, scenario timeline steps via :meth:`Engine.at`) is an
entry ``(due_ms, seq, event)`` in one heap, so the cost per event is
O(log n). ``advance(dt)`` moves the virtual clock to each due instant in order and runs what is due there
to completion (real HTTP deliveries included: virtual time never moves during one), then stops at the
target. A runner task (``start()``) runs work due *now* promptly, so a plain publish is delivered without
anyone calling ``advance``.

Determinism: events due at the same instant run in ``seq`` order. Consecutive attempts due at one instant
are *sent* concurrently (throughput against real destinations), but their outcomes are applied, and
journalled, in ``seq`` order; so the same inputs and seed give the same journal and inbox order.

Cooperative: draining yields to the event loop (``await asyncio.sleep(0)``) after every
:data:`YIELD_EVERY` events, so a long ``advance`` (up to 500,000 events) does not stop the server from
answering other requests meanwhile. Yielding never reorders events: those due are still popped and run in
``(due_ms, seq)`` order; a request served meanwhile may add events, which run after the ones already due.
Attempts due at one instant are sent at most :data:`SEND_CHUNK` at a time (so a huge instant does not
hold every prepared request in memory at once).

Staleness is handled lazily: a message remembers (in ``_armed``) the seq of its one live attempt event; a
cancelled message, an overwritten schedule (``generation``/identity) or a ``reset()`` makes older events
no-ops when they are popped.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable, MutableSequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from croniter import croniter

from qstash_sim.base.clock import Clock, VirtualClock
from qstash_sim.base.durations import to_ms
from qstash_sim.domain.account import Account
from qstash_sim.domain.message import FINAL_STATES, EventState, HistoryEvent, Message, MessageState
from qstash_sim.domain.queue import Queue
from qstash_sim.domain.schedule import Schedule
from qstash_sim.domain.world import World
from qstash_sim.engine.attempt import AttemptRules, Prepared, Verdict
from qstash_sim.engine.cron import cron_iter
from qstash_sim.engine.transport import Outcome, Transport

__all__ = [
    "MAX_ADVANCE_EVENTS",
    "MAX_ADVANCE_MS",
    "SEND_CHUNK",
    "YIELD_EVERY",
    "AdvanceLimitError",
    "Engine",
    "SignClock",
]

# The most one ``advance`` may do: a span of virtual time (checked before any work) and a number of events
# (checked as they run). Without them ``advance("1000y")`` with a per-minute schedule fires ~5e8 times on
# the event loop, and nothing else is served for hours.
MAX_ADVANCE_MS = 400 * 86_400_000  # 400 days
MAX_ADVANCE_EVENTS = 500_000  # about 15 s of work on one core: an advance must answer in time
# Events run between two yields to the event loop. Serving one request takes the loop a few passes, so
# this is what sets a request's latency during a long advance: 100 events (a few ms) keep it in the tens
# of ms; a yield costs a few microseconds.
YIELD_EVERY = 100
SEND_CHUNK = 1_000  # attempts due at one instant sent (concurrently) together, at most


SignClock = Literal["process", "virtual"] | Clock


class AdvanceLimitError(ValueError):
    """An ``advance`` over :attr:`Engine.max_advance_ms`, or one that ran :attr:`Engine.max_advance_events`."""


log = logging.getLogger("qstash_sim.engine")

_ATTEMPT, _COMPLETE, _FIRE, _CALL = 0, 1, 2, 3


@dataclass(slots=True)
class _Event:
    kind: int
    msg: Message | None = None
    schedule: Schedule | None = None
    generation: int = 0
    outcome: Outcome | None = None  # for _COMPLETE: the answer that arrives later on the virtual clock
    call: Callable[[], None] | None = None  # for _CALL: what to run (see Engine.at)
    alive: Callable[[], bool] | None = None  # for _CALL: False once the caller no longer wants it run


class Engine:
    """Runs messages to their end (delivered, failed, cancelled) and fires schedules.

    The core stores a message (with a CREATED history event) in ``world.accounts.get(msg.account)
    .messages`` and calls :meth:`submit`; on each cron fire the engine calls
    ``on_schedule_fire(schedule, fire_ms)``, which builds, stores, charges and journals the message (or
    returns ``None``); the engine then submits it.

    ``sign_clock`` is what time goes into signatures (``iat``/``nbf``/``exp``): ``"process"`` (the default)
    signs a delivery over a real socket with the process's wall clock, ``time.time()``, which freezegun
    and time-machine move like every other reading in the process, so a receiver in the same process
    (under ``freeze_time`` too) accepts it; a virtual delivery is signed with the simulator's clock, so
    the inbox stays reproducible. ``"virtual"`` signs every delivery with the simulator's clock; a
    :class:`Clock` signs with that clock.

    ``errors`` collects unexpected exceptions caught in the runner (a bounded deque, for tests).
    """

    def __init__(
        self,
        world: World,
        transport: Transport,
        *,
        on_schedule_fire: Callable[[Schedule, int], Message | None],
        sign_clock: SignClock = "process",
        errors: MutableSequence[BaseException] | None = None,
    ) -> None:
        self.world = world
        self.transport = transport
        self.on_schedule_fire = on_schedule_fire
        if not (sign_clock in ("process", "virtual") or isinstance(sign_clock, Clock)):
            raise ValueError(f"sign_clock must be 'process', 'virtual' or a Clock, got {sign_clock!r}")
        self.sign_clock = sign_clock
        is_real = getattr(transport, "is_real", None)
        self._real_url: Callable[[str], bool] = is_real if callable(is_real) else (lambda url: False)
        self._heap: list[tuple[int, int, _Event]] = []
        self._seq = 0
        self._epoch = 0  # bumped by reset(): work begun before it must not write into the new world
        self._armed: dict[tuple[str, str], int] = {}  # (account, message id) -> seq of its live event
        self._parked: dict[tuple[str, str], list[Message]] = {}  # (account, queue) -> retries held by pause
        # (account, schedule id) -> (schedule, generation, iterator): get_next is cheap, parsing is not
        self._crons: dict[tuple[str, str], tuple[Schedule, int, croniter]] = {}
        self._rules = AttemptRules(world)
        self._lock = asyncio.Lock()
        self._wake: asyncio.Event | None = None
        self._runner: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._closed = False
        self._events_run = 0  # live events run since start: what max_advance_events counts
        self._yielded_at = 0  # _events_run at the last yield to the event loop
        self.max_advance_ms = MAX_ADVANCE_MS
        self.max_advance_events = MAX_ADVANCE_EVENTS
        self.errors: MutableSequence[BaseException] = errors if errors is not None else []

    # ----------------------------------------------------------------------------------------------
    # properties

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

    # ----------------------------------------------------------------------------------------------
    # what the core calls

    def submit(self, msg: Message) -> None:
        """Schedule ``msg``'s first attempt at ``max(now, not_before)``, through its queue's gate if any."""
        if msg.state in FINAL_STATES:
            return
        acct = self.world.accounts.get(msg.account)
        if msg.queue_name:
            queue = acct.queues[msg.queue_name]  # the core creates it with the message
            queue.waiting.append(msg.message_id)
            self._pump(acct, queue)
        else:
            self._arm(msg, max(self.now, msg.not_before_ms))
        self._poke()

    def cancel(self, msg: Message) -> bool:
        """Cancel ``msg`` unless it is final already (then ``False``). Its pending events become no-ops."""
        if msg.state in FINAL_STATES:
            return False
        now = self.now
        msg.state = MessageState.CANCELLED
        msg.next_delivery_ms = None
        msg.history.append(HistoryEvent(now, EventState.CANCELLED, retried=msg.retried))
        acct = self.world.accounts.get(msg.account)
        if msg.queue_name and (queue := acct.queues.get(msg.queue_name)) is not None:
            with contextlib.suppress(ValueError):
                queue.waiting.remove(msg.message_id)
        self._finalize(acct, msg)
        self._poke()
        return True

    def queue_resumed(self, account: str, name: str) -> None:
        """A queue was resumed (or its parallelism raised): release held retries, start waiting messages."""
        acct = self.world.accounts.get(account)
        queue = acct.queues.get(name)
        held = self._parked.pop((account, name), [])
        for msg in held:
            if msg.state not in FINAL_STATES:
                self._arm(msg, max(self.now, msg.next_delivery_ms or msg.not_before_ms))
        if queue is not None:
            self._pump(acct, queue)
        self._poke()

    def queue_deleted(self, account: str, name: str) -> int:
        """Cancel every unfinished message of queue ``name``; returns how many (call before removing it)."""
        acct = self.world.accounts.get(account)
        queue = acct.queues.get(name)
        if queue is not None:
            queue.paused = True  # so cancelling one message does not start the next
        self._parked.pop((account, name), None)
        cancelled = 0
        for msg in list(acct.messages.values()):
            if msg.queue_name == name and msg.state not in FINAL_STATES:
                cancelled += self.cancel(msg)
        if queue is not None:
            queue.waiting.clear()
            queue.active.clear()
        return cancelled

    def schedule_changed(self, schedule: Schedule) -> None:
        """(Re)plan ``schedule``: next fire computed from now; older fire events become stale.

        Bumps ``schedule.generation``. Raises ``ValueError`` for a bad cron expression or zone.
        """
        schedule.generation += 1
        it = cron_iter(schedule.cron, self.now)
        self._crons[(schedule.account, schedule.schedule_id)] = (schedule, schedule.generation, it)
        due = round(it.get_next(float) * 1000)
        schedule.next_schedule_time = due
        self._push(due, _Event(_FIRE, schedule=schedule, generation=schedule.generation))
        self._poke()

    def at(self, due_ms: int, callback: Callable[[], None], *, alive: Callable[[], bool] | None = None) -> None:
        """Run ``callback()`` when the clock reaches ``due_ms``, in ``(due_ms, seq)`` order with every other event.

        O(log n). A ``due_ms`` in the past runs on the next drain. ``alive()`` (checked when popped, and by
        :attr:`pending_events`) returning ``False`` makes the event a no-op, e.g. for an unloaded scenario's
        timeline step. ``reset()`` drops it like every other event. The callback must not raise.
        """
        self._push(due_ms, _Event(_CALL, call=callback, alive=alive))

    def schedule_deleted(self, schedule: Schedule) -> None:
        """Stop firing ``schedule`` (its pending fire becomes stale)."""
        schedule.generation += 1
        schedule.next_schedule_time = None
        key = (schedule.account, schedule.schedule_id)
        if key in self._crons and self._crons[key][0] is schedule:
            del self._crons[key]

    # ----------------------------------------------------------------------------------------------
    # running

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

    async def close(self) -> None:
        """Stop the runner, wait for deliveries in flight, and close the transport if it can be closed."""
        self._closed = True
        if self._runner is not None:
            self._runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._runner
            self._runner = None
        await self._join_inflight()
        closer = getattr(self.transport, "close", None)
        if closer is not None:
            await closer()

    def reset(self) -> None:
        """Drop every event and every engine-side memory (call with ``world.reset()``)."""
        self._heap.clear()
        self._armed.clear()
        self._parked.clear()
        self._crons.clear()
        self._rules.reset()
        self._epoch += 1

    # ----------------------------------------------------------------------------------------------
    # heap

    def _push(self, due: int, ev: _Event) -> int:
        self._seq += 1
        heapq.heappush(self._heap, (due, self._seq, ev))
        self._poke()  # a sleeping real-clock runner must re-plan its wake-up
        return self._seq

    def _arm(self, msg: Message, due: int) -> None:
        seq = self._push(due, _Event(_ATTEMPT, msg=msg))
        self._armed[(msg.account, msg.message_id)] = seq

    def _is_live(self, seq: int, ev: _Event) -> bool:
        if ev.kind == _CALL:
            return ev.alive is None or ev.alive()
        if ev.kind == _FIRE:
            sch = ev.schedule
            assert sch is not None
            acct = self.world.accounts.find(sch.account)
            return acct is not None and acct.schedules.get(sch.schedule_id) is sch and sch.generation == ev.generation
        msg = ev.msg
        assert msg is not None
        return self._armed.get((msg.account, msg.message_id)) == seq

    def _drop_stale_head(self) -> None:
        heap = self._heap
        while heap and not self._is_live(heap[0][1], heap[0][2]):
            heapq.heappop(heap)

    def _poke(self) -> None:
        if self._wake is not None:
            self._wake.set()

    def _virtual_clock(self, what: str) -> VirtualClock:
        clock = self.world.clock
        if not isinstance(clock, VirtualClock):
            raise TypeError(f"{what}() needs a VirtualClock; this engine runs on {clock!r}")
        return clock

    # ----------------------------------------------------------------------------------------------
    # the runner

    async def _run(self) -> None:
        assert self._wake is not None
        wake = self._wake
        real = not self.world.clock.is_virtual
        while not self._closed:
            wake.clear()
            try:
                async with self._lock:
                    await self._drain_now(spawn=real)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # never let one bad event kill the runner; keep it for tests
                log.exception("engine runner error")
                self.errors.append(exc)
            await self.world.clock.wait_until(self.next_due_ms if real else None, wake)

    async def _join_inflight(self) -> None:
        while self._inflight:
            await asyncio.gather(*list(self._inflight), return_exceptions=True)

    async def _drain_now(self, *, spawn: bool = False) -> None:
        """Pop and run every event due at or before now, batch by batch, until none is due now.

        Yields to the event loop every :data:`YIELD_EVERY` events (popping a huge batch included); events
        a request adds meanwhile sort after the ones already due, so the order is the same.
        """
        heap = self._heap
        epoch = self._epoch
        while True:
            now = self.now
            batch: list[tuple[int, _Event]] = []
            while heap and heap[0][0] <= now:
                _, seq, ev = heapq.heappop(heap)
                if self._is_live(seq, ev):
                    batch.append((seq, ev))
                    if len(batch) % YIELD_EVERY == 0:
                        await asyncio.sleep(0)
                        if epoch != self._epoch:  # reset() meanwhile: these events belong to the old world
                            return
            if not batch:
                return
            if spawn:
                # Real clock: do not let one slow destination hold back everything else.
                task = asyncio.get_running_loop().create_task(self._guarded(batch))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)
            else:
                await self._run_batch(batch)
            await self._maybe_yield()
            if epoch != self._epoch:
                return

    async def _maybe_yield(self) -> None:
        """Let the event loop serve others once :data:`YIELD_EVERY` events ran since the last yield."""
        if self._events_run - self._yielded_at >= YIELD_EVERY:
            self._yielded_at = self._events_run
            await asyncio.sleep(0)

    async def _guarded(self, batch: list[tuple[int, _Event]]) -> None:
        try:
            await self._run_batch(batch)
        except Exception as exc:  # a spawned batch has nobody to raise to: keep it for tests
            log.exception("engine batch error")
            self.errors.append(exc)

    async def _run_batch(self, batch: list[tuple[int, _Event]]) -> None:
        self._events_run += len(batch)
        epoch = self._epoch
        pending: list[Prepared] = []
        for i, (_seq, ev) in enumerate(batch):
            if i and i % YIELD_EVERY == 0:
                # A huge instant: let others be served (a cancel meanwhile wins over a prepared attempt,
                # as it does while one is on the wire); send what is prepared once it is a chunk.
                if len(pending) >= SEND_CHUNK:
                    await self._send_and_apply(pending)
                    pending = []
                await asyncio.sleep(0)
                if epoch != self._epoch:  # reset() meanwhile: the rest belongs to the old world
                    return
            if ev.kind == _ATTEMPT:
                assert ev.msg is not None
                self._armed.pop((ev.msg.account, ev.msg.message_id), None)
                try:
                    prepared = self._prepare(ev.msg)
                except Exception as exc:  # a bug building the request fails this attempt only
                    self._caught(f"preparing {ev.msg.message_id}", exc)
                    self._apply(ev.msg, Outcome(status=None, error=f"internal error: {type(exc).__name__}"))
                    continue
                if prepared is not None:
                    pending.append(prepared)
                continue
            # A non-attempt event: apply earlier attempts first so effects stay in seq order.
            if pending:
                await self._send_and_apply(pending)
                pending = []
            if ev.kind == _COMPLETE:
                assert ev.msg is not None and ev.outcome is not None
                self._armed.pop((ev.msg.account, ev.msg.message_id), None)
                self._apply(ev.msg, ev.outcome)
            else:
                try:
                    if ev.kind == _CALL:
                        assert ev.call is not None
                        if ev.alive is None or ev.alive():  # it may have gone stale while others were served
                            ev.call()
                    else:
                        self._fire(ev)
                except Exception as exc:  # one bad event (a bug) must not stop the others due with it
                    self._caught("running an event", exc)
        if pending:
            await self._send_and_apply(pending)

    async def _send_and_apply(self, pending: list[Prepared]) -> None:
        epoch = self._epoch
        if len(pending) == 1:
            outcomes = [await self._safe_send(pending[0])]
        else:
            outcomes = list(await asyncio.gather(*(self._safe_send(p) for p in pending)))
        if epoch != self._epoch:  # reset() while we were on the wire: the world is new, drop it all
            return
        for p, outcome in zip(pending, outcomes, strict=True):
            self._rules.record(p.delivery, outcome)
            if outcome.virtual and outcome.duration_ms > 0:
                # The destination takes virtual time to answer: finish the attempt that much later.
                seq = self._push(self.now + outcome.duration_ms, _Event(_COMPLETE, msg=p.msg, outcome=outcome))
                self._armed[(p.msg.account, p.msg.message_id)] = seq
            else:
                self._apply(p.msg, outcome)

    def _caught(self, what: str, exc: Exception) -> None:
        log.error("engine error while %s: %s: %s", what, type(exc).__name__, exc)
        exc.__traceback__ = None  # keep the error, not every frame (and message) it references
        self.errors.append(exc)

    async def _safe_send(self, p: Prepared) -> Outcome:
        try:
            return await self.transport.send(p.request, p.timeout_ms)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a transport bug must fail the attempt, not the engine
            log.exception("transport error for %s", p.request.url)
            return Outcome(status=None, error=f"transport error: {type(exc).__name__}: {exc}")

    # ----------------------------------------------------------------------------------------------
    # attempts

    def _prepare(self, msg: Message) -> Prepared | None:
        if msg.state in FINAL_STATES:
            return None
        if msg.queue_name:
            queue = self.world.accounts.get(msg.account).queues.get(msg.queue_name)
            if queue is not None and queue.paused:
                # A paused queue starts nothing, retries included; resume releases it.
                self._parked.setdefault((msg.account, msg.queue_name), []).append(msg)
                return None
        now = self.now
        sign = self.sign_clock
        if isinstance(sign, Clock):
            sign_now = sign.now_ms()
        elif sign == "process" and self._real_url(msg.url):
            sign_now = time.time_ns() // 1_000_000
        else:
            sign_now = now
        return self._rules.start(msg, now, sign_now)

    def _apply(self, msg: Message, outcome: Outcome) -> None:
        """Apply one outcome. Whatever the destination answered, the message ends delivered, retrying,
        failed (in the DLQ) or cancelled: an error while applying it (a bug) fails the attempt instead."""
        try:
            verdict = self._rules.apply(msg, outcome, self.now)
        except Exception as exc:
            self._caught(f"applying the answer to {msg.message_id}", exc)
            verdict = self._rules.apply(
                msg, Outcome(status=None, error=f"internal error: {type(exc).__name__}"), self.now
            )
        if verdict is Verdict.RETRY:
            assert msg.next_delivery_ms is not None
            self._arm(msg, msg.next_delivery_ms)
        elif verdict is not Verdict.CANCELLED:  # a cancel already freed everything
            self._finalize(self.world.accounts.get(msg.account), msg)

    def _finalize(self, acct: Account, msg: Message) -> None:
        """A message reached a final state: free its queue slot, update its schedule's states, and keep the
        world under its limits (the oldest final messages, DLQ entries and dedup ids go first)."""
        self._armed.pop((msg.account, msg.message_id), None)
        queue = acct.queues.get(msg.queue_name) if msg.queue_name else None
        if queue is not None and msg.message_id in queue.active:
            queue.active.discard(msg.message_id)
            self._pump(acct, queue)
        sch = acct.schedules.get(msg.schedule_id) if msg.schedule_id else None
        if sch is not None and msg.message_id in sch.last_schedule_states:
            ok = msg.state == MessageState.DELIVERED
            sch.last_schedule_states[msg.message_id] = "SUCCESS" if ok else "FAIL"
        self.world.message_final(acct, msg)

    def _pump(self, acct: Account, queue: Queue) -> None:
        """Start waiting messages while the queue has free slots and is not paused (FIFO)."""
        while not queue.paused and queue.waiting and len(queue.active) < max(1, queue.parallelism):
            mid = queue.waiting.popleft()
            msg = acct.messages.get(mid)
            if msg is None or msg.state in FINAL_STATES:
                continue
            queue.active.add(mid)
            self._arm(msg, max(self.now, msg.not_before_ms))

    # ----------------------------------------------------------------------------------------------
    # schedules

    def _fire(self, ev: _Event) -> None:
        sch = ev.schedule
        assert sch is not None
        fire_ms = self.now
        if not sch.is_paused:
            msg = self.on_schedule_fire(sch, fire_ms)
            sch.last_schedule_time = fire_ms
            if msg is not None:
                # Only the latest fire's messages are tracked, so the map stays small over 43,200 fires.
                sch.last_schedule_states = {msg.message_id: "IN_PROGRESS"}
                self.submit(msg)
        else:
            log.debug("schedule %s paused: fire at %d skipped", sch.schedule_id, fire_ms)
        # on_schedule_fire may have replaced or deleted the schedule: then it plans its own future.
        if not self._is_live(0, ev):
            return
        key = (sch.account, sch.schedule_id)
        cached = self._crons.get(key)
        if cached is None or cached[0] is not sch or cached[1] != sch.generation:
            cached = (sch, sch.generation, cron_iter(sch.cron, fire_ms))
            self._crons[key] = cached
        it = cached[2]
        due = round(it.get_next(float) * 1000)
        while due <= fire_ms:  # never fire twice at one instant
            due = round(it.get_next(float) * 1000)
        sch.next_schedule_time = due
        self._push(due, _Event(_FIRE, schedule=sch, generation=sch.generation))
