"""Nothing lost under load, with the ``lossy-network`` fault scenario loaded and hostile destinations (issue 7
§6, issue 11 "Measure", finding H1).

A ``qstash-sim serve --clock virtual`` subprocess loads ``scenarios/lossy-network.yaml`` through
``POST /_sim/scenarios``: it drops 2 % of publish/enqueue connections and answers 10 % of delivery attempts
with a scripted 503, every draw from the simulator's seeded faults stream. Concurrent clients (several api
keys, queues whose names repeat in every account, plain publishes) publish; a dropped connection is "not
accepted" and the client publishes again (a new message). Most destinations are a loopback sink in this
process that answers 200; a deterministic share, chosen by job number, are hostile, each behaviour on its own
loopback port (``hostile_sinks.py``):

* ``retry-after``: 503 with a 400-digit ``Retry-After`` and garbage ``X-RateLimit-Reset*``;
* ``garbage``: bytes that are not HTTP, then close;
* ``reset-connect`` / ``reset-request``: a TCP RST on connect / once the request is read;
* ``hang``: never answers; those few messages carry ``Upstash-Timeout: 1s`` (each attempt is cut after one
  real second) and ``Upstash-Delay: 1m`` (so that all of them are attempted at the same virtual instants);
* ``huge``: 200 with a streamed body of 1 MiB + 64 KiB;
* ``non-retryable``: 489 with ``Upstash-NonRetryable-Error: true``.

The attempts the scenario does not script reach their destination for real. The clock is then advanced
until nothing is pending (``/_sim/health`` and ``/_sim/journal`` are read while an attempt hangs), and the
journal (followed page by page through ``cursor``), the state, the ledger, the scenario's own counters, the
server's log and the destinations' logs are cross-checked:

* every accepted message (an id from a 2xx answer) ends exactly once, delivered or in the DLQ; no message is
  delivered twice; nothing else ends; a dropped call created nothing and cost nothing; once the clock is past
  the last retry, no message is pending or retrying;
* each attempt is either the scenario's 503 (virtual, never on the wire) or reached its destination exactly
  once (the inbox, ``/_sim/deliveries`` page by page, agrees), and got what that destination does:
  ``retry-after``, ``garbage``, ``reset-*`` and ``hang`` exhaust their retries (with the default backoff: the
  garbage delays are ignored) and end in the DLQ with that status or error; ``huge`` is delivered;
  ``non-retryable`` fails into the DLQ at its first real attempt;
* each queue delivers in enqueue order, one message at a time;
* no account sees another account's messages, queues or deliveries;
* the ledger equals the sum of the documented prices of the accepted calls;
* the server never answers 500, logs no engine or transport error, and dropped nothing to stay under its
  retention limits (so the journal read is complete).

Sizes: the default run is small (CI); ``QSTASH_SIM_SOAK=full`` (``make soak``) runs the issue's load:
10,000 messages from 50 clients across 20 queues, and prints a summary line. Everything is loopback and
bounded in count and time; nothing sleeps (the test waits on the simulator through ``/_sim/settle`` and
``/_sim/clock/advance``, and on a hanging destination through the event it sets), and no assertion is
about timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
from hostile_sinks import (
    HOSTILE,
    NON_RETRYABLE_BODY,
    RETRY_AFTER_VALUE,
    Behaviour,
    HostileSink,
)

import serve_proc
from qstash_sim.contract.router import Contract
from qstash_sim.engine.retry import default_backoff_ms
from qstash_sim.scenarios.runtime import shipped_scenarios

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("QSTASH_SIM_SOAK", "").lower() in ("1", "full", "yes")


@dataclass(frozen=True, slots=True)
class Load:
    """How much traffic one run sends."""

    messages: int
    clients: int
    queues: int
    accounts: int
    hang_turns: int  # in each run of this many turns, two send every account's message to the hanging one


LOAD = (
    Load(messages=10_000, clients=50, queues=20, accounts=5, hang_turns=800)
    if FULL
    else Load(messages=1_000, clients=10, queues=20, accounts=3, hang_turns=200)
)
SEED = 7
SCENARIO = "lossy-network"
DROP_RULE = f"{SCENARIO}/drop-2pct"
FAIL_SCRIPT = f"{SCENARIO}/fail-10pct"
MAX_TRIES = 8  # publishes of one job before a client gives up (8 drops in a row at 2 %: never, in practice)
DEADLINE_S = 600 if FULL else 120  # the whole run, a bound (never a timing assertion)
HANG_TIMEOUT = "1s"  # Upstash-Timeout of the messages to the hanging destination
HANG_ERROR = "timeout after 1000ms"
HANG_DELAY = "1m"  # Upstash-Delay of those messages: their attempts share instants (one real second each)
PAGE = 1000  # entries per page of /_sim/journal (its default; the default run already needs two pages)
MAX_PAGES = 1000
STATE_LIMIT = 10_000  # /_sim/state keeps each list to its newest `limit` (default 1000): ask for all
MAX_ADVANCES = 30  # one virtual day each
# Which jobs are hostile: slot (k // 10 + 3 k) % 50 of the job's turn k in its account. The slot is uniform
# over k and independent of k % 10 (so 1 in 10 hostile messages has no retries, as 1 in 10 of all), and
# every account gets every behaviour. 18 % of the messages are hostile, plus the few hanging ones.
SLOTS = {
    3: Behaviour.RETRY_AFTER,
    29: Behaviour.RETRY_AFTER,
    11: Behaviour.GARBAGE,
    37: Behaviour.GARBAGE,
    17: Behaviour.RESET_CONNECT,
    43: Behaviour.RESET_REQUEST,
    7: Behaviour.HUGE,
    23: Behaviour.NON_RETRYABLE,
    49: Behaviour.NON_RETRYABLE,
}
FAILING = (Behaviour.RETRY_AFTER, Behaviour.GARBAGE, Behaviour.RESET_CONNECT, Behaviour.RESET_REQUEST, Behaviour.HANG)
SUCCEEDING = (Behaviour.OK, Behaviour.HUGE)
# How the simulator words a reset: the RST may come during connect, while the request is written, or after.
RESET_ERROR = re.compile(
    r"connection reset"
    r"|connection failed: \[Errno 104\] .*"
    r"|network error: .*(Errno 104|Errno 32|Can not write request).*"
)
# How it words an answer that is not HTTP (today aiohttp's "Bad status line", quoting the bytes).
GARBAGE_ERROR = re.compile(r"bad status line|invalid http|not http|malformed", re.IGNORECASE)
# What the simulator's log must never say: an exception inside the engine, the runner or a transport.
LOG_ERRORS = ("Traceback", "engine error", "engine runner error", "engine batch error", "transport error")


# ---------------------------------------------------------------------------------------------- the sink


@dataclass(slots=True)
class Sink:
    """A minimal HTTP/1.1 keep-alive server that answers 200 and records every request it sees."""

    seen: Counter[tuple[str, int]] = field(default_factory=Counter)  # (message id, retried) -> requests
    bodies: dict[str, bytes] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    connections: int = 0
    server: asyncio.base_events.Server | None = None

    async def start(self) -> int:
        """Listen on 127.0.0.1 (any free port); return the port."""
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _SinkProtocol(self), "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


class _SinkProtocol(asyncio.Protocol):
    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.buf = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.sink.connections += 1

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = self.buf[:end].decode("latin-1").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
            size = int(headers.get("content-length", "0"))
            if len(self.buf) < end + 4 + size:
                return
            body, self.buf = self.buf[end + 4 : end + 4 + size], self.buf[end + 4 + size :]
            mid = headers["upstash-message-id"]
            self.sink.seen[(mid, int(headers["upstash-retried"]))] += 1
            self.sink.bodies[mid] = body
            self.sink.paths[mid] = lines[0].split(" ")[1]
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


# ---------------------------------------------------------------------------------------------- the server


async def _start_server(log: Any) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        *serve_proc.command("--seed", str(SEED), "--log-level", "warning"),
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    try:
        return proc, serve_proc.address(line)
    except AssertionError:
        proc.kill()
        raise


async def _stop_server(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


async def _call(session: aiohttp.ClientSession, statuses: Counter[int], method: str, url: str, **kw: Any) -> Any:
    """A control-plane call that must answer 200; every status is counted (a 500 is looked for later)."""
    async with session.request(method, url, **kw) as resp:
        statuses[resp.status] += 1
        assert resp.status == 200, (method, url, resp.status, await resp.text())
        return await resp.json()


async def _pages(
    session: aiohttp.ClientSession, statuses: Counter[int], url: str, key: str, params: dict[str, str]
) -> list[dict[str, Any]]:
    """Every item of a paginated list (``/_sim/journal``, ``/_sim/deliveries``): follow ``cursor`` until the
    answer has none (an answer without one is the whole list)."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    cursors: set[str] = set()
    for _ in range(MAX_PAGES):
        query = {**params, "limit": str(PAGE)}
        if cursor is not None:
            query["cursor"] = cursor
        body = await _call(session, statuses, "GET", url, params=query)
        items.extend(body[key])
        cursor = body.get("cursor")
        if cursor is None:
            break
        assert cursor not in cursors, f"{url}: cursor {cursor!r} came back: the pages go round in circles"
        cursors.add(cursor)
    else:
        raise AssertionError(f"{url}: still a cursor after {MAX_PAGES} pages")
    seqs = [e["seq"] for e in items]
    assert seqs == sorted(set(seqs)), f"{url}: pages overlap or are out of order"
    return items


