"""``import qstash_sim`` is the public API: a curated ``__all__``, every name importable, cheap to import."""

from __future__ import annotations

import subprocess
import sys

import qstash_sim

PUBLIC = [
    "ApiError",
    "AsyncQstashSim",
    "AsyncSimClock",
    "AsyncWorkflowRunHandle",
    "BadRequest",
    "Caller",
    "Clock",
    "ConfigError",
    "Conflict",
    "ContractError",
    "Delivery",
    "DlqEntry",
    "EventState",
    "Feature",
    "LedgerEntry",
    "Limits",
    "Message",
    "MessageSettings",
    "MessageState",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "PaymentRequired",
    "PublishCommand",
    "PublishResult",
    "QstashSim",
    "QstashSimAssertionError",
    "Queue",
    "RealClock",
    "Scenario",
    "ScenarioError",
    "Schedule",
    "ScheduleCommand",
    "Seed",
    "ServerThread",
    "SigningKeys",
    "SimClock",
    "SimConfig",
    "SimServer",
    "Simulator",
    "SimulatorCore",
    "SimulatorError",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedAiohttpVersion",
    "VirtualClock",
    "WorkflowRunHandle",
    "WorkflowRunView",
    "WorkflowStep",
    "__version__",
]


def test_all_is_the_curated_sorted_list() -> None:
    assert qstash_sim.__all__ == sorted(PUBLIC)


def test_every_public_name_resolves_and_is_what_its_module_defines() -> None:
    for name in qstash_sim.__all__:
        value = getattr(qstash_sim, name)
        assert value is not None, name
        if name != "__version__":
            assert getattr(value, "__name__", name) == name
    assert issubclass(qstash_sim.ScenarioError, qstash_sim.ConfigError)
    assert issubclass(qstash_sim.QstashSimAssertionError, AssertionError)
    assert issubclass(qstash_sim.Simulator, qstash_sim.SimulatorCore)


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        qstash_sim.Nope  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "Nope" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("qstash_sim.Nope resolved")


def test_importing_it_loads_neither_aiohttp_nor_the_simulator() -> None:
    code = "import sys, qstash_sim; print(sorted(m for m in ('aiohttp', 'qstash_sim.simulator') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_the_version_is_the_distribution_version() -> None:
    from importlib.metadata import version

    assert qstash_sim.__version__ == version("qstash-sim")
