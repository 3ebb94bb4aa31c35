"""The Sapiom side of the simulator, as data: prices, payment modes, transactions, authorization policy.

Pure logic, no aiohttp, no clock reads. Companions:

- :mod:`simulator.transactions`: :class:`~simulator.transactions.TransactionStore` (the behaviour of
  the ``/v1/transactions...`` routes) and the JSON serializers of those answers;
- :mod:`simulator.paygate`: the payment check in front of each billed ``/v1/qstash/...`` operation;
- :mod:`simulator.x402`: the x402 wire shapes (402 bodies, payment payloads).

The flow the real ``@sapiom/fetch`` 0.3.0 drives (``docs/sapiom-contract.md``)::

    store.create(account, body, now)              POST /v1/transactions        -> status per policy
    store.poll(tx_id, now)                        GET  /v1/transactions/{id}   -> pending counts down
    gate.check(headers, ...) raises 402           first gateway call (x402 mode)
    store.reauthorize(tx_id, x402, meta, now)     POST .../reauthorize         -> mints the PaymentPayload
    gate.check(headers, ...) -> PaymentOK         the paid retry; ok.commit(now) after the QStash action
    store.complete(tx_id, outcome, facts, now)    POST .../complete            (fire-and-forget, any state)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from .errors import ConfigError
from .ledger import MANAGEMENT_PRICE, MESSAGE_PRICE, to_base_units

__all__ = [
    "GATEWAY_OPERATIONS",
    "SCHEDULE_TRIGGER",
    "PaymentMode",
    "TransactionStatus",
    "PaymentStatus",
    "StatusChange",
    "PaymentRecord",
    "CostRecord",
    "FactRecord",
    "CompletionRecord",
    "Transaction",
    "PolicyStep",
    "AuthorizationPolicy",
    "unit_price",
    "price",
    "price_base_units",
    "describe",
]

# ---------------------------------------------------------------------------------------------------
# Prices

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
#: The ledger operation for a cron fire (not a gateway call, so never behind a 402).
SCHEDULE_TRIGGER = "scheduleTrigger"

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


# ---------------------------------------------------------------------------------------------------
# Modes


class PaymentMode(enum.Enum):
    """What the gateway demands before it serves a billed operation.

    **Default: ``OFF``** for the pytest fixture, ``qstash-sim serve`` and plain curl: plain QStash
    clients (curl, ``qstash-py``, ``@upstash/qstash``) cannot answer a 402, and the real SDK still works
    unchanged in ``OFF`` (it creates a transaction, sends the call with ``X-Sapiom-Transaction-Id``,
    gets the 200, completes), so every caller gets a green first run.

    **Recommended for SDK end-to-end tests: ``X402``.** It is the only mode that exercises the whole
    path ``@sapiom/fetch`` really runs against the product (create -> 402 -> reauthorize -> paid retry
    with ``X-PAYMENT``/``PAYMENT-SIGNATURE`` -> complete), and the path that breaks when a client
    mishandles payment. Pair it with ``failureMode: "closed"`` in the SDK so a misconfigured base URL fails
    loudly instead of silently degrading to a plain fetch.

    ``TRANSACTION`` models the other plausible behaviour of the real gateway (trust an authorized
    Sapiom transaction, no x402 round trip): useful to test both possibilities, since which one the
    real service does is not documented.
    """

    OFF = "off"  # never 402 on its own (scenarios may still inject one)
    X402 = "x402"  # every billed call needs a valid x402 payment: a 402 first, then the paid retry
    TRANSACTION = "transaction"  # served when X-Sapiom-Transaction-Id names an authorized transaction

    @classmethod
    def parse(cls, value: str | PaymentMode) -> PaymentMode:
        """``PaymentMode.parse("x402")`` -> ``PaymentMode.X402``; ValueError lists the choices."""
        if isinstance(value, PaymentMode):
            return value
        for m in cls:
            if m.value == value:
                return m
        raise ValueError(f"unknown payment mode {value!r}: expected one of {', '.join(m.value for m in cls)}")


# ---------------------------------------------------------------------------------------------------
# Domain objects


class TransactionStatus(enum.Enum):
    """A Sapiom transaction's status (``@sapiom/core`` ``TransactionStatus``)."""

    AUTHORIZED = "authorized"  # the SDK may send the request
    PENDING = "pending"  # the SDK polls GET every second (up to 30 s)
    PREPARING = "preparing"  # treated like pending by the SDK
    DENIED = "denied"  # the SDK throws AuthorizationDeniedError (or returns the 402 after reauthorize)
    CANCELLED = "cancelled"  # same as denied for the SDK
    COMPLETED = "completed"  # after /complete; an "unexpected status" for a new call


