"""Bounded memory (finding M1): RSS of ``qstash-sim serve --clock virtual`` under a long mixed load, and the
latency of a normal request while the control plane reads big pages or runs a 500,000-event advance.

(a) A bounded asyncio client (raw HTTP/1.1 keep-alive sockets to 127.0.0.1; wrk is not required) sends
    ``requests`` mixed requests, each with a random ``x-api-key`` (a new account each time): 40 % publish to
    the virtual ``https://example.com/hook`` (100-byte JSON, delivered at once), 20 % ``GET`` of a message
    published a moment before (with its key), 20 % an unknown path (404), 20 % ``GET /v1/qstash/queues``.
    RSS is sampled from ``/proc`` as it goes. Under the default limits it levels off; the same load against
    a server with every cap off (``Limits.unbounded()``, the behaviour before limits existed) gives the
    per-message growth of "before".
(b) On the server that took the load: a probe (``GET /v1/qstash/queues``, every 10 ms, own connection) is
    timed at rest, while the whole journal and inbox are read page by page (``limit`` 1000 and 10000:
    each page's time is what it holds the server up), and while one ``POST /_sim/clock/advance`` runs an
    every-minute schedule into the 500,000-event cap.

Run alone: ``python -m benchmarks --only memory`` (``--quick``: 200k requests). Every wait is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .harness import HOST, Progress, Report, Row, ServerProcess, free_port, show, sim_argv

TARGET_MB = 500.0
PAGE_TARGET_MS = 50.0
BODY = json.dumps({"order": 12345, "status": "paid", "amount": "19.99", "note": "x" * 40}).encode()
BODY = BODY + b" " * max(0, 100 - len(BODY))  # 100 bytes, as in the finding
DEST = "https://example.com/hook"
REQUEST_TIMEOUT_S = 30.0


# ------------------------------------------------------------------------------------------ a tiny client


class Conn:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1 (Content-Length bodies only: what aiohttp sends)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, headers: dict[str, str] | None = None, body: bytes = b""
    ) -> tuple[int, bytes]:
        """Status and body; reconnects once if the server closed the connection."""
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
            try:
                return await asyncio.wait_for(self._exchange(method, path, headers or {}, body), REQUEST_TIMEOUT_S)
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _exchange(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        assert self.reader is not None and self.writer is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {HOST}:{self.port}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"Content-Length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        await self.writer.drain()
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = 0, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            low = name.strip().lower()
            if low == "content-length":
                length = int(value.strip())
            elif low == "connection" and value.strip().lower() == "close":
                close = True
            elif low == "transfer-encoding":
                raise RuntimeError("chunked answers are not expected from qstash-sim")
        data = await self.reader.readexactly(length) if length else b""
        if close:
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


def _rss(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MiB."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0, 0.0

    def field_mib(name: str) -> float:
        m = re.search(rf"{name}:\s+(\d+) kB", text)
        return int(m.group(1)) / 1024 if m else 0.0

    return field_mib("VmRSS"), field_mib("VmHWM")


def _key(rng: random.Random) -> str:
    return f"key-{rng.getrandbits(64):016x}"


# ------------------------------------------------------------------------------------------ (a) the load


@dataclass
class LoadResult:
    done: int = 0
    seconds: float = 0.0
    publishes: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    samples: list[tuple[int, int, float]] = field(default_factory=list)  # (requests done, publishes, RSS MiB)

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds else 0.0

    def unexpected(self) -> int:
        ok = {("publish", 200), ("get", 200), ("unknown", 404), ("queues", 200)}
        return sum(n for k, n in self.statuses.items() if k not in ok)


async def mixed_load(
    port: int, pid: int, *, total: int, seconds: float, connections: int, progress: Progress, label: str
) -> LoadResult:
    """``total`` mixed requests over ``connections`` keep-alive sockets (bounded by ``seconds``)."""
    result = LoadResult()
    recent: deque[tuple[str, str]] = deque(maxlen=2000)  # (key, message id) of recent publishes
    issued = 0
    t0 = time.perf_counter()
    deadline = t0 + seconds
    finished = asyncio.Event()

    async def worker(n: int) -> None:
        nonlocal issued
        rng = random.Random(n)
        conn = Conn(port)
        try:
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                roll = rng.random()
                if roll < 0.4 or not recent:
                    kind, key = "publish", _key(rng)
                    status, data = await conn.request(
                        "POST",
                        f"/v1/qstash/publish/{DEST}",
                        {"Content-Type": "application/json", "x-api-key": key},
                        BODY,
                    )
                    if status == 200:
                        recent.append((key, json.loads(data)["messageId"]))
                        result.publishes += 1
                elif roll < 0.6:
                    kind = "get"
                    key, mid = recent[rng.randrange(len(recent))]
                    status, _ = await conn.request("GET", f"/v1/qstash/messages/{mid}", {"x-api-key": key})
                elif roll < 0.8:
                    kind = "unknown"
                    status, _ = await conn.request("GET", f"/nowhere/{rng.getrandbits(32)}", {"x-api-key": _key(rng)})
                else:
                    kind = "queues"
                    status, _ = await conn.request("GET", "/v1/qstash/queues", {"x-api-key": _key(rng)})
                result.statuses[(kind, status)] += 1
                result.done += 1
        finally:
            conn.close()

    async def sampler() -> None:
        last_step = 0.0
        while not finished.is_set():
            rss, _ = _rss(pid)
            result.samples.append((result.done, result.publishes, rss))
            now = time.perf_counter()
            if now - last_step > 5:
                last_step = now
                rate = result.done / max(now - t0, 1e-9)
                progress.step(
                    f"memory ({label}): {result.done:,}/{total:,} requests, {rate:,.0f} req/s, RSS {rss:.0f} MiB"
                )
            try:
                await asyncio.wait_for(finished.wait(), 0.5)
            except TimeoutError:
                pass

    sampling = asyncio.get_running_loop().create_task(sampler())
    try:
        await asyncio.gather(*(worker(n) for n in range(connections)))
    finally:
        result.seconds = time.perf_counter() - t0
        finished.set()
        await sampling
    result.samples.append((result.done, result.publishes, _rss(pid)[0]))
    return result


# ------------------------------------------------------------------------------------------ (b) latency


class Probe:
    """Times one normal request every ``every_s`` on its own connection, in named phases."""

    def __init__(self, port: int, every_s: float = 0.01) -> None:
        self.conn = Conn(port)
        self.every_s = every_s
        self.phase = "idle"
        self.times: dict[str, list[float]] = {}
        self._stop = asyncio.Event()

    async def run(self) -> None:
        while not self._stop.is_set():
            t0 = time.perf_counter()
            status, _ = await self.conn.request("GET", "/v1/qstash/queues", {"x-api-key": "probe"})
            if status != 200:
                raise RuntimeError(f"probe answered {status}")
            self.times.setdefault(self.phase, []).append((time.perf_counter() - t0) * 1000)
            try:
                await asyncio.wait_for(self._stop.wait(), self.every_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stop.set()
        self.conn.close()


def _p99(ms: list[float]) -> float:
    ordered = sorted(ms)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] if ordered else 0.0


def _stats(ms: list[float]) -> str:
    if not ms:
        return "no samples"
    return f"p50 {statistics.median(ms):.1f} ms, p99 {_p99(ms):.1f} ms, max {max(ms):.1f} ms (n={len(ms)})"


async def read_all_pages(port: int, path: str, field_name: str, limit: int) -> tuple[int, list[float]]:
    """Every page of ``path`` with ``limit``: (items read, each page's time in ms)."""
    conn = Conn(port)
    items, times = 0, []
    cursor: str | None = None
    try:
        for _ in range(100_000):
            url = f"{path}?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
            t0 = time.perf_counter()
            status, data = await conn.request("GET", url)
            times.append((time.perf_counter() - t0) * 1000)
            if status != 200:
                raise RuntimeError(f"GET {url} answered {status}: {data[:200]!r}")
            body = json.loads(data)
            items += len(body[field_name])
            cursor = body.get("cursor")
            if cursor is None:
                break
    finally:
        conn.close()
    return items, times


async def latency_phases(port: int, progress: Progress) -> dict[str, Any]:
    """The probe at rest, during page reads, and during a 500,000-event advance."""
    probe = Probe(port)
    task = asyncio.get_running_loop().create_task(probe.run())
    out: dict[str, Any] = {}
    try:
        progress.step("memory: probe at rest")
        await asyncio.sleep(2)
        for path, name in (("/_sim/journal", "entries"), ("/_sim/deliveries", "deliveries")):
            for limit in (1000, 10000):
                progress.step(f"memory: reading every page of {path} (limit {limit})")
                probe.phase = f"{path} limit {limit}"
                out[probe.phase] = await read_all_pages(port, path, name, limit)
        probe.phase = "idle"
        conn = Conn(port)
        try:
            status, data = await conn.request(
                "POST",
                f"/v1/qstash/schedules/{DEST}",
                {"Content-Type": "application/json", "Upstash-Cron": "* * * * *", "x-api-key": "cron"},
                BODY,
            )
            if status != 200:
                raise RuntimeError(f"schedule create answered {status}: {data[:200]!r}")
            progress.step("memory: one POST /_sim/clock/advance into the 500,000-event cap")
            probe.phase = "advance"
            t0 = time.perf_counter()
            status, data = await asyncio.wait_for(
                conn._exchange("POST", "/_sim/clock/advance", {"Content-Type": "application/json"}, b'{"by":"299d"}'),
                300,
            )
            out["advance"] = (status, time.perf_counter() - t0, data[:300].decode(errors="replace"))
            probe.phase = "after"
            await asyncio.sleep(1)
        finally:
            conn.close()
    finally:
        probe.stop()
        await asyncio.gather(task, return_exceptions=True)
    out["probe"] = probe.times
    return out


# ------------------------------------------------------------------------------------------ servers


def unbounded_argv(port: int) -> list[str]:
    """``qstash-sim serve --clock virtual`` as the CLI builds it, but with every cap off (the "before")."""
    return [sys.executable, "-m", "benchmarks.memory", "--serve-unbounded", "--port", str(port)]


async def _serve_unbounded(port: int) -> None:
    import logging
    import signal

    from qstash_sim.api import default_surfaces
    from qstash_sim.domain.world import Limits
    from qstash_sim.http.aiohttp_app import build_app
    from qstash_sim.server import start_site, tune_gc
    from qstash_sim.simulator import Simulator

    logging.getLogger("qstash_sim").setLevel(logging.WARNING)
    sim = Simulator(seed=0, clock="virtual")
    sim.world.set_limits(Limits.unbounded())
    runner, _ = await start_site(build_app(sim, default_surfaces()), HOST, port)
    tune_gc()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def _health(port: int) -> dict[str, Any]:
    async def go() -> dict[str, Any]:
        conn = Conn(port)
        try:
            _, data = await conn.request("GET", "/_sim/health")
            return dict(json.loads(data))
        finally:
            conn.close()

    return asyncio.run(go())


def _growth_per_publish(result: LoadResult, *, from_fraction: float) -> float:
    """RSS growth per publish (bytes) between the sample at ``from_fraction`` of the run and the end."""
    samples = result.samples
    start = next(s for s in samples if s[0] >= from_fraction * result.done)
    end = samples[-1]
    publishes = end[1] - start[1]
    return (end[2] - start[2]) * 1024 * 1024 / publishes if publishes else 0.0


# ------------------------------------------------------------------------------------------ the report


def run(
    progress: Progress,
    *,
    requests: int = 1_000_000,
    before_requests: int = 250_000,
    seconds: float = 1500.0,
    connections: int = 32,
) -> Report:
    """(a) RSS after ``requests`` mixed requests (default caps) and ``before_requests`` (no caps); (b) latency."""
    port = free_port()
    with ServerProcess("qstash-sim", sim_argv(port), port) as server:
        server.start()
        assert server.proc is not None
        pid = server.proc.pid
        start_rss = _rss(pid)[0]
        after = asyncio.run(
            mixed_load(
                port, pid, total=requests, seconds=seconds, connections=connections, progress=progress, label="caps"
            )
        )
        end_rss, hwm = _rss(pid)
        health = _health(port)
        lat = asyncio.run(latency_phases(port, progress))
        final_rss, final_hwm = _rss(pid)

    port = free_port()
    with ServerProcess("qstash-sim (no caps)", unbounded_argv(port), port) as server:
        server.start()
        assert server.proc is not None
        pid = server.proc.pid
        before_start = _rss(pid)[0]
        before = asyncio.run(
            mixed_load(
                port,
                pid,
                total=before_requests,
                seconds=seconds,
                connections=connections,
                progress=progress,
                label="no caps",
            )
        )
        before_end = _rss(pid)[0]

    per_before = (before_end - before_start) * 1024 * 1024 / max(before.publishes, 1)
    per_request_before = (before_end - before_start) * 1024 * 1024 / max(before.done, 1)
    per_after_tail = _growth_per_publish(after, from_fraction=0.5)
    ev = health.get("evicted", {})
    rows = [
        Row(
            f"serve RSS after {after.done:,} mixed requests (default limits)",
            f"{end_rss:.0f} MiB (start {start_rss:.0f}, peak {hwm:.0f}); {after.rate:,.0f} req/s",
            f"no caps: {before_end:.0f} MiB after {before.done:,}",
            f"< {TARGET_MB:.0f} MB",
            end_rss * 1.048576 < TARGET_MB and after.done >= requests,
        ),
        Row(
            "RSS growth per published message",
            f"limits: {per_after_tail:,.0f} B (second half of the run)",
            f"no caps: {per_before:,.0f} B per message, {per_request_before:,.0f} B per request",
            "< 10% of no caps",
            per_after_tail < 0.1 * per_before,
        ),
    ]
    page_rows: list[Row] = []
    for phase, value in lat.items():
        if phase.startswith("/_sim/"):
            items, times = value
            probe = lat["probe"].get(phase, [])
            page_rows.append(
                Row(
                    f"GET {phase}: every page ({items:,} items, {len(times)} pages)",
                    f"page p50 {statistics.median(times):.1f} ms, max {max(times):.1f} ms",
                    f"probe meanwhile: {_stats(probe)}",
                    f"page < {PAGE_TARGET_MS:.0f} ms",
                    max(times) < PAGE_TARGET_MS,
                )
            )
    status, secs, text = lat["advance"]
    rows += page_rows
    during = lat["probe"].get("advance", [])
    rows.append(
        Row(
            "POST /_sim/clock/advance into the 500,000-event cap",
            f"{secs:.1f} s, status {status}",
            f"probe meanwhile: {_stats(during)}",
            "probe p99 < 100 ms meanwhile",
            len(during) > 10 and _p99(during) < 100,
        )
    )
    rows.append(Row("probe at rest (GET /v1/qstash/queues)", _stats(lat["probe"].get("idle", []))))
    report = Report(
        rows=rows,
        commands=[
            "python -m benchmarks --only memory",
            show(sim_argv(0)).replace("--port 0", "--port PORT"),
            show(unbounded_argv(0)).replace("--port 0", "--port PORT"),
        ],
    )
    bad = after.unexpected() + before.unexpected()
    report.notes.append(
        f"Memory: {after.done:,} mixed requests in {after.seconds:.0f} s ({connections} keep-alive connections, "
        f"random x-api-key each: 40% publish of a 100-byte body to the virtual {DEST}, 20% GET of a message just "
        f"published, 20% unknown path, 20% GET /v1/qstash/queues); {after.publishes:,} publishes; "
        f"{bad} unexpected statuses. Evicted at the end: {', '.join(f'{k} {v:,}' for k, v in ev.items())} "
        f"(each publish has a new key, so its message goes with its idle account). Once the caps are full, "
        f"what still grows (about 250 B per billed request) is the charge ledger (`/_sim/ledger`), which has "
        f"no cap yet. "
        f"After the latency runs: RSS {final_rss:.0f} MiB, peak {final_hwm:.0f} MiB. The 'no caps' server is "
        f"the same app with `Limits.unbounded()` (what every store did before limits), {before.done:,} requests. "
        f"The advance answered: {text[:160]}"
    )
    return report


def main() -> None:
    """``--serve-unbounded``: the server of the 'no caps' comparison; otherwise run the benchmark alone."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.memory")
    parser.add_argument("--serve-unbounded", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--before-requests", type=int, default=250_000)
    args = parser.parse_args()
    if args.serve_unbounded:
        asyncio.run(_serve_unbounded(args.port))
        return
    from . import __main__ as entry

    report = run(Progress(), requests=args.requests, before_requests=args.before_requests)
    print(entry.table(report.rows))
    for note in report.notes:
        print("\n* " + note)


if __name__ == "__main__":
    main()
