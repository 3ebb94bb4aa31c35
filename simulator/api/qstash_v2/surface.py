"""The native QStash surface: ``/v2/...``, compiled from the ``/v2/`` section of ``openapi.yaml``.

Scenario faults answer first (``x-fault-statuses`` of each ``qstash.*`` operation), as on the Sapiom
surface; there is no paywall. Unknown ``/v2`` paths answer QStash's 404 body; the flow-control writes,
which are not simulated yet, say so.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from qstash_sim.api.qstash_v2.auth import authenticate
from qstash_sim.api.qstash_v2.routes import HANDLERS
from qstash_sim.contract.operation import Operation
from qstash_sim.contract.router import Contract
from qstash_sim.errors import NotFound
from qstash_sim.http.faults import FaultHook
from qstash_sim.http.surface import Surface

__all__ = ["MOUNT", "qstash_surface"]

MOUNT = "/v2/"

_FLOW_WRITE = re.compile(r"^/v2/flowControl/[^/]+/(pause|resume|pin|unpin|resetRate|reset)$")


class _V2Contract(Contract):
    """The ``/v2/`` section, whose unknown-path 404 explains what is not simulated."""

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]]:
        try:
            return super().match(method, raw_path)
        except NotFound as exc:
            path = raw_path.split("?", 1)[0]
            if _FLOW_WRITE.match(path):
                raise NotFound(
                    f"{exc.message}: flow-control writes (pause, resume, pin, unpin, resetRate, reset) are not "
                    "simulated yet; GET /v2/flowControl and GET /v2/flowControl/{key} show the keys"
                ) from None
            raise


def qstash_surface(spec: Mapping[str, Any]) -> Surface:
    """The surface compiled from the ``/v2/`` section of ``spec``."""
    contract = _V2Contract.from_spec(spec, check=False, prefix=MOUNT)
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