class PaymentStatus(enum.Enum):
    """The state of one minted x402 payment."""

    PENDING = "pending"  # minted by a pending reauthorize; not usable until a poll authorizes it
    AUTHORIZED = "authorized"  # usable once by the gateway
    SETTLED = "settled"  # used: the gateway served the paid call (its nonce is burnt)
    DENIED = "denied"  # the pending reauthorize settled to denied/cancelled; never usable


@dataclass(slots=True)
class StatusChange:
    """One entry of a transaction's status history."""

    time_ms: int
    status: TransactionStatus
    reason: str  # e.g. "policy: create", "budget: agent 'a' spent $0.00002 of $0.00002", "poll 3"


@dataclass(slots=True)
class PaymentRecord:
    """An x402 payment minted by reauthorize: the requirement paid and the payload handed to the SDK."""

    id: str
    transaction_id: str
    version: int
    scheme: str
    network: str
    asset: str
    amount: int  # USDC base units
    pay_to: str
    payer: str
    resource_url: str
    x402: dict[str, Any]  # the x402 object as sent to reauthorize
    accepted: dict[str, Any]  # the requirement chosen (accepts[0])
    metadata: dict[str, Any]  # reauthorize's metadata (originalRequest, responseHeaders, ...)
    authorization_payload: dict[str, Any]
    nonce: str
    valid_after_s: int
    valid_before_s: int
    status: PaymentStatus
    created_ms: int
    updated_ms: int
    authorized_ms: int | None = None
    settled_ms: int | None = None
    reserved: bool = False  # a gateway call verified it and has not yet committed or released it


@dataclass(slots=True)
class CostRecord:
    """A cost attached to a transaction (by the gateway on commit, or by ``POST .../costs``)."""

    id: str
    transaction_id: str
    fiat_amount: Decimal
    fiat_asset_symbol: str
    is_estimate: bool
    cost_details: dict[str, Any] | None
    created_ms: int
    updated_ms: int
    is_active: bool = True
    supersedes_cost_id: str | None = None
    superseded_ms: int | None = None


@dataclass(slots=True)
class FactRecord:
    """Facts posted to ``POST .../facts`` or carried by ``/complete``'s ``responseFacts``."""

    id: str
    transaction_id: str
    source: str | None
    version: str | None
    phase: str  # "request" | "response" | "error" | "partial" | ... as given
    facts: dict[str, Any]
    created_ms: int


@dataclass(slots=True)
class CompletionRecord:
    """One ``POST .../complete`` (the SDK sends one per call; duplicates are kept, not rejected)."""

    time_ms: int
    outcome: str  # "success" | "error"
    response_facts: dict[str, Any] | None
    status_before: TransactionStatus
    fact_id: str | None = None


