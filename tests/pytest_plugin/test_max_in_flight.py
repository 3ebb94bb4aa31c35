"""``qstash_sim.assert_max_in_flight(key_or_queue, n)``: the peak of attempts in flight of a flow-control key
or a queue, from the journal; a miss lists the attempts in flight together. Inner pytest runs, as users
meet it, plus the check itself on journal lines."""

from __future__ import annotations

import pytest

from qstash_sim.domain.journal import JournalEntry
from qstash_sim.pytest_plugin import QstashSimAssertionError
from qstash_sim.pytest_plugin.assertions import check_max_in_flight

pytest_plugins = ["pytester"]

INNER = """
import pytest
from qstash_sim.pytest_plugin import QstashSimAssertionError

SLOW = {"name": "slow", "destinations": [{"name": "slow", "match": "https://slow.example/*",
                                          "respond": {"hang": "2s"}}]}


def test_a_flow_control_key_and_a_queue(qstash_sim):
    qstash_sim.load_scenario(SLOW)
    client = qstash_sim.qstash_client()
    for i in range(6):
        client.message.publish(url=f"https://slow.example/{i}", body="x",
                               flow_control={"key": "k", "parallelism": 2})
    qstash_sim.clock.advance("1m")
    assert qstash_sim.assert_max_in_flight("k", 2) == 2
    assert qstash_sim.assert_max_in_flight("k", 5) == 2
    with pytest.raises(QstashSimAssertionError) as miss:
        qstash_sim.assert_max_in_flight("k", 1)
    text = str(miss.value)
    assert "expected at most 1 attempts of 'k' in flight at once, found 2 (of 6 attempts)" in text
    assert text.count("https://slow.example/") == 2 and "started" in text and "seed" in text
    client.queue.upsert("q", parallelism=3)
    for i in range(5):
        client.message.enqueue(queue="q", url=f"https://slow.example/q{i}", body="x")
    qstash_sim.clock.advance("1m")
    assert qstash_sim.assert_max_in_flight("q", 3) == 3


def test_an_unknown_name_suggests_one(qstash_sim):
    client = qstash_sim.qstash_client()
    client.message.publish(url="https://a.example/", body="x", flow_control={"key": "orders", "rate": 5})
    with pytest.raises(QstashSimAssertionError, match="did you mean 'orders'"):
        qstash_sim.assert_max_in_flight("order", 1)


async def test_the_async_handle(qstash_sim_async):
    client = qstash_sim_async.qstash_client()
    await client.message.publish(url="https://a.example/", body="x", flow_control={"key": "a", "parallelism": 1})
    await client.http._client.aclose()
    assert await qstash_sim_async.assert_max_in_flight("a", 1) == 1
"""


def test_the_fixture_helper(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(INNER)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=3)


def _attempt(mid: str, start: int, end: int, key: str = "k") -> JournalEntry:
    return JournalEntry(
        seq=end,
        time_ms=0,
        kind="attempt",
        message_id=mid,
        retried=0,
        url="https://a.example/",
        outcome="delivered",
        detail={"startStep": start, "endStep": end, "startedMs": 0, "flowControlKey": key},
    )


def test_the_sweep_counts_overlaps_by_step_not_by_time() -> None:
    rows = [_attempt("a", 1, 4), _attempt("b", 2, 3), _attempt("c", 5, 8), _attempt("d", 6, 7), _attempt("e", 7, 9)]
    assert check_max_in_flight(rows, "k", 2) == 2  # d ends (7) before e starts (7): the end sorts first
    rows.append(_attempt("f", 3, 10))
    with pytest.raises(QstashSimAssertionError, match="found 3"):
        check_max_in_flight(rows, "k", 2)
    assert check_max_in_flight(rows + [_attempt("x", 1, 99, key="other")], "other", 1) == 1
