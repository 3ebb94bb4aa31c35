"""The cost ledger: every charge (:class:`LedgerEntry`), what each account, agent and transaction spent,
in ``Decimal`` dollars. Prices come from whoever charges (the Sapiom feature's price table).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from qstash_sim.domain.journal import Retained

SCHEDULE_TRIGGER = "scheduleTrigger"  # the ledger operation of a cron fire (not an API call)


@dataclass(slots=True)
class LedgerEntry:
    """One charge: what was done, how many units, at which unit price."""

    time_ms: int
    account: str
    operation: str  # an operationId of openapi.yaml, or "scheduleTrigger"
    quantity: int
    unit_price: Decimal
    agent: str | None = None
    transaction_id: str | None = None
    request_id: str | None = None

    @property
    def amount(self) -> Decimal:
        """The total charged for this entry, in dollars."""
        return self.unit_price * self.quantity


class Ledger:
    """Every charge, newest kept (capped by ``Limits.ledger``), with exact running totals.

    Totals per account, per agent and per (account, agent) include dropped entries, so budgets and
    ``/_sim/ledger`` totals stay right after the oldest entries are gone; the entries themselves (and a
    total by ``transaction_id``) cover what is kept. The totals maps are capped too (``totals_cap`` keys
    each, the oldest key first).
    """

    def __init__(self, cap: int | None = None, totals_cap: int | None = 100_000) -> None:
        self.entries: Retained[LedgerEntry] = Retained(cap)
        self.totals_cap = totals_cap
        self.reset()

    def reset(self) -> None:
        """Forget every charge."""
        self.entries.clear()
        self.sum = Decimal(0)
        self.by_account: OrderedDict[str, Decimal] = OrderedDict()
        self.by_agent: OrderedDict[str, Decimal] = OrderedDict()
        self.by_pair: OrderedDict[tuple[str, str], Decimal] = OrderedDict()
        self.totals_evicted = 0

    def set_cap(self, cap: int | None) -> None:
        """Keep at most ``cap`` entries (``None``: all)."""
        self.entries.set_cap(cap)

    def charge(self, entry: LedgerEntry) -> LedgerEntry:
        """Record one charge and return it."""
        self.entries.append(entry)
        amount = entry.amount
        self.sum += amount
        self._add(self.by_account, entry.account, amount)
        if entry.agent:
            self._add(self.by_agent, entry.agent, amount)
            self._add(self.by_pair, (entry.account, entry.agent), amount)
        return entry

    def _add(self, totals: OrderedDict[Any, Decimal], key: Any, amount: Decimal) -> None:
        totals[key] = totals.get(key, Decimal(0)) + amount
        if self.totals_cap is not None and len(totals) > self.totals_cap:
            totals.popitem(last=False)
            self.totals_evicted += 1

    def select(
        self, *, account: str | None = None, agent: str | None = None, transaction_id: str | None = None
    ) -> Iterable[LedgerEntry]:
        """The kept entries matching every given filter, oldest first."""
        for e in self.entries:
            if account is not None and e.account != account:
                continue
            if agent is not None and e.agent != agent:
                continue
            if transaction_id is not None and e.transaction_id != transaction_id:
                continue
            yield e

    def total(
        self, *, account: str | None = None, agent: str | None = None, transaction_id: str | None = None
    ) -> Decimal:
        """The sum spent, e.g. ``Decimal("0.00003")`` after three publishes (from the running totals, except
        by ``transaction_id``: over the kept entries)."""
        if transaction_id is not None:
            return sum(
                (e.amount for e in self.select(account=account, agent=agent, transaction_id=transaction_id)), Decimal(0)
            )
        if account is not None and agent is not None:
            return self.by_pair.get((account, agent), Decimal(0))
        if account is not None:
            return self.by_account.get(account, Decimal(0))
        if agent is not None:
            return self.by_agent.get(agent, Decimal(0))
        return self.sum
