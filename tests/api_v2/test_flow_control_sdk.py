"""The real ``qstash==3.4.0`` (PyPI) publishing with ``flow_control`` and driving ``client.flow_control``
(get, pause, resume, pin, unpin, reset_rate, get_global_parallelism) against a served simulator: what the
loopback destination received, and when on the virtual clock (the inbox's time of each delivery)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from qstash import QStash

from conftest import Receiver as Sink
from conftest import Served, contract

TOKEN = "tok_fc_sdk"


def _check(response: httpx.Response) -> None:
    response.read()
    req = response.request
    target = req.url.raw_path.decode("ascii")
    problems = contract().validate_response(
        req.method, target, response.status_code, response.headers.get("Content-Type"), response.content
    )
    assert not problems, f"{req.method} {target} -> {response.status_code} breaks openapi.yaml: {problems}"


@pytest.fixture
def qstash(served: Served) -> Iterator[QStash]:
    client = QStash(TOKEN, base_url=served.url, retry=False)
    client.http._client.event_hooks["response"].append(_check)
    yield client
    client.http._client.close()


def _sent_at(served: Served) -> dict[str, int]:
    """message id -> when (virtual ms, from the first delivery) it was delivered."""
    inbox = served.on_loop(lambda: [(d.message_id, d.time_ms) for d in served.sim.world.inbox])
    t0 = min(t for _, t in inbox)
    return {mid: t - t0 for mid, t in inbox}


def test_publish_with_a_rate_delivers_per_period_in_order(served: Served, qstash: QStash, receiver: Sink) -> None:
    ids = []
    for i in range(5):
        res = qstash.message.publish_json(
            url=receiver.url(f"/job/{i}"),
            body={"job": i},
            flow_control={"key": "jobs", "rate": 2, "period": 30},
        )
        ids.append(res.message_id)  # type: ignore[union-attr]
    served.settle()
    info = qstash.flow_control.get("jobs")
    assert (info.rate_max, info.rate_count, info.rate_period, info.wait_list_size) == (2, 2, 30, 3)
    served.advance("2m")
    # two of them go out together at 0 s and at 30 s: they may reach the receiver in either order
    got = sorted((r["headers"]["Upstash-Message-Id"], r["path"], r["body"]) for r in receiver.received)
    assert got == sorted((m, f"/job/{i}", f'{{"job": {i}}}'.encode()) for i, m in enumerate(ids))
    when = _sent_at(served)  # the inbox: the order of starts, and when (virtual time)
    assert [when[m] for m in ids] == [0, 0, 30_000, 30_000, 60_000]
    starts = served.on_loop(lambda: [d.message_id for d in served.sim.world.inbox])
    assert starts == ids  # started first come, first out
    assert qstash.flow_control.get("jobs").wait_list_size == 0


def test_pause_pin_reset_rate_through_the_sdk(served: Served, qstash: QStash, receiver: Sink) -> None:
    qstash.flow_control.pause("sdk-key")
    for i in range(4):
        qstash.message.publish(url=receiver.url(f"/p/{i}"), body="x", flow_control={"key": "sdk-key", "parallelism": 9})
    served.advance("1h")
    info = qstash.flow_control.get("sdk-key")
    assert info.is_paused and info.wait_list_size == 4 and not receiver.received
    qstash.flow_control.pin("sdk-key", {"rate": 1, "period": 3600})
    qstash.flow_control.resume("sdk-key")
    served.settle()
    assert len(receiver.received) == 1
    assert qstash.flow_control.get("sdk-key").is_pinned_rate
    qstash.flow_control.reset_rate("sdk-key")
    served.settle()
    assert len(receiver.received) == 2
    qstash.flow_control.unpin("sdk-key", {"rate": True})
    info = qstash.flow_control.get("sdk-key")
    assert not info.is_pinned_rate and info.wait_list_size == 2
    g = qstash.flow_control.get_global_parallelism()
    assert (g.parallelism_max, g.parallelism_count) == (100, 0)
    served.advance("1h")  # the rate (1 per hour, in force until a message asks for another) lets one more go
    assert len(receiver.received) == 3
    served.advance("1h")
    assert [r["path"] for r in receiver.received] == [f"/p/{i}" for i in range(4)]
