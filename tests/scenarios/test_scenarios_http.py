"""Fault scenarios end to end over real loopback sockets: the inbound hook, the control API, scripted
destinations, the timeline on the engine's heap, the CLI, and determinism.

Every answer goes through the contract-checking client (an injected fault that breaks openapi.yaml fails the
test), except MALFORMED, whose body is invalid JSON on purpose. The clock is virtual; nothing sleeps.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import serve_proc
from conftest import Answer, Client, Receiver, Served
from qstash_sim.base.clock import DEFAULT_START_MS
from qstash_sim.http.aiohttp_app import APP_DISPATCHER, APP_FAULTS
from qstash_sim.http.faults import FaultHook
from qstash_sim.scenarios.runtime import shipped_scenarios
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator

P = "/v1/qstash"
DAY_MS = 86_400_000
VIRTUAL_DEST = "https://example.com/hook"


# ---------------------------------------------------------------------------------------------- helpers


def load(client: Client, text: str, name: str | None = None) -> Answer:
    path = "/_sim/scenarios" + (f"?name={name}" if name else "")
    return client.post(path, body=text, headers={"Content-Type": "application/yaml"})


def load_shipped(client: Client, name: str) -> Answer:
    r = load(client, shipped_scenarios()[name].read_text(), name=name)
    assert r.status == 200, r.body
    return r


def one_shot(
    port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> Any:
    """One request on a fresh connection, no retry: an ``Answer`` or the connection error's class."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return Answer(resp.status, resp.headers, resp.read())
    except (http.client.RemoteDisconnected, ConnectionResetError) as exc:
        return type(exc)
    finally:
        conn.close()


def journal(client: Client, kind: str = "request") -> list[dict[str, Any]]:
    return client.get(f"/_sim/journal?kind={kind}").json["entries"]


def message(client: Client, mid: str) -> dict[str, Any]:
    return client.get(f"{P}/messages/{mid}").json


@pytest.fixture
def app_served() -> Iterator[tuple[Served, web.Application]]:
    """Like ``served``, with the aiohttp app at hand (to reach the fault hook)."""
    apps: list[web.Application] = []
    server = ServerThread(Simulator(seed=1, clock="virtual"), configure=apps.append).start()
    s = Served(server)
    try:
        yield s, apps[0]
    finally:
        s.client.close()
        server.stop()


# ---------------------------------------------------------------------------------------------- README ten-liner


