"""The server side of the fixture: a simulator on a daemon thread, and how a test's config is applied to it.

A :class:`SimServer` is a :class:`~simulator.server.ServerThread` (its own event loop on a daemon thread,
bound to ``127.0.0.1:0``) that is reused across tests: :meth:`SimServer.prepare` resets it to a fresh
world at :data:`EPOCH_MS` with the test's seed, scenarios and payment mode, in one hop to its loop.
It never imports pytest; ``SimServer.start()`` works from a script or a benchmark as well.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qstash_sim.base.clock import DEFAULT_START_MS, VirtualClock
from qstash_sim.core.service import Simulator
from qstash_sim.engine.transport import RoutingTransport
from qstash_sim.server import ServerThread

__all__ = [
    "DEFAULT_API_KEY",
    "EPOCH_MS",
    "NotWiredError",
    "ScenarioSource",
    "SimConfig",
    "SimServer",
]

EPOCH_MS = DEFAULT_START_MS  # every test starts at 2026-01-01T00:00:00Z
DEFAULT_API_KEY = "sk_test_qstash_sim"
ScenarioSource = str | Path | Mapping[str, Any]


class NotWiredError(NotImplementedError):
    """The simulator in this install lacks a feature the test asked for (scenarios, payment modes)."""


@dataclass(frozen=True, slots=True)
class SimConfig:
    """How one test wants its simulator: from ``@pytest.mark.qstash_sim``/``qstash_scenario`` and options."""

    seed: int = 0
    scenarios: tuple[ScenarioSource, ...] = ()
    payment: str | None = None  # None: the simulator's default (off)
    deliver_to: tuple[str, ...] = ()  # extra hosts delivered over real sockets (loopback always is)
    api_key: str = DEFAULT_API_KEY
    strict: bool = False  # unknown Upstash-* headers answer 400 instead of a journal warning

    def describe(self) -> str:
        """``seed=7 scenario=flaky-destination payment=x402``: what a failure report prints."""
        parts = [f"seed={self.seed}"]
        if self.scenarios:
            parts.append("scenario=" + ",".join(scenario_label(s) for s in self.scenarios))
        if self.payment:
            parts.append(f"payment={self.payment}")
        if self.deliver_to:
            parts.append("deliver_to=" + ",".join(self.deliver_to))
        if self.strict:
            parts.append("strict")
        return " ".join(parts)


def scenario_label(source: ScenarioSource) -> str:
    if isinstance(source, Mapping):
        return str(source.get("name", "<dict>"))
    text = str(source)
    return text if "\n" not in text else "<yaml text>"


class SimServer:
    """A simulator served from a daemon thread, reusable across tests (``prepare`` before each)."""

    def __init__(self, thread: ServerThread) -> None:
        self.thread = thread
        self.sim: Simulator = thread.sim
        self._default_payment = getattr(self.sim, "payment_mode", None)

    @classmethod
    def start(cls, seed: int = 0) -> SimServer:
        """Start a virtual-clock simulator on ``127.0.0.1:0``; returns once the socket is bound."""
        sim = Simulator(seed=seed, clock=VirtualClock(EPOCH_MS))
        return cls(ServerThread(sim, host="127.0.0.1", port=0).start())

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.thread.url

    def prepare(self, config: SimConfig) -> None:
        """Fresh world at :data:`EPOCH_MS` with ``config`` applied, in one hop to the server's loop."""
        sim = self.sim
        if config.scenarios and not callable(getattr(sim, "load_scenario", None)):
            raise NotWiredError(
                "qstash-sim: scenarios are not wired into the simulator yet (no Simulator.load_scenario); "
                f"cannot load {', '.join(scenario_label(s) for s in config.scenarios)}"
            )
        set_payment = _payment_setter(sim)
        if config.payment is not None and set_payment is None:
            raise NotWiredError(
                f"qstash-sim: payment modes are not wired into the simulator yet (no Simulator.payment_mode); "
                f"cannot use payment={config.payment!r}"
            )

        def apply() -> None:
            sim.reset(seed=config.seed, now_ms=EPOCH_MS)
            sim.extensions.pop("errors", None)
            sim.engine.errors.clear()
            sim.virtual_transport.requests.clear()
            sim.deliver_to = list(config.deliver_to)
            sim.strict = config.strict
            if isinstance(sim.transport, RoutingTransport):
                # Built through the constructor so the patterns are normalised exactly as at start-up.
                t = sim.transport
                t.allow = RoutingTransport(t.real, t.virtual, allow=config.deliver_to).allow
            if set_payment is not None and (config.payment is not None or self._default_payment is not None):
                set_payment(config.payment if config.payment is not None else self._default_payment)
            clear = getattr(sim, "clear_scenarios", None)
            if callable(clear):
                clear()
            for source in config.scenarios:
                sim.load_scenario(source)

        self.thread.call_soon(apply)

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        self.thread.stop()


def _payment_setter(sim: Simulator) -> Callable[[Any], None] | None:
    """How to set the payment mode: ``sim.payment_mode`` if the simulator has it, else the payment state's
    ``update(mode=)`` (``reset()`` restores its baseline, so nothing leaks into the next test)."""
    if hasattr(sim, "payment_mode"):
        return lambda mode: setattr(sim, "payment_mode", mode)
    try:
        from qstash_sim.sapiom.feature import payments_of
    except ImportError:
        return None
    return lambda mode: None if mode is None else payments_of(sim).update(mode=mode)
