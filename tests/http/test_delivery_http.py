"""End to end over real sockets: publish through the gateway, a real loopback receiver gets the delivery.

The server runs on a virtual clock; time moves only through ``advance`` (no sleeps).
"""

from __future__ import annotations

import pytest
from qstash import Receiver as QstashReceiver
from qstash.errors import SignatureError

from conftest import Client, Receiver, Served

P = "/v1/qstash"


def test_publish_reaches_local_receiver_with_qstash_headers(served: Served, client: Client, receiver: Receiver) -> None:
    url = receiver.url("/hook?source=test")
    body = b'{"orderId":"ord_456","action":"ship"}'
    r = client.post(
        f"{P}/publish/{url}",
        body=body,
        headers={
            "Content-Type": "application/json",
            "Upstash-Forward-X-Order": "42",
            "Upstash-Forward-Authorization": "Bearer t",
        },
    )
    mid = r.json["messageId"]
    served.settle()  # due now: runs without moving time
    assert len(receiver.received) == 1
    got = receiver.received[0]
    h = got["headers"]
    assert got["method"] == "POST" and got["path"] == "/hook?source=test"
    assert got["body"] == body
    assert h["Content-Type"] == "application/json"
    assert h["X-Order"] == "42" and h["Authorization"] == "Bearer t"
    assert h["Upstash-Message-Id"] == mid
    assert h["Upstash-Retried"] == "0"
    assert h["User-Agent"] == "Upstash-QStash"
    keys = client.get("/_sim/signing-keys").json
    # the official receiver raises SignatureError on any mismatch
    QstashReceiver(keys["current"], keys["next"]).verify(signature=h["Upstash-Signature"], body=body.decode(), url=url)
    # a receiver with the wrong key, a changed body or another URL rejects it
    with pytest.raises(SignatureError):
        QstashReceiver("sig_wrong", "sig_wrong2").verify(signature=h["Upstash-Signature"], body=body.decode(), url=url)
    with pytest.raises(SignatureError):
        QstashReceiver(keys["current"], keys["next"]).verify(signature=h["Upstash-Signature"], body="{}", url=url)
    with pytest.raises(SignatureError):
        QstashReceiver(keys["current"], keys["next"]).verify(
            signature=h["Upstash-Signature"], body=body.decode(), url=receiver.url("/other")
        )
    m = client.get(f"{P}/messages/{mid}").json
    assert m["state"] == "delivered"
    assert [e["state"] for e in m["history"]] == ["CREATED", "ACTIVE", "DELIVERED"]


def test_failing_receiver_sees_qstash_retry_schedule_then_dlq(served: Served, client: Client) -> None:
    failing = Receiver([500])
    try:
        mid = client.post(f"{P}/publish/{failing.url()}", body=b"x", headers={"Upstash-Retries": "5"}).json["messageId"]
        served.settle()
        start = client.get(f"{P}/messages/{mid}").json["createdAt"]
        served.advance("31h")
        assert [r["headers"]["Upstash-Retried"] for r in failing.received] == ["0", "1", "2", "3", "4", "5"]
        m = client.get(f"{P}/messages/{mid}").json
        assert m["state"] == "failed" and m["dlqId"]
        attempts = [e["time"] - start for e in m["history"] if e["state"] == "ACTIVE"]
        # 0, +12 s, +2m28s, +30m8s, +6h7m6s, +24h (QStash's min(86400, e^(2.5 n)) backoff)
        steps = [12, 148, 1808, 22026, 86400]
        expected = [0]
        for s in steps:
            expected.append(expected[-1] + s * 1000)
        assert attempts == expected
        assert 30.6 < attempts[-1] / 3_600_000 < 30.8
        dlq = client.get("/_sim/state").json["accounts"]["default"]["dlq"]
        assert [d["messageId"] for d in dlq] == [mid]
        assert dlq[0]["responseStatus"] == 500
        assert dlq[0]["responseBody"] == '{"error":"receiver says no"}'
    finally:
        failing.close()


def test_queue_delivers_in_order_even_when_first_fails(served: Served, client: Client) -> None:
    rcv = Receiver([503, 200])  # the first attempt fails, every later one succeeds
    try:
        for i in range(3):
            client.post(f"{P}/enqueue/ordered/{rcv.url(f'/m{i}')}", body=str(i).encode())
        served.settle()
        assert [r["path"] for r in rcv.received] == ["/m0"]  # m1 waits behind m0's retry
        served.advance("12s")
        served.settle()
        assert [r["path"] for r in rcv.received] == ["/m0", "/m0", "/m1", "/m2"]
        assert client.get(f"{P}/queues/ordered").json["lag"] == 0
    finally:
        rcv.close()


def test_control_api_advances_the_clock(served: Served, client: Client) -> None:
    before = client.get("/_sim/clock").json
    assert before["virtual"] is True
    after = client.post("/_sim/clock/advance", json_body={"by": "1d10h30m"}).json
    assert after["now"] - before["now"] == (34 * 3600 + 30 * 60) * 1000
    bad = client.post("/_sim/clock/advance", json_body={"by": "soon"})
    assert bad.status == 400 and "/by" in bad.error


def test_non_loopback_destination_is_virtual_and_recorded(served: Served, client: Client) -> None:
    mid = client.post(f"{P}/publish/https://api.example.com/fulfillment", body=b'{"a":1}').json["messageId"]
    served.settle()
    d = client.get("/_sim/deliveries").json["deliveries"]
    assert len(d) == 1 and d[0]["virtual"] is True and d[0]["messageId"] == mid
    assert d[0]["url"] == "https://api.example.com/fulfillment" and d[0]["status"] == 200
    assert d[0]["headers"]["Upstash-Message-Id"] == mid


def test_schedule_fires_on_virtual_time_and_charges_triggers(served: Served, client: Client) -> None:
    sid = client.post(
        f"{P}/schedules/https://api.example.com/daily-report",
        body=b'{"type":"generate-report"}',
        headers={"Upstash-Cron": "0 9 * * *", "Content-Type": "application/json"},
    ).json["scheduleId"]
    served.advance("7d")
    deliveries = client.get("/_sim/deliveries").json["deliveries"]
    assert len(deliveries) == 7
    assert all(d["headers"]["Upstash-Schedule-Id"] == sid for d in deliveries)
    s = client.get(f"{P}/schedules/{sid}").json
    assert s["lastScheduleTime"] < s["nextScheduleTime"]
    assert list(s["lastScheduleStates"].values()) == ["SUCCESS"]
    ledger = client.get("/_sim/ledger").json
    triggers = [e for e in ledger["entries"] if e["operation"] == "scheduleTrigger"]
    assert len(triggers) == 7 and all(e["amount"] == "0.00001" for e in triggers)


def test_paused_then_deleted_schedule_stops_firing(served: Served, client: Client) -> None:
    sid = client.post(
        f"{P}/schedules/https://api.example.com/tick", body=b"{}", headers={"Upstash-Cron": "*/10 * * * *"}
    ).json["scheduleId"]
    served.advance("30m")
    assert len(client.get("/_sim/deliveries").json["deliveries"]) == 3
    client.patch(f"{P}/schedules/{sid}/pause")
    served.advance("30m")
    assert len(client.get("/_sim/deliveries").json["deliveries"]) == 3
    client.patch(f"{P}/schedules/{sid}/resume")
    served.advance("20m")
    assert len(client.get("/_sim/deliveries").json["deliveries"]) == 5
    client.delete(f"{P}/schedules/{sid}")
    served.advance("1h")
    assert len(client.get("/_sim/deliveries").json["deliveries"]) == 5
