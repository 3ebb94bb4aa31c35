"""The API surfaces, one package each: ``sapiom_v1/`` (Sapiom's ``/v1``), ``qstash_v2/`` (native QStash
``/v2``), ``control/`` (``/_sim``), ``ui/`` (the dashboard, ``/_sim/ui``), ``index/`` (``GET /``).

Each package has a routing table (``routes.py``: operationId -> handler), thin handlers and a
``surface.py`` that builds its :class:`~qstash_sim.http.surface.Surface` from its section of the spec.
No surface package imports another; shapes several surfaces share live in ``wire.py`` and ``sapiom_wire.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from qstash_sim.http.surface import Surface

__all__ = ["API_SURFACES", "default_surfaces"]


API_SURFACES = ("sapiom", "qstash")  # what ``--surface`` may turn on (both by default)


def default_surfaces(
    spec: Mapping[str, Any] | None = None,
    *,
    control_token: str | None = None,
    surfaces_on: Collection[str] = API_SURFACES,
) -> list[Surface]:
    """The surfaces ``qstash-sim serve`` offers, compiled from ``spec`` (default: the shipped openapi.yaml).

    ``control_token``: what every ``/_sim`` call must carry (none: the control plane is open, as on a
    loopback-only server). ``surfaces_on``: which API surfaces are served (``sapiom``: ``/v1``, ``qstash``:
    native QStash ``/v2``); a surface that is off answers 404 on its mount, saying how to turn it on."""
    from qstash_sim.api.control.surface import control_surface
    from qstash_sim.api.disabled import disabled_surface
    from qstash_sim.api.index.surface import index_surface
    from qstash_sim.api.qstash_v2.surface import qstash_surface
    from qstash_sim.api.sapiom_v1.surface import sapiom_surface
    from qstash_sim.api.ui.surface import ui_surface
    from qstash_sim.contract.load import load_spec

    unknown = sorted(set(surfaces_on) - set(API_SURFACES))
    if unknown:
        raise ValueError(f"unknown surface(s) {', '.join(unknown)}: expected {' and/or '.join(API_SURFACES)}")
    spec = spec if spec is not None else load_spec()
    off = "this surface is off: start the server with --surface {0} (or without --surface: both are served)"
    api = [
        sapiom_surface(spec)
        if "sapiom" in surfaces_on
        else disabled_surface(spec, "sapiom", ("/v1/",), off.format("sapiom")),
        qstash_surface(spec)
        if "qstash" in surfaces_on
        else disabled_surface(spec, "qstash", ("/v2/",), off.format("qstash")),
    ]
    surfaces = [*api, control_surface(spec, token=control_token), ui_surface(spec, token=control_token)]
    surfaces.append(index_surface(spec, lambda: surfaces))
    return surfaces
