"""Flow control on the timeline: which attempts of a flow-control key may start now, and which wait.

QStash's model (``Upstash-Flow-Control-Key`` / ``-Value``), per key of one account:

* ``parallelism=N``: at most N attempts of the key's messages in flight (started, no answer yet). A
  message waiting for its next retry holds no slot.
* ``rate=M, period=P`` (P default 1 s): a period starts at the first start after the previous one ended
  (``ratePeriodStart``) and admits at most M starts until it ends (``rateCount``); the next start after
  its end opens a new period.
* An attempt that may not start joins the key's waitlist, first come first out; the waitlist is released
  when a slot frees (an answer arrives) or the period ends (a timer on the virtual clock), in order.
* A paused key starts nothing (its waitlist grows; the period keeps running); resume releases it.
* A message's value updates the key's limits unless they are pinned (``pin``); pinning resets the rate
  period; ``resetRate`` ends the period now.

Retries count as starts, like every attempt. Queue parallelism composes: a queue's message takes its
queue slot first, then waits for its key. :class:`FlowGates` never touches the heap itself: it arms
released messages through ``arm`` and plans its timers through ``at``.
"""

from __future__ import annotations

from collections.abc import Callable

from qstash_sim.domain.account import Account
from qstash_sim.domain.flow import FlowKey
from qstash_sim.domain.message import FINAL_STATES, Message
from qstash_sim.domain.world import World

__all__ = ["MAX_FLOW_KEYS", "FlowGates"]

# Flow-control keys one account keeps. Past it the oldest idle key (nothing in flight or waiting, not
# paused or pinned) is forgotten: a key named again starts afresh.
MAX_FLOW_KEYS = 10_000


