"""The parity rows of the Sapiom gateway (``/v1/qstash``) with native QStash (``/v2``), over a real socket:
configuration in the destination's query string (``?upstash-delay=1m``, every lower-case ``upstash-*``
key) applied and removed from the destination URL, and a duplicate publish answered 202 with the first
message's id. Every answer is checked against openapi.yaml by the ``client`` fixture."""

from __future__ import annotations

import pytest

from conftest import Client, Receiver, Served

P = "/v1/qstash"
KEY = "tok_parity"
V1 = {"x-api-key": KEY}
V2 = {"Authorization": f"Bearer {KEY}"}


def test_query_configuration_is_applied_and_removed_from_the_destination(
    served: Served, client: Client, receiver: Receiver
) -> None:
    url = receiver.url("/q")
    r = client.post(
        f"{P}/publish/{url}?keep=1&upstash-delay=1m&Upstash-Forward-X-A=a%20b&upstash-method=PUT&also=2",
        body=b"x",
        headers=V1,
    )
    assert r.status == 200 and r.json["url"] == receiver.url("/q?keep=1&also=2")
    served.advance("59s")
    assert receiver.received == []  # delayed by the query's upstash-delay
    served.advance("1s")
    (got,) = receiver.received
    assert got["path"] == "/q?keep=1&also=2" and got["method"] == "PUT" and got["headers"]["X-A"] == "a b"
    assert not any(k.lower().startswith("upstash-forward") for k in got["headers"])


def test_enqueue_and_schedule_take_query_configuration_too(served: Served, client: Client, receiver: Receiver) -> None:
    r = client.post(f"{P}/enqueue/q1/{receiver.url('/e')}?upstash-retries=0&upstash-delay=5s", body=b"e", headers=V1)
    assert r.status == 200 and r.json["url"] == receiver.url("/e")
    m = client.get(f"{P}/messages/{r.json['messageId']}", headers=V1).json
    assert m["maxRetries"] == 0 and m["queueName"] == "q1"
    sched = {**V1, "Upstash-Cron": "* * * * *"}  # required as a header (on /v2 too)
    r = client.post(f"{P}/schedules/{receiver.url('/s')}?upstash-retries=2&x=1", body=b"s", headers=sched)
    assert r.status == 200
    s = client.get(f"{P}/schedules/{r.json['scheduleId']}", headers=V1).json
    assert s["retries"] == 2 and s["destination"] == receiver.url("/s?x=1")
    served.advance("1m")
    assert sorted(g["path"] for g in receiver.received) == ["/e", "/s?x=1"]


def test_a_real_header_wins_over_its_query_form(served: Served, client: Client, receiver: Receiver) -> None:
    r = client.post(f"{P}/publish/{receiver.url()}?upstash-delay=1h", body=b"x", headers={**V1, "Upstash-Delay": "0s"})
    served.settle()
    assert r.status == 200 and len(receiver.received) == 1


def test_a_percent_encoded_destination_has_its_query_configuration_read(
    served: Served, client: Client, receiver: Receiver
) -> None:
    raw = receiver.url("/enc?a=1&upstash-delay=10s")
    encoded = raw.replace(":", "%3A").replace("/", "%2F").replace("?", "%3F").replace("=", "%3D").replace("&", "%26")
    r = client.post(f"{P}/publish/{encoded}", body=b"x", headers=V1)
    assert r.status == 200 and r.json["url"] == receiver.url("/enc?a=1")
    served.advance("9s")
    assert receiver.received == []
    served.advance("1s")
    assert [g["path"] for g in receiver.received] == ["/enc?a=1"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("upstash-delay=soon", "query upstash-delay: "),
        ("upstash-retries=6", "query upstash-retries: "),  # the gateway allows 0-5
        ("upstash-method=FETCH", "query upstash-method: "),
    ],
)
def test_a_bad_query_setting_is_a_400_naming_it(client: Client, receiver: Receiver, query: str, message: str) -> None:
    r = client.post(f"{P}/publish/{receiver.url()}?{query}", body=b"x", headers=V1)
    assert r.status == 400 and r.error.startswith(message), r.error


def test_stripped_settings_stay_stripped_in_the_query_and_unknown_ones_warn(
    served: Served, client: Client, receiver: Receiver
) -> None:
    hooks = Receiver()
    try:
        r = client.post(
            f"{P}/publish/{receiver.url()}?upstash-callback={hooks.url('/cb')}&upstash-dealy=1m",
            body=b"x",
            headers=V1,
        )
        assert r.status == 200 and r.json["url"] == receiver.url()
        served.advance("1s")
        assert len(receiver.received) == 1 and hooks.received == []
        warnings = client.get(f"/_sim/journal?kind=warning&account={KEY}").json["entries"]
        assert any("upstash-dealy" in w["error"] and "upstash-delay" in w["error"] for w in warnings), warnings
    finally:
        hooks.close()


def test_a_duplicate_publish_or_enqueue_answers_202_with_the_first_id(served: Served, client: Client) -> None:
    dest = "https://api.example.com/orders"
    first = client.post(f"{P}/publish/{dest}", body=b"a", headers={**V1, "Upstash-Deduplication-Id": "o-1"})
    again = client.post(f"{P}/publish/{dest}", body=b"b", headers={**V1, "Upstash-Deduplication-Id": "o-1"})
    assert first.status == 200 and "deduplicated" not in first.json
    assert again.status == 202 and again.json == {
        "messageId": first.json["messageId"],
        "url": dest,
        "deduplicated": True,
    }
    cb = {**V1, "Upstash-Content-Based-Deduplication": "true"}
    e1 = client.post(f"{P}/enqueue/q/{dest}", body=b"same", headers=cb)
    e2 = client.post(f"{P}/enqueue/q/{dest}", body=b"same", headers=cb)
    assert (e1.status, e2.status) == (200, 202) and e2.json["messageId"] == e1.json["messageId"]
    # the query form of the dedup id is a duplicate too
    q = client.post(f"{P}/publish/{dest}?upstash-deduplication-id=o-1", body=b"c", headers=V1)
    assert q.status == 202 and q.json["messageId"] == first.json["messageId"]


def test_both_surfaces_answer_a_duplicate_the_same_way(served: Served, client: Client) -> None:
    dest = "https://api.example.com/parity"
    v2 = client.post(f"/v2/publish/{dest}", body=b"x", headers={**V2, "Upstash-Deduplication-Id": "p-1"})
    v1 = client.post(f"{P}/publish/{dest}?upstash-deduplication-id=p-1", body=b"y", headers=V1)
    v2_again = client.post(f"/v2/publish/{dest}?upstash-deduplication-id=p-1", body=b"z", headers=V2)
    assert (v2.status, v1.status, v2_again.status) == (200, 202, 202)
    assert v1.json == v2_again.json == {"messageId": v2.json["messageId"], "url": dest, "deduplicated": True}


def test_a_batch_stays_200_with_each_duplicate_item_marked(client: Client) -> None:
    items = [
        {"destination": "https://api.example.com/b", "headers": {"Upstash-Deduplication-Id": "b-1"}, "body": "1"},
        {"destination": "https://api.example.com/b", "headers": {"Upstash-Deduplication-Id": "b-1"}, "body": "2"},
    ]
    r = client.post(f"{P}/batch", json_body=items, headers=V1)
    assert r.status == 200 and "deduplicated" not in r.json[0] and r.json[1]["deduplicated"] is True
    r = client.post(f"{P}/batch", json_body=items[:1], headers=V1)
    assert r.status == 200 and r.json[0]["deduplicated"] is True
