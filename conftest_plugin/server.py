"""The server side of the fixture: a simulator on a daemon thread, and how a test's config is applied to it.

A :class:`SimServer` is a :class:`~simulator.server.ServerThread` (its own event loop on a daemon thread,
bound to ``127.0.0.1:0``) that is reused across tests: :meth:`SimServer.prepare` resets it to a fresh
world at :data:`EPOCH_MS` with the test's seed, scenarios and payment mode, in one hop to its loop.
It never imports pytest; ``SimServer.start()`` works from a script or a benchmark as well.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qstash_sim.base.clock import DEFAULT_START_MS, VirtualClock
from qstash_sim.domain.account import SigningKeys
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator

__all__ = [
    "DEFAULT_API_KEY",
    "EPOCH_MS",
    "ScenarioSource",
    "SimConfig",
    "SimServer",
]

EPOCH_MS = DEFAULT_START_MS  # every test starts at 2026-01-01T00:00:00Z
DEFAULT_API_KEY = "sk_test_qstash_sim"
ScenarioSource = str | Path | Mapping[str, Any]


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


REAL_WAIT_CAP_MS = 30_000  # the fixture's cap on waiting for a real destination's answer (wall time)


class SimServer:
    """A simulator served from a daemon thread, reusable across tests (``prepare`` before each)."""

    def __init__(self, thread: ServerThread) -> None:
        self.thread = thread
        self.sim: Simulator = thread.sim

    @classmethod
    def start(cls, seed: int = 0) -> SimServer:
        """Start a virtual-clock simulator on ``127.0.0.1:0``; returns once the socket is bound.

        A real (loopback) destination that does not answer fails its attempt after at most
        :data:`REAL_WAIT_CAP_MS` of wall time (or its ``Upstash-Timeout``, if shorter), so a hanging handler
        shows up as ``timeout after ...ms`` in the test instead of holding it for QStash's 2 h default."""
        sim = Simulator(seed=seed, clock=VirtualClock(EPOCH_MS), real_timeout_cap_ms=REAL_WAIT_CAP_MS)
        return cls(ServerThread(sim, host="127.0.0.1", port=0).start())

    @property
    def origin(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return self.thread.url

    def prepare(self, config: SimConfig) -> None:
        """Fresh world at :data:`EPOCH_MS` with ``config`` applied, in one hop to the server's loop."""
        sim = self.sim

        def apply() -> None:
            sim.reset(seed=config.seed, now_ms=EPOCH_MS)  # payment settings back to the baseline too
            sim.configure(deliver_to=config.deliver_to, strict=config.strict)
            # A call without credentials is the test's own account: the keys and spend the handle shows.
            sim.anonymous_account = config.api_key
            if config.payment is not None:
                sim.sapiom.update(mode=config.payment)
            sim.clear_scenarios()
            for source in config.scenarios:
                sim.load_scenario(source)

        self.thread.call_soon(apply)

    def account_keys(self) -> list[tuple[str, SigningKeys]]:
        """Every account's signing keys, read on the server's loop (copies): what a receiver verifies against."""

        def read() -> list[tuple[str, SigningKeys]]:
            return [(a.name, SigningKeys(a.signing_keys.current, a.signing_keys.next)) for a in self.sim.accounts()]

        return self.thread.call_soon(read)

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        self.thread.stop()
