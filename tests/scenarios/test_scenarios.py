"""Fault scenarios: the file format, its errors, and the matcher/limiter/destination runtime (no sockets)."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from qstash_sim.base.seed import FAULTS, Seed
from qstash_sim.errors import ConfigError
from qstash_sim.sapiom.feature import SapiomFeature
from qstash_sim.sapiom.prices import GATEWAY_OPERATIONS
from qstash_sim.scenarios.check import check_files, check_main
from qstash_sim.scenarios.loader import (
    DEFAULT_ALLOWED_STATUSES,
    ScenarioError,
    _parse_duration,
    load_scenario,
    scenario_schema,
)
from qstash_sim.scenarios.model import ConnectionFault, Pass, PaymentRequired, StepKind, Variant
from qstash_sim.scenarios.runtime import (
    ENGINE_STEP_KINDS,
    Fired,
    FiredKind,
    InboundContext,
    RateLimiter,
    ScenarioSet,
    resolve,
    shipped_scenarios,
)

OPS = set(GATEWAY_OPERATIONS) | {"createTransaction"}
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
MIDNIGHT_S = 1_700_006_400  # the next UTC midnight, in unix seconds
DEST = "http://127.0.0.1:9000/hook"


def ctx(operation: str = "publishMessage", **kw: Any) -> InboundContext:
    defaults: dict[str, Any] = {
        "method": "POST",
        "path": f"/v1/qstash/publish/{DEST}",
        "account": "acct",
        "destination": DEST,
        "url": f"http://127.0.0.1:8080/v1/qstash/publish/{DEST}",
    }
    defaults.update(kw)
    return InboundContext(operation=operation, **defaults)


def make(text: str, *, now_ms: int = T0, **kw: Any) -> ScenarioSet:
    scenarios = ScenarioSet(operations=OPS, **kw)
    scenarios.challenges = SapiomFeature()  # who builds a payment_required 402 (the payment feature)
    scenarios.load(text, now_ms=now_ms)
    return scenarios


def fire(
    scenarios: ScenarioSet, context: InboundContext | None = None, now_ms: int = T0, seed: int = 1
) -> Fired | None:
    return scenarios.match_inbound(context or ctx(), now_ms, random.Random(seed))


def errors_of(text: str, **kw: Any) -> list[str]:
    with pytest.raises(ScenarioError) as info:
        load_scenario(text, operations=kw.pop("operations", OPS), **kw)
    assert isinstance(info.value, ConfigError)
    return info.value.errors


def rule_yaml(match: str = "{}", action: str = "{drop_connection: true}", extra: str = "") -> str:
    return f"rules:\n  - match: {match}\n    action: {action}\n{extra}"


# ---------------------------------------------------------------------------------------------- durations, schema


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("40s", 40_000),
        ("5m", 300_000),
        ("6m5s", 365_000),
        ("1d10h30m", 124_200_000),
        ("500ms", 500),
        ("1.5s", 1500),
        (30, 30_000),
        ("0", 0),
    ],
)
def test_parse_duration(text: str | int, ms: int) -> None:
    assert _parse_duration(text) == ms


def test_schema_is_valid_2020_12_and_closed_everywhere() -> None:
    schema = scenario_schema()
    Draft202012Validator.check_schema(schema)
    assert schema["$schema"].endswith("2020-12/schema")

    def objects(node: Any) -> list[dict[str, Any]]:
        found = []
        if isinstance(node, dict):
            if "properties" in node:
                found.append(node)
            for key, value in node.items():
                if key != "if":  # conditions test a few keys of an object closed elsewhere
                    found += objects(value)
        elif isinstance(node, list):
            for value in node:
                found += objects(value)
        return found

    closed = objects(schema)
    assert len(closed) > 10
    assert all(o.get("additionalProperties") is False for o in closed)


# ---------------------------------------------------------------------------------------------- error messages


def test_misspelt_key_names_file_line_path_and_suggestion(tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "# comment\nrules:\n  - name: r\n    match:\n      operaton: publish\n    action: {drop_connection: true}\n"
    )
    with pytest.raises(ScenarioError) as info:
        load_scenario(f, operations=OPS)
    assert str(info.value) == f"{f}:5: rules[0].match.operaton: unknown key; did you mean 'operation'?"


def test_every_mistake_is_reported_in_line_order() -> None:
    text = "rules:\n  - acton: {}\n    nth: 0\ndestinations:\n  - match: '*'\n    respond: [503, rest]\n"
    errors = errors_of(text)
    assert errors == [
        "<scenario>:2: rules[0].acton: unknown key; did you mean 'action'?",
        "<scenario>:2: rules[0]: missing required key 'action'",
        "<scenario>:3: rules[0].nth: 0 is less than the minimum of 1",
        "<scenario>:6: destinations[0].respond[1]: 'rest' is not a status code (100-599), 'reset', or a mapping "
        "with status/headers/body/hang/reset/non_retryable; did you mean 'reset'?",
    ]


def test_unknown_operation_suggests_the_closest_operation_id() -> None:
    assert errors_of(rule_yaml("{operation: [publishMessage, enqueueMesage]}")) == [
        "<scenario>:2: rules[0].match.operation[1]: unknown operation 'enqueueMesage'; did you mean 'enqueueMessage'?"
    ]


def test_undocumented_status_is_rejected_at_load_time_with_its_line() -> None:
    text = rule_yaml("{operation: publishMessage}", "\n      respond: {status: 418}")
    (error,) = errors_of(text)
    assert error.startswith(
        "<scenario>:4: rules[0].action.respond.status: status 418 is not documented for "
        "operation publishMessage in openapi.yaml; allowed: 400, 401"
    )


def test_allowed_statuses_are_per_operation() -> None:
    allowed = {"publishMessage": {402, 429}, "listQueues": {429}, "*": {500}}
    load_scenario(
        rule_yaml("{operation: publishMessage}", "{payment_required: {}}"), operations=OPS, allowed_statuses=allowed
    )
    load_scenario(
        rule_yaml("{operation: listQueues}", "{respond: {status: 500}}"), operations=OPS, allowed_statuses=allowed
    )
    (error,) = errors_of(
        rule_yaml("{operation: [publishMessage, listQueues]}", "{payment_required: {}}"), allowed_statuses=allowed
    )
    assert "status 402 is not documented for operation publishMessage, listQueues" in error
    (error,) = errors_of("timeline:\n  - {at: 0s, do: outage_start, status: 504}\n", allowed_statuses=allowed)
    assert error.startswith("<scenario>:2: timeline[0].status: status 504 is not documented")
    # No match.operation: the rule can fire anywhere, so only what every operation documents.
    per_op = {"publishMessage": {402, 404, 429}, "listQueues": {402, 429}}
    load_scenario(rule_yaml(action="{payment_required: {}}"), allowed_statuses=per_op)
    (error,) = errors_of(rule_yaml(action="{respond: {status: 404}}"), allowed_statuses=per_op)
    assert error.endswith(
        "status 404 is not documented for every operation (no match.operation given) in openapi.yaml; allowed: 402, 429"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            rule_yaml(action="{payment_required: {variant: v3}}"),
            "<scenario>:3: rules[0].action.payment_required.variant: 'v3' is not one of 'v1', 'v2', 'v2-header', "
            "'wrapped'",
        ),
        (rule_yaml(action="{}"), "<scenario>:3: rules[0].action: must not be empty; expected one of: payment_required"),
        (
            rule_yaml(action="drop"),
            "<scenario>:3: rules[0].action: expected a mapping, got a string; did you mean {drop_connection: ...}?",
        ),
        (
            rule_yaml(action="{drop_connection: true, respond: {status: 500}}"),
            "<scenario>:3: rules[0].action: one action per rule, got respond, drop_connection",
        ),
        (rule_yaml(action="{latency: 5m}"), "<scenario>:3: rules[0].action.latency: at most 30s"),
        (rule_yaml(extra="    from: 5m\n    until: 1m\n"), "<scenario>:5: rules[0].until: must be later than 'from'"),
        (rule_yaml(extra="    probability: 150%\n"), "<scenario>:4: rules[0].probability: '150%' is over 100%"),
        (
            rule_yaml(extra="    probability: often\n"),
            "<scenario>:4: rules[0].probability: 'often' is not a probability",
        ),
        ("timeline:\n  - at: 5x\n    do: outage_start\n", "<scenario>:2: timeline[0].at: '5x' is not a duration"),
        ("timeline:\n  - at: 1m\n    do: pause_queue\n", "<scenario>:2: timeline[0]: missing required key 'queue'"),
        (
            "timeline:\n  - {at: 1m, do: pause_qeue, queue: q}\n",
            "<scenario>:2: timeline[0].do: 'pause_qeue' is not one",
        ),
        (
            "timeline:\n  - {at: 1m, do: outage_stop, status: 500}\n",
            "<scenario>:2: timeline[0].status: only outage_start takes status",
        ),
        (
            "rules:\n  - {name: a, action: {drop_connection: true}}\n  - {name: a, action: {drop_connection: true}}\n",
            "<scenario>:3: rules[1].name: duplicate rule name 'a' (also rules[0])",
        ),
        ("rules: []\nrules: []\n", "<scenario>:2: rules: duplicate key"),
        ("rules: [\n", "<scenario>:2: YAML syntax error"),
        ("- 1\n", "<scenario>:1: (top level): expected a mapping at the top level, got a list"),
        (
            "rate_limits: {per_secnd: 3}\n",
            "<scenario>:1: rate_limits.per_secnd: unknown key; did you mean 'per_second'?",
        ),
        ("destinations:\n  - respond: 200\n", "<scenario>:2: destinations[0]: missing required key 'match'"),
        (
            "destinations:\n  - match: '*'\n    respond: 503\n    probability: 150%\n",
            "<scenario>:4: destinations[0].probability: '150%' is over 100%",
        ),
        (
            "destinations:\n  - match: '*'\n    respond: 503\n    probability: 1.5\n",
            "<scenario>:4: destinations[0].probability: 1.5 is out of range; expected a probability",
        ),
        (
            "destinations:\n  - match: '*'\n    probability: sometimes\n    respond: 503\n",
            "<scenario>:3: destinations[0].probability: 'sometimes' is not a probability",
        ),
        (
            "destinations:\n  - match: '*'\n    respond: 503\n    times: 0\n",
            "<scenario>:4: destinations[0].times: 0 is less than the minimum of 1",
        ),
        (
            "destinations:\n  - {match: '*', respond: 503, probabilty: 10%}\n",
            "<scenario>:2: destinations[0].probabilty: unknown key; did you mean 'probability'?",
        ),
    ],
)
def test_error_messages(text: str, expected: str) -> None:
    errors = errors_of(text)
    assert errors[0].startswith(expected), errors


def test_dict_source_errors_have_a_key_path_but_no_line() -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario({"rules": [{"action": {"drop_conection": True}}]}, name="api")
    assert info.value.errors == ["api: rules[0].action.drop_conection: unknown key; did you mean 'drop_connection'?"]


def test_unreadable_file_is_a_scenario_error(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read scenario file"):
        load_scenario(tmp_path / "missing.yaml")


def test_json_text_and_dicts_load_like_yaml() -> None:
    doc = {"name": "j", "rules": [{"match": {"operation": "publishMessage"}, "action": {"drop_connection": True}}]}
    from_json = load_scenario(json.dumps(doc), operations=OPS)
    from_dict = load_scenario(doc, operations=OPS)
    assert from_json.rules == from_dict.rules
    assert from_json.name == "j" and from_json.rules[0].action == ConnectionFault("drop")


def test_defaults_and_names() -> None:
    s = load_scenario("rules:\n  - action: {latency: 2s}\n", name="mine")
    assert s.name == "mine"
    (rule,) = s.rules
    assert rule.name == "rules[0]" and rule.action == Pass() and rule.latency_ms == 2000 and rule.line == 2
    assert s.payment.variant is Variant.V1 and s.rate_limits is None


# ---------------------------------------------------------------------------------------------- match keys


@pytest.mark.parametrize(
    ("match", "hit", "miss"),
    [
        ("{operation: enqueueMessage}", ctx("enqueueMessage"), ctx("publishMessage")),
        ("{operation: [enqueueMessage, batchMessages]}", ctx("batchMessages"), ctx("publishMessage")),
        ("{method: get}", ctx(method="GET"), ctx(method="POST")),
        ("{method: [DELETE, GET]}", ctx(method="delete"), ctx(method="PATCH")),
        ("{path: '/v1/qstash/publish/*'}", ctx(), ctx(path="/v1/transactions")),
        ("{queue: 'orders-*'}", ctx(queue="orders-eu"), ctx(queue="billing")),
        ("{queue: 'orders-*'}", ctx(queue="orders-eu"), ctx(queue=None)),
        ("{destination: 'http://*.example.com/*'}", ctx(destination="http://api.example.com/x"), ctx()),
        ("{account: 'team-*'}", ctx(account="team-a"), ctx(account="other")),
        (
            "{headers: {x-sapiom-transaction-id: 'tx_*'}}",
            ctx(headers={"X-Sapiom-Transaction-Id": "tx_1"}),
            ctx(headers={"X-Sapiom-Transaction-Id": "other"}),
        ),
        ("{headers: {X-PAYMENT: null}}", ctx(headers={}), ctx(headers={"x-payment": "abc"})),
        ("{headers: {Upstash-Delay: '*'}}", ctx(headers={"upstash-delay": "10s"}), ctx(headers={})),
        ("{operation: publishMessage, account: a}", ctx(account="a"), ctx("enqueueMessage", account="a")),
    ],
)
def test_match_keys(match: str, hit: InboundContext, miss: InboundContext) -> None:
    scenarios = make(rule_yaml(match))
    assert fire(scenarios, miss) is None
    fired = fire(scenarios, hit)
    assert fired is not None and fired.kind is FiredKind.DROP and fired.rule == "scenario/rules[0]"


# ---------------------------------------------------------------------------------------------- actions


def test_payment_required_v1_is_priced_from_the_price_table() -> None:
    fired = fire(make(rule_yaml(action="{payment_required: {variant: v1}}")))
    assert fired is not None and (fired.kind, fired.status, dict(fired.headers)) == (FiredKind.RESPOND, 402, {})
    body = fired.body
    assert body["x402Version"] == 1 and body["error"]
    (req,) = body["accepts"]
    assert req["maxAmountRequired"] == "10"  # $0.00001 per message
    assert req["resource"] == f"http://127.0.0.1:8080/v1/qstash/publish/{DEST}"
    assert {
        "scheme",
        "network",
        "maxAmountRequired",
        "asset",
        "payTo",
        "resource",
        "description",
        "maxTimeoutSeconds",
    } <= set(req)
    management = fire(make(rule_yaml(action="{payment_required: {}}")), ctx("listQueues"))
    assert management is not None and management.body["accepts"][0]["maxAmountRequired"] == "1000"  # $0.001


def test_payment_required_v2_body_and_header_forms() -> None:
    v2 = fire(make(rule_yaml(action="{payment_required: {variant: v2, amount: 5000}}")))
    assert v2 is not None and v2.body["x402Version"] == 2
    assert v2.body["resource"]["url"].endswith(DEST)
    assert v2.body["accepts"][0]["amount"] == "5000" and v2.body["accepts"][0]["network"] == "eip155:84532"
    assert "extra" in v2.body["accepts"][0]

    header = fire(make(rule_yaml(action="{payment_required: {variant: v2-header}}")))
    assert header is not None and header.body == {}
    decoded = json.loads(base64.b64decode(header.headers["PAYMENT-REQUIRED"], validate=True))
    assert decoded["x402Version"] == 2 and decoded["resource"]["url"] and isinstance(decoded["accepts"], list)


def test_payment_required_wrapped_carries_the_transaction_and_scenario_defaults() -> None:
    text = (
        "payment: {variant: wrapped, network: base, pay_to: '0x2222222222222222222222222222222222222222'}\n"
        + rule_yaml(action="{payment_required: {error: insufficient_funds}}")
    )
    fired = fire(make(text), ctx(headers={"X-Sapiom-Transaction-Id": "tx_9"}))
    assert fired is not None
    body = fired.body
    assert body["requiresPayment"] is True and "paymentData" in body and body["transactionId"] == "tx_9"
    inner = body["x402"]
    assert inner["x402Version"] == 1 and inner["error"] == "insufficient_funds"
    assert inner["accepts"][0]["network"] == "base"
    assert inner["accepts"][0]["payTo"] == "0x2222222222222222222222222222222222222222"


def test_rate_limited_daily_headers_point_at_next_utc_midnight() -> None:
    fired = fire(make(rule_yaml(action="{rate_limited: {style: daily, limit: 500}}")))
    assert fired is not None and fired.status == 429 and set(fired.body) == {"error"}
    assert dict(fired.headers) == {
        "RateLimit-Limit": "500",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(MIDNIGHT_S),
        "Retry-After": str(MIDNIGHT_S - T0 // 1000),
    }


def test_rate_limited_burst_headers() -> None:
    fired = fire(make(rule_yaml(action="{rate_limited: {style: burst, retry_after: 3s, limit: 7}}")))
    assert fired is not None and fired.status == 429
    assert dict(fired.headers) == {
        "Burst-RateLimit-Limit": "7",
        "Burst-RateLimit-Remaining": "0",
        "Burst-RateLimit-Reset": str(T0 // 1000 + 3),
        "Retry-After": "3",
    }


def test_respond_with_default_body_message_and_custom_body() -> None:
    fired = fire(make(rule_yaml(action="{respond: {status: 503, headers: {Retry-After: 30}}}")))
    assert fired is not None and (fired.status, dict(fired.headers)) == (503, {"Retry-After": "30"})
    assert fired.body == {"error": "service unavailable (scenario rule scenario/rules[0])"}
    fired = fire(make(rule_yaml(action="{respond: {status: 401, message: bad token}}")))
    assert fired is not None and fired.body == {"error": "bad token"}
    fired = fire(make(rule_yaml(action="{respond: {status: 404, body: {error: gone, extra: 1}}}")))
    assert fired is not None and fired.body == {"error": "gone", "extra": 1}


@pytest.mark.parametrize(
    ("action", "kind"),
    [
        ("{drop_connection: true}", FiredKind.DROP),
        ("{reset_connection: true}", FiredKind.RESET),
        ("{malformed_body: true}", FiredKind.MALFORMED),
    ],
)
def test_connection_actions(action: str, kind: FiredKind) -> None:
    fired = fire(make(rule_yaml(action=action)))
    assert fired is not None and fired.kind is kind and fired.status is None and fired.body is None


def test_latency_alone_passes_through_later_and_combines_with_an_answer() -> None:
    fired = fire(make(rule_yaml(action="{latency: 1500ms}")))
    assert fired is not None
    assert (fired.kind, fired.latency_ms, fired.rule) == (FiredKind.PASS, 1500, "scenario/rules[0]")
    fired = fire(make(rule_yaml(action="{latency: 2s, respond: {status: 500}}")))
    assert fired is not None and (fired.kind, fired.status, fired.latency_ms) == (FiredKind.RESPOND, 500, 2000)


# ---------------------------------------------------------------------------------------------- counting


def statuses(scenarios: ScenarioSet, n: int, **kw: Any) -> list[int | None]:
    rng = random.Random(0)
    out = []
    for i in range(n):
        fired = scenarios.match_inbound(ctx(**kw), T0 + i, rng)
        out.append(None if fired is None else fired.status)
    return out


def test_nth_fires_only_on_that_matching_call() -> None:
    scenarios = make(rule_yaml("{operation: publishMessage}", "{respond: {status: 500}}", "    nth: 3\n"))
    scenarios.match_inbound(ctx("enqueueMessage"), T0, random.Random(0))  # not matching: not counted
    assert statuses(scenarios, 5) == [None, None, 500, None, None]


def test_after_fires_from_the_next_call_on_and_times_expires() -> None:
    scenarios = make(rule_yaml("{}", "{respond: {status: 500}}", "    after: 2\n    times: 2\n"))
    assert statuses(scenarios, 6) == [None, None, 500, 500, None, None]
    (described,) = scenarios.describe()
    assert described["rules"][0] | {"line": None} == {
        "name": "rules[0]",
        "line": None,
        "matched": 6,
        "fired": 2,
        "expired": True,
    }


def test_first_firing_rule_wins_but_every_rule_counts_its_matches() -> None:
    text = (
        "rules:\n"
        "  - {name: first, match: {operation: publishMessage}, nth: 1, action: {respond: {status: 500}}}\n"
        "  - {name: second, match: {operation: publishMessage}, nth: 2, action: {respond: {status: 503}}}\n"
        "  - {name: fallback, action: {respond: {status: 502}}, times: 1}\n"
    )
    scenarios = make(text)
    assert statuses(scenarios, 4) == [500, 503, 502, None]
    hits = {r["name"]: (r["matched"], r["fired"]) for r in scenarios.describe()[0]["rules"]}
    assert hits == {"first": (4, 1), "second": (4, 1), "fallback": (4, 1)}


def test_probability_draws_from_the_given_stream_reproducibly() -> None:
    text = rule_yaml("{operation: publishMessage}", "{drop_connection: true}", "    probability: 30%\n")

    def run(seed: int) -> list[bool]:
        scenarios, rng = make(text), Seed(seed).stream(FAULTS)
        return [scenarios.match_inbound(ctx(), T0, rng) is not None for _ in range(200)]

    first, again, other = run(7), run(7), run(8)
    assert first == again and first != other
    assert 30 < sum(first) < 90

    # Calls that do not match draw nothing, so they cannot shift later draws.
    scenarios, rng = make(text), random.Random(3)
    state = rng.getstate()
    scenarios.match_inbound(ctx("enqueueMessage"), T0, rng)
    assert rng.getstate() == state


def test_time_windows_are_relative_to_load_time() -> None:
    scenarios = make(rule_yaml("{}", "{respond: {status: 500}}", "    from: 5m\n    until: 1h\n"), now_ms=T0)
    rng = random.Random(0)
    at = [T0, T0 + 299_999, T0 + 300_000, T0 + 3_599_999, T0 + 3_600_000]
    assert [scenarios.match_inbound(ctx(), t, rng) is not None for t in at] == [False, False, True, True, False]
    assert scenarios.describe()[0]["rules"][0]["matched"] == 2  # outside the window: not counted


def test_reset_zeroes_counters_and_can_restart_the_clock() -> None:
    scenarios = make(rule_yaml("{}", "{respond: {status: 500}}", "    nth: 1\n    until: 1m\n"))
    assert statuses(scenarios, 2) == [500, None]
    scenarios.reset()
    assert statuses(scenarios, 1) == [500]
    scenarios.reset(now_ms=T0 + 3_600_000)
    assert scenarios.match_inbound(ctx(), T0 + 3_600_001, random.Random(0)) is not None


def test_same_seed_same_scenario_same_requests_same_answers() -> None:
    text = shipped_scenarios()["dropped-connections-10pct"].read_text() + rule_yaml(
        "{operation: enqueueMessage}", "{respond: {status: 503}}", "    probability: 0.5\n"
    ).replace("rules:\n", "")

    def run() -> list[tuple[str | None, FiredKind | None]]:
        scenarios, rng = make(text), Seed(42).stream(FAULTS)
        out: list[tuple[str | None, FiredKind | None]] = []
        for i in range(100):
            fired = scenarios.match_inbound(ctx("publishMessage" if i % 3 else "enqueueMessage"), T0 + i * 10, rng)
            out.append((fired.rule, fired.kind) if fired else (None, None))
        return out

    assert run() == run()


# ---------------------------------------------------------------------------------------------- limiter


def test_limiter_per_second_windows_roll_on_the_virtual_clock() -> None:
    limiter = RateLimiter(load_scenario("rate_limits: {per_second: 2}\n").rate_limits)  # type: ignore[arg-type]
    ok1, h1 = limiter.check("a", "publishMessage", T0)
    ok2, h2 = limiter.check("a", "publishMessage", T0 + 500)
    ok3, h3 = limiter.check("a", "publishMessage", T0 + 999)
    assert (ok1, ok2, ok3) == (True, True, False)
    assert h1["Burst-RateLimit-Remaining"] == "1" and h2["Burst-RateLimit-Remaining"] == "0"
    assert h3 == {
        "Burst-RateLimit-Limit": "2",
        "Burst-RateLimit-Remaining": "0",
        "Burst-RateLimit-Reset": str(T0 // 1000 + 1),
        "Retry-After": "1",
    }
    assert limiter.check("b", "publishMessage", T0 + 999)[0] is True  # per account
    assert limiter.check("a", "publishMessage", T0 + 1000)[0] is True  # next second


def test_limiter_per_day_counts_allowed_calls_and_resets_at_utc_midnight() -> None:
    limits = load_scenario("rate_limits: {per_day: 2, operations: [publishMessage]}\n", operations=OPS).rate_limits
    assert limits is not None
    limiter = RateLimiter(limits)
    assert limiter.check("a", "listQueues", T0) == (True, {})  # not covered
    ok, headers = limiter.check("a", "publishMessage", T0)
    assert ok and headers == {"RateLimit-Limit": "2", "RateLimit-Remaining": "1", "RateLimit-Reset": str(MIDNIGHT_S)}
    assert limiter.check("a", "publishMessage", T0)[0] is True
    ok, headers = limiter.check("a", "publishMessage", T0 + 10)
    assert not ok and headers["RateLimit-Remaining"] == "0" and headers["Retry-After"] == str(MIDNIGHT_S - T0 // 1000)
    ok, headers = limiter.check("a", "publishMessage", MIDNIGHT_S * 1000)
    assert ok and headers["RateLimit-Remaining"] == "1"


def test_limiter_through_match_inbound_only_counts_calls_no_rule_answered() -> None:
    text = "rate_limits: {per_second: 1}\n" + rule_yaml("{operation: enqueueMessage}", "{respond: {status: 500}}")
    scenarios = make(text)
    rng = random.Random(0)
    assert scenarios.match_inbound(ctx("enqueueMessage"), T0, rng).status == 500  # type: ignore[union-attr]
    passed = scenarios.match_inbound(ctx(), T0, rng)
    assert passed is not None and passed.kind is FiredKind.PASS and passed.rule is None
    assert passed.headers["Burst-RateLimit-Remaining"] == "0"
    denied = scenarios.match_inbound(ctx(), T0, rng)
    assert denied is not None and (denied.status, denied.rule) == (429, "scenario/rate_limits")
    assert denied.body == {"error": "too many requests: burst rate limit exceeded"}


# ---------------------------------------------------------------------------------------------- destinations


def answers(scenarios: ScenarioSet, url: str, n: int, method: str = "POST") -> list[Any]:
    rng = random.Random(0)
    return [scenarios.destination_response(url, method, {}, b"{}", T0, rng) for _ in range(n)]


def test_destination_sequence_last_answer_repeats() -> None:
    scenarios = make("destinations:\n  - {match: 'http://*.example.com/*', respond: [503, 503, 200]}\n")
    got = answers(scenarios, "http://api.example.com/hook", 5)
    assert [a.status for a in got] == [503, 503, 200, 200, 200]
    assert got[0].rule == "scenario/destinations[0]" and got[0].reset is False and got[0].hang_ms == 0
    assert answers(scenarios, "http://elsewhere.test/hook", 1) == [None]


def test_destination_fixed_status_headers_kept_verbatim() -> None:
    text = (
        "destinations:\n  - name: throttled\n    match: '*'\n    respond:\n      status: 429\n"
        "      headers: {Retry-After: 6m5s}\n      body: slow down\n"
    )
    (a,) = answers(make(text), DEST, 1)
    assert (a.status, dict(a.headers), a.body, a.rule) == (
        429,
        {"Retry-After": "6m5s"},
        b"slow down",
        "scenario/throttled",
    )


def test_destination_hang_reset_and_non_retryable() -> None:
    text = (
        "destinations:\n  - match: '*/slow'\n    respond: {hang: 40s}\n"
        "  - match: '*/reset'\n    respond: reset\n"
        "  - match: '*/gone'\n    respond: {non_retryable: true, body: {why: gone}}\n"
        "  - match: '*/mix'\n    respond: [reset, {hang: 1m, status: 503}, 200]\n"
    )
    scenarios = make(text)
    (slow,) = answers(scenarios, "http://h/slow", 1)
    assert (slow.hang_ms, slow.status, slow.reset) == (40_000, 200, False)
    (reset,) = answers(scenarios, "http://h/reset", 1)
    assert reset.reset and reset.status is None
    (gone,) = answers(scenarios, "http://h/gone", 1)
    assert gone.status == 489 and gone.headers["Upstash-NonRetryable-Error"] == "true"
    assert json.loads(gone.body) == {"why": "gone"} and gone.headers["Content-Type"] == "application/json"
    mix = answers(scenarios, "http://h/mix", 3)
    assert [(a.reset, a.status, a.hang_ms) for a in mix] == [(True, None, 0), (False, 503, 60_000), (False, 200, 0)]


def test_destination_method_and_window() -> None:
    text = "destinations:\n  - {match: '*', method: put, respond: 500, from: 1m}\n"
    scenarios = make(text)
    rng = random.Random(0)
    assert scenarios.destination_response(DEST, "PUT", {}, b"", T0, rng) is None  # before the window
    assert scenarios.destination_response(DEST, "POST", {}, b"", T0 + 60_000, rng) is None
    answer = scenarios.destination_response(DEST, "PUT", {}, b"", T0 + 60_000, rng)
    assert answer is not None and answer.status == 500


def test_returned_answers_do_not_share_header_dicts() -> None:
    scenarios = make("destinations:\n  - {match: '*', respond: {status: 503, headers: {A: b}}}\n")
    first, second = answers(scenarios, DEST, 2)
    first.headers["A"] = "changed"
    assert second.headers["A"] == "b"


def test_destination_probability_same_seed_same_hits() -> None:
    text = "destinations:\n  - {name: coin, match: '*', probability: 10%, respond: [503, 502]}\n"

    def run(seed: int) -> tuple[list[int | None], ScenarioSet]:
        scenarios, rng = make(text), Seed(seed).stream(FAULTS)
        got = [scenarios.destination_response(DEST, "POST", {}, b"", T0, rng) for _ in range(1000)]
        return [a.status if a else None for a in got], scenarios

    first, scenarios = run(7)
    again, _ = run(7)
    other, _ = run(8)
    assert first == again and first != other
    hits = [s for s in first if s is not None]
    assert 60 <= len(hits) <= 140
    assert hits[0] == 503 and set(hits[1:]) == {502}  # the sequence advances on hits only
    (listed,) = scenarios.describe()[0]["destinations"]
    assert (listed["matched"], listed["deliveries"], listed["probability"], listed["expired"]) == (
        1000,
        len(hits),
        0.1,
        False,
    )
    assert listed["line"] == 2 and listed["name"] == "scenario/coin"


def test_destination_probability_draws_once_per_matching_entry_and_a_miss_falls_through() -> None:
    text = (
        "destinations:\n"
        "  - {match: 'http://h/*', probability: 50%, respond: 500}\n"
        "  - {match: 'http://h/*', probability: 0.5, respond: 502}\n"
        "  - {match: 'http://h/always', respond: 200}\n"
    )
    scenarios, rng, mirror = make(text), random.Random(5), random.Random(5)
    statuses = []
    for _ in range(200):
        answer = scenarios.destination_response("http://h/always", "POST", {}, b"", T0, rng)
        expected = 500 if mirror.random() < 0.5 else 502 if mirror.random() < 0.5 else 200
        assert answer is not None and answer.status == expected
        statuses.append(expected)
    assert rng.getstate() == mirror.getstate()  # one draw per probabilistic entry reached, none for the last
    # Only probabilistic entries match here: a double miss is the normal destination (None).
    misses = [scenarios.destination_response("http://h/other", "POST", {}, b"", T0, rng) for _ in range(200)]
    assert 20 < misses.count(None) < 80
    # A URL no entry matches draws nothing.
    state = rng.getstate()
    assert scenarios.destination_response("http://elsewhere/x", "POST", {}, b"", T0, rng) is None
    assert rng.getstate() == state
    first, second, last = scenarios.describe()[0]["destinations"]
    assert first["matched"] == 400 and second["matched"] == 400 - first["deliveries"]  # a hit stops the search
    assert last["matched"] == last["deliveries"] == statuses.count(200)


def test_destination_times_expires_then_falls_through_and_routing_follows() -> None:
    text = (
        "destinations:\n  - {match: '*/hook', times: 2, respond: [503, 429]}\n"
        "  - {match: '*/hook', probability: 100%, times: 1, respond: 500}\n"
    )
    scenarios = make(text)
    assert scenarios.scripted(DEST, T0)  # certain until it has answered twice
    assert [a.status if a else None for a in answers(scenarios, DEST, 2)] == [503, 429]
    assert not scenarios.scripted(DEST, T0)  # the second entry is probabilistic: never forces virtual
    assert [a.status if a else None for a in answers(scenarios, DEST, 2)] == [500, None]
    listed = scenarios.describe()[0]["destinations"]
    assert [(d["matched"], d["deliveries"], d["expired"], d["times"]) for d in listed] == [
        (4, 2, True, 2),
        (2, 1, True, 1),
    ]


def test_scripted_is_certain_scripts_only() -> None:
    scenarios = make("destinations:\n  - {match: '*', probability: 10%, respond: 503}\n")
    assert not scenarios.scripted(DEST, T0)
    scenarios.load("name: b\ndestinations:\n  - {match: '*/hook', respond: 503}\n", now_ms=T0)
    assert scenarios.scripted(DEST, T0) and not scenarios.scripted("http://h/other", T0)


async def test_probabilistic_scripts_divert_loopback_attempts_with_one_draw_each() -> None:
    """The routing decision and the draw are one: a hit is answered virtually, a miss goes real, and the
    hits are exactly those of calling destination_response once per attempt with the same seed."""
    from qstash_sim.engine.transport import OutboundRequest, Outcome, RoutingTransport, VirtualTransport

    class Wire:
        def __init__(self) -> None:
            self.sent: list[str] = []

        async def send(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
            self.sent.append(req.url)
            return Outcome(status=200, body=b"real")

    text = shipped_scenarios()["lossy-network"].read_text()
    scenarios, rng = make(text), Seed(11).stream(FAULTS)
    responder = scenarios.responder(lambda: T0, lambda: rng)
    wire, vt = Wire(), VirtualTransport(responder)
    routing = RoutingTransport(wire, vt, force_virtual=lambda url: scenarios.scripted(url, T0), divert=responder)
    urls = [f"http://127.0.0.1:9/hook/{i}" for i in range(500)]
    assert all(routing.is_real(u) for u in urls)
    got = [await routing.send(OutboundRequest(u, "POST", {}, b"{}"), 30_000) for u in urls]

    mirror, mirror_rng = make(text), Seed(11).stream(FAULTS)
    expected = [mirror.destination_response(u, "POST", {}, b"{}", T0, mirror_rng) for u in urls]
    assert [o.status for o in got] == [503 if e is not None else 200 for e in expected]
    hits = [u for u, o in zip(urls, got, strict=True) if o.virtual]
    assert wire.sent == [u for u in urls if u not in hits]  # a miss goes real, a hit never does
    assert [r.url for r in vt.requests] == hits  # diverted attempts are recorded by the virtual destination
    assert all(o.rule == "lossy-network/fail-10pct" for o in got if o.virtual)
    assert 25 <= len(hits) <= 80
    assert rng.getstate() == mirror_rng.getstate()  # one draw per attempt, no more


async def test_responder_plugs_into_the_virtual_transport() -> None:
    from qstash_sim.engine.transport import OutboundRequest, VirtualTransport

    text = (
        "destinations:\n  - {match: '*/slow', respond: {hang: 40s}}\n"
        "  - {match: '*/flaky', respond: [reset, {status: 429, headers: {Retry-After: 6m5s}}, 200]}\n"
    )
    scenarios = make(text)
    transport = VirtualTransport(scenarios.responder(lambda: T0, lambda: random.Random(0)))

    def req(url: str) -> OutboundRequest:
        return OutboundRequest(url=url, method="POST", headers={}, body=b"{}")

    slow = await transport.send(req("http://h/slow"), 30_000)
    assert (slow.status, slow.error) == (None, "timeout after 30000ms")
    in_time = await transport.send(req("http://h/slow"), 60_000)
    assert (in_time.status, in_time.duration_ms) == (200, 40_000)
    flaky = [await transport.send(req("http://h/flaky"), 30_000) for _ in range(3)]
    assert flaky[0].error is not None and "connection reset" in flaky[0].error
    assert (flaky[1].status, flaky[1].header("Retry-After")) == (429, "6m5s")
    assert flaky[2].ok
    assert (await transport.send(req("http://h/other"), 30_000)).status == 200  # unscripted: default answer


# ---------------------------------------------------------------------------------------------- timeline


def test_timeline_parsing_and_absolute_times() -> None:
    text = (
        "timeline:\n"
        "  - {at: 10m, do: resume_queue, queue: orders}\n"
        "  - {at: 1m, do: pause_queue, queue: orders, account: acct}\n"
        "  - {at: 20m, do: rotate_signing_keys}\n"
        "  - {at: 30m, do: exhaust_quota, account: acct}\n"
    )
    scenarios = make(text, now_ms=T0)
    steps = scenarios.timeline_steps()
    assert [(at - T0, s.kind, s.queue, s.account) for at, s in steps] == [
        (60_000, StepKind.PAUSE_QUEUE, "orders", "acct"),
        (600_000, StepKind.RESUME_QUEUE, "orders", None),
        (1_200_000, StepKind.ROTATE_SIGNING_KEYS, None, None),
        (1_800_000, StepKind.EXHAUST_QUOTA, None, "acct"),
    ]
    assert steps[0][1].name == "scenario/timeline[1]"
    assert [s.kind in ENGINE_STEP_KINDS for _, s in steps] == [True, True, True, False]
    assert scenarios.timeline_steps("other") == []


def test_outage_window_answers_503_then_stops() -> None:
    text = (
        "timeline:\n  - {at: 1m, do: outage_start, status: 502, operations: [publishMessage]}\n"
        "  - {at: 2m, do: outage_stop}\n"
    )
    scenarios = make(text)
    rng = random.Random(0)
    assert scenarios.match_inbound(ctx(), T0 + 59_999, rng) is None
    fired = scenarios.match_inbound(ctx(), T0 + 60_000, rng)
    assert fired is not None and (fired.status, fired.rule) == (502, "scenario/timeline[0]")
    assert fired.body == {"error": "bad gateway (scenario outage)"}
    assert scenarios.outage(T0 + 90_000) is not None
    assert scenarios.match_inbound(ctx("enqueueMessage"), T0 + 90_000, rng) is None  # not in its operations
    assert scenarios.match_inbound(ctx(), T0 + 120_000, rng) is None
    assert scenarios.describe()[0]["outageHits"] == 1


def test_exhaust_quota_step_is_read_off_the_clock() -> None:
    scenarios = make("timeline:\n  - {at: 1h, do: exhaust_quota, account: acct}\n")
    rng = random.Random(0)
    assert scenarios.match_inbound(ctx(), T0, rng) is None  # no limit configured and not yet exhausted
    denied = scenarios.match_inbound(ctx(), T0 + 3_600_000, rng)
    assert denied is not None and denied.status == 429
    assert denied.headers["RateLimit-Limit"] == "1000" and denied.headers["RateLimit-Reset"] == str(MIDNIGHT_S)
    assert scenarios.match_inbound(ctx(account="other"), T0 + 3_600_000, rng) is None


# ---------------------------------------------------------------------------------------------- the set itself


def test_load_replace_remove_clear_describe() -> None:
    scenarios = ScenarioSet(operations=OPS)
    scenarios.load("name: a\nseed: 9\n" + rule_yaml(), now_ms=T0)
    scenarios.load("name: b\n" + rule_yaml(), now_ms=T0)
    assert [s.name for s in scenarios] == ["a", "b"] and scenarios.seed == 9
    fire(scenarios)
    scenarios.load("name: a\n" + rule_yaml("{operation: batchMessages}"), now_ms=T0)  # replaces a, keeps its place
    assert [s.name for s in scenarios] == ["a", "b"] and scenarios.seed is None
    described = scenarios.describe()
    assert json.loads(json.dumps(described)) == described
    assert described[0]["rules"][0]["matched"] == 0 and described[1]["rules"][0]["fired"] == 0
    assert scenarios.remove("b") and not scenarios.remove("b")
    scenarios.clear()
    assert len(scenarios) == 0 and fire(scenarios) is None


def test_default_allowed_statuses_match_the_brief() -> None:
    assert DEFAULT_ALLOWED_STATUSES == {"*": {400, 401, 402, 404, 405, 412, 413, 429, 500, 502, 503, 504}}


# ---------------------------------------------------------------------------------------------- library


def test_library_ships_every_file_through_the_package() -> None:
    shipped = shipped_scenarios()
    assert set(shipped) == {
        "payment-required-first-call",
        "payment-required-always",
        "burst-rate-limit",
        "daily-quota-exhausted",
        "flaky-destination",
        "destination-down",
        "slow-destination-timeout",
        "gateway-outage-5m",
        "dropped-connections-10pct",
        "readme-example",
        "lossy-network",
        "flow-control-burst",
    }
    for name, path in shipped.items():
        assert path.read_text().startswith("# "), f"{name} needs a top comment saying what it does"
        scenario = load_scenario(path, operations=OPS)
        assert scenario.name == name
    assert check_files(list(shipped.values()), operations=OPS) == []


def spec_fault_statuses() -> dict[str, set[int]]:
    """``{operationId: x-fault-statuses}`` read straight from the packaged openapi.yaml."""
    from qstash_sim.contract.load import load_spec

    spec = load_spec()
    return {
        op["operationId"]: set(op["x-fault-statuses"])
        for item in spec["paths"].values()
        for op in item.values()
        if isinstance(op, dict) and "x-fault-statuses" in op
    }


def test_library_is_valid_against_the_real_contract() -> None:
    allowed = spec_fault_statuses()
    assert "publishMessage" in allowed
    paths = list(shipped_scenarios().values())
    assert check_files(paths, operations=set(allowed), allowed_statuses=allowed) == []


def test_resolve_and_check_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert resolve("flaky-destination") == shipped_scenarios()["flaky-destination"]
    assert resolve("flaky-destination.yaml") == shipped_scenarios()["flaky-destination"]
    with pytest.raises(ConfigError, match="did you mean 'flaky-destination'"):
        resolve("flakey-destination")
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules:\n  - action: {respond: {status: 418}}\n")
    assert check_main(["flaky-destination"]) == 0
    assert check_main([str(bad)]) == 1
    assert f"{bad}:2: rules[0].action.respond.status: status 418" in capsys.readouterr().err


def lib(name: str, now_ms: int = T0) -> ScenarioSet:
    scenarios = ScenarioSet(operations=OPS)
    scenarios.challenges = SapiomFeature()
    scenarios.load(name, now_ms=now_ms)
    return scenarios


def test_readme_example_done_when() -> None:
    """First publish 402 (x402 v1), the next two 429 with correct headers, destination fails twice, journal names."""
    scenarios = lib("readme-example")
    assert len(shipped_scenarios()["readme-example"].read_text().splitlines()) <= 10
    rng = Seed(0).stream(FAULTS)
    fired = [scenarios.match_inbound(ctx(), T0 + i * 1000, rng) for i in range(4)]
    assert fired[0] is not None and fired[0].status == 402 and fired[0].body["x402Version"] == 1
    assert fired[0].body["accepts"][0]["resource"]
    assert fired[0].rule == "readme-example/pay-first"
    for i in (1, 2):
        f = fired[i]
        assert f is not None and f.status == 429 and f.rule == "readme-example/then-429"
        assert f.headers["RateLimit-Remaining"] == "0" and f.headers["RateLimit-Reset"] == str(MIDNIGHT_S)
        assert int(f.headers["Retry-After"]) == MIDNIGHT_S - (T0 + i * 1000) // 1000
    assert fired[3] is None
    assert [a.status for a in answers(scenarios, DEST, 4)] == [503, 503, 200, 200]


def test_lib_payment_required_first_call() -> None:
    scenarios = lib("payment-required-first-call")
    first = fire(scenarios)
    assert first is not None and first.status == 402 and first.body["x402Version"] == 1
    assert first.body["accepts"][0]["maxAmountRequired"] == "10"
    assert fire(scenarios, ctx(headers={"X-PAYMENT": "abc"})) is None


def test_lib_payment_required_always() -> None:
    scenarios = lib("payment-required-always")
    for headers in ({}, {"X-PAYMENT": "paid"}, {"PAYMENT-SIGNATURE": "paid"}):
        fired = fire(scenarios, ctx(headers=headers))
        assert fired is not None and fired.status == 402 and fired.body["requiresPayment"] is True
        assert fired.body["x402"]["error"] == "insufficient_funds"
    assert fire(scenarios, ctx("listQueues", method="GET", path="/v1/qstash/queues")) is not None
    assert fire(scenarios, ctx("createTransaction", path="/v1/transactions")) is None  # the Sapiom API still works


def test_lib_burst_rate_limit() -> None:
    scenarios = lib("burst-rate-limit")
    rng = random.Random(0)
    got = [scenarios.match_inbound(ctx(), T0 + i * 100, rng) for i in range(3)]
    assert [f.kind if f else None for f in got] == [FiredKind.PASS, FiredKind.PASS, FiredKind.RESPOND]
    assert got[2] is not None and got[2].status == 429 and got[2].headers["Burst-RateLimit-Limit"] == "2"
    assert got[2].headers["Retry-After"] == "1"
    assert scenarios.match_inbound(ctx(), T0 + 1000, rng).kind is FiredKind.PASS  # type: ignore[union-attr]


def test_lib_daily_quota_exhausted() -> None:
    scenarios = lib("daily-quota-exhausted")
    denied = fire(scenarios)
    assert denied is not None and denied.status == 429
    assert {k: denied.headers[k] for k in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset")} == {
        "RateLimit-Limit": "1000",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": str(MIDNIGHT_S),
    }
    assert fire(scenarios, ctx("listQueues")) is None
    after = fire(scenarios, now_ms=MIDNIGHT_S * 1000)
    assert after is not None and after.kind is FiredKind.PASS and after.headers["RateLimit-Remaining"] == "999"


def test_lib_flaky_destination() -> None:
    assert [a.status for a in answers(lib("flaky-destination"), DEST, 4)] == [503, 503, 200, 200]


def test_lib_destination_down() -> None:
    got = answers(lib("destination-down"), DEST, 6)
    assert {(a.status, a.body) for a in got} == {(503, b"down for maintenance")}


def test_lib_slow_destination_timeout() -> None:
    (a,) = answers(lib("slow-destination-timeout"), DEST, 1)
    assert a.hang_ms == 40_000 and a.hang_ms > 30_000  # longer than Upstash-Timeout: 30s


def test_lib_gateway_outage_5m() -> None:
    scenarios = lib("gateway-outage-5m")
    during = fire(scenarios, now_ms=T0 + 299_999)
    assert during is not None and during.status == 503 and during.rule == "gateway-outage-5m/timeline[0]"
    assert fire(scenarios, now_ms=T0 + 300_000) is None


def test_lib_dropped_connections_10pct() -> None:
    scenarios = lib("dropped-connections-10pct")
    rng = Seed(1234).stream(FAULTS)
    drops = [scenarios.match_inbound(ctx(), T0, rng) for _ in range(1000)]
    assert all(d is None or d.kind is FiredKind.DROP for d in drops)
    assert 60 <= sum(d is not None for d in drops) <= 140
    assert scenarios.match_inbound(ctx(path="/v1/transactions"), T0, rng) is None


def test_lib_lossy_network() -> None:
    scenarios = lib("lossy-network")
    rng = Seed(1234).stream(FAULTS)
    drops = [scenarios.match_inbound(ctx(op), T0, rng) for op in ("publishMessage", "enqueueMessage") * 1000]
    assert all(d is None or (d.kind is FiredKind.DROP and d.rule == "lossy-network/drop-2pct") for d in drops)
    assert 20 <= sum(d is not None for d in drops) <= 65
    state = rng.getstate()
    assert scenarios.match_inbound(ctx("listQueues", method="GET", path="/v1/qstash/queues"), T0, rng) is None
    assert rng.getstate() == state  # other operations draw nothing
    assert not scenarios.scripted(DEST, T0)  # loopback destinations still go real on a miss
    got = answers(scenarios, DEST, 1000)
    assert {(a.status, a.rule) for a in got if a is not None} == {(503, "lossy-network/fail-10pct")}
    assert 60 <= sum(a is not None for a in got) <= 140


def test_actions_are_a_tagged_union() -> None:
    scenario = load_scenario(rule_yaml(action="{payment_required: {variant: v2, amount: '42'}}"))
    assert scenario.rules[0].action == PaymentRequired(variant=Variant.V2, amount=42)


def test_a_destination_entry_can_match_the_flow_control_key_of_the_delivery() -> None:
    """``flow_control_key`` (a glob) narrows an entry to deliveries of messages under a matching key; such an
    entry is never 'certain' for a URL alone (the routing check cannot see the key), so a real destination
    is diverted per attempt instead."""
    scenarios = make("destinations:\n  - {match: '*', flow_control_key: 'tenant-*', respond: 503}\n")
    rng = random.Random(0)
    hit = scenarios.destination_response(DEST, "POST", None, b"", T0, rng, "tenant-7")
    assert hit is not None and hit.status == 503
    assert scenarios.destination_response(DEST, "POST", None, b"", T0, rng, "other") is None
    assert scenarios.destination_response(DEST, "POST", None, b"", T0, rng, None) is None  # no key: no match
    assert scenarios.scripted(DEST, T0) is False
    (entry,) = scenarios.describe()[0]["destinations"]
    assert (entry["matched"], entry["deliveries"]) == (1, 1)


def test_a_bad_flow_control_key_glob_is_named() -> None:
    with pytest.raises(ConfigError, match=r"flow_control_key"):
        make("destinations:\n  - {match: '*', flow_control_key: '', respond: 503}\n")
