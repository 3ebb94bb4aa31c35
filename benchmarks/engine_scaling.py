"""Engine scaling, in process: how the cost of one event and the memory of one stored message behave as
the backlog of pending messages grows (1k, 10k, 100k).

For each backlog size a fresh virtual-clock simulator gets ``pending`` messages due later (spread over a
day), stored the way the HTTP layer stores them (core ``publish`` plus the request's journal line). Then,
with that backlog in the heap:

* virtual events/s: a fixed batch of messages due now to a virtual destination, run by ``settle()``;
* real deliveries/s: a fixed batch due now to a loopback sink (``benchmarks.bare`` in its own process);
* backlog drain: ``advance("1d")`` runs the whole backlog (virtual destination), events/s.

What storing the backlog costs is measured last, in another simulator of its own, with ``tracemalloc``.
Not before the timings: ``tracemalloc.stop()`` frees one small block of bookkeeping per traced allocation
(millions of them for a 100k backlog), and glibc's malloc then sorts those scattered free chunks on the
next allocations, which made the first few thousand publishes after it 5-10x slower (the "publish cost
grows 10x from 1k to 100k pending" of earlier runs: 7.2 -> 77.9 us; ``malloc_trim(0)`` after the stop,
or timing a second round, gives a flat cost). The simulator itself does nothing per publish that grows
with the backlog (one heap push, O(log n)).
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from typing import TYPE_CHECKING

from .harness import Progress, Report, Row, ServerProcess, bare_argv, free_port

if TYPE_CHECKING:
    from qstash_sim import Caller, Simulator

SIZES = (1_000, 10_000, 100_000)
BODY = b'{"order":12345,"status":"paid","amount":"19.99"}'
VIRTUAL_URL = "https://example.com/hook"
MEMORY_TARGET = 2048
FLAT_TOLERANCE = 2.0  # cost per event at 100k may be at most this many times the cost at 1k


def _backlog(pending: int) -> tuple[Simulator, Caller]:
    """A fresh simulator (GC tuned as `qstash-sim serve` has it) holding ``pending`` messages due later."""
    from qstash_sim import Caller, Simulator
    from qstash_sim.http.headers import publish_command
    from qstash_sim.server import tune_gc

    gc.set_threshold(700, 10, 10)  # start each size from Python's defaults ...
    gc.unfreeze()
    sim = Simulator(seed=1, clock="virtual")
    tune_gc()  # ... then run with the GC settings `qstash-sim serve` uses
    caller = Caller(account="bench")
    journal = sim.world.journal
    for i in range(pending):
        entry = journal.add(sim.world.now, "request", method="POST", path="/v1/qstash/publish/" + VIRTUAL_URL)
        caller.request_id = entry.request_id = f"req_{entry.seq}"
        r = sim.publish(
            caller,
            publish_command(
                VIRTUAL_URL, {"Content-Type": "application/json", "Upstash-Delay": f"{60 + i % 86000}s"}, BODY
            ),
        )
        entry.message_ids = [r.message_id]
    return sim, caller


def _stored_bytes(pending: int) -> float:
    """What storing a backlog of ``pending`` costs per message (tracemalloc), body excluded."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    sim, _ = _backlog(pending)
    gc.collect()
    stored = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del sim
    return stored / pending - len(BODY)


async def _measure(pending: int, sink_port: int, fixed: int, real: int) -> dict[str, float]:
    from qstash_sim.http.headers import publish_command

    sim, caller = _backlog(pending)
    gc.collect()
    out: dict[str, float] = {}

    t0 = time.perf_counter()
    for _ in range(fixed):
        sim.publish(caller, publish_command(VIRTUAL_URL, {"Content-Type": "application/json"}, BODY))
    out["publish_us"] = (time.perf_counter() - t0) / fixed * 1e6
    t0 = time.perf_counter()
    await sim.settle()
    out["virtual_eps"] = fixed / (time.perf_counter() - t0)

    url = f"http://127.0.0.1:{sink_port}/hook"
    for _ in range(real):
        sim.publish(caller, publish_command(url, {"Content-Type": "application/json"}, BODY))
    t0 = time.perf_counter()
    await sim.settle()
    out["real_dps"] = real / (time.perf_counter() - t0)
    delivered = sum(1 for d in sim.world.inbox if d.url == url and d.status == 200)
    if delivered != real:
        raise RuntimeError(f"only {delivered} of {real} real deliveries answered 200")

    t0 = time.perf_counter()
    await sim.advance("1d")
    out["drain_eps"] = pending / (time.perf_counter() - t0)
    left = sum(1 for m in sim.messages("bench") if m.state.value != "delivered")
    if left:
        raise RuntimeError(f"{left} messages not delivered after the drain")
    await sim.close()
    del sim
    out["bytes_per_msg"] = _stored_bytes(pending)  # last: see the module's docstring
    return out


