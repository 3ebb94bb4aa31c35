"""Fault scenario files: reading, validating and turning them into frozen values.

A scenario is YAML (or JSON, or an already-parsed dict) described by the JSON Schema shipped as
``simulator/scenarios/schema.json``. :func:`load_scenario` reads it, checks it against the schema and
against what the running contract documents (operationIds, statuses), and returns a :class:`Scenario`.
Every mistake becomes one :class:`ScenarioError` whose lines read ``file:line: key.path: what is wrong``::

    >>> load_scenario("rules:\\n  - match: {operaton: publish}\\n    action: {drop_connection: true}\\n")
    ScenarioError: <scenario>:2: rules[0].match.operaton: unknown key; did you mean 'operation'?

The runtime that uses these values (counters, the limiter, scripted destinations) is
:mod:`simulator.scenarios`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Collection, Iterable, Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from qstash_sim.base.durations import parse_duration
from qstash_sim.scenarios.model import (
    Action,
    ConnectionFault,
    DestinationScript,
    Match,
    Pass,
    PaymentDefaults,
    PaymentRequired,
    RateLimited,
    RateLimits,
    Respond,
    Rule,
    Scenario,
    ScriptedAnswer,
    StepKind,
    TimelineStep,
    Variant,
)
from qstash_sim.scenarios.source import (
    MAX_SCENARIO_BYTES,
    MAX_SCENARIO_DEPTH,
    MAX_SCENARIO_NODES,
    Path_,
    Reporter,
    ScenarioError,
    compose,
    did_you_mean,
)

__all__ = [
    "DEFAULT_ALLOWED_STATUSES",
    "MAX_INBOUND_LATENCY_MS",
    "MAX_SCENARIO_BYTES",
    "MAX_SCENARIO_DEPTH",
    "MAX_SCENARIO_NODES",
    "ScenarioError",
    "load_scenario",
    "scenario_schema",
]

# What a fault may answer when the caller passes no table (the HTTP layer passes what openapi.yaml documents).
DEFAULT_ALLOWED_STATUSES: dict[str, set[int]] = {"*": {400, 401, 402, 404, 405, 412, 413, 429, 500, 502, 503, 504}}
# Inbound latency is served on the real clock (a test waits for it), so it is bounded.
MAX_INBOUND_LATENCY_MS = 30_000
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


# ---------------------------------------------------------------------------------------------- durations


def _parse_duration(value: str | int) -> int:
    """A scenario duration in milliseconds: ``"6m5s"`` -> ``365000``, ``"1d10h30m"`` -> ``124200000``,
    ``"500ms"`` -> ``500``, ``30`` (a number: seconds, as in ``Upstash-Delay``) -> ``30000``.

    The schema has already checked the syntax; the arithmetic is :func:`simulator.durations.parse_duration`'s.
    """
    return parse_duration(str(value))


# ---------------------------------------------------------------------------------------------- schema


@cache
def scenario_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of a scenario file, as shipped in the package."""
    text = (resources.files("qstash_sim.scenarios") / "schema.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(scenario_schema())


_JSON_TYPES = {
    dict: "a mapping",
    list: "a list",
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    type(None): "null",
}


def _schema_problems(data: Any, report: Reporter) -> None:
    """Turn every schema violation into a readable line."""
    for err in _validator().iter_errors(data):
        _report_schema_error(err, report)


def _report_schema_error(err: ValidationError, report: Reporter) -> None:
    path: Path_ = tuple(err.absolute_path)
    schema: dict[str, Any] = err.schema if isinstance(err.schema, dict) else {}
    expected = schema.get("x-expected")
    instance: Any = err.instance
    rule: Any = err.validator_value
    if err.validator == "additionalProperties":
        known = list(schema.get("properties", {}))
        for key in instance:
            if key not in known:
                hint = did_you_mean(key, known) or f"; expected one of: {', '.join(known)}"
                report.add(path + (key,), f"unknown key{hint}")
    elif err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        report.add(path, f"missing required key {missing!r}")
    elif err.validator in ("enum", "const"):
        options: list[Any] = list(rule) if err.validator == "enum" else [rule]
        hint = did_you_mean(instance, [str(o) for o in options]) if isinstance(instance, str) else ""
        report.add(path, f"{instance!r} is not one of {', '.join(repr(o) for o in options)}{hint}")
    elif err.validator == "type":
        what = expected or " or ".join(_SCHEMA_TYPES.get(t, t) for t in _as_list(rule))
        got = _JSON_TYPES.get(type(err.instance), type(err.instance).__name__)
        hint = ""
        if isinstance(err.instance, str) and "properties" in schema:
            props = list(schema["properties"])
            close = [p for p in props if p.startswith(err.instance)] or difflib.get_close_matches(
                err.instance, props, n=1, cutoff=0.5
            )
            hint = f"; did you mean {{{close[0]}: ...}}?" if close else ""
        report.add(path, f"expected {what}, got {got}{hint}")
    elif err.validator == "minProperties" and not err.instance:
        report.add(path, f"must not be empty; expected one of: {', '.join(schema.get('properties', {}))}")
    elif err.validator == "pattern" and expected:
        hint = did_you_mean(instance, ["reset"]) if schema.get("pattern") == "^reset$" else ""
        report.add(path, f"{err.instance!r} is not {expected}{hint}")
    elif err.validator in ("minimum", "maximum") and expected:
        report.add(path, f"{err.instance!r} is out of range; expected {expected}")
    else:
        report.add(path, err.message)


_SCHEMA_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "null",
}


