"""The shipped ``flow-control-burst`` scenario end to end, over HTTP: a burst of 1,000 messages published
in one ``/v2/batch`` with ``rate=100, period=1m, parallelism=20`` against workers that take 2 s (virtual)
each: 100 starts per virtual minute, never more than 20 in flight, the waitlist drained in 10 minutes."""

from __future__ import annotations

import time
from collections import Counter

from conftest import Client, Receiver, Served

BURST_H = {"Authorization": "Bearer tok_burst"}
BURST_VALUE = "rate=100, period=1m, parallelism=20"


def test_flow_control_burst(served: Served, client: Client) -> None:
    """A burst of 1,000 in one /v2/batch, rate=100, period=1m, parallelism=20, against 2 s workers: 100 starts
    per virtual minute, never more than 20 in flight, the waitlist drained in 10 virtual minutes."""
    served.on_loop(lambda: served.sim.load_scenario("flow-control-burst"))
    items = [
        {
            "destination": f"https://burst.example/job/{i}",
            "body": str(i),
            "headers": {"Upstash-Flow-Control-Key": "burst", "Upstash-Flow-Control-Value": BURST_VALUE},
        }
        for i in range(1000)
    ]
    wall = time.perf_counter()
    r = client.post("/v2/batch", json_body=items, headers=BURST_H)
    assert r.status in (200, 201) and len(r.json) == 1000, r.body
    served.settle()
    key = client.get("/v2/flowControl/burst", headers=BURST_H).json
    assert (key["parallelismCount"], key["rateCount"], key["waitListSize"]) == (20, 20, 980)
    served.advance("1m")
    assert client.get("/v2/flowControl/burst", headers=BURST_H).json["waitListSize"] == 880  # 100 started in minute 0
    served.advance("9m")
    elapsed = time.perf_counter() - wall

    attempts = served.on_loop(lambda: [e.detail for e in served.sim.world.journal.entries if e.kind == "attempt"])
    t0 = min(d["startedMs"] for d in attempts)
    starts = Counter(d["startedMs"] - t0 for d in attempts)
    assert starts == {60_000 * m + 2_000 * r: 20 for m in range(10) for r in range(5)}
    assert all(d["flowControlKey"] == "burst" for d in attempts) and len(attempts) == 1000
    steps = sorted([(d["startStep"], 1) for d in attempts] + [(d["endStep"], -1) for d in attempts])
    running = most = 0
    for _, delta in steps:
        running += delta
        most = max(most, running)
    assert most == 20
    key = client.get("/v2/flowControl/burst", headers=BURST_H).json
    assert (key["waitListSize"], key["parallelismCount"]) == (0, 0)
    assert elapsed < 30, f"10 virtual minutes took {elapsed:.1f} s of wall time"


def test_a_scenario_fails_one_flow_control_key_at_a_real_destination(
    served: Served, client: Client, receiver: Receiver
) -> None:
    """``flow_control_key`` on a destination entry: the messages of key ``bad`` to a real loopback receiver are
    answered 503 by the script (retried, then in the DLQ), those of key ``good`` reach the receiver."""
    served.on_loop(
        lambda: served.sim.load_scenario(
            {"name": "bad-key", "destinations": [{"match": "*", "flow_control_key": "bad", "respond": 503}]}
        )
    )
    for key in ("bad", "good"):
        headers = {**BURST_H, "Upstash-Flow-Control-Key": key, "Upstash-Flow-Control-Value": "parallelism=1"}
        headers["Upstash-Retries"] = "1"
        r = client.post("/v2/publish/" + receiver.url(f"/{key}"), body=key.encode(), headers=headers)
        assert r.status in (200, 201), r.body
    served.advance("1h")
    assert [(x["path"], x["body"]) for x in receiver.received] == [("/good", b"good")]
    dlq = client.get("/v2/dlq", headers=BURST_H).json["messages"]
    assert [(m["url"], m["responseStatus"]) for m in dlq] == [(receiver.url("/bad"), 503)]
    rule = served.on_loop(
        lambda: [e.rule for e in served.sim.world.journal.entries if e.kind == "attempt" and e.url.endswith("/bad")]
    )
    assert rule == ["bad-key/destinations[0]", "bad-key/destinations[0]"]  # first attempt and its one retry
