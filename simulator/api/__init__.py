"""The API surfaces, one package each: ``sapiom_v1/`` (Sapiom's ``/v1``), ``control/`` (``/_sim``).

Each package has a routing table (``routes.py``: operationId -> handler), thin handlers and a
``surface.py`` that builds its :class:`~qstash_sim.http.surface.Surface` from its section of the spec.
No surface package imports another; shapes several surfaces share live in ``wire.py`` and ``sapiom_wire.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from qstash_sim.http.surface import Surface

__all__ = ["default_surfaces"]


def default_surfaces(spec: Mapping[str, Any] | None = None, *, control_token: str | None = None) -> list[Surface]:
    """The surfaces ``qstash-sim serve`` offers, compiled from ``spec`` (default: the shipped openapi.yaml).

    ``control_token``: what every ``/_sim`` call must carry (none: the control plane is open, as on a
    loopback-only server)."""
    from qstash_sim.api.control.surface import control_surface
    from qstash_sim.api.sapiom_v1.surface import sapiom_surface
    from qstash_sim.contract.load import load_spec

    spec = spec if spec is not None else load_spec()
    return [sapiom_surface(spec), control_surface(spec, token=control_token)]