class FlowGates:
    """The flow-control keys of every account of ``world``, as gates on attempts."""

    def __init__(
        self,
        world: World,
        arm: Callable[[Message], None],
        at: Callable[[int, Callable[[], None]], None],
    ) -> None:
        self.world = world
        self._arm = arm  # start a released message now (it bypasses the gate: its slot is taken)
        self._at = at

    # ------------------------------------------------------------------ keys

    def key(self, acct: Account, name: str) -> FlowKey:
        """``acct``'s key ``name``, created (no limits) if new; the oldest idle keys go past the cap."""
        keys = acct.flow_keys
        fk = keys.get(name)
        if fk is None:
            fk = keys[name] = FlowKey(name)
            if len(keys) > MAX_FLOW_KEYS:
                for old in list(keys.values())[: len(keys) - MAX_FLOW_KEYS + 16]:
                    if old is not fk and _idle(old) and len(keys) > MAX_FLOW_KEYS:
                        del keys[old.key]
        return fk

    def adopt(self, msg: Message) -> None:
        """A new message names its key: take its limits (unless pinned); raised limits release waiters."""
        fc = msg.flow_control
        if fc is None:
            return
        acct = self.world.accounts.get(msg.account)
        fk = self.key(acct, fc.key)
        fk.adopt(fc)
        self.release(acct, fk)

    # ------------------------------------------------------------------ the gate

    def admit(self, msg: Message, now: int) -> bool:
        """Whether ``msg``'s attempt may start now (then its slot and rate start are taken); if not, it
        joins the waitlist (a timer is planned when the rate is what holds it)."""
        fc = msg.flow_control
        assert fc is not None
        acct = self.world.accounts.get(msg.account)
        fk = self.key(acct, fc.key)
        if fk.waiting or not self._may_start(acct, fk, now):
            fk.waiting.append(msg.message_id)
            self._plan(acct, fk, now)
            return False
        self._take(fk, msg.message_id, now)
        return True

    def done(self, msg: Message) -> None:
        """``msg``'s attempt ended (answered, or dropped before it went out): free its slot, release waiters."""
        fc = msg.flow_control
        if fc is None:
            return
        acct = self.world.accounts.find(msg.account)
        fk = acct.flow_keys.get(fc.key) if acct is not None else None
        if fk is None or msg.message_id not in fk.in_flight:
            return
        fk.in_flight.discard(msg.message_id)
        self.release(acct, fk)  # type: ignore[arg-type]  # acct is set when fk is

    def forget(self, msg: Message) -> None:
        """``msg`` was cancelled: drop it from its key's waitlist (O(waitlist))."""
        fc = msg.flow_control
        acct = self.world.accounts.find(msg.account) if fc is not None else None
        fk = acct.flow_keys.get(fc.key) if acct is not None and fc is not None else None
        if fk is not None and msg.message_id in fk.waiting:
            fk.waiting.remove(msg.message_id)

    def release(self, acct: Account, fk: FlowKey) -> None:
        """Start waiting messages, in order, while the key lets them (each armed now, slot taken)."""
        now = self.world.now
        while fk.waiting and self._may_start(acct, fk, now):
            mid = fk.waiting.popleft()
            msg = acct.messages.get(mid)
            if msg is None or msg.state in FINAL_STATES:
                continue
            self._take(fk, mid, now)
            self._arm(msg)
        if fk.waiting:
            self._plan(acct, fk, now)

    # ------------------------------------------------------------------ operations (/v2/flowControl/...)

    def pause(self, acct: Account, fk: FlowKey) -> None:
        """Start nothing more (attempts in flight finish; the rate period keeps running)."""
        fk.paused = True

    def resume(self, acct: Account, fk: FlowKey) -> None:
        """Start again, from the head of the waitlist."""
        fk.paused = False
        self.release(acct, fk)

    def pin(
        self, acct: Account, fk: FlowKey, *, parallelism: int | None, rate: int | None, period_s: int | None
    ) -> None:
        """Fix the given limits whatever messages ask; resets the rate period (QStash's documented effect)."""
        if parallelism is not None:
            fk.parallelism, fk.pinned_parallelism = parallelism, True
        if rate is not None or period_s is not None:
            fk.rate = rate if rate is not None else fk.rate
            fk.period_s = period_s if period_s is not None else fk.period_s
            fk.pinned_rate = True
        self.reset_rate(acct, fk)

    def unpin(self, acct: Account, fk: FlowKey, *, parallelism: bool, rate: bool) -> None:
        """Let messages set these limits again (the pinned values stay until a message changes them)."""
        if parallelism:
            fk.pinned_parallelism = False
        if rate:
            fk.pinned_rate = False

    def reset_rate(self, acct: Account, fk: FlowKey) -> None:
        """End the rate period now: the count restarts at 0 and now is the new period's start."""
        fk.period_start_ms, fk.period_count = self.world.now, 0
        self.release(acct, fk)

    # ------------------------------------------------------------------ inside

    def _may_start(self, acct: Account, fk: FlowKey, now: int) -> bool:
        if fk.paused:
            return False
        if fk.parallelism is not None and len(fk.in_flight) >= fk.parallelism:
            return False
        return fk.rate is None or not fk.period_running(now) or fk.period_count < fk.rate

    @staticmethod
    def _take(fk: FlowKey, mid: str, now: int) -> None:
        fk.in_flight.add(mid)
        if not fk.period_running(now):
            fk.period_start_ms, fk.period_count = now, 0
        fk.period_count += 1

    def _plan(self, acct: Account, fk: FlowKey, now: int) -> None:
        """A timer at the period's end when the rate (not parallelism or a pause) holds the waitlist."""
        if fk.paused or fk.rate is None or fk.period_start_ms is None or fk.period_count < fk.rate:
            return
        due = fk.period_start_ms + fk.period_ms
        if due <= now or fk.release_at_ms == due:
            return
        fk.release_at_ms = due
        name = acct.name

        def fire() -> None:
            a = self.world.accounts.find(name)
            k = a.flow_keys.get(fk.key) if a is not None else None
            if a is not None and k is fk:
                fk.release_at_ms = None
                self.release(a, fk)

        self._at(due, fire)


def _idle(fk: FlowKey) -> bool:
    return not (fk.in_flight or fk.waiting or fk.paused or fk.pinned_parallelism or fk.pinned_rate)
