"""The simulator's in-memory world: accounts, ids, journal, ledger, inbox, all on one clock.

Everything hangs off one :class:`World` per simulator; two simulators in one process never share any of
it. Accounts are created lazily the first time a caller uses them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qstash_sim.base.seed import FAULTS, KEYS, Seed
from qstash_sim.domain.account import Account, SigningKeys
from qstash_sim.domain.journal import Journal
from qstash_sim.domain.ledger import Ledger
from qstash_sim.domain.message import Delivery

if TYPE_CHECKING:
    from qstash_sim.base.clock import Clock

DEFAULT_ACCOUNT = "default"


class AccountStore:
    """Accounts by name, created on first use with fresh signing keys."""

    def __init__(self, seed: Seed) -> None:
        self._seed = seed
        self._accounts: dict[str, Account] = {}

    def reset(self) -> None:
        """Forget every account."""
        self._accounts.clear()

    def get(self, name: str) -> Account:
        """The account called ``name``, created if new."""
        acc = self._accounts.get(name)
        if acc is None:
            ids = self._seed.ids(KEYS)
            keys = SigningKeys(current=ids.new("sig", 28), next=ids.new("sig", 28))
            acc = self._accounts[name] = Account(name=name, signing_keys=keys)
        return acc

    def find(self, name: str) -> Account | None:
        """The account called ``name`` if it exists (never creates one)."""
        return self._accounts.get(name)

    def __iter__(self) -> Iterator[Account]:
        return iter(list(self._accounts.values()))

    def __len__(self) -> int:
        return len(self._accounts)


@dataclass
class World:
    """The state one simulator owns. ``reset()`` returns it to a fresh start with the same seed."""

    clock: Clock
    seed: Seed = field(default_factory=Seed)
    journal: Journal = field(default_factory=Journal)
    ledger: Ledger = field(default_factory=Ledger)
    accounts: AccountStore = field(init=False)
    inbox: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.accounts = AccountStore(self.seed)

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

    @property
    def now(self) -> int:
        """The simulator's current time in ms."""
        return self.clock.now_ms()
