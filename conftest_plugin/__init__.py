"""qstash-sim's pytest plugin: the ``qstash_sim`` fixtures, markers, options and assertion helpers.

Installed with the package and registered through the ``pytest11`` entry point; ``-p no:qstash_sim``
turns it off. The objects are importable for type hints::

    from qstash_sim.pytest_plugin import QstashSim

    def test_order(qstash_sim: QstashSim) -> None: ...
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .assertions import QstashSimAssertionError
    from .callbacks import CallbackCall
    from .handle import AsyncQstashSim, AsyncSimClock, QstashSim, SimClock
    from .server import DEFAULT_API_KEY, EPOCH_MS, SimConfig, SimServer
    from .workflow import AsyncWorkflowRunHandle, WorkflowRunHandle, WorkflowRunView, WorkflowStep

__all__ = [
    "DEFAULT_API_KEY",
    "EPOCH_MS",
    "AsyncQstashSim",
    "AsyncSimClock",
    "AsyncWorkflowRunHandle",
    "CallbackCall",
    "QstashSim",
    "QstashSimAssertionError",
    "SimClock",
    "SimConfig",
    "SimServer",
    "WorkflowRunHandle",
    "WorkflowRunView",
    "WorkflowStep",
]


def __getattr__(name: str) -> Any:
    # Lazy, so that pytest loading the plugin does not import the simulator (and aiohttp) for suites
    # that never use the fixture.
    if name == "QstashSimAssertionError":
        return import_module(".assertions", __name__).QstashSimAssertionError
    if name == "CallbackCall":
        return import_module(".callbacks", __name__).CallbackCall
    if name in ("AsyncQstashSim", "AsyncSimClock", "QstashSim", "SimClock"):
        return getattr(import_module(".handle", __name__), name)
    if name in ("AsyncWorkflowRunHandle", "WorkflowRunHandle", "WorkflowRunView", "WorkflowStep"):
        return getattr(import_module(".workflow", __name__), name)
    if name in __all__:
        return getattr(import_module(".server", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
