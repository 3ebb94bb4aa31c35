"""The cost ledger: what each account (and agent, and transaction) spent, in ``Decimal`` dollars.

Prices come from the Sapiom messaging price table:

=============================================  =========
operation                                      price
=============================================  =========
publish, enqueue (per message)                 $0.00001
batch (per message in the array)               $0.00001
schedule (per trigger, charged when it fires)  $0.00001
management (get, list, delete, pause, resume)  $0.001
=============================================  ========="""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from qstash_sim.domain.ledger import LedgerEntry


class Ledger:
    """An append-only list of charges with per-account / per-agent totals."""

    def __init__(self) -> None:
        self.entries: list[LedgerEntry] = []

    def reset(self) -> None:
        """Forget every charge."""
        self.entries.clear()

    def charge(self, entry: LedgerEntry) -> LedgerEntry:
        """Record one charge and return it."""
        self.entries.append(entry)
        return entry

    def select(
        self, *, account: str | None = None, agent: str | None = None, transaction_id: str | None = None
    ) -> Iterable[LedgerEntry]:
        """The entries matching every given filter."""
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
        """The sum spent, e.g. ``Decimal("0.00003")`` after three publishes."""
        return sum(
            (e.amount for e in self.select(account=account, agent=agent, transaction_id=transaction_id)),
            Decimal(0),
        )

