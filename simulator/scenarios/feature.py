"""Fault scenarios as a feature of a simulator (``sim.scenarios`` on the facade).

:mod:`qstash_sim.scenarios.runtime` decides *what* a scenario does (which rule fires, what a scripted
destination answers); this module connects it to a core through the :class:`~qstash_sim.core.feature.Feature`
interface:

* ``inbound``: each call of an operation that admits faults (``x-fault-statuses``) is matched against the
  rules; the HTTP layer carries out the :class:`~qstash_sim.core.feature.Fired` answer;
* ``respond`` / ``force_virtual`` / ``divert``: scripted destinations answer through the virtual transport,
  and the URLs they script go there even when they are loopback, so they are recorded in the inbox like any
  virtual delivery; a script with a ``probability`` does not force its URLs virtual: each attempt that
  would go real asks it once (``divert``), a hit is answered virtually, a miss goes real;
* timeline steps are events on the engine's one heap (``engine.at``): each is journalled as a ``scenario``
  entry, and pause/resume/rotate are carried out through the core's own operations;
* ``reset``: scenarios loaded at run time are unloaded; those loaded with ``keep=True`` (``serve
  --scenario``) are loaded again, counters at zero, their times counting from the reset instant.

A ``payment_required`` action asks the core's challenge provider (the Sapiom feature) for its 402;
this package never imports Sapiom code.

Determinism: the same seed, scenario and requests give the same journal, byte for byte: probabilistic rules
and destinations draw from the ``faults`` stream (a destination draws once per attempt, in attempt order);
timeline steps due at load time run during the load, in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qstash_sim.core.feature import ChallengeRequest, Feature, Fired, InboundContext
from qstash_sim.domain.commands import Caller
from qstash_sim.engine.transport import OutboundRequest, Outcome
from qstash_sim.scenarios.loader import load_scenario
from qstash_sim.scenarios.model import Scenario, StepKind, TimelineStep
from qstash_sim.scenarios.runtime import ScenarioSet, resolve

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = ["ScenariosFeature"]


class _Challenges:
    """The core's challenge provider, looked up when a 402 is built (features may attach in any order)."""

    def __init__(self, core: SimulatorCore) -> None:
        self._core = core

    def challenge(self, request: ChallengeRequest) -> tuple[dict[str, str], Any]:
        provider = self._core.challenge_provider
        if provider is None:
            return {}, {"error": request.error or "payment required (scenario)"}
        return provider.challenge(request)


