"""The control plane ``/_sim/...``: reset, state, clock, journal, inbox, keys, scenarios, payment settings.

Not part of any upstream API; no accounts (``?account=`` selects one where it matters) and no faults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qstash_sim.api.control.routes import HANDLERS
from qstash_sim.contract.router import Contract
from qstash_sim.http.surface import Surface

__all__ = ["MOUNT", "control_surface"]

MOUNT = "/_sim/"


def control_surface(spec: Mapping[str, Any]) -> Surface:
    """The surface compiled from the ``/_sim/`` section of ``spec``."""
    return Surface(
        "control",
        mount=(MOUNT,),
        contract=Contract.from_spec(spec, check=False, prefix=MOUNT),
        handlers=HANDLERS,
        accounts=False,
        description="the simulator's control plane",
    )
