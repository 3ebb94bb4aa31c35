"""``/v2/flowControl`` enforced: the keys' waitlists and counters, pause, resume, pin, unpin, resetRate, and
``/v2/globalParallelism``, over HTTP (every answer checked against openapi.yaml by the test client). The
Sapiom gateway strips flow-control headers: a message published there names no key."""

from __future__ import annotations

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_fc"}
FC = {"Upstash-Flow-Control-Key": "burst"}


def _publish(client: Client, url: str, value: str, **extra: str) -> str:
    r = client.post(f"/v2/publish/{url}", body=b"x", headers={**H, **FC, "Upstash-Flow-Control-Value": value, **extra})
    assert r.status in (200, 201), r.body
    return str(r.json["messageId"])


def _key(client: Client) -> dict[str, object]:
    r = client.get("/v2/flowControl/burst", headers=H)
    assert r.status == 200, r.body
    return dict(r.json)


def test_a_rate_limited_burst_waits_and_is_released_on_virtual_time(
    served: Served, client: Client, receiver: Receiver
) -> None:
    for _ in range(7):
        _publish(client, receiver.url(), "rate=3, period=1m")
    served.settle()
    t0 = served.on_loop(lambda: served.sim.world.now)
    key = _key(client)
    assert (key["waitListSize"], key["rateCount"], key["rateMax"], key["ratePeriod"]) == (4, 3, 3, 60)
    assert key["ratePeriodStart"] == t0 // 1000 and len(receiver.received) == 3
    served.advance("59s")
    assert len(receiver.received) == 3
    served.advance("1s")
    assert len(receiver.received) == 6 and _key(client)["waitListSize"] == 1
    served.advance("1m")
    assert len(receiver.received) == 7 and _key(client)["waitListSize"] == 0


def test_pause_resume_and_the_key_answers(served: Served, client: Client, receiver: Receiver) -> None:
    paused = client.post("/v2/flowControl/burst/pause", headers=H)
    assert paused.status == 200 and paused.json["isPaused"] is True  # a key may be paused before any message
    for _ in range(3):
        _publish(client, receiver.url(), "parallelism=2")
    served.advance("1h")
    assert not receiver.received and _key(client)["waitListSize"] == 3
    assert client.post("/v2/flowControl/burst/pause", headers=H).status == 200  # idempotent
    resumed = client.post("/v2/flowControl/burst/resume", headers=H)
    assert resumed.status == 200 and resumed.json["isPaused"] is False
    served.settle()
    assert len(receiver.received) == 3 and _key(client)["waitListSize"] == 0


def test_pin_unpin_and_reset_rate(served: Served, client: Client, receiver: Receiver) -> None:
    pinned = client.post("/v2/flowControl/burst/pin?parallelism=4&rate=2&period=3600", headers=H).json
    assert (pinned["parallelismMax"], pinned["rateMax"], pinned["ratePeriod"]) == (4, 2, 3600)
    assert pinned["isPinnedParallelism"] is pinned["isPinnedRate"] is True
    for _ in range(5):
        _publish(client, receiver.url(), "rate=100")  # pinned: the message's rate is ignored
    served.settle()
    assert len(receiver.received) == 2 and _key(client)["rateMax"] == 2
    reset = client.post("/v2/flowControl/burst/resetRate", headers=H).json
    served.settle()
    assert len(receiver.received) == 4 and reset["rateCount"] == 2  # the new period admitted two at once
    unpinned = client.post("/v2/flowControl/burst/unpin?rate=true", headers=H).json
    assert unpinned["isPinnedRate"] is False and unpinned["isPinnedParallelism"] is True
    assert unpinned["rateMax"] == 2  # in force until a message asks for another
    _publish(client, receiver.url(), "rate=100")
    served.settle()
    assert _key(client)["rateMax"] == 100 and len(receiver.received) == 6


def test_writes_on_an_unknown_key_and_bad_values(client: Client) -> None:
    for op in ("resume", "unpin", "resetRate"):
        r = client.post(f"/v2/flowControl/nope/{op}", headers=H)
        assert r.status == 404 and "nope" in r.error, (op, r.error)
    r = client.post("/v2/flowControl/nope/pin", headers=H)  # nothing to pin: changes nothing, creates the key
    assert r.status == 200 and r.json["isPinnedParallelism"] is r.json["isPinnedRate"] is False
    for bad in ("parallelism=0", "rate=x", "period=-1"):
        r = client.post(f"/v2/flowControl/nope/pin?{bad}", headers=H)
        assert r.status == 400 and bad.split("=")[0] in r.error, (bad, r.error)
    r = client.post("/v2/flowControl/nope/unpin?rate=maybe", headers=H)
    assert r.status == 400 and "rate" in r.error


def test_a_bad_flow_control_value_is_a_400_naming_the_header(client: Client) -> None:
    for value in ("parallelism=0", "rate=two", "speed=1", "period=soon"):
        r = client.post(
            "/v2/publish/https://a.example/",
            body=b"x",
            headers={**H, **FC, "Upstash-Flow-Control-Value": value},
        )
        assert r.status == 400 and "Upstash-Flow-Control-Value" in r.error, (value, r.error)


def test_global_parallelism_reports_the_attempts_in_flight_and_the_cap(served: Served, client: Client) -> None:
    served.on_loop(
        lambda: served.sim.load_scenario(
            {"name": "s", "destinations": [{"name": "s", "match": "https://slow.example/*", "respond": {"hang": "5s"}}]}
        )
    )
    for i in range(4):
        _publish(client, f"https://slow.example/{i}", "parallelism=3")
    served.settle()
    assert client.get("/v2/globalParallelism", headers=H).json == {"parallelismMax": 100, "parallelismCount": 3}
    key = _key(client)
    assert (key["parallelismCount"], key["waitListSize"]) == (3, 1)
    served.advance("5s")
    assert client.get("/v2/globalParallelism", headers=H).json["parallelismCount"] == 1
    served.advance("5s")
    assert _key(client)["parallelismCount"] == 0


def test_the_sapiom_gateway_names_no_key(served: Served, client: Client) -> None:
    r = client.post(
        "/v1/qstash/publish/https://a.example/",
        body=b"x",
        headers={**FC, "Upstash-Flow-Control-Value": "parallelism=1", "Upstash-Delay": "1h"},
    )
    assert r.status in (200, 201), r.body
    assert served.on_loop(lambda: dict(served.sim.account("default").flow_keys)) == {}
