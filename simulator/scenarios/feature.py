"""Fault scenarios wired into one running :class:`~simulator.core.Simulator`.

:mod:`simulator.scenarios` decides *what* a scenario does (which rule fires, what a scripted destination
answers); this module connects it to the simulator:

* one :class:`~simulator.scenarios.ScenarioSet` per simulator, validated against the contract's
  ``x-fault-statuses`` (the HTTP layer asks it about each gateway call, see :mod:`simulator.http.faults`);
* scripted destinations answer through the virtual transport, and the URLs they script go there even when
  they are loopback (``RoutingTransport.force_virtual``), so they are recorded in the inbox like any virtual
  delivery; a script with a ``probability`` does not force its URLs virtual: each attempt that would go real
  asks it once (``RoutingTransport.divert``), a hit is answered virtually, a miss goes real;
* timeline steps are events on the engine's one heap (:meth:`Engine.at`): each is journalled as a
  ``scenario`` entry, and pause/resume/rotate are carried out the way the control API does them;
* reset: scenarios loaded at run time are unloaded; those loaded with ``keep=True`` (``serve --scenario``)
  are loaded again, counters at zero, their times counting from the reset instant.

Determinism: the same seed, scenario and requests give the same journal, byte for byte: probabilistic rules
and destinations draw from ``world.faults`` (a destination draws once per attempt, in attempt order);
timeline steps due at load time run during the load, in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qstash_sim.engine.signing import rotate
from qstash_sim.engine.transport import OutboundRequest, Outcome, RoutingTransport
from qstash_sim.scenarios.loader import load_scenario
from qstash_sim.scenarios.model import Scenario, StepKind, TimelineStep
from qstash_sim.scenarios.runtime import ScenarioSet, resolve

if TYPE_CHECKING:
    from qstash_sim.core.service import Simulator

__all__ = ["Chaos", "check_command", "fault_statuses", "read_scenarios"]


def fault_statuses(spec: Mapping[str, Any]) -> dict[str, set[int]]:
    """``{operationId: statuses}`` for every operation of an OpenAPI document that declares
    ``x-fault-statuses``: ``{"publishMessage": {401, 402, ...}, ...}``. Only these operations see faults."""
    out: dict[str, set[int]] = {}
    for item in (spec.get("paths") or {}).values():
        for op in item.values():
            if isinstance(op, dict) and "x-fault-statuses" in op and "operationId" in op:
                out[op["operationId"]] = {int(s) for s in op["x-fault-statuses"]}
    return out


@cache
def _packaged_fault_statuses() -> Mapping[str, frozenset[int]]:
    from qstash_sim.contract.router import load_spec

    return {k: frozenset(v) for k, v in fault_statuses(load_spec()).items()}


class Chaos:
    """The fault scenarios of one simulator (``sim.chaos``); see the module docstring.

    >>> sim.chaos.load("flaky-destination")            # a shipped name, a path, YAML text or a dict
    >>> sim.chaos.scenarios.describe()[0]["name"]
    'flaky-destination'
    """

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.scenarios = ScenarioSet()
        self._kept: dict[str, Scenario] = {}  # reloaded by reset (serve --scenario)
        self._tokens: dict[str, object] = {}  # name -> token of its current load; stale steps see another
        self._responder = self.scenarios.responder(sim.clock.now_ms, lambda: sim.world.faults)
        self._installed: Callable[[OutboundRequest], Outcome | None] | None = None
        sim.on_reset(self._after_reset)
        transport = sim.transport
        if isinstance(transport, RoutingTransport):
            if transport.force_virtual is None:
                transport.force_virtual = self._scripted
            if transport.divert is None:
                transport.divert = self._divert

    # ------------------------------------------------------------------ contract

    def use_contract(self, allowed_statuses: Mapping[str, Collection[int]]) -> None:
        """Validate later loads against these ``{operationId: x-fault-statuses}`` (the HTTP layer passes its
        contract's; by default the packaged ``openapi.yaml``'s are used)."""
        self.scenarios.operations = set(allowed_statuses)
        self.scenarios.allowed_statuses = {k: set(v) for k, v in allowed_statuses.items()}

    def _ensure_contract(self) -> None:
        if self.scenarios.allowed_statuses is None:
            self.use_contract(_packaged_fault_statuses())

    # ------------------------------------------------------------------ loading

    def parse(self, source: str | Path | Mapping[str, Any], *, name: str | None = None) -> Scenario:
        """Read and validate a scenario without loading it (raises :class:`ScenarioError` / ``ConfigError``).

        ``source``: YAML/JSON text (several lines), a path, a shipped scenario's name, or a dict.
        """
        self._ensure_contract()
        if isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{"):
            source = resolve(source)
        return load_scenario(
            source, name=name, operations=self.scenarios.operations, allowed_statuses=self.scenarios.allowed_statuses
        )

    def parse_text(self, text: str, *, name: str | None = None) -> Scenario:
        """Like :meth:`parse`, but ``text`` is always YAML/JSON text, never a path (the control API's body)."""
        return self.parse(text if "\n" in text else text + "\n", name=name)

    def load(self, source: str | Path | Mapping[str, Any], *, name: str | None = None, keep: bool = False) -> Scenario:
        """:meth:`parse` then :meth:`add`."""
        scenario = self.parse(source, name=name)
        self.add(scenario, keep=keep)
        return scenario

    def add(self, scenario: Scenario, *, keep: bool = False) -> None:
        """Load (or replace, same name) ``scenario`` now; ``keep``: load it again after every reset."""
        if keep:
            self._kept[scenario.name] = scenario
        self.scenarios.add(scenario, now_ms=self.sim.clock.now_ms())
        self._install_responder()
        self._arm(scenario.name)

    def remove(self, name: str) -> bool:
        """Unload one scenario (its pending timeline steps become no-ops); ``False`` if none has that name."""
        self._tokens.pop(name, None)
        return self.scenarios.remove(name)

    def clear(self) -> int:
        """Unload every scenario; returns how many there were."""
        count = len(self.scenarios)
        self._tokens.clear()
        self.scenarios.clear()
        return count

    def kept(self, name: str) -> bool:
        """Whether ``name`` is reloaded by reset."""
        return name in self._kept

    def describe(self) -> list[dict[str, Any]]:
        """:meth:`ScenarioSet.describe` plus ``keep`` per scenario (what ``GET /_sim/scenarios`` shows)."""
        return [{**d, "keep": self.kept(d["name"])} for d in self.scenarios.describe()]

    def _after_reset(self) -> None:
        self.clear()
        for scenario in self._kept.values():
            self.add(scenario)

    # ------------------------------------------------------------------ delivery

    def _install_responder(self) -> None:
        vt = self.sim.virtual_transport
        if self._installed is not None and vt.responder is self._installed:
            return
        ours, previous = self._responder, vt.responder

        def respond(req: OutboundRequest) -> Outcome | None:
            out = ours(req)
            return out if out is not None or previous is None else previous(req)

        self._installed = vt.responder = respond

    def _scripted(self, url: str) -> bool:
        return len(self.scenarios) > 0 and self.scenarios.scripted(url, self.sim.clock.now_ms())

    def _divert(self, req: OutboundRequest) -> Outcome | None:
        """For an attempt about to go real: a probabilistic script's answer (a hit), else ``None`` (go real).
        The same single :meth:`ScenarioSet.destination_response` call a virtual attempt gets."""
        return self._responder(req) if len(self.scenarios) > 0 else None

    # ------------------------------------------------------------------ timeline

    def _arm(self, name: str) -> None:
        token = object()
        self._tokens[name] = token

        def alive() -> bool:
            return self._tokens.get(name) is token

        now = self.sim.clock.now_ms()
        for at_ms, step in self.scenarios.timeline_steps(name):
            if at_ms <= now:  # due at load time: run now, so the very next call already sees it
                self._run_step(step)
            else:
                self.sim.engine.at(at_ms, partial(self._run_step, step), alive=alive)

    def _accounts(self, step: TimelineStep) -> list[str]:
        if step.account is not None:
            return [step.account]
        return [acc.name for acc in self.sim.world.accounts]

    def _run_step(self, step: TimelineStep) -> None:
        """Carry out one step (pause/resume/rotate) and journal it; outages and quotas only journal."""
        from qstash_sim.core.service import Caller

        sim, world = self.sim, self.sim.world
        detail: dict[str, Any] = {"do": step.kind.value}
        error: str | None = None
        if step.kind in (StepKind.PAUSE_QUEUE, StepKind.RESUME_QUEUE):
            assert step.queue is not None
            detail["queue"] = step.queue
            done: list[str] = []
            for name in self._accounts(step):
                acc = world.accounts.find(name)
                if acc is None or step.queue not in acc.queues:
                    if step.kind is StepKind.RESUME_QUEUE or step.account is None:
                        continue
                    # Pausing a named account's queue before its first enqueue: create it paused, as
                    # enqueue would create it, so later messages wait.
                    self._create_queue(name, step.queue)
                caller = Caller(account=name)
                if step.kind is StepKind.PAUSE_QUEUE:
                    sim.pause_queue(caller, step.queue)
                else:
                    sim.resume_queue(caller, step.queue)
                done.append(name)
            detail["accounts"] = done
            if not done:
                where = f"account {step.account}" if step.account else "any account"
                error = f"queue {step.queue} not found in {where}; nothing to {step.kind.value.split('_')[0]}"
        elif step.kind is StepKind.ROTATE_SIGNING_KEYS:
            names = self._accounts(step)
            for name in names:
                acc = sim.account(name)
                acc.signing_keys = rotate(acc.signing_keys, world.ids.new("sig", 28))
            detail["accounts"] = names
        elif step.kind is StepKind.OUTAGE_START:
            detail["status"] = step.status
            detail["operations"] = None if step.operations is None else list(step.operations)
        world.journal.add(
            world.now, "scenario", account=step.account, rule=step.name, outcome=step.kind.value, error=error,
            detail=detail,
        )

    def _create_queue(self, account: str, name: str) -> None:
        from qstash_sim.domain.queue import Queue

        acc = self.sim.account(account)
        now = self.sim.world.now
        acc.queues.setdefault(name, Queue(name=name, created_ms=now, updated_ms=now))


def read_scenarios(sources: Collection[str | Path]) -> tuple[list[Scenario], list[str]]:
    """Validate files or shipped names against the packaged contract, for ``serve --scenario``:
    ``(scenarios, [])`` or ``([], every "file:line: key.path: problem" line)``."""
    from qstash_sim.errors import ConfigError
    from qstash_sim.scenarios.loader import ScenarioError

    allowed = _packaged_fault_statuses()
    scenarios: list[Scenario] = []
    errors: list[str] = []
    for source in sources:
        try:
            scenarios.append(load_scenario(resolve(source), operations=set(allowed), allowed_statuses=allowed))
        except ScenarioError as exc:
            errors.extend(exc.errors)
        except ConfigError as exc:
            errors.append(str(exc))
    return ([], errors) if errors else (scenarios, [])


def check_command(paths: list[str]) -> int:
    """``qstash-sim check FILE...`` against the packaged contract: 0 when every file is valid, else 1."""
    from qstash_sim.scenarios.runtime import check_main

    allowed = _packaged_fault_statuses()
    return check_main(paths, operations=set(allowed), allowed_statuses=allowed)
