"""Handlers of the simulated Sapiom API (``/v1/transactions...``) and its control endpoints.

Each handler authenticates the key (:func:`_account`), then calls one
:class:`~simulator.transactions.TransactionStore` method and renders the ``@sapiom/core`` shape.

Keys: ``x-api-key`` (what ``@sapiom/fetch`` sends) or ``Authorization: Bearer``. Without an allow-list
any non-empty key is accepted and *is* the account name; with ``--api-key`` (or ``apiKeys`` on
``POST /_sim/payment``) other keys get 401. A transaction of another account is a 404.
"""

from __future__ import annotations

from typing import Any

from qstash_sim.errors import BadRequest, ConfigError, Unauthorized
from qstash_sim.http.dispatch import Ctx, Reply, handles
from qstash_sim.sapiom.feature import payments_of
from qstash_sim.sapiom.records import Transaction
from qstash_sim.sapiom.transactions import (
    complete_to_json,
    cost_to_json,
    facts_to_json,
    payment_to_json,
    transaction_list_to_json,
    transaction_to_json,
)


def api_key(headers: Any) -> str:
    """The key of a request: ``x-api-key``, else ``Authorization: Bearer <key>``; ``""`` if neither."""
    key = (headers.get("x-api-key") or "").strip()
    if key:
        return key
    auth = str(headers.get("Authorization", ""))
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return ""


def _account(ctx: Ctx) -> str:
    """The calling account, or 401."""
    key = api_key(ctx.headers)
    if not key:
        raise Unauthorized("missing API key: send x-api-key: <key> (or Authorization: Bearer <key>)")
    if not payments_of(ctx.sim).key_allowed(key):
        raise Unauthorized("invalid API key: not one of the keys this simulator accepts (--api-key)")
    ctx.caller.account = key
    ctx.entry.account = key
    return key


def _tx_reply(ctx: Ctx, tx: Transaction) -> Reply:
    ctx.entry.detail["transactionId"] = tx.id
    ctx.entry.detail["transactionStatus"] = tx.status.value
    return Reply(transaction_to_json(tx))


def _body(ctx: Ctx) -> dict[str, Any]:
    return ctx.json if isinstance(ctx.json, dict) else {}


@handles("createTransaction")
async def create_transaction(ctx: Ctx) -> Reply:
    """POST /v1/transactions"""
    account = _account(ctx)
    store = payments_of(ctx.sim).store
    return _tx_reply(ctx, store.create(account, _body(ctx), ctx.sim.world.now))


@handles("listTransactions")
async def list_transactions(ctx: Ctx) -> Reply:
    """GET /v1/transactions[?limit=&offset=&status=&serviceName=]"""
    account = _account(ctx)
    q = ctx.query
    limit = int(q.get("limit", "50"))  # the contract already checked the ranges
    offset = int(q.get("offset", "0"))
    page, total = payments_of(ctx.sim).store.list(
        account=account, status=q.get("status"), service=q.get("serviceName"), limit=limit, offset=offset
    )
    return Reply(transaction_list_to_json(page, total, limit, offset))


@handles("getTransaction")
async def get_transaction(ctx: Ctx) -> Reply:
    """GET /v1/transactions/{transactionId} (one poll)"""
    account = _account(ctx)
    tx = payments_of(ctx.sim).store.poll(ctx.params["transactionId"], ctx.sim.world.now, account=account)
    return _tx_reply(ctx, tx)


@handles("reauthorizeTransaction")
async def reauthorize_transaction(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/reauthorize {x402, metadata}"""
    account = _account(ctx)
    body = _body(ctx)
    tx = payments_of(ctx.sim).store.reauthorize(
        ctx.params["transactionId"], body.get("x402"), body.get("metadata"), ctx.sim.world.now, account=account
    )
    return _tx_reply(ctx, tx)


@handles("completeTransaction")
async def complete_transaction(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/complete {outcome, responseFacts}"""
    account = _account(ctx)
    body = _body(ctx)
    tx, fact = payments_of(ctx.sim).store.complete(
        ctx.params["transactionId"], body.get("outcome"), body.get("responseFacts"), ctx.sim.world.now,
        account=account,
    )
    ctx.entry.detail["transactionId"] = tx.id
    ctx.entry.detail["outcome"] = body.get("outcome")
    return Reply(complete_to_json(tx, fact))


@handles("addTransactionCost")
async def add_transaction_cost(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/costs"""
    account = _account(ctx)
    cost = payments_of(ctx.sim).store.add_cost(ctx.params["transactionId"], ctx.json, ctx.sim.world.now, account=account)
    ctx.entry.detail["transactionId"] = cost.transaction_id
    return Reply(cost_to_json(cost, account))


@handles("addTransactionFacts")
async def add_transaction_facts(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/facts"""
    account = _account(ctx)
    fact = payments_of(ctx.sim).store.add_facts(ctx.params["transactionId"], ctx.json, ctx.sim.world.now, account=account)
    ctx.entry.detail["transactionId"] = fact.transaction_id
    return Reply(facts_to_json(fact))


# ------------------------------------------------------------------ control plane


@handles("simPaymentGet")
async def sim_payment_get(ctx: Ctx) -> Reply:
    """GET /_sim/payment"""
    return Reply(payments_of(ctx.sim).to_json())


@handles("simPaymentSet")
async def sim_payment_set(ctx: Ctx) -> Reply:
    """POST /_sim/payment {"mode"?, "variant"?, "strictHeaders"?, "policy"?, "apiKeys"?}"""
    body = _body(ctx)
    p = payments_of(ctx.sim)
    try:
        p.update(
            mode=body.get("mode"),
            variant=body.get("variant"),
            strict_headers=body.get("strictHeaders"),
            policy=body.get("policy"),
            api_keys=body.get("apiKeys"),
        )
    except (ConfigError, ValueError) as exc:
        raise BadRequest(f"body: {exc}") from None
    return Reply(p.to_json())


def _sim_transaction(tx: Transaction) -> dict[str, Any]:
    out = transaction_to_json(tx)
    out.update(
        account=tx.account,
        agentName=tx.agent_name,
        agentId=tx.agent_id,
        polls=tx.polls,
        completions=[
            {"time": c.time_ms, "outcome": c.outcome, "statusBefore": c.status_before.value, "responseFacts": c.response_facts}
            for c in tx.completions
        ],
        history=[{"time": h.time_ms, "status": h.status.value, "reason": h.reason} for h in tx.history],
        payments=[payment_to_json(p) for p in tx.payments],
    )
    return out


@handles("simTransactions")
async def sim_transactions(ctx: Ctx) -> Reply:
    """GET /_sim/transactions[?account=&agent=]"""
    account = ctx.query.get("account")
    agent = ctx.query.get("agent")
    txs = [
        _sim_transaction(t)
        for t in payments_of(ctx.sim).store
        if (account is None or t.account == account) and (agent is None or t.agent == agent)
    ]
    return Reply({"transactions": txs})
