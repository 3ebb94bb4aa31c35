"""Flow control on the virtual clock (``Upstash-Flow-Control-Key`` / ``-Value``): parallelism, QStash's rate
model, the waitlist (in order, released on virtual time), pause/resume/pin/unpin/resetRate, and how it
composes with queue parallelism and retries. Virtual destinations: every figure is exact."""

from __future__ import annotations

from collections import Counter

from qstash_sim.core import flowview
from qstash_sim.core.service import SimulatorCore
from qstash_sim.domain.commands import Caller
from qstash_sim.domain.message import MessageState
from qstash_sim.engine.transport import OutboundRequest, Outcome
from qstash_sim.http.headers import QSTASH, publish_command

CALLER = Caller(account="fc")
URL = "https://api.example.com/work"


def _core(answer_ms: int = 0, status: int = 200) -> SimulatorCore:
    core = SimulatorCore(seed=3)
    if answer_ms or status != 200:
        core.virtual_transport.responder = lambda req: Outcome.response(status, b"{}", duration_ms=answer_ms)
    return core


def _publish(core: SimulatorCore, value: str, *, key: str = "k", queue: str | None = None, **extra: str) -> str:
    headers = {"Upstash-Flow-Control-Key": key, "Upstash-Flow-Control-Value": value, **extra}
    return core.publish(CALLER, publish_command(URL, headers, b"x", queue=queue, dialect=QSTASH)).message_id


def _start_times(core: SimulatorCore) -> list[int]:
    """When each attempt started, relative to the first, in order."""
    starts = sorted(e.detail["startedMs"] for e in core.world.journal.entries if e.kind == "attempt")
    return [t - starts[0] for t in starts]


def _most_in_flight(core: SimulatorCore) -> int:
    rows = [e.detail for e in core.world.journal.entries if e.kind == "attempt"]
    steps = sorted([(d["startStep"], 1) for d in rows] + [(d["endStep"], -1) for d in rows])
    running = most = 0
    for _, d in steps:
        running += d
        most = max(most, running)
    return most


async def test_rate_admits_at_most_rate_starts_per_period_from_the_first_start() -> None:
    core = _core()
    for _ in range(10):
        _publish(core, "rate=3, period=10s")
    await core.advance("1m")
    assert _start_times(core) == [0, 0, 0, 10_000, 10_000, 10_000, 20_000, 20_000, 20_000, 30_000]
    assert all(m.state is MessageState.DELIVERED for m in core.messages())


async def test_the_default_period_is_one_second_and_the_count_is_reported() -> None:
    core = _core()
    for _ in range(5):
        _publish(core, "rate=2")
    await core.settle()
    view = flowview.flow_key(core, CALLER, "k")
    assert (view.rate_count, view.wait_list_size, view.period_s, view.period_start_ms) == (2, 3, 1, core.world.now)
    await core.advance("1s")
    assert flowview.flow_key(core, CALLER, "k").wait_list_size == 1
    await core.advance("1s")
    assert _start_times(core) == [0, 0, 1000, 1000, 2000]


async def test_parallelism_bounds_attempts_in_flight_on_virtual_time() -> None:
    core = _core(answer_ms=5000)
    for _ in range(6):
        _publish(core, "parallelism=2")
    await core.settle()
    view = flowview.flow_key(core, CALLER, "k")
    assert (view.parallelism_count, view.wait_list_size) == (2, 4)
    await core.advance("1m")
    assert _start_times(core) == [0, 0, 5000, 5000, 10_000, 10_000]
    assert _most_in_flight(core) == 2


async def test_rate_and_parallelism_together() -> None:
    core = _core(answer_ms=25_000)
    for _ in range(6):
        _publish(core, "rate=2, parallelism=3, period=10s")
    await core.advance("2m")
    # t0: 2 (rate); 10 s: 1 more (parallelism 3 is full); 25 s: two answers free slots, 2 start (period from 25 s)...
    assert _start_times(core) == [0, 0, 10_000, 25_000, 25_000, 35_000]
    assert _most_in_flight(core) == 3


async def test_the_waitlist_is_first_come_first_out() -> None:
    core = _core(answer_ms=1000)
    ids = [_publish(core, "parallelism=1") for _ in range(5)]
    await core.advance("10s")
    order = [e.message_id for e in core.world.journal.entries if e.kind == "attempt"]
    assert order == ids


async def test_keys_are_independent_and_shared_across_urls() -> None:
    core = _core(answer_ms=1000)
    for _ in range(3):
        _publish(core, "parallelism=1", key="a")
        _publish(core, "parallelism=1", key="b")
    await core.settle()
    counts = {v.key: v.parallelism_count for v in flowview.flow_keys(core, CALLER)}
    assert counts == {"a": 1, "b": 1}
    await core.advance("3s")
    assert Counter(_start_times(core)) == {0: 2, 1000: 2, 2000: 2}


