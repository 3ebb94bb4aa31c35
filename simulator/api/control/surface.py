"""The control plane ``/_sim/...``: reset, state, clock, journal, inbox, keys, scenarios, payment settings.

Not part of any upstream API; no accounts (``?account=`` selects one where it matters) and no faults.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from qstash_sim.api.control.routes import HANDLERS
from qstash_sim.contract.router import Contract
from qstash_sim.domain.commands import Caller
from qstash_sim.errors import Unauthorized
from qstash_sim.http.surface import InboundRequest, Surface, no_caller

__all__ = ["MOUNT", "control_surface"]

MOUNT = "/_sim/"


TOKEN_HEADER = "X-Qstash-Sim-Token"


def control_surface(spec: Mapping[str, Any], *, token: str | None = None) -> Surface:
    """The surface compiled from the ``/_sim/`` section of ``spec``.

    With a ``token`` every call must carry it (``Authorization: Bearer <token>`` or ``X-Qstash-Sim-Token``),
    else 401: what protects the control plane (and the signing keys and API keys it shows) on a server
    reachable from other machines.
    """

    def authenticate(request: InboundRequest, sim: Any) -> Caller:
        if token is not None and not _carries(request, token):
            raise Unauthorized(
                f"the control plane needs the control token: send Authorization: Bearer <token> or {TOKEN_HEADER}"
            )
        return no_caller(request)

    return Surface(
        "control",
        mount=(MOUNT,),
        contract=Contract.from_spec(_own(spec), check=False, prefix=MOUNT),
        handlers=HANDLERS,
        authenticate=authenticate,
        accounts=False,
        description="the simulator's control plane",
    )


def _own(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """``spec`` without the ``/_sim`` paths another surface serves (``x-surface``: the dashboard's)."""
    paths = {p: item for p, item in spec["paths"].items() if item.get("x-surface", "control") == "control"}
    return {**spec, "paths": paths}


def _carries(request: InboundRequest, token: str) -> bool:
    given = request.headers.get(TOKEN_HEADER) or ""
    auth = str(request.headers.get("Authorization", ""))
    if not given and auth[:7].lower() == "bearer ":
        given = auth[7:].strip()
    return hmac.compare_digest(given.encode(), token.encode())
