"""Sapiom's price table: what each gateway operation costs, in ``Decimal`` dollars (one source).

=============================================  =========
operation                                      price
=============================================  =========
publish, enqueue (per message)                 $0.00001
batch (per message in the array)               $0.00001
schedule (per trigger, charged when it fires)  $0.00001
management (get, list, delete, pause, resume)  $0.001
=============================================  =========

``openapi.yaml``'s ``x-billing`` says the same per operation; a test ties the two together.
"""

from __future__ import annotations

from decimal import Decimal

from qstash_sim.domain.ledger import SCHEDULE_TRIGGER

MESSAGE_PRICE = Decimal("0.00001")
MANAGEMENT_PRICE = Decimal("0.001")


# USDC has 6 decimals: $1 = 1_000_000 base units.
USDC_BASE_UNITS = Decimal(1_000_000)


def to_base_units(amount: Decimal) -> int:
    """Dollars to USDC base units: ``to_base_units(Decimal("0.00001"))`` -> ``10``."""
    return int((amount * USDC_BASE_UNITS).to_integral_value())


#: Every gateway operation (the openapi ``operationId``s) with its unit price in dollars.
GATEWAY_OPERATIONS: dict[str, Decimal] = {
    "publishMessage": MESSAGE_PRICE,
    "enqueueMessage": MESSAGE_PRICE,
    "batchMessages": MESSAGE_PRICE,  # per item of the array
    "getMessage": MANAGEMENT_PRICE,
    "cancelMessage": MANAGEMENT_PRICE,
    "listQueues": MANAGEMENT_PRICE,
    "getQueue": MANAGEMENT_PRICE,
    "deleteQueue": MANAGEMENT_PRICE,
    "pauseQueue": MANAGEMENT_PRICE,
    "resumeQueue": MANAGEMENT_PRICE,
    "createSchedule": Decimal(0),  # free to create: charged per trigger (SCHEDULE_TRIGGER)
    "listSchedules": MANAGEMENT_PRICE,
    "getSchedule": MANAGEMENT_PRICE,
    "deleteSchedule": MANAGEMENT_PRICE,
    "pauseSchedule": MANAGEMENT_PRICE,
    "resumeSchedule": MANAGEMENT_PRICE,
}


_DESCRIPTIONS = {
    "publishMessage": "QStash publish",
    "enqueueMessage": "QStash enqueue",
    "batchMessages": "QStash batch",
    "getMessage": "QStash get message",
    "cancelMessage": "QStash cancel message",
    "listQueues": "QStash list queues",
    "getQueue": "QStash get queue",
    "deleteQueue": "QStash delete queue",
    "pauseQueue": "QStash pause queue",
    "resumeQueue": "QStash resume queue",
    "createSchedule": "QStash create schedule",
    "listSchedules": "QStash list schedules",
    "getSchedule": "QStash get schedule",
    "deleteSchedule": "QStash delete schedule",
    "pauseSchedule": "QStash pause schedule",
    "resumeSchedule": "QStash resume schedule",
}


def unit_price(operation: str) -> Decimal:
    """The dollar price of one unit: ``unit_price("getQueue")`` -> ``Decimal("0.001")``.

    Raises ``KeyError`` naming the known operations when ``operation`` is not one of them.
    """
    if operation == SCHEDULE_TRIGGER:
        return MESSAGE_PRICE
    try:
        return GATEWAY_OPERATIONS[operation]
    except KeyError:
        raise KeyError(f"unknown operation {operation!r}: expected one of {', '.join(GATEWAY_OPERATIONS)}") from None


def price(operation: str, quantity: int = 1) -> Decimal:
    """The dollar price of a call: ``price("batchMessages", 2)`` -> ``Decimal("0.00002")``.

    ``quantity`` is the number of items for ``batchMessages`` and 1 for everything else.
    """
    if quantity < 0:
        raise ValueError(f"quantity must be >= 0, got {quantity}")
    return unit_price(operation) * (quantity if operation == "batchMessages" else 1)


def price_base_units(operation: str, quantity: int = 1) -> int:
    """The price in USDC base units: ``price_base_units("publishMessage")`` -> ``10``; 0 = not billed."""
    return to_base_units(price(operation, quantity))


def describe(operation: str) -> str:
    """The human label used as the x402 ``description``: ``"QStash publish"``."""
    return _DESCRIPTIONS.get(operation, f"QStash {operation}")
