"""Handlers of the simulated Sapiom API (``/v1/transactions...``).

Each handler authenticates the key (:func:`_account`), then calls one
:class:`~simulator.transactions.TransactionStore` method and renders the ``@sapiom/core`` shape.

Keys: ``x-api-key`` (what ``@sapiom/fetch`` sends) or ``Authorization: Bearer``. Without an allow-list
any non-empty key is accepted and *is* the account name; with ``--api-key`` (or ``apiKeys`` on
``POST /_sim/payment``) other keys get 401. A transaction of another account is a 404.
"""

from __future__ import annotations

from typing import Any

from qstash_sim.api.sapiom_v1.auth import account_of, api_key
from qstash_sim.api.sapiom_wire import (
    complete_to_json,
    cost_to_json,
    facts_to_json,
    transaction_list_to_json,
    transaction_to_json,
)
from qstash_sim.errors import Unauthorized
from qstash_sim.http.surface import Ctx, Reply
from qstash_sim.sapiom.records import Transaction


def _account(ctx: Ctx) -> str:
    """The calling account, or 401."""
    key = api_key(ctx.headers)
    if not key:
        raise Unauthorized("missing API key: send x-api-key: <key> (or Authorization: Bearer <key>)")
    if not ctx.sim.sapiom.key_allowed(key):
        raise Unauthorized("invalid API key: not one of the keys this simulator accepts (--api-key)")
    account = account_of(key, ctx.sim)  # the key itself, unless tokens are configured (--token)
    ctx.caller.account = account
    ctx.entry.account = account
    return account


def _tx_reply(ctx: Ctx, tx: Transaction) -> Reply:
    ctx.entry.detail["transactionId"] = tx.id
    ctx.entry.detail["transactionStatus"] = tx.status.value
    return Reply(transaction_to_json(tx))


def _body(ctx: Ctx) -> dict[str, Any]:
    return ctx.json if isinstance(ctx.json, dict) else {}


async def create_transaction(ctx: Ctx) -> Reply:
    """POST /v1/transactions"""
    account = _account(ctx)
    store = ctx.sim.sapiom.store
    return _tx_reply(ctx, store.create(account, _body(ctx), ctx.sim.world.now))


async def list_transactions(ctx: Ctx) -> Reply:
    """GET /v1/transactions[?limit=&offset=&status=&serviceName=]"""
    account = _account(ctx)
    q = ctx.query  # validated by the contract, its defaults applied
    limit, offset = q["limit"], q["offset"]
    page, total = ctx.sim.sapiom.store.list(
        account=account, status=q.get("status"), service=q.get("serviceName"), limit=limit, offset=offset
    )
    return Reply(transaction_list_to_json(page, total, limit, offset))


async def get_transaction(ctx: Ctx) -> Reply:
    """GET /v1/transactions/{transactionId} (one poll)"""
    account = _account(ctx)
    tx = ctx.sim.sapiom.store.poll(ctx.params["transactionId"], ctx.sim.world.now, account=account)
    return _tx_reply(ctx, tx)


async def reauthorize_transaction(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/reauthorize {x402, metadata}"""
    account = _account(ctx)
    body = _body(ctx)
    tx = ctx.sim.sapiom.store.reauthorize(
        ctx.params["transactionId"], body.get("x402"), body.get("metadata"), ctx.sim.world.now, account=account
    )
    return _tx_reply(ctx, tx)


async def complete_transaction(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/complete {outcome, responseFacts}"""
    account = _account(ctx)
    body = _body(ctx)
    tx, fact = ctx.sim.sapiom.store.complete(
        ctx.params["transactionId"],
        body.get("outcome"),
        body.get("responseFacts"),
        ctx.sim.world.now,
        account=account,
    )
    ctx.entry.detail["transactionId"] = tx.id
    ctx.entry.detail["outcome"] = body.get("outcome")
    return Reply(complete_to_json(tx, fact))


async def add_transaction_cost(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/costs"""
    account = _account(ctx)
    cost = ctx.sim.sapiom.store.add_cost(ctx.params["transactionId"], ctx.json, ctx.sim.world.now, account=account)
    ctx.entry.detail["transactionId"] = cost.transaction_id
    return Reply(cost_to_json(cost, account))


async def add_transaction_facts(ctx: Ctx) -> Reply:
    """POST /v1/transactions/{transactionId}/facts"""
    account = _account(ctx)
    fact = ctx.sim.sapiom.store.add_facts(ctx.params["transactionId"], ctx.json, ctx.sim.world.now, account=account)
    ctx.entry.detail["transactionId"] = fact.transaction_id
    return Reply(facts_to_json(fact))
