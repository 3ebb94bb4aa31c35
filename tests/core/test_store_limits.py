"""Bounded memory (finding M1): every store a long-running simulator fills has a cap (``Limits``); past it
the oldest go first and are counted; pending and retrying messages, and accounts with work, never go.

Also: draining yields to the event loop every ``YIELD_EVERY`` events without changing the order events run in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

import pytest

from qstash_sim.api import wire
from qstash_sim.base.clock import VirtualClock
from qstash_sim.base.seed import Seed
from qstash_sim.core.service import DEDUP_WINDOW_MS, SimulatorCore
from qstash_sim.domain.commands import Caller, MessageSettings, PublishCommand, ScheduleCommand
from qstash_sim.domain.journal import Journal, Retained
from qstash_sim.domain.message import MessageState
from qstash_sim.domain.world import Limits, World
from qstash_sim.engine.engine import SEND_CHUNK, YIELD_EVERY, Engine
from qstash_sim.engine.transport import OutboundRequest, Outcome, VirtualTransport
from qstash_sim.errors import NotFound

T = TypeVar("T")
OK = "https://ok.example.com/hook"
FAIL = "https://fail.example.com/hook"


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


def core(**limits: Any) -> SimulatorCore:
    """A core whose virtual destination answers 500 under ``fail.example.com`` and 200 elsewhere."""
    sim = SimulatorCore(seed=3, limits=Limits(**limits))
    sim.virtual_transport.responder = lambda req: Outcome.response(500) if "fail." in req.url else None
    return sim


def publish(sim: SimulatorCore, url: str = OK, account: str = "acct", **settings: Any) -> str:
    cmd = PublishCommand(MessageSettings(url, **settings), b'{"n":1}')
    return sim.publish(Caller(account=account), cmd).message_id


# ------------------------------------------------------------------------------------------ Limits


def test_limits_defaults_validation_and_unbounded() -> None:
    lim = Limits()
    assert (lim.journal, lim.deliveries, lim.messages) == (100_000, 50_000, 100_000)
    assert (lim.dlq_per_account, lim.dedup_per_account, lim.accounts) == (10_000, 100_000, 10_000)
    assert all(v is None for v in vars_of(Limits.unbounded()))
    for bad in (-1, 1.5, True, "10"):
        with pytest.raises(ValueError, match="Limits.journal"):
            Limits(journal=bad)  # type: ignore[arg-type]
    assert SimulatorCore(limits=Limits(journal=7)).world.journal.entries.cap == 7
    assert SimulatorCore().world.limits == Limits()


def vars_of(lim: Limits) -> list[int | None]:
    return [lim.journal, lim.deliveries, lim.messages, lim.dlq_per_account, lim.dedup_per_account, lim.accounts]


# ------------------------------------------------------------------------------------------ the logs


def test_retained_keeps_the_newest_numbers_them_and_counts_the_rest() -> None:
    log: Retained[str] = Retained(cap=3)
    assert log == [] and log.first_seq == 1 and list(log.since(0)) == []
    seqs = [log.append(c) for c in "abcde"]
    assert seqs == [1, 2, 3, 4, 5]
    assert log == ["c", "d", "e"] and len(log) == 3 and log[0] == "c" and log[-1] == "e"
    assert (log.evicted, log.first_seq, log.appended) == (2, 3, 5)
    assert list(log.since(0)) == [(3, "c"), (4, "d"), (5, "e")]  # the dropped ones are skipped
    assert list(log.since(4)) == [(5, "e")] and list(log.since(5)) == []
    log.set_cap(1)
    assert log == ["e"] and log.evicted == 4
    log.clear()
    assert log == [] and log.evicted == 0 and log.append("x") == 1


def test_retained_compacts_and_stays_exact_over_many_appends() -> None:
    log: Retained[int] = Retained(cap=1000)
    for i in range(1, 50_001):
        log.append(i)
    assert len(log) == 1000 and log.evicted == 49_000
    assert list(log) == list(range(49_001, 50_001))
    assert [s for s, _ in log.since(49_990)] == list(range(49_991, 50_001))
    assert all(s == v for s, v in log.since(0))
    assert len(log._items) <= 2 * 1000 + 4096  # dropped slots are compacted away


def test_since_goes_on_while_items_are_appended_and_dropped() -> None:
    log: Retained[int] = Retained(cap=5)
    for i in range(1, 6):
        log.append(i)
    it = log.since(0)
    assert next(it) == (1, 1)
    for i in range(6, 9):  # drops 1, 2, 3
        log.append(i)
    assert list(it) == [(4, 4), (5, 5), (6, 6), (7, 7), (8, 8)]


def test_journal_cap_drops_the_oldest_entries_and_seq_keeps_counting() -> None:
    journal = Journal(cap=3)
    for i in range(5):
        journal.add(i, "request", path=f"/{i}")
    assert [e.seq for e in journal] == [3, 4, 5] and journal.evicted == 2
    assert [e.path for e in journal.since(3)] == ["/3", "/4"]
    assert [e.seq for e in journal.of_kind("request")] == [3, 4, 5]
    journal.reset()
    assert len(journal) == 0 and journal.evicted == 0 and journal.add(0, "warning").seq == 1


def test_inbox_cap_drops_the_oldest_deliveries_counted_in_evictions() -> None:
    sim = core(deliveries=2)
    ids = [publish(sim) for _ in range(5)]
    run(sim.settle())
    inbox = sim.world.inbox
    assert [d.seq for d in inbox] == [4, 5] and [d.message_id for d in inbox] == ids[3:]
    assert sim.world.evictions()["deliveries"] == 3
    sim.reset()
    assert sim.world.evictions()["deliveries"] == 0 and sim.world.inbox == []


def test_lowering_limits_trims_at_once() -> None:
    sim = core()
    for _ in range(6):
        publish(sim)
    run(sim.settle())
    sim.world.set_limits(Limits(journal=2, deliveries=1, messages=3))
    ev = sim.world.evictions()
    assert len(sim.world.journal) == 2 and len(sim.world.inbox) == 1 and len(sim.account("acct").messages) == 3
    assert ev["deliveries"] == 5 and ev["messages"] == 3 and ev["journal"] == sim.world.journal.entries.appended - 2


# ------------------------------------------------------------------------------------------ messages


def test_final_messages_beyond_the_cap_are_dropped_oldest_first_and_pending_ones_never() -> None:
    sim = core(messages=2)
    later = [publish(sim, delay_ms=3_600_000) for _ in range(3)]  # pending for an hour
    done = [publish(sim) for _ in range(5)]
    run(sim.settle())
    msgs = sim.account("acct").messages
    assert set(msgs) == set(later) | set(done[-2:])
    assert all(msgs[m].state is MessageState.PENDING for m in later)
    assert sim.world.evictions()["messages"] == 3
    with pytest.raises(NotFound):
        sim.get_message(Caller(account="acct"), done[0])
    assert sim.get_message(Caller(account="acct"), done[-1]).state is MessageState.DELIVERED
    run(sim.advance("2h"))  # the pending ones deliver, and push the older finals out
    assert set(msgs) == set(later[1:]) and sim.world.evictions()["messages"] == 6


def test_cap_zero_keeps_no_final_message_but_every_pending_and_retrying_one() -> None:
    sim = core(messages=0)
    retrying = publish(sim, FAIL, retries=3)
    pending = publish(sim, delay_ms=60_000)
    gone = publish(sim)
    run(sim.settle())
    msgs = sim.account("acct").messages
    assert set(msgs) == {retrying, pending}
    assert msgs[retrying].state is MessageState.RETRY and msgs[pending].state is MessageState.PENDING
    assert gone not in msgs and sim.world.evictions()["messages"] == 1


def test_a_dropped_failed_message_keeps_its_dlq_entry() -> None:
    sim = core(messages=0)
    mid = publish(sim, FAIL, retries=0)
    run(sim.settle())
    acc = sim.account("acct")
    assert mid not in acc.messages
    (entry,) = acc.dlq.values()
    assert entry.message.message_id == mid and entry.message.state is MessageState.FAILED
    assert wire.dlq_entry(entry)["messageId"] == mid


def test_dlq_cap_per_account_drops_the_oldest_entries() -> None:
    sim = core(dlq_per_account=2)
    ids = [publish(sim, FAIL, retries=0) for _ in range(4)]
    other = publish(sim, FAIL, retries=0, account="other")
    run(sim.settle())
    assert [e.message.message_id for e in sim.account("acct").dlq.values()] == ids[2:]
    assert [e.message.message_id for e in sim.account("other").dlq.values()] == [other]
    assert sim.world.evictions()["dlq"] == 2
    assert len(sim.account("acct").messages) == 4  # the messages themselves follow the message cap


# ------------------------------------------------------------------------------------------ dedup


def test_expired_dedup_ids_are_pruned() -> None:
    sim = core()
    first = publish(sim, dedup_id="d-1")
    run(sim.settle())
    assert publish(sim, dedup_id="d-1") == first  # inside the window: deduplicated
    run(sim.advance(f"{DEDUP_WINDOW_MS // 1000 + 1}s"))
    publish(sim, dedup_id="d-2")
    run(sim.settle())  # a message of the account becomes final: its expired ids go
    assert list(sim.account("acct").dedup) == ["d-2"]
    assert sim.world.evictions()["dedup_expired"] == 1


def test_dedup_cap_drops_the_oldest_unexpired_ids() -> None:
    sim = core(dedup_per_account=2)
    first = publish(sim, dedup_id="a")
    for key in "bc":
        publish(sim, dedup_id=key)
    run(sim.settle())
    assert list(sim.account("acct").dedup) == ["b", "c"] and sim.world.evictions()["dedup"] == 1
    assert publish(sim, dedup_id="a") != first  # its id was dropped: accepted as a new message


# ------------------------------------------------------------------------------------------ accounts


def test_the_oldest_idle_account_is_dropped_past_the_cap() -> None:
    sim = core(accounts=2)
    keys = [sim.account(n).signing_keys.current for n in ("a", "b")]
    sim.account("c")
    assert [a.name for a in sim.world.accounts] == ["b", "c"]
    assert sim.world.accounts.find("a") is None and sim.world.evictions()["accounts"] == 1
    # A new, empty account; its keys come from the seed and its name, so they are the ones it had.
    assert sim.account("a").signing_keys.current == keys[0] and not sim.account("a").messages
    assert [a.name for a in sim.world.accounts] == ["c", "a"]


def test_an_account_with_work_is_never_dropped() -> None:
    sim = core(accounts=2)
    publish(sim, account="pending", delay_ms=60_000)
    tick = ScheduleCommand(MessageSettings(OK), "*/5 * * * *", b"{}")
    sim.create_schedule(Caller(account="scheduled"), tick)
    sim.ensure_queue(Caller(account="paused"), "q")
    sim.pause_queue(Caller(account="paused"), "q")
    publish(sim, account="retrying", url=FAIL, retries=5)
    run(sim.settle())
    busy = ["pending", "scheduled", "paused", "retrying"]
    assert [a.name for a in sim.world.accounts] == busy  # over the cap: every one has work
    sim.account("idle-1")
    sim.account("idle-2")  # idle-1 is the only idle one besides the newest: it goes
    assert [a.name for a in sim.world.accounts] == [*busy, "idle-2"]
    assert sim.world.evictions()["accounts"] == 1
    for _ in range(100):  # many new accounts: the busy ones stay, the cost per creation stays bounded
        sim.account(f"k-{_}")
    assert [a.name for a in sim.world.accounts][:4] == busy and len(sim.world.accounts) == 5


def test_an_account_whose_messages_are_all_final_can_go() -> None:
    sim = core(accounts=1)
    publish(sim, account="a")
    assert [a.name for a in sim.world.accounts] == ["a"]
    sim.account("b")  # a's message is still pending
    assert [a.name for a in sim.world.accounts] == ["a", "b"]
    run(sim.settle())
    sim.account("c")  # a is idle now (delivered), and the oldest: it goes, then b
    assert [a.name for a in sim.world.accounts] == ["c"]


def test_reset_clears_every_counter() -> None:
    sim = core(journal=1, deliveries=1, messages=0, accounts=1)
    for n in range(3):
        publish(sim, account=f"a{n}")
    sim.world.journal.add(0, "warning")
    sim.world.journal.add(0, "warning")
    run(sim.settle())
    assert any(sim.world.evictions().values())
    sim.reset()
    assert not any(sim.world.evictions().values())


def test_the_same_inputs_evict_the_same_way() -> None:
    def script() -> list[Any]:
        sim = core(messages=5, deliveries=3, accounts=3, dlq_per_account=1)
        for i in range(30):
            publish(sim, FAIL if i % 3 == 0 else OK, account=f"a{i % 7}", retries=1)
        run(sim.advance("1h"))
        return [
            sim.world.evictions(),
            [a.name for a in sim.world.accounts],
            [wire.delivery(d) for d in sim.world.inbox],
        ]

    assert script() == script()


# ------------------------------------------------------------------------------------------ yielding


class _Ticker:
    """A coroutine that notes the engine's clock each time the event loop lets it run."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.seen: list[int] = []
        self.stop = False

    async def run(self) -> None:
        while not self.stop:
            self.seen.append(self.engine.now)
            await asyncio.sleep(0)


