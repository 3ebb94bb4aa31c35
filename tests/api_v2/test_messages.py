"""``/v2/messages``: get a pending message, cancel one, cancel many (qstash-js' query form, qstash-py's body)."""

from __future__ import annotations

import pytest

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_messages"}


def _publish(client: Client, url: str, **headers: str) -> str:
    r = client.post(f"/v2/publish/{url}", body=b"body", headers={**H, **headers})
    assert r.status == 200, r.body
    return str(r.json["messageId"])


def test_get_a_delayed_message_then_404_once_delivered(served: Served, client: Client, receiver: Receiver) -> None:
    mid = _publish(
        client,
        receiver.url("/later"),
        **{"Upstash-Delay": "10s", "Upstash-Label": "l1,l2", "Upstash-Forward-X-A": "1", "Content-Type": "text/plain"},
        **{"Upstash-Retry-Delay": "1000", "Upstash-Callback": "https://example.com/cb"},
        **{"Upstash-Flow-Control-Key": "fk", "Upstash-Flow-Control-Value": "parallelism=2, rate=5, period=1m"},
    )
    m = client.get(f"/v2/messages/{mid}", headers=H).json
    created = m["createdAt"]
    assert m["messageId"] == mid and m["url"] == receiver.url("/later") and m["method"] == "POST"
    assert m["notBefore"] == created + 10_000 and m["maxRetries"] == 3 and m["body"] == "body"
    assert m["header"] == {"X-A": ["1"], "Content-Type": ["text/plain"]}
    assert m["label"] == "l1" and m["labels"] == ["l1", "l2"] and m["retryDelayExpression"] == "1000"
    assert m["callback"] == "https://example.com/cb" and m["callerIP"] == m["callerIp"] == "127.0.0.1"
    assert (m["flowControlKey"], m["parallelism"], m["rate"], m["period"]) == ("fk", 2, 5, 60)
    assert None not in m.values()
    served.advance("11s")
    assert len(receiver.received) == 1
    r = client.get(f"/v2/messages/{mid}", headers=H)
    assert r.status == 404 and mid in r.error
    # the Sapiom surface, over the same account, still shows it (by design: it keeps final messages)
    v1 = client.get(f"/v1/qstash/messages/{mid}", headers={"x-api-key": "tok_messages"}).json
    assert v1["state"] == "delivered"


def test_redacted_fields_are_hidden_in_answers_but_delivered(
    served: Served, client: Client, receiver: Receiver
) -> None:
    mid = _publish(
        client,
        receiver.url(),
        **{"Upstash-Delay": "5s", "Upstash-Forward-Authorization": "secret", "Upstash-Forward-X-Keep": "k"},
        **{"Upstash-Redact-Fields": "body,header[Authorization]"},
    )
    m = client.get(f"/v2/messages/{mid}", headers=H).json
    assert m["body"].startswith("REDACTED:") and m["header"]["Authorization"][0].startswith("REDACTED:")
    assert m["header"]["X-Keep"] == ["k"]
    served.advance("6s")
    got = receiver.received[0]
    assert got["body"] == b"body" and got["headers"]["Authorization"] == "secret"


def test_cancel_one_answers_202_with_a_json_body_then_404(served: Served, client: Client, receiver: Receiver) -> None:
    mid = _publish(client, receiver.url(), **{"Upstash-Delay": "1m"})
    r = client.delete(f"/v2/messages/{mid}", headers=H)
    assert r.status == 202 and r.json == {"cancelled": 1} and r.headers["Content-Type"].startswith("application/json")
    assert client.delete(f"/v2/messages/{mid}", headers=H).status == 404
    assert client.get(f"/v2/messages/{mid}", headers=H).status == 404
    served.advance("2m")
    assert receiver.received == []
    states = [e["state"] for e in client.get(f"/v2/events?messageId={mid}", headers=H).json["events"]]
    assert states == ["CANCELED", "CANCEL_REQUESTED", "CREATED"]  # newest first


def test_cancel_many_by_ids_in_the_body_and_in_the_query(client: Client, receiver: Receiver) -> None:
    ids = [_publish(client, receiver.url(f"/{i}"), **{"Upstash-Delay": "1h"}) for i in range(4)]
    # qstash-py: a JSON body; unknown ids are skipped
    r = client.delete("/v2/messages", json_body={"messageIds": [ids[0], "msg_unknown"]}, headers=H)
    assert r.status == 202 and r.json == {"cancelled": 1}
    # qstash-py cancel_many([]): an empty list selects nothing (never everything)
    assert client.delete("/v2/messages", json_body={"messageIds": []}, headers=H).json == {"cancelled": 0}
    # qstash-js: repeated query parameters
    r = client.delete(f"/v2/messages?messageIds={ids[1]}&messageIds={ids[2]}", headers=H)
    assert r.json == {"cancelled": 2}
    assert client.get(f"/v2/messages/{ids[3]}", headers=H).status == 200


def test_cancel_many_by_filters_and_all(client: Client, receiver: Receiver) -> None:
    a = _publish(client, receiver.url("/a"), **{"Upstash-Delay": "1h", "Upstash-Label": "red"})
    b = _publish(client, receiver.url("/b"), **{"Upstash-Delay": "1h", "Upstash-Label": "blue"})
    q = client.post(f"/v2/enqueue/jobs/{receiver.url('/q')}", body=b"x", headers={**H, "Upstash-Delay": "1h"})
    qid = q.json["messageId"]
    assert client.delete("/v2/messages?label=red&count=100", headers=H).json == {"cancelled": 1}
    assert client.get(f"/v2/messages/{a}", headers=H).status == 404
    assert client.delete("/v2/messages?queueName=jobs", headers=H).json == {"cancelled": 1}
    assert client.get(f"/v2/messages/{qid}", headers=H).status == 404
    host = receiver.url().split("/")[2]
    assert client.delete(f"/v2/messages?host={host}&path=/nope", headers=H).json == {"cancelled": 0}
    # qstash-js {all: true} sends only ?count=100; qstash-py cancel_all() sends nothing
    assert client.delete("/v2/messages?count=100", headers=H).json == {"cancelled": 1}
    assert client.get(f"/v2/messages/{b}", headers=H).status == 404
    assert client.delete("/v2/messages", headers=H).json == {"cancelled": 0}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ids": ["a"]}, "body"),
        ({"messageIds": "msg_a"}, "body /messageIds"),
        ({"fromDate": "yesterday"}, "body /fromDate"),
    ],
)
def test_cancel_many_with_a_bad_body_is_a_400(client: Client, body: object, message: str) -> None:
    r = client.delete("/v2/messages", json_body=body, headers=H)
    assert r.status == 400 and message in r.error, r.error


def test_bad_query_filters_are_400s(client: Client) -> None:
    r = client.delete("/v2/messages?fromDate=soon", headers=H)
    assert r.status == 400 and "query fromDate" in r.error
    r = client.delete("/v2/messages?topicName=a%20b", headers=H)
    assert r.status == 400 and "query topicName" in r.error


def test_another_accounts_message_is_unknown(client: Client, receiver: Receiver) -> None:
    mid = _publish(client, receiver.url(), **{"Upstash-Delay": "1h"})
    other = {"Authorization": "Bearer someone-else"}
    assert client.get(f"/v2/messages/{mid}", headers=other).status == 404
    assert client.delete(f"/v2/messages/{mid}", headers=other).status == 404
    assert client.delete("/v2/messages", headers=other).json == {"cancelled": 0}
    assert client.get(f"/v2/messages/{mid}", headers=H).status == 200
