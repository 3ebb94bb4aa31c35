"""The gateway over a real socket: every endpoint's happy path and each documented error.

Every answer is checked against openapi.yaml by the ``client`` fixture (see conftest.py).
"""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any

import pytest

from conftest import Client, Receiver, Served

P = "/v1/qstash"
DEST = "https://api.example.com/fulfillment"


def publish(client: Client, dest: str = DEST, body: str | bytes = '{"orderId":"ord_456"}', **headers: str) -> str:
    r = client.post(f"{P}/publish/{dest}", body=body, headers={"Content-Type": "application/json", **headers})
    assert r.status == 200, r.body
    return r.json["messageId"]


# ---------------------------------------------------------------- publish


def test_publish_answers_message_id_and_url(client: Client) -> None:
    r = client.post(f"{P}/publish/{DEST}", body=b'{"a":1}', headers={"Content-Type": "application/json"})
    assert r.status == 200
    assert r.json["messageId"].startswith("msg_")
    assert r.json["url"] == DEST


def test_publish_keeps_double_slash_and_query_of_destination(client: Client) -> None:
    r = client.post(f"{P}/publish/https://example.com//a/b?x=1&y=two", body=b"hi")
    assert r.status == 200
    assert r.json["url"] == "https://example.com//a/b?x=1&y=two"


def test_publish_accepts_percent_encoded_destination(client: Client) -> None:
    r = client.post(f"{P}/publish/https%3A%2F%2Fexample.com%2Fhook%3Fa%3D1", body=b"x")
    assert r.status == 200
    assert r.json["url"] == "https://example.com/hook?a=1"


def test_publish_stores_body_bytes_content_type_and_forward_headers(client: Client) -> None:
    body = bytes(range(256))
    mid = publish(
        client,
        body=body,
        **{"Content-Type": "application/octet-stream", "Upstash-Forward-X-Order": "42", "Upstash-Method": "PUT"},
    )
    r = client.get(f"{P}/messages/{mid}")
    assert r.status == 200
    m = r.json
    assert m["method"] == "PUT"
    assert m["header"]["X-Order"] == ["42"]
    assert m["header"]["Content-Type"] == ["application/octet-stream"]
    assert "body" not in m and m["bodyBase64"]  # not UTF-8 -> base64
    import base64

    assert base64.b64decode(m["bodyBase64"]) == body


@pytest.mark.parametrize(
    "dest",
    ["example.com/hook", "ftp://example.com/x", "//example.com", "javascript:alert(1)"],
)
def test_publish_rejects_destination_without_http_scheme(client: Client, dest: str) -> None:
    r = client.post(f"{P}/publish/{dest}", body=b"x")
    assert r.status == 400
    assert r.error == "invalid destination url: endpoint has invalid scheme, add http:// or https://"


@pytest.mark.parametrize(
    "dest",
    [
        "https://example.com/a/../admin",
        "https://example.com/a/%2e%2e/admin",
        "https://example.com/a/%2E%2E/admin",
        "https://example.com/a/.%2e/admin",
        "https://example.com/a%2f..%2fadmin",
        "https%3A%2F%2Fexample.com%2Fa%2F..%2Fadmin",
        "https://example.com/a\\..\\admin",
    ],
)
def test_publish_rejects_path_traversal(client: Client, dest: str) -> None:
    r = client.post(f"{P}/publish/{dest}", body=b"x")
    assert r.status == 400
    assert "traversal" in r.error or "invalid destination" in r.error


def test_publish_strips_callback_flow_control_and_cron_headers(client: Client) -> None:
    mid = publish(
        client,
        **{
            "Upstash-Callback": "https://cb.example.com",
            "Upstash-Failure-Callback": "https://fail.example.com",
            "Upstash-Callback-Forward-X": "1",
            "Upstash-Flow-Control-Key": "k",
            "Upstash-Flow-Control-Value": "parallelism=1",
            "Upstash-Cron": "* * * * *",
            "Upstash-Forward-Keep": "yes",
        },
    )
    headers = client.get(f"{P}/messages/{mid}").json["header"]
    assert headers == {"Keep": ["yes"], "Content-Type": ["application/json"]}