def test_readme_example_end_to_end(served: Served, client: Client, receiver: Receiver) -> None:
    text = shipped_scenarios()["readme-example"].read_text()
    assert len(text.splitlines()) <= 10
    assert load(client, text, name="readme-example").json["name"] == "readme-example"
    url = receiver.url("/orders")  # loopback, but scripted: goes to the virtual destination

    first = client.post(f"{P}/publish/{url}", body=b"{}")
    assert first.status == 402
    assert first.json["x402Version"] == 1 and first.json["accepts"][0]["scheme"] == "exact"
    for _ in range(2):
        r = client.post(f"{P}/publish/{url}", body=b"{}")
        assert r.status == 429
        midnight_s = (DEFAULT_START_MS + DAY_MS) // 1000
        assert r.headers["RateLimit-Remaining"] == "0"
        assert r.headers["RateLimit-Reset"] == str(midnight_s)
        assert r.headers["Retry-After"] == str(midnight_s - DEFAULT_START_MS // 1000)
    ok = client.post(f"{P}/publish/{url}", body=b"{}")
    assert ok.status == 200
    mid = ok.json["messageId"]
    served.settle()
    assert message(client, mid)["state"] == "retry"
    served.advance("10m")
    m = message(client, mid)
    assert m["state"] == "delivered"
    assert [e["responseStatus"] for e in m["history"] if e["state"] in ("ERROR", "DELIVERED")] == [503, 503, 200]
    assert receiver.received == []
    inbox = client.get("/_sim/deliveries").json["deliveries"]
    assert [(d["url"], d["virtual"], d["status"]) for d in inbox] == [
        (url, True, 503),
        (url, True, 503),
        (url, True, 200),
    ]

    rules = [(e["operation"], e["status"], e["rule"]) for e in journal(client) if e["operation"] == "publishMessage"]
    assert rules == [
        ("publishMessage", 402, "readme-example/pay-first"),
        ("publishMessage", 429, "readme-example/then-429"),
        ("publishMessage", 429, "readme-example/then-429"),
        ("publishMessage", 200, None),
    ]
    attempts = journal(client, "attempt")
    assert [a["rule"] for a in attempts] == ["readme-example/destinations[0]"] * 3
    listed = client.get("/_sim/scenarios").json["scenarios"][0]
    assert [(r["name"], r["fired"]) for r in listed["rules"]] == [("pay-first", 1), ("then-429", 2)]
    assert listed["destinations"][0]["deliveries"] == 3


# ---------------------------------------------------------------------------------------------- shipped library


def test_every_shipped_scenario_has_a_test_here() -> None:
    source = Path(__file__).read_text()
    missing = [name for name in shipped_scenarios() if f'"{name}"' not in source]
    assert missing == []


def test_payment_required_first_call(served: Served, client: Client) -> None:
    load_shipped(client, "payment-required-first-call")
    r = client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x")
    assert r.status == 402
    assert r.json["x402Version"] == 1
    assert r.json["accepts"][0]["maxAmountRequired"] == "10"
    assert client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x").status == 200
    assert client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x").status == 200
    ledger = client.get("/_sim/ledger").json
    assert len(ledger["entries"]) == 2  # the refused call is not charged


def test_payment_required_always(served: Served, client: Client) -> None:
    load_shipped(client, "payment-required-always")
    for _ in range(2):
        r = client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x", headers={"X-Payment": "e30="})
        assert r.status == 402
    assert client.get(f"{P}/queues").status == 402
    assert client.get("/_sim/health").status == 200  # the control plane never sees faults
    assert served.sim.messages() == []


def test_burst_rate_limit(served: Served, client: Client) -> None:
    load_shipped(client, "burst-rate-limit")
    a = client.get(f"{P}/queues")
    b = client.get(f"{P}/queues")
    c = client.get(f"{P}/queues")
    assert (a.status, b.status, c.status) == (200, 200, 429)
    assert a.headers["Burst-RateLimit-Remaining"] == "1" and b.headers["Burst-RateLimit-Remaining"] == "0"
    assert c.headers["Retry-After"] == "1" and c.headers["Burst-RateLimit-Limit"] == "2"
    other = client.get(f"{P}/queues", headers={"x-api-key": "other"})
    assert other.status == 200  # per account
    served.advance("1s")
    assert client.get(f"{P}/queues").status == 200
    assert [e["rule"] for e in journal(client) if e["status"] == 429] == ["burst-rate-limit/rate_limits"]


def test_daily_quota_exhausted(served: Served, client: Client) -> None:
    load_shipped(client, "daily-quota-exhausted")
    r = client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x")
    assert r.status == 429
    assert r.headers["RateLimit-Limit"] == "1000" and r.headers["RateLimit-Remaining"] == "0"
    assert r.headers["RateLimit-Reset"] == str((DEFAULT_START_MS + DAY_MS) // 1000)
    assert client.post(f"{P}/batch", json_body=[{"destination": VIRTUAL_DEST}]).status == 429
    assert client.get(f"{P}/queues").status == 200  # not a limited operation
    served.advance("1d")
    ok = client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x")
    assert ok.status == 200 and ok.headers["RateLimit-Remaining"] == "999"
    steps = journal(client, "scenario")
    assert [(s["rule"], s["outcome"]) for s in steps] == [("daily-quota-exhausted/timeline[0]", "exhaust_quota")]


def test_flaky_destination(served: Served, client: Client, receiver: Receiver) -> None:
    load_shipped(client, "flaky-destination")
    mid = client.post(f"{P}/publish/{receiver.url()}", body=b"x").json["messageId"]
    served.advance("5m")
    m = message(client, mid)
    assert m["state"] == "delivered"
    assert [e["retried"] for e in m["history"] if e["state"] == "DELIVERED"] == [2]
    assert receiver.received == []
    assert all(d["virtual"] for d in client.get("/_sim/deliveries").json["deliveries"])


def test_destination_down_ends_in_the_dlq(served: Served, client: Client) -> None:
    load_shipped(client, "destination-down")
    mid = client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x", headers={"Upstash-Retries": "2"}).json["messageId"]
    served.advance("1h")
    assert message(client, mid)["state"] == "failed"
    dlq = client.get("/_sim/state").json["accounts"]["default"]["dlq"]
    assert [(d["messageId"], d["responseStatus"], d["responseBody"]) for d in dlq] == [
        (mid, 503, "down for maintenance")
    ]


def test_slow_destination_times_out(served: Served, client: Client) -> None:
    load_shipped(client, "slow-destination-timeout")
    mid = client.post(
        f"{P}/publish/{VIRTUAL_DEST}", body=b"x", headers={"Upstash-Timeout": "30s", "Upstash-Retries": "0"}
    ).json["messageId"]
    served.advance("1m")
    m = message(client, mid)
    assert m["state"] == "failed"
    errors = [e for e in m["history"] if e["state"] == "ERROR"]
    assert [e["error"] for e in errors] == ["timeout after 30000ms"]
    assert errors[0]["time"] - m["createdAt"] == 30_000  # the timeout instant, on the virtual clock


def test_gateway_outage_5m(served: Served, client: Client) -> None:
    load_shipped(client, "gateway-outage-5m")
    r = client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x")
    assert r.status == 503 and r.error == "service unavailable: gateway outage (scenario)"
    assert client.get(f"{P}/queues").status == 503
    assert client.get("/_sim/clock").status == 200
    served.advance("4m59s")
    assert client.get(f"{P}/queues").status == 503
    served.advance("1s")
    assert client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x").status == 200
    steps = journal(client, "scenario")
    assert [(s["time"] - DEFAULT_START_MS, s["outcome"]) for s in steps] == [
        (0, "outage_start"),
        (300_000, "outage_stop"),
    ]
    assert {e["rule"] for e in journal(client) if e["status"] == 503} == {"gateway-outage-5m/timeline[0]"}


def _drop_pattern(seed: int, calls: int = 40) -> tuple[list[int], list[dict[str, Any]]]:
    server = ServerThread(Simulator(seed=seed, clock="virtual")).start()
    try:
        client = Client("127.0.0.1", server.port)
        load_shipped(client, "dropped-connections-10pct")
        dropped = []
        for i in range(calls):
            got = one_shot(server.port, "GET", f"{P}/queues")
            if got is http.client.RemoteDisconnected:
                dropped.append(i)
            else:
                assert isinstance(got, Answer) and got.status == 200
        entries = journal(client)
        client.close()
        return dropped, entries
    finally:
        server.stop()


def test_dropped_connections_10pct_reproducible_per_seed() -> None:
    dropped, entries = _drop_pattern(seed=1)
    assert 1 <= len(dropped) <= 12
    again, _ = _drop_pattern(seed=1)
    assert again == dropped
    gateway = [e for e in entries if e["operation"] == "listQueues"]
    assert [i for i, e in enumerate(gateway) if e["outcome"] == "drop"] == dropped
    for i in dropped:
        assert gateway[i]["status"] is None and gateway[i]["rule"] == "dropped-connections-10pct/drop-10pct"
    other, _ = _drop_pattern(seed=2)
    assert other != dropped


def test_lossy_network_drops_publishes_and_fails_a_tenth_of_loopback_attempts(
    served: Served, client: Client, receiver: Receiver
) -> None:
    """Probabilistic rules and destinations together: a dropped publish creates nothing, a scripted 503 is a
    virtual attempt that never reaches the loopback receiver, every other attempt does, for real."""
    load_shipped(client, "lossy-network")
    accepted: list[str] = []
    dropped = 0
    for i in range(1000):  # bounded; stops once enough traffic has gone through and a drop was seen
        if len(accepted) >= 150 and dropped:
            break
        got = one_shot(served.server.port, "POST", f"{P}/publish/{receiver.url(f'/m/{i}')}", body=b"{}")
        if got is http.client.RemoteDisconnected:
            dropped += 1
            continue
        assert isinstance(got, Answer) and got.status == 200, got
        accepted.append(got.json["messageId"])
    assert dropped and len(accepted) >= 150
    served.advance("1d")

    requests = [e for e in journal(client) if e["operation"] == "publishMessage"]
    drops = [e for e in requests if e["outcome"] == "drop"]
    assert len(drops) == dropped and all(e["rule"] == "lossy-network/drop-2pct" and not e["messageIds"] for e in drops)
    state = client.get("/_sim/state").json["accounts"]["default"]
    assert [m["messageId"] for m in state["messages"]] == accepted  # a dropped call created nothing
    assert all(m["state"] == "delivered" for m in state["messages"])

    attempts = journal(client, "attempt")
    scripted = [a for a in attempts if a["rule"] is not None]
    assert {(a["rule"], a["status"], a["outcome"]) for a in scripted} == {("lossy-network/fail-10pct", 503, "retry")}
    assert 0.03 * len(attempts) <= len(scripted) <= 0.2 * len(attempts)
    real = [a for a in attempts if a["rule"] is None]
    assert all(a["status"] == 200 and a["outcome"] == "delivered" for a in real)
    assert sorted(r["path"] for r in receiver.received) == sorted(a["url"].split(str(receiver.port))[1] for a in real)
    inbox = client.get("/_sim/deliveries").json["deliveries"]
    assert sum(d["virtual"] for d in inbox) == len(scripted) and len(inbox) == len(attempts)
    (listed,) = client.get("/_sim/scenarios").json["scenarios"]
    assert [(d["deliveries"], d["matched"]) for d in listed["destinations"]] == [(len(scripted), len(attempts))]
    assert [(r["fired"], r["matched"]) for r in listed["rules"]] == [(dropped, dropped + len(accepted))]


# ---------------------------------------------------------------------------------------------- the other actions


def test_reset_connection_malformed_body_and_custom_respond(served: Served, client: Client) -> None:
    text = """
name: kinds
rules:
  - {name: rst, match: {operation: getQueue}, action: {reset_connection: true}}
  - {name: bad-json, match: {operation: publishMessage}, nth: 1, action: {malformed_body: true}}
  - name: teapot-ish
    match: {operation: listSchedules}
    action: {respond: {status: 500, message: "boom", headers: {X-Scenario: "yes"}}}
"""
    assert load(client, text).status == 200
    port = served.server.port
    assert one_shot(port, "GET", f"{P}/queues/orders") is ConnectionResetError
    bad = one_shot(port, "POST", f"{P}/publish/{VIRTUAL_DEST}", body=b"x")
    assert isinstance(bad, Answer) and bad.status == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad.body)  # the one deliberately invalid answer
    assert bad.body.startswith(b'{"messageId":"msg_')
    assert len(served.sim.messages()) == 1  # the handler ran
    r = client.get(f"{P}/schedules")
    assert r.status == 500 and r.error == "boom" and r.headers["X-Scenario"] == "yes"
    e = {x["operation"]: x for x in journal(client)}
    assert (e["getQueue"]["status"], e["getQueue"]["outcome"], e["getQueue"]["rule"]) == (None, "reset", "kinds/rst")
    assert (e["publishMessage"]["status"], e["publishMessage"]["outcome"]) == (200, "malformed")
    assert (e["listSchedules"]["status"], e["listSchedules"]["rule"]) == (500, "kinds/teapot-ish")


def test_latency_is_waited_in_real_time_bounded_and_the_handler_runs(
    app_served: tuple[Served, web.Application],
) -> None:
    served, app = app_served
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    app[APP_FAULTS].sleep = record
    text = """
name: slow
rules:
  - {name: slow-publish, match: {operation: publishMessage}, action: {latency: 1500ms}}
  - {name: slow-503, match: {operation: listQueues}, action: {latency: 2s, respond: {status: 503}}}
  - {name: capped, match: {operation: listSchedules}, action: {latency: 30s, drop_connection: true}}
"""
    assert load(served.client, text).status == 200
    r = served.client.post(f"{P}/publish/{VIRTUAL_DEST}", body=b"x")
    assert r.status == 200 and r.json["messageId"]
    assert served.client.get(f"{P}/queues").status == 503
    assert one_shot(served.server.port, "GET", f"{P}/schedules") is http.client.RemoteDisconnected
    assert waits == [1.5, 2.0, 30.0]
    assert served.sim.clock.now_ms() == DEFAULT_START_MS  # real time only: the virtual clock did not move


def test_fault_hook_runs_before_every_other_before_hook(app_served: tuple[Served, web.Application]) -> None:
    _, app = app_served
    (sapiom,) = [s for s in app[APP_DISPATCHER].surfaces if s.name == "sapiom"]
    assert isinstance(sapiom.hooks[0], FaultHook)


# ---------------------------------------------------------------------------------------------- timeline


def test_timeline_pauses_resumes_and_rotates_on_the_virtual_clock(served: Served, client: Client) -> None:
    mid = client.post(f"{P}/enqueue/orders/{VIRTUAL_DEST}", body=b"x", headers={"Upstash-Delay": "90s"}).json[
        "messageId"
    ]
    keys_before = client.get("/_sim/signing-keys").json
    text = """
name: ops
timeline:
  - {at: 1m, do: pause_queue, queue: orders}
  - {at: 2m, do: resume_queue, queue: orders}
  - {at: 3m, do: rotate_signing_keys, account: default}
  - {at: 4m, do: pause_queue, queue: nowhere}
"""
    assert load(client, text).status == 200
    served.advance("100s")
    assert client.get(f"{P}/queues/orders").json["paused"] is True
    assert message(client, mid)["state"] != "delivered"  # due at 90 s, held by the paused queue
    served.advance("20s")
    assert message(client, mid)["state"] == "delivered"
    delivered = next(e for e in message(client, mid)["history"] if e["state"] == "DELIVERED")
    assert delivered["time"] - DEFAULT_START_MS == 120_000
    served.advance("3m")
    keys_after = client.get("/_sim/signing-keys").json
    assert keys_after["current"] == keys_before["next"] and keys_after["next"] != keys_before["next"]
    steps = [
        (s["time"] - DEFAULT_START_MS, s["outcome"], s["detail"].get("accounts"), s["error"])
        for s in journal(client, "scenario")
    ]
    assert steps == [
        (60_000, "pause_queue", ["default"], None),
        (120_000, "resume_queue", ["default"], None),
        (180_000, "rotate_signing_keys", ["default"], None),
        (240_000, "pause_queue", [], "queue nowhere not found in any account; nothing to pause"),
    ]


def test_unloading_a_scenario_drops_its_pending_steps(served: Served, client: Client) -> None:
    text = "name: later\ntimeline:\n  - {at: 1h, do: rotate_signing_keys}\n"
    assert load(client, text).status == 200
    assert client.get("/_sim/clock").json["pendingEvents"] == 1
    assert client.delete("/_sim/scenarios/later").json == {"deleted": "later"}
    assert client.get("/_sim/clock").json["pendingEvents"] == 0
    served.advance("2h")
    assert journal(client, "scenario") == []


# ---------------------------------------------------------------------------------------------- control API


def test_scenarios_control_api(served: Served, client: Client) -> None:
    assert client.get("/_sim/scenarios").json == {"scenarios": []}
    info = load(
        client, "rules:\n  - {name: r, match: {operation: getQueue}, action: {respond: {status: 503}}}\n", name="mine"
    ).json
    assert info["name"] == "mine" and info["keep"] is False and info["loadedAtMs"] == DEFAULT_START_MS
    assert client.get(f"{P}/queues/q").status == 503
    assert client.get("/_sim/scenarios").json["scenarios"][0]["rules"][0]["fired"] == 1
    load(client, '{"name": "json-one", "rules": []}')  # JSON text, one line
    assert [s["name"] for s in client.get("/_sim/scenarios").json["scenarios"]] == ["mine", "json-one"]
    assert client.delete("/_sim/scenarios/mine").json == {"deleted": "mine"}
    missing = client.delete("/_sim/scenarios/mine")
    assert missing.status == 404 and "json-one" in missing.error
    assert client.delete("/_sim/scenarios").json == {"cleared": 1}
    assert client.get(f"{P}/queues/q").status == 404


def test_load_errors_are_400_with_line_numbers(served: Served, client: Client) -> None:
    text = (
        "name: bad\nrules:\n  - match: {operaton: publishMessage}\n    nth: zero\n    action: {drop_connection: true}\n"
    )
    r = load(client, text)
    assert r.status == 400
    assert r.json["errors"][0].startswith(
        "<scenario>:3: rules[0].match.operaton: unknown key; did you mean 'operation'?"
    )
    assert r.json["errors"][1].startswith("<scenario>:4: rules[0].nth:")
    assert r.error == "\n".join(r.json["errors"])
    r = load(client, "rules:\n  - action: {respond: {status: 418}}\n", name="teapot")
    assert r.json["errors"] == [
        (
            "teapot:2: rules[0].action.respond.status: status 418 is not documented for every operation "
            "(no match.operation given) in openapi.yaml; allowed: 401, 402, 429, 500, 502, 503, 504"
        )
    ]
    assert load(client, "flaky-destination").status == 400  # a body is text, never a file name
    assert client.post("/_sim/scenarios", body=b"").status == 400
    assert client.get("/_sim/scenarios").json["scenarios"] == []


def test_reset_unloads_scenarios_but_reloads_kept_ones(served: Served, client: Client) -> None:
    served.on_loop(lambda: served.sim.load_scenario("burst-rate-limit", keep=True))
    load_shipped(client, "gateway-outage-5m")
    assert client.get(f"{P}/queues").status == 503
    assert client.post("/_sim/reset", json_body={}).status == 200
    listed = client.get("/_sim/scenarios").json["scenarios"]
    assert [(s["name"], s["keep"], s["rateLimits"]["denied"]) for s in listed] == [("burst-rate-limit", True, 0)]
    assert [client.get(f"{P}/queues").status for _ in range(3)] == [200, 200, 429]


def test_python_api_validates_against_the_contract(served: Served) -> None:
    from qstash_sim.scenarios.loader import ScenarioError

    def bad() -> None:
        served.sim.load_scenario(
            {"rules": [{"match": {"operation": "simHealth"}, "action": {"respond": {"status": 503}}}]}
        )

    with pytest.raises(ScenarioError, match="unknown operation 'simHealth'"):
        served.on_loop(bad)
    served.on_loop(lambda: served.sim.load_scenario("flaky-destination"))
    assert [s.name for s in served.sim.scenarios] == ["flaky-destination"]
    served.on_loop(served.sim.clear_scenarios)
    assert len(served.sim.scenarios) == 0


# ---------------------------------------------------------------------------------------------- determinism


def _session(seed: int) -> bytes:
    server = ServerThread(Simulator(seed=seed, clock="virtual")).start()
    try:
        port = server.port
        client = Client("127.0.0.1", port)
        text = """
name: chaos
rules:
  - {name: drop, match: {operation: publishMessage}, probability: 20%, action: {drop_connection: true}}
  - {name: coin, match: {operation: publishMessage}, probability: 30%, action: {respond: {status: 503}}}
destinations:
  - {match: "https://a.example/*", respond: [503, 200]}
timeline:
  - {at: 30s, do: rotate_signing_keys}
"""
        assert load(client, text).status == 200
        for i in range(25):
            one_shot(port, "POST", f"{P}/publish/https://a.example/{i}", body=b"x", headers={"x-api-key": f"k{i % 3}"})
        server.call(lambda: server.sim.advance("1h"))
        body = one_shot(port, "GET", "/_sim/journal").body
        client.close()
        return body
    finally:
        server.stop()


def test_same_seed_same_scenario_same_requests_same_journal_bytes() -> None:
    first = _session(7)
    assert b'"rule":"chaos/drop"' in first and b'"rule":"chaos/coin"' in first and b'"kind":"scenario"' in first
    assert _session(7) == first
    assert _session(8) != first


# ---------------------------------------------------------------------------------------------- CLI


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qstash_sim", *args], check=False, capture_output=True, text=True, timeout=timeout
    )


