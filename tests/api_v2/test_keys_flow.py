"""``/v2/keys`` (get, rotate: deliveries follow) and the flow-control reads (``/v2/flowControl``,
``/v2/globalParallelism``); the writes are in ``test_flow_control.py``."""

from __future__ import annotations

import pytest
from qstash import Receiver as QstashReceiver
from qstash.errors import SignatureError

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_keys"}


def test_keys_are_the_accounts_and_rotation_moves_signing(served: Served, client: Client, receiver: Receiver) -> None:
    keys = client.get("/v2/keys", headers=H).json
    sim_keys = client.get("/_sim/signing-keys?account=tok_keys").json
    assert (keys["current"], keys["next"]) == (sim_keys["current"], sim_keys["next"])
    assert keys["current"].startswith("sig_") and len(keys["current"]) == 32
    assert client.get("/v2/keys", headers={"Authorization": "Bearer other"}).json != keys
    rotated = client.post("/v2/keys/rotate", headers=H).json
    assert rotated["current"] == keys["next"] and rotated["next"] not in (keys["current"], keys["next"])
    assert client.get("/v2/keys", headers=H).json == rotated
    client.post(f"/v2/publish/{receiver.url()}", body=b"x", headers=H)
    served.settle()
    sig = receiver.received[0]["headers"]["Upstash-Signature"]
    QstashReceiver(rotated["current"], rotated["next"]).verify(signature=sig, body="x", url=receiver.url())
    with pytest.raises(SignatureError):
        QstashReceiver(keys["current"], "sig_" + "x" * 28).verify(signature=sig, body="x", url=receiver.url())


def test_flow_control_keys_are_read_from_the_messages(served: Served, client: Client) -> None:
    assert client.get("/v2/flowControl", headers=H).json == []
    r = client.get("/v2/flowControl/fk", headers=H)
    assert r.status == 404 and "fk" in r.error
    fc = {"Upstash-Flow-Control-Key": "fk", "Upstash-Delay": "1h"}
    client.post(
        "/v2/publish/https://a.example/", body=b"x", headers={**H, **fc, "Upstash-Flow-Control-Value": "rate=5"}
    )
    served.advance("1s")
    client.post(
        "/v2/publish/https://a.example/",
        body=b"x",
        headers={**H, **fc, "Upstash-Flow-Control-Value": "parallelism=3, rate=10, period=1m"},
    )
    key = client.get("/v2/flowControl/fk", headers=H).json
    assert key == {
        "flowControlKey": "fk",
        "waitListSize": 0,
        "parallelismMax": 3,  # the newest message's values
        "parallelismCount": 0,
        "rateMax": 10,
        "rateCount": 0,
        "ratePeriod": 60,
        "ratePeriodStart": 0,
        "isPaused": False,
        "isPinnedParallelism": False,
        "isPinnedRate": False,
    }
    assert client.get("/v2/flowControl", headers=H).json == [key]
    served.advance("1h")  # both have started, within the last minute
    assert client.get("/v2/flowControl/fk", headers=H).json["rateCount"] == 2
    served.advance("2m")
    assert client.get("/v2/flowControl/fk", headers=H).json["rateCount"] == 0


def test_a_flow_control_write_qstash_does_not_have_is_the_unknown_path_404(client: Client) -> None:
    r = client.post("/v2/flowControl/fk/reset", headers=H)
    assert r.status == 404 and "reset" in r.error, r.error


def test_global_parallelism_counts_attempts_in_flight(served: Served, client: Client) -> None:
    served.on_loop(
        lambda: served.sim.load_scenario(
            {"name": "s", "destinations": [{"name": "s", "match": "https://slow.example/*", "respond": {"hang": "5s"}}]}
        )
    )
    # parallelismMax: the simulator's cap on attempts on real sockets (Limits.in_flight, default 100)
    assert client.get("/v2/globalParallelism", headers=H).json == {"parallelismMax": 100, "parallelismCount": 0}
    for i in range(3):
        client.post(f"/v2/publish/https://slow.example/{i}", body=b"x", headers=H)
    served.settle()
    assert client.get("/v2/globalParallelism", headers=H).json["parallelismCount"] == 3
    served.advance("6s")
    assert client.get("/v2/globalParallelism", headers=H).json["parallelismCount"] == 0
