"""The index surface: ``GET /`` answers the version, the surfaces served and links to the control plane.

Mounted at ``/``, the shortest mount: every path no other surface owns comes here and answers 404
``no such route`` from this surface's router, as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from qstash_sim.base.version import __version__
from qstash_sim.contract.router import Contract
from qstash_sim.http.surface import Ctx, Reply, Surface

__all__ = ["MOUNT", "index_surface"]

MOUNT = "/"
LINKS = {
    "health": "/_sim/health",
    "state": "/_sim/state",
    "journal": "/_sim/journal",
    "deliveries": "/_sim/deliveries",
    "ui": "/_sim/ui",
}


def index_surface(spec: Mapping[str, Any], served: Callable[[], Sequence[Surface]]) -> Surface:
    """The surface of ``GET /``; ``served()`` lists the other surfaces (read at request time)."""

    async def index(ctx: Ctx) -> Reply:
        surfaces = [
            {"name": s.name, "mount": list(s.mount), "description": s.description}
            for s in served()
            if s.name != "index"
        ]
        return Reply(
            {
                "name": "qstash-sim",
                "version": __version__,
                "seed": ctx.sim.seed,
                "clock": "virtual" if ctx.sim.clock.is_virtual else "real",
                "surfaces": surfaces,
                "links": dict(LINKS),
            }
        )

    # Only the "/" path: the spec section under "/" would be every path.
    section = {**spec, "paths": {MOUNT: spec["paths"][MOUNT]}}
    return Surface(
        "index",
        mount=(MOUNT,),
        contract=Contract.from_spec(section, check=False),
        handlers={"index": index},
        accounts=False,
        description="this index",
    )