class ScenariosFeature(Feature):
    """The fault scenarios of one simulator; see the module docstring.

    >>> sim.scenarios.load("flaky-destination")        # a shipped name, a path, YAML text or a dict
    >>> sim.scenarios.describe()[0]["name"]
    'flaky-destination'
    """

    name = "scenarios"

    def __init__(self, contract: Callable[[], Mapping[str, Collection[int]]] | None = None) -> None:
        """``contract()`` gives ``{operationId: x-fault-statuses}`` to validate loads against, asked on the
        first load unless :meth:`use_contract` was called (the HTTP layer passes the served surfaces')."""
        self.set = ScenarioSet()
        self._contract = contract
        self._kept: dict[str, Scenario] = {}  # reloaded by reset (serve --scenario)
        self._tokens: dict[str, object] = {}  # name -> token of its current load; stale steps see another
        self._core: SimulatorCore | None = None

    def attach(self, core: SimulatorCore) -> None:
        """Draw from ``core``'s faults stream; build 402s with its challenge provider."""
        self._core = core
        self.set.challenges = _Challenges(core)
        self._responder = self.set.responder(core.clock.now_ms, lambda: core.world.faults)

    @property
    def core(self) -> SimulatorCore:
        """The core this feature is attached to."""
        assert self._core is not None, "add the feature to a simulator first"
        return self._core

    # ------------------------------------------------------------------ contract

    def use_contract(self, allowed_statuses: Mapping[str, Collection[int]]) -> None:
        """Validate later loads against ``{operationId: x-fault-statuses}`` (the served surfaces' operations)."""
        self.set.operations = set(allowed_statuses)
        self.set.allowed_statuses = {k: set(v) for k, v in allowed_statuses.items()}

    # ------------------------------------------------------------------ loading

    def parse(self, source: str | Path | Mapping[str, Any], *, name: str | None = None) -> Scenario:
        """Read and validate a scenario without loading it (raises :class:`ScenarioError` / ``ConfigError``).

        ``source``: YAML/JSON text (several lines), a path, a shipped scenario's name, or a dict.
        """
        if self.set.allowed_statuses is None and self._contract is not None:
            self.use_contract(self._contract())
        if isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{"):
            source = resolve(source)
        return load_scenario(
            source, name=name, operations=self.set.operations, allowed_statuses=self.set.allowed_statuses
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
        self.set.add(scenario, now_ms=self.core.clock.now_ms())
        self._arm(scenario.name)

    def remove(self, name: str) -> bool:
        """Unload one scenario (its pending timeline steps become no-ops); ``False`` if none has that name."""
        self._tokens.pop(name, None)
        return self.set.remove(name)

    def clear(self) -> int:
        """Unload every scenario; returns how many there were."""
        count = len(self.set)
        self._tokens.clear()
        self.set.clear()
        return count

    def kept(self, name: str) -> bool:
        """Whether ``name`` is reloaded by reset."""
        return name in self._kept

    def describe(self) -> list[dict[str, Any]]:
        """:meth:`ScenarioSet.describe` plus ``keep`` per scenario (what ``GET /_sim/scenarios`` shows)."""
        return [{**d, "keep": self.kept(d["name"])} for d in self.set.describe()]

    def __len__(self) -> int:
        return len(self.set)

    def __iter__(self) -> Iterator[Scenario]:
        return iter(self.set)

    def reset(self) -> None:
        """Unload what was loaded at run time; load the kept scenarios again, from the reset instant."""
        self.clear()
        for scenario in self._kept.values():
            self.add(scenario)

    # ------------------------------------------------------------------ the Feature hooks

    def inbound(self, call: InboundContext) -> Fired | None:
        """The rule (or outage, or rate limit) that answers this call, if any."""
        if len(self.set) == 0:
            return None
        return self.set.match_inbound(call, self.core.world.now, self.core.world.faults)

    def respond(self, req: OutboundRequest) -> Outcome | None:
        """A scripted destination's answer to a virtual delivery."""
        return self._responder(req) if len(self.set) > 0 else None

    def divert(self, req: OutboundRequest) -> Outcome | None:
        """For an attempt about to go real: a probabilistic script's answer (a hit), else ``None`` (go real).
        The same single :meth:`ScenarioSet.destination_response` call a virtual attempt gets."""
        return self._responder(req) if len(self.set) > 0 else None

    def force_virtual(self, url: str) -> bool:
        """A script certain to answer ``url`` now sends it to the virtual destination, loopback or not."""
        return len(self.set) > 0 and self.set.scripted(url, self.core.clock.now_ms())

    # ------------------------------------------------------------------ timeline

    def _arm(self, name: str) -> None:
        token = object()
        self._tokens[name] = token

        def alive() -> bool:
            return self._tokens.get(name) is token

        now = self.core.clock.now_ms()
        for at_ms, step in self.set.timeline_steps(name):
            if at_ms <= now:  # due at load time: run now, so the very next call already sees it
                self._run_step(step)
            else:
                self.core.engine.at(at_ms, partial(self._run_step, step), alive=alive)

    def _accounts(self, step: TimelineStep) -> list[str]:
        if step.account is not None:
            return [step.account]
        return [acc.name for acc in self.core.accounts()]

    def _run_step(self, step: TimelineStep) -> None:
        """Carry out one step (pause/resume/rotate) and journal it; outages and quotas only journal."""
        core, world = self.core, self.core.world
        detail: dict[str, Any] = {"do": step.kind.value}
        error: str | None = None
        if step.kind in (StepKind.PAUSE_QUEUE, StepKind.RESUME_QUEUE):
            assert step.queue is not None
            detail["queue"] = step.queue
            done: list[str] = []
            for name in self._accounts(step):
                caller = Caller(account=name)
                acc = world.accounts.find(name)
                if acc is None or step.queue not in acc.queues:
                    if step.kind is StepKind.RESUME_QUEUE or step.account is None:
                        continue
                    # Pausing a named account's queue before its first enqueue: create it paused, as
                    # enqueue would create it, so later messages wait.
                    core.ensure_queue(caller, step.queue)
                if step.kind is StepKind.PAUSE_QUEUE:
                    core.pause_queue(caller, step.queue)
                else:
                    core.resume_queue(caller, step.queue)
                done.append(name)
            detail["accounts"] = done
            if not done:
                where = f"account {step.account}" if step.account else "any account"
                error = f"queue {step.queue} not found in {where}; nothing to {step.kind.value.split('_')[0]}"
        elif step.kind is StepKind.ROTATE_SIGNING_KEYS:
            names = self._accounts(step)
            for name in names:
                core.rotate_signing_keys(name)
            detail["accounts"] = names
        elif step.kind is StepKind.OUTAGE_START:
            detail["status"] = step.status
            detail["operations"] = None if step.operations is None else list(step.operations)
        world.journal.add(
            world.now,
            "scenario",
            account=step.account,
            rule=step.name,
            outcome=step.kind.value,
            error=error,
            detail=detail,
        )
