"""The Sapiom surface: the messaging gateway ``/v1/qstash/...`` and the Sapiom API ``/v1/transactions...``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qstash_sim.api.sapiom_v1.auth import authenticate
from qstash_sim.api.sapiom_v1.paywall import Paywall
from qstash_sim.api.sapiom_v1.routes import HANDLERS
from qstash_sim.contract.router import Contract
from qstash_sim.http.faults import FaultHook
from qstash_sim.http.surface import Surface

__all__ = ["MOUNT", "sapiom_surface"]

MOUNT = "/v1/"


def sapiom_surface(spec: Mapping[str, Any]) -> Surface:
    """The surface compiled from the ``/v1/`` section of ``spec``. Scenario faults answer first (a fault
    scenario's 402 comes before the payment gate's), then the paywall."""
    contract = Contract.from_spec(spec, check=False, prefix=MOUNT)
    surface = Surface(
        "sapiom",
        mount=(MOUNT,),
        contract=contract,
        handlers=HANDLERS,
        authenticate=authenticate,
        upstash_headers=True,
        description="Sapiom's messaging gateway (/v1/qstash) and the Sapiom API (/v1/transactions)",
    )
    surface.hooks = [FaultHook(surface.fault_statuses()), Paywall()]
    return surface