@pytest.mark.parametrize(
    ("name", "value", "needle"),
    [
        ("Upstash-Retries", "abc", "Upstash-Retries"),
        ("Upstash-Retries", "9", "Upstash-Retries"),
        ("Upstash-Delay", "soon", "Upstash-Delay"),
        ("Upstash-Method", "TRACE", "Upstash-Method"),
        ("Upstash-Not-Before", "yesterday", "Upstash-Not-Before"),
        ("Upstash-Retry-Delay", "foo(retried)", "Upstash-Retry-Delay"),
        ("Upstash-Timeout", "forever", "Upstash-Timeout"),
        ("Upstash-Content-Based-Deduplication", "maybe", "Upstash-Content-Based-Deduplication"),
    ],
)
def test_publish_bad_header_names_the_header(client: Client, name: str, value: str, needle: str) -> None:
    r = client.post(f"{P}/publish/{DEST}", body=b"x", headers={name: value})
    assert r.status == 400
    assert needle in r.error
    assert "header" in r.error.lower()


def test_unknown_upstash_header_is_a_journal_warning_with_hint(served: Served, client: Client) -> None:
    publish(client, **{"Upstash-Dealy": "10s"})
    warnings = [e for e in client.get("/_sim/journal?kind=warning").json["entries"]]
    assert warnings and "did you mean Upstash-Delay?" in warnings[0]["error"]


def test_unknown_upstash_header_is_400_under_strict() -> None:
    from conftest import Client as C
    from qstash_sim.server import ServerThread
    from qstash_sim.simulator import Simulator

    with ServerThread(Simulator(seed=1, strict=True)) as srv:
        c = C("127.0.0.1", srv.port)
        r = c.post(f"{P}/publish/{DEST}", body=b"x", headers={"Upstash-Dealy": "10s"})
        c.close()
    assert r.status == 400
    assert "Upstash-Dealy" in r.error and "Upstash-Delay" in r.error


def test_deduplication_id_returns_first_message(client: Client) -> None:
    first = publish(client, **{"Upstash-Deduplication-Id": "order-1"})
    r = client.post(f"{P}/publish/{DEST}", body=b"other", headers={"Upstash-Deduplication-Id": "order-1"})
    assert r.status == 202  # QStash's status for a duplicate, as on /v2
    assert r.json == {"messageId": first, "url": DEST, "deduplicated": True}


def test_content_based_deduplication(served: Served, client: Client) -> None:
    a = publish(client, body="same", **{"Upstash-Content-Based-Deduplication": "True"})
    b = client.post(
        f"{P}/publish/{DEST}",
        body=b"same",
        headers={"Content-Type": "application/json", "Upstash-Content-Based-Deduplication": "true"},
    )
    assert b.json["messageId"] == a and b.json["deduplicated"] is True
    c = publish(client, body="different", **{"Upstash-Content-Based-Deduplication": "true"})
    assert c != a
    # the window is 10 minutes of simulator time
    served.advance("11m")
    d = publish(client, body="same", **{"Upstash-Content-Based-Deduplication": "true"})
    assert d != a


def test_body_over_limit_is_413_without_reading_it() -> None:
    from qstash_sim.server import ServerThread
    from qstash_sim.simulator import Simulator

    with ServerThread(Simulator(seed=1), max_body=1024) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(f"POST {P}/publish/{DEST} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n".encode())
        data = s.recv(65536)
        s.close()
        c = Client("127.0.0.1", srv.port)
        r = c.post(f"{P}/publish/{DEST}", body=b"x" * 2000)
        ok = c.post(f"{P}/publish/{DEST}", body=b"x" * 1000)
        c.close()
    assert data.startswith(b"HTTP/1.1 413")
    assert r.status == 413 and "limit of 1024 bytes" in r.error
    assert ok.status == 200