def test_check_command_good_and_bad_files(tmp_path: Path) -> None:
    good = _cli("check", *map(str, shipped_scenarios().values()), "flaky-destination")
    assert good.returncode == 0, good.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nrules:\n  - match: {operation: publishMesage}\n    action: {drop_connection: true}\n")
    r = _cli("check", str(bad))
    assert r.returncode == 1
    assert (
        f"{bad}:3: rules[0].match.operation: unknown operation 'publishMesage'; did you mean 'publishMessage'?"
        in r.stderr
    )


def test_serve_with_a_bad_scenario_exits_2_with_file_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\ntimeline:\n  - {at: soon, do: pause_queue, queue: q}\n")
    r = _cli("serve", "--port", "0", "--scenario", str(bad))
    assert r.returncode == 2
    assert r.stderr.startswith(f"{bad}:3: timeline[0].at:")
    assert "Traceback" not in r.stderr
    r = _cli("serve", "--port", "0", "--scenario", "flakey-destination")
    assert r.returncode == 2 and "did you mean 'flaky-destination'?" in r.stderr


def test_serve_with_scenarios_answers_faults_and_takes_the_scenario_seed(tmp_path: Path) -> None:
    seeded = tmp_path / "seeded.yaml"
    seeded.write_text("name: seeded\nseed: 42\n")
    with serve_proc.serve(
        "--log-level", "warning", "--scenario", "gateway-outage-5m", "--scenario", str(seeded)
    ) as server:
        client = Client("127.0.0.1", server.port)
        assert client.get("/_sim/health").json["seed"] == 42
        assert client.get(f"{P}/queues").status == 503
        assert client.post("/_sim/reset", json_body={}).status == 200
        assert [s["name"] for s in client.get("/_sim/scenarios").json["scenarios"]] == ["gateway-outage-5m", "seeded"]
        assert client.get(f"{P}/queues").status == 503  # kept across reset, restarted at the reset instant
        client.post("/_sim/clock/advance", json_body={"by": "5m"})
        assert client.get(f"{P}/queues").status == 200
        client.close()


