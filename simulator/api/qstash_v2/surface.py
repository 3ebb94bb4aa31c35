"""The native QStash surface: ``/v2/...``, compiled from the ``/v2/`` section of ``openapi.yaml``.

Scenario faults answer first (``x-fault-statuses`` of each ``qstash.*`` operation), as on the Sapiom
surface; there is no paywall. Unknown ``/v2`` paths answer QStash's 404 body.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qstash_sim.api.qstash_v2.auth import authenticate
from qstash_sim.api.qstash_v2.routes import HANDLERS
from qstash_sim.contract.router import Contract
from qstash_sim.http.faults import FaultHook
from qstash_sim.http.surface import Surface

__all__ = ["MOUNT", "qstash_surface"]

MOUNT = "/v2/"


def qstash_surface(spec: Mapping[str, Any]) -> Surface:
    """The surface compiled from the ``/v2/`` section of ``spec``."""
    contract = Contract.from_spec(spec, check=False, prefix=MOUNT)
    surface = Surface(
        "qstash",
        mount=(MOUNT,),
        contract=contract,
        handlers=HANDLERS,
        authenticate=authenticate,
        upstash_headers=True,
        description="native Upstash QStash v2 (/v2), the API the official qstash SDKs call",
    )
    surface.hooks = [FaultHook(surface.fault_statuses())]
    return surface