async def test_queue_parallelism_composes_with_flow_control() -> None:
    core = _core(answer_ms=1000)
    core.upsert_queue(CALLER, "q", parallelism=4, paused=None)
    for _ in range(4):
        _publish(core, "parallelism=1", queue="q")
    await core.advance("10s")
    assert _start_times(core) == [0, 1000, 2000, 3000]  # the key's 1 wins over the queue's 4
    core.upsert_queue(CALLER, "q2", parallelism=1, paused=None)
    for _ in range(3):
        _publish(core, "parallelism=5", key="wide", queue="q2")
    await core.advance("10s")
    assert _most_in_flight(core) == 1  # and the queue's 1 wins over the key's 5


async def test_retries_pass_the_gate_and_hold_no_slot_while_waiting() -> None:
    core = _core(status=500)
    mid = _publish(core, "rate=1, period=1m", **{"Upstash-Retries": "2", "Upstash-Retry-Delay": "1000"})
    other = _publish(core, "rate=1, period=1m", **{"Upstash-Retries": "0"})
    await core.advance("5m")
    starts = {}
    for e in core.world.journal.entries:
        if e.kind == "attempt":
            starts.setdefault(e.message_id, []).append(e.detail["startedMs"] - core.messages()[0].created_ms)
    # one start per minute: mid at 0, other at 1 m (waiting), mid's retries at 2 m and 3 m
    assert starts == {mid: [0, 120_000, 180_000], other: [60_000]}


async def test_pause_holds_everything_and_resume_releases_in_order() -> None:
    core = _core()
    flowview.pause(core, CALLER, "k")
    ids = [_publish(core, "parallelism=10") for _ in range(3)]
    await core.advance("1h")
    assert flowview.flow_key(core, CALLER, "k").wait_list_size == 3 and not core.world.inbox
    view = flowview.resume(core, CALLER, "k")
    assert not view.paused
    await core.settle()
    assert [d.message_id for d in core.world.inbox] == ids


async def test_pin_overrides_what_messages_ask_until_unpinned() -> None:
    core = _core(answer_ms=1000)
    flowview.pin(core, CALLER, "k", parallelism=1, rate=None, period_s=None)
    for _ in range(3):
        _publish(core, "parallelism=50")
    view = flowview.flow_key(core, CALLER, "k")
    assert (view.parallelism, view.pinned_parallelism, view.pinned_rate) == (1, True, False)
    await core.advance("5s")
    assert _start_times(core) == [0, 1000, 2000]
    flowview.unpin(core, CALLER, "k", parallelism=True, rate=False)
    _publish(core, "parallelism=50")
    assert flowview.flow_key(core, CALLER, "k").parallelism == 50


async def test_reset_rate_ends_the_period_now() -> None:
    core = _core()
    for _ in range(4):
        _publish(core, "rate=1, period=1h")
    await core.settle()
    assert len(core.world.inbox) == 1
    await core.advance("1m")
    view = flowview.reset_rate(core, CALLER, "k")
    await core.settle()
    assert len(core.world.inbox) == 2 and view.period_start_ms == core.world.now
    assert flowview.flow_key(core, CALLER, "k").rate_count == 1


async def test_a_cancelled_waiting_message_leaves_the_waitlist() -> None:
    core = _core()
    ids = [_publish(core, "rate=1, period=1m") for _ in range(3)]
    await core.settle()
    core.cancel_message(CALLER, ids[1])
    assert flowview.flow_key(core, CALLER, "k").wait_list_size == 1
    await core.advance("1m")
    assert [d.message_id for d in core.world.inbox] == [ids[0], ids[2]]


async def test_a_new_message_raising_parallelism_releases_waiters() -> None:
    core = _core(answer_ms=10_000)
    for _ in range(4):
        _publish(core, "parallelism=1")
    await core.settle()
    _publish(core, "parallelism=5")
    await core.settle()
    assert flowview.flow_key(core, CALLER, "k").parallelism_count == 5


def test_the_request_carries_no_flow_control_header() -> None:
    seen: list[OutboundRequest] = []
    core = SimulatorCore(seed=1)
    core.virtual_transport.responder = lambda req: seen.append(req)  # type: ignore[func-returns-value]
    _publish(core, "parallelism=1")
    import asyncio

    asyncio.run(core.settle())
    assert seen and not any(h.lower().startswith("upstash-flow") for h in seen[0].headers)
