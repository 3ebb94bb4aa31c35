"""The simulated Sapiom API's behaviour: :class:`TransactionStore`.

One method per ``/v1/transactions...`` route; each takes the parsed JSON body and ``now_ms`` and
returns domain objects (:mod:`qstash_sim.sapiom.records`), which :mod:`qstash_sim.api.sapiom_wire` turns
into the shapes ``@sapiom/core`` 0.3.0 declares. Errors are :mod:`qstash_sim.errors` ``ApiError``
subclasses whose message names the offending JSON field.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from qstash_sim.base.seed import NONCE, TRANSACTION, Seed
from qstash_sim.errors import BadRequest, Conflict, NotFound
from qstash_sim.sapiom.policy import AuthorizationPolicy, PolicyStep
from qstash_sim.sapiom.prices import price, unit_price
from qstash_sim.sapiom.records import (
    CompletionRecord,
    CostRecord,
    FactRecord,
    PaymentRecord,
    PaymentStatus,
    Transaction,
    TransactionStatus,
)
from qstash_sim.sapiom.x402 import mint_payload, payer_address, requirement_amount, validate_x402

if TYPE_CHECKING:
    from qstash_sim.domain.ledger import Ledger

__all__ = ["TransactionStore", "organization_id", "payment_secret"]

_STRING_FIELDS = {
    "agentName": "agent_name",
    "agentId": "agent_id",
    "serviceName": "service_name",
    "actionName": "action_name",
    "resourceName": "resource_name",
    "traceId": "trace_id",
    "traceExternalId": "trace_external_id",
}


def _object(body: Mapping[str, Any], key: str, where: str = "") -> dict[str, Any] | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise BadRequest(f"{where}/{key} must be an object, got {type(value).__name__}")
    return value


def _infer_names(request_facts: dict[str, Any] | None) -> tuple[str | None, str | None, str | None]:
    """(service, action, resource) from the request URL, for a create that named none of them."""
    req = (request_facts or {}).get("request")
    url = req.get("url") if isinstance(req, dict) else None
    if not isinstance(url, str) or "/v1/qstash/" not in url:
        return None, None, url if isinstance(url, str) else None
    action = url.split("/v1/qstash/", 1)[1].split("/", 1)[0].split("?", 1)[0]
    return "messaging", action or None, url


def payment_secret(seed: int) -> str:
    """The key of the fake payment signatures of a simulator with this seed (reproducible runs)."""
    return f"qstash-sim:{seed}:payments"


class TransactionStore:
    """Every transaction of one simulator, with the policy that decides their statuses.

    ``ledger`` (optional) is read for budgets: what an account/agent has already been charged.
    ``secret`` keys the fake payment signatures; it is derived from the seed, so runs are reproducible.
    """

    def __init__(
        self,
        seed: Seed,
        *,
        ledger: Ledger | None = None,
        policy: AuthorizationPolicy | None = None,
        secret: str | None = None,
    ) -> None:
        self.seed = seed
        self.ledger = ledger
        self.policy = policy or AuthorizationPolicy()
        self.secret = secret if secret is not None else payment_secret(seed.value)
        self._txs: dict[str, Transaction] = {}

    def reset(self, policy: AuthorizationPolicy | None = None) -> None:
        """Forget every transaction; install ``policy`` (default: authorize everything)."""
        self._txs.clear()
        self.policy = policy or AuthorizationPolicy()

    # -- lookups -------------------------------------------------------------------------------

    def find(self, tx_id: str | None) -> Transaction | None:
        """The transaction ``tx_id``, or None (also for None)."""
        return self._txs.get(tx_id) if tx_id else None

    def get(self, tx_id: str, *, account: str | None = None) -> Transaction:
        """The transaction ``tx_id`` of ``account`` (any account when None); ``NotFound`` otherwise."""
        tx = self._txs.get(tx_id)
        if tx is None or (account is not None and tx.account != account):
            raise NotFound(f"transaction {tx_id!r} not found")
        return tx

    def list(
        self,
        *,
        account: str | None = None,
        status: TransactionStatus | str | None = None,
        service: str | None = None,
        limit: int = 50,
        offset: int = 0,
    ) -> tuple[list[Transaction], int]:
        """(page, total) of the matching transactions, newest first (``GET /v1/transactions``)."""
        st = TransactionStatus(status) if isinstance(status, str) else status
        rows = [
            t
            for t in reversed(self._txs.values())
            if (account is None or t.account == account)
            and (st is None or t.status is st)
            and (service is None or t.service_name == service)
        ]
        return rows[offset : offset + limit], len(rows)

    def __iter__(self) -> Iterator[Transaction]:
        return iter(list(self._txs.values()))

    def __len__(self) -> int:
        return len(self._txs)

    # -- the SDK's calls ------------------------------------------------------------------------

    def create(
        self, account: str, body: Mapping[str, Any], now_ms: int, *, policy: AuthorizationPolicy | None = None
    ) -> Transaction:
        """``POST /v1/transactions``: store the request and decide its status (budget, then policy).

        ``body`` is the SDK's ``CreateTransactionRequest``; unknown keys are ignored, known keys of
        the wrong type give ``BadRequest`` naming the field (``/agentName must be a string``).
        """
        if not isinstance(body, Mapping):
            raise BadRequest("the request body must be a JSON object (CreateTransactionRequest)")
        pol = policy or self.policy
        fields: dict[str, Any] = {}
        for key, attr in _STRING_FIELDS.items():
            value = body.get(key)
            if value is not None and not isinstance(value, str):
                raise BadRequest(f"/{key} must be a string, got {type(value).__name__}")
            fields[attr] = value
        request_facts = _object(body, "requestFacts")
        service, action, resource = _infer_names(request_facts)
        fields["service_name"] = fields["service_name"] or service
        fields["action_name"] = fields["action_name"] or action
        fields["resource_name"] = fields["resource_name"] or resource
        tx = Transaction(
            id=self.seed.ids(TRANSACTION).new("tx"),
            account=account,
            created_ms=now_ms,
            updated_ms=now_ms,
            status=TransactionStatus.PENDING,
            metadata=dict(_object(body, "metadata") or {}),
            qualifiers=_object(body, "qualifiers"),
            request_facts=request_facts,
            **fields,
        )
        costs = body.get("costs")
        if costs is not None:
            if not isinstance(costs, list):
                raise BadRequest(f"/costs must be an array, got {type(costs).__name__}")
            for i, c in enumerate(costs):
                tx.costs.append(self._cost(tx, c, now_ms, f"/costs/{i}"))
        self._txs[tx.id] = tx
        denial = pol.budget_denial(account, tx.agent, self._spent)
        if denial is not None:
            tx.set_status(TransactionStatus.DENIED, now_ms, denial)
        else:
            self._apply(tx, pol.create, now_ms, "create")
        return tx

    def poll(self, tx_id: str, now_ms: int, *, account: str | None = None) -> Transaction:
        """``GET /v1/transactions/{id}``: count the poll; a pending transaction may settle now."""
        tx = self.get(tx_id, account=account)
        tx.polls += 1
        if tx.status in (TransactionStatus.PENDING, TransactionStatus.PREPARING):
            if tx.pending_polls_left > 0:
                tx.pending_polls_left -= 1
            else:
                self._settle(tx, tx.pending_then, now_ms, f"poll {tx.polls}")
        return tx

    def reauthorize(
        self,
        tx_id: str,
        x402: Any,
        metadata: Any,
        now_ms: int,
        *,
        account: str | None = None,
        policy: AuthorizationPolicy | None = None,
    ) -> Transaction:
        """``POST /v1/transactions/{id}/reauthorize``: validate ``x402``, pay ``accepts[0]``.

        Mints an x402 PaymentPayload bound to the transaction (fresh nonce, valid for the
        requirement's ``maxTimeoutSeconds``) and stores it as ``tx.payment``; the status follows the
        policy's ``reauthorize`` step (a budget overrun denies). ``BadRequest`` names the bad JSON path.
        """
        tx = self.get(tx_id, account=account)
        pol = policy or self.policy
        if tx.status is not TransactionStatus.AUTHORIZED:
            raise Conflict(
                f"transaction {tx.id} is {tx.status.value}: only an authorized transaction can be reauthorized"
            )
        validate_x402(x402)
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequest(f"/metadata must be an object, got {type(metadata).__name__}")
        accepted = x402["accepts"][0]
        amount = requirement_amount(accepted)
        tx.requires_payment = True
        denial = pol.budget_denial(tx.account, tx.agent, self._spent, extra=Decimal(amount) / Decimal(1_000_000))
        if denial is not None:
            tx.set_status(TransactionStatus.DENIED, now_ms, denial)
            return tx
        step = pol.reauthorize
        if step.status in (TransactionStatus.DENIED, TransactionStatus.CANCELLED):
            tx.set_status(step.status, now_ms, "policy: reauthorize")
            return tx
        version = int(x402["x402Version"])
        payer = payer_address(tx.account, tx.agent)
        nonce = self.seed.ids(NONCE).hex(32)
        payload = mint_payload(x402, accepted, payer=payer, nonce=nonce, now_ms=now_ms, secret=self.secret)
        auth = payload["payload"]["authorization"]
        pay = PaymentRecord(
            id=self.seed.ids(TRANSACTION).new("pay"),
            transaction_id=tx.id,
            version=version,
            scheme=str(accepted["scheme"]),
            network=str(accepted["network"]),
            asset=str(accepted.get("asset", "")),
            amount=amount,
            pay_to=str(accepted["payTo"]),
            payer=payer,
            resource_url=str(x402["resource"]["url"] if version == 2 else accepted["resource"]),
            x402=x402,
            accepted=accepted,
            metadata=dict(metadata or {}),
            authorization_payload=payload,
            nonce=nonce,
            valid_after_s=int(auth["validAfter"]),
            valid_before_s=int(auth["validBefore"]),
            status=PaymentStatus.PENDING,
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        tx.payment = pay
        tx.payments.append(pay)
        self._apply(tx, step, now_ms, "reauthorize")
        return tx

    def complete(
        self, tx_id: str, outcome: Any, response_facts: Any, now_ms: int, *, account: str | None = None
    ) -> tuple[Transaction, FactRecord | None]:
        """``POST /v1/transactions/{id}/complete``: record the outcome, whatever the status.

        Authorized/pending transactions become ``completed``; denied/cancelled ones keep their status
        (the SDK completes those too, with outcome ``error``). Repeats are recorded, never rejected.
        """
        tx = self.get(tx_id, account=account)
        if outcome not in ("success", "error"):
            raise BadRequest(f'/outcome must be "success" or "error", got {outcome!r}')
        if response_facts is not None and not isinstance(response_facts, dict):
            raise BadRequest(f"/responseFacts must be an object, got {type(response_facts).__name__}")
        fact = None
        if response_facts is not None:
            facts = response_facts.get("facts")
            fact = self._fact(tx, response_facts, "response" if outcome == "success" else "error", facts, now_ms)
        tx.completions.append(CompletionRecord(now_ms, outcome, response_facts, tx.status, fact.id if fact else None))
        tx.outcome = outcome
        tx.updated_ms = now_ms
        if tx.status not in (TransactionStatus.DENIED, TransactionStatus.CANCELLED, TransactionStatus.COMPLETED):
            tx.completed_ms = now_ms
            tx.set_status(TransactionStatus.COMPLETED, now_ms, f"complete: {outcome}")
        return tx, fact

    def add_cost(self, tx_id: str, body: Any, now_ms: int, *, account: str | None = None) -> CostRecord:
        """``POST /v1/transactions/{id}/costs``: add a cost; ``supersedesCostId`` deactivates an earlier one."""
        tx = self.get(tx_id, account=account)
        cost = self._cost(tx, body, now_ms, "")
        tx.costs.append(cost)
        tx.updated_ms = now_ms
        return cost

    def add_facts(self, tx_id: str, body: Any, now_ms: int, *, account: str | None = None) -> FactRecord:
        """``POST /v1/transactions/{id}/facts``: store ``{source, version, factPhase, facts}``."""
        tx = self.get(tx_id, account=account)
        if not isinstance(body, dict):
            raise BadRequest("the request body must be a JSON object {source, version, factPhase, facts}")
        phase = body.get("factPhase")
        if not isinstance(phase, str) or not phase:
            raise BadRequest(f'/factPhase must be a non-empty string such as "response", got {phase!r}')
        return self._fact(tx, body, phase, body.get("facts"), now_ms)

    def record_charge(self, tx: Transaction, operation: str, quantity: int, now_ms: int) -> CostRecord | None:
        """Attach the gateway's charge for ``operation`` to ``tx`` as a final cost (None when free)."""
        amount = price(operation, quantity)
        if amount == 0:
            return None
        cost = CostRecord(
            id=self.seed.ids(TRANSACTION).new("cost"),
            transaction_id=tx.id,
            fiat_amount=amount,
            fiat_asset_symbol="USD",
            is_estimate=False,
            cost_details={"operation": operation, "quantity": quantity, "unitPrice": str(unit_price(operation))},
            created_ms=now_ms,
            updated_ms=now_ms,
        )
        tx.costs.append(cost)
        return cost

    # -- internals ------------------------------------------------------------------------------

    def _spent(self, account: str, agent: str | None) -> Decimal:
        if self.ledger is None:
            return Decimal(0)
        if agent is None:
            return self.ledger.total(account=account)
        return self.ledger.total(account=account, agent=agent)

    def _apply(self, tx: Transaction, step: PolicyStep, now_ms: int, phase: str) -> None:
        if step.status in (TransactionStatus.PENDING, TransactionStatus.PREPARING):
            tx.pending_polls_left = step.polls
            tx.pending_then = step.then
            tx.set_status(step.status, now_ms, f"policy: {phase} ({step.polls} pending polls, then {step.then.value})")
        else:
            self._settle(tx, step.status, now_ms, f"policy: {phase}")

    def _settle(self, tx: Transaction, status: TransactionStatus, now_ms: int, reason: str) -> None:
        tx.set_status(status, now_ms, reason)
        pay = tx.payment
        if pay is not None and pay.status is PaymentStatus.PENDING:
            pay.updated_ms = now_ms
            if status is TransactionStatus.AUTHORIZED:
                pay.status = PaymentStatus.AUTHORIZED
                pay.authorized_ms = now_ms
            else:
                pay.status = PaymentStatus.DENIED

    def _cost(self, tx: Transaction, body: Any, now_ms: int, where: str) -> CostRecord:
        if not isinstance(body, dict):
            raise BadRequest(f"{where or 'the request body'} must be an object {{fiatAmount, fiatAssetSymbol, ...}}")
        raw = body.get("fiatAmount")
        if isinstance(raw, float) and raw.is_integer():  # JSON Schema counts 5.0 as the integer 5
            raw = int(raw)
        try:
            amount = Decimal(str(raw)) if isinstance(raw, (str, int)) and not isinstance(raw, bool) else None
        except ArithmeticError:
            amount = None
        if amount is None or not amount.is_finite():
            raise BadRequest(f'{where}/fiatAmount must be a decimal string such as "0.00001", got {raw!r}')
        symbol = body.get("fiatAssetSymbol", "USD")
        if not isinstance(symbol, str):
            raise BadRequest(f"{where}/fiatAssetSymbol must be a string, got {symbol!r}")
        estimate = body.get("isEstimate", False)
        if not isinstance(estimate, bool):
            raise BadRequest(f"{where}/isEstimate must be true or false, got {estimate!r}")
        details = _object(body, "costDetails", where)
        supersedes = body.get("supersedesCostId")
        if supersedes is not None:
            old = next((c for c in tx.costs if c.id == supersedes), None)
            if old is None:
                # A well-formed reference to a cost this transaction does not have: a state conflict (409),
                # except inside a create, where no cost can exist yet (the schema forbids the key there).
                error = BadRequest if where else Conflict
                raise error(f"{where}/supersedesCostId: no cost {supersedes!r} on transaction {tx.id}")
            old.is_active, old.superseded_ms, old.updated_ms = False, now_ms, now_ms
        return CostRecord(
            id=self.seed.ids(TRANSACTION).new("cost"),
            transaction_id=tx.id,
            fiat_amount=amount,
            fiat_asset_symbol=symbol,
            is_estimate=estimate,
            cost_details=details,
            created_ms=now_ms,
            updated_ms=now_ms,
            supersedes_cost_id=supersedes,
        )

    def _fact(self, tx: Transaction, body: dict[str, Any], phase: str, facts: Any, now_ms: int) -> FactRecord:
        source, version = body.get("source"), body.get("version")
        fact = FactRecord(
            id=self.seed.ids(TRANSACTION).new("fact"),
            transaction_id=tx.id,
            source=source if isinstance(source, str) else None,
            version=version if isinstance(version, str) else None,
            phase=phase,
            facts=facts if isinstance(facts, dict) else {},
            created_ms=now_ms,
        )
        tx.facts.append(fact)
        return fact


def organization_id(account: str) -> str:
    """A stable organization id for an account (never the API key itself)."""
    return "org_" + hashlib.sha256(f"org:{account}".encode()).hexdigest()[:20]
