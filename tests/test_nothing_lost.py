"""Nothing lost under load: many clients publish and enqueue while a flaky destination fails deliveries.

A ``qstash-sim serve --clock virtual`` subprocess takes messages from concurrent clients (several
accounts, several queues whose names repeat across accounts, and plain publishes). Every delivery goes to
a loopback sink in this process that fails 10 % of attempts with a 500 and resets the connection on 2 %,
deterministically (a seeded hash of message id and attempt number). The clock is then advanced until
nothing is pending, and the journal, the state, the ledger and the sink's own log are cross-checked:

* every accepted message ends exactly once, delivered or in the DLQ, and nothing else ends;
* the sink saw each attempt of the journal exactly once (no lost or duplicated attempt on the wire);
* each queue delivers in creation order, one message at a time;
* no account sees another account's messages, queues or deliveries;
* the ledger equals the sum of the documented prices of what was accepted.

Sizes: the default run is small (CI); ``QSTASH_SIM_SOAK=full`` (``make soak``) runs the issue's load:
10,000 messages from 50 clients across 20 queues. Everything is loopback and bounded in count and time.

Fault scenarios (``sim.load_scenario``) were not wired when this was written, so the failing destination is
a real loopback sink rather than a scenario file.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from simulator.contract import Contract

ROOT = Path(__file__).resolve().parent.parent
FULL = os.environ.get("QSTASH_SIM_SOAK", "").lower() in ("1", "full", "yes")


@dataclass(frozen=True, slots=True)
class Load:
    """How much traffic one run sends."""

    messages: int
    clients: int
    queues: int
    accounts: int


LOAD = Load(messages=10_000, clients=50, queues=20, accounts=5) if FULL else Load(messages=1_200, clients=12, queues=6, accounts=3)
SEED = 7
FAIL_RATE = 0.10
RESET_RATE = 0.02
DEADLINE_S = 600 if FULL else 120  # the whole run, a bound (never a timing assertion)


# ---------------------------------------------------------------------------------------------- the sink


@dataclass(slots=True)
class FlakySink:
    """A minimal HTTP/1.1 keep-alive server: 200, or 500 (10 %), or a connection reset (2 %)."""

    seen: Counter[tuple[str, int]] = field(default_factory=Counter)  # (message id, retried) -> requests
    verdicts: dict[tuple[str, int], str] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)
    paths: dict[str, str] = field(default_factory=dict)
    server: asyncio.base_events.Server | None = None

    @staticmethod
    def decide(message_id: str, retried: int) -> str:
        """``ok``, ``fail`` or ``reset``, from a seeded hash: the same inputs always get the same answer."""
        digest = hashlib.sha256(f"{SEED}:{message_id}:{retried}".encode()).digest()
        u = int.from_bytes(digest[:8], "big") / 2**64
        return "reset" if u < RESET_RATE else "fail" if u < RESET_RATE + FAIL_RATE else "ok"

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
    def __init__(self, sink: FlakySink) -> None:
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
            mid, retried = headers["upstash-message-id"], int(headers["upstash-retried"])
            key = (mid, retried)
            self.sink.seen[key] += 1
            self.sink.bodies[mid] = body
            self.sink.paths[mid] = lines[0].split(" ")[1]
            verdict = self.sink.verdicts[key] = FlakySink.decide(mid, retried)
            if verdict == "reset":
                self.transport.abort()
                self.transport = None
                return
            status = b"200 OK" if verdict == "ok" else b"500 Internal Server Error"
            self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None


# ---------------------------------------------------------------------------------------------- the server


async def _start_server() -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulator", "serve", "--port", "0", "--clock", "virtual", "--seed", str(SEED),
        "--log-level", "warning",
        cwd=ROOT, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
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
    """One publish: its account, queue (None = plain publish) and retries."""

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
    refused: list[tuple[int, int, str]] = field(default_factory=list)


def _plan(load: Load) -> list[Job]:
    jobs = []
    for n in range(load.messages):
        # Accounts take turns; within an account, 60 % go to queues whose names repeat in every account
        # and 40 % are plain publishes; 1 in 10 has no retries, so that failures reach the DLQ often enough.
        k = n // load.accounts
        queue = f"q-{k % load.queues}" if (k // load.queues) % 5 < 3 else None
        jobs.append(Job(n, f"acct-{n % load.accounts}", queue, 0 if k % 10 == 7 else 2))
    return jobs


async def _client(session: aiohttp.ClientSession, base: str, sink_url: str, jobs: list[Job], accepted: Accepted) -> None:
    while jobs:
        job = jobs.pop()
        dest = f"{sink_url}/{job.account}/{job.n}"
        path = f"/v1/qstash/enqueue/{job.queue}/{dest}" if job.queue else f"/v1/qstash/publish/{dest}"
        headers = {"x-api-key": job.account, "Content-Type": "application/json", "Upstash-Retries": str(job.retries)}
        body = f'{{"account":"{job.account}","n":{job.n}}}'
        async with session.post(base + path, data=body, headers=headers) as resp:
            text = await resp.text()
            if resp.status != 200:
                accepted.refused.append((job.n, resp.status, text))
                continue
            mid = (await resp.json())["messageId"]
        accepted.by_account[job.account].append(mid)
        accepted.account_of[mid] = job.account
        if job.queue:
            accepted.queue_of[mid] = (job.account, job.queue)
        accepted.operations["enqueueMessage" if job.queue else "publishMessage"] += 1


async def _run(load: Load) -> dict[str, Any]:
    sink = FlakySink()
    sink_port = await sink.start()
    proc, base = await _start_server()
    try:
        connector = aiohttp.TCPConnector(limit=load.clients)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
            jobs = _plan(load)[::-1]  # clients pop from the end: job 0 goes first
            accepted = Accepted()
            await asyncio.gather(*(
                _client(session, base, f"http://127.0.0.1:{sink_port}", jobs, accepted) for _ in range(load.clients)
            ))
            # Advance until idle: retries back off up to hours, so step a day at a time (bounded).
            for _ in range(30):
                async with session.post(base + "/_sim/clock/advance", json={"by": "1d"}) as resp:
                    assert resp.status == 200, await resp.text()
                    if (await resp.json())["pendingEvents"] == 0:
                        break
            else:
                raise AssertionError("still pending after 30 virtual days")
            got: dict[str, Any] = {"accepted": accepted, "sink": sink}
            for name, path in (("journal", "/_sim/journal?kind=attempt"), ("state", "/_sim/state"), ("ledger", "/_sim/ledger")):
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


def test_nothing_lost_under_load_with_a_flaky_destination() -> None:
    got = asyncio.run(asyncio.wait_for(_run(LOAD), DEADLINE_S))
    accepted: Accepted = got["accepted"]
    sink: FlakySink = got["sink"]
    assert not accepted.refused, f"publishes refused: {accepted.refused[:5]}"
    assert len(accepted.account_of) == LOAD.messages

    # -- every accepted message ends exactly once; nothing else ends
    attempts = [e for e in got["journal"]["entries"] if e["kind"] == "attempt"]
    finals = Counter(e["messageId"] for e in attempts if e["outcome"] in ("delivered", "failed"))
    assert set(finals) == set(accepted.account_of), "a message ended that was never accepted, or one never ended"
    assert max(finals.values()) == 1, [m for m, c in finals.items() if c > 1][:5]
    assert not [e for e in attempts if e["outcome"] == "cancelled"]

    # -- the state agrees: delivered or in the DLQ, and the DLQ holds exactly the failed ones
    state = got["state"]["accounts"]
    final_of = {e["messageId"]: e["outcome"] for e in attempts if e["outcome"] in ("delivered", "failed")}
    for acct, acc in state.items():
        for m in acc["messages"]:
            assert m["state"] == final_of[m["messageId"]], m["messageId"]
        dlq = {d["messageId"] if "messageId" in d else d["message"]["messageId"] for d in acc["dlq"]}
        assert dlq == {m["messageId"] for m in acc["messages"] if m["state"] == "failed"}, acct
    failed = sum(1 for o in final_of.values() if o == "failed")
    assert 0 < failed < LOAD.messages // 10, f"{failed} in the DLQ: the fault rates are not what the test assumes"

    # -- the wire agrees with the journal: each attempt reached the sink exactly once, with its verdict
    assert len(sink.seen) == len(attempts)
    assert max(sink.seen.values()) == 1, [k for k, c in sink.seen.items() if c > 1][:5]
    for e in attempts:
        verdict = sink.verdicts[(e["messageId"], e["retried"])]
        expected = {"ok": "delivered"}.get(verdict) or ("retry", "failed")
        assert e["outcome"] in expected, (e, verdict)
        if verdict == "reset":
            assert e["status"] is None and e["error"], e
    assert sum(1 for v in sink.verdicts.values() if v == "reset") > 0

    # -- each queue in creation order, one message at a time
    created: dict[tuple[str, str], list[str]] = defaultdict(list)
    for acct, acc in state.items():
        for m in acc["messages"]:  # the state lists messages in creation order
            if m.get("queueName"):
                created[(acct, m["queueName"])].append(m["messageId"])
    assert len(created) == LOAD.queues * LOAD.accounts
    head = {key: 0 for key in created}
    for e in attempts:  # journal order
        key = accepted.queue_of.get(e["messageId"])
        if key is None:
            continue
        order = created[key]
        assert order[head[key]] == e["messageId"], f"queue {key}: attempt of {e['messageId']} before {order[head[key]]}"
        if e["outcome"] in ("delivered", "failed"):
            head[key] += 1
    assert all(head[k] == len(v) for k, v in created.items())

    # -- isolation: each account holds, and was delivered, only its own messages
    for acct, acc in state.items():
        assert {m["messageId"] for m in acc["messages"]} == set(accepted.by_account[acct])
        assert sorted(got["queues"][acct]) == sorted({q for (a, q) in created if a == acct})
    for mid, body in sink.bodies.items():
        acct = accepted.account_of[mid]
        assert f'"account":"{acct}"'.encode() in body and sink.paths[mid].startswith(f"/{acct}/")
    assert got["cross"] and all(status == 404 for _, _, status in got["cross"]), got["cross"][:5]

    # -- the ledger is the sum of the documented prices of what was accepted
    ops = Contract.load().operations
    expected_total = sum(
        (Decimal(str(ops[op].extensions["x-billing"]["price"])) * n for op, n in accepted.operations.items()), Decimal(0)
    )
    assert Decimal(got["ledger"]["total"]) == expected_total
    for acct, ids in accepted.by_account.items():
        assert Decimal(got["ledger"]["accounts"][acct]) == Decimal(str(ops["publishMessage"].extensions["x-billing"]["price"])) * len(ids)