# ---------------------------------------------------------------------------------------------- the load


@dataclass(frozen=True, slots=True)
class Job:
    """One message to get accepted: its account, queue (None = plain publish), retries and destination."""

    n: int
    account: str
    queue: str | None
    retries: int
    behaviour: Behaviour


@dataclass(slots=True)
class Accepted:
    """What the clients were told."""

    by_account: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    account_of: dict[str, str] = field(default_factory=dict)
    queue_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    behaviour_of: dict[str, Behaviour] = field(default_factory=dict)
    retries_of: dict[str, int] = field(default_factory=dict)
    operations: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)  # operation -> calls whose connection was dropped
    refused: list[tuple[int, int, str]] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)  # every status the server answered the clients


def _plan(load: Load) -> list[Job]:
    jobs = []
    for n in range(load.messages):
        # Accounts take turns; within an account, 60 % go to queues whose names repeat in every account
        # and 40 % are plain publishes; 1 in 10 has no retries, so that failures reach the DLQ often enough.
        k = n // load.accounts
        queue = f"q-{k % load.queues}" if (k // load.queues) % 5 < 3 else None
        behaviour = SLOTS.get((k // 10 + 3 * k) % 50, Behaviour.OK)
        # A few hang (20 of 10,000; 12 of 1,000), with and without retries: k % hang_turns 0 or 7 past the middle.
        if k % load.hang_turns - load.hang_turns // 2 in (0, 7):
            behaviour, queue = Behaviour.HANG, None  # plain: a queue would start its next one a second later
        jobs.append(Job(n, f"acct-{n % load.accounts}", queue, 0 if k % 10 == 7 else 2, behaviour))
    return jobs


async def _client(
    session: aiohttp.ClientSession, base: str, dests: dict[Behaviour, str], jobs: list[Job], accepted: Accepted
) -> None:
    while jobs:
        job = jobs.pop()
        if job.n % 100 == 0:  # the control plane answers during the load too
            assert (await _call(session, accepted.statuses, "GET", base + "/_sim/health"))["ok"] is True
        dest = f"{dests[job.behaviour]}/{job.account}/{job.n}"
        path = f"/v1/qstash/enqueue/{job.queue}/{dest}" if job.queue else f"/v1/qstash/publish/{dest}"
        operation = "enqueueMessage" if job.queue else "publishMessage"
        headers = {"x-api-key": job.account, "Content-Type": "application/json", "Upstash-Retries": str(job.retries)}
        if job.behaviour is Behaviour.HANG:
            headers |= {"Upstash-Timeout": HANG_TIMEOUT, "Upstash-Delay": HANG_DELAY}
        body = f'{{"account":"{job.account}","n":{job.n}}}'
        for _ in range(MAX_TRIES):
            try:
                async with session.post(base + path, data=body, headers=headers) as resp:
                    text = await resp.text()
                    status = resp.status
            except aiohttp.ServerDisconnectedError:
                accepted.dropped[operation] += 1  # not accepted: publish again (a new message if it lands)
                continue
            accepted.statuses[status] += 1
            if status != 200:
                accepted.refused.append((job.n, status, text))
                break
            mid = json.loads(text)["messageId"]
            accepted.by_account[job.account].append(mid)
            accepted.account_of[mid] = job.account
            accepted.behaviour_of[mid] = job.behaviour
            accepted.retries_of[mid] = job.retries
            if job.queue:
                accepted.queue_of[mid] = (job.account, job.queue)
            accepted.operations[operation] += 1
            break
        else:
            accepted.gave_up.append(job.n)


async def _probe_while_hanging(
    session: aiohttp.ClientSession,
    base: str,
    hang: HostileSink,
    stop: asyncio.Event,
    probes: list[bool],
    statuses: Counter[int],
) -> None:
    """Each time the hanging destination accepts a connection (the engine is then waiting on it), read
    ``/_sim/health`` and a page of ``/_sim/journal``: both must answer (200) while the attempt hangs. Each
    probe appends whether the hanging connection was still open once both had answered."""
    for _ in range(LOAD.messages):  # at most one probe per accepted connection; bounded anyway
        waiters = [asyncio.ensure_future(hang.accepted.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=DEADLINE_S, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()
        if stop.is_set() or not hang.accepted.is_set():
            return
        hang.accepted.clear()
        health = await _call(session, statuses, "GET", base + "/_sim/health")
        assert health["ok"] is True
        await _call(session, statuses, "GET", base + "/_sim/journal", params={"kind": "attempt", "limit": "5"})
        probes.append(hang.open > 0)


async def _advance_until_idle(
    session: aiohttp.ClientSession, base: str, statuses: Counter[int], hang: HostileSink, probes: list[bool]
) -> int:
    """Advance a virtual day at a time until nothing is pending (retries back off up to hours; bounded), with
    the control plane read whenever an attempt hangs meanwhile. Returns how many advances it took."""
    stop = asyncio.Event()
    prober = asyncio.create_task(_probe_while_hanging(session, base, hang, stop, probes, statuses))
    try:
        for advances in range(1, MAX_ADVANCES + 1):
            clock = await _call(session, statuses, "POST", base + "/_sim/clock/advance", json={"by": "1d"})
            assert (await _call(session, statuses, "GET", base + "/_sim/health"))["ok"] is True
            if clock["pendingEvents"] == 0:
                return advances
        raise AssertionError(f"still pending after {MAX_ADVANCES} virtual days")
    finally:
        stop.set()
        await prober


async def _run(load: Load, log_path: Path) -> dict[str, Any]:
    started = time.monotonic()
    sink = Sink()
    dests = {Behaviour.OK: f"http://127.0.0.1:{await sink.start()}/{Behaviour.OK}"}
    hostile = {b: HostileSink(b) for b in HOSTILE}
    for b, h in hostile.items():
        dests[b] = f"http://127.0.0.1:{await h.start()}/{b}"
    statuses: Counter[int] = Counter()  # every status the control plane answered the test
    with log_path.open("wb") as log:
        proc, base = await _start_server(log)
        try:
            connector = aiohttp.TCPConnector(limit=load.clients)
            timeout = aiohttp.ClientTimeout(total=60)
            async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                text = shipped_scenarios()[SCENARIO].read_text()
                await _call(
                    session,
                    statuses,
                    "POST",
                    f"{base}/_sim/scenarios?name={SCENARIO}",
                    data=text,
                    headers={"Content-Type": "application/yaml"},
                )
                jobs = _plan(load)[::-1]  # clients pop from the end: job 0 goes first
                accepted = Accepted()
                await asyncio.gather(*(_client(session, base, dests, jobs, accepted) for _ in range(load.clients)))
                published = time.monotonic()
                await _call(session, statuses, "POST", base + "/_sim/settle")  # what is due now has run
                probes: list[bool] = []
                advances = await _advance_until_idle(session, base, statuses, hostile[Behaviour.HANG], probes)
                settled = await _call(session, statuses, "POST", base + "/_sim/settle")
                assert settled["pendingEvents"] == 0, settled
                advanced = time.monotonic()
                got: dict[str, Any] = {
                    "accepted": accepted,
                    "sink": sink,
                    "hostile": hostile,
                    "probes": probes,
                    "statuses": statuses,
                    "advances": advances,
                    "clock": settled,
                }
                got["attempts"] = await _pages(
                    session, statuses, base + "/_sim/journal", "entries", {"kind": "attempt"}
                )
                got["requests"] = await _pages(
                    session, statuses, base + "/_sim/journal", "entries", {"kind": "request"}
                )
                got["deliveries"] = await _pages(session, statuses, base + "/_sim/deliveries", "deliveries", {})
                for name, path in (
                    ("state", f"/_sim/state?limit={STATE_LIMIT}"),
                    ("ledger", "/_sim/ledger"),
                    ("scenarios", "/_sim/scenarios"),
                    ("health", "/_sim/health"),
                ):
                    got[name] = await _call(session, statuses, "GET", base + path)
                # Isolation through the API: another account's message id is unknown to me.
                got["cross"] = []
                accounts = sorted(accepted.by_account)
                for i, acct in enumerate(accounts):
                    other = accounts[(i + 1) % len(accounts)]
                    for mid in accepted.by_account[other][:20]:
                        async with session.get(f"{base}/v1/qstash/messages/{mid}", headers={"x-api-key": acct}) as resp:
                            got["cross"].append((acct, mid, resp.status))
                    queues = await _call(
                        session, statuses, "GET", f"{base}/v1/qstash/queues", headers={"x-api-key": acct}
                    )
                    got.setdefault("queues", {})[acct] = [q["name"] for q in queues]
                got["wall"] = {
                    "publish": published - started,
                    "advance": advanced - published,
                    "total": time.monotonic() - started,
                }
        finally:
            await _stop_server(proc)
            await sink.close()
            for h in hostile.values():
                await h.close()
    got["log"] = log_path.read_text(errors="replace")
    return got


# ---------------------------------------------------------------------------------------------- the checks


def _header(headers: dict[str, list[str]], name: str) -> list[str]:
    return [v for k, vs in headers.items() if k.lower() == name.lower() for v in vs]


def _real_answer_ok(b: Behaviour, e: dict[str, Any]) -> bool:
    """Whether a real attempt (not the scenario's) got what destination ``b`` does."""
    status, error = e["status"], e["error"]
    if b in SUCCEEDING:
        return status == 200 and error is None and e["outcome"] == "delivered"
    if b is Behaviour.RETRY_AFTER:
        return status == 503 and error is None
    if b is Behaviour.GARBAGE:
        return status is None and error is not None and GARBAGE_ERROR.search(error) is not None
    if b in (Behaviour.RESET_CONNECT, Behaviour.RESET_REQUEST):
        return status is None and error is not None and RESET_ERROR.fullmatch(error) is not None
    if b is Behaviour.HANG:
        return status is None and error == HANG_ERROR
    assert b is Behaviour.NON_RETRYABLE
    return status == 489 and error is None and e["outcome"] == "failed" and e["detail"].get("non_retryable") is True


def test_nothing_lost_under_load_with_the_lossy_network_scenario_and_hostile_destinations(tmp_path: Path) -> None:
    got = asyncio.run(asyncio.wait_for(_run(LOAD, tmp_path / "server.log"), DEADLINE_S))
    accepted: Accepted = got["accepted"]
    sink: Sink = got["sink"]
    hostile: dict[Behaviour, HostileSink] = got["hostile"]
    assert not accepted.refused, f"publishes refused: {accepted.refused[:5]}"
    assert not accepted.gave_up, f"jobs dropped {MAX_TRIES} times in a row: {accepted.gave_up[:5]}"
    assert len(accepted.account_of) == LOAD.messages
    attempts = got["attempts"]
    state = got["state"]["accounts"]
    assert not got["state"].get("truncated"), "the state was cut: raise STATE_LIMIT"
    behaviour_of = accepted.behaviour_of
    planned = Counter(behaviour_of.values())
    assert set(planned) == set(Behaviour), f"every behaviour gets messages: {planned}"

    # -- the server never answered 500, logged no exception, and kept everything (so the reads are complete)
    requests = got["requests"]
    assert 500 not in accepted.statuses and 500 not in got["statuses"], (accepted.statuses, got["statuses"])
    assert not [e for e in requests if e["status"] is not None and e["status"] >= 500], [
        e for e in requests if e["status"] is not None and e["status"] >= 500
    ][:3]
    logged = [line for line in got["log"].splitlines() if any(s in line for s in LOG_ERRORS)]
    assert not logged, logged[:10]
    assert not any(got["health"]["evicted"].values()), got["health"]["evicted"]
    assert [f for h in hostile.values() for f in h.failures] == []

    # -- /_sim/health and /_sim/journal answered while an attempt hung (the engine waiting on it)
    probes: list[bool] = got["probes"]  # each one answered 200 (``_call``); True: while the hang was open
    assert any(probes), f"no probe answered while a hanging attempt was open: {probes}"

    # -- the drops came from the scenario, and a dropped call created nothing
    dropped = sum(accepted.dropped.values())
    calls = dropped + LOAD.messages
    assert 0 < dropped <= 0.05 * calls, f"{dropped} of {calls} publishes dropped: not the scenario's 2 %"
    gateway = [e for e in requests if e["operation"] in ("publishMessage", "enqueueMessage")]
    drops = [e for e in gateway if e["outcome"] == "drop"]
    assert Counter(e["operation"] for e in drops) == accepted.dropped
    assert all(e["rule"] == DROP_RULE and e["status"] is None and not e["messageIds"] for e in drops), drops[:3]
    created = Counter(mid for e in gateway for mid in e["messageIds"])
    assert set(created) == set(accepted.account_of) and max(created.values()) == 1
    assert {m["messageId"] for acc in state.values() for m in acc["messages"]} == set(accepted.account_of)

    # -- every accepted message ends exactly once; nothing else ends; nothing is delivered twice
    finals = Counter(e["messageId"] for e in attempts if e["outcome"] in ("delivered", "failed"))
    delivered = Counter(e["messageId"] for e in attempts if e["outcome"] == "delivered")
    lost = set(accepted.account_of) - set(finals)
    duplicated = [m for m, c in finals.items() if c > 1]
    assert not set(finals) - set(accepted.account_of), "a message ended that was never accepted"
    assert not [e for e in attempts if e["outcome"] == "cancelled"]

    # -- the state agrees: delivered or in the DLQ, the DLQ holds exactly the failed ones, nothing is left
    #    pending or retrying once the clock is past the last retry, and each history matches the journal
    final_of = {e["messageId"]: e["outcome"] for e in attempts if e["outcome"] in ("delivered", "failed")}
    last_retry = max((e["detail"]["next_delivery_ms"] for e in attempts if e["outcome"] == "retry"), default=0)
    assert got["clock"]["now"] > last_retry and got["clock"]["pendingEvents"] == 0
    by_msg: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in attempts:
        by_msg[e["messageId"]].append(e)
    dlq_of: dict[str, dict[str, Any]] = {}
    for acct, acc in state.items():
        assert Counter(m["state"] for m in acc["messages"]).keys() <= {"delivered", "failed"}, acct
        for m in acc["messages"]:
            mid = m["messageId"]
            assert m["state"] == final_of.get(mid), mid
            assert "nextDeliveryTime" not in m, m
            actives = [h for h in m["history"] if h["state"] == "ACTIVE"]
            assert [h["retried"] for h in actives] == [e["retried"] for e in by_msg[mid]], mid
            assert m["history"][-1]["state"] == m["state"].upper(), m["history"]
        for d in acc["dlq"]:
            assert d["messageId"] not in dlq_of
            dlq_of[d["messageId"]] = d
        dlq = {d["messageId"] for d in acc["dlq"]}
        assert dlq == {m["messageId"] for m in acc["messages"] if m["state"] == "failed"}, acct
    failed = sum(1 for o in final_of.values() if o == "failed")
    benign = [mid for mid, b in behaviour_of.items() if b in SUCCEEDING]
    benign_failed = sum(1 for mid in benign if final_of.get(mid) == "failed")
    assert benign_failed < len(benign) // 20, (
        f"{benign_failed} of {len(benign)} well-behaved messages in the DLQ: the fault rates are not what the test "
        "assumes"
    )

    # -- the failures came from the scenario or the destination; every real attempt reached it exactly once
    scripted = [e for e in attempts if e["rule"] is not None]
    real = [e for e in attempts if e["rule"] is None]
    assert {(e["rule"], e["status"]) for e in scripted} == {(FAIL_SCRIPT, 503)}
    assert all(e["outcome"] in ("retry", "failed") for e in scripted)
    wrong = [(behaviour_of[e["messageId"]], e) for e in real if not _real_answer_ok(behaviour_of[e["messageId"]], e)]
    assert not wrong, Counter((str(b), e["status"], e["error"], e["outcome"]) for b, e in wrong).most_common(20)
    assert 0.05 * len(attempts) <= len(scripted) <= 0.15 * len(attempts), f"{len(scripted)} of {len(attempts)} scripted"
    real_to: dict[Behaviour, set[tuple[str, int]]] = defaultdict(set)
    for e in real:
        real_to[behaviour_of[e["messageId"]]].add((e["messageId"], e["retried"]))
    scripted_keys = {(e["messageId"], e["retried"]) for e in scripted}
    recording: list[tuple[Behaviour, Counter[tuple[str, int]]]] = [(Behaviour.OK, sink.seen)]
    recording += [(b, h.seen) for b, h in hostile.items() if b is not Behaviour.RESET_CONNECT]
    for b, seen in recording:
        assert set(seen) == real_to[b], b
        assert not seen or max(seen.values()) == 1, (b, [k for k, c in seen.items() if c > 1][:5])
        assert not scripted_keys & set(seen), f"a scripted 503 went on the wire to {b}"
    # a reset on connect reads nothing: its connections are its attempts (no client retries behind our back)
    assert hostile[Behaviour.RESET_CONNECT].connections == len(real_to[Behaviour.RESET_CONNECT])
    for b in HOSTILE:
        assert real_to[b], f"no attempt reached the {b} destination for real"
    # the inbox agrees with the journal: one record per attempt, the same answer, virtual iff scripted
    inbox = {(d["messageId"], d["retried"]): d for d in got["deliveries"]}
    assert len(inbox) == len(got["deliveries"]) == len(attempts)
    for e in attempts:
        d = inbox[(e["messageId"], e["retried"])]
        assert (d["status"], d["error"], d["virtual"], d["account"]) == (
            e["status"],
            e["error"],
            e["rule"] is not None,
            e["account"],
        ), (d, e)
    (listed,) = got["scenarios"]["scenarios"]
    assert [(d["matched"], d["deliveries"]) for d in listed["destinations"]] == [(len(attempts), len(scripted))]
    assert [(r["matched"], r["fired"]) for r in listed["rules"]] == [(calls, dropped)]

    # -- each message's end is what its destination does; every retry waits the default backoff (a garbage
    #    Retry-After or X-RateLimit-Reset is ignored, never an overflow, a negative or a zero delay)
    outcomes: dict[Behaviour, Counter[str]] = defaultdict(Counter)
    bad_end: list[tuple[Behaviour, str, list[dict[str, Any]]]] = []
    for mid, b in behaviour_of.items():
        tries = by_msg[mid]
        retries = accepted.retries_of[mid]
        outcomes[b][final_of.get(mid, "lost")] += 1
        kinds = [e["outcome"] for e in tries]
        n_real = sum(1 for e in tries if e["rule"] is None)
        ok = (
            [e["retried"] for e in tries] == list(range(len(tries)))
            and kinds[:-1] == ["retry"] * (len(tries) - 1)
            and kinds[-1] in ("delivered", "failed")
        )
        if b in SUCCEEDING:  # delivered at its first real attempt; failed only if the scenario took every one
            ok = ok and (n_real == 1 and tries[-1]["rule"] is None if n_real else len(tries) == retries + 1)
        elif b is Behaviour.NON_RETRYABLE:  # failed at its first real attempt, whatever retries it had left
            ok = ok and kinds[-1] == "failed" and n_real <= 1
            ok = ok and (tries[-1]["rule"] is None if n_real else len(tries) == retries + 1)
        else:  # every retry used, then the DLQ
            ok = ok and kinds[-1] == "failed" and len(tries) == retries + 1
        if not ok:
            bad_end.append((b, mid, tries))
    assert not bad_end, bad_end[:3]
    for b in FAILING + (Behaviour.NON_RETRYABLE,):
        assert set(outcomes[b]) == {"failed"}, (b, outcomes[b])
    assert outcomes[Behaviour.HUGE]["delivered"] > 0
    delays = [
        (e["detail"]["next_delivery_ms"] - e["time"], default_backoff_ms(e["retried"] + 1))
        for e in attempts
        if e["outcome"] == "retry"
    ]
    assert all(d == want for d, want in delays), [x for x in delays if x[0] != x[1]][:5]

    # -- each DLQ entry holds its last answer: the status (none for a transport failure) and the error
    for mid, d in dlq_of.items():
        last = by_msg[mid][-1]
        b = behaviour_of[mid]
        assert d.get("responseStatus") == last["status"], (b, d, last)
        end = d["history"][-1]
        assert end["state"] == "FAILED" and end.get("responseStatus") == last["status"], (b, end)
        assert end["error"] == (last["error"] or f"destination answered {last['status']}"), (b, end, last)
        if last["rule"] is not None:
            continue
        if b is Behaviour.RETRY_AFTER:
            assert _header(d["responseHeader"], "Retry-After") == [RETRY_AFTER_VALUE], d["responseHeader"]
        elif b is Behaviour.NON_RETRYABLE:
            assert d.get("responseBody") == NON_RETRYABLE_BODY.decode(), d
            assert _header(d["responseHeader"], "Upstash-NonRetryable-Error") == ["true"]
        elif b in (Behaviour.GARBAGE, Behaviour.RESET_CONNECT, Behaviour.RESET_REQUEST, Behaviour.HANG):
            assert "responseStatus" not in d and end["error"] == last["error"], (b, d)

    # -- each queue in enqueue order, one message at a time
    enqueued: dict[tuple[str, str], list[str]] = defaultdict(list)
    for acct, acc in state.items():
        for m in acc["messages"]:  # the state lists messages in creation order
            if m.get("queueName"):
                enqueued[(acct, m["queueName"])].append(m["messageId"])
    assert len(enqueued) == LOAD.queues * LOAD.accounts
    head = {key: 0 for key in enqueued}
    misordered: list[tuple[tuple[str, str], str, str]] = []
    for e in attempts:  # journal order
        key = accepted.queue_of.get(e["messageId"])
        if key is None:
            continue
        expected = enqueued[key][head[key]] if head[key] < len(enqueued[key]) else None
        if expected != e["messageId"]:
            misordered.append((key, e["messageId"], str(expected)))
            continue
        if e["outcome"] in ("delivered", "failed"):
            head[key] += 1
    unfinished = [k for k, v in enqueued.items() if head[k] != len(v)]
    assert {behaviour_of[mid] for mid in accepted.queue_of} == set(Behaviour) - {Behaviour.HANG}

    # -- isolation: each account holds, and was delivered, only its own messages
    for acct, acc in state.items():
        assert {m["messageId"] for m in acc["messages"]} == set(accepted.by_account[acct])
        assert sorted(got["queues"][acct]) == sorted({q for (a, q) in enqueued if a == acct})
    for b, bodies, paths in [(Behaviour.OK, sink.bodies, sink.paths)] + [
        (b, h.bodies, h.paths) for b, h in hostile.items()
    ]:
        for mid, body in bodies.items():
            acct = accepted.account_of[mid]
            assert behaviour_of[mid] is b
            assert f'"account":"{acct}"'.encode() in body and paths[mid].startswith(f"/{b}/{acct}/")
    assert got["cross"] and all(status == 404 for _, _, status in got["cross"]), got["cross"][:5]

    # -- the ledger is the sum of the documented prices of what was accepted (a dropped call costs nothing)
    ops = Contract.load().operations
    price = {op: Decimal(str(ops[op].extensions["x-billing"]["price"])) for op in ("publishMessage", "enqueueMessage")}
    expected_total = sum((price[op] * n for op, n in accepted.operations.items()), Decimal(0))
    assert Decimal(got["ledger"]["total"]) == expected_total
    for acct, ids in accepted.by_account.items():
        charged = sum(price["enqueueMessage" if mid in accepted.queue_of else "publishMessage"] for mid in ids)
        assert Decimal(got["ledger"]["accounts"][acct]) == charged

    per = " ".join(
        f"{b}={planned[b]}/{len(real_to[b])}real/" + ",".join(f"{o}:{c}" for o, c in sorted(outcomes[b].items()))
        for b in Behaviour
    )
    wall = got["wall"]
    summary = (
        f"nothing-lost[{SCENARIO}+hostile, seed {SEED}]: messages={LOAD.messages} clients={LOAD.clients} "
        f"queues={LOAD.queues} accounts={LOAD.accounts} accepted={len(accepted.account_of)} "
        f"dropped={dropped} attempts={len(attempts)} scripted503={len(scripted)} "
        f"delivered={len(delivered)} dlq={failed} lost={len(lost)} duplicated={len(duplicated)} "
        f"misordered={len(misordered)} | per behaviour (messages/real attempts/ends): {per} | "
        f"probes-while-hanging={sum(probes)}/{len(probes)} advances={got['advances']} "
        f"wall={wall['total']:.1f}s (publish {wall['publish']:.1f}s, advance {wall['advance']:.1f}s)"
    )
    print(summary)
    assert (len(lost), len(duplicated), len(misordered)) == (0, 0, 0), (
        summary,
        sorted(lost)[:5],
        duplicated[:5],
        misordered[:5],
    )
    assert not unfinished and len(delivered) + failed == LOAD.messages
