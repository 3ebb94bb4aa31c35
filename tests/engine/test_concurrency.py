"""Concurrent delivery on the virtual clock: attempts due together are on the wire together (real sockets,
127.0.0.1), a slow destination holds back no other attempt, the simulator's cap on attempts on the wire
(``Limits.in_flight``) bounds them, and an instant ends (``settle``/``advance`` return) only once every
attempt started at it has landed. No test sleeps: destinations are held and released by the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from qstash_sim.core.service import SimulatorCore
from qstash_sim.domain.commands import Caller
from qstash_sim.domain.message import MessageState
from qstash_sim.domain.world import Limits
from qstash_sim.http.headers import QSTASH, publish_command

CALLER = Caller(account="conc")


class Dest:
    """A loopback destination: ``/hold/*`` waits for ``release``; ``/spin/*`` answers after a few loop
    turns; it records the most requests it had open at once."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.arrived: list[str] = []
        self.open = 0
        self.most_open = 0
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def handle(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived.append(request.path)
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            if request.path.startswith("/hold"):
                await self.release.wait()
            elif request.path.startswith("/spin"):
                for _ in range(50):  # let every other attempt on the wire arrive meanwhile
                    await asyncio.sleep(0)
            return web.Response(body=b"{}", content_type="application/json")
        finally:
            self.open -= 1

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.port}{path}"


@pytest.fixture
async def dest() -> AsyncIterator[Dest]:
    d = Dest()
    await d.server.start_server()
    yield d
    d.release.set()
    await d.server.close()


def _publish(core: SimulatorCore, url: str, headers: dict[str, str] | None = None) -> str:
    cmd = publish_command(url, headers or {}, b"x", dialect=QSTASH)
    return core.publish(CALLER, cmd).message_id


async def _until(pred: Callable[[], bool], turns: int = 20_000) -> None:
    """Let the loop run (no sleeping) until ``pred()`` holds."""
    for _ in range(turns):
        if pred():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition not reached")


def _state(core: SimulatorCore, mid: str) -> MessageState:
    return core.account(CALLER.account).messages[mid].state


async def test_a_hanging_destination_holds_back_no_other_attempt_due_with_it(dest: Dest) -> None:
    core = SimulatorCore(seed=1)
    slow = _publish(core, dest.url("/hold/slow"))
    fast = _publish(core, dest.url("/fast"))
    settling = asyncio.ensure_future(core.settle())
    await _until(lambda: _state(core, fast) is MessageState.DELIVERED)
    assert _state(core, slow) is MessageState.PENDING and not settling.done()  # the instant is not over
    dest.release.set()
    await settling
    assert _state(core, slow) is MessageState.DELIVERED
    await core.close()


async def test_advance_does_not_pass_an_attempt_still_on_the_wire(dest: Dest) -> None:
    core = SimulatorCore(seed=1)
    t0 = core.world.now
    slow = _publish(core, dest.url("/hold/slow"))
    later = _publish(core, dest.url("/later"), {"Upstash-Delay": "10m"})
    advancing = asyncio.ensure_future(core.advance("1h"))
    await _until(lambda: dest.arrived == ["/hold/slow"])
    for _ in range(200):
        await asyncio.sleep(0)
    assert core.world.now == t0 and not advancing.done()  # time waits for the answer
    dest.release.set()
    await advancing
    assert _state(core, slow) is _state(core, later) is MessageState.DELIVERED
    assert dest.arrived == ["/hold/slow", "/later"]
    await core.close()


@pytest.mark.parametrize("cap", [1, 3, 7])
async def test_the_cap_on_attempts_on_the_wire_bounds_them(dest: Dest, cap: int) -> None:
    core = SimulatorCore(seed=1, limits=Limits(in_flight=cap))
    ids = [_publish(core, dest.url(f"/spin/{i}")) for i in range(12)]
    await core.settle()
    assert dest.most_open == cap
    assert all(_state(core, m) is MessageState.DELIVERED for m in ids)
    assert dest.arrived == [f"/spin/{i}" for i in range(12)]  # held ones start first come, first started
    await core.close()


async def test_without_a_cap_every_attempt_due_is_on_the_wire_at_once(dest: Dest) -> None:
    core = SimulatorCore(seed=1, limits=Limits(in_flight=None))
    for i in range(120):  # more than the old connection pool (100): nothing else bounds them
        _publish(core, dest.url(f"/hold/{i}"))
    settling = asyncio.ensure_future(core.settle())
    await _until(lambda: dest.open == 120)
    assert core.engine.wire_count == 120
    dest.release.set()
    await settling
    assert core.engine.wire_count == 0
    await core.close()


def _starts(core: SimulatorCore) -> list[tuple[Any, ...]]:
    """Every attempt's (message id, retried, startStep, endStep), in the order of starts."""
    rows = [e for e in core.world.journal.entries if e.kind == "attempt"]
    return sorted(
        ((e.message_id, e.retried, e.detail["startStep"], e.detail["endStep"]) for e in rows), key=lambda r: r[2]
    )


async def test_the_same_seed_gives_the_same_order_of_starts(dest: Dest) -> None:
    runs = []
    for _ in range(2):
        core = SimulatorCore(seed=7, limits=Limits(in_flight=4))
        fc = {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "parallelism=3"}
        for i in range(15):
            _publish(core, dest.url(f"/spin/{i}"), fc)
        await core.settle()
        runs.append([(mid, retried) for mid, retried, _, _ in _starts(core)])
        await core.close()
    assert runs[0] == runs[1] and len(runs[0]) == 15


async def test_journal_steps_order_starts_and_ends_within_one_instant(dest: Dest) -> None:
    core = SimulatorCore(seed=1, limits=Limits(in_flight=2))
    for i in range(6):
        _publish(core, dest.url(f"/spin/{i}"))
    await core.settle()
    rows = _starts(core)
    assert all(start < end for _, _, start, end in rows)
    events = sorted([(s, 1) for _, _, s, _ in rows] + [(e, -1) for _, _, _, e in rows])
    running, most = 0, 0
    for _, d in events:
        running += d
        most = max(most, running)
    assert most == 2
    await core.close()


async def test_a_virtual_answer_that_takes_time_completes_on_the_virtual_clock() -> None:
    core = SimulatorCore(seed=1)
    core.virtual_transport.responder = None
    from qstash_sim.engine.transport import Outcome

    core.virtual_transport.responder = lambda req: Outcome.hang(3000)
    t0 = core.world.now
    mid = _publish(core, "https://slow.example/x")
    await core.settle()
    assert _state(core, mid) is MessageState.PENDING  # on the wire, in virtual time
    await core.advance("2999ms")
    assert _state(core, mid) is MessageState.PENDING
    await core.advance("1ms")
    assert _state(core, mid) is MessageState.DELIVERED
    entry = next(e for e in core.world.journal.entries if e.kind == "attempt")
    assert (entry.time_ms, entry.detail["startedMs"]) == (t0 + 3000, t0)
    await core.close()


async def test_a_caller_that_stops_waiting_leaves_the_attempt_on_the_wire(dest: Dest) -> None:
    core = SimulatorCore(seed=1, limits=Limits(in_flight=1))
    fc = {"Upstash-Flow-Control-Key": "k", "Upstash-Flow-Control-Value": "parallelism=1"}
    first = _publish(core, dest.url("/hold/1"), fc)
    second = _publish(core, dest.url("/fast"), fc)
    waiting = asyncio.ensure_future(core.settle())
    await _until(lambda: dest.arrived == ["/hold/1"])
    waiting.cancel()  # e.g. a test's timeout
    with pytest.raises(asyncio.CancelledError):
        await waiting
    dest.release.set()
    await core.settle()  # the held attempt lands, frees the cap and the key, the next one goes
    assert _state(core, first) is _state(core, second) is MessageState.DELIVERED
    assert core.engine.wire_count == 0 and dest.arrived == ["/hold/1", "/fast"]
    await core.close()
