"""The payment state of one :class:`~simulator.core.Simulator`: transactions, the gate, keys, settings.

One :class:`Payments` object per simulator, kept in ``sim.extensions["payments"]`` and created on first
use by :func:`payments_of` (default: mode ``off``, 402 variant ``v1``, any non-empty API key, authorize
everything). :func:`configure_payments` sets the start-up baseline (the CLI's ``--payment``,
``--payment-variant`` and ``--api-key``); ``POST /_sim/payment`` changes the settings at run time, and
``sim.reset()`` forgets every transaction and restores the baseline.

::

    sim = Simulator(seed=1)
    configure_payments(sim, mode="x402", variant="v2", api_keys=["sk_test"])
    payments_of(sim).store        # TransactionStore: what /v1/transactions... answers
    payments_of(sim).gate         # PaymentGate: the check in front of each billed /v1/qstash/... call
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from qstash_sim.errors import ConfigError
from qstash_sim.sapiom.paygate import PaymentGate, PaymentSettings
from qstash_sim.sapiom.policy import AuthorizationPolicy
from qstash_sim.sapiom.records import PaymentMode
from qstash_sim.sapiom.transactions import TransactionStore
from qstash_sim.sapiom.x402 import X402Variant

if TYPE_CHECKING:
    from qstash_sim.core.service import Simulator

__all__ = ["EXTENSION_KEY", "Payments", "configure_payments", "payments_of"]

EXTENSION_KEY = "payments"


@dataclasses.dataclass(frozen=True, slots=True)
class _Baseline:
    settings: PaymentSettings
    policy: AuthorizationPolicy
    policy_source: Mapping[str, Any]
    api_keys: frozenset[str]


class Payments:
    """Transactions, the payment gate, the API-key allow-list and the policy of one simulator."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.store = TransactionStore(sim.world.ids, ledger=sim.world.ledger)
        self.gate = PaymentGate(self.store, PaymentSettings())
        self.api_keys: frozenset[str] = frozenset()  # empty: any non-empty key is an account
        self.policy_source: Mapping[str, Any] = {}  # the policy as configured (for GET /_sim/payment)
        self._baseline = _Baseline(self.gate.settings, self.store.policy, {}, self.api_keys)
        sim.on_reset(self.reset)

    # -- settings --------------------------------------------------------------------------------

    @property
    def settings(self) -> PaymentSettings:
        """The gate's current settings (mode, variant, terms, strict headers)."""
        return self.gate.settings

    @property
    def mode(self) -> PaymentMode:
        """The current payment mode."""
        return self.gate.settings.mode

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
            new_policy = policy if isinstance(policy, AuthorizationPolicy) else AuthorizationPolicy.from_dict(policy, "policy")
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

    def set_baseline(self) -> None:
        """Make the current settings the ones ``reset()`` restores."""
        self._baseline = _Baseline(self.gate.settings, self.store.policy, self.policy_source, self.api_keys)

    def reset(self) -> None:
        """Forget every transaction; restore the start-up settings; re-derive the signing secret from the seed."""
        b = self._baseline
        self.store.reset(b.policy)
        self.store.secret = f"qstash-sim:{self.sim.world.ids.seed}:payments"
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


def payments_of(sim: Simulator) -> Payments:
    """The simulator's :class:`Payments`, created (mode off) on first use."""
    p = sim.extensions.get(EXTENSION_KEY)
    if p is None:
        p = sim.extensions[EXTENSION_KEY] = Payments(sim)
    return p


def configure_payments(
    sim: Simulator,
    *,
    mode: str | PaymentMode | None = None,
    variant: str | X402Variant | None = None,
    strict_headers: bool | None = None,
    policy: Mapping[str, Any] | AuthorizationPolicy | None = None,
    api_keys: Iterable[str] | None = None,
) -> Payments:
    """Set the start-up payment settings (also what ``sim.reset()`` restores) and return the state."""
    p = payments_of(sim)
    p.update(mode=mode, variant=variant, strict_headers=strict_headers, policy=policy, api_keys=api_keys)
    p.set_baseline()
    return p
