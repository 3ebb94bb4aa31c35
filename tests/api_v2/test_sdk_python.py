"""The real ``qstash==3.4.0`` (PyPI), unmodified, against a served simulator on 127.0.0.1: every client method
of qstash-sdk-wire.md §4, each asserting what the SDK returned and what reached the destination (a loopback
receiver), deliveries verified with ``qstash.Receiver``.

Clients are built with ``retry=False`` (the SDK's default retries connection errors for ~32 s). Time moves
only through the simulator (``settle``, ``advance``): no test sleeps.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from qstash import AsyncQStash, QStash, Receiver
from qstash.errors import QStashError
from qstash.log import LogState
from qstash.message import PublishResponse, PublishUrlGroupResponse
from qstash.schedule import ScheduleState

from conftest import Receiver as Sink
from conftest import Served, contract

TOKEN = "tok_python_sdk"


def _check(response: httpx.Response) -> None:
    """Every answer the SDK gets is checked against openapi.yaml, as the test client checks its own."""
    response.read()
    req = response.request
    target = req.url.raw_path.decode("ascii")
    problems = contract().validate_response(
        req.method, target, response.status_code, response.headers.get("Content-Type"), response.content
    )
    assert not problems, f"{req.method} {target} -> {response.status_code} breaks openapi.yaml: {problems}"


async def _acheck(response: httpx.Response) -> None:
    await response.aread()
    _check(response)


def _client(served: Served, token: str = TOKEN) -> QStash:
    client = QStash(token, base_url=served.url, retry=False)
    client.http._client.event_hooks["response"].append(_check)
    return client


def _close(*clients: QStash) -> None:
    """qstash 3.4.0 has no ``close()``: its httpx client would be left open (a ResourceWarning)."""
    for c in clients:
        c.http._client.close()


@pytest.fixture
def qstash(served: Served) -> Iterator[QStash]:
    client = _client(served)
    yield client
    _close(client)


def _verify(q: QStash, delivery: dict[str, object], url: str) -> None:
    """The delivery's Upstash-Signature verifies with the account's keys, for this URL and body."""
    keys = q.signing_key.get()
    headers = delivery["headers"]
    assert isinstance(headers, dict) and isinstance(delivery["body"], bytes)
    Receiver(keys.current, keys.next).verify(
        signature=headers["Upstash-Signature"], body=delivery["body"].decode(), url=url
    )


def test_publish_and_publish_json(served: Served, qstash: QStash, receiver: Sink) -> None:
    url = receiver.url("/raw?x=1")
    res = qstash.message.publish(
        url=url,
        body="hello",
        content_type="text/plain",
        method="PUT",
        headers={"X-Trace": "t1"},
        retries=2,
        timeout=30,
        label="l1",
    )
    assert isinstance(res, PublishResponse) and res.message_id.startswith("msg_") and res.deduplicated is False
    res_json = qstash.message.publish_json(url=receiver.url("/json"), body={"a": 1})
    served.settle()
    raw = next(d for d in receiver.received if d["path"] == "/raw?x=1")
    js = next(d for d in receiver.received if d["path"] == "/json")
    assert raw["method"] == "PUT" and raw["body"] == b"hello" and raw["headers"]["X-Trace"] == "t1"
    assert raw["headers"]["Content-Type"] == "text/plain" and raw["headers"]["Upstash-Message-Id"] == res.message_id
    assert json.loads(js["body"]) == {"a": 1} and js["headers"]["Content-Type"] == "application/json"
    assert js["headers"]["Upstash-Message-Id"] == res_json.message_id  # type: ignore[union-attr]
    _verify(qstash, raw, url)
    _verify(qstash, js, receiver.url("/json"))


def test_publish_deduplication_and_delay(served: Served, qstash: QStash, receiver: Sink) -> None:
    first = qstash.message.publish(url=receiver.url(), body="x", deduplication_id="d1", delay=10)
    again = qstash.message.publish(url=receiver.url(), body="x", deduplication_id="d1", delay=10)
    assert isinstance(first, PublishResponse) and isinstance(again, PublishResponse)
    assert again.message_id == first.message_id and again.deduplicated is True
    cb = qstash.message.publish(url=receiver.url("/c"), body="same", content_based_deduplication=True)
    cb2 = qstash.message.publish(url=receiver.url("/c"), body="same", content_based_deduplication=True)
    assert cb2.deduplicated is True and cb2.message_id == cb.message_id  # type: ignore[union-attr]
    served.settle()
    assert [d["path"] for d in receiver.received] == ["/c"]
    served.advance("10s")
    assert sorted(d["path"] for d in receiver.received) == ["/c", "/hook"]


def test_publish_to_a_url_group(served: Served, qstash: QStash, receiver: Sink) -> None:
    qstash.url_group.upsert_endpoints("team", [{"url": receiver.url("/a"), "name": "a"}, {"url": receiver.url("/b")}])
    res = qstash.message.publish_json(url_group="team", body={"n": 1})
    assert isinstance(res, list) and all(isinstance(r, PublishUrlGroupResponse) for r in res)
    assert [r.url for r in res] == [receiver.url("/a"), receiver.url("/b")]
    served.settle()
    by_path = {d["path"]: d for d in receiver.received}
    assert {d["headers"]["Upstash-Topic-Name"] for d in by_path.values()} == {"team"}
    assert {d["headers"]["Upstash-Message-Id"] for d in by_path.values()} == {r.message_id for r in res}
    for path, d in by_path.items():
        _verify(qstash, d, receiver.url(path))


def test_enqueue_and_enqueue_json(served: Served, qstash: QStash, receiver: Sink) -> None:
    qstash.queue.upsert("jobs", parallelism=1, paused=True)  # nothing starts until resumed
    a = qstash.message.enqueue(queue="jobs", url=receiver.url("/1"), body="1", retries=0)
    b = qstash.message.enqueue_json(queue="jobs", url=receiver.url("/2"), body={"n": 2})
    qstash.url_group.upsert_endpoints("g", [{"url": receiver.url("/g")}])
    c = qstash.message.enqueue(queue="jobs", url_group="g", body="3")
    assert isinstance(c, list) and c[0].url == receiver.url("/g")
    q = qstash.queue.get("jobs")
    assert q.name == "jobs" and q.parallelism == 1 and q.lag == 3 and q.paused is True
    qstash.queue.resume("jobs")
    served.advance("1s")
    order = [d["headers"]["Upstash-Message-Id"] for d in receiver.received]
    assert order == [a.message_id, b.message_id, c[0].message_id]  # type: ignore[union-attr]
    assert qstash.queue.get("jobs").lag == 0


def test_batch_and_batch_json(served: Served, qstash: QStash, receiver: Sink) -> None:
    qstash.url_group.upsert_endpoints("g", [{"url": receiver.url("/g")}])
    res = qstash.message.batch(
        [
            {"url": receiver.url("/a"), "body": "a", "headers": {"X-A": "1"}},
            {"url_group": "g", "body": "g"},
            {"url": receiver.url("/q"), "queue": "bq", "body": "q", "delay": 5},
        ]
    )
    assert len(res) == 3 and isinstance(res[1], list) and res[1][0].url == receiver.url("/g")
    res_json = qstash.message.batch_json([{"url": receiver.url("/j"), "body": {"j": 1}}])
    served.advance("6s")
    by_path = {d["path"]: d for d in receiver.received}
    assert set(by_path) == {"/a", "/g", "/q", "/j"}
    assert by_path["/a"]["headers"]["X-A"] == "1" and json.loads(by_path["/j"]["body"]) == {"j": 1}
    assert by_path["/j"]["headers"]["Upstash-Message-Id"] == res_json[0].message_id  # type: ignore[union-attr]
    assert qstash.queue.get("bq").name == "bq"


def test_message_get_cancel_cancel_many_cancel_all(served: Served, qstash: QStash, receiver: Sink) -> None:
    ids = [
        qstash.message.publish(  # type: ignore[union-attr]
            url=receiver.url(f"/{i}"),
            body="x",
            delay="1h",
            callback="https://example.com/cb",
            callback_headers={"X-Cb": "1"},
            flow_control={"key": "fk", "parallelism": 2},
            label="lbl",
        ).message_id
        for i in range(5)
    ]
    m = qstash.message.get(ids[0])
    assert m.message_id == ids[0] and m.url == receiver.url("/0") and m.method == "POST" and m.max_retries == 3
    assert m.not_before == m.created_at + 3_600_000 and m.body == "x" and m.label == "lbl"
    assert m.callback == "https://example.com/cb" and m.callback_headers == {"X-Cb": ["1"]}
    assert m.flow_control is not None and m.flow_control.key == "fk" and m.flow_control.parallelism == 2
    assert m.caller_ip == "127.0.0.1"
    qstash.message.cancel(ids[0])
    with pytest.raises(QStashError, match="404"):
        qstash.message.get(ids[0])
    assert qstash.message.cancel_many([ids[1], ids[2], "msg_unknown"]) == 2
    assert qstash.message.cancel_many([]) == 0
    assert qstash.message.cancel_all() == 2
    served.advance("2h")
    assert receiver.received == []


def test_queues(served: Served, qstash: QStash, receiver: Sink) -> None:
    qstash.queue.upsert("q1", parallelism=2, paused=True)
    q = qstash.queue.get("q1")
    assert (q.parallelism, q.paused, q.lag) == (2, True, 0) and q.updated_at >= q.created_at
    qstash.message.enqueue(queue="q1", url=receiver.url(), body="x")
    served.settle()
    assert receiver.received == [] and qstash.queue.get("q1").lag == 1
    qstash.queue.resume("q1")
    served.settle()
    assert len(receiver.received) == 1
    qstash.queue.pause("q1")
    assert qstash.queue.get("q1").paused is True
    assert [x.name for x in qstash.queue.list()] == ["q1"]
    qstash.queue.delete("q1")
    assert qstash.queue.list() == []
    with pytest.raises(QStashError, match="404"):
        qstash.queue.get("q1")


def test_schedules(served: Served, qstash: QStash, receiver: Sink) -> None:
    sid = qstash.schedule.create(
        destination=receiver.url("/tick"),
        cron="* * * * *",
        body="tick",
        content_type="text/plain",
        schedule_id="every-minute",
        retries=1,
        delay="5s",
        timeout=30,
        callback="https://example.com/cb",
        headers={"X-S": "1"},
    )
    assert sid == "every-minute"
    js = qstash.schedule.create_json(
        destination=receiver.url("/ny"), cron="CRON_TZ=America/New_York 0 9 * * *", body={"k": "v"}
    )
    s = qstash.schedule.get(sid)
    assert (s.schedule_id, s.cron, s.destination, s.retries, s.delay, s.paused) == (
        sid,
        "* * * * *",
        receiver.url("/tick"),
        1,
        5,
        False,
    )
    assert s.callback == "https://example.com/cb" and s.last_schedule_states is None
    served.advance("65s")
    (got,) = receiver.received
    assert got["body"] == b"tick" and got["headers"]["Upstash-Schedule-Id"] == sid and got["headers"]["X-S"] == "1"
    _verify(qstash, got, receiver.url("/tick"))
    s = qstash.schedule.get(sid)
    assert s.last_schedule_time is not None and s.last_schedule_states is not None
    assert list(s.last_schedule_states.values()) == [ScheduleState.SUCCESS]
    assert {x.schedule_id for x in qstash.schedule.list()} == {sid, js}
    qstash.schedule.pause(sid)
    assert qstash.schedule.get(sid).paused is True
    served.advance("2m")
    assert len(receiver.received) == 1
    qstash.schedule.resume(sid)
    served.advance("1m")
    assert len(receiver.received) == 2
    qstash.schedule.delete(sid)
    with pytest.raises(QStashError, match="404"):
        qstash.schedule.get(sid)


def test_url_groups(qstash: QStash) -> None:
    qstash.url_group.upsert_endpoints("g1", [{"url": "https://a.example/", "name": "a"}, {"url": "https://b.example/"}])
    g = qstash.url_group.get("g1")
    assert g.name == "g1" and [(e.url, e.name) for e in g.endpoints] == [
        ("https://a.example/", "a"),
        ("https://b.example/", None),
    ]
    qstash.url_group.remove_endpoints("g1", [{"name": "a"}])
    assert [e.url for e in qstash.url_group.get("g1").endpoints] == ["https://b.example/"]
    qstash.url_group.upsert_endpoints("g2", [{"url": "https://c.example/"}])
    assert [x.name for x in qstash.url_group.list()] == ["g1", "g2"]
    qstash.url_group.delete("g1")
    with pytest.raises(QStashError, match="404"):
        qstash.url_group.get("g1")


def test_dlq(served: Served, qstash: QStash) -> None:
    failing = Sink([500])
    try:
        ids = []
        for i in range(3):  # one at a time: answers of concurrent real deliveries are applied as they arrive
            ids.append(qstash.message.publish(url=failing.url(f"/{i}"), body="x", retries=0).message_id)  # type: ignore[union-attr]
            served.settle()
        page = qstash.dlq.list(count=2)
        assert [m.message_id for m in page.messages] == ids[:2] and page.cursor
        rest = qstash.dlq.list(cursor=page.cursor, count=2)
        assert [m.message_id for m in rest.messages] == ids[2:] and rest.cursor is None
        only = qstash.dlq.list(filter={"url": failing.url("/1"), "response_status": 500})
        assert [m.message_id for m in only.messages] == [ids[1]]
        entry = qstash.dlq.get(page.messages[0].dlq_id)
        assert entry.message_id == ids[0] and entry.response_status == 500
        assert entry.response_body == '{"error":"receiver says no"}' and entry.url == failing.url("/0")
        qstash.dlq.delete(entry.dlq_id)
        with pytest.raises(QStashError, match="404"):
            qstash.dlq.get(entry.dlq_id)
        assert qstash.dlq.delete_many([m.dlq_id for m in qstash.dlq.list().messages]) == 2
        assert qstash.dlq.list().messages == []
    finally:
        failing.close()


def test_logs(served: Served, qstash: QStash, receiver: Sink, capsys: pytest.CaptureFixture[str]) -> None:
    ok = qstash.message.publish(url=receiver.url(), body="x").message_id  # type: ignore[union-attr]
    gone = qstash.message.publish(url=receiver.url(), body="x", delay="1h").message_id  # type: ignore[union-attr]
    qstash.message.cancel(gone)
    served.settle()
    everything = qstash.log.list()
    assert {log.state for log in everything.logs} == {
        LogState.CREATED,
        LogState.ACTIVE,
        LogState.DELIVERED,
        LogState.CANCEL_REQUESTED,
        LogState.CANCELED,
    }
    mine = qstash.log.list(filter={"message_id": ok})
    assert [log.state for log in mine.logs] == [LogState.DELIVERED, LogState.ACTIVE, LogState.CREATED]
    assert all(log.url == receiver.url() and log.body_base64 == "eA==" for log in mine.logs)
    cancelled = qstash.log.list(filter={"state": LogState.CANCELED})
    assert [log.message_id for log in cancelled.logs] == [gone]
    both = qstash.log.list(filter={"message_ids": [ok, gone], "state": LogState.CREATED})
    assert {log.message_id for log in both.logs} == {ok, gone}
    first = qstash.log.list(count=2)
    second = qstash.log.list(count=2, cursor=first.cursor)
    assert first.cursor and len(first.logs) == len(second.logs) == 2
    assert {(x.message_id, x.state) for x in first.logs}.isdisjoint({(x.message_id, x.state) for x in second.logs})
    capsys.readouterr()  # qstash 3.4.0's log.list() prints the raw answer: muffled here


def test_signing_keys(served: Served, qstash: QStash, receiver: Sink) -> None:
    keys = qstash.signing_key.get()
    rotated = qstash.signing_key.rotate()
    assert rotated.current == keys.next and rotated.next != keys.next
    qstash.message.publish(url=receiver.url(), body="after rotation")
    served.settle()
    _verify(qstash, receiver.received[0], receiver.url())  # signed with the new current key


def test_flow_control(served: Served, qstash: QStash) -> None:
    qstash.message.publish(
        url="https://a.example/",
        body="x",
        delay="1h",
        flow_control={"key": "fk", "parallelism": 3, "rate": 10, "period": 60},
    )
    info = qstash.flow_control.get("fk")
    assert (info.key, info.parallelism_max, info.rate_max, info.rate_period, info.wait_list_size) == (
        "fk",
        3,
        10,
        60,
        0,
    )
    g = qstash.flow_control.get_global_parallelism()
    assert (g.parallelism_max, g.parallelism_count) == (100, 0)  # the simulator's cap on real attempts
    with pytest.raises(QStashError, match="404"):
        qstash.flow_control.get("unknown")
    qstash.flow_control.pause("fk")  # the writes: tests/api_v2/test_flow_control_sdk.py
    assert qstash.flow_control.get("fk").is_paused


def test_errors_come_back_as_the_sdk_expects(served: Served, receiver: Sink) -> None:
    served.on_loop(lambda: served.sim.tokens.add("the-only-token"))
    refused, ok = _client(served, "wrong-token"), _client(served, "the-only-token")
    try:
        with pytest.raises(QStashError, match="401"):
            refused.queue.list()
        with pytest.raises(QStashError, match="invalid destination url"):
            ok.message.publish(url="example.com/x", body="x")
        assert ok.queue.list() == []
    finally:
        _close(refused, ok)


async def test_the_async_client(served: Served, receiver: Sink) -> None:
    q = AsyncQStash(TOKEN, base_url=served.url, retry=False)
    q.http._client.event_hooks["response"].append(_acheck)
    try:
        res = await q.message.publish_json(url=receiver.url("/async"), body={"a": 1}, delay="5s")
        m = await q.message.get(res.message_id)  # type: ignore[union-attr]
        assert m.url == receiver.url("/async") and m.body == '{"a": 1}'
        assert (await q.message.cancel_many([m.message_id])) == 1
    finally:
        await q.http._client.aclose()
