"""``GET /v2/events`` and ``/v2/logs``: the messages' histories as log entries (key ``events``), QStash's
states (every one parsed by qstash-py's ``LogState``), filters, cursor."""

from __future__ import annotations

import pytest
from qstash.log import LogState

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_logs"}
DOWN = "https://down.example"


def _events(client: Client, query: str = "", path: str = "/v2/events") -> dict[str, object]:
    r = client.get(f"{path}{query}", headers=H)
    assert r.status == 200, r.body
    return dict(r.json)


def _states(client: Client, mid: str) -> list[str]:
    body = _events(client, f"?messageId={mid}&order=earliestFirst")
    return [e["state"] for e in body["events"]]  # type: ignore[union-attr]


def test_every_state_a_message_goes_through(served: Served, client: Client, receiver: Receiver) -> None:
    served.on_loop(
        lambda: served.sim.load_scenario(
            {"name": "d", "destinations": [{"name": "d", "match": f"{DOWN}/*", "respond": {"status": 503}}]}
        )
    )
    ok = client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers=H).json["messageId"]
    bad = client.post(
        f"/v2/publish/{DOWN}/x", body=b"x", headers={**H, "Upstash-Retries": "1", "Upstash-Retry-Delay": "1000"}
    ).json["messageId"]
    gone = client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers={**H, "Upstash-Delay": "1h"}).json[
        "messageId"
    ]
    client.delete(f"/v2/messages/{gone}", headers=H)
    served.advance("5s")
    assert _states(client, ok) == ["CREATED", "ACTIVE", "DELIVERED"]
    assert _states(client, bad) == ["CREATED", "ACTIVE", "ERROR", "RETRY", "ACTIVE", "ERROR", "FAILED"]
    assert _states(client, gone) == ["CREATED", "CANCEL_REQUESTED", "CANCELED"]
    every = _events(client)["events"]
    assert {e["state"] for e in every} == {s.value for s in LogState} - {"IN_PROGRESS"}  # type: ignore[union-attr]
    for e in every:  # type: ignore[union-attr]
        LogState(e["state"])  # qstash-py raises ValueError on any other spelling
    retry = next(e for e in every if e["state"] == "RETRY")  # type: ignore[union-attr]
    error = next(e for e in every if e["state"] == "ERROR")  # type: ignore[union-attr]
    assert retry["nextDeliveryTime"] == retry["time"] + 1000
    assert error["responseStatus"] == 503 and "503" in error["error"]
    assert _events(client, path="/v2/logs") == _events(client)


def test_filters(served: Served, client: Client, receiver: Receiver) -> None:
    client.post(
        "/v2/topics/g/endpoints", json_body={"endpoints": [{"url": receiver.url("/g"), "name": "e"}]}, headers=H
    )
    a = client.post(f"/v2/publish/{receiver.url('/a')}", body=b"x", headers={**H, "Upstash-Label": "red"}).json
    served.advance("1s")
    b = client.post("/v2/publish/g", body=b"x", headers=H).json[0]
    q = client.post(f"/v2/enqueue/jobs/{receiver.url('/q')}", body=b"x", headers={**H, "Upstash-Delay": "1h"}).json
    served.settle()

    def ids(query: str) -> set[str]:
        return {e["messageId"] for e in _events(client, query)["events"]}  # type: ignore[union-attr]

    assert ids("?label=red") == {a["messageId"]}
    assert ids("?topicName=g") == {b["messageId"]}
    assert ids("?queueName=jobs") == {q["messageId"]}
    assert ids(f"?url={receiver.url('/a')}") == {a["messageId"]}
    assert ids(f"?messageIds={a['messageId']}&messageIds={q['messageId']}") == {a["messageId"], q["messageId"]}
    assert ids("?state=IN_PROGRESS") == {a["messageId"], b["messageId"]}  # their ACTIVE entries
    assert ids("?state=CREATED") == {a["messageId"], b["messageId"], q["messageId"]}
    group_event = _events(client, "?topicName=g&state=DELIVERED")["events"][0]  # type: ignore[index]
    assert group_event["topicName"] == "g" and group_event["endpointName"] == "e"
    t0 = served.on_loop(lambda: served.sim.world.now)
    assert ids(f"?fromDate={t0}") == {b["messageId"], q["messageId"]}
    assert ids(f"?toDate={t0 - 1}") == {a["messageId"]}
    client.delete(f"/v2/messages/{q['messageId']}", headers=H)
    assert ids("?state=CANCELLED") == ids("?state=CANCELED") == {q["messageId"]}  # the docs' spelling too


def test_cursor_pages_through_every_event_once(served: Served, client: Client, receiver: Receiver) -> None:
    for i in range(4):
        client.post(f"/v2/publish/{receiver.url(f'/{i}')}", body=b"x", headers=H)
    served.settle()
    total = _events(client)["events"]
    assert len(total) == 12  # type: ignore[arg-type]
    seen, cursor, pages = [], None, 0
    while True:
        body = _events(client, "?count=5" + (f"&cursor={cursor}" if cursor else ""))
        seen.extend(body["events"])  # type: ignore[arg-type]
        pages += 1
        cursor = body.get("cursor")
        if not cursor:
            break
    assert pages == 3 and seen == total and body["logs"] == body["events"]
    times = [e["time"] for e in seen]
    assert times == sorted(times, reverse=True)  # newest first


@pytest.mark.parametrize(
    ("query", "message"),
    [("?state=DONE", "query state"), ("?cursor=abc", "query cursor"), ("?count=0", "query count")],
)
def test_bad_queries_are_400s(client: Client, query: str, message: str) -> None:
    r = client.get(f"/v2/events{query}", headers=H)
    assert r.status == 400 and message in r.error, r.error


@pytest.mark.parametrize("query", ["?queueName=", "?callerIp=", "?queueName=,"])
def test_an_empty_filter_value_is_refused_not_read_as_no_filter(client: Client, query: str) -> None:
    r = client.get(f"/v2/events{query}", headers=H)
    assert r.status == 400 and query[1:].split("=")[0] in r.json["error"]


def test_a_comma_separated_filter_splits_on_literal_commas_only(client: Client) -> None:
    # five labels, one of them holding an encoded comma: within the 5-item limit
    r = client.get("/v2/events?label=a%2Cb,c,d,e,f", headers=H)
    assert r.status == 200, r.body
    r = client.get("/v2/events?label=a,b,c,d,e,f", headers=H)
    assert r.status == 400 and "at most 5" in r.json["error"]