def _engine() -> Engine:
    world = World(clock=VirtualClock(0), seed=Seed(1))
    return Engine(world, VirtualTransport(), on_schedule_fire=lambda s, t: None)


async def _advance_with_ticker(engine: Engine, delta: str) -> _Ticker:
    ticker = _Ticker(engine)
    task = asyncio.get_running_loop().create_task(ticker.run())
    await asyncio.sleep(0)
    await engine.advance(delta)
    ticker.stop = True
    await task
    return ticker


def test_advance_yields_between_instants_and_keeps_the_order() -> None:
    engine = _engine()
    ran: list[tuple[int, int]] = []
    n = 5 * YIELD_EVERY
    for i in range(n):
        due = (n - i) * 10  # pushed in reverse time order: the heap sorts them
        engine.at(due, lambda i=i, due=due: ran.append((due, i)))  # type: ignore[misc]
    ticker = run(_advance_with_ticker(engine, f"{n * 10 + 1}ms"))
    assert ran == sorted(ran) and len(ran) == n
    mid = [t for t in ticker.seen if 0 < t < n * 10]
    assert len(mid) >= 3, ticker.seen[:10]  # the loop ran other work while the advance was under way


def test_one_huge_instant_yields_too_and_keeps_seq_order() -> None:
    engine = _engine()
    ran: list[int] = []
    progress: list[int] = []
    n = 3 * YIELD_EVERY + 5
    for i in range(n):
        engine.at(100, lambda i=i: ran.append(i))  # type: ignore[misc]

    async def go() -> None:
        async def watch() -> None:
            while len(ran) < n:
                progress.append(len(ran))
                await asyncio.sleep(0)

        task = asyncio.get_running_loop().create_task(watch())
        await engine.advance("1s")
        await task

    run(go())
    assert ran == list(range(n))
    assert any(0 < p < n for p in progress), progress[:10]


