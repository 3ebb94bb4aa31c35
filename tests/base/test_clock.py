from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from qstash_sim.base.clock import DEFAULT_START_MS, Clock, RealClock, VirtualClock, format_ms


def test_virtual_clock_starts_at_2026() -> None:
    c = VirtualClock()
    assert c.now == c.now_ms() == DEFAULT_START_MS == 1_767_225_600_000
    assert format_ms(c.now) == "2026-01-01T00:00:00.000Z"
    assert c.is_virtual and isinstance(c, Clock)


def test_virtual_clock_moves_only_when_told() -> None:
    c = VirtualClock(start_ms=1000)
    assert c.advance(timedelta(seconds=2)) == 3000
    assert c.advance(1.5) == 4500
    assert c.advance("1m") == 64_500
    assert c.move_to(100_000) == 100_000
    assert c.move_to(datetime(1970, 1, 1, 0, 2, tzinfo=UTC)) == 120_000
    assert c.now == 120_000


def test_virtual_clock_refuses_backwards() -> None:
    c = VirtualClock(start_ms=5000)
    with pytest.raises(ValueError, match="backwards"):
        c.move_to(4999)
    with pytest.raises(ValueError):
        c.advance(-1)
    with pytest.raises(TypeError):
        c.advance(None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="timezone"):
        c.move_to(datetime(2026, 1, 1))
    assert c.set(10) == 10  # reset path may go back


async def test_virtual_wait_until_waits_for_wake_only() -> None:
    c = VirtualClock()
    wake = asyncio.Event()
    task = asyncio.ensure_future(c.wait_until(c.now - 1, wake))  # already "due": still waits for wake
    await asyncio.sleep(0)
    assert not task.done()
    wake.set()
    await task


def test_real_clock_follows_wall_time() -> None:
    import time

    c = RealClock()
    assert not c.is_virtual
    assert abs(c.now_ms() - time.time() * 1000) < 60_000


async def test_real_wait_until_returns_on_wake_or_past_deadline() -> None:
    c = RealClock()
    wake = asyncio.Event()
    await c.wait_until(c.now_ms() - 10, wake)  # past: returns at once
    task = asyncio.ensure_future(c.wait_until(c.now_ms() + 3_600_000, wake))
    await asyncio.sleep(0)
    assert not task.done()
    wake.set()
    await asyncio.wait_for(task, 5)
    await c.wait_until(c.now_ms() + 10, asyncio.Event())  # a short real wait ends by itself
