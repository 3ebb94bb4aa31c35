"""``assert_callback`` / ``assert_failure_callback`` on the fixture handles, tested as users meet them: inner
pytest runs publishing through the official ``qstash`` SDK (3.4.0) to the built-in loopback receiver."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

PASSING = """
import json

DOWN = "http://127.0.0.1:1/down"  # a closed loopback port: every attempt fails


def test_a_success_is_called_back(qstash_sim, qstash_receiver):
    client = qstash_sim.qstash_client()
    res = client.message.publish_json(url=qstash_receiver.url("/dest"), body={"order": 7},
                                      callback=qstash_receiver.url("/cb"))
    [call] = qstash_sim.assert_callback(res.message_id, to=qstash_receiver.url("/cb"), status=200, retried=0, times=1)
    assert call.kind == "callback" and call.source_message_id == res.message_id and call.dlq_id is None
    assert json.loads(call.source_body) == {"order": 7} and call.payload["maxRetries"] == 3
    assert call.delivery.url == qstash_receiver.url("/cb")
    qstash_sim.assert_callback(to="http://127.0.0.1:*/cb", json={"url": qstash_receiver.url("/dest")})
    qstash_sim.assert_failure_callback(res.message_id, times=0)


def test_exhausted_retries_call_the_failure_callback(qstash_sim, qstash_receiver):
    client = qstash_sim.qstash_client()
    res = client.message.publish(url=DOWN, body="x", retries=1, callback=qstash_receiver.url("/cb"),
                                 failure_callback=qstash_receiver.url("/failed"))
    qstash_sim.clock.advance("1m")
    [failed] = qstash_sim.assert_failure_callback(res.message_id, to=qstash_receiver.url("/failed"), status=0)
    assert failed.dlq_id == qstash_sim.assert_in_dlq(res.message_id).dlq_id and failed.retried == 1
    calls = qstash_sim.assert_callback(res.message_id, times=2)
    assert [c.retried for c in calls] == [0, 1]


async def test_the_async_handle_asserts_callbacks(qstash_sim_async, qstash_receiver):
    client = qstash_sim_async.qstash_client()
    res = await client.message.publish(url=DOWN, body="x", retries=0,
                                       failure_callback=qstash_receiver.url("/failed"))
    await qstash_sim_async.clock.advance("1s")
    [failed] = await qstash_sim_async.assert_failure_callback(res.message_id)
    assert failed.dlq_id
    await qstash_sim_async.assert_callback(res.message_id, times=0)
"""

NEAR_MISSES = """
DOWN = "http://127.0.0.1:1/down"


def test_not_exhausted_yet(qstash_sim, qstash_receiver):
    res = qstash_sim.qstash_client().message.publish(url=DOWN, body="x", retries=2,
                                                     failure_callback=qstash_receiver.url("/failed"))
    qstash_sim.assert_failure_callback(res.message_id)


def test_without_the_header(qstash_sim, qstash_receiver):
    res = qstash_sim.qstash_client().message.publish(url=qstash_receiver.url("/d"), body="x")
    qstash_sim.assert_callback(res.message_id)


def test_another_status(qstash_sim, qstash_receiver):
    res = qstash_sim.qstash_client().message.publish(url=qstash_receiver.url("/d"), body="x",
                                                     callback=qstash_receiver.url("/cb"))
    qstash_sim.assert_callback(res.message_id, status=500)


def test_the_callback_url_fails(qstash_sim, qstash_receiver):
    qstash_receiver.respond(503)
    res = qstash_sim.qstash_client().message.publish(url=DOWN, body="x", retries=0,
                                                     callback=qstash_receiver.url("/cb"))
    qstash_sim.assert_callback(res.message_id)
"""


@pytest.fixture
def tester(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


def test_callback_assertions_pass_on_what_the_callback_urls_received(tester: pytest.Pytester) -> None:
    tester.makepyfile(PASSING)
    result = tester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_a_miss_is_a_near_miss_report(tester: pytest.Pytester) -> None:
    tester.makepyfile(NEAR_MISSES)
    result = tester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "*expected at least 1 failure callback: failure callback of msg_*, found 0.",
            "*msg_* (to http://127.0.0.1:1/down) is RETRY, next attempt at * (in 12s: advance the clock).",
            "*A failure callback is sent once its retries are exhausted: 1 of 3 attempts made.",
            "*(qstash-sim seed *: replay with --qstash-sim-seed=*)",
        ]
    )
    result.stdout.fnmatch_lines(["*msg_* was published without Upstash-Callback (callbacks are kept on /v2*"])
    result.stdout.fnmatch_lines(
        [
            "*expected at least 1 callback: callback of msg_* reporting status 500, found 0.",
            "*Closest of 1 other callbacks received:",
            "*1. POST http://127.0.0.1:*/cb at * reporting msg_*: status 200, retried 0/3",
            "*status is 200, not 500",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*Callback messages not accepted by their URL (yet):",
            "*msg_* to http://127.0.0.1:*/cb (reporting msg_*) is FAILED*; its URL answered: -> 503",
        ]
    )


def test_an_async_callback_assertion_never_awaited_fails_the_test(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        async def test_forgot_await(qstash_sim_async):
            qstash_sim_async.assert_failure_callback()
        """
    )
    result = tester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*qstash_sim_async.assert_failure_callback(...) was never awaited*"])
