"""``/v2/publish``, ``/v2/enqueue``, ``/v2/batch`` over a real loopback socket, every answer checked against
``openapi.yaml`` by the test client. Time moves only with ``served.advance`` / ``settle``."""

from __future__ import annotations

import json

import pytest
from qstash import Receiver as QstashReceiver

from conftest import Client, Receiver, Served

TOKEN = "tok_publish"
H = {"Authorization": f"Bearer {TOKEN}"}


def _keys(client: Client) -> QstashReceiver:
    keys = client.get(f"/_sim/signing-keys?account={TOKEN}").json
    return QstashReceiver(keys["current"], keys["next"])


def test_publish_to_a_url_delivers_a_signed_message(served: Served, client: Client, receiver: Receiver) -> None:
    url = receiver.url("/hook?source=test")
    r = client.post(
        f"/v2/publish/{url}",
        body=b'{"order":1}',
        headers={**H, "Content-Type": "application/json", "Upstash-Forward-X-Trace": "t1", "Upstash-Method": "PUT"},
    )
    assert r.status == 200
    assert set(r.json) == {"messageId", "url"} and r.json["url"] == url
    served.settle()
    (got,) = receiver.received
    h = got["headers"]
    assert got["method"] == "PUT" and got["path"] == "/hook?source=test" and got["body"] == b'{"order":1}'
    assert h["X-Trace"] == "t1" and h["Content-Type"] == "application/json"
    assert h["Upstash-Message-Id"] == r.json["messageId"] and "Upstash-Topic-Name" not in h
    assert not any(k.lower().startswith("upstash-forward") for k in h)
    _keys(client).verify(signature=h["Upstash-Signature"], body='{"order":1}', url=url)


def test_configuration_in_the_query_string_is_applied_and_removed(
    served: Served, client: Client, receiver: Receiver
) -> None:
    url = receiver.url("/q")
    r = client.post(
        f"/v2/publish/{url}?keep=1&upstash-delay=1m&Upstash-Forward-X-A=a%20b&qstash_token={TOKEN}&also=2",
        body=b"x",
    )
    assert r.status == 200 and r.json["url"] == receiver.url("/q?keep=1&also=2")
    served.settle()
    assert receiver.received == []  # delayed by the query's upstash-delay
    served.advance("61s")
    (got,) = receiver.received
    assert got["path"] == "/q?keep=1&also=2" and got["headers"]["Upstash-Forward-X-A"[16:]] == "a b"


def test_a_real_header_wins_over_its_query_form(served: Served, client: Client, receiver: Receiver) -> None:
    r = client.post(f"/v2/publish/{receiver.url()}?upstash-delay=1h", body=b"x", headers={**H, "Upstash-Delay": "0s"})
    served.settle()
    assert r.status == 200 and len(receiver.received) == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("upstash-delay=soon", "query upstash-delay: must match"),
        ("upstash-retries=101", "query upstash-retries: expected integer"),
        ("upstash-method=FETCH", "query upstash-method: expected one of"),
    ],
)
def test_a_bad_query_setting_is_a_400_naming_it(client: Client, receiver: Receiver, query: str, message: str) -> None:
    r = client.post(f"/v2/publish/{receiver.url()}?{query}", body=b"x", headers=H)
    assert r.status == 400 and r.error.startswith(message), r.error


def test_a_percent_encoded_destination_is_decoded_once(served: Served, client: Client, receiver: Receiver) -> None:
    encoded = receiver.url("/enc?a=1").replace(":", "%3A").replace("/", "%2F").replace("?", "%3F").replace("=", "%3D")
    r = client.post(f"/v2/publish/{encoded}", body=b"x", headers=H)
    assert r.status == 200 and r.json["url"] == receiver.url("/enc?a=1")
    served.settle()
    assert receiver.received[0]["path"] == "/enc?a=1"


