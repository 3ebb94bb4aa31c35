"""Fault scenarios at run time: which rule fires for an inbound call, what a scripted destination answers,
the per-account rate limiter, and the timeline.

The file format and its validation live in :mod:`simulator.scenario_format`; this module holds the state that
changes while the simulator runs (hit counters, limiter windows), all of it driven by the ``now_ms`` and the
``random.Random`` the caller passes in, so the same seed, scenario and requests give the same answers.

How the layers call it::

    scenarios = ScenarioSet(operations=spec_operation_ids, allowed_statuses=spec_fault_statuses)
    scenarios.load("scenarios/readme-example.yaml", now_ms=clock.now_ms())        # or .add(load_scenario(...))
    fired = scenarios.match_inbound(ctx, clock.now_ms(), world.faults)          # HTTP layer, per API call
    answer = scenarios.destination_response(url, method, headers, body, now, world.faults)  # transport
    for at_ms, step in scenarios.timeline_steps(): engine.schedule(at_ms, step)  # engine, after each load
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qstash_sim.base.resources import scenario_library
from qstash_sim.core.feature import ChallengeProvider, ChallengeRequest, Fired, FiredKind, InboundContext
from qstash_sim.errors import ConfigError
from qstash_sim.scenarios.limiter import DEFAULT_DAILY_LIMIT, RateLimiter, rate_limited_answer
from qstash_sim.scenarios.loader import load_scenario
from qstash_sim.scenarios.model import (
    ConnectionFault,
    Match,
    Pass,
    PaymentRequired,
    RateLimited,
    RateLimits,
    Respond,
    Rule,
    Scenario,
    ScriptedAnswer,
    StepKind,
    TimelineStep,
)

if TYPE_CHECKING:
    from qstash_sim.engine.transport import OutboundRequest, Outcome

__all__ = [
    "DEFAULT_DAILY_LIMIT",
    "ENGINE_STEP_KINDS",
    "Fired",
    "FiredKind",
    "InboundContext",
    "RateLimiter",
    "ScenarioSet",
    "resolve",
    "shipped_scenarios",
]

# Steps the engine carries out; outages and quota exhaustion are read off the clock by ScenarioSet itself.
ENGINE_STEP_KINDS = frozenset({StepKind.PAUSE_QUEUE, StepKind.RESUME_QUEUE, StepKind.ROTATE_SIGNING_KEYS})
_REASONS = {
    400: "bad request",
    401: "unauthorized",
    402: "payment required",
    404: "not found",
    405: "method not allowed",
    412: "precondition failed",
    413: "payload too large",
    429: "too many requests",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


# ---------------------------------------------------------------------------------------------- inputs/outputs


# ---------------------------------------------------------------------------------------------- the set


@dataclass(slots=True)
class _RuleState:
    matched: int = 0  # calls that satisfied match and window
    fired: int = 0


@dataclass(slots=True)
class _ScriptState:
    matched: int = 0  # deliveries that met its match, method and window (before times and probability)
    fired: int = 0  # deliveries it answered


@dataclass(slots=True)
class _Loaded:
    scenario: Scenario
    t0_ms: int
    rules: list[_RuleState]
    destinations: list[_ScriptState]
    limiter: RateLimiter | None
    limiter_denials: int = 0
    outage_hits: int = 0

    @classmethod
    def of(cls, scenario: Scenario, t0_ms: int) -> _Loaded:
        exhaustions = [(t0_ms + s.at_ms, s.account) for s in scenario.timeline if s.kind is StepKind.EXHAUST_QUOTA]
        limiter = None
        if scenario.rate_limits is not None or exhaustions:
            limiter = RateLimiter(scenario.rate_limits or RateLimits(), exhaustions)
        scripts = [_ScriptState() for _ in scenario.destinations]
        return cls(scenario, t0_ms, [_RuleState() for _ in scenario.rules], scripts, limiter)

    def in_window(self, start: int | None, end: int | None, now_ms: int) -> bool:
        t = now_ms - self.t0_ms
        return (start is None or t >= start) and (end is None or t < end)

    def outage(self, now_ms: int) -> TimelineStep | None:
        active = None
        for step in self.scenario.timeline:
            if self.t0_ms + step.at_ms > now_ms:
                break
            if step.kind is StepKind.OUTAGE_START:
                active = step
            elif step.kind is StepKind.OUTAGE_STOP:
                active = None
        return active


def _matches(m: Match, ctx: InboundContext) -> bool:
    if m.operations is not None and ctx.operation not in m.operations:
        return False
    if m.methods is not None and ctx.method.upper() not in m.methods:
        return False
    if m.path is not None and not fnmatchcase(ctx.path, m.path):
        return False
    for glob, value in ((m.queue, ctx.queue), (m.destination, ctx.destination), (m.account, ctx.account)):
        if glob is not None and (value is None or not fnmatchcase(value, glob)):
            return False
    for name, glob in m.headers:
        value = ctx.header(name)
        if glob is None:
            if value is not None:
                return False
        elif value is None or not fnmatchcase(value, glob):
            return False
    return True


def _counts_allow(rule: Rule, state: _RuleState) -> bool:
    """nth/after/times against this rule's counters (``matched`` already includes the current call)."""
    if rule.nth is not None and state.matched != rule.nth:
        return False
    if rule.after is not None and state.matched <= rule.after:
        return False
    return rule.times is None or state.fired < rule.times