def test_x402_resource_is_the_url_the_client_called(served: Served, client: Client) -> None:
    load_shipped(client, "payment-required-first-call")
    r = client.post(f"{P}/publish/{VIRTUAL_DEST}?a=1", body=b"x")
    resource = r.json["accepts"][0]["resource"]
    assert resource == f"http://127.0.0.1:{served.server.port}{P}/publish/{VIRTUAL_DEST}?a=1"


def test_flow_control_burst_slows_its_workers(served: Served, client: Client) -> None:
    """The shipped ``"flow-control-burst"``: its workers answer 200 after 2 s of virtual time (the burst of
    1,000 end to end: tests/scenarios/test_flow_control_burst.py)."""
    load_shipped(client, "flow-control-burst")
    h = {"Authorization": "Bearer b"}
    mid = client.post("/v2/publish/https://burst.example/job/1", body=b"x", headers=h).json["messageId"]
    served.advance("1999ms")
    assert client.get(f"/v2/messages/{mid}", headers=h).status == 200  # still on the wire (virtual time)
    served.advance("1ms")
    assert client.get(f"/v2/messages/{mid}", headers=h).status == 404  # delivered: QStash forgets it
    [d] = client.get("/_sim/deliveries").json["deliveries"]
    assert d["status"] == 200 and d["url"] == "https://burst.example/job/1"