@pytest.mark.parametrize(
    ("dest", "status", "message"),
    [
        ("example.com/x", 400, "invalid destination url: endpoint has invalid scheme"),
        ("not a group", 400, "invalid destination url: endpoint has invalid scheme"),
        ("no-such-group", 404, "url group no-such-group not found"),
        ("https://example.com/../etc", 400, "path traversal"),
    ],
)
def test_bad_destinations(client: Client, dest: str, status: int, message: str) -> None:
    r = client.post(f"/v2/publish/{dest.replace(' ', '%20')}", body=b"x", headers=H)
    assert r.status == status and message in r.error, r.error


@pytest.mark.parametrize(
    ("header", "value", "message"),
    [
        ("Upstash-Delay", "tomorrow", "header Upstash-Delay: must match"),
        ("Upstash-Retries", "-1", "header Upstash-Retries: expected"),
        ("Upstash-Not-Before", "soon", "header Upstash-Not-Before: expected"),
        ("Upstash-Retry-Delay", "pow(2,", "header Upstash-Retry-Delay"),
        ("Upstash-Callback", "ftp://x", "header Upstash-Callback"),
        ("Upstash-Flow-Control-Value", "speed=3", "header Upstash-Flow-Control-Value"),
        ("Upstash-Content-Based-Deduplication", "yes", "header Upstash-Content-Based-Deduplication"),
    ],
)
def test_bad_headers_are_400s_naming_the_header(
    client: Client, receiver: Receiver, header: str, value: str, message: str
) -> None:
    extra = {"Upstash-Flow-Control-Key": "k"} if header == "Upstash-Flow-Control-Value" else {}
    r = client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers={**H, **extra, header: value})
    assert r.status == 400 and message in r.error, r.error


def test_unknown_upstash_header_is_a_warning_and_a_400_when_strict(
    served: Served, client: Client, receiver: Receiver
) -> None:
    r = client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers={**H, "Upstash-Retrys": "2"})
    assert r.status == 200
    warnings = client.get("/_sim/journal?kind=warning").json["entries"]
    assert any("Upstash-Retrys" in w["error"] or "Upstash-Retrys" in str(w) for w in warnings)
    served.sim.strict = True
    r = client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers={**H, "Upstash-Retrys": "2"})
    assert r.status == 400 and "did you mean Upstash-Retries" in r.error


def test_publish_to_a_url_group_fans_out_with_the_topic_name(
    served: Served, client: Client, receiver: Receiver
) -> None:
    endpoints = [{"url": receiver.url("/a"), "name": "first"}, {"url": receiver.url("/b")}]
    assert client.post("/v2/topics/orders/endpoints", json_body={"endpoints": endpoints}, headers=H).status == 200
    r = client.post("/v2/publish/orders", body=b"hello", headers={**H, "Content-Type": "text/plain"})
    assert r.status == 200 and isinstance(r.json, list)
    assert [e["url"] for e in r.json] == [receiver.url("/a"), receiver.url("/b")]
    assert len({e["messageId"] for e in r.json}) == 2
    served.settle()
    got = sorted(receiver.received, key=lambda x: x["path"])
    assert [g["path"] for g in got] == ["/a", "/b"]
    assert all(g["headers"]["Upstash-Topic-Name"] == "orders" and g["body"] == b"hello" for g in got)
    ids = {g["headers"]["Upstash-Message-Id"] for g in got}
    assert ids == {e["messageId"] for e in r.json}
    for g in got:
        _keys(client).verify(signature=g["headers"]["Upstash-Signature"], body="hello", url=receiver.url(g["path"]))


def test_a_duplicate_answers_202_with_the_first_id(served: Served, client: Client, receiver: Receiver) -> None:
    dedup = {**H, "Upstash-Deduplication-Id": "d-1"}
    first = client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers=dedup)
    again = client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers=dedup)
    assert first.status == 200 and again.status == 202
    assert again.json == {"messageId": first.json["messageId"], "url": receiver.url(), "deduplicated": True}
    # content-based, with the Python SDK's spelling of true
    content = {**H, "Upstash-Content-Based-Deduplication": "True"}
    a = client.post(f"/v2/publish/{receiver.url('/c')}", body=b"same", headers=content)
    b = client.post(f"/v2/publish/{receiver.url('/c')}", body=b"same", headers=content)
    c = client.post(f"/v2/publish/{receiver.url('/c')}", body=b"other", headers=content)
    assert (a.status, b.status, c.status) == (200, 202, 200)
    assert b.json["messageId"] == a.json["messageId"] != c.json["messageId"]
    served.settle()
    assert len(receiver.received) == 3