def test_chunked_body_over_limit_is_413() -> None:
    from qstash_sim.server import ServerThread
    from qstash_sim.simulator import Simulator

    with ServerThread(Simulator(seed=1), max_body=1024) as srv:
        s = socket.create_connection(("127.0.0.1", srv.port))
        s.sendall(f"POST {P}/publish/{DEST} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
        for _ in range(3):
            s.sendall(b"200\r\n" + b"y" * 512 + b"\r\n")
        s.sendall(b"0\r\n\r\n")
        data = s.recv(65536)
        s.close()
    assert data.startswith(b"HTTP/1.1 413")


# ---------------------------------------------------------------- enqueue and queues


def test_enqueue_creates_queue_with_parallelism_one(client: Client) -> None:
    r = client.post(f"{P}/enqueue/email-queue/https://example.com/send-email", body=b"{}")
    assert r.status == 200 and r.json["messageId"].startswith("msg_")
    q = client.get(f"{P}/queues/email-queue").json
    assert q["name"] == "email-queue" and q["parallelism"] == 1 and q["paused"] is False
    assert [x["name"] for x in client.get(f"{P}/queues").json] == ["email-queue"]


def test_enqueue_bad_queue_name_is_400(client: Client) -> None:
    r = client.post(f"{P}/enqueue/bad%20name/https://example.com/x", body=b"{}")
    assert r.status == 400
    assert "queueName" in r.error


def test_queue_pause_resume_idempotent_and_delete(client: Client) -> None:
    client.post(f"{P}/enqueue/q1/http://127.0.0.1:9/never", body=b"{}")
    for _ in range(2):
        r = client.post(f"{P}/queues/q1/pause")
        assert r.status == 200 and r.json["paused"] is True
    for _ in range(2):
        r = client.post(f"{P}/queues/q1/resume")
        assert r.status == 200 and r.json["paused"] is False
    r = client.delete(f"{P}/queues/q1")
    assert r.status == 200 and r.json["deleted"] == "q1"
    assert client.get(f"{P}/queues/q1").status == 404


def test_delete_queue_cancels_its_pending_messages(client: Client) -> None:
    client.post(f"{P}/queues/none/pause")  # 404, unknown
    client.post(f"{P}/enqueue/q2/https://example.com/a", body=b"1", headers={"Upstash-Delay": "1h"})
    mid = client.post(f"{P}/enqueue/q2/https://example.com/a", body=b"2").json["messageId"]
    r = client.delete(f"{P}/queues/q2")
    assert r.json["cancelled"] == 2
    assert client.get(f"{P}/messages/{mid}").json["state"] == "cancelled"


def test_unknown_queue_is_404(client: Client) -> None:
    for method, path in [("GET", "q9"), ("DELETE", "q9"), ("POST", "q9/pause"), ("POST", "q9/resume")]:
        r = client.request(method, f"{P}/queues/{path}")
        assert r.status == 404, (method, path)
        assert "q9" in r.error


# ---------------------------------------------------------------- batch


def test_batch_seed_example(client: Client) -> None:
    items = [
        {
            "destination": "https://example.com/webhook-a",
            "headers": {"Content-Type": "application/json"},
            "body": '{"event":"order.created","orderId":"ord_1"}',
        },
        {
            "destination": "https://example.com/webhook-b",
            "headers": {"Content-Type": "application/json"},
            "body": '{"event":"notification.send","userId":"usr_1"}',
            "queue": "notifications",
        },
    ]
    r = client.post(f"{P}/batch", json_body=items)
    assert r.status == 200
    assert [x["url"] for x in r.json] == ["https://example.com/webhook-a", "https://example.com/webhook-b"]
    second = client.get(f"{P}/messages/{r.json[1]['messageId']}").json
    assert second["queueName"] == "notifications"
    assert second["body"] == '{"event":"notification.send","userId":"usr_1"}'


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"[]", "body"),
        (b"{}", "body"),
        (b"not json", "invalid JSON"),
        (b'[{"headers":{}}]', "destination"),
        (b'[{"destination":"ftp://x"}]', "invalid scheme"),
        (b'[{"destination":"https://x.com","queue":"bad name"}]', "queue"),
        (b'[{"destination":"https://x.com","headers":{"Upstash-Retries":"x"}}]', "/0/headers/Upstash-Retries"),
        (b'[{"destination":"https://x.com"},{"destination":"https://y.com","body":5}]', "/1/body"),
    ],
)
def test_batch_errors_name_the_item(client: Client, body: bytes, needle: str) -> None:
    r = client.post(f"{P}/batch", body=body, headers={"Content-Type": "application/json"})
    assert r.status == 400
    assert needle in r.error


