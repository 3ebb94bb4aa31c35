"""The Sapiom API's JSON: the shapes of ``@sapiom/core`` 0.3.0 ``types/transaction.d.ts``
(``TransactionResponse``, ``CompleteTransactionResult``, ...), built from :mod:`qstash_sim.sapiom.records`.
Never an empty body. Shared by the Sapiom surface and the control plane."""

from __future__ import annotations

import hashlib
from typing import Any

from qstash_sim.base.clock import format_ms
from qstash_sim.sapiom.records import CostRecord, FactRecord, PaymentRecord, PaymentStatus, Transaction
from qstash_sim.sapiom.transactions import organization_id


def _opt_time(ms: int | None) -> str | None:
    return None if ms is None else format_ms(ms)


def payment_to_json(p: PaymentRecord) -> dict[str, Any]:
    """``PaymentTransactionResponse``; ``authorizationPayload`` is left out of a denied payment."""
    extra = p.accepted.get("extra")
    token = extra.get("name") if isinstance(extra, dict) and isinstance(extra.get("name"), str) else p.asset
    out: dict[str, Any] = {
        "id": p.id,
        "transactionId": p.transaction_id,
        "protocol": "x402",
        "network": p.network,
        "token": token,
        "scheme": p.scheme,
        "amount": str(p.amount),
        "payTo": p.pay_to,
        "payToType": "address",
        "status": p.status.value,
    }
    if p.status is not PaymentStatus.DENIED:
        out["authorizationPayload"] = p.authorization_payload
    out["protocolMetadata"] = {
        "x402Version": p.version,
        "asset": p.asset,
        "resource": p.resource_url,
        "payer": p.payer,
        "nonce": p.nonce,
        "validAfter": str(p.valid_after_s),
        "validBefore": str(p.valid_before_s),
    }
    out["createdAt"] = format_ms(p.created_ms)
    out["updatedAt"] = format_ms(p.updated_ms)
    if p.authorized_ms is not None:
        out["authorizedAt"] = format_ms(p.authorized_ms)
    if p.settled_ms is not None:
        out["completedAt"] = format_ms(p.settled_ms)
    return out


def cost_to_json(c: CostRecord, account: str) -> dict[str, Any]:
    """``TransactionCostResponse`` (``fiatAmount`` with 18 decimals, as the real API writes it)."""
    return {
        "id": c.id,
        "transactionId": c.transaction_id,
        "organizationId": organization_id(account),
        "fiatAmount": f"{c.fiat_amount:.18f}",
        "fiatAssetSymbol": c.fiat_asset_symbol,
        "isEstimate": c.is_estimate,
        "isActive": c.is_active,
        "supersedesCostId": c.supersedes_cost_id,
        "supersededAt": _opt_time(c.superseded_ms),
        "costDetails": c.cost_details,
        "createdAt": format_ms(c.created_ms),
        "updatedAt": format_ms(c.updated_ms),
    }


def transaction_to_json(tx: Transaction) -> dict[str, Any]:
    """``TransactionResponse``: what create, get and reauthorize answer (the SDK reads ``id``,
    ``status`` and ``payment.authorizationPayload``)."""
    out: dict[str, Any] = {
        "id": tx.id,
        "organizationId": organization_id(tx.account),
        "serviceName": tx.service_name or "",
        "actionName": tx.action_name or "",
        "resourceName": tx.resource_name or "",
        "status": tx.status.value,
        "outcome": tx.outcome,
        "requiresPayment": tx.requires_payment,
        "metadata": tx.metadata,
        "createdAt": format_ms(tx.created_ms),
        "updatedAt": format_ms(tx.updated_ms),
    }
    if tx.qualifiers is not None:
        out["qualifiers"] = tx.qualifiers
    if tx.authorized_ms is not None:
        out["authorizedAt"] = format_ms(tx.authorized_ms)
    if tx.completed_ms is not None:
        out["completedAt"] = format_ms(tx.completed_ms)
    out["currentPaymentTransactionId"] = tx.payment.id if tx.payment else None
    if tx.payment is not None:
        out["payment"] = payment_to_json(tx.payment)
    trace_id = tx.trace_id or "trc_" + hashlib.sha256(f"trace:{tx.id}".encode()).hexdigest()[:22]
    out["trace"] = {"id": trace_id, "externalId": tx.trace_external_id}
    out["costs"] = [cost_to_json(c, tx.account) for c in tx.costs]
    return out


def complete_to_json(tx: Transaction, fact: FactRecord | None) -> dict[str, Any]:
    """``CompleteTransactionResult``: ``{"transaction": {...}, "factId": ...}``."""
    out: dict[str, Any] = {"transaction": transaction_to_json(tx)}
    if fact is not None:
        out["factId"] = fact.id
    return out


def facts_to_json(fact: FactRecord) -> dict[str, Any]:
    """The answer to ``POST .../facts``: ``{"success": true, "factId": "fact_..."}``."""
    return {"success": True, "factId": fact.id}


def transaction_list_to_json(txs: list[Transaction], total: int, limit: int, offset: int) -> dict[str, Any]:
    """The answer to ``GET /v1/transactions``: a page plus paging facts."""
    return {
        "transactions": [transaction_to_json(t) for t in txs],
        "total": total,
        "limit": limit,
        "offset": offset,
    }
