"""Control endpoints of the Sapiom feature: ``/_sim/payment`` (settings) and ``/_sim/transactions``."""

from __future__ import annotations

from typing import Any

from qstash_sim.api.sapiom_wire import payment_to_json, transaction_to_json
from qstash_sim.errors import BadRequest, ConfigError
from qstash_sim.http.surface import Ctx, Reply
from qstash_sim.sapiom.records import Transaction


def _body(ctx: Ctx) -> dict[str, Any]:
    return ctx.json if isinstance(ctx.json, dict) else {}


async def sim_payment_get(ctx: Ctx) -> Reply:
    """GET /_sim/payment"""
    return Reply(ctx.sim.sapiom.to_json())


async def sim_payment_set(ctx: Ctx) -> Reply:
    """POST /_sim/payment {"mode"?, "variant"?, "strictHeaders"?, "policy"?, "apiKeys"?}"""
    body = _body(ctx)
    p = ctx.sim.sapiom
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
            {
                "time": c.time_ms,
                "outcome": c.outcome,
                "statusBefore": c.status_before.value,
                "responseFacts": c.response_facts,
            }
            for c in tx.completions
        ],
        history=[{"time": h.time_ms, "status": h.status.value, "reason": h.reason} for h in tx.history],
        payments=[payment_to_json(p) for p in tx.payments],
    )
    return out


async def sim_transactions(ctx: Ctx) -> Reply:
    """GET /_sim/transactions[?account=&agent=]"""
    account = ctx.query.get("account")
    agent = ctx.query.get("agent")
    txs = [
        _sim_transaction(t)
        for t in ctx.sim.sapiom.store
        if (account is None or t.account == account) and (agent is None or t.agent == agent)
    ]
    return Reply({"transactions": txs})
