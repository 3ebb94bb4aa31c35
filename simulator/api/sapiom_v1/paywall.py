"""The gateway's payment layer, a hook of the Sapiom surface only: who is calling, and (per payment
mode) whether the call is paid.

* ``resolve``: the caller of a ``/v1/qstash/...`` call named by ``X-Sapiom-Transaction-Id`` is the
  transaction's account and agent (the API key never reaches the gateway), keeping the surface's own
  authentication (``x-api-key`` / ``Authorization: Bearer``, then the default account) when the header
  names no transaction;
* ``before``: the :class:`~qstash_sim.sapiom.paygate.PaymentGate` check for the operation's price
  (batch: per item): in ``x402`` mode a call without payment gets the 402 challenge, a malformed payment
  400, a rejected one 402 with the reason; in ``transaction`` mode a call without an authorized
  transaction gets a 402. A 402/400 is raised before the handler runs: nothing is stored, delivered or
  charged;
* ``after``: once the handler succeeded, the payment is committed (the nonce burnt, the cost attached to
  the transaction) and the settlement header added (``X-PAYMENT-RESPONSE`` for v1, ``PAYMENT-RESPONSE``
  for v2);
* ``finish``: a verified payment whose call did not succeed (a 400 from the QStash layer, a scenario
  fault) is released, so the same payment can be retried.

The journal entry of each gateway request gets ``detail.transactionId`` and ``detail.payment``
(``required``, ``paid``, ``rejected:<reason>``, ``invalid``) so tests can follow a call.
"""

from __future__ import annotations

from qstash_sim.api.sapiom_v1.auth import api_key
from qstash_sim.errors import ApiError, NotFound, PaymentRequired
from qstash_sim.http.surface import Ctx, Hook, Reply
from qstash_sim.sapiom.paygate import TX_HEADER, PaymentOK
from qstash_sim.sapiom.prices import GATEWAY_OPERATIONS

__all__ = ["Paywall"]

_OK = "payment"  # ctx.state key of the verified payment


def _operation(ctx: Ctx) -> str:
    """The priced operation: ``pauseSchedulePost`` is priced as ``pauseSchedule`` (``x-same-as``)."""
    return str(ctx.op.extensions.get("x-same-as") or ctx.op.operation_id)


class Paywall(Hook):
    """Sapiom's caller resolution and payment gate, in front of the gateway operations."""

    def resolve(self, ctx: Ctx) -> None:
        """The caller of a gateway call that names a transaction is that transaction's account and agent.

        The header never overrides credentials: with a key, only the key's own transactions count, and
        another account's (or an unknown) id is a 404, as on the Sapiom API. Without a key (what
        ``@sapiom/fetch`` sends the gateway: the API key never reaches it) the id names its account.
        """
        if _operation(ctx) not in GATEWAY_OPERATIONS:
            return
        tx_id = ctx.headers.get(TX_HEADER)
        if not tx_id:
            return
        ctx.entry.detail["transactionId"] = tx_id
        tx = ctx.sim.sapiom.store.find(tx_id)
        keyed = bool(api_key(ctx.headers))
        if tx is None or (keyed and tx.account != ctx.caller.account):
            raise NotFound(f"transaction {tx_id} not found (header {TX_HEADER})")
        ctx.caller.account = tx.account
        ctx.caller.agent = tx.agent
        ctx.caller.transaction_id = tx.id
        ctx.entry.account = tx.account

    def before(self, ctx: Ctx) -> Reply | None:
        """Check the payment; raise the 402/400, or keep the verified payment for ``after``."""
        operation = _operation(ctx)
        if operation not in GATEWAY_OPERATIONS:
            return None
        quantity = len(ctx.json) if operation == "batchMessages" and isinstance(ctx.json, list) else 1
        try:
            ok = ctx.sim.sapiom.gate.check(
                ctx.headers,
                operation=operation,
                resource_url=ctx.request.url,
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
        ctx.state[_OK] = ok
        return None

    def after(self, ctx: Ctx, reply: Reply) -> None:
        """Commit a verified payment of a successful call and add its settlement header."""
        ok: PaymentOK | None = ctx.state.get(_OK)
        if ok is None or ok.done:
            return
        if 200 <= reply.status < 300:
            ok.commit(ctx.sim.world.now)
            reply.headers.update(ok.headers)
        else:
            ok.release()

    def finish(self, ctx: Ctx, status: int | None) -> None:
        """Release a verified payment whose call failed after the check."""
        ok: PaymentOK | None = ctx.state.get(_OK)
        if ok is not None and not ok.done:
            ok.release()