def test_invalid_batch_stores_nothing(served: Served, client: Client) -> None:
    bad = [{"destination": "https://a.com"}, {"destination": "nope"}]
    assert client.post(f"{P}/batch", json_body=bad).status == 400
    assert served.on_loop(lambda: len(served.sim.messages())) == 0


# ---------------------------------------------------------------- messages


def test_get_message_shows_state_and_history(served: Served, client: Client) -> None:
    mid = publish(client, **{"Upstash-Delay": "10m"})
    m = client.get(f"{P}/messages/{mid}").json
    assert m["state"] == "pending"
    assert [h["state"] for h in m["history"]] == ["CREATED"]
    assert m["notBefore"] == m["createdAt"] + 600_000


def test_cancel_pending_message_then_404(client: Client) -> None:
    mid = publish(client, **{"Upstash-Delay": "1h"})
    r = client.delete(f"{P}/messages/{mid}")
    assert r.status == 202 and r.json == {"cancelled": 1}
    assert client.get(f"{P}/messages/{mid}").json["state"] == "cancelled"
    again = client.delete(f"{P}/messages/{mid}")
    assert again.status == 404 and "already cancelled" in again.error


def test_unknown_message_is_404(client: Client) -> None:
    assert client.get(f"{P}/messages/msg_nope").status == 404
    assert client.delete(f"{P}/messages/msg_nope").status == 404


def test_accounts_are_isolated(client: Client) -> None:
    mid = publish(client, **{"x-api-key": "alice", "Upstash-Delay": "1h"})
    client.post(f"{P}/enqueue/shared/https://example.com/x", body=b"{}", headers={"x-api-key": "alice"})
    assert client.get(f"{P}/messages/{mid}", headers={"x-api-key": "alice"}).status == 200
    assert client.get(f"{P}/messages/{mid}", headers={"Authorization": "Bearer bob"}).status == 404
    assert client.delete(f"{P}/messages/{mid}", headers={"x-api-key": "bob"}).status == 404
    assert client.get(f"{P}/queues", headers={"x-api-key": "bob"}).json == []
    assert client.get(f"{P}/queues/shared", headers={"x-api-key": "bob"}).status == 404
    assert client.get(f"{P}/queues/shared", headers={"Authorization": "Bearer alice"}).status == 200


# ---------------------------------------------------------------- schedules


def test_schedule_create_get_list_pause_resume_delete(client: Client) -> None:
    r = client.post(
        f"{P}/schedules/https://api.example.com/daily-report",
        body=b'{"type":"generate-report"}',
        headers={"Content-Type": "application/json", "Upstash-Cron": "0 9 * * *"},
    )
    assert r.status == 200
    sid = r.json["scheduleId"]
    assert sid.startswith("scd_")
    s = client.get(f"{P}/schedules/{sid}").json
    assert s["cron"] == "0 9 * * *" and s["destination"] == "https://api.example.com/daily-report"
    assert s["nextScheduleTime"] > s["createdAt"]
    assert [x["scheduleId"] for x in client.get(f"{P}/schedules").json] == [sid]
    assert client.patch(f"{P}/schedules/{sid}/pause").json["isPaused"] is True
    assert client.post(f"{P}/schedules/{sid}/pause").json["isPaused"] is True
    assert client.patch(f"{P}/schedules/{sid}/resume").json["isPaused"] is False
    assert client.post(f"{P}/schedules/{sid}/resume").json["isPaused"] is False
    assert client.delete(f"{P}/schedules/{sid}").json == {"deleted": sid}
    assert client.get(f"{P}/schedules/{sid}").status == 404


def test_schedule_id_overwrites(client: Client) -> None:
    h = {"Upstash-Cron": "* * * * *", "Upstash-Schedule-Id": "nightly"}
    assert client.post(f"{P}/schedules/https://a.com/x", body=b"1", headers=h).json == {"scheduleId": "nightly"}
    h["Upstash-Cron"] = "0 0 * * *"
    assert client.post(f"{P}/schedules/https://a.com/y", body=b"2", headers=h).json == {"scheduleId": "nightly"}
    s = client.get(f"{P}/schedules/nightly").json
    assert s["cron"] == "0 0 * * *" and s["destination"] == "https://a.com/y"
    assert len(client.get(f"{P}/schedules").json) == 1


