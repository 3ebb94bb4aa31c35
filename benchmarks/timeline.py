"""The engine on its timeline: concurrent real deliveries, flow control, and a year of cron fires.

* 1,000 messages to a loopback destination that takes 200 ms (``benchmarks.bare``'s ``/sleep/200``, its
  own process), due at one virtual instant, with ``Upstash-Flow-Control-Value: parallelism=50``: the
  wall time of ``settle()`` against the ideal 1000/50 x 200 ms = 4 s (target: within 1.5x);
* the same without flow control: bounded only by the simulator's cap on attempts on real sockets
  (``Limits.in_flight``, default 100): ideal ceil(1000/100) x 200 ms = 2 s (target: within 1.5x);
* an every-minute cron schedule (``* * * * *``) over one virtual year, 525,600 fires delivered to the
  virtual destination, advanced a day at a time (target: under 10 s);
* virtual events/s: attempts due now to the virtual destination, run by ``settle()``, with 1k and 100k
  messages pending later (target: >= 100,000/s, flat within 2x).

``python -m benchmarks --only timeline --no-write`` (or ``python -m benchmarks.timeline``) prints the rows.
"""

from __future__ import annotations

import asyncio
import gc
import math
import time
from typing import TYPE_CHECKING

from .harness import Progress, Report, Row, ServerProcess, bare_argv, free_port

if TYPE_CHECKING:
    from qstash_sim import Simulator

SLOW_MS = 200
BURST = 1_000
PARALLELISM = 50
YEAR_DAYS = 365
BODY = b'{"order":12345,"status":"paid","amount":"19.99"}'


def _sim(**kw: object) -> Simulator:
    from qstash_sim import Simulator
    from qstash_sim.server import tune_gc

    gc.collect()
    sim = Simulator(seed=1, clock="virtual", **kw)  # type: ignore[arg-type]
    tune_gc()
    return sim


async def _burst(port: int, count: int, value: str | None) -> tuple[float, int]:
    """Wall seconds for ``count`` messages due now to the slow loopback destination; the cap in force."""
    from qstash_sim import Caller
    from qstash_sim.http.headers import QSTASH, publish_command

    sim = _sim()
    caller = Caller(account="bench")
    headers = {"Content-Type": "application/json"}
    if value is not None:
        headers |= {"Upstash-Flow-Control-Key": "bench", "Upstash-Flow-Control-Value": value}
    url = f"http://127.0.0.1:{port}/sleep/{SLOW_MS}"
    for _ in range(count):
        sim.publish(caller, publish_command(url, headers, BODY, dialect=QSTASH))
    t0 = time.perf_counter()
    await sim.settle()
    wall = time.perf_counter() - t0
    ok = sum(1 for d in sim.world.inbox if d.status == 200)
    await sim.close()
    if ok != count:
        raise RuntimeError(f"only {ok} of {count} deliveries answered 200")
    return wall, sim.world.limits.in_flight or count


async def _cron_year(days: int) -> tuple[float, int]:
    from qstash_sim import Caller
    from qstash_sim.domain.commands import ScheduleCommand
    from qstash_sim.http.headers import QSTASH, parse_settings

    sim = _sim()
    settings = parse_settings("https://example.com/tick", {"Content-Type": "application/json"}, dialect=QSTASH)
    sim.create_schedule(Caller(account="bench"), ScheduleCommand(settings=settings, body=BODY, cron="* * * * *"))
    t0 = time.perf_counter()
    for _ in range(days):
        await sim.advance("1d")
    wall = time.perf_counter() - t0
    fires = sim.world.inbox.appended
    await sim.close()
    return wall, fires


async def _virtual_eps(pending: int, fixed: int) -> float:
    from qstash_sim import Caller
    from qstash_sim.http.headers import publish_command

    sim = _sim()
    caller = Caller(account="bench")
    url = "https://example.com/hook"
    for i in range(pending):
        sim.publish(caller, publish_command(url, {"Upstash-Delay": f"{60 + i % 86_000}s"}, BODY))
    for _ in range(fixed):
        sim.publish(caller, publish_command(url, {"Content-Type": "application/json"}, BODY))
    gc.collect()
    t0 = time.perf_counter()
    await sim.settle()
    eps = fixed / (time.perf_counter() - t0)
    await sim.close()
    return eps


def run(progress: Progress, *, quick: bool = False) -> Report:
    """Every measurement above; ``quick`` runs 30 cron days instead of 365 and smaller batches."""
    port = free_port()
    rows: list[Row] = []
    with ServerProcess("slow sink", bare_argv(port), port, probe="/") as sink:
        sink.start()
        progress.step(f"timeline: {BURST} x {SLOW_MS} ms, flow control parallelism={PARALLELISM}")
        wall, _ = asyncio.run(_burst(port, BURST, f"parallelism={PARALLELISM}"))
        ideal = BURST / PARALLELISM * SLOW_MS / 1000
        rows.append(
            Row(
                f"{BURST:,} deliveries to a {SLOW_MS} ms loopback destination, flow-control parallelism {PARALLELISM}",
                f"{wall:.2f} s",
                f"ideal {ideal:.1f} s ({wall / ideal:.2f}x)",
                "within 1.5x",
                wall <= 1.5 * ideal,
            )
        )
        progress.step(f"timeline: {BURST} x {SLOW_MS} ms, no flow control (the in-flight cap)")
        wall, cap = asyncio.run(_burst(port, BURST, None))
        ideal = math.ceil(BURST / cap) * SLOW_MS / 1000
        rows.append(
            Row(
                f"the same without flow control (cap on attempts on the wire: {cap})",
                f"{wall:.2f} s",
                f"ideal {ideal:.1f} s ({wall / ideal:.2f}x)",
                "within 1.5x",
                wall <= 1.5 * ideal,
            )
        )
    days = 30 if quick else YEAR_DAYS
    progress.step(f"timeline: an every-minute cron over {days} virtual days")
    wall, fires = asyncio.run(_cron_year(days))
    year = wall * YEAR_DAYS / days
    rows.append(
        Row(
            "every-minute cron over one virtual year (virtual destination)",
            f"{year:.1f} s for {fires * YEAR_DAYS // days:,} fires ({fires / wall:,.0f} fires/s)",
            "" if days == YEAR_DAYS else f"extrapolated from {days} days",
            "< 10 s",
            year < 10,
        )
    )
    fixed = 5_000 if quick else 20_000
    eps = {}
    for pending in (1_000, 100_000):
        progress.step(f"timeline: virtual events/s with {pending:,} pending")
        eps[pending] = asyncio.run(_virtual_eps(pending, fixed))
    rows.append(
        Row(
            "engine: virtual events/s with N pending (settle)",
            ", ".join(f"{n // 1000}k: {v:,.0f}" for n, v in eps.items()),
            f"{eps[1_000] / eps[100_000]:.2f}x from 1k to 100k",
            ">= 100,000/s, flat (<= 2x)",
            min(eps.values()) >= 100_000 and eps[1_000] <= 2 * eps[100_000],
        )
    )
    report = Report(rows=rows, commands=["python -m benchmarks --only timeline"])
    report.notes.append(
        "Timeline: the slow destination is benchmarks.bare's /sleep/200 in its own process; the simulator runs "
        "in this one (virtual clock, seed 1). Wall times of settle()/advance(), GC tuned as qstash-sim serve has it."
    )
    return report


if __name__ == "__main__":
    from .__main__ import table

    print(table(run(Progress()).rows))
