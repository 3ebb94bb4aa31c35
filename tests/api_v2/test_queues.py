"""``/v2/queues``: upsert with parallelism (N at once, never more), list, get (lag), delete, pause, resume."""

from __future__ import annotations

import pytest

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_queues"}
SLOW = "https://slow.example"  # a virtual destination that takes 10 s (virtual) to answer


def _slow(served: Served) -> None:
    served.on_loop(
        lambda: served.sim.load_scenario(
            {"name": "slow", "destinations": [{"name": "slow", "match": f"{SLOW}/*", "respond": {"hang": "10s"}}]}
        )
    )


def _starts(served: Served) -> list[int]:
    """When each attempt of the account started, in order (from the inbox), relative to the first."""
    times = served.on_loop(lambda: [d.time_ms for d in served.sim.world.inbox if d.account == "tok_queues"])
    return [t - times[0] for t in times]


def test_parallelism_n_delivers_up_to_n_at_once_never_more(served: Served, client: Client) -> None:
    _slow(served)
    r = client.post("/v2/queues", json_body={"queueName": "wide", "parallelism": 2, "paused": False}, headers=H)
    assert r.status == 200 and r.json["parallelism"] == 2 and r.json["paused"] is False
    for i in range(5):
        assert client.post(f"/v2/enqueue/wide/{SLOW}/{i}", body=b"x", headers=H).status == 200
    served.settle()
    # parallelismMax: the simulator's cap on attempts on real sockets (Limits.in_flight, default 100)
    assert client.get("/v2/globalParallelism", headers=H).json == {"parallelismMax": 100, "parallelismCount": 2}
    assert client.get("/v2/queues/wide", headers=H).json["lag"] == 5
    served.advance("60s")
    assert _starts(served) == [0, 0, 10_000, 10_000, 20_000]
    assert client.get("/v2/queues/wide", headers=H).json["lag"] == 0


def test_raising_the_parallelism_starts_waiting_messages_at_once(served: Served, client: Client) -> None:
    _slow(served)
    for i in range(3):
        client.post(f"/v2/enqueue/grow/{SLOW}/{i}", body=b"x", headers=H)
    served.settle()
    assert client.get("/v2/globalParallelism", headers=H).json["parallelismCount"] == 1
    client.post("/v2/queues", json_body={"queueName": "grow", "parallelism": 3, "paused": False}, headers=H)
    served.settle()
    assert client.get("/v2/globalParallelism", headers=H).json["parallelismCount"] == 3
    served.advance("11s")
    assert _starts(served) == [0, 0, 0]


def test_list_get_pause_resume_delete(served: Served, client: Client, receiver: Receiver) -> None:
    assert client.get("/v2/queues", headers=H).json == []
    client.post("/v2/queues", json_body={"queueName": "b", "parallelism": 1, "paused": True}, headers=H)
    served.advance("1s")
    client.post("/v2/queues", json_body={"queueName": "a"}, headers=H)
    assert [q["name"] for q in client.get("/v2/queues", headers=H).json] == ["b", "a"]  # oldest first
    client.post(f"/v2/enqueue/b/{receiver.url('/1')}", body=b"1", headers=H)
    served.advance("1s")
    assert receiver.received == [] and client.get("/v2/queues/b", headers=H).json["lag"] == 1
    r = client.post("/v2/queues/b/resume", headers=H)
    assert r.status == 200 and r.json["paused"] is False
    served.settle()
    assert len(receiver.received) == 1
    paused = client.post("/v2/queues/b/pause", headers=H).json
    assert paused["paused"] is True and paused["updatedAt"] >= paused["createdAt"]
    assert client.post("/v2/queues/b/pause", headers=H).json["paused"] is True  # idempotent
    client.post(f"/v2/enqueue/b/{receiver.url('/2')}", body=b"2", headers=H)
    r = client.delete("/v2/queues/b", headers=H)
    assert r.status == 200 and r.json == {"deleted": "b", "cancelled": 1}
    assert client.get("/v2/queues/b", headers=H).status == 404
    served.advance("1s")
    assert len(receiver.received) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"queueName": "a b"}, "queueName"),
        ({"queueName": "q", "parallelism": 0}, "body /parallelism"),
        ({"queueName": "q", "parallelism": "2"}, "body /parallelism"),
        ({"parallelism": 2}, "queueName"),
        ({"queueName": "q", "speed": 2}, "speed"),
    ],
)
def test_upsert_with_a_bad_body_is_a_400(client: Client, body: object, message: str) -> None:
    r = client.post("/v2/queues", json_body=body, headers=H)
    assert r.status == 400 and message in r.error, r.error


def test_unknown_and_bad_queue_names(client: Client) -> None:
    for method, path in [("GET", "/v2/queues/nope"), ("DELETE", "/v2/queues/nope"), ("POST", "/v2/queues/nope/pause")]:
        r = client.request(method, path, headers=H)
        assert r.status == 404 and "queue nope not found" in r.error
    r = client.get("/v2/queues/..", headers=H)
    assert r.status in (400, 404)
    r = client.get("/v2/queues/a%20b", headers=H)
    assert r.status == 400 and "path queueName" in r.error