@dataclass(slots=True)
class Transaction:
    """A Sapiom transaction: one per ``sapiomFetch`` call."""

    id: str
    account: str
    created_ms: int
    updated_ms: int
    status: TransactionStatus
    agent_name: str | None = None
    agent_id: str | None = None
    service_name: str | None = None
    action_name: str | None = None
    resource_name: str | None = None
    trace_id: str | None = None
    trace_external_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    qualifiers: dict[str, Any] | None = None
    request_facts: dict[str, Any] | None = None
    outcome: str | None = None
    authorized_ms: int | None = None
    completed_ms: int | None = None
    requires_payment: bool = False
    history: list[StatusChange] = field(default_factory=list)
    payment: PaymentRecord | None = None  # the current payment (the last one minted)
    payments: list[PaymentRecord] = field(default_factory=list)  # every payment minted, in order
    polls: int = 0  # GET /v1/transactions/{id} calls
    pending_polls_left: int = 0  # while pending: GETs still answered pending before it settles
    pending_then: TransactionStatus = TransactionStatus.AUTHORIZED
    completions: list[CompletionRecord] = field(default_factory=list)
    costs: list[CostRecord] = field(default_factory=list)
    facts: list[FactRecord] = field(default_factory=list)

    @property
    def agent(self) -> str | None:
        """The agent key used for budgets and the ledger: agentName, else agentId."""
        return self.agent_name or self.agent_id

    @property
    def request_url(self) -> str | None:
        """``requestFacts.request.url`` when the SDK sent it."""
        req = (self.request_facts or {}).get("request")
        url = req.get("url") if isinstance(req, dict) else None
        return url if isinstance(url, str) else None

    @property
    def request_headers(self) -> dict[str, str]:
        """``requestFacts.request.headers`` (the caller's request headers, minus credentials)."""
        req = (self.request_facts or {}).get("request")
        headers = req.get("headers") if isinstance(req, dict) else None
        return {str(k).lower(): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}

    def set_status(self, status: TransactionStatus, now_ms: int, reason: str) -> None:
        """Move to ``status`` and record why."""
        self.status = status
        self.updated_ms = now_ms
        if status is TransactionStatus.AUTHORIZED:
            self.authorized_ms = now_ms
        self.history.append(StatusChange(now_ms, status, reason))


# ---------------------------------------------------------------------------------------------------
# Authorization policy

_STEP_STATUSES = {s.value: s for s in TransactionStatus if s is not TransactionStatus.COMPLETED}
_FINAL_STATUSES = {
    s.value: s for s in (TransactionStatus.AUTHORIZED, TransactionStatus.DENIED, TransactionStatus.CANCELLED)
}


@dataclass(frozen=True, slots=True)
class PolicyStep:
    """What the Sapiom API answers at one phase (create or reauthorize).

    ``PolicyStep()`` authorizes at once; ``PolicyStep(TransactionStatus.PENDING, polls=2)`` answers
    ``pending`` and then two more GETs with ``pending`` before the third says ``authorized`` (each
    pending GET costs a real SDK client about one second); ``then`` may also be denied/cancelled.
    """

    status: TransactionStatus = TransactionStatus.AUTHORIZED
    polls: int = 0  # pending/preparing only: how many GETs still answer that status
    then: TransactionStatus = TransactionStatus.AUTHORIZED  # pending/preparing only: where it settles

    def __post_init__(self) -> None:
        if self.status is TransactionStatus.COMPLETED:
            raise ConfigError("a policy step cannot answer 'completed' (the SDK treats it as an error)")
        if self.then.value not in _FINAL_STATUSES:
            raise ConfigError(f"'then' must be one of {', '.join(_FINAL_STATUSES)}, got {self.then.value!r}")
        if self.polls < 0:
            raise ConfigError(f"'polls' must be >= 0, got {self.polls}")

    @classmethod
    def parse(cls, value: Any, where: str) -> PolicyStep:
        """A step from config.

        ``"denied"`` -> ``PolicyStep(DENIED)``; ``{"pending": 2}`` -> ``PolicyStep(PENDING, polls=2)``;
        ``{"status": "pending", "polls": 1, "then": "denied"}`` -> pending for one GET, then denied.
        ``ConfigError`` names ``where`` (e.g. ``authorization.create``) and the accepted forms.
        """
        if isinstance(value, PolicyStep):
            return value
        if isinstance(value, str):
            return cls(_status(value, where, _STEP_STATUSES))
        if isinstance(value, Mapping):
            data = dict(value)
            for short in ("pending", "preparing"):
                if short in data:
                    polls = data.pop(short)
                    data = {"status": short, "polls": polls, **data}
            unknown = set(data) - {"status", "polls", "then"}
            if unknown:
                raise ConfigError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}; expected status, polls, then")
            polls = data.get("polls", 0)
            if isinstance(polls, float) and polls.is_integer():  # JSON Schema counts 2.0 as the integer 2
                polls = int(polls)
            if not isinstance(polls, int) or isinstance(polls, bool) or polls < 0:
                raise ConfigError(f"{where}.polls must be an integer >= 0, got {polls!r}")
            return cls(
                _status(data.get("status", "authorized"), f"{where}.status", _STEP_STATUSES),
                polls,
                _status(data.get("then", "authorized"), f"{where}.then", _FINAL_STATUSES),
            )
        raise ConfigError(
            f'{where} must be a status ("authorized", "denied", ...) or a mapping such as {{"pending": 2}}, '
            f"got {value!r}"
        )


