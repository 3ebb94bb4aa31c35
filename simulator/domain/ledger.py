"""The cost ledger: every charge (:class:`LedgerEntry`), what each account, agent and transaction spent,
in ``Decimal`` dollars. Prices come from whoever charges (the Sapiom feature's price table).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

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
