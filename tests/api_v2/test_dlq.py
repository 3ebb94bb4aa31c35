"""``/v2/dlq``: list (filters, cursor, count), get, delete one and many, retry one and many (new ids)."""

from __future__ import annotations

import pytest

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_dlq"}
DOWN = "https://down.example"  # a virtual destination that answers 500
GONE = "https://gone.example"  # one that resets the connection (no answer at all)


@pytest.fixture
def failing(served: Served) -> Served:
    served.on_loop(
        lambda: served.sim.load_scenario(
            {
                "name": "down",
                "destinations": [
                    {
                        "name": "down",
                        "match": f"{DOWN}/*",
                        "respond": {"status": 500, "body": "nope", "headers": {"X-Why": "down"}},
                    },
                    {"name": "gone", "match": f"{GONE}/*", "respond": {"reset": True}},
                ],
            }
        )
    )
    return served


def _fail(served: Served, client: Client, url: str, **headers: str) -> str:
    r = client.post(f"/v2/publish/{url}", body=b"b", headers={**H, "Upstash-Retries": "0", **headers})
    served.settle()
    return str(r.json["messageId"])


def _dlq(client: Client, query: str = "") -> dict[str, object]:
    r = client.get(f"/v2/dlq{query}", headers=H)
    assert r.status == 200, r.body
    return dict(r.json)


def test_a_failed_message_is_in_the_dlq_with_its_last_answer(failing: Served, client: Client) -> None:
    mid = _fail(failing, client, f"{DOWN}/a", **{"Upstash-Label": "l1"})
    (e,) = _dlq(client)["messages"]  # type: ignore[misc]
    assert e["messageId"] == mid and e["url"] == f"{DOWN}/a" and e["responseStatus"] == 500
    assert e["responseBody"] == "nope" and e["responseHeader"]["X-Why"] == ["down"] and e["label"] == "l1"
    assert client.get(f"/v2/dlq/{e['dlqId']}", headers=H).json == e
    nid = _fail(failing, client, f"{GONE}/b")
    entry = next(x for x in _dlq(client)["messages"] if x["messageId"] == nid)  # type: ignore[attr-defined]
    assert entry["responseStatus"] == 0 and entry["responseBody"]  # no answer: why, as text
    assert client.get(f"/v2/messages/{mid}", headers=H).status == 404  # final: gone from /v2/messages


def test_filters_cursor_and_order(failing: Served, client: Client) -> None:
    ids = []
    for i in range(5):
        ids.append(_fail(failing, client, f"{DOWN}/{i % 2}"))
        failing.advance("1s")
    page1 = _dlq(client, "?count=2")
    assert [e["messageId"] for e in page1["messages"]] == ids[:2] and page1["cursor"]  # type: ignore[union-attr]
    page2 = _dlq(client, f"?count=2&cursor={page1['cursor']}")
    page3 = _dlq(client, f"?count=2&cursor={page2['cursor']}")
    assert [e["messageId"] for e in page2["messages"]] == ids[2:4]  # type: ignore[union-attr]
    assert [e["messageId"] for e in page3["messages"]] == ids[4:] and "cursor" not in page3  # type: ignore[union-attr]
    only1 = _dlq(client, f"?url={DOWN}/1")["messages"]
    assert [e["messageId"] for e in only1] == [ids[1], ids[3]]  # type: ignore[union-attr]
    assert _dlq(client, f"?messageId={ids[2]}&responseStatus=500")["messages"][0]["messageId"] == ids[2]  # type: ignore[index]
    assert _dlq(client, "?responseStatus=404")["messages"] == []
    latest = _dlq(client, "?order=latestFirst&count=1")["messages"]
    assert [e["messageId"] for e in latest] == [ids[-1]]  # type: ignore[union-attr]
    first = failing.on_loop(lambda: failing.sim.messages("tok_dlq")[0].created_ms)
    assert len(_dlq(client, f"?fromDate={first + 1000}&toDate={first + 2000}")["messages"]) == 2  # type: ignore[arg-type]
    r = client.get("/v2/dlq?cursor=not-a-cursor", headers=H)
    assert r.status == 400 and "query cursor" in r.error


