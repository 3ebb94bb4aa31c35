"""The gateway's payment layer: who is calling, and (per payment mode) whether the call is paid.

Installed on the :class:`~simulator.http.app.Dispatcher` by :func:`install`:

* a ``before`` hook on every ``/v1/qstash/...`` operation that

  1. resolves the caller from ``X-Sapiom-Transaction-Id`` (the transaction's account, agentName and
     id: the API key never reaches the gateway), keeping the dispatcher's fallback (``x-api-key`` /
     ``Authorization: Bearer``, then the default account) when the header names no transaction;
  2. runs the :class:`~simulator.paygate.PaymentGate` check for the operation's price (batch: per
     item): in ``x402`` mode a call without payment gets the 402 challenge, a malformed payment 400, a
     rejected one 402 with the reason; in ``transaction`` mode a call without an authorized transaction
     gets a 402. A 402/400 is raised before the handler runs, so nothing is stored, delivered or charged.

* an ``after`` hook that, once the handler succeeded, commits the payment (burns the nonce, attaches
  the cost to the transaction) and adds the settlement header (``X-PAYMENT-RESPONSE`` for v1,
  ``PAYMENT-RESPONSE`` for v2);
* an ``on_response_prepare`` signal that releases a verified payment whose call failed after the check
  (a 400 from the QStash layer, a scenario fault), so the same payment can be retried.

The journal entry of each gateway request gets ``detail.transactionId`` and ``detail.payment``
(``required``, ``paid``, ``rejected:<reason>``, ``invalid``) so tests can follow a call.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from qstash_sim.errors import ApiError, PaymentRequired
from qstash_sim.http.dispatch import Ctx, Dispatcher, Reply
from qstash_sim.sapiom.feature import payments_of
from qstash_sim.sapiom.paygate import TX_HEADER, PaymentOK
from qstash_sim.sapiom.prices import GATEWAY_OPERATIONS

__all__ = ["install", "resource_url"]

# The verified payment of a request, kept on the request until commit/release (RequestKey: aiohttp >= 3.14).
_OK_KEY: Any = (
    web.RequestKey("qstash_sim.payment_ok", PaymentOK) if hasattr(web, "RequestKey") else "qstash_sim.payment_ok"
)
_GATEWAY_PREFIX = "/v1/qstash/"


def resource_url(request: web.Request) -> str:
    """The full URL as the client sent it (destination raw): what the x402 ``resource`` names."""
    return f"{request.scheme}://{request.host}{request.raw_path}"


def _operation(ctx: Ctx) -> str:
    """The priced operation: ``pauseSchedulePost`` is priced as ``pauseSchedule`` (``x-same-as``)."""
    return str(ctx.op.extensions.get("x-same-as") or ctx.op.operation_id)


async def _resolve_caller(ctx: Ctx) -> web.StreamResponse | None:
    """The caller of a gateway call is its transaction's account and agent (the key never reaches it)."""
    if not ctx.op.path_template.startswith(_GATEWAY_PREFIX):
        return None
    tx_id = ctx.headers.get(TX_HEADER)
    if tx_id:
        ctx.entry.detail["transactionId"] = tx_id
        tx = payments_of(ctx.sim).store.find(tx_id)
        if tx is not None:
            ctx.caller.account = tx.account
            ctx.caller.agent = tx.agent
            ctx.caller.transaction_id = tx.id
            ctx.entry.account = tx.account
    return None


async def _before(ctx: Ctx) -> web.StreamResponse | None:
    if not ctx.op.path_template.startswith(_GATEWAY_PREFIX):
        return None
    payments = payments_of(ctx.sim)
    operation = _operation(ctx)
    if operation not in GATEWAY_OPERATIONS:
        return None
    quantity = len(ctx.json) if operation == "batchMessages" and isinstance(ctx.json, list) else 1
    try:
        ok = payments.gate.check(
            ctx.headers,
            operation=operation,
            resource_url=resource_url(ctx.request),
            now_ms=ctx.sim.world.now,
            quantity=quantity,
        )
    except PaymentRequired as exc:
        reason = getattr(exc, "reason", None)
        ctx.entry.detail["payment"] = f"rejected:{reason}" if reason else "required"
        raise
    except ApiError:
        ctx.entry.detail["payment"] = "invalid"
        raise
    if ok.payment is not None:
        ctx.entry.detail["payment"] = "paid"
    ctx.request[_OK_KEY] = ok
    return None


def _after(ctx: Ctx, reply: Reply) -> None:
    ok: PaymentOK | None = ctx.request.get(_OK_KEY)
    if ok is None or ok.done:
        return
    if 200 <= reply.status < 300:
        ok.commit(ctx.sim.world.now)
        reply.headers.update(ok.headers)
    else:
        ok.release()


async def _release_unfinished(request: web.Request, response: Any) -> None:
    ok: PaymentOK | None = request.get(_OK_KEY)
    if ok is not None and not ok.done:
        ok.release()


def install(app: web.Application, dispatcher: Dispatcher) -> None:
    """Put the payment layer in front of the gateway handlers (first in the ``before`` list)."""
    payments_of(dispatcher.sim)  # create the state (mode off unless configured) before serving
    dispatcher.before.insert(0, _before)
    dispatcher.after.insert(0, _after)
    # Who is calling is known before anything else looks at the call (scenario rules match on it).
    dispatcher.resolvers.append(_resolve_caller)
    app.on_response_prepare.append(_release_unfinished)