def test_a_duplicate_group_publish_is_202_for_every_endpoint(client: Client, receiver: Receiver) -> None:
    eps = {"endpoints": [{"url": receiver.url("/a")}, {"url": receiver.url("/b")}]}
    client.post("/v2/topics/g/endpoints", json_body=eps, headers=H)
    dedup = {**H, "Upstash-Deduplication-Id": "same"}
    first = client.post("/v2/publish/g", body=b"x", headers=dedup)
    again = client.post("/v2/publish/g", body=b"x", headers=dedup)
    assert first.status == 200 and len({e["messageId"] for e in first.json}) == 2  # not deduplicated by each other
    assert again.status == 202 and all(e["deduplicated"] for e in again.json)
    assert [e["messageId"] for e in again.json] == [e["messageId"] for e in first.json]


def test_enqueue_creates_the_queue_and_delivers_in_order(served: Served, client: Client, receiver: Receiver) -> None:
    ids = []
    for i in range(3):
        r = client.post(f"/v2/enqueue/jobs/{receiver.url(f'/{i}')}", body=str(i).encode(), headers=H)
        assert r.status == 200 and set(r.json) == {"messageId", "url"}
        ids.append(r.json["messageId"])
    q = client.get("/v2/queues/jobs", headers=H).json
    assert q["name"] == "jobs" and q["parallelism"] == 1 and q["paused"] is False
    served.advance("1s")
    assert [g["headers"]["Upstash-Message-Id"] for g in receiver.received] == ids
    assert client.get("/v2/queues/jobs", headers=H).json["lag"] == 0


def test_enqueue_to_a_group_and_bad_queue_names(served: Served, client: Client, receiver: Receiver) -> None:
    client.post("/v2/topics/g/endpoints", json_body={"endpoints": [{"url": receiver.url("/e")}]}, headers=H)
    r = client.post("/v2/enqueue/q1/g", body=b"x", headers=H)
    assert r.status == 200 and isinstance(r.json, list) and r.json[0]["url"] == receiver.url("/e")
    served.settle()
    assert receiver.received[0]["headers"]["Upstash-Topic-Name"] == "g"
    bad = client.post(f"/v2/enqueue/a%20b/{receiver.url()}", body=b"x", headers=H)
    assert bad.status == 400 and "path queueName" in bad.error


def test_batch_python_and_typescript_item_shapes(served: Served, client: Client, receiver: Receiver) -> None:
    client.post("/v2/topics/g/endpoints", json_body={"endpoints": [{"url": receiver.url("/g1")}]}, headers=H)
    items = [
        # qstash-py: Title-Case headers, "queue": null
        {
            "destination": receiver.url("/py"),
            "headers": {"Upstash-Retries": "1", "Content-Type": "text/plain"},
            "body": "a",
            "queue": None,
        },
        # qstash-js: lower-case headers with upstash-method and telemetry, no queue key
        {
            "destination": receiver.url("/ts"),
            "headers": {
                "upstash-method": "POST",
                "upstash-telemetry-sdk": "upstash-qstash-js@2.12.0",
                "upstash-forward-x-b": "2",
            },
            "body": "b",
        },
        {"destination": "g", "queue": "bq"},
        {"destination": receiver.url("/nobody"), "body": None, "headers": None},
    ]
    r = client.post("/v2/batch", json_body=items, headers=H)
    assert r.status == 200
    assert [type(x).__name__ for x in r.json] == ["dict", "dict", "list", "dict"]
    assert r.json[2][0]["url"] == receiver.url("/g1")
    served.advance("1s")
    by_path = {g["path"]: g for g in receiver.received}
    assert set(by_path) == {"/py", "/ts", "/g1", "/nobody"}
    assert by_path["/py"]["headers"]["Content-Type"] == "text/plain" and by_path["/py"]["body"] == b"a"
    assert by_path["/ts"]["headers"]["x-b"] == "2" and "upstash-telemetry-sdk" not in by_path["/ts"]["headers"]
    assert by_path["/g1"]["headers"]["Upstash-Topic-Name"] == "g" and by_path["/nobody"]["body"] == b""
    assert client.get("/v2/queues/bq", headers=H).status == 200


