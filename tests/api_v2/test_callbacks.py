"""Callbacks on the native surface (``Upstash-Callback``, ``Upstash-Failure-Callback`` and their variants),
over real loopback sockets: each is a signed message of its own to the callback URL with QStash's callback
body, its own retries, and journal entries linked to the source message. Time moves only with
``served.advance`` / ``settle``."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from qstash import Receiver as QstashReceiver

from conftest import Client, Receiver, Served
from qstash_sim.domain.message import Message

TOKEN = "tok_callbacks"
H = {"Authorization": f"Bearer {TOKEN}"}
T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z, the virtual clock's start
BODY_FIELDS = {
    "status",
    "header",
    "body",
    "retried",
    "maxRetries",
    "sourceMessageId",
    "url",
    "method",
    "sourceHeader",
    "sourceBody",
    "callerIP",
    "notBefore",
    "createdAt",
}


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _keys(client: Client) -> QstashReceiver:
    keys = client.get(f"/_sim/signing-keys?account={TOKEN}").json
    return QstashReceiver(keys["current"], keys["next"])


def _payloads(rcv: Receiver, path: str) -> list[dict[str, Any]]:
    return [json.loads(g["body"]) for g in rcv.received if g["path"] == path]


def _journal(client: Client, kind: str) -> list[dict[str, Any]]:
    return list(client.get(f"/_sim/journal?kind={kind}&account={TOKEN}").json["entries"])


def _message(served: Served, message_id: str) -> Message:
    return served.on_loop(lambda: served.sim.world.accounts.get(TOKEN).messages[message_id])


def test_a_success_calls_back_once_with_the_documented_body(
    served: Served, client: Client, receiver: Receiver, hooks: Receiver
) -> None:
    r = client.post(
        f"/v2/publish/{receiver.url('/dest?a=1')}",
        body=b'{"order":7}',
        headers={
            **H,
            "Content-Type": "application/json",
            "Upstash-Method": "PUT",
            "Upstash-Delay": "5s",
            "Upstash-Forward-X-Trace": "t1",
            "Upstash-Callback": hooks.url("/cb"),
            "Upstash-Callback-Forward-X-Cb": "c1",
            "Upstash-Failure-Callback": hooks.url("/failed"),
        },
    )
    mid = r.json["messageId"]
    served.advance("4s")
    assert receiver.received == [] and hooks.received == []
    served.advance("1s")
    assert len(receiver.received) == 1
    served.settle()
    (got,) = hooks.received  # no failure callback after a success
    assert got["method"] == "POST" and got["path"] == "/cb" and got["headers"]["Content-Type"] == "application/json"
    assert got["headers"]["X-Cb"] == "c1" and got["headers"]["Upstash-Message-Id"] != mid
    _keys(client).verify(signature=got["headers"]["Upstash-Signature"], body=got["body"].decode(), url=hooks.url("/cb"))
    p = json.loads(got["body"])
    assert set(p) == BODY_FIELDS
    assert (p["status"], p["retried"], p["maxRetries"], p["method"]) == (200, 0, 3, "PUT")
    assert p["sourceMessageId"] == mid and p["url"] == receiver.url("/dest?a=1") and p["callerIP"] == "127.0.0.1"
    assert base64.b64decode(p["body"]) == b'{"ok":true}' and p["header"]["Content-Type"] == ["application/json"]
    assert base64.b64decode(p["sourceBody"]) == b'{"order":7}'
    assert p["sourceHeader"] == {"X-Trace": ["t1"], "Content-Type": ["application/json"]}
    assert (p["createdAt"], p["notBefore"]) == (T0, T0 + 5000)
    cb_id = got["headers"]["Upstash-Message-Id"]
    (entry,) = _journal(client, "callback")
    assert entry["messageId"] == cb_id and entry["sourceMessageId"] == mid and entry["url"] == hooks.url("/cb")
    assert entry["detail"] == {"callbackKind": "callback", "retried": 0, "status": 200}
    attempts = {e["messageId"]: e["sourceMessageId"] for e in _journal(client, "attempt")}
    assert attempts == {mid: None, cb_id: mid}


def test_callback_settings_method_delay_retries_retry_delay_and_timeout(served: Served, client: Client) -> None:
    dest, hooks = Receiver(), Receiver([500, 500, 200])
    try:
        client.post(
            f"/v2/publish/{dest.url()}",
            body=b"x",
            headers={
                **H,
                "Upstash-Retries": "7",
                "Upstash-Callback": hooks.url("/cb"),
                "Upstash-Callback-Method": "PUT",
                "Upstash-Callback-Delay": "10s",
                "Upstash-Callback-Retries": "2",
                "Upstash-Callback-Retry-Delay": "1000 * (retried + 1)",
                "Upstash-Callback-Timeout": "5s",
            },
        )
        served.settle()
        assert len(dest.received) == 1
        served.advance("9s")
        assert hooks.received == []  # delayed by Upstash-Callback-Delay
        served.advance("1s")
        assert [g["method"] for g in hooks.received] == ["PUT"]
        served.advance("1s")
        assert len(hooks.received) == 2  # first retry after 1000 * (0 + 1) ms
        served.advance("1s")
        assert len(hooks.received) == 2
        served.advance("1s")
        assert len(hooks.received) == 3  # second retry 2000 ms later; then delivered
        cb_id = hooks.received[0]["headers"]["Upstash-Message-Id"]
        assert [g["headers"]["Upstash-Retried"] for g in hooks.received] == ["0", "1", "2"]
        m = _message(served, cb_id)
        assert (m.max_retries, m.method, m.url, m.timeout_ms) == (2, "PUT", hooks.url("/cb"), 5000)
        assert m.callback is None  # a callback message has no callbacks of its own
        assert (m.source_message_id, m.callback_kind) == (dest.received[0]["headers"]["Upstash-Message-Id"], "callback")
    finally:
        dest.close()
        hooks.close()


def test_a_callback_inherits_the_source_retries_and_fails_into_the_dlq(served: Served, client: Client) -> None:
    dest, hooks = Receiver(), Receiver([503])
    try:
        client.post(
            f"/v2/publish/{dest.url()}",
            body=b"x",
            headers={**H, "Upstash-Retries": "1", "Upstash-Retry-Delay": "500", "Upstash-Callback": hooks.url("/cb")},
        )
        served.advance("1s")
        assert len(dest.received) == 1 and len(hooks.received) == 2  # 1 + Upstash-Retries of the source
        cb_id = hooks.received[0]["headers"]["Upstash-Message-Id"]
        (dlq,) = client.get(f"/v2/dlq?messageId={cb_id}", headers=H).json["messages"]
        assert dlq["responseStatus"] == 503 and dlq["url"] == hooks.url("/cb")
    finally:
        dest.close()
        hooks.close()


def test_exhausted_retries_call_the_failure_callback_once_with_the_last_answer_and_dlq_id(
    served: Served, client: Client, hooks: Receiver
) -> None:
    failing = Receiver([500, 502], headers={"X-Why": "overloaded"})
    try:
        r = client.post(
            f"/v2/publish/{failing.url('/f')}",
            body=b"payload",
            headers={
                **H,
                "Upstash-Retries": "2",
                "Upstash-Retry-Delay": "1000",
                "Upstash-Callback": hooks.url("/cb"),
                "Upstash-Failure-Callback": hooks.url("/failed"),
                "Upstash-Failure-Callback-X-Py": "1",  # the Python SDK's spelling, without -Forward-
                "Upstash-Failure-Callback-Method": "PATCH",
            },
        )
        mid = r.json["messageId"]
        served.advance("1s")
        assert _payloads(hooks, "/failed") == []  # retries remain
        served.advance("1s")
        assert len(failing.received) == 3
        assert [p["retried"] for p in _payloads(hooks, "/cb")] == [0, 1, 2]  # final attempt: retried == maxRetries
        (failed,) = [g for g in hooks.received if g["path"] == "/failed"]
        assert failed["method"] == "PATCH" and failed["headers"]["X-Py"] == "1"
        p = json.loads(failed["body"])
        assert set(p) == BODY_FIELDS | {"dlqId"}
        assert (p["status"], p["retried"], p["maxRetries"], p["sourceMessageId"]) == (502, 2, 2, mid)
        assert base64.b64decode(p["body"]) == b'{"error":"receiver says no"}' and p["header"]["X-Why"] == ["overloaded"]
        assert client.get(f"/v2/dlq/{p['dlqId']}", headers=H).json["messageId"] == mid
        kinds = [(e["detail"]["callbackKind"], e["sourceMessageId"]) for e in _journal(client, "callback")]
        assert kinds == [("callback", mid)] * 3 + [("failureCallback", mid)]
        assert _journal(client, "callback")[-1]["detail"]["dlqId"] == p["dlqId"]
    finally:
        failing.close()


def test_a_non_retryable_answer_fails_at_once_and_calls_the_failure_callback(
    served: Served, client: Client, hooks: Receiver
) -> None:
    failing = Receiver([489], headers={"Upstash-NonRetryable-Error": "true"})
    try:
        client.post(
            f"/v2/publish/{failing.url()}",
            body=b"x",
            headers={**H, "Upstash-Failure-Callback": hooks.url("/failed")},
        )
        served.advance("1s")
        assert len(failing.received) == 1
        (p,) = _payloads(hooks, "/failed")
        assert (p["status"], p["retried"], p["maxRetries"]) == (489, 0, 3) and p["dlqId"]
    finally:
        failing.close()


def test_an_unreachable_destination_reports_status_0_and_the_error(
    served: Served, client: Client, hooks: Receiver
) -> None:
    dead = Receiver()
    url = dead.url("/gone")
    dead.close()
    client.post(
        f"/v2/publish/{url}",
        body=b"x",
        headers={**H, "Upstash-Retries": "0", "Upstash-Failure-Callback": hooks.url("/failed")},
    )
    served.advance("1s")
    (p,) = _payloads(hooks, "/failed")
    assert p["status"] == 0 and p["error"] and p["dlqId"] and p["header"] == {} and p["body"] == ""


def test_a_schedule_carries_its_callbacks_to_every_fire(
    served: Served, client: Client, receiver: Receiver, hooks: Receiver
) -> None:
    r = client.post(
        f"/v2/schedules/{receiver.url('/tick')}",
        body=b"t",
        headers={
            **H,
            "Upstash-Cron": "* * * * *",
            "Upstash-Schedule-Id": "cb-sched",
            "Upstash-Callback": hooks.url("/cb"),
            "Upstash-Callback-Forward-X-S": "s",
        },
    )
    assert r.status == 200
    served.advance("2m")
    payloads = _payloads(hooks, "/cb")
    assert [p["scheduleId"] for p in payloads] == ["cb-sched", "cb-sched"]
    assert [p["createdAt"] for p in payloads] == [T0 + 60_000, T0 + 120_000]
    assert {g["headers"]["X-S"] for g in hooks.received} == {"s"}
    fired = {g["headers"]["Upstash-Message-Id"] for g in receiver.received}
    assert {p["sourceMessageId"] for p in payloads} == fired


def test_a_url_group_calls_back_per_endpoint_with_topic_and_endpoint_names(
    served: Served, client: Client, receiver: Receiver, hooks: Receiver
) -> None:
    endpoints = [{"url": receiver.url("/a"), "name": "ep-a"}, {"url": receiver.url("/b")}]
    assert client.post("/v2/topics/grp/endpoints", json_body={"endpoints": endpoints}, headers=H).status == 200
    r = client.post("/v2/publish/grp", body=b"x", headers={**H, "Upstash-Callback": hooks.url("/cb")})
    assert r.status == 200 and len(r.json) == 2
    served.settle()
    by_url = {p["url"]: p for p in _payloads(hooks, "/cb")}
    assert by_url[receiver.url("/a")]["topicName"] == "grp" and by_url[receiver.url("/a")]["endpointName"] == "ep-a"
    assert by_url[receiver.url("/b")]["topicName"] == "grp" and "endpointName" not in by_url[receiver.url("/b")]


def test_a_callback_url_in_the_query_string_is_applied(
    served: Served, client: Client, receiver: Receiver, hooks: Receiver
) -> None:
    r = client.post(f"/v2/publish/{receiver.url('/q')}?upstash-callback={hooks.url('/cb')}&k=1", body=b"x", headers=H)
    assert r.status == 200 and r.json["url"] == receiver.url("/q?k=1")
    served.settle()
    (p,) = _payloads(hooks, "/cb")
    assert p["sourceMessageId"] == r.json["messageId"]


def test_a_scenario_can_make_a_callback_url_fail(
    served: Served, client: Client, receiver: Receiver, hooks: Receiver
) -> None:
    scenario = f'name: cb-down\ndestinations:\n  - match: "{hooks.url("/cb")}*"\n    respond: 503\n'
    assert client.post("/_sim/scenarios", body=scenario, headers={"Content-Type": "application/yaml"}).status == 200
    r = client.post(
        f"/v2/publish/{receiver.url()}",
        body=b"x",
        headers={**H, "Upstash-Retries": "1", "Upstash-Retry-Delay": "0", "Upstash-Callback": hooks.url("/cb")},
    )
    served.advance("1s")
    assert len(receiver.received) == 1 and hooks.received == []  # the scenario answered for the callback URL
    (entry,) = _journal(client, "callback")
    cb_id = entry["messageId"]
    (dlq,) = client.get(f"/v2/dlq?messageId={cb_id}", headers=H).json["messages"]
    assert dlq["responseStatus"] == 503 and dlq["url"] == hooks.url("/cb")
    rules = [e["rule"] for e in _journal(client, "attempt") if e["sourceMessageId"] == r.json["messageId"]]
    assert len(rules) == 2 and all(rules)


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("Upstash-Callback", "ftp://x", "header Upstash-Callback"),
        ("Upstash-Callback-Retries", "many", "header Upstash-Callback-Retries"),
        ("Upstash-Failure-Callback-Method", "FETCH", "header Upstash-Failure-Callback-Method"),
        ("Upstash-Callback-Delay", "soon", "header Upstash-Callback-Delay"),
        ("Upstash-Failure-Callback-Retries", "101", "header Upstash-Failure-Callback-Retries"),
        ("Upstash-Callback-Timeout", "-1s", "header Upstash-Callback-Timeout"),
    ],
)
def test_bad_callback_settings_are_a_400_naming_the_header(
    client: Client, hooks: Receiver, header: str, value: str, message: str
) -> None:
    headers = {**H, header: value}
    if header != "Upstash-Callback":
        headers.setdefault("Upstash-Callback", hooks.url("/cb"))
        headers.setdefault("Upstash-Failure-Callback", hooks.url("/f"))
    r = client.post("/v2/publish/https://example.com/x", body=b"x", headers=headers)
    assert r.status == 400 and r.error.startswith(message), r.error


def test_the_sapiom_gateway_drops_callbacks(
    served: Served, client: Client, receiver: Receiver, hooks: Receiver
) -> None:
    r = client.post(
        f"/v1/qstash/publish/{receiver.url()}",
        body=b"x",
        headers={"x-api-key": TOKEN, "Upstash-Callback": hooks.url("/cb"), "Upstash-Failure-Callback": hooks.url("/f")},
    )
    assert r.status == 200
    served.advance("1s")
    assert len(receiver.received) == 1 and hooks.received == [] and _journal(client, "callback") == []


def test_the_same_seed_gives_the_same_callbacks(served: Served, client: Client) -> None:
    def run() -> list[tuple[str, str, bytes]]:
        assert client.post("/_sim/reset", json_body={"seed": 5, "now": T0}).status == 200
        client.post(
            "/v2/publish/https://example.com/flaky",
            body=b"x",
            headers={**H, "Upstash-Retries": "1", "Upstash-Callback": "https://example.com/cb"},
        )
        served.advance("1m")
        return served.on_loop(lambda: [(d.message_id, d.url, d.body) for d in served.sim.world.inbox])

    first = run()
    assert len(first) == 2 and first == run()  # one delivery, one callback (the virtual destination answers 200)
