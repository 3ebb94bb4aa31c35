"""Sapiom's records, as data: payment modes, transactions and what hangs off them (payments, costs, facts)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


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
    gateway_calls: int = 0  # billed gateway calls this transaction paid for (transaction mode: at most one)

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
