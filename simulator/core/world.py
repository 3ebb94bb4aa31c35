"""The simulator's in-memory world: accounts, ids, journal, ledger, inbox, all on one clock.

Everything hangs off one :class:`World` per simulator; two simulators in one process never share any of
it. Accounts are created lazily the first time a caller uses them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qstash_sim.base.ids import Ids, stream
from qstash_sim.core.journal import Journal
from qstash_sim.core.ledger import Ledger
from qstash_sim.domain.account import Account, SigningKeys
from qstash_sim.domain.message import Delivery

if TYPE_CHECKING:
    from qstash_sim.base.clock import Clock

DEFAULT_ACCOUNT = "default"


class AccountStore:
    """Accounts by name, created on first use with fresh signing keys."""

    def __init__(self, ids: Ids) -> None:
        self._ids = ids
        self._accounts: dict[str, Account] = {}

    def reset(self) -> None:
        """Forget every account."""
        self._accounts.clear()

    def get(self, name: str) -> Account:
        """The account called ``name``, created if new."""
        acc = self._accounts.get(name)
        if acc is None:
            keys = SigningKeys(current=self._ids.new("sig", 28), next=self._ids.new("sig", 28))
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
    seed: int = 0
    ids: Ids = field(init=False)
    journal: Journal = field(default_factory=Journal)
    ledger: Ledger = field(default_factory=Ledger)
    accounts: AccountStore = field(init=False)
    inbox: list[Delivery] = field(default_factory=list)
    faults: random.Random = field(init=False)  # the seeded stream for probabilistic faults

    def __post_init__(self) -> None:
        self.ids = Ids(self.seed)
        self.accounts = AccountStore(self.ids)
        self.faults = stream(self.seed, "faults")

    def reset(self, seed: int | None = None) -> None:
        """Forget every account, message, charge and journal line; restart the random streams."""
        if seed is not None:
            self.seed = seed
            self.ids.seed = seed
        self.ids.reset()
        self.faults = stream(self.seed, "faults")
        self.journal.reset()
        self.ledger.reset()
        self.accounts.reset()
        self.inbox.clear()

    @property
    def now(self) -> int:
        """The simulator's current time in ms."""
        return self.clock.now_ms()