def _as_list(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# ---------------------------------------------------------------------------------------------- loading


def _read_source(source: str | Path | Mapping[str, Any], name: str | None) -> tuple[Any, dict[Path_, int], str]:
    """(data, key lines, label for messages) from YAML/JSON text, a file path, or a dict."""
    if isinstance(source, Mapping):
        return dict(source), {}, name or "<scenario>"
    if isinstance(source, Path) or (
        "\n" not in source and (source.endswith((".yaml", ".yml", ".json")) or Path(source).is_file())
    ):
        path = Path(source)
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise ScenarioError([f"{path}: cannot read scenario file: {exc.strerror or exc}"]) from None
        if len(raw) > MAX_SCENARIO_BYTES:
            raise ScenarioError([f"{path}: {len(raw)} bytes is over the limit of {MAX_SCENARIO_BYTES} for a scenario"])
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = raw[: exc.start].count(b"\n") + 1
            raise ScenarioError(
                [f"{path}:{line}: not UTF-8 text ({exc.reason} at byte {exc.start}); save the file as UTF-8"]
            ) from None
        data, lines = compose(text, str(path))
        return data, lines, str(path)
    label = name or "<scenario>"
    data, lines = compose(source, label)
    return data, lines, label


def load_scenario(
    source: str | Path | Mapping[str, Any],
    *,
    name: str | None = None,
    operations: Collection[str] | None = None,
    allowed_statuses: Mapping[str, Collection[int]] | None = None,
) -> Scenario:
    """Read and validate one scenario.

    ``source`` is YAML/JSON text, a path (a ``Path``, or a one-line string naming an existing file or ending in
    ``.yaml``/``.yml``/``.json``), or an already-parsed dict. ``operations``: the operationIds the contract
    knows (``None`` skips the check). ``allowed_statuses``: ``{operationId or "*": statuses}`` a fault may
    answer (default :data:`DEFAULT_ALLOWED_STATUSES`).

    ``"rules: [{match: {operation: publishMessage}, nth: 1, action: {payment_required: {variant: v1}}}]"`` ->
    ``Scenario(name="scenario", rules=(Rule(name="rules[0]", match=Match(operations=("publishMessage",)), nth=1,
    action=PaymentRequired(variant=Variant.V1)),))``. Raises :class:`ScenarioError` listing every mistake.
    """
    data, lines, label = _read_source(source, name)
    report = Reporter(label, lines)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        report.add((), f"expected a mapping at the top level, got {_JSON_TYPES.get(type(data), 'a value')}")
        report.raise_if_any()
    _schema_problems(data, report)
    # One pass reports everything: the parts the schema accepted are checked against the contract too.
    default_name = Path(label).stem if label.endswith((".yaml", ".yml", ".json")) else "scenario"
    builder = _Builder(report, operations, allowed_statuses or DEFAULT_ALLOWED_STATUSES)
    given = data.get("name")
    scenario = builder.scenario(
        data, name=name or (given if isinstance(given, str) else None) or default_name, source=label
    )
    report.raise_if_any()
    return scenario


class _Builder:
    """Turns schema-valid data into values and checks what the schema cannot (operations, statuses, combos)."""

    def __init__(
        self, report: Reporter, operations: Collection[str] | None, allowed: Mapping[str, Collection[int]]
    ) -> None:
        self.report = report
        self.operations = None if operations is None else set(operations)
        self.allowed = {k: set(v) for k, v in allowed.items()}

    # -- checks

    def check_operations(self, ops: Iterable[str], path: Path_, *, listed: bool) -> None:
        if self.operations is None:
            return
        for i, op in enumerate(ops):
            if op not in self.operations:
                where = path + (i,) if listed else path
                hint = did_you_mean(op, self.operations) or "; see the operationIds in openapi.yaml"
                self.report.add(where, f"unknown operation {op!r}{hint}")

    def check_methods(self, methods: tuple[str, ...] | None, path: Path_, *, listed: bool) -> None:
        """An HTTP method a request can have (``FETCH`` would never match: a mistake, said so)."""
        for i, method in enumerate(methods or ()):
            if method.upper() not in HTTP_METHODS:
                hint = did_you_mean(method.upper(), HTTP_METHODS) or f"; expected one of {', '.join(HTTP_METHODS)}"
                self.report.add(path + (i,) if listed else path, f"unknown HTTP method {method!r}{hint}")

    def allowed_for(self, ops: tuple[str, ...] | None) -> set[int]:
        """Statuses every one of ``ops`` documents; ``"*"`` adds to each. With no ops the rule may fire on any
        operation, so: what every listed operation documents (plus ``"*"``), or ``"*"`` alone if it is the
        only key. ``{"publishMessage": {402}, "getQueue": {402, 404}}`` and no ops -> ``{402}``."""
        star = self.allowed.get("*", set())
        named = [op for op in self.allowed if op != "*"]
        targets = list(ops) if ops is not None else named
        sets = [self.allowed.get(op, set()) | star for op in targets]
        return set.intersection(*sets) if sets else set(star)

    def check_status(self, status: int, ops: tuple[str, ...] | None, path: Path_) -> None:
        allowed = self.allowed_for(ops)
        if status not in allowed:
            scope = f"operation {', '.join(ops)}" if ops else "every operation (no match.operation given)"
            listed = ", ".join(str(s) for s in sorted(allowed)) or "none"
            self.report.add(path, f"status {status} is not documented for {scope} in openapi.yaml; allowed: {listed}")

    # -- pieces

    def items(self, data: dict[str, Any], key: str) -> list[tuple[int, Any]]:
        """The schema-valid items of the list ``key`` (each with its index); broken ones are skipped."""
        if self.report.broken((key,)) and (key,) in self.report.bad:
            return []
        value = data.get(key) or []
        if not isinstance(value, list):
            return []
        return [(i, item) for i, item in enumerate(value) if not self.report.broken((key, i))]

    def scenario(self, data: dict[str, Any], *, name: str, source: str) -> Scenario:
        payment = self.payment(data.get("payment") or {}) if not self.report.broken(("payment",)) else PaymentDefaults()
        rules = tuple(self.rule(r, i, name) for i, r in self.items(data, "rules"))
        seen: dict[str, int] = {}
        for i, rule in enumerate(rules):
            if rule.name in seen:
                other = seen[rule.name]
                self.report.add(("rules", i, "name"), f"duplicate rule name {rule.name!r} (also rules[{other}])")
            seen.setdefault(rule.name, i)
        dests = tuple(self.destination(d, i, name) for i, d in self.items(data, "destinations"))
        steps = tuple(self.step(s, i, name) for i, s in self.items(data, "timeline"))
        limits = None
        if "rate_limits" in data and not self.report.broken(("rate_limits",)):
            limits = self.rate_limits(data["rate_limits"])
        return Scenario(
            name=name,
            source=source,
            description=data.get("description"),
            seed=data.get("seed"),
            payment=payment,
            rules=rules,
            destinations=dests,
            timeline=tuple(sorted(steps, key=lambda s: (s.at_ms, s.index))),
            rate_limits=limits,
        )

    def payment(self, p: dict[str, Any]) -> PaymentDefaults:
        base = PaymentDefaults()
        return PaymentDefaults(
            variant=Variant(p.get("variant", base.variant.value)),
            network=p.get("network", base.network),
            pay_to=p.get("pay_to", base.pay_to),
            asset=p.get("asset", base.asset),
            max_timeout_seconds=p.get("max_timeout_seconds", base.max_timeout_seconds),
            description=p.get("description"),
        )

    def match(self, m: dict[str, Any], path: Path_) -> Match:
        ops = _tuple(m.get("operation"))
        if ops is not None:
            self.check_operations(ops, path + ("operation",), listed=isinstance(m["operation"], list))
        methods = _tuple(m.get("method"))
        self.check_methods(methods, path + ("method",), listed=isinstance(m.get("method"), list))
        return Match(
            operations=ops,
            methods=None if methods is None else tuple(x.upper() for x in methods),
            path=m.get("path"),
            queue=m.get("queue"),
            destination=m.get("destination"),
            account=m.get("account"),
            headers=tuple((k.lower(), v) for k, v in (m.get("headers") or {}).items()),
        )

    def rule(self, r: dict[str, Any], i: int, scenario: str) -> Rule:
        path: Path_ = ("rules", i)
        match = self.match(r.get("match") or {}, path + ("match",))
        a = r["action"]
        apath = path + ("action",)
        kinds = [
            k
            for k in (
                "payment_required",
                "rate_limited",
                "respond",
                "drop_connection",
                "reset_connection",
                "malformed_body",
            )
            if k in a
        ]
        if len(kinds) > 1:
            self.report.add(apath, f"one action per rule, got {', '.join(kinds)} (latency may be added to any one)")
        action: Action = Pass()
        if kinds:
            action = self.action(kinds[0], a[kinds[0]], match.operations, apath + (kinds[0],))
        latency = _parse_duration(a["latency"]) if "latency" in a else 0
        if latency > MAX_INBOUND_LATENCY_MS:
            self.report.add(
                apath + ("latency",),
                f"at most {MAX_INBOUND_LATENCY_MS // 1000}s (inbound latency is "
                "waited on the real clock); use a destination 'hang' for long virtual delays",
            )
        w_from = _parse_duration(r["from"]) if "from" in r else None
        w_until = _parse_duration(r["until"]) if "until" in r else None
        if w_from is not None and w_until is not None and w_until <= w_from:
            self.report.add(path + ("until",), "must be later than 'from'")
        probability = self.probability(r, path)
        return Rule(
            name=r.get("name", f"rules[{i}]"),
            match=match,
            action=action,
            latency_ms=latency,
            nth=r.get("nth"),
            after=r.get("after"),
            times=r.get("times"),
            probability=probability,
            window_from_ms=w_from,
            window_until_ms=w_until,
            line=self.report.line_of(path),
        )

    def action(self, kind: str, v: Any, ops: tuple[str, ...] | None, path: Path_) -> Action:
        if kind == "payment_required":
            v = v or {}
            self.check_status(402, ops, path)
            amount = v.get("amount")
            return PaymentRequired(
                variant=Variant(v["variant"]) if "variant" in v else None,
                amount=None if amount is None else int(amount),
                description=v.get("description"),
                error=v.get("error"),
            )
        if kind == "rate_limited":
            v = v or {}
            self.check_status(429, ops, path)
            return RateLimited(
                style=v.get("style", "burst"),
                retry_after_ms=_parse_duration(v["retry_after"]) if "retry_after" in v else None,
                limit=v.get("limit"),
                message=v.get("message"),
            )
        if kind == "respond":
            self.check_status(v["status"], ops, path + ("status",))
            return Respond(
                status=v["status"],
                message=v.get("message"),
                body=v.get("body"),
                headers=tuple((k, str(x)) for k, x in (v.get("headers") or {}).items()),
            )
        return ConnectionFault(mode={"drop_connection": "drop", "reset_connection": "reset"}.get(kind, "malformed"))

    def destination(self, d: dict[str, Any], i: int, scenario: str) -> DestinationScript:
        name = f"{scenario}/{d.get('name', f'destinations[{i}]')}"
        raw = d["respond"]
        items = raw if isinstance(raw, list) else [raw]
        answers = tuple(self.answer(x, name) for x in items)
        methods = _tuple(d.get("method"))
        self.check_methods(methods, ("destinations", i, "method"), listed=isinstance(d.get("method"), list))
        w_from = _parse_duration(d["from"]) if "from" in d else None
        w_until = _parse_duration(d["until"]) if "until" in d else None
        if w_from is not None and w_until is not None and w_until <= w_from:
            self.report.add(("destinations", i, "until"), "must be later than 'from'")
        return DestinationScript(
            name=name,
            match=d["match"],
            answers=answers,
            methods=None if methods is None else tuple(m.upper() for m in methods),
            window_from_ms=w_from,
            window_until_ms=w_until,
            probability=self.probability(d, ("destinations", i)),
            times=d.get("times"),
            line=self.report.line_of(("destinations", i)),
            flow_control_key=d.get("flow_control_key"),
        )

    def probability(self, entry: dict[str, Any], path: Path_) -> float | None:
        """An entry's ``probability`` as a fraction (``"10%"`` -> ``0.1``), ``None`` if absent; over 100% is an
        error (the schema only bounds numbers: ``1.5`` is caught there, ``"150%"`` here)."""
        if "probability" not in entry:
            return None
        probability = _probability(entry["probability"])
        if probability > 1:
            self.report.add(path + ("probability",), f"{entry['probability']!r} is over 100%")
        return probability

    def answer(self, x: Any, rule: str) -> ScriptedAnswer:
        if isinstance(x, int):
            return ScriptedAnswer(status=x, rule=rule)
        if isinstance(x, str):  # the schema allows only "reset"
            return ScriptedAnswer(status=None, reset=True, rule=rule)
        headers = {str(k): str(v) for k, v in (x.get("headers") or {}).items()}
        status = x.get("status")
        if x.get("non_retryable"):
            status = 489 if status is None else status
            headers.setdefault("Upstash-NonRetryable-Error", "true")
        body = x.get("body")
        raw = b"" if body is None else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        if body is not None and not isinstance(body, str):
            headers.setdefault("Content-Type", "application/json")
        if x.get("reset"):
            return ScriptedAnswer(status=None, reset=True, hang_ms=_dur(x.get("hang")), rule=rule)
        return ScriptedAnswer(
            status=200 if status is None else status,
            headers=headers,
            body=raw,
            hang_ms=_dur(x.get("hang")),
            rule=rule,
        )

    def step(self, s: dict[str, Any], i: int, scenario: str) -> TimelineStep:
        path: Path_ = ("timeline", i)
        kind = StepKind(s["do"])
        ops = tuple(s["operations"]) if "operations" in s else None
        extras = {"status", "message", "operations"} & set(s)
        if extras and kind is not StepKind.OUTAGE_START:
            self.report.add(path + (sorted(extras)[0],), f"only outage_start takes {', '.join(sorted(extras))}")
        if "queue" in s and kind not in (StepKind.PAUSE_QUEUE, StepKind.RESUME_QUEUE):
            self.report.add(path + ("queue",), "only pause_queue and resume_queue take a queue")
        if ops is not None:
            self.check_operations(ops, path + ("operations",), listed=True)
        status = s.get("status", 503)
        if kind is StepKind.OUTAGE_START:
            self.check_status(status, ops, path + ("status",) if "status" in s else path)
        return TimelineStep(
            at_ms=_parse_duration(s["at"]),
            kind=kind,
            scenario=scenario,
            index=i,
            queue=s.get("queue"),
            account=s.get("account"),
            status=status,
            message=s.get("message"),
            operations=ops,
        )

    def rate_limits(self, r: dict[str, Any]) -> RateLimits:
        ops = tuple(r["operations"]) if "operations" in r else None
        if ops is not None:
            self.check_operations(ops, ("rate_limits", "operations"), listed=True)
        self.check_status(429, ops, ("rate_limits",))
        return RateLimits(per_second=r.get("per_second"), per_day=r.get("per_day"), operations=ops)


def _tuple(v: str | list[str] | None) -> tuple[str, ...] | None:
    if v is None:
        return None
    return (v,) if isinstance(v, str) else tuple(v)


def _dur(v: str | int | None) -> int:
    return 0 if v is None else _parse_duration(v)


def _probability(v: float | int | str) -> float:
    """``0.1`` -> ``0.1``; ``"10%"`` -> ``0.1``."""
    if isinstance(v, str):
        return float(v[:-1]) / 100
    return float(v)
