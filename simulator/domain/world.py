"""The simulator's in-memory world: accounts, ids, journal, ledger, inbox, all on one clock.

Everything hangs off one :class:`World` per simulator; two simulators in one process never share any of
it. Accounts are created lazily the first time a caller uses them.

A long-running server stays bounded: every store it fills has a cap in :class:`Limits` (the journal, the
inbox, final messages, each account's DLQ and dedup ids, the accounts themselves). Past a cap the oldest go
first and are counted (:meth:`World.evictions`, shown by ``GET /_sim/health``). Pending and retrying
messages are never dropped, nor an account that still has work (a pending message, a schedule, a paused
or non-empty queue).
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING

from qstash_sim.base.seed import FAULTS, KEYS, Seed
from qstash_sim.domain.account import Account, SigningKeys
from qstash_sim.domain.delivery import DeliverySettings
from qstash_sim.domain.journal import Journal, Retained
from qstash_sim.domain.ledger import Ledger
from qstash_sim.domain.message import FINAL_STATES, Delivery, Message

if TYPE_CHECKING:
    from qstash_sim.base.clock import Clock

DEFAULT_ACCOUNT = "default"

_EVICT_SCAN = 32  # accounts looked at per creation when over the cap (busy ones go to the back)


@dataclass(frozen=True, slots=True)
class Limits:
    """The caps of everything a long-running simulator keeps; ``None`` is no cap.

    The defaults keep ``qstash-sim serve`` well under 500 MB after a million mixed requests (small
    bodies: caps count items, not bytes, so lower them for large bodies). Past a cap the oldest go first,
    counted in :meth:`World.evictions`.

    * ``journal``: journal entries (requests, attempts, fires, warnings, scenario steps);
    * ``deliveries``: inbox records (``/_sim/deliveries``);
    * ``messages``: final messages (delivered, failed, cancelled) kept for ``GET /messages/{id}``, over all
      accounts; pending and retrying ones are never dropped (a dropped failed message's DLQ entry stays);
    * ``dlq_per_account``: DLQ entries of one account;
    * ``dedup_per_account``: unexpired deduplication ids of one account (expired ones are always pruned;
      a duplicate of a dropped id is accepted as a new message);
    * ``accounts``: accounts (created on first use); one with work (a pending message, a schedule, a
      paused or non-empty queue) is never dropped, so the cap may be exceeded while they are busy;
    * ``ledger``: charges (their running totals per account and agent stay exact);
    * ``in_flight``: not a store but a cap of the same kind: attempts on real sockets at once, over the
      whole simulator. Past it an attempt waits (first come, first started, at the same virtual instant)
      for one to end; attempts answered by the virtual destination never count.
    """

    journal: int | None = 100_000
    deliveries: int | None = 50_000
    messages: int | None = 100_000
    dlq_per_account: int | None = 10_000
    dedup_per_account: int | None = 100_000
    accounts: int | None = 10_000
    ledger: int | None = 100_000
    in_flight: int | None = 100

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"Limits.{f.name} must be None or an integer >= 0, got {value!r}")

    @classmethod
    def unbounded(cls) -> Limits:
        """No cap anywhere (everything kept, as before limits existed)."""
        return cls(**{f.name: None for f in fields(cls)})


@dataclass(slots=True)
class Evictions:
    """What was dropped to stay under :class:`Limits` since the last reset (journal and inbox count theirs)."""

    messages: int = 0  # final messages
    dlq: int = 0
    dedup: int = 0  # unexpired dedup ids over the cap
    dedup_expired: int = 0  # expired dedup ids pruned
    accounts: int = 0


def _busy(acc: Account) -> bool:
    """Whether ``acc`` still has work: a pending message, a schedule, a URL group, a paused or non-empty queue."""
    if acc.schedules or acc.url_groups:
        return True
    if any(q.paused or q.waiting or q.active for q in acc.queues.values()):
        return True
    # Pending messages are the newest, as a rule: look from the end.
    return any(m.state not in FINAL_STATES for m in reversed(acc.messages.values()))


class AccountStore:
    """Accounts by name, created on first use with fresh signing keys, at most ``limits.accounts`` idle ones.

    Creating one past the cap drops the oldest account without work (see :func:`_busy`); busy accounts are
    passed over (moved to the back of the line), so the cap may be exceeded while every account is busy.
    """

    def __init__(self, seed: Seed, limits: Limits | None = None) -> None:
        self._seed = seed
        self._accounts: dict[str, Account] = {}
        self._order: deque[str] = deque()  # eviction candidates, oldest first (busy ones sent to the back)
        self.limits = limits if limits is not None else Limits()
        self.evicted = 0  # accounts dropped since the last reset
        # Signing keys an account gets when it is created, instead of seeded ones (configuration, e.g. the
        # official dev server's users): kept across reset().
        self.preset_keys: dict[str, SigningKeys] = {}

    def reset(self) -> None:
        """Forget every account."""
        self._accounts.clear()
        self._order.clear()
        self.evicted = 0

    def get(self, name: str) -> Account:
        """The account called ``name``, created if new (dropping the oldest idle one past the cap)."""
        acc = self._accounts.get(name)
        if acc is None:
            acc = self._accounts[name] = Account(name=name, signing_keys=self.keys_of(name))
            self._order.append(name)
            cap = self.limits.accounts
            if cap is not None and len(self._accounts) > cap:
                self.enforce(keep=name)
        return acc

    def keys_of(self, name: str) -> SigningKeys:
        """The keys of account ``name``: its own if it exists, else those it will be created with (a
        preset, else drawn from its own stream: they depend on the seed and the name only, not on which
        accounts came before). Never creates the account."""
        acc = self._accounts.get(name)
        if acc is not None:
            return acc.signing_keys
        preset = self.preset_keys.get(name)
        if preset is not None:  # a copy: rotation changes an account's keys in place, the preset must stay
            return SigningKeys(preset.current, preset.next)
        ids = self._seed.keyed(KEYS, f"new:{name}")
        return SigningKeys(current=ids.new("sig", 28), next=ids.new("sig", 28))

    def enforce(self, keep: str | None = None) -> None:
        """Drop the oldest idle accounts while over the cap (never ``keep``, never a busy one).

        Looks at a bounded number of candidates per call, so a store full of busy accounts costs O(1).
        """
        cap = self.limits.accounts
        if cap is None:
            return
        order, accounts = self._order, self._accounts
        budget = max(_EVICT_SCAN, 2 * (len(accounts) - cap))
        while len(accounts) > cap and order and budget > 0:
            budget -= 1
            name = order.popleft()
            acc = accounts.get(name)
            if acc is None:
                continue
            if name == keep or _busy(acc):
                order.append(name)
                continue
            del accounts[name]
            self.evicted += 1

    def find(self, name: str) -> Account | None:
        """The account called ``name`` if it exists (never creates one)."""
        return self._accounts.get(name)

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._accounts.values()))

    def __len__(self) -> int:
        return len(self._accounts)


class Inbox(Retained[Delivery]):
    """What destinations received, in order of sending: the newest ``cap`` deliveries, numbered by ``seq``."""

    __slots__ = ()

    def append(self, item: Delivery) -> int:
        """Number ``item`` (its ``seq``) and keep it, dropping the oldest past the cap."""
        item.seq = self.appended + 1
        return super().append(item)


@dataclass
class World:
    """The state one simulator owns. ``reset()`` returns it to a fresh start with the same seed.

    ``limits`` caps what it keeps (:class:`Limits`; change them with :meth:`set_limits`).
    """

    clock: Clock
    seed: Seed = field(default_factory=Seed)
    journal: Journal = field(default_factory=Journal)
    ledger: Ledger = field(default_factory=Ledger)
    accounts: AccountStore = field(init=False)
    inbox: Inbox = field(default_factory=Inbox)
    limits: Limits = field(default_factory=Limits)
    # How deliveries go out (region header, timeout cap): configuration, kept across reset().
    delivery: DeliverySettings = field(default_factory=DeliverySettings)
    evicted: Evictions = field(init=False, default_factory=Evictions)
    _finals: deque[Message] = field(init=False, repr=False, default_factory=deque)  # final messages, oldest first

    def __post_init__(self) -> None:
        self.accounts = AccountStore(self.seed, self.limits)
        self.set_limits(self.limits)

    def set_limits(self, limits: Limits) -> None:
        """Use ``limits`` from now on. Lowering a cap drops the oldest journal entries, deliveries, final
        messages and idle accounts at once; each account's DLQ and dedup ids at its next final message."""
        self.limits = limits
        self.accounts.limits = limits
        self.journal.set_cap(limits.journal)
        self.ledger.set_cap(limits.ledger)
        self.inbox.set_cap(limits.deliveries)
        self._trim_finals()
        self.accounts.enforce()

    def message_final(self, acc: Account, msg: Message) -> None:
        """``msg`` (of ``acc``) has just become final: keep it under the caps.

        The engine calls it once per message. It also prunes ``acc``'s expired dedup ids and keeps its DLQ
        and dedup ids under their caps (each O(1) amortised: oldest first).
        """
        lim, ev = self.limits, self.evicted
        dedup = acc.dedup
        if dedup:
            now = self.now
            while dedup:
                key, (_, expires) = next(iter(dedup.items()))
                if expires > now:
                    break
                del dedup[key]
                ev.dedup_expired += 1
            cap = lim.dedup_per_account
            if cap is not None:
                while len(dedup) > cap:
                    dedup.popitem(last=False)
                    ev.dedup += 1
        cap = lim.dlq_per_account
        if cap is not None:
            dlq = acc.dlq
            while len(dlq) > cap:
                dlq.popitem(last=False)
                ev.dlq += 1
        if lim.messages is not None:
            self._finals.append(msg)
            self._trim_finals()

    def _trim_finals(self) -> None:
        cap = self.limits.messages
        if cap is None:
            return
        finals = self._finals
        while len(finals) > cap:
            m = finals.popleft()
            acc = self.accounts.find(m.account)
            # Gone already (its account dropped, or listed twice), or not final after all: nothing to do.
            if acc is not None and acc.messages.get(m.message_id) is m and m.state in FINAL_STATES:
                del acc.messages[m.message_id]
                self.evicted.messages += 1

    def evictions(self) -> dict[str, int]:
        """How many of each were dropped to stay under the limits since the last reset."""
        ev = self.evicted
        return {
            "journal": self.journal.evicted,
            "deliveries": self.inbox.evicted,
            "messages": ev.messages,
            "dlq": ev.dlq,
            "dedup": ev.dedup,
            "dedup_expired": ev.dedup_expired,
            "accounts": self.accounts.evicted,
            "ledger": self.ledger.entries.evicted,
        }

    @property
    def faults(self) -> random.Random:
        """The seeded stream of probabilistic faults."""
        return self.seed.stream(FAULTS)

    def new_id(self, purpose: str, prefix: str, length: int = 22) -> str:
        """A seeded id from the stream of ``purpose``: ``new_id(MESSAGE, "msg")`` -> ``"msg_..."``."""
        return self.seed.ids(purpose).new(prefix, length)

    def reset(self, seed: int | None = None) -> None:
        """Forget every account, message, charge and journal line; restart every random stream."""
        self.seed.reset(seed)
        self.journal.reset()
        self.ledger.reset()
        self.accounts.reset()
        self.inbox.clear()
        self._finals.clear()
        self.evicted = Evictions()

    @property
    def now(self) -> int:
        """The simulator's current time in ms."""
        return self.clock.now_ms()