@pytest.mark.parametrize(
    ("cron", "needle"),
    [
        (None, "Upstash-Cron"),
        ("* * * *", "5 fields"),
        ("61 * * * *", "invalid cron"),
        ("CRON_TZ=Mars/Olympus 0 9 * * *", "time zone"),
    ],
)
def test_schedule_bad_cron_is_400(client: Client, cron: str | None, needle: str) -> None:
    headers = {"Upstash-Cron": cron} if cron else {}
    r = client.post(f"{P}/schedules/https://a.com/x", body=b"1", headers=headers)
    assert r.status == 400
    assert needle in r.error


def test_schedule_with_cron_tz_is_accepted(client: Client) -> None:
    r = client.post(
        f"{P}/schedules/https://a.com/x", body=b"1", headers={"Upstash-Cron": "CRON_TZ=America/New_York 0 9 * * 1-5"}
    )
    assert r.status == 200


# ---------------------------------------------------------------- routing, ledger, ids


def test_unknown_path_404_and_wrong_method_405(client: Client) -> None:
    r = client.get("/v1/qstash/nothing")
    assert r.status == 404 and "error" in r.json
    r = client.request("PUT", f"{P}/queues")
    assert r.status == 405
    assert "GET" in r.headers["Allow"]
    r = client.get(f"{P}/publish/https://example.com/x")
    assert r.status == 405 and "POST" in r.headers["Allow"]


def test_ledger_prices_from_the_seed(served: Served, client: Client) -> None:
    k = {"x-api-key": "acct1"}
    publish(client, **k)
    client.post(f"{P}/enqueue/q/https://a.com/x", body=b"{}", headers=k)
    client.post(
        f"{P}/batch", json_body=[{"destination": "https://a.com/1"}, {"destination": "https://a.com/2"}], headers=k
    )
    client.get(f"{P}/queues", headers=k)
    client.post(f"{P}/schedules/https://a.com/x", body=b"{}", headers={**k, "Upstash-Cron": "0 0 * * *"})
    led = client.get("/_sim/ledger?account=acct1").json
    assert Decimal(led["total"]) == Decimal("0.00001") * 4 + Decimal("0.001")
    assert [e["operation"] for e in led["entries"]] == [
        "publishMessage",
        "enqueueMessage",
        "batchMessages",
        "listQueues",
    ]
    assert led["entries"][2]["quantity"] == 2
    # a failed call is not charged
    client.get(f"{P}/queues/missing", headers=k)
    assert Decimal(client.get("/_sim/ledger?account=acct1").json["total"]) == Decimal("0.00104")


def test_same_seed_same_ids() -> None:
    from qstash_sim.server import ServerThread
    from qstash_sim.simulator import Simulator

    ids = []
    for _ in range(2):
        with ServerThread(Simulator(seed=42)) as srv:
            c = Client("127.0.0.1", srv.port)
            ids.append([c.post(f"{P}/publish/https://a.com/{i}", body=b"x").json["messageId"] for i in range(3)])
            c.close()
    assert ids[0] == ids[1]
    assert len(set(ids[0])) == 3


def test_control_plane_state_reset_and_journal(client: Client) -> None:
    mid = publish(client)
    journal = client.get("/_sim/journal?kind=request").json["entries"]
    assert journal[-1]["operation"] == "publishMessage" and journal[-1]["messageIds"] == [mid]
    state = client.get("/_sim/state").json["accounts"]
    assert [m["messageId"] for m in state["default"]["messages"]] == [mid]
    assert client.post("/_sim/reset", json_body={"seed": 5}).json == {"ok": True, "seed": 5, "order": "seq"}
    assert client.get("/_sim/state").json == {"accounts": {}}
    assert client.get(f"{P}/messages/{mid}").status == 404


# ---------------------------------------------------------------------------------------------- M4, H3