def test_attempts_due_at_one_instant_are_sent_a_chunk_at_a_time_in_seq_order() -> None:
    sim = SimulatorCore(seed=1)
    sent: list[str] = []

    def respond(req: OutboundRequest) -> Outcome | None:
        sent.append(req.headers["Upstash-Message-Id"])
        return None

    sim.virtual_transport.responder = respond
    ids = [publish(sim, delay_ms=1000) for _ in range(2 * SEND_CHUNK + 10)]
    run(sim.advance("1s"))
    assert sent == ids
    assert [d.message_id for d in sim.world.inbox] == ids
    assert all(sim.account("acct").messages[m].state is MessageState.DELIVERED for m in ids)


def test_a_reset_while_an_advance_yields_stops_that_advance() -> None:
    sim = SimulatorCore(seed=1)
    fired: list[int] = []
    for i in range(4 * YIELD_EVERY):
        sim.engine.at(sim.world.now + i + 1, lambda i=i: fired.append(i))  # type: ignore[misc]

    async def go() -> None:
        async def resetter() -> None:
            while not fired:
                await asyncio.sleep(0)
            sim.reset()

        task = asyncio.get_running_loop().create_task(resetter())
        await sim.advance("1h")
        await task

    run(go())
    assert 0 < len(fired) < 4 * YIELD_EVERY  # stopped: nothing of the old world ran after the reset
    assert sim.engine.pending_events == 0


