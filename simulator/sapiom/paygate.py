"""The payment check in front of each billed ``/v1/qstash/...`` operation (the gateway side of x402).

Two steps, so that a request that fails *after* the check (a 400 from the QStash layer) does not burn
the payment::

    ok = gate.check(request.headers, operation="publishMessage", resource_url=url, now_ms=now)
    # raises PaymentRequired (402: render exc.body / exc.headers) or BadRequest (400)
    try:
        result = core.publish(...)
    except Exception:
        ok.release()          # the payment stays usable
        raise
    ok.commit(now)            # burns the nonce, attaches the cost to the transaction
    response.headers.update(ok.headers)   # X-PAYMENT-RESPONSE / PAYMENT-RESPONSE

Verification (:func:`verify_payment`) follows ``docs/sapiom-contract.md`` section 6, in order:
header present, decodes, version, requirement match (scheme/network or ``accepted`` + resource),
recipient, amount, validity window, signature, bound to the transaction, single use.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qstash_sim.errors import BadRequest, PaymentRequired
from qstash_sim.sapiom.prices import describe, price_base_units
from qstash_sim.sapiom.records import PaymentMode, PaymentRecord, PaymentStatus, Transaction, TransactionStatus
from qstash_sim.sapiom.transactions import TransactionStore
from qstash_sim.sapiom.x402 import (
    V1_PAYMENT_HEADER,
    V2_PAYMENT_HEADER,
    Challenge,
    PaymentTerms,
    X402Variant,
    b64json,
    b64json_decode,
    build_challenge,
    requirement_amount,
    settlement,
    sign_authorization,
)

__all__ = ["TX_HEADER", "PaymentRejected", "PaymentOK", "PaymentSettings", "PaymentGate", "verify_payment"]

TX_HEADER = "X-Sapiom-Transaction-Id"


class PaymentRejected(PaymentRequired):
    """402 for a payment that was presented but failed a check; ``reason`` is the x402 error code
    (also in the body's ``error``), ``message`` says which field and what was expected."""

    def __init__(self, reason: str, message: str, challenge: Challenge, *, payer: str = "") -> None:
        rejected = challenge.with_error(reason)
        failure = settlement(False, nonce="", network=challenge.network, payer=payer, reason=reason)
        headers = {**rejected.headers, challenge.response_header: b64json(failure)}
        super().__init__(message, headers=headers, body=rejected.body)
        self.reason = reason


@dataclass(slots=True)
class PaymentOK:
    """A request allowed through; call :meth:`commit` after the operation succeeded, else :meth:`release`."""

    amount: int  # USDC base units this call costs (0: not billed)
    transaction: Transaction | None  # from X-Sapiom-Transaction-Id, when it names a known transaction
    payment: PaymentRecord | None = None  # the verified payment (x402 mode only)
    headers: dict[str, str] = field(default_factory=dict)  # to add to the 2xx answer (settlement)
    on_commit: Callable[[int], None] | None = None
    done: bool = False

    @property
    def account(self) -> str | None:
        """The paying account (the gateway never sees the API key; the transaction carries it)."""
        return self.transaction.account if self.transaction else None

    @property
    def agent(self) -> str | None:
        """The paying agent, for the ledger entry."""
        return self.transaction.agent if self.transaction else None

    def commit(self, now_ms: int) -> None:
        """Burn the payment's nonce and attach the cost to the transaction. Idempotent."""
        if self.done:
            return
        self.done = True
        if self.payment is not None:
            self.payment.reserved = False
            self.payment.status = PaymentStatus.SETTLED
            self.payment.settled_ms = self.payment.updated_ms = now_ms
        if self.on_commit is not None:
            self.on_commit(now_ms)

    def release(self) -> None:
        """Give the payment back untouched (the operation failed after the check). Idempotent."""
        if self.done:
            return
        self.done = True
        if self.payment is not None:
            self.payment.reserved = False


def _header(headers: Mapping[str, str], name: str) -> str | None:
    low = name.lower()
    for k, v in headers.items():
        if k.lower() == low:
            return v
    return None


def _digits(value: Any) -> int | None:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def verify_payment(
    headers: Mapping[str, str],
    tx_lookup: Callable[[str], Transaction | None],
    challenge: Challenge,
    now_ms: int,
    *,
    secret: str,
    strict_headers: bool = False,
) -> PaymentOK:
    """Check the payment a request carries against ``challenge`` (what this request costs).

    Returns a :class:`PaymentOK` holding the payment *reserved* (commit or release it). Raises
    ``PaymentRequired`` with the challenge when no payment header is present, ``BadRequest`` when the
    header is not base64 JSON of an object, and :class:`PaymentRejected` (402, ``error`` = reason)
    for every other failed check. A failure changes nothing.

    The checks, in order: the header (:func:`_decode`), the requirement it answers
    (:meth:`_Check.requirement`), the authorization's recipient, amount, window and signature
    (:meth:`_Check.authorization`), then the transaction and its nonce (:meth:`_Check.reserve`).
    """
    name, decoded, preferred = _decode(headers, challenge)
    check = _Check(name, decoded, challenge)
    check.version(preferred, strict_headers)
    req, network = check.requirement()
    price = check.authorization(req, network, now_ms, secret)
    return check.reserve(headers, tx_lookup, network, price)


def _decode(headers: Mapping[str, str], challenge: Challenge) -> tuple[str, dict[str, Any], str]:
    """(header name, decoded payload, the header this version belongs in); 402 without one, 400 if garbled."""
    present = {n: v for n in (V1_PAYMENT_HEADER, V2_PAYMENT_HEADER) if (v := _header(headers, n)) is not None}
    if not present:
        raise PaymentRequired(str(challenge.x402["error"]), headers=challenge.headers, body=challenge.body)
    preferred = V2_PAYMENT_HEADER if challenge.version == 2 else V1_PAYMENT_HEADER
    name = preferred if preferred in present else next(iter(present))
    try:
        decoded = b64json_decode(present[name])
    except ValueError as exc:
        raise BadRequest(f"{name} header: {exc}; expected base64 of the x402 PaymentPayload JSON object") from None
    if not isinstance(decoded, dict):
        raise BadRequest(f"{name} header must decode to a JSON object (x402 PaymentPayload), got {json.dumps(decoded)}")
    return name, decoded, preferred


class _Check:
    """One payment payload checked step by step; each failed step raises :class:`PaymentRejected`."""

    def __init__(self, name: str, decoded: dict[str, Any], challenge: Challenge) -> None:
        self.name, self.decoded, self.challenge = name, decoded, challenge
        self.auth: Any = None
        self.inner: Any = None

    def reject(self, reason: str, message: str) -> PaymentRejected:
        auth_from = self.auth.get("from") if isinstance(self.auth, dict) else None
        return PaymentRejected(reason, f"{self.name}: {message}", self.challenge, payer=str(auth_from or ""))

    def version(self, preferred: str, strict_headers: bool) -> None:
        """The payload's x402 version (and, strictly, its header) match the challenge; it has an authorization."""
        version, expected = self.decoded.get("x402Version"), self.challenge.version
        if not isinstance(version, int) or isinstance(version, bool) or version != expected:
            raise self.reject("invalid_x402_version", f"/x402Version must be {expected}, got {json.dumps(version)}")
        if strict_headers and self.name != preferred:
            raise self.reject("invalid_x402_version", f"an x402 v{version} payment must be sent in {preferred}")
        self.inner = self.decoded.get("payload")
        self.auth = self.inner.get("authorization") if isinstance(self.inner, dict) else None
        if not isinstance(self.auth, dict):
            raise self.reject("invalid_payload", "/payload/authorization is missing: expected an object")

    def requirement(self) -> tuple[dict[str, Any], str]:
        """The requirement of the challenge this payment answers, and its network."""
        decoded, challenge = self.decoded, self.challenge
        if challenge.version == 1:
            scheme, network = decoded.get("scheme"), decoded.get("network")
            candidates = [r for r in challenge.accepts if r.get("scheme") == scheme]
            if not candidates:
                offered = sorted({str(r.get("scheme")) for r in challenge.accepts})
                raise self.reject("invalid_scheme", f"/scheme must be one of {offered}, got {json.dumps(scheme)}")
            req = next((r for r in candidates if r.get("network") == network), None)
            if req is None:
                offered = sorted({str(r.get("network")) for r in candidates})
                raise self.reject("invalid_network", f"/network must be one of {offered}, got {json.dumps(network)}")
            return req, str(network)
        accepted = decoded.get("accepted")
        req = next((r for r in challenge.accepts if r == accepted), None)
        if req is None:
            raise self.reject("invalid_payment_requirements", "/accepted does not equal any requirement in accepts")
        resource = decoded.get("resource")
        url = resource.get("url") if isinstance(resource, dict) else None
        if url != challenge.resource_url:
            raise self.reject(
                "invalid_payment_requirements",
                f"/resource/url must be {json.dumps(challenge.resource_url)}, got {json.dumps(url)}",
            )
        return req, str(req.get("network"))

    def authorization(self, req: dict[str, Any], network: str, now_ms: int, secret: str) -> int:
        """Recipient, amount, validity window and signature of the authorization; returns the price."""
        auth = self.auth
        if auth.get("to") != req.get("payTo"):
            raise self.reject(
                "invalid_exact_evm_payload_recipient_mismatch",
                f"/payload/authorization/to must be {json.dumps(req.get('payTo'))}, got {json.dumps(auth.get('to'))}",
            )
        value, price = _digits(auth.get("value")), requirement_amount(req)
        if value is None or value < price:
            raise self.reject(
                "invalid_exact_evm_payload_authorization_value",
                f"/payload/authorization/value must be at least {price}, got {json.dumps(auth.get('value'))}",
            )
        after, before, now_s = _digits(auth.get("validAfter")), _digits(auth.get("validBefore")), now_ms // 1000
        if after is None or after > now_s:
            raise self.reject(
                "invalid_exact_evm_payload_authorization_valid_after",
                f"/payload/authorization/validAfter must be <= now ({now_s}), got {json.dumps(auth.get('validAfter'))}",
            )
        if before is None or now_s >= before:
            raise self.reject(
                "invalid_exact_evm_payload_authorization_valid_before",
                f"/payload/authorization/validBefore must be > now ({now_s}): the payment expired, "
                f"got {json.dumps(auth.get('validBefore'))}",
            )
        expected_sig = sign_authorization(secret, self.challenge.version, network, auth)
        signature = self.inner.get("signature") if isinstance(self.inner, dict) else None
        if not isinstance(signature, str) or not hmac.compare_digest(signature, expected_sig):
            raise self.reject(
                "invalid_exact_evm_payload_signature", "/payload/signature does not match the authorization"
            )
        return price

    def reserve(
        self, headers: Mapping[str, str], tx_lookup: Callable[[str], Transaction | None], network: str, price: int
    ) -> PaymentOK:
        """The transaction named by the request issued this nonce, unused: reserve it."""
        tx_id = _header(headers, TX_HEADER)
        if not tx_id:
            raise self.reject("missing_transaction_id", f"the paid request must carry {TX_HEADER}")
        tx = tx_lookup(tx_id)
        if tx is None:
            raise self.reject("unknown_transaction", f"{TX_HEADER} {tx_id!r} names no transaction")
        nonce = self.auth.get("nonce")
        pay = tx.payment
        resource = pay.accepted.get("resource") if pay is not None and pay.nonce == nonce else None
        if isinstance(resource, str) and resource != self.challenge.resource_url:
            # a payment minted for one request does not pay for another (x402 v1 carries no resource itself)
            raise self.reject(
                "invalid_payment_requirements",
                f"the payment was minted for {json.dumps(resource)}, not {json.dumps(self.challenge.resource_url)}",
            )
        if pay is None or pay.nonce != nonce:
            if any(p.nonce == nonce and p.status is PaymentStatus.SETTLED for p in tx.payments):
                raise self.reject("nonce_already_used", f"nonce {nonce} was already used")
            raise self.reject("nonce_mismatch", f"/payload/authorization/nonce was not issued to transaction {tx.id}")
        if pay.status is PaymentStatus.SETTLED or pay.reserved:
            raise self.reject("nonce_already_used", f"nonce {nonce} was already used")
        if pay.status is not PaymentStatus.AUTHORIZED:
            raise self.reject(
                "invalid_transaction_state",
                f"the payment of transaction {tx.id} is {pay.status.value}: poll GET /v1/transactions/{tx.id} "
                "until it is authorized",
            )
        pay.reserved = True
        ok = settlement(True, nonce=pay.nonce, network=network, payer=str(self.auth.get("from", "")))
        headers_out = {self.challenge.response_header: b64json(ok)}
        return PaymentOK(amount=price, transaction=tx, payment=pay, headers=headers_out)


@dataclass(frozen=True, slots=True)
class PaymentSettings:
    """How the gateway asks for money: the mode, the 402 shape and the terms."""

    mode: PaymentMode = PaymentMode.OFF
    variant: X402Variant = X402Variant.V1
    terms: PaymentTerms = field(default_factory=PaymentTerms)
    strict_headers: bool = False  # True: v1 only in X-PAYMENT, v2 only in PAYMENT-SIGNATURE


class PaymentGate:
    """The payment check per :class:`~simulator.payments.PaymentMode`, for one simulator."""

    def __init__(self, store: TransactionStore, settings: PaymentSettings | None = None) -> None:
        self.store = store
        self.settings = settings or PaymentSettings()

    def challenge(
        self,
        operation: str,
        resource_url: str,
        *,
        quantity: int = 1,
        transaction_id: str | None = None,
        error: str | None = None,
        variant: X402Variant | str | None = None,
    ) -> Challenge:
        """The 402 for this call in the configured variant (also for scenario-injected 402s).

        A free operation is quoted at 1 base unit, so that an injected 402 is always payable.
        """
        amount = max(price_base_units(operation, quantity), 1)
        return build_challenge(
            variant or self.settings.variant,
            amount,
            resource_url,
            describe(operation),
            self.settings.terms,
            transaction_id=transaction_id,
            error=error,
        )

    def check(
        self, headers: Mapping[str, str], *, operation: str, resource_url: str, now_ms: int, quantity: int = 1
    ) -> PaymentOK:
        """Allow the call (a :class:`PaymentOK` to commit or release) or raise 402/400.

        ``resource_url`` is the full URL of this request as the client sent it (the destination kept
        raw); ``quantity`` the batch size for ``batchMessages``.
        """
        amount = price_base_units(operation, quantity)
        tx_id = _header(headers, TX_HEADER)
        tx = self.store.find(tx_id)
        mode = self.settings.mode
        if mode is PaymentMode.OFF or amount == 0:
            ok = PaymentOK(amount=amount, transaction=tx)
        elif mode is PaymentMode.TRANSACTION:
            # One authorized transaction pays for one billed call (the SDK creates one per request).
            if tx is None or tx.status is not TransactionStatus.AUTHORIZED or tx.gateway_calls > 0:
                if not tx_id:
                    reason = "missing_transaction_id"
                elif tx is None:
                    reason = "unknown_transaction"
                else:
                    reason = "transaction_already_used" if tx.gateway_calls > 0 else "invalid_transaction_state"
                ch = self.challenge(operation, resource_url, quantity=quantity, transaction_id=tx_id, error=reason)
                state = (
                    f"{tx.id} already paid for a call"
                    if tx is not None and tx.gateway_calls
                    else (f"{tx.id} is {tx.status.value}" if tx is not None else "")
                )
                why = f"{TX_HEADER} must name an authorized transaction not used yet" + (f" ({state})" if state else "")
                raise PaymentRequired(why, headers=ch.headers, body=ch.body)
            ok = PaymentOK(amount=amount, transaction=tx)
        else:
            ch = self.challenge(operation, resource_url, quantity=quantity, transaction_id=tx_id)
            strict = self.settings.strict_headers
            ok = verify_payment(headers, self.store.find, ch, now_ms, secret=self.store.secret, strict_headers=strict)
        paying = ok.transaction
        if paying is not None:

            def attach_cost(now: int) -> None:
                paying.gateway_calls += 1
                self.store.record_charge(paying, operation, quantity, now)

            ok.on_commit = attach_cost
        return ok
