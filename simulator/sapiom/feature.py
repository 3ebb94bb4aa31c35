"""Sapiom as a feature of a simulator: transactions, the payment gate, the API-key allow-list, prices.

One :class:`SapiomFeature` per simulator (``sim.sapiom`` on the facade), attached like every feature
(:mod:`qstash_sim.core.feature`). Default: payment mode ``off``, 402 variant ``v1``, any non-empty API
key, authorize everything. :meth:`SapiomFeature.configure` sets the start-up baseline (the CLI's
``--payment``, ``--payment-variant`` and ``--api-key``); ``POST /_sim/payment`` changes the settings at
run time, and ``sim.reset()`` forgets every transaction and restores the baseline.

It also tells the core what a cron fire costs, and builds the 402 a fault scenario's
``payment_required`` action injects (it is the core's :class:`~qstash_sim.core.feature.ChallengeProvider`),
so an injected 402 asks for exactly what the pay-gate verifies on the paid retry.

::

    sim = Simulator(seed=1)
    sim.sapiom.configure(mode="x402", variant="v2", api_keys=["sk_test"])
    sim.sapiom.store        # TransactionStore: what /v1/transactions... answers
    sim.sapiom.gate         # PaymentGate: the check in front of each billed /v1/qstash/... call
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from qstash_sim.core.feature import ChallengeRequest, Feature
from qstash_sim.domain.ledger import SCHEDULE_TRIGGER
from qstash_sim.errors import ConfigError
from qstash_sim.sapiom.paygate import PaymentGate, PaymentSettings
from qstash_sim.sapiom.policy import AuthorizationPolicy
from qstash_sim.sapiom.prices import MESSAGE_PRICE, describe, price_base_units
from qstash_sim.sapiom.records import PaymentMode
from qstash_sim.sapiom.transactions import TransactionStore, payment_secret
from qstash_sim.sapiom.x402 import PaymentTerms, X402Variant, build_challenge

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = ["SapiomFeature"]

_CAIP2 = {"base-sepolia": "eip155:84532", "base": "eip155:8453"}  # v1 network name -> v2 CAIP-2 id


@dataclasses.dataclass(frozen=True, slots=True)
class _Baseline:
    settings: PaymentSettings
    policy: AuthorizationPolicy
    policy_source: Mapping[str, Any]
    api_keys: frozenset[str]


class SapiomFeature(Feature):
    """Transactions, the payment gate, the API-key allow-list and the policy of one simulator."""

    name = "sapiom"
    store: TransactionStore  # from attach() on
    gate: PaymentGate

    def __init__(self) -> None:
        self.api_keys: frozenset[str] = frozenset()  # empty: any non-empty key is an account
        self.policy_source: Mapping[str, Any] = {}  # the policy as configured (for GET /_sim/payment)
        self._baseline: _Baseline | None = None
        self._core: SimulatorCore | None = None

    def attach(self, core: SimulatorCore) -> None:
        """Own the transactions of ``core``'s world; price its cron fires; build its scenarios' 402s."""
        self._core = core
        self.store = TransactionStore(core.world.seed, ledger=core.world.ledger)
        self.gate = PaymentGate(self.store, PaymentSettings())
        self._baseline = _Baseline(self.gate.settings, self.store.policy, {}, self.api_keys)
        core.prices[SCHEDULE_TRIGGER] = MESSAGE_PRICE
        core.challenge_provider = self

    # -- settings --------------------------------------------------------------------------------

    @property
    def settings(self) -> PaymentSettings:
        """The gate's current settings (mode, variant, terms, strict headers)."""
        return self.gate.settings

    @property
    def mode(self) -> PaymentMode:
        """The current payment mode."""
        return self.settings.mode

    def update(
        self,
        *,
        mode: str | PaymentMode | None = None,
        variant: str | X402Variant | None = None,
        strict_headers: bool | None = None,
        policy: Mapping[str, Any] | AuthorizationPolicy | None = None,
        api_keys: Iterable[str] | None = None,
    ) -> None:
        """Change the given settings (others stay). ``ConfigError``/``ValueError`` name a bad value."""
        changes: dict[str, Any] = {}
        if mode is not None:
            changes["mode"] = PaymentMode.parse(mode)
        if variant is not None:
            changes["variant"] = X402Variant.parse(variant)
        if strict_headers is not None:
            changes["strict_headers"] = bool(strict_headers)
        new_policy = None
        if policy is not None:
            new_policy = (
                policy if isinstance(policy, AuthorizationPolicy) else AuthorizationPolicy.from_dict(policy, "policy")
            )
        keys = None
        if api_keys is not None:
            keys = frozenset(api_keys)
            if any(not isinstance(k, str) or not k for k in keys):
                raise ConfigError("api keys must be non-empty strings")
        # Everything parsed: apply.
        if changes:
            self.gate.settings = dataclasses.replace(self.gate.settings, **changes)
        if new_policy is not None:
            self.store.policy = new_policy
            self.policy_source = dict(policy) if isinstance(policy, Mapping) else {"custom": True}
        if keys is not None:
            self.api_keys = keys

    def configure(
        self,
        *,
        mode: str | PaymentMode | None = None,
        variant: str | X402Variant | None = None,
        strict_headers: bool | None = None,
        policy: Mapping[str, Any] | AuthorizationPolicy | None = None,
        api_keys: Iterable[str] | None = None,
    ) -> SapiomFeature:
        """:meth:`update`, then make the result the baseline ``reset()`` restores (start-up settings)."""
        self.update(mode=mode, variant=variant, strict_headers=strict_headers, policy=policy, api_keys=api_keys)
        self._baseline = _Baseline(self.gate.settings, self.store.policy, self.policy_source, self.api_keys)
        return self

    def reset(self) -> None:
        """Forget every transaction; restore the start-up settings; re-derive the signing secret from the seed."""
        b = self._baseline
        assert b is not None and self._core is not None, "attach the feature first"
        self.store.reset(b.policy)
        self.store.secret = payment_secret(self._core.seed)
        self.gate.settings = b.settings
        self.policy_source = b.policy_source
        self.api_keys = b.api_keys

    # -- keys ------------------------------------------------------------------------------------

    def key_allowed(self, key: str) -> bool:
        """Whether ``key`` (non-empty) names an account: any key without an allow-list."""
        return bool(key) and (not self.api_keys or key in self.api_keys)

    def to_json(self) -> dict[str, Any]:
        """The ``PaymentSettings`` schema of openapi.yaml."""
        s = self.gate.settings
        return {
            "mode": s.mode.value,
            "variant": s.variant.value,
            "strictHeaders": s.strict_headers,
            "policy": dict(self.policy_source),
            "apiKeys": sorted(self.api_keys),
        }

    # -- the 402 of a fault scenario ----------------------------------------------------------------

    def challenge(self, request: ChallengeRequest) -> tuple[dict[str, str], Any]:
        """(headers, JSON body) of a 402 the unmodified ``@sapiom/fetch`` pays (sapiom-contract.md §4).

        Without an ``amount`` it asks for the operation's price (at least 1 base unit, so that an injected
        402 on a free operation is still payable).
        """
        v1_network = next((k for k, v in _CAIP2.items() if v == request.network), request.network)
        terms = PaymentTerms(
            pay_to=request.pay_to,
            v1_network=v1_network,
            v2_network=_CAIP2.get(v1_network, request.network),
            asset=request.asset,
            max_timeout_seconds=request.max_timeout_seconds,
        )
        amount = request.amount if request.amount is not None else _price_units(request.operation)
        description = request.description or describe(request.operation)
        challenge = build_challenge(
            X402Variant.parse(request.variant),
            amount,
            request.resource_url,
            description,
            terms,
            transaction_id=request.transaction_id,
            error=request.error,
        )
        return dict(challenge.headers), challenge.body


def _price_units(operation: str) -> int:
    """What a 402 asks for, in USDC base units: ``"publishMessage"`` -> ``10``, ``"listQueues"`` -> ``1000``;
    a free or unknown operation -> ``1``."""
    try:
        return max(price_base_units(operation), 1)
    except KeyError:
        return 1