# ------------------------------------------------------------------------------------------ ledger


def test_ledger_keeps_the_newest_entries_and_exact_totals() -> None:
    from decimal import Decimal

    from qstash_sim.domain.ledger import Ledger, LedgerEntry

    led = Ledger(cap=3)
    for i in range(10):
        led.charge(
            LedgerEntry(
                time_ms=i,
                account="a" if i % 2 else "b",
                agent="bot" if i < 5 else None,
                transaction_id=f"tx{i}",
                request_id=f"r{i}",
                operation="publish",
                quantity=1,
                unit_price=Decimal("0.00001"),
            )
        )
    assert [e.transaction_id for e in led.entries] == ["tx7", "tx8", "tx9"]
    assert led.entries.evicted == 7
    assert led.total() == Decimal("0.00010")
    assert led.total(account="a") == Decimal("0.00005")
    assert led.total(agent="bot") == Decimal("0.00005")
    assert led.total(account="b", agent="bot") == Decimal("0.00003")  # i = 0, 2, 4
    assert led.total(transaction_id="tx1") == 0  # dropped: only kept entries have a transaction total
    body = wire.ledger(led, limit=2)
    assert [e["transactionId"] for e in body["entries"]] == ["tx8", "tx9"]
    assert (body["total"], body["evicted"]) == ("0.0001", 7)
    assert wire.ledger(led, agent="bot")["accounts"] == {"b": "0.00003", "a": "0.00002"}
    assert wire.ledger(led, account="a")["agents"] == {"bot": "0.00002"}
    led.reset()
    assert (led.total(), list(led.entries), led.total(account="a")) == (0, [], 0)


def test_ledger_totals_maps_are_capped_too() -> None:
    from decimal import Decimal

    from qstash_sim.domain.ledger import Ledger, LedgerEntry

    led = Ledger(cap=None, totals_cap=2)
    for acc in ("x", "y", "z"):
        led.charge(LedgerEntry(0, acc, "publish", 1, Decimal(1)))
    assert list(led.by_account) == ["y", "z"] and led.totals_evicted == 1
    assert led.total() == 3  # the grand total is one number: never dropped