def _status(value: Any, where: str, allowed: Mapping[str, TransactionStatus]) -> TransactionStatus:
    if isinstance(value, TransactionStatus) and value.value in allowed:
        return value
    if isinstance(value, str) and value in allowed:
        return allowed[value]
    raise ConfigError(f"{where} must be one of {', '.join(allowed)}, got {value!r}")


def _budgets(value: Any, where: str) -> dict[str, Decimal]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ConfigError(f'{where} must be a mapping of name -> dollars, e.g. {{"my-agent": "0.01"}}')
    out: dict[str, Decimal] = {}
    for name, dollars in value.items():
        try:
            amount = Decimal(str(dollars)) if not isinstance(dollars, bool) else None
        except InvalidOperation:
            amount = None
        if amount is None or not amount.is_finite() or amount < 0:
            raise ConfigError(f'{where}.{name} must be a dollar amount >= 0 such as "0.01", got {dollars!r}')
        out[str(name)] = amount
    return out


@dataclass(frozen=True, slots=True)
class AuthorizationPolicy:
    """How the simulated Sapiom API decides transaction statuses (default: authorize everything).

    Budgets are in dollars, measured against the ledger (what the account/agent was charged): a create
    is denied once the spend has reached the budget, a reauthorize when its payment would exceed it.
    """

    create: PolicyStep = field(default_factory=PolicyStep)
    reauthorize: PolicyStep = field(default_factory=PolicyStep)
    agent_budgets: Mapping[str, Decimal] = field(default_factory=dict)  # agentName (or agentId) -> dollars
    account_budgets: Mapping[str, Decimal] = field(default_factory=dict)  # account -> dollars

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "authorization") -> AuthorizationPolicy:
        """Parse the ``authorization:`` block of a scenario or fixture option.

        ``{"create": {"pending": 2}, "reauthorize": "denied", "budgets": {"agents": {"my-agent": "0.00002"}}}``
        -> create answers pending for 2 GETs then authorized; every reauthorize is denied; ``my-agent``
        is denied new transactions once charged $0.00002. ``ConfigError`` names the bad key.
        """
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping with create, reauthorize and/or budgets")
        unknown = set(data) - {"create", "reauthorize", "budgets"}
        if unknown:
            keys = ", ".join(sorted(unknown))
            raise ConfigError(f"{where}: unknown key(s) {keys}; expected create, reauthorize, budgets")
        budgets = data.get("budgets")
        budgets = {} if budgets is None else budgets  # null means none; false, 0, "" are mistakes
        if not isinstance(budgets, Mapping) or set(budgets) - {"agents", "accounts"}:
            raise ConfigError(f"{where}.budgets must be a mapping with 'agents' and/or 'accounts'")
        return cls(
            create=PolicyStep.parse(data.get("create", "authorized"), f"{where}.create"),
            reauthorize=PolicyStep.parse(data.get("reauthorize", "authorized"), f"{where}.reauthorize"),
            agent_budgets=_budgets(budgets.get("agents"), f"{where}.budgets.agents"),
            account_budgets=_budgets(budgets.get("accounts"), f"{where}.budgets.accounts"),
        )

    def budget_denial(
        self,
        account: str,
        agent: str | None,
        spent: Callable[[str, str | None], Decimal],
        extra: Decimal | None = None,
    ) -> str | None:
        """Why a budget denies this create (``extra`` None) or this payment of ``extra`` dollars; None if it fits.

        ``spent(account, agent)`` is what was charged so far (agent None: the whole account).
        """
        checks: list[tuple[str, Decimal, Decimal]] = []
        if agent is not None and agent in self.agent_budgets:
            checks.append((f"agent {agent!r}", self.agent_budgets[agent], spent(account, agent)))
        if account in self.account_budgets:
            checks.append((f"account {account!r}", self.account_budgets[account], spent(account, None)))
        for who, budget, used in checks:
            over = used >= budget if extra is None else used + extra > budget
            if over:
                what = "" if extra is None else f" (+${extra} for this payment)"
                return f"budget: {who} spent ${used}{what} of its ${budget} budget"
        return None
