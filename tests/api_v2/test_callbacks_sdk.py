"""Callbacks and failure callbacks through the real ``qstash==3.4.0`` (PyPI), unmodified, against a served
simulator on 127.0.0.1: what the destination and the callback URLs received (loopback receivers), the
callback body decoded, every callback's signature verified with ``qstash.Receiver`` for the callback URL.
Time moves only through the simulator (``settle``, ``advance``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from qstash import QStash, Receiver

from conftest import Receiver as Sink
from conftest import Served

TOKEN = "tok_python_sdk_callbacks"


@pytest.fixture
def qstash(served: Served) -> Iterator[QStash]:
    client = QStash(TOKEN, base_url=served.url, retry=False)
    yield client
    client.http._client.close()  # qstash 3.4.0 has no close()


def _verified(q: QStash, got: dict[str, Any], url: str) -> dict[str, Any]:
    """The callback's signature verifies for ``url`` and its body; its JSON payload."""
    keys = q.signing_key.get()
    Receiver(keys.current, keys.next).verify(
        signature=got["headers"]["Upstash-Signature"], body=got["body"].decode(), url=url
    )
    payload = json.loads(got["body"])
    assert isinstance(payload, dict)
    return payload


def test_the_python_sdk_gets_callbacks_and_a_failure_callback(served: Served, qstash: QStash) -> None:
    dest, hooks = Sink([500, 200]), Sink()
    try:
        res = qstash.message.publish_json(
            url=dest.url("/orders"),
            body={"order": 7},
            headers={"X-Trace": "t1"},
            retries=1,
            retry_delay="1000",
            callback=hooks.url("/cb"),
            callback_headers={"X-Cb": "1"},  # sent as Upstash-Callback-X-Cb (no -Forward-)
            failure_callback=hooks.url("/failed"),
            failure_callback_headers={"X-F": "2"},
        )
        served.settle()
        served.advance("1s")
        assert [g["headers"]["X-Trace"] for g in dest.received] == ["t1", "t1"]
        cbs = [g for g in hooks.received if g["path"] == "/cb"]
        assert len(cbs) == 2 and [g for g in hooks.received if g["path"] == "/failed"] == []  # delivered at last
        payloads = [_verified(qstash, g, hooks.url("/cb")) for g in cbs]
        assert all(g["headers"]["X-Cb"] == "1" and "X-F" not in g["headers"] for g in cbs)
        assert [(p["status"], p["retried"], p["maxRetries"]) for p in payloads] == [(500, 0, 1), (200, 1, 1)]
        assert {p["sourceMessageId"] for p in payloads} == {res.message_id}  # type: ignore[union-attr]
        assert json.loads(base64.b64decode(payloads[1]["sourceBody"])) == {"order": 7}
        assert payloads[1]["sourceHeader"]["X-Trace"] == ["t1"] and payloads[1]["url"] == dest.url("/orders")
        assert base64.b64decode(payloads[0]["body"]) == b'{"error":"receiver says no"}'
        events = qstash.log.list(filter={"message_id": cbs[0]["headers"]["Upstash-Message-Id"]}).logs
        assert {e.url for e in events} == {hooks.url("/cb")} and "DELIVERED" in {e.state.value for e in events}
    finally:
        dest.close()
        hooks.close()


def test_the_python_sdk_failure_callback_names_the_dlq_entry(served: Served, qstash: QStash) -> None:
    dest, hooks = Sink([503]), Sink()
    try:
        res = qstash.message.publish(
            url=dest.url("/down"),
            body="x",
            retries=0,
            failure_callback=hooks.url("/failed"),
            failure_callback_headers={"X-F": "2"},
        )
        served.settle()
        (got,) = hooks.received
        assert got["headers"]["X-F"] == "2"
        p = _verified(qstash, got, hooks.url("/failed"))
        assert (p["status"], p["retried"], p["maxRetries"]) == (503, 0, 0)
        entry = qstash.dlq.get(p["dlqId"])
        assert entry.message_id == res.message_id and entry.response_status == 503  # type: ignore[union-attr]
        assert entry.failure_callback == hooks.url("/failed")
    finally:
        dest.close()
        hooks.close()


def test_a_python_sdk_schedule_carries_its_callback(served: Served, qstash: QStash, receiver: Sink) -> None:
    hooks = Sink()
    try:
        sid = qstash.schedule.create_json(
            destination=receiver.url("/tick"),
            cron="* * * * *",
            body={"tick": True},
            callback=hooks.url("/cb"),
            failure_callback=hooks.url("/failed"),
        )
        assert qstash.schedule.get(sid).callback == hooks.url("/cb")
        served.advance("1m")
        (fired,) = receiver.received
        (got,) = hooks.received
        p = _verified(qstash, got, hooks.url("/cb"))
        assert p["scheduleId"] == sid and p["sourceMessageId"] == fired["headers"]["Upstash-Message-Id"]
        assert p["status"] == 200 and json.loads(base64.b64decode(p["sourceBody"])) == {"tick": True}
    finally:
        hooks.close()