def test_delete_one_and_many(failing: Served, client: Client) -> None:
    for i in range(5):
        _fail(failing, client, f"{DOWN}/{i}")
    dlq_ids = [e["dlqId"] for e in _dlq(client)["messages"]]  # type: ignore[union-attr]
    r = client.delete(f"/v2/dlq/{dlq_ids[0]}", headers=H)
    assert r.status == 200 and r.json == {"deleted": 1}
    assert client.delete(f"/v2/dlq/{dlq_ids[0]}", headers=H).status == 404  # a second delete fails
    # qstash-py: a JSON body; unknown ids are skipped
    r = client.delete("/v2/dlq", json_body={"dlqIds": [dlq_ids[1], "1-0"]}, headers=H)
    assert r.json == {"deleted": 1}
    assert client.delete("/v2/dlq", json_body={"dlqIds": []}, headers=H).json == {"deleted": 0}
    # qstash-js: repeated query parameters, or "all" paginated by count
    assert client.delete(f"/v2/dlq?dlqIds={dlq_ids[2]}", headers=H).json == {"deleted": 1}
    r = client.delete("/v2/dlq?count=1", headers=H)
    assert r.json["deleted"] == 1 and r.json["cursor"] == dlq_ids[3]
    assert client.delete(f"/v2/dlq?count=1&cursor={r.json['cursor']}", headers=H).json == {"deleted": 1}
    assert _dlq(client)["messages"] == []


def test_retry_one_and_many_publishes_new_messages(failing: Served, client: Client, receiver: Receiver) -> None:
    a = _fail(failing, client, f"{DOWN}/a")
    b = _fail(failing, client, f"{DOWN}/b")
    dlq_a, dlq_b = (e["dlqId"] for e in _dlq(client)["messages"])  # type: ignore[union-attr]
    r = client.post(f"/v2/dlq/retry/{dlq_a}", headers={**H, "Upstash-Retries": "2"})
    assert r.status == 201 and r.json["messageId"] not in (a, b)
    retried = failing.on_loop(lambda: failing.sim.account("tok_dlq").messages[r.json["messageId"]])
    assert retried.url == f"{DOWN}/a" and retried.body == b"b" and retried.max_retries == 2
    # by ids: all or nothing
    r = client.post(f"/v2/dlq/retry?dlqIds={dlq_b}&dlqIds=9-9", headers=H)
    assert r.status == 404 and "9-9" in r.error
    r = client.post(f"/v2/dlq/retry?dlqIds={dlq_b}", headers=H)
    assert r.status == 201 and len(r.json["responses"]) == 1 and "cursor" not in r.json
    assert all(e["dlqId"] not in (dlq_a, dlq_b) for e in _dlq(client)["messages"])  # type: ignore[union-attr]
    failing.advance("1d")  # the retried copies fail again (3 attempts for the one with 2 retries)
    assert len(_dlq(client)["messages"]) == 2  # type: ignore[arg-type]
    r = client.post("/v2/dlq/retry?count=1", headers=H)
    assert r.status == 201 and len(r.json["responses"]) == 1 and r.json["cursor"]
    r = client.post(f"/v2/dlq/retry?count=1&cursor={r.json['cursor']}", headers=H)
    assert r.status == 201 and len(r.json["responses"]) == 1
    assert client.post("/v2/dlq/retry/1-0", headers=H).status == 404


def test_bad_dlq_requests(client: Client) -> None:
    assert client.get("/v2/dlq/1-0", headers=H).status == 404
    r = client.get("/v2/dlq/nope", headers=H)
    assert r.status == 400 and "path dlqId" in r.error
    r = client.get("/v2/dlq?count=0", headers=H)
    assert r.status == 400 and "query count" in r.error
    r = client.delete("/v2/dlq", json_body={"dlqIds": "x"}, headers=H)
    assert r.status == 400 and "body /dlqIds" in r.error
    r = client.post("/v2/dlq/retry/1-0", headers={**H, "Upstash-Retries": "lots"})
    assert r.status == 400 and "header Upstash-Retries" in r.error
    assert client.request("POST", "/v2/dlq/abc", headers=H).status == 405