def run(progress: Progress, *, sizes: tuple[int, ...] = SIZES, fixed: int = 5_000, real: int = 2_000) -> Report:
    """Measure every backlog size; one row per metric with the values side by side."""
    port = free_port()
    results: dict[int, dict[str, float]] = {}
    with ServerProcess("sink", bare_argv(port), port, probe="/") as sink:
        sink.start()
        for n in sizes:
            progress.step(f"engine: backlog of {n:,} pending messages")
            results[n] = asyncio.run(_measure(n, port, fixed, real))

    def across(key: str, fmt: str) -> str:
        return ", ".join(f"{n // 1000}k: {format(results[n][key], fmt)}" for n in sizes)

    first, last = results[sizes[0]], results[sizes[-1]]
    flat_virtual = last["virtual_eps"] * FLAT_TOLERANCE >= first["virtual_eps"]
    flat_real = last["real_dps"] * FLAT_TOLERANCE >= first["real_dps"]
    flat_publish = last["publish_us"] <= FLAT_TOLERANCE * first["publish_us"]
    worst_mem = max(r["bytes_per_msg"] for r in results.values())
    rows = [
        Row(
            "engine: virtual events/s with N pending",
            across("virtual_eps", ",.0f"),
            f"{1e6 / first['virtual_eps']:.0f} -> {1e6 / last['virtual_eps']:.0f} us/event",
            f"flat (<= {FLAT_TOLERANCE:g}x from 1k to {sizes[-1] // 1000}k)",
            flat_virtual,
        ),
        Row(
            "engine: real deliveries/s to a loopback sink with N pending",
            across("real_dps", ",.0f"),
            f"{1e6 / first['real_dps']:.0f} -> {1e6 / last['real_dps']:.0f} us/delivery",
            f"flat (<= {FLAT_TOLERANCE:g}x)",
            flat_real,
        ),
        Row("engine: draining a backlog of N (virtual events/s)", across("drain_eps", ",.0f")),
        Row(
            "core publish (no HTTP), us/message with N pending",
            across("publish_us", ".1f"),
            "",
            f"flat (<= {FLAT_TOLERANCE:g}x)",
            flat_publish,
        ),
        Row(
            "memory per stored message, body excluded",
            across("bytes_per_msg", ",.0f") + " B",
            f"body {len(BODY)} B",
            f"< {MEMORY_TARGET:,} B",
            worst_mem < MEMORY_TARGET,
        ),
    ]
    report = Report(rows=rows, commands=["python -m benchmarks --only engine"])
    report.notes.append(
        f"Engine: per backlog size, {fixed:,} virtual deliveries and {real:,} real loopback deliveries are measured "
        f"with the backlog in the heap. Memory is tracemalloc's count of what storing the backlog allocated "
        f"(message, history, queue/heap entries and the request's journal line), divided by N, minus the "
        f"{len(BODY)}-byte body, measured after the timings in a simulator of its own (tracemalloc's teardown "
        f"leaves glibc's malloc with millions of scattered free chunks, which once made the publishes timed after "
        f"it look 10x slower at 100k). The garbage collector runs with the settings `qstash-sim serve` uses "
        f"(`simulator.server.tune_gc`: start-up objects frozen, generation-0 threshold 50,000); with Python's "
        f"defaults, full collections over a 100k backlog make each publish about 10x slower."
    )
    return report
