"""The delivery engine: messages to their end (delivered, failed, cancelled), queues, cron fires.

It runs on the :class:`~qstash_sim.engine.scheduler.Scheduler`'s timeline (one heap of events, one
clock). Determinism: events due at the same instant run in ``seq`` order. Consecutive attempts due at
one instant are *sent* concurrently (throughput against real destinations), but their outcomes are
applied, and journalled, in ``seq`` order; so the same inputs and seed give the same journal and inbox
order. Attempts due at one instant are sent at most :data:`SEND_CHUNK` at a time (so a huge instant does
not hold every prepared request in memory at once).

Staleness is handled lazily: a message remembers (in ``_armed``) the seq of its one live attempt event; a
cancelled message, an overwritten schedule (``generation``/identity) or a ``reset()`` makes older events
no-ops when they are popped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, MutableSequence

from qstash_sim.base.clock import Clock
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
from qstash_sim.engine.scheduler import Scheduler
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

log = logging.getLogger("qstash_sim.engine")


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
        is_real = getattr(transport, "is_real", None)
        self._real_url: Callable[[str], bool] = is_real if callable(is_real) else (lambda url: False)
        self._armed: dict[tuple[str, str], int] = {}  # (account, message id) -> seq of its live event
        self._parked: dict[tuple[str, str], list[Message]] = {}  # (account, queue) -> retries held by pause
        self._crons = CronFires()
        self._rules = AttemptRules(world)
        # Told after every attempt's outcome is applied: (message, outcome, failed for good).
        self.on_attempt: Callable[[Message, Outcome, bool], None] | None = None

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
        """Stop the runner, wait for deliveries in flight, and close the transport if it can be closed."""
        await super().close()
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
            if ev.kind == ATTEMPT:
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
            if ev.kind == COMPLETE:
                assert ev.msg is not None and ev.outcome is not None
                self._armed.pop((ev.msg.account, ev.msg.message_id), None)
                self._apply(ev.msg, ev.outcome)
            else:
                try:
                    if ev.kind == CALL:
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
        if self.on_attempt is not None and verdict is not Verdict.CANCELLED:
            try:  # the core's callbacks (Upstash-Callback after each attempt, the failure callback once)
                self.on_attempt(msg, outcome, verdict is Verdict.FAILED)
            except Exception as exc:  # a bug there must not undo what the attempt did
                self._caught(f"the callbacks of {msg.message_id}", exc)

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

    def _fire(self, ev: Event) -> None:
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
                    self.submit(m)
        else:
            log.debug("schedule %s paused: fire at %d skipped", sch.schedule_id, fire_ms)
        # on_schedule_fire may have replaced or deleted the schedule: then it plans its own future.
        if not self._is_live(0, ev):
            return
        self._plan_fire(sch, self._crons.after(sch, fire_ms))
