"""qstash-sim: a local, deterministic stand-in for QStash (Sapiom's gateway and native Upstash QStash).

The public API. Everything listed in ``__all__`` is stable; modules below it are the implementation::

    from qstash_sim import Caller, Simulator

    sim = Simulator(seed=7)                 # a virtual clock that moves only when told
    sim.load_scenario("flaky-destination")  # fault scenarios
    sim.sapiom.configure(mode="x402")       # Sapiom payments

In tests, the pytest plugin's ``qstash_sim`` fixture gives a :class:`QstashSim` (``qstash_sim_async``
an :class:`AsyncQstashSim`) over a simulator served on a loopback socket.

Names load on first use, so ``import qstash_sim`` (which pytest does to load the plugin) stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from qstash_sim.base.version import __version__

if TYPE_CHECKING:
    from qstash_sim.base.clock import Clock, RealClock, VirtualClock
    from qstash_sim.base.seed import Seed
    from qstash_sim.core.feature import Feature
    from qstash_sim.core.service import SimulatorCore
    from qstash_sim.core.workflow_view import WorkflowRunView, WorkflowStep
    from qstash_sim.domain.account import SigningKeys
    from qstash_sim.domain.commands import Caller, MessageSettings, PublishCommand, PublishResult, ScheduleCommand
    from qstash_sim.domain.ledger import LedgerEntry
    from qstash_sim.domain.message import Delivery, DlqEntry, EventState, Message, MessageState
    from qstash_sim.domain.queue import Queue
    from qstash_sim.domain.schedule import Schedule
    from qstash_sim.domain.world import Limits
    from qstash_sim.errors import (
        ApiError,
        BadRequest,
        ConfigError,
        Conflict,
        ContractError,
        MethodNotAllowed,
        NotFound,
        PayloadTooLarge,
        PaymentRequired,
        SimulatorError,
        TooManyRequests,
        Unauthorized,
        UnsupportedAiohttpVersion,
    )
    from qstash_sim.pytest_plugin.assertions import QstashSimAssertionError
    from qstash_sim.pytest_plugin.handle import AsyncQstashSim, AsyncSimClock, QstashSim, SimClock
    from qstash_sim.pytest_plugin.server import SimConfig, SimServer
    from qstash_sim.pytest_plugin.workflow import AsyncWorkflowRunHandle, WorkflowRunHandle
    from qstash_sim.scenarios.model import Scenario
    from qstash_sim.scenarios.source import ScenarioError
    from qstash_sim.server import ServerThread
    from qstash_sim.simulator import Simulator

_WHERE = {
    # the facade and its parts
    "Simulator": "qstash_sim.simulator",
    "SimulatorCore": "qstash_sim.core.service",
    "Feature": "qstash_sim.core.feature",
    "ServerThread": "qstash_sim.server",
    "Seed": "qstash_sim.base.seed",
    "Limits": "qstash_sim.domain.world",
    # clocks
    "Clock": "qstash_sim.base.clock",
    "RealClock": "qstash_sim.base.clock",
    "VirtualClock": "qstash_sim.base.clock",
    # commands and domain objects
    "Caller": "qstash_sim.domain.commands",
    "MessageSettings": "qstash_sim.domain.commands",
    "PublishCommand": "qstash_sim.domain.commands",
    "PublishResult": "qstash_sim.domain.commands",
    "ScheduleCommand": "qstash_sim.domain.commands",
    "Message": "qstash_sim.domain.message",
    "MessageState": "qstash_sim.domain.message",
    "EventState": "qstash_sim.domain.message",
    "Delivery": "qstash_sim.domain.message",
    "DlqEntry": "qstash_sim.domain.message",
    "Queue": "qstash_sim.domain.queue",
    "Schedule": "qstash_sim.domain.schedule",
    "SigningKeys": "qstash_sim.domain.account",
    "LedgerEntry": "qstash_sim.domain.ledger",
    "Scenario": "qstash_sim.scenarios.model",
    # the error tree
    "SimulatorError": "qstash_sim.errors",
    "ApiError": "qstash_sim.errors",
    "BadRequest": "qstash_sim.errors",
    "Unauthorized": "qstash_sim.errors",
    "PaymentRequired": "qstash_sim.errors",
    "NotFound": "qstash_sim.errors",
    "MethodNotAllowed": "qstash_sim.errors",
    "Conflict": "qstash_sim.errors",
    "PayloadTooLarge": "qstash_sim.errors",
    "TooManyRequests": "qstash_sim.errors",
    "ConfigError": "qstash_sim.errors",
    "ContractError": "qstash_sim.errors",
    "UnsupportedAiohttpVersion": "qstash_sim.errors",
    "ScenarioError": "qstash_sim.scenarios.source",
    "QstashSimAssertionError": "qstash_sim.pytest_plugin.assertions",
    # the pytest fixture's handle types
    "QstashSim": "qstash_sim.pytest_plugin.handle",
    "AsyncQstashSim": "qstash_sim.pytest_plugin.handle",
    "SimClock": "qstash_sim.pytest_plugin.handle",
    "AsyncSimClock": "qstash_sim.pytest_plugin.handle",
    "SimConfig": "qstash_sim.pytest_plugin.server",
    "SimServer": "qstash_sim.pytest_plugin.server",
    # Upstash Workflow runs in a test
    "WorkflowRunHandle": "qstash_sim.pytest_plugin.workflow",
    "AsyncWorkflowRunHandle": "qstash_sim.pytest_plugin.workflow",
    "WorkflowRunView": "qstash_sim.core.workflow_view",
    "WorkflowStep": "qstash_sim.core.workflow_view",
}

__all__ = sorted([*_WHERE, "__version__"])


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'qstash_sim' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return __all__