@pytest.mark.parametrize(
    "name", ["Transfer-Encoding", "Content-Length", "Connection", "Host", "TE", "Upgrade", "Keep-Alive", "Expect"]
)
def test_a_forwarded_framing_header_is_dropped_with_a_warning(client: Client, receiver: Receiver, name: str) -> None:
    value = {"Transfer-Encoding": "chunked", "Content-Length": "0", "Host": "admin.internal"}.get(name, "x")
    r = client.post(
        f"/v1/qstash/publish/{receiver.url('/framing')}",
        body=b'{"whole":"body"}',
        headers={f"Upstash-Forward-{name}": value, "Upstash-Forward-X-Kept": "yes", "Content-Type": "application/json"},
    )
    assert r.status == 200
    [got] = _wait_received(receiver, 1)
    assert got["body"] == b'{"whole":"body"}'  # never cut by a forwarded Content-Length
    assert got["headers"]["X-Kept"] == "yes"
    assert got["headers"].get("Host", "").startswith("127.0.0.1")
    assert "chunked" not in got["headers"].get("Transfer-Encoding", "")
    [warning] = [e for e in client.get("/_sim/journal?kind=warning").json["entries"]]
    assert f"Upstash-Forward-{name}: {name} is a connection/framing header; dropped" in warning["error"]


def test_our_delivery_headers_win_over_forwarded_ones(client: Client, receiver: Receiver) -> None:
    r = client.post(
        f"/v1/qstash/publish/{receiver.url('/ours')}",
        body=b"x",
        headers={"Upstash-Forward-Upstash-Signature": "forged", "Upstash-Forward-Upstash-Message-Id": "msg_fake"},
    )
    [got] = _wait_received(receiver, 1)
    assert got["headers"]["Upstash-Message-Id"] == r.json["messageId"]
    assert got["headers"]["Upstash-Signature"] != "forged"


def _wait_received(receiver: Receiver, n: int) -> list[dict[str, Any]]:
    import time

    deadline = time.monotonic() + 10  # a real socket delivery: bounded wait for the receiver thread
    while len(receiver.received) < n and time.monotonic() < deadline:
        time.sleep(0.01)
    return receiver.received


def test_batch_items_with_a_lone_surrogate_or_a_nested_retry_delay_are_400s(client: Client) -> None:
    body = b'[{"destination":"https://example.com/x","body":"\\ud800"}]'
    r = client.post("/v1/qstash/batch", body=body, headers={"Content-Type": "application/json"})
    assert r.status == 400 and r.error.startswith("body /0/body: not valid Unicode text")
    for delay in ("(" * 400 + "1" + ")" * 400, "-" * 5000 + "1"):
        r = client.post(
            "/v1/qstash/batch",
            json_body=[{"destination": "https://example.com/x", "headers": {"Upstash-Retry-Delay": delay}}],
        )
        assert r.status == 400 and r.error.startswith("body /0/headers/Upstash-Retry-Delay:"), r.error
    huge = client.post(
        "/v1/qstash/batch", json_body=[{"destination": "https://example.com/x", "headers": {"X-Big": "a" * 9000}}]
    )
    assert huge.status == 400 and "at most 8190 characters" in huge.error


def test_a_cron_that_never_fires_is_a_400_and_nothing_is_stored(client: Client) -> None:
    for cron in ("0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"):
        r = client.post("/v1/qstash/schedules/https://example.com/x", body=b"", headers={"Upstash-Cron": cron})
        assert r.status == 400 and "never fires" in r.error, (cron, r.error)
    assert client.get("/v1/qstash/schedules").json == []


def test_a_schedule_creation_with_a_bad_destination_is_a_400_not_a_405(client: Client) -> None:
    """L6: POST /schedules/000 is a schedule creation with a destination that is not an URL."""
    r = client.post("/v1/qstash/schedules/000", body=b"", headers={"Upstash-Cron": "* * * * *"})
    assert r.status == 400 and "invalid destination url" in r.error
    assert client.get("/v1/qstash/schedules/000").status == 404  # GET stays the schedule's


def test_callers_without_a_key_share_the_default_account(client: Client) -> None:
    """L8, a deliberate choice: no key means the account "default" (and x-api-key: default is that account),
    so a quick curl needs no set-up; two keys are two accounts that never see each other's objects."""
    mid = client.post("/v1/qstash/publish/https://example.com/x", body=b"x", headers={"Upstash-Delay": "1h"})
    mid = mid.json["messageId"]
    assert client.get(f"/v1/qstash/messages/{mid}", headers={"x-api-key": "default"}).status == 200
    assert client.get(f"/v1/qstash/messages/{mid}", headers={"x-api-key": "someone"}).status == 404