@pytest.mark.parametrize(
    ("items", "status", "message"),
    [
        ([{"destination": "https://example.com/a"}, {"destination": "ftp://x"}], 400, "body /1/destination"),
        (
            [{"destination": "https://example.com/a", "headers": {"Upstash-Delay": "later"}}],
            400,
            "body /0/headers/Upstash-Delay",
        ),
        ([{"destination": "https://example.com/a"}, {"destination": "nogroup"}], 404, "body /1/destination"),
        ([{"url": "https://example.com/a"}], 400, "body /0"),
        ([{"destination": "https://example.com/a", "queue": "a b"}], 400, "body /0/queue"),
        ({"destination": "https://example.com/a"}, 400, "body"),
    ],
)
def test_a_bad_batch_item_rejects_the_whole_batch(
    served: Served, client: Client, items: object, status: int, message: str
) -> None:
    r = client.post("/v2/batch", json_body=items, headers=H)
    assert r.status == status and message in r.error, r.error
    assert served.on_loop(lambda: served.sim.messages(TOKEN)) == []


def test_a_body_over_the_limit_is_413(client: Client) -> None:
    r = client.post("/v2/publish/https://example.com/big", body=b"x" * (1024 * 1024 + 1), headers=H)
    assert r.status == 413 and "over the limit" in r.error


def test_wrong_method_is_405_and_unknown_paths_404(client: Client) -> None:
    r = client.get("/v2/publish/https://example.com/x", headers=H)
    assert r.status == 405 and r.headers["Allow"] == "POST"
    r = client.get("/v2/nothing-here", headers=H)
    assert r.status == 404 and r.json == {"error": "no such route: GET /v2/nothing-here"}


def test_callbacks_are_delivered_after_each_attempt_and_on_failure(served: Served, client: Client) -> None:
    failing = Receiver([500])
    hooks = Receiver()
    try:
        r = client.post(
            f"/v2/publish/{failing.url('/flaky')}",
            body=b"payload",
            headers={
                **H,
                "Upstash-Retries": "1",
                "Upstash-Retry-Delay": "1000",
                "Upstash-Callback": hooks.url("/cb"),
                "Upstash-Callback-X-Py-Style": "1",  # qstash-py's spelling, without -Forward-
                "Upstash-Failure-Callback": hooks.url("/failed"),
                "Upstash-Failure-Callback-Forward-X-F": "2",
            },
        )
        mid = r.json["messageId"]
        served.advance("2s")
        assert len(failing.received) == 2
        served.advance("1s")  # the callbacks' own deliveries
        cbs = [g for g in hooks.received if g["path"] == "/cb"]
        (failed,) = [g for g in hooks.received if g["path"] == "/failed"]
        assert len(cbs) == 2 and all(g["headers"]["X-Py-Style"] == "1" for g in cbs)
        payloads = [json.loads(g["body"]) for g in cbs]
        assert sorted(p["retried"] for p in payloads) == [0, 1]
        assert all(p["status"] == 500 and p["sourceMessageId"] == mid for p in payloads)
        fp = json.loads(failed["body"])
        assert failed["headers"]["X-F"] == "2" and fp["dlqId"] and fp["maxRetries"] == 1
        assert fp["sourceBody"] == "cGF5bG9hZA=="  # base64 of the source body
        assert client.get(f"/v2/dlq/{fp['dlqId']}", headers=H).json["messageId"] == mid
    finally:
        failing.close()
        hooks.close()