class ScenarioSet:
    """The scenarios a simulator runs, in load order, with their counters.

    Times in a scenario (``from``, ``until``, ``at``) count from the virtual instant it was loaded (``now_ms``
    passed to :meth:`add`/:meth:`load`). Loading a scenario whose name is already loaded replaces it in place.
    """

    def __init__(
        self,
        *,
        operations: Collection[str] | None = None,
        allowed_statuses: Mapping[str, Collection[int]] | None = None,
    ) -> None:
        self.operations = operations
        self.allowed_statuses = allowed_statuses
        # Who builds the 402 of a payment_required action (the payment feature); None: a plain 402 body.
        self.challenges: ChallengeProvider | None = None
        self._loaded: dict[str, _Loaded] = {}

    # -- managing

    def load(self, source: str | Path | Mapping[str, Any], *, now_ms: int = 0, name: str | None = None) -> Scenario:
        """Validate ``source`` (text, path, shipped name or dict) against this set's contract and add it."""
        if isinstance(source, str) and "\n" not in source and not source.lstrip().startswith("{"):
            source = resolve(source)
        scenario = load_scenario(source, name=name, operations=self.operations, allowed_statuses=self.allowed_statuses)
        self.add(scenario, now_ms=now_ms)
        return scenario

    def add(self, scenario: Scenario, *, now_ms: int = 0) -> None:
        """Add (or replace) a scenario; its relative times start at ``now_ms``."""
        self._loaded[scenario.name] = _Loaded.of(scenario, now_ms)

    def remove(self, name: str) -> bool:
        """Unload one scenario; ``False`` if no scenario has that name."""
        return self._loaded.pop(name, None) is not None

    def clear(self) -> None:
        """Unload every scenario."""
        self._loaded.clear()

    def reset(self, now_ms: int | None = None) -> None:
        """Zero every counter and limiter window; with ``now_ms``, restart every scenario's timeline there."""
        for name, loaded in list(self._loaded.items()):
            self._loaded[name] = _Loaded.of(loaded.scenario, loaded.t0_ms if now_ms is None else now_ms)

    def __iter__(self) -> Iterator[Scenario]:
        return iter([loaded.scenario for loaded in self._loaded.values()])

    def __len__(self) -> int:
        return len(self._loaded)

    def get(self, name: str) -> Scenario | None:
        """A loaded scenario by name."""
        loaded = self._loaded.get(name)
        return None if loaded is None else loaded.scenario

    @property
    def seed(self) -> int | None:
        """The first loaded scenario's ``seed``, if any declares one."""
        return next((s.seed for s in self if s.seed is not None), None)

    # -- inbound

    def match_inbound(self, ctx: InboundContext, now_ms: int, rng: random.Random) -> Fired | None:
        """What to do with one inbound API call, or ``None`` to answer it normally.

        Order: an active outage answers first (rules do not see those calls); then every rule of every
        scenario, in order, counts the call if its match and time window hold, and the first whose
        nth/after/times and probability allow fires (probability is drawn only for rules reached before a
        winner); then, unless a rule answered, the rate limiters count it (a denial is a 429).
        """
        for loaded in self._loaded.values():
            step = loaded.outage(now_ms)
            if step is not None and (step.operations is None or ctx.operation in step.operations):
                loaded.outage_hits += 1
                message = step.message or f"{_REASONS.get(step.status, 'error')} (scenario outage)"
                return Fired(step.name, FiredKind.RESPOND, step.status, {}, {"error": message})
        winner: tuple[_Loaded, Rule] | None = None
        for loaded in self._loaded.values():
            for rule, state in zip(loaded.scenario.rules, loaded.rules, strict=True):
                in_window = loaded.in_window(rule.window_from_ms, rule.window_until_ms, now_ms)
                if not (in_window and _matches(rule.match, ctx)):
                    continue
                state.matched += 1
                if winner is not None or not _counts_allow(rule, state):
                    continue
                if rule.probability is not None and rng.random() >= rule.probability:
                    continue
                state.fired += 1
                winner = (loaded, rule)
        fired = self._materialize(winner[0].scenario, winner[1], ctx, now_ms) if winner else None
        if fired is not None and fired.kind is not FiredKind.PASS:
            return fired
        extra: dict[str, str] = dict(fired.headers) if fired else {}
        for loaded in self._loaded.values():
            if loaded.limiter is None:
                continue
            allowed, headers = loaded.limiter.check(ctx.account, ctx.operation, now_ms)
            if not allowed:
                loaded.limiter_denials += 1
                style = "daily" if "RateLimit-Limit" in headers else "burst"
                message = (
                    "daily message limit exceeded"
                    if style == "daily"
                    else "too many requests: burst rate limit exceeded"
                )
                return Fired(
                    f"{loaded.scenario.name}/rate_limits",
                    FiredKind.RESPOND,
                    429,
                    headers,
                    {"error": message},
                    fired.latency_ms if fired else 0,
                )
            extra.update(headers)
        if fired is not None:
            return dataclasses.replace(fired, headers=extra)
        return Fired(None, FiredKind.PASS, headers=extra) if extra else None

    def _materialize(self, scenario: Scenario, rule: Rule, ctx: InboundContext, now_ms: int) -> Fired:
        name = f"{scenario.name}/{rule.name}"
        action = rule.action
        if isinstance(action, PaymentRequired):
            pay = scenario.payment
            request = ChallengeRequest(
                operation=ctx.operation,
                resource_url=ctx.url or ctx.path,
                variant=(action.variant or pay.variant).value,
                amount=action.amount,
                network=pay.network,
                pay_to=pay.pay_to,
                asset=pay.asset,
                max_timeout_seconds=pay.max_timeout_seconds,
                description=action.description or pay.description,
                error=action.error,
                transaction_id=ctx.header("X-Sapiom-Transaction-Id"),
            )
            if self.challenges is None:
                body = {"error": action.error or f"payment required (scenario rule {name})"}
                return Fired(name, FiredKind.RESPOND, 402, {}, body, rule.latency_ms)
            headers, body = self.challenges.challenge(request)
            return Fired(name, FiredKind.RESPOND, 402, headers, body, rule.latency_ms)
        if isinstance(action, RateLimited):
            headers, body = rate_limited_answer(action, now_ms)
            return Fired(name, FiredKind.RESPOND, 429, headers, body, rule.latency_ms)
        if isinstance(action, Respond):
            body = action.body
            if body is None:
                body = {"error": action.message or f"{_REASONS.get(action.status, 'error')} (scenario rule {name})"}
            return Fired(name, FiredKind.RESPOND, action.status, dict(action.headers), body, rule.latency_ms)
        if isinstance(action, ConnectionFault):
            return Fired(name, FiredKind(action.mode), latency_ms=rule.latency_ms)
        assert isinstance(action, Pass)
        return Fired(name, FiredKind.PASS, latency_ms=rule.latency_ms)

    # -- destinations

    def destination_response(
        self,
        url: str,
        method: str,
        headers: Mapping[str, str] | None,
        body: bytes,
        now_ms: int,
        rng: random.Random,
        flow_key: str | None = None,
    ) -> ScriptedAnswer | None:
        """The scripted answer to one delivery attempt, or ``None`` for the normal destination (a real
        socket for a loopback or allowed host, else the virtual 200).

        Scripts are tried in load order. One whose glob matches the full URL, whose method list (if any) holds
        ``method`` and whose window holds ``now_ms`` counts the delivery (``matched``); unless it has answered
        ``times`` deliveries already, it then answers, after one draw from ``rng`` (the faults stream) if it
        has a ``probability``: a miss falls through to the next script. The n-th delivery it answers gets
        ``answers[n]``, the last repeating. Call it once per attempt, in attempt order (the engine starts the
        attempts of one instant in order), so the same seed draws the same hits. ``headers``/``body`` are
        what would be sent: not used yet, in the signature so scripts can grow conditions (``None``: not
        read; an attempt's signature is made when its headers are first read). A script with a
        ``flow_control_key`` glob answers only attempts whose message is under a matching key (``flow_key``).
        """
        for loaded in self._loaded.values():
            for script, state in zip(loaded.scenario.destinations, loaded.destinations, strict=True):
                if not fnmatchcase(url, script.match):
                    continue
                if script.methods is not None and method.upper() not in script.methods:
                    continue
                if script.flow_control_key is not None and (
                    flow_key is None or not fnmatchcase(flow_key, script.flow_control_key)
                ):
                    continue
                if not loaded.in_window(script.window_from_ms, script.window_until_ms, now_ms):
                    continue
                state.matched += 1
                if script.times is not None and state.fired >= script.times:
                    continue
                if script.probability is not None and rng.random() >= script.probability:
                    continue
                answer = script.answers[min(state.fired, len(script.answers) - 1)]
                state.fired += 1
                return dataclasses.replace(answer, headers=dict(answer.headers))
        return None

    def responder(
        self, now_ms: Callable[[], int], rng: Callable[[], random.Random]
    ) -> Callable[[OutboundRequest], Outcome | None]:
        """:meth:`destination_response` as a :data:`simulator.delivery.Responder`:
        ``VirtualTransport(scenarios.responder(clock.now_ms, lambda: world.faults))``. ``rng`` is a getter
        because ``World.reset`` replaces the faults stream. A reset becomes ``Outcome.failure`` and a hang
        ``duration_ms`` (the transport turns one longer than the timeout into a timeout)."""
        from qstash_sim.engine.transport import Outcome

        def respond(req: OutboundRequest) -> Outcome | None:
            answer = self.destination_response(req.url, req.method, None, req.body, now_ms(), rng(), req.flow_key)
            if answer is None:
                return None
            if answer.reset or answer.status is None:
                outcome = Outcome.failure(f"connection reset by peer ({answer.rule})", duration_ms=answer.hang_ms)
            else:
                headers: dict[str, str | list[str]] = dict(answer.headers)
                outcome = Outcome.response(answer.status, answer.body, headers, duration_ms=answer.hang_ms)
            outcome.rule = answer.rule
            return outcome

        return respond

    # -- timeline

    def timeline_steps(self, name: str | None = None) -> list[tuple[int, TimelineStep]]:
        """``[(absolute virtual ms, step), ...]`` in time order, of every scenario or of ``name``.

        The engine schedules them all (to journal them as ``scenario`` entries) and carries out those in
        :data:`ENGINE_STEP_KINDS`; outages and quota exhaustion take effect here from the clock alone.
        """
        out = [
            (loaded.t0_ms + step.at_ms, step)
            for loaded in self._loaded.values()
            if name is None or loaded.scenario.name == name
            for step in loaded.scenario.timeline
        ]
        return sorted(out, key=lambda pair: pair[0])  # stable: load order breaks ties

    def scripted(self, url: str, now_ms: int) -> bool:
        """Whether a script is certain to answer a delivery to ``url`` now: one without ``probability``
        matches it, is in its window and has not reached ``times`` (any method; counts and draws nothing).

        The transport sends such URLs to the virtual destination even when they are loopback. A URL only
        probabilistic scripts match is routed as usual, and :meth:`destination_response` decides, per
        attempt, whether a script answers it instead (``RoutingTransport.divert``)."""
        return any(
            script.certain
            and (script.times is None or state.fired < script.times)
            and fnmatchcase(url, script.match)
            and loaded.in_window(script.window_from_ms, script.window_until_ms, now_ms)
            for loaded in self._loaded.values()
            for script, state in zip(loaded.scenario.destinations, loaded.destinations, strict=True)
        )

    def outage(self, now_ms: int) -> TimelineStep | None:
        """The outage_start step in force at ``now_ms``, if any."""
        return next((s for s in (lo.outage(now_ms) for lo in self._loaded.values()) if s is not None), None)

    # -- control API

    def describe(self) -> list[dict[str, Any]]:
        """What ``GET /_sim/scenarios`` shows: every scenario with its rules' hit counts (JSON-able)."""
        out = []
        for loaded in self._loaded.values():
            s = loaded.scenario
            out.append(
                {
                    "name": s.name,
                    "source": s.source,
                    "description": s.description,
                    "loadedAtMs": loaded.t0_ms,
                    "rules": [
                        {
                            "name": r.name,
                            "line": r.line,
                            "matched": st.matched,
                            "fired": st.fired,
                            "expired": r.times is not None and st.fired >= r.times,
                        }
                        for r, st in zip(s.rules, loaded.rules, strict=True)
                    ],
                    "destinations": [
                        {
                            "name": d.name,
                            "line": d.line,
                            "match": d.match,
                            "deliveries": st.fired,
                            "matched": st.matched,
                            "probability": d.probability,
                            "times": d.times,
                            "expired": d.times is not None and st.fired >= d.times,
                        }
                        for d, st in zip(s.destinations, loaded.destinations, strict=True)
                    ],
                    "timeline": [
                        {"atMs": loaded.t0_ms + t.at_ms, "do": t.kind.value, "name": t.name} for t in s.timeline
                    ],
                    "rateLimits": None
                    if s.rate_limits is None
                    else {
                        "perSecond": s.rate_limits.per_second,
                        "perDay": s.rate_limits.per_day,
                        "operations": None if s.rate_limits.operations is None else list(s.rate_limits.operations),
                        "denied": loaded.limiter_denials,
                    },
                    "outageHits": loaded.outage_hits,
                }
            )
        return out


# ---------------------------------------------------------------------------------------------- library


def shipped_scenarios() -> dict[str, Path]:
    """The scenarios shipped in the package: ``{"flaky-destination": Path(".../flaky-destination.yaml"), ...}``."""
    folder = scenario_library()
    return {
        entry.name.rsplit(".", 1)[0]: Path(str(entry))
        for entry in sorted(folder.iterdir(), key=lambda e: e.name)
        if entry.name.endswith((".yaml", ".yml"))
    }


def resolve(name_or_path: str | Path) -> Path:
    """A file path as is, else a shipped scenario by name: ``"flaky-destination"`` -> its packaged path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    shipped = shipped_scenarios()
    key = path.name.rsplit(".", 1)[0] if path.suffix in (".yaml", ".yml") else path.name
    if key in shipped and path.parent == Path("."):
        return shipped[key]
    import difflib

    close = difflib.get_close_matches(key, shipped, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else f"; shipped scenarios: {', '.join(shipped)}"
    raise ConfigError(f"{name_or_path}: no such scenario file or shipped scenario{hint}")
