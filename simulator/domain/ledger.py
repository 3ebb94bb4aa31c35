"""One charge in the ledger."""

from __future__ import annotations

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

