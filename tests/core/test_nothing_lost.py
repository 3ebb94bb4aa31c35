"""Nothing lost under load, with the ``lossy-network`` fault scenario loaded (issue 7 §6).

A ``qstash-sim serve --clock virtual`` subprocess loads ``scenarios/lossy-network.yaml`` through
``POST /_sim/scenarios``: it drops 2 % of publish/enqueue connections and answers 10 % of delivery attempts
with a scripted 503, every draw from the simulator's seeded faults stream. Concurrent clients (several api
keys, queues whose names repeat in every account, plain publishes) publish; a dropped connection is "not
accepted" and the client publishes again (a new message). Destinations are a loopback sink in this process
that answers 200: the 90 % of attempts the scenario does not script reach it for real. The clock is then
advanced until nothing is pending, and the journal, the state, the ledger, the scenario's own counters and
the sink's log are cross-checked:

* every accepted message (an id from a 2xx answer) ends exactly once, delivered or in the DLQ; no message is
  delivered twice; nothing else ends; a dropped call created nothing and cost nothing;
* each attempt is either the scenario's 503 (virtual, never on the wire) or reached the sink exactly once;
* each queue delivers in enqueue order, one message at a time;
* no account sees another account's messages, queues or deliveries;
* the ledger equals the sum of the documented prices of the accepted calls.

Sizes: the default run is small (CI); ``QSTASH_SIM_SOAK=full`` (``make soak``) runs the issue's load:
10,000 messages from 50 clients across 20 queues, and prints a summary line. Everything is loopback and
bounded in count and time; nothing sleeps and no assertion is about timing.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from qstash_sim.contract.router import Contract
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


LOAD = (
    Load(messages=10_000, clients=50, queues=20, accounts=5)
    if FULL
    else Load(messages=1_000, clients=10, queues=20, accounts=3)
)
SEED = 7
SCENARIO = "lossy-network"
DROP_RULE = f"{SCENARIO}/drop-2pct"
FAIL_SCRIPT = f"{SCENARIO}/fail-10pct"
MAX_TRIES = 8  # publishes of one job before a client gives up (8 drops in a row at 2 %: never, in practice)
DEADLINE_S = 600 if FULL else 120  # the whole run, a bound (never a timing assertion)


# ---------------------------------------------------------------------------------------------- the sink


@dataclass(slots=True)
class Sink:
    """A minimal HTTP/1.1 keep-alive server that answers 200 and records every request it sees."""

    seen: Counter[tuple[str, int]] = field(default_factory=Counter)  # (message id, retried) -> requests
    bodies: dict[str, bytes] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
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


async def _start_server() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qstash_sim",
        "serve",
        "--port",
        "0",
        "--clock",
        "virtual",
        "--seed",
        str(SEED),
        "--log-level",
        "warning",
        cwd=ROOT,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
    m = re.search(r"running at (http://127\.0\.0\.1:\d+)", line)
    if m is None:
        proc.kill()
        raise AssertionError(f"the server did not start: {line!r}")
    return proc, m.group(1)


async def _stop_server(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


# ---------------------------------------------------------------------------------------------- the load


@dataclass(frozen=True, slots=True)
class Job:
    """One message to get accepted: its account, queue (None = plain publish) and retries."""

    n: int
    account: str
    queue: str | None
    retries: int


@dataclass(slots=True)
class Accepted:
    """What the clients were told."""

    by_account: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    account_of: dict[str, str] = field(default_factory=dict)
    queue_of: dict[str, tuple[str, str]] = field(default_factory=dict)
    operations: Counter[str] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)  # operation -> calls whose connection was dropped
    refused: list[tuple[int, int, str]] = field(default_factory=list)
    gave_up: list[int] = field(default_factory=list)


def _plan(load: Load) -> list[Job]:
    jobs = []
    for n in range(load.messages):
        # Accounts take turns; within an account, 60 % go to queues whose names repeat in every account
        # and 40 % are plain publishes; 1 in 10 has no retries, so that failures reach the DLQ often enough.
        k = n // load.accounts
        queue = f"q-{k % load.queues}" if (k // load.queues) % 5 < 3 else None
        jobs.append(Job(n, f"acct-{n % load.accounts}", queue, 0 if k % 10 == 7 else 2))
    return jobs


async def _client(
    session: aiohttp.ClientSession, base: str, sink_url: str, jobs: list[Job], accepted: Accepted
) -> None:
    while jobs:
        job = jobs.pop()
        dest = f"{sink_url}/{job.account}/{job.n}"
        path = f"/v1/qstash/enqueue/{job.queue}/{dest}" if job.queue else f"/v1/qstash/publish/{dest}"
        operation = "enqueueMessage" if job.queue else "publishMessage"
        headers = {"x-api-key": job.account, "Content-Type": "application/json", "Upstash-Retries": str(job.retries)}
        body = f'{{"account":"{job.account}","n":{job.n}}}'
        for _ in range(MAX_TRIES):
            try:
                async with session.post(base + path, data=body, headers=headers) as resp:
                    text = await resp.text()
                    status = resp.status
            except aiohttp.ServerDisconnectedError:
                accepted.dropped[operation] += 1  # not accepted: publish again (a new message if it lands)
                continue
            if status != 200:
                accepted.refused.append((job.n, status, text))
                break
            mid = json.loads(text)["messageId"]
            accepted.by_account[job.account].append(mid)
            accepted.account_of[mid] = job.account
            if job.queue:
                accepted.queue_of[mid] = (job.account, job.queue)
            accepted.operations[operation] += 1
            break
        else:
            accepted.gave_up.append(job.n)


async def _run(load: Load) -> dict[str, Any]:
    sink = Sink()
    sink_port = await sink.start()
    proc, base = await _start_server()
    try:
        connector = aiohttp.TCPConnector(limit=load.clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            text = shipped_scenarios()[SCENARIO].read_text()
            async with session.post(
                f"{base}/_sim/scenarios?name={SCENARIO}", data=text, headers={"Content-Type": "application/yaml"}
            ) as resp:
                assert resp.status == 200, await resp.text()
            jobs = _plan(load)[::-1]  # clients pop from the end: job 0 goes first
            accepted = Accepted()
            await asyncio.gather(
                *(_client(session, base, f"http://127.0.0.1:{sink_port}", jobs, accepted) for _ in range(load.clients))
            )
            # Advance until idle: retries back off up to hours, so step a day at a time (bounded).
            for _ in range(30):
                async with session.post(base + "/_sim/clock/advance", json={"by": "1d"}) as resp:
                    assert resp.status == 200, await resp.text()
                    if (await resp.json())["pendingEvents"] == 0:
                        break
            else:
                raise AssertionError("still pending after 30 virtual days")
            got: dict[str, Any] = {"accepted": accepted, "sink": sink}
            for name, path in (
                ("attempts", "/_sim/journal?kind=attempt"),
                ("requests", "/_sim/journal?kind=request"),
                ("state", "/_sim/state"),
                ("ledger", "/_sim/ledger"),
                ("scenarios", "/_sim/scenarios"),
            ):
                async with session.get(base + path) as resp:
                    assert resp.status == 200
                    got[name] = await resp.json()
            # Isolation through the API: another account's message id is unknown to me.
            got["cross"] = []
            accounts = sorted(accepted.by_account)
            for i, acct in enumerate(accounts):
                other = accounts[(i + 1) % len(accounts)]
                for mid in accepted.by_account[other][:20]:
                    async with session.get(f"{base}/v1/qstash/messages/{mid}", headers={"x-api-key": acct}) as resp:
                        got["cross"].append((acct, mid, resp.status))
                async with session.get(f"{base}/v1/qstash/queues", headers={"x-api-key": acct}) as resp:
                    got.setdefault("queues", {})[acct] = [q["name"] for q in await resp.json()]
            return got
    finally:
        await _stop_server(proc)
        await sink.close()


# ---------------------------------------------------------------------------------------------- the checks


def test_nothing_lost_under_load_with_the_lossy_network_scenario() -> None:
    got = asyncio.run(asyncio.wait_for(_run(LOAD), DEADLINE_S))
    accepted: Accepted = got["accepted"]
    sink: Sink = got["sink"]
    assert not accepted.refused, f"publishes refused: {accepted.refused[:5]}"
    assert not accepted.gave_up, f"jobs dropped {MAX_TRIES} times in a row: {accepted.gave_up[:5]}"
    assert len(accepted.account_of) == LOAD.messages
    attempts = got["attempts"]["entries"]
    state = got["state"]["accounts"]

    # -- the drops came from the scenario, and a dropped call created nothing
    dropped = sum(accepted.dropped.values())
    calls = dropped + LOAD.messages
    assert 0 < dropped <= 0.05 * calls, f"{dropped} of {calls} publishes dropped: not the scenario's 2 %"
    gateway = [e for e in got["requests"]["entries"] if e["operation"] in ("publishMessage", "enqueueMessage")]
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

    # -- the state agrees: delivered or in the DLQ, and the DLQ holds exactly the failed ones
    final_of = {e["messageId"]: e["outcome"] for e in attempts if e["outcome"] in ("delivered", "failed")}
    for acct, acc in state.items():
        for m in acc["messages"]:
            assert m["state"] == final_of.get(m["messageId"]), m["messageId"]
        dlq = {d["messageId"] if "messageId" in d else d["message"]["messageId"] for d in acc["dlq"]}
        assert dlq == {m["messageId"] for m in acc["messages"] if m["state"] == "failed"}, acct
    failed = sum(1 for o in final_of.values() if o == "failed")
    assert 0 < failed < LOAD.messages // 10, f"{failed} in the DLQ: the fault rates are not what the test assumes"

    # -- the failures came from the scenario; every other attempt reached the sink exactly once, for real
    scripted = [e for e in attempts if e["rule"] is not None]
    real = [e for e in attempts if e["rule"] is None]
    assert {(e["rule"], e["status"]) for e in scripted} == {(FAIL_SCRIPT, 503)}
    assert all(e["outcome"] in ("retry", "failed") for e in scripted)
    assert all(e["status"] == 200 and e["outcome"] == "delivered" for e in real), [
        e for e in real if e["status"] != 200
    ][:3]
    assert 0.05 * len(attempts) <= len(scripted) <= 0.15 * len(attempts), f"{len(scripted)} of {len(attempts)} scripted"
    assert set(sink.seen) == {(e["messageId"], e["retried"]) for e in real}
    assert max(sink.seen.values()) == 1, [k for k, c in sink.seen.items() if c > 1][:5]
    assert not {(e["messageId"], e["retried"]) for e in scripted} & set(sink.seen), "a scripted 503 went on the wire"
    (listed,) = got["scenarios"]["scenarios"]
    assert [(d["matched"], d["deliveries"]) for d in listed["destinations"]] == [(len(attempts), len(scripted))]
    assert [(r["matched"], r["fired"]) for r in listed["rules"]] == [(calls, dropped)]

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

    # -- isolation: each account holds, and was delivered, only its own messages
    for acct, acc in state.items():
        assert {m["messageId"] for m in acc["messages"]} == set(accepted.by_account[acct])
        assert sorted(got["queues"][acct]) == sorted({q for (a, q) in enqueued if a == acct})
    for mid, body in sink.bodies.items():
        acct = accepted.account_of[mid]
        assert f'"account":"{acct}"'.encode() in body and sink.paths[mid].startswith(f"/{acct}/")
    assert got["cross"] and all(status == 404 for _, _, status in got["cross"]), got["cross"][:5]

    # -- the ledger is the sum of the documented prices of what was accepted (a dropped call costs nothing)
    ops = Contract.load().operations
    price = {op: Decimal(str(ops[op].extensions["x-billing"]["price"])) for op in ("publishMessage", "enqueueMessage")}
    expected_total = sum((price[op] * n for op, n in accepted.operations.items()), Decimal(0))
    assert Decimal(got["ledger"]["total"]) == expected_total
    for acct, ids in accepted.by_account.items():
        charged = sum(price["enqueueMessage" if mid in accepted.queue_of else "publishMessage"] for mid in ids)
        assert Decimal(got["ledger"]["accounts"][acct]) == charged

    summary = (
        f"nothing-lost[{SCENARIO}, seed {SEED}]: messages={LOAD.messages} clients={LOAD.clients} "
        f"queues={LOAD.queues} accounts={LOAD.accounts} accepted={len(accepted.account_of)} "
        f"dropped={dropped} attempts={len(attempts)} scripted503={len(scripted)} "
        f"delivered={len(delivered)} dlq={failed} lost={len(lost)} duplicated={len(duplicated)} "
        f"misordered={len(misordered)}"
    )
    print(summary)
    assert (len(lost), len(duplicated), len(misordered)) == (0, 0, 0), (
        summary,
        sorted(lost)[:5],
        duplicated[:5],
        misordered[:5],
    )
    assert not unfinished and len(delivered) + failed == LOAD.messages
