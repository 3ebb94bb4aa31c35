"""Engine tests: virtual clock, virtual transport, no sockets, no sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from qstash_sim.base.clock import RealClock, VirtualClock
from qstash_sim.base.seed import Seed
from qstash_sim.domain.message import EventState, HistoryEvent, Message, MessageState
from qstash_sim.domain.queue import Queue
from qstash_sim.domain.schedule import Schedule
from qstash_sim.domain.world import World
from qstash_sim.engine.cron import next_cron_ms
from qstash_sim.engine.engine import AdvanceLimitError, Engine
from qstash_sim.engine.transport import OutboundRequest, Outcome, VirtualTransport

T0 = 1_767_225_600_000  # 2026-01-01T00:00Z
S = 1000
M = 60 * S
H = 60 * M


class Harness:
    """A world, a virtual destination and an engine, plus helpers to make messages and schedules."""

    def __init__(self, start_ms: int = T0, seed: int = 1) -> None:
        self.world = World(clock=VirtualClock(start_ms), seed=Seed(seed))
        self.vt = VirtualTransport()
        self.fires: list[int] = []
        self.engine = Engine(self.world, self.vt, on_schedule_fire=self._fire)
        self._n = 0

    @property
    def now(self) -> int:
        return self.world.now

    def respond(self, fn: Callable[[OutboundRequest], Outcome | None]) -> None:
        self.vt.responder = fn

    def message(self, url: str = "https://example.com/hook", *, submit: bool = True, **kw: Any) -> Message:
        self._n += 1
        now = self.now
        fields: dict[str, Any] = dict(
            message_id=f"msg_{self._n:04d}",
            account="acct",
            url=url,
            method="POST",
            body=b'{"n":%d}' % self._n,
            content_type="application/json",
            headers={"X-Trace": "t1"},
            max_retries=3,
            retry_delay_expr=None,
            timeout_ms=30 * S,
            created_ms=now,
            not_before_ms=now,
            request_id=f"req_{self._n}",
        )
        fields.update(kw)
        msg = Message(**fields)
        msg.history.append(HistoryEvent(now, EventState.CREATED))
        acct = self.world.accounts.get(msg.account)
        acct.messages[msg.message_id] = msg
        if msg.queue_name and msg.queue_name not in acct.queues:
            acct.queues[msg.queue_name] = Queue(msg.queue_name, now, now)
        if submit:
            self.engine.submit(msg)
        return msg

    def queue(self, name: str, parallelism: int = 1) -> Queue:
        q = Queue(name, self.now, self.now, parallelism=parallelism)
        self.world.accounts.get("acct").queues[name] = q
        return q

    def schedule(self, cron: str, sid: str = "scd_1", **kw: Any) -> Schedule:
        fields: dict[str, Any] = dict(
            schedule_id=sid,
            account="acct",
            cron=cron,
            destination="https://example.com/cron",
            method="POST",
            body=b"tick",
            content_type=None,
            headers={},
            retries=0,
            retry_delay_expr=None,
            timeout_ms=30 * S,
            delay_ms=0,
            created_ms=self.now,
        )
        fields.update(kw)
        sch = Schedule(**fields)
        self.world.accounts.get("acct").schedules[sid] = sch
        self.engine.schedule_changed(sch)
        return sch

    def _fire(self, sch: Schedule, fire_ms: int) -> Message | None:
        self.fires.append(fire_ms)
        self._n += 1
        now = self.now
        msg = Message(
            message_id=f"msg_c{self._n:05d}",
            account=sch.account,
            url=sch.destination,
            method=sch.method,
            body=sch.body,
            content_type=sch.content_type,
            headers=dict(sch.headers),
            max_retries=sch.retries,
            retry_delay_expr=sch.retry_delay_expr,
            timeout_ms=sch.timeout_ms,
            created_ms=now,
            not_before_ms=now + sch.delay_ms,
            queue_name=sch.queue_name,
            schedule_id=sch.schedule_id,
        )
        msg.history.append(HistoryEvent(now, EventState.CREATED))
        self.world.accounts.get(sch.account).messages[msg.message_id] = msg
        return msg

    def attempts(self, msg: Message | None = None) -> list[int]:
        """Times (ms after T0) of the deliveries, of one message or of all."""
        return [d.time_ms - T0 for d in self.world.inbox if msg is None or d.message_id == msg.message_id]

    def order(self) -> list[str]:
        return [d.message_id for d in self.world.inbox]


def always(status: int, headers: dict[str, str] | None = None) -> Callable[[OutboundRequest], Outcome]:
    return lambda req: Outcome.response(status, b"nope", headers or {})


def fail_n_times(n: int, status: int = 500) -> Callable[[OutboundRequest], Outcome | None]:
    """Fail the first ``n`` attempts of each message, then accept."""

    def responder(req: OutboundRequest) -> Outcome | None:
        return Outcome.response(status) if int(req.headers["Upstash-Retried"]) < n else None

    return responder


@pytest.fixture
def h() -> Harness:
    return Harness()


# ----------------------------------------------------------------------------------------------------
# single messages


async def test_plain_publish_is_delivered_now_with_headers(h: Harness) -> None:
    msg = h.message(headers={"X-Trace": "t1", "user-agent": "spoofed"})
    assert h.engine.pending_events == 1
    await h.engine.settle()
    assert msg.state is MessageState.DELIVERED
    assert [e.state for e in msg.history] == [EventState.CREATED, EventState.ACTIVE, EventState.DELIVERED]
    (d,) = h.world.inbox
    assert d.time_ms == T0 and d.virtual and d.status == 200 and d.body == msg.body
    assert set(d.headers) == {
        "X-Trace",
        "Content-Type",
        "Upstash-Message-Id",
        "Upstash-Retried",
        "Upstash-Caller-Ip",
        "Upstash-Region",
        "User-Agent",
        "Upstash-Signature",
    }
    assert d.headers["User-Agent"] == "Upstash-QStash"
    assert (d.headers["Upstash-Caller-Ip"], d.headers["Upstash-Region"]) == (msg.caller_ip, "EU-CENTRAL-1")
    assert d.headers["Upstash-Retried"] == "0"
    assert d.headers["Upstash-Message-Id"] == msg.message_id
    (j,) = h.world.journal.of_kind("attempt")
    assert (j.message_id, j.retried, j.outcome, j.status, j.request_id) == (
        msg.message_id,
        0,
        "delivered",
        200,
        "req_1",
    )
    assert h.engine.pending_events == 0


async def test_exact_default_backoff_until_dlq(h: Harness) -> None:
    h.respond(always(503))
    msg = h.message(max_retries=5)
    await h.engine.advance("31h")
    gaps = [12 * S, (2 * 60 + 28) * S, (30 * 60 + 8) * S, (6 * 3600 + 7 * 60 + 6) * S, 24 * H]
    expected = [0]
    for g in gaps:
        expected.append(expected[-1] + g)
    assert h.attempts(msg) == expected
    assert expected[-1] == 110_394 * S  # ~30.7 virtual hours
    assert msg.state is MessageState.FAILED
    assert [d.headers["Upstash-Retried"] for d in h.world.inbox] == ["0", "1", "2", "3", "4", "5"]
    dlq_id = f"{T0 + expected[-1]}-0"
    assert msg.dlq_id == dlq_id
    entry = h.world.accounts.get("acct").dlq[dlq_id]
    assert (entry.response_status, entry.response_body, entry.message is msg) == (503, b"nope", True)
    assert [j.outcome for j in h.world.journal.of_kind("attempt")] == ["retry"] * 5 + ["failed"]
    retry_events = [e for e in msg.history if e.state is EventState.RETRY]
    assert [e.next_delivery_ms - T0 for e in retry_events] == expected[1:]  # type: ignore[operator]
    assert h.now == T0 + 31 * H


async def test_retry_after_is_honoured(h: Harness) -> None:
    answers = iter(
        [
            Outcome.response(429, headers={"Retry-After": "7"}),
            Outcome.response(503, headers={"X-RateLimit-Reset": "6m5s"}),
            Outcome.response(503, headers={"Retry-After": "90000"}),  # over a day: default backoff (n=3)
            None,
        ]
    )
    h.respond(lambda req: next(answers))
    msg = h.message()
    await h.engine.advance("2h")
    assert h.attempts(msg) == [0, 7 * S, 7 * S + 365 * S, 7 * S + 365 * S + 1808 * S]
    assert msg.state is MessageState.DELIVERED


async def test_retry_after_zero_retries_at_once(h: Harness) -> None:
    first = Outcome.response(429, headers={"Retry-After": "0"})
    h.respond(lambda req: first if req.headers["Upstash-Retried"] == "0" else None)
    msg = h.message()
    await h.engine.settle()
    assert h.attempts(msg) == [0, 0]
    assert msg.state is MessageState.DELIVERED


async def test_489_non_retryable_fails_at_once(h: Harness) -> None:
    h.respond(always(489, {"Upstash-NonRetryable-Error": "true"}))
    msg = h.message(max_retries=3)
    await h.engine.advance("2d")
    assert h.attempts(msg) == [0]
    assert msg.state is MessageState.FAILED and msg.dlq_id == f"{T0}-0"
    # 489 without the header is an ordinary failure
    h.respond(always(489))
    other = h.message(max_retries=1)
    await h.engine.advance("1m")
    assert len(h.attempts(other)) == 2


async def test_retry_delay_expression(h: Harness) -> None:
    h.respond(always(500))
    msg = h.message(max_retries=4, retry_delay_expr="pow(2, retried) * 1000")
    await h.engine.advance("1m")
    assert h.attempts(msg) == [0, 1 * S, 3 * S, 7 * S, 15 * S]
    assert msg.state is MessageState.FAILED


async def test_bad_expression_falls_back_to_default_with_a_warning(h: Harness) -> None:
    h.respond(always(500))
    msg = h.message(max_retries=1, retry_delay_expr="1000 / retried")  # undefined for retried=0
    await h.engine.advance("1m")
    assert h.attempts(msg) == [0, 12 * S]
    assert "undefined for retried=0" in (h.world.journal.of_kind("warning")[0].error or "")


async def test_delayed_first_attempt(h: Harness) -> None:
    msg = h.message(not_before_ms=T0 + 90 * S)
    await h.engine.advance("89s")
    assert h.world.inbox == [] and msg.state is MessageState.PENDING
    await h.engine.advance("1s")
    assert h.attempts(msg) == [90 * S] and msg.state is MessageState.DELIVERED


async def test_virtual_hang_and_timeout(h: Harness) -> None:
    h.respond(lambda req: Outcome.hang(45 * S) if req.url.endswith("slow") else Outcome.hang(5 * S))
    fast = h.message("https://example.com/fast")
    slow = h.message("https://example.com/slow", max_retries=0, timeout_ms=30 * S)
    await h.engine.settle()
    assert fast.state is MessageState.PENDING  # still waiting for its answer
    await h.engine.advance("4999ms")
    assert fast.state is MessageState.PENDING
    await h.engine.advance("1ms")
    assert fast.state is MessageState.DELIVERED and fast.history[-1].time_ms == T0 + 5 * S
    await h.engine.advance("25s")
    assert slow.state is MessageState.FAILED
    assert slow.history[-1].time_ms == T0 + 30 * S and slow.history[-1].error == "timeout after 30000ms"


async def test_cancel_mid_retry(h: Harness) -> None:
    h.respond(always(500))
    msg = h.message()
    await h.engine.advance("5s")
    assert msg.state is MessageState.RETRY
    assert h.engine.cancel(msg) is True
    assert h.engine.cancel(msg) is False
    assert h.engine.pending_events == 0
    await h.engine.advance("2d")
    assert h.attempts(msg) == [0]
    assert msg.state is MessageState.CANCELLED and msg.history[-1].state is EventState.CANCELLED


async def test_cancel_while_in_flight_wins(h: Harness) -> None:
    def responder(req: OutboundRequest) -> Outcome:
        h.engine.cancel(msg)  # the cancel lands while the request is on the wire
        return Outcome.response(500)

    h.respond(responder)
    msg = h.message()
    await h.engine.advance("1h")
    assert msg.state is MessageState.CANCELLED and h.attempts(msg) == [0]
    assert h.world.journal.of_kind("attempt")[0].outcome == "cancelled"


async def test_cancelled_before_first_attempt(h: Harness) -> None:
    msg = h.message(not_before_ms=T0 + M)
    assert h.engine.cancel(msg)
    await h.engine.advance("2m")
    assert h.world.inbox == []


# ----------------------------------------------------------------------------------------------------
# queues


async def test_queue_is_fifo_under_failures(h: Harness) -> None:
    def responder(req: OutboundRequest) -> Outcome | None:
        first_msg = req.headers["Upstash-Message-Id"] == "msg_0001"
        return Outcome.response(500) if first_msg and req.headers["Upstash-Retried"] != "2" else None

    h.respond(responder)
    q = h.queue("orders")
    a, b, c = (h.message(queue_name="orders") for _ in range(3))
    assert q.active == {a.message_id} and list(q.waiting) == [b.message_id, c.message_id]
    await h.engine.advance("1h")
    assert h.order() == [a.message_id, a.message_id, a.message_id, b.message_id, c.message_id]
    assert h.attempts() == [0, 12 * S, 160 * S, 160 * S, 160 * S]
    assert q.lag == 0


async def test_plain_publishes_go_in_parallel(h: Harness) -> None:
    h.respond(fail_n_times(1))
    a, b = h.message(), h.message()
    await h.engine.settle()
    assert h.order() == [a.message_id, b.message_id]  # both tried at once, in submit order
    await h.engine.advance("12s")
    assert h.attempts() == [0, 0, 12 * S, 12 * S]


async def test_queue_parallelism(h: Harness) -> None:
    h.respond(lambda req: Outcome.hang(10 * S))
    q = h.queue("jobs", parallelism=2)
    msgs = [h.message(queue_name="jobs") for _ in range(5)]
    await h.engine.settle()
    assert len(q.active) == 2 and len(q.waiting) == 3
    await h.engine.advance("30s")
    assert h.attempts() == [0, 0, 10 * S, 10 * S, 20 * S]
    assert all(m.state is MessageState.DELIVERED for m in msgs)


async def test_pause_mid_retry_then_resume(h: Harness) -> None:
    h.respond(fail_n_times(1))
    q = h.queue("q")
    a, b = h.message(queue_name="q"), h.message(queue_name="q")
    await h.engine.advance("5s")
    assert a.state is MessageState.RETRY
    q.paused = True
    await h.engine.advance("1h")
    assert h.attempts() == [0]  # the retry due at 12 s is held, b never starts
    q.paused = False
    h.engine.queue_resumed("acct", "q")
    await h.engine.settle()
    resumed = 3605 * S
    assert h.attempts(a) == [0, resumed]
    assert h.attempts(b) == [resumed]
    assert a.state is MessageState.DELIVERED and b.state is MessageState.RETRY


async def test_paused_queue_keeps_accepting(h: Harness) -> None:
    q = h.queue("q")
    q.paused = True
    msg = h.message(queue_name="q")
    await h.engine.advance("1d")
    assert h.world.inbox == [] and list(q.waiting) == [msg.message_id]
    q.paused = False
    h.engine.queue_resumed("acct", "q")
    await h.engine.settle()
    assert msg.state is MessageState.DELIVERED


async def test_delete_queue_cancels_pending(h: Harness) -> None:
    h.respond(always(500))
    h.queue("q")
    a, b, c = (h.message(queue_name="q") for _ in range(3))
    await h.engine.advance("1s")
    assert h.engine.queue_deleted("acct", "q") == 3
    del h.world.accounts.get("acct").queues["q"]
    await h.engine.advance("2d")
    assert h.order() == [a.message_id]
    assert all(m.state is MessageState.CANCELLED for m in (a, b, c))
    assert h.engine.pending_events == 0


# ----------------------------------------------------------------------------------------------------
# schedules


async def test_cron_fires_and_tracks_states(h: Harness) -> None:
    answers = iter([None, Outcome.response(500)])
    h.respond(lambda req: next(answers))
    sch = h.schedule("*/5 * * * *")
    assert sch.next_schedule_time == T0 + 5 * M
    await h.engine.advance("5m")
    (first,) = sch.last_schedule_states
    assert sch.last_schedule_states == {first: "SUCCESS"}
    assert h.world.inbox[0].headers["Upstash-Schedule-Id"] == "scd_1"
    await h.engine.advance("5m")
    (second,) = sch.last_schedule_states
    assert sch.last_schedule_states == {second: "FAIL"}  # retries=0: failed at once
    assert sch.last_schedule_time == T0 + 10 * M and sch.next_schedule_time == T0 + 15 * M
    assert h.fires == [T0 + 5 * M, T0 + 10 * M]


async def test_cron_in_progress_while_retrying(h: Harness) -> None:
    h.respond(always(500))
    sch = h.schedule("0 * * * *", retries=2)
    await h.engine.advance("1h")
    assert list(sch.last_schedule_states.values()) == ["IN_PROGRESS"]


async def test_cron_tz_across_dst() -> None:
    start = int(datetime(2026, 3, 6, tzinfo=UTC).timestamp() * 1000)
    h = Harness(start_ms=start)
    h.schedule("CRON_TZ=America/New_York 0 9 * * *")
    await h.engine.advance("4d")  # New York springs forward on 2026-03-08
    fired = [datetime.fromtimestamp(t / 1000, tz=UTC).strftime("%m-%d %H:%M") for t in h.fires]
    assert fired == ["03-06 14:00", "03-07 14:00", "03-08 13:00", "03-09 13:00"]


def test_next_cron_ms() -> None:
    assert next_cron_ms("*/5 * * * *", T0) == T0 + 5 * M
    assert next_cron_ms("CRON_TZ=Europe/Berlin 0 0 * * *", T0) == T0 + 23 * H
    with pytest.raises(ValueError, match="unknown time zone"):
        next_cron_ms("CRON_TZ=Mars/Base 0 0 * * *", T0)


async def test_every_minute_for_30_days_fires_43200_times(h: Harness, capsys: pytest.CaptureFixture[str]) -> None:
    sch = h.schedule("* * * * *")
    started = time.perf_counter()
    await h.engine.advance("30d")
    elapsed = time.perf_counter() - started
    assert len(h.fires) == 43_200
    assert len(h.world.inbox) == 43_200
    assert h.fires[0] == T0 + M and h.fires[-1] == T0 + 30 * 24 * H
    assert sch.next_schedule_time == T0 + 30 * 24 * H + M
    assert len(sch.last_schedule_states) == 1
    assert h.engine.pending_events == 1
    with capsys.disabled():  # a measurement, not an assertion
        print(f"\n43,200 cron fires + deliveries over 30 virtual days: {elapsed:.2f}s real")


async def test_paused_schedule_skips_but_keeps_planning(h: Harness) -> None:
    sch = h.schedule("* * * * *")
    await h.engine.advance("2m")
    sch.is_paused = True
    await h.engine.advance("10m")
    assert len(h.fires) == 2 and sch.next_schedule_time == T0 + 13 * M
    sch.is_paused = False
    await h.engine.advance("3m")
    assert h.fires[2:] == [T0 + 13 * M, T0 + 14 * M, T0 + 15 * M]


async def test_stale_generation_is_ignored(h: Harness) -> None:
    old = h.schedule("* * * * *")
    await h.engine.advance("1m")
    # Overwrite with a new object under the same id (as the core does), every 10 minutes now.
    new = h.schedule("*/10 * * * *", generation=old.generation + 1)
    await h.engine.advance("20m")
    assert h.fires == [T0 + M, T0 + 10 * M, T0 + 20 * M]
    # In-place change: schedule_changed bumps the generation, the old plan is dropped.
    new.cron = "0 * * * *"
    h.engine.schedule_changed(new)
    await h.engine.advance("40m")
    assert h.fires[-1] == T0 + H and len(h.fires) == 4
    # Delete: generation bump + removal; nothing fires again.
    new.generation += 1
    del h.world.accounts.get("acct").schedules["scd_1"]
    await h.engine.advance("3h")
    assert len(h.fires) == 4 and h.engine.pending_events == 0


async def test_schedule_with_queue_and_delay(h: Harness) -> None:
    h.queue("q")
    h.schedule("* * * * *", queue_name="q", delay_ms=30 * S)
    await h.engine.advance("2m")
    assert h.attempts() == [M + 30 * S]


# ----------------------------------------------------------------------------------------------------
# running, determinism, reset


def _scenario_journal(seed: int) -> tuple[list[tuple], list[tuple]]:
    import asyncio

    async def run() -> tuple[list[tuple], list[tuple]]:
        h = Harness(seed=seed)
        h.respond(fail_n_times(2))
        h.queue("q")
        for i in range(3):
            h.message(queue_name="q" if i % 2 else None)
        h.schedule("*/2 * * * *", retries=3)
        await h.engine.advance("10m")
        journal = [(e.seq, e.time_ms, e.kind, e.message_id, e.retried, e.outcome) for e in h.world.journal]
        inbox = [(d.seq, d.time_ms, d.message_id, tuple(sorted(d.headers.items()))) for d in h.world.inbox]
        return journal, inbox

    return asyncio.run(run())


def test_same_seed_same_journal_and_inbox() -> None:
    a, b = _scenario_journal(7), _scenario_journal(7)
    assert a == b and len(a[0]) > 10
    assert _scenario_journal(8)[1] != a[1]  # signatures carry seeded jti values


async def test_runner_delivers_due_work_without_advance(h: Harness) -> None:
    h.engine.start()
    try:
        msg = h.message()
        await h.engine.idle()
        assert msg.state is MessageState.DELIVERED and h.now == T0
        later = h.message(not_before_ms=T0 + M)
        await h.engine.idle()
        assert later.state is MessageState.PENDING  # virtual time did not move by itself
        await h.engine.advance("1m")
        assert later.state is MessageState.DELIVERED
    finally:
        await h.engine.close()
    assert h.engine.errors == []


async def test_runner_with_real_clock() -> None:
    world = World(clock=RealClock(), seed=Seed(1))
    engine = Engine(world, VirtualTransport(), on_schedule_fire=lambda s, t: None)
    engine.start()
    try:
        now = world.now
        msg = Message("msg_r", "acct", "https://example.com/", "POST", b"", None, {}, 0, None, 1000, now, now)
        world.accounts.get("acct").messages["msg_r"] = msg
        engine.submit(msg)
        await engine.idle()
        assert msg.state is MessageState.DELIVERED
        with pytest.raises(TypeError, match="VirtualClock"):
            await engine.advance("1s")
    finally:
        await engine.close()


async def test_run_until(h: Harness) -> None:
    h.respond(fail_n_times(2))
    msg = h.message()
    assert await h.engine.run_until(lambda: msg.state is MessageState.DELIVERED, "1h")
    assert h.now == T0 + 160 * S  # stopped where it became true
    assert not await h.engine.run_until(lambda: False, "1m")
    assert h.now == T0 + 160 * S + M


async def test_reset_drops_every_event(h: Harness) -> None:
    h.respond(always(500))
    h.message()
    h.schedule("* * * * *")
    await h.engine.settle()
    assert h.engine.pending_events == 2
    h.engine.reset()
    h.world.reset()
    assert h.engine.pending_events == 0
    await h.engine.advance("1h")
    assert h.world.inbox == [] and h.fires == []


async def test_one_info_line_per_attempt(h: Harness, caplog: pytest.LogCaptureFixture) -> None:
    h.respond(fail_n_times(1))
    msg = h.message()
    with caplog.at_level("INFO", logger="qstash_sim.engine"):
        await h.engine.advance("12s")
    lines = [r.getMessage() for r in caplog.records if r.name == "qstash_sim.engine"]
    assert len(lines) == 2
    assert lines[0].startswith(f"attempt {msg.message_id} retried=0 POST https://example.com/hook -> 500 retry")
    assert lines[1].endswith("-> 200 delivered (virtual)")


async def test_raising_parallelism_starts_more(h: Harness) -> None:
    h.respond(lambda req: Outcome.hang(M))
    q = h.queue("q")
    for _ in range(3):
        h.message(queue_name="q")
    await h.engine.settle()
    assert len(q.active) == 1
    q.parallelism = 3
    h.engine.queue_resumed("acct", "q")
    await h.engine.settle()
    assert len(q.active) == 3 and h.attempts() == [0, 0, 0]


async def test_schedule_deleted(h: Harness) -> None:
    sch = h.schedule("* * * * *")
    h.engine.schedule_deleted(sch)
    assert sch.next_schedule_time is None
    await h.engine.advance("5m")
    assert h.fires == [] and h.engine.pending_events == 0


async def test_at_runs_callbacks_in_heap_order_skips_dead_ones_and_reset_drops_them(h: Harness) -> None:
    ran: list[tuple[str, int]] = []
    alive = {"b": True}
    h.engine.at(T0 + 2 * M, lambda: ran.append(("late", h.now)))
    h.engine.at(T0 + M, lambda: ran.append(("a", h.now)))
    h.engine.at(T0 + M, lambda: ran.append(("b", h.now)), alive=lambda: alive["b"])
    h.engine.at(T0 + M, lambda: ran.append(("c", h.now)))  # same instant: sequence order
    assert h.engine.pending_events == 4
    alive["b"] = False
    assert h.engine.pending_events == 3
    await h.engine.advance("90s")
    assert ran == [("a", T0 + M), ("c", T0 + M)]
    h.engine.reset()
    await h.engine.advance("1h")
    assert ran == [("a", T0 + M), ("c", T0 + M)]


# ----------------------------------------------------------------------------------------------------
# bounded work per advance


async def test_an_advance_over_400_days_is_refused_before_anything_runs(h: Harness) -> None:
    h.schedule("* * * * *")
    before = h.now
    with pytest.raises(AdvanceLimitError, match="over the limit of one advance \\(400 days"):
        await h.engine.advance("1000d")
    assert h.now == before and h.fires == []
    h.engine.max_advance_ms = 86_400_000
    await h.engine.advance("1d")  # the limit itself is allowed
    assert len(h.fires) == 24 * 60


async def test_an_advance_stops_at_the_event_cap_and_keeps_what_ran(h: Harness) -> None:
    h.schedule("* * * * *")
    h.engine.max_advance_events = 100
    with pytest.raises(AdvanceLimitError, match="stopped after 1\\d\\d events"):
        await h.engine.advance("1d")
    ran = len(h.fires)  # each fire is two events: the fire and its message's attempt
    assert 50 <= ran < 1440
    assert h.now == h.fires[-1]  # the clock is at the last event run, not at the target
    await h.engine.advance("1m")  # advancing again goes on from there
    assert h.fires[ran:] == [h.fires[ran - 1] + M]


async def test_the_clock_ends_in_year_9999_without_an_error() -> None:
    from qstash_sim.base.clock import MAX_TIME_MS

    near_end = MAX_TIME_MS - 90 * 86_400_000  # early October 9999
    h = Harness(start_ms=near_end)
    sch = h.schedule("0 0 1 * *")  # monthly: Nov 1 and Dec 1, then January 10000, which does not exist
    await h.engine.advance("89d")
    assert len(h.fires) == 2 and h.engine.errors == []
    assert sch.next_schedule_time is None and h.engine.next_due_ms is None  # no next fire: none planned
    with pytest.raises(AdvanceLimitError, match="pass the clock's last instant"):
        await h.engine.advance("2d")
    assert h.now == near_end + 89 * 86_400_000  # nothing moved
    late = Harness(start_ms=MAX_TIME_MS - 1000)
    late_sch = late.schedule("0 0 1 1 *")  # planned after the end of the clock: never fires
    assert late_sch.next_schedule_time is None
