"""The delivery engine: messages to their end (delivered, failed, cancelled), queues, cron fires.

It runs on the :class:`~qstash_sim.engine.scheduler.Scheduler`'s timeline (one heap of events, one
clock). Determinism: events due at the same instant run in ``seq`` order, and attempts start in that
order. An attempt to the virtual destination is answered inline, its outcome applied at once (so a run
on virtual destinations is reproducible byte for byte). An attempt to a real socket goes on the wire as
a task of its own: every attempt due at an instant is on the wire at once (up to the cap, below), and
its outcome is applied when it lands, in the order answers arrive; a slow or hanging destination holds
back no other attempt. On a virtual clock the instant ends only once every attempt started at it has
landed (what that releases runs at the same instant), then the clock moves on: ``advance``/``settle``
return once everything due is settled. Starts are ordered (``seq``, then each gate first in first
out); when real destinations answer in a different order from one run to the next, what their answers
release (a waiting message of a flow-control key, a queue's next message, a retry) follows that order.

Gates, in order: a paused queue holds the attempt; its flow-control key (:mod:`qstash_sim.engine.flow`)
may put it on the key's waitlist; then the cap on attempts on real sockets at once (``Limits.in_flight``,
``--limit in-flight=N``, default 100) holds it, first come first started, until one ends.

Staleness is handled lazily: a message remembers (in ``_armed``) the seq of its one live attempt event; a
cancelled message, an overwritten schedule (``generation``/identity) or a ``reset()`` makes older events
no-ops when they are popped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from collections.abc import Callable, MutableSequence
from typing import Literal

from qstash_sim.base.clock import Clock
from qstash_sim.base.seed import ORDER
from qstash_sim.domain.account import Account
from qstash_sim.domain.message import FINAL_STATES, EventState, HistoryEvent, Message, MessageState
from qstash_sim.domain.queue import Queue
from qstash_sim.domain.schedule import Schedule
from qstash_sim.domain.world import World
from qstash_sim.engine.attempt import AttemptRules, Prepared, Verdict
from qstash_sim.engine.cron import CronFires
from qstash_sim.engine.events import (
    ATTEMPT,
    CALL,
    COMPLETE,
    FIRE,
    MAX_ADVANCE_EVENTS,
    MAX_ADVANCE_MS,
    SEND_CHUNK,
    YIELD_EVERY,
    AdvanceLimitError,
    Event,
    SignClock,
)
from qstash_sim.engine.flow import FlowGates
from qstash_sim.engine.lanes import Lanes
from qstash_sim.engine.scheduler import Scheduler
from qstash_sim.engine.transport import OutboundRequest, Outcome, Transport

__all__ = [
    "MAX_ADVANCE_EVENTS",
    "MAX_ADVANCE_MS",
    "SEND_CHUNK",
    "YIELD_EVERY",
    "AdvanceLimitError",
    "Engine",
    "Order",
    "SignClock",
]

log = logging.getLogger("qstash_sim.engine")

Order = Literal["seq", "shuffle"]  # the order of one instant's events (Engine.order)
ORDERS: tuple[Order, ...] = ("seq", "shuffle")


class Engine(Scheduler):
    """Runs messages to their end (delivered, failed, cancelled) and fires schedules.

    The core stores a message (with a CREATED history event) in ``world.accounts.get(msg.account)
    .messages`` and calls :meth:`submit`; on each cron fire the engine calls
    ``on_schedule_fire(schedule, fire_ms)``, which builds, stores, charges and journals the message (a list
    of them for a URL group, or ``None``); the engine then submits them.

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
        on_schedule_fire: Callable[[Schedule, int], Message | list[Message] | None],
        sign_clock: SignClock = "process",
        errors: MutableSequence[BaseException] | None = None,
    ) -> None:
        super().__init__(world, errors=errors)
        self.transport = transport
        self.on_schedule_fire = on_schedule_fire
        if not (sign_clock in ("process", "virtual") or isinstance(sign_clock, Clock)):
            raise ValueError(f"sign_clock must be 'process', 'virtual' or a Clock, got {sign_clock!r}")
        self.sign_clock = sign_clock
        # What signs a delivery, decided once (isinstance on the Clock protocol costs ~40 us a call).
        self._sign_with: Clock | None = sign_clock if isinstance(sign_clock, Clock) else None
        self._sign_process = sign_clock == "process"
        is_real = getattr(transport, "is_real", None)
        self._real_url: Callable[[str], bool] = is_real if callable(is_real) else (lambda url: False)
        # A routing transport says which URLs go to a real socket: the others are answered inline. Any other
        # transport may do I/O for every request, so each attempt goes on the wire as a task of its own.
        self._inline = callable(is_real)
        answer = getattr(transport, "answer_virtual", None)
        self._answer: Callable[[OutboundRequest, int], Outcome | None] | None = answer if callable(answer) else None
        self._armed: dict[tuple[str, str], int] = {}  # (account, message id) -> seq of its live event
        self._admitted: set[tuple[str, str]] = set()  # released by their flow-control key, not started yet
        self._started: dict[tuple[str, str], tuple[int, int]] = {}  # attempts started: (step, virtual ms)
        self._step = 0  # counts starts and ends: the journal's startStep/endStep order them (in-flight sweeps)
        self._wire = 0  # attempts on real sockets now
        self._cap_wait: deque[Message] = deque()  # attempts held by the cap on attempts on the wire
        self._flows = FlowGates(world, self._release_flow, self.at)
        self._parked: dict[tuple[str, str], list[Message]] = {}  # (account, queue) -> retries held by pause
        self._crons = CronFires()
        self._rules = AttemptRules(world)
        self.lanes = Lanes()  # one attempt at a time per lane (a workflow run's messages): engine/lanes.py
        # The order of the events due at one instant: "seq" (the order they fell due) or "shuffle" (a seeded
        # shuffle of each instant's batch, from the seed's ORDER stream: other orderings, reproducibly).
        self.order: Order = "seq"
        # Told after every attempt's outcome is applied: (message, outcome, failed for good).
        self.on_attempt: Callable[[Message, Outcome, bool], None] | None = None
        # Told before each attempt is built (a workflow message's body becomes its run's log up to it).
        self.before_attempt: Callable[[Message], None] | None = None

    # ----------------------------------------------------------------------------------------------
    # what the core calls

    def submit(self, msg: Message) -> None:
        """Schedule ``msg``'s first attempt at ``max(now, not_before)``, through its queue's gate if any."""
        if msg.state in FINAL_STATES:
            return
        if msg.flow_control is not None:
            self._flows.adopt(msg)
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
        if msg.flow_control is not None:
            self._flows.forget(msg)  # out of the waitlist
            if (msg.account, msg.message_id) in self._admitted:  # released, not started: free its slot
                self._admitted.discard((msg.account, msg.message_id))
                self._flows.done(msg)
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
        self._plan_fire(schedule, self._crons.first(schedule, self.now))
        self._poke()

    def _plan_fire(self, schedule: Schedule, due: int | None) -> None:
        schedule.next_schedule_time = due
        if due is not None:  # None: the next fire would be after year 9999
            self._push(due, Event(FIRE, schedule=schedule, generation=schedule.generation))

    def schedule_deleted(self, schedule: Schedule) -> None:
        """Stop firing ``schedule`` (its pending fire becomes stale)."""
        schedule.generation += 1
        schedule.next_schedule_time = None
        self._crons.forget(schedule)

    # ----------------------------------------------------------------------------------------------
    # lifecycle

    async def close(self) -> None:
        """Stop the runner, wait for deliveries in flight, and close the transport if it can be closed.

        Cancelled while it waits (a stop's grace period ran out), it cancels the attempts on the wire."""
        try:
            await super().close()
        except asyncio.CancelledError:
            for task in list(self._inflight):
                task.cancel()
            raise
        closer = getattr(self.transport, "close", None)
        if closer is not None:
            await closer()

    def reset(self) -> None:
        """Drop every event and every engine-side memory (call with ``world.reset()``)."""
        super().reset()
        self._armed.clear()
        self._parked.clear()
        self._crons.clear()
        self._rules.reset()
        self._admitted.clear()
        self._started.clear()
        self._cap_wait.clear()
        self.lanes.clear()
        self._step = 0
        self._wire = 0  # attempts still on the wire belong to the old world (dropped when they land)

    # ----------------------------------------------------------------------------------------------
    # events

    def _arm(self, msg: Message, due: int) -> None:
        seq = self._push(due, Event(ATTEMPT, msg=msg))
        self._armed[(msg.account, msg.message_id)] = seq

    def _is_live(self, seq: int, ev: Event) -> bool:
        if ev.kind == CALL:
            return super()._is_live(seq, ev)
        if ev.kind == FIRE:
            sch = ev.schedule
            assert sch is not None
            acct = self.world.accounts.find(sch.account)
            return acct is not None and acct.schedules.get(sch.schedule_id) is sch and sch.generation == ev.generation
        msg = ev.msg
        assert msg is not None
        return self._armed.get((msg.account, msg.message_id)) == seq

    # ----------------------------------------------------------------------------------------------
    # running a batch

    async def _run_batch(self, batch: list[tuple[int, Event]]) -> None:
        self._events_run += len(batch)
        epoch = self._epoch
        if self.order == "shuffle" and len(batch) > 1:
            self.world.seed.stream(ORDER).shuffle(batch)
        for i, (_seq, ev) in enumerate(batch):
            if i and i % YIELD_EVERY == 0:
                # A huge instant: let others be served (a cancel meanwhile wins over an attempt not yet
                # started, as it does while one is on the wire).
                await asyncio.sleep(0)
                if epoch != self._epoch:  # reset() meanwhile: the rest belongs to the old world
                    return
            kind = ev.kind
            if kind == ATTEMPT:
                msg = ev.msg
                assert msg is not None
                inline = self._attempt(msg)
                if inline is not None:  # a virtual destination that answers through a coroutine only
                    self._landed(inline, await self._safe_send(inline))
            elif kind == COMPLETE:
                assert ev.msg is not None and ev.outcome is not None
                self._armed.pop((ev.msg.account, ev.msg.message_id), None)
                self._apply(ev.msg, ev.outcome)
            else:
                due_now: list[Message] = []
                try:
                    if kind == CALL:
                        assert ev.call is not None
                        if ev.alive is None or ev.alive():  # it may have gone stale while others were served
                            ev.call()
                    else:
                        self._fire(ev, due_now)
                except Exception as exc:  # one bad event (a bug) must not stop the others due with it
                    self._caught("running an event", exc)
                for msg in due_now:  # a fire's messages due at once: attempted right after it (an event each)
                    self._events_run += 1
                    inline = self._attempt(msg)
                    if inline is not None:
                        self._landed(inline, await self._safe_send(inline))

    def _attempt(self, msg: Message) -> Prepared | None:
        """An attempt event of ``msg`` is due: through the gates (queue pause, flow control, the cap on
        attempts on the wire), then sent. A virtual destination answers inline (its outcome applied at
        once, in ``seq`` order; returned instead when it can only be awaited); a real one goes on the wire
        as a task of its own."""
        mkey = (msg.account, msg.message_id)
        self._armed.pop(mkey, None)
        if msg.state in FINAL_STATES:
            return None
        if not self.lanes.take(msg):  # another message of its lane (workflow run) is being attempted
            return None
        if mkey in self._admitted:  # released by its flow-control key: its slot is taken already
            self._admitted.discard(mkey)
        elif not self._gate(msg):
            return None
        real = self._real_url(msg.url)
        if real and self._wire >= self._cap:
            self._cap_wait.append(msg)  # first come, first started when an attempt on the wire ends
            return None
        if real or not self._inline:
            self._send(msg, real)
            return None
        p = self._begin(msg, False)
        if p is None:
            return None
        outcome = self._answer_now(p)
        if outcome is None:
            return p
        self._landed(p, outcome)
        return None

    def _answer_now(self, p: Prepared) -> Outcome | None:
        if self._answer is None:
            return None
        try:
            return self._answer(p.request, p.timeout_ms)
        except Exception as exc:  # a bug in a scripted answer must fail the attempt, not the engine
            log.exception("virtual destination error for %s", p.request.url)
            return Outcome(status=None, error=f"transport error: {type(exc).__name__}: {exc}")

    def _gate(self, msg: Message) -> bool:
        """Whether ``msg`` may start now: not while its queue is paused (held until resume), nor while its
        flow-control key says wait (held in the key's waitlist)."""
        if msg.queue_name:
            queue = self.world.accounts.get(msg.account).queues.get(msg.queue_name)
            if queue is not None and queue.paused:
                self._parked.setdefault((msg.account, msg.queue_name), []).append(msg)
                return False
        return msg.flow_control is None or self._flows.admit(msg, self.now)

    def _begin(self, msg: Message, real: bool) -> Prepared | None:
        """Record the start (ACTIVE) and build the request; a bug doing so fails this attempt only."""
        self._step += 1
        self._started[(msg.account, msg.message_id)] = (self._step, self.now)
        try:
            p = self._prepare(msg, real)
            self._rules.sent(p.delivery, real)
            return p
        except Exception as exc:
            self._caught(f"preparing {msg.message_id}", exc)
            self._apply(msg, Outcome(status=None, error=f"internal error: {type(exc).__name__}"))
            return None

    def _send(self, msg: Message, real: bool) -> None:
        """Put ``msg``'s attempt on the wire: a task; its outcome is applied when it lands."""
        p = self._begin(msg, real)
        if p is None:
            return
        self._wire += real
        epoch = self._epoch
        task = asyncio.get_running_loop().create_task(self._safe_send(p))
        self._inflight.add(task)
        task.add_done_callback(lambda t: self._on_wire_done(t, p, real, epoch))

    def _on_wire_done(self, task: asyncio.Task[Outcome], p: Prepared, real: bool, epoch: int) -> None:
        self._inflight.discard(task)
        if epoch != self._epoch:  # reset() while it was on the wire: drop it
            return
        self._wire -= real
        if task.cancelled():  # only close() cancels an attempt on the wire
            return
        try:
            self._landed(p, task.result())
        except Exception as exc:  # a bug applying it must not leave the instant unsettled
            self._caught(f"applying the answer to {p.msg.message_id}", exc)
        self._next_from_cap()
        self._poke()

    def _next_from_cap(self) -> None:
        """Start attempts held by the cap on attempts on the wire, first come first started."""
        wait = self._cap_wait
        while wait and self._wire < self._cap:
            msg = wait.popleft()
            if msg.state in FINAL_STATES:
                self._flows.done(msg)  # cancelled while held: its flow-control slot is free again
                continue
            self._send(msg, True)

    def _landed(self, p: Prepared, outcome: Outcome) -> None:
        """An answer arrived: record it (inbox), then apply it, or, when the virtual destination takes
        virtual time to answer, finish the attempt that much later on the virtual clock."""
        self._rules.record(p.delivery, outcome)
        if outcome.virtual and outcome.duration_ms > 0:
            seq = self._push(self.now + outcome.duration_ms, Event(COMPLETE, msg=p.msg, outcome=outcome))
            self._armed[(p.msg.account, p.msg.message_id)] = seq
        else:
            self._apply(p.msg, outcome)

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

    def _prepare(self, msg: Message, real: bool) -> Prepared:
        now = self.now
        if self._sign_with is not None:
            sign_now = self._sign_with.now_ms()
        elif self._sign_process and real:
            sign_now = time.time_ns() // 1_000_000
        else:
            sign_now = now
        if self.before_attempt is not None:
            self.before_attempt(msg)
        return self._rules.start(msg, now, sign_now, lazy=not real)

    def _apply(self, msg: Message, outcome: Outcome) -> None:
        """Apply one outcome. Whatever the destination answered, the message ends delivered, retrying,
        failed (in the DLQ) or cancelled: an error while applying it (a bug) fails the attempt instead.

        The attempt's journal line carries ``startStep``/``endStep`` (one counter of starts and ends, so
        a sweep over them gives what was in flight at once, also within one virtual instant), ``startedMs``,
        and its ``flowControlKey`` and ``queue`` when it has them."""
        if msg.flow_control is not None:
            self._flows.done(msg)  # its slot frees first: waiters start at this instant
        extra = self._attempt_detail(msg)
        try:
            verdict = self._rules.apply(msg, outcome, self.now, extra)
        except Exception as exc:
            self._caught(f"applying the answer to {msg.message_id}", exc)
            verdict = self._rules.apply(
                msg, Outcome(status=None, error=f"internal error: {type(exc).__name__}"), self.now, extra
            )
        if verdict is Verdict.RETRY:
            self._free_lane(msg)  # waiting for its backoff holds no lane (a final message's: _finalize frees it)
            assert msg.next_delivery_ms is not None
            self._arm(msg, msg.next_delivery_ms)
        elif verdict is not Verdict.CANCELLED:  # a cancel already freed everything
            self._finalize(self.world.accounts.get(msg.account), msg)
        if self.on_attempt is not None and verdict is not Verdict.CANCELLED:
            try:  # the core's callbacks (Upstash-Callback after each attempt, the failure callback once)
                self.on_attempt(msg, outcome, verdict is Verdict.FAILED)
            except Exception as exc:  # a bug there must not undo what the attempt did
                self._caught(f"the callbacks of {msg.message_id}", exc)

    def _attempt_detail(self, msg: Message) -> dict[str, object]:
        started = self._started.pop((msg.account, msg.message_id), None)
        self._step += 1
        extra: dict[str, object] = {"endStep": self._step}
        if started is not None:
            extra["startStep"], extra["startedMs"] = started
        if msg.flow_control is not None:
            extra["flowControlKey"] = msg.flow_control.key
        if msg.queue_name:
            extra["queue"] = msg.queue_name
        return extra

    def _free_lane(self, msg: Message) -> None:
        """``msg`` no longer holds its lane: the next message waiting in it starts now."""
        nxt = self.lanes.free(msg)
        if nxt is not None:
            self._arm(nxt, self.now)

    def _release_flow(self, msg: Message) -> None:
        """Its flow-control key released ``msg`` (slot taken): attempt it now, past the gate."""
        self._admitted.add((msg.account, msg.message_id))
        self._arm(msg, self.now)

    @property
    def _cap(self) -> float:
        """The cap on attempts on real sockets at once (``Limits.in_flight``; 0 counts as 1)."""
        cap = self.world.limits.in_flight
        return math.inf if cap is None else max(1, cap)

    @property
    def wire_count(self) -> int:
        """Attempts on real sockets now."""
        return self._wire

    @property
    def flows(self) -> FlowGates:
        """The flow-control gates (what ``/v2/flowControl/...`` acts on)."""
        return self._flows

    def _finalize(self, acct: Account, msg: Message) -> None:
        """A message reached a final state: free its queue slot, update its schedule's states, and keep the
        world under its limits (the oldest final messages, DLQ entries and dedup ids go first)."""
        self._armed.pop((msg.account, msg.message_id), None)
        self._free_lane(msg)
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

    def _fire(self, ev: Event, due_now: list[Message]) -> None:
        """Fire a schedule: its message (one per endpoint of a URL group) is made; the ones due at once, in
        no queue and under no flow-control key, go into ``due_now``, to be attempted right after the fire
        (rather than through the heap at the same instant); the others are submitted."""
        sch = ev.schedule
        assert sch is not None
        fire_ms = self.now
        if not sch.is_paused:
            fired = self.on_schedule_fire(sch, fire_ms)
            sch.last_schedule_time = fire_ms
            if fired is not None:
                msgs = fired if isinstance(fired, list) else [fired]  # a URL group's: one per endpoint
                # Only the latest fire's messages are tracked, so the map stays small over 43,200 fires.
                sch.last_schedule_states = {m.message_id: "IN_PROGRESS" for m in msgs}
                for m in msgs:
                    if m.queue_name or m.flow_control is not None or m.not_before_ms > fire_ms:
                        self.submit(m)
                    elif m.state not in FINAL_STATES:
                        due_now.append(m)
        else:
            log.debug("schedule %s paused: fire at %d skipped", sch.schedule_id, fire_ms)
        # on_schedule_fire may have replaced or deleted the schedule: then it plans its own future.
        if self._is_live(0, ev):
            self._plan_fire(sch, self._crons.after(sch, fire_ms))
