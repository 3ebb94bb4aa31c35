"""Callbacks and failure callbacks through the real ``@upstash/qstash`` 2.12.0 (npm), unmodified, against
``qstash-sim serve`` (the real command, virtual clock): what the destination and the callback URLs received
(loopback receivers in this process), the callback body decoded, every callback's signature verified with
the SDK's own ``Receiver``. Harness: ``tests/e2e/ts_sdk.py`` (see ``tests/api_v2/test_sdk_ts.py``)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.ts_sdk import NODE, Server, delivered, node, settle_call, start_server, stop_server, verify_calls
from qstash_sim.receiver import Receiver

E2E = Path(__file__).resolve().parents[2] / "tests" / "e2e"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the real @upstash/qstash SDK needs it")


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    if not (E2E / "node_modules" / "@upstash" / "qstash" / "package.json").is_file():
        pytest.fail("tests/e2e/node_modules is missing: run `make e2e-deps` (npm ci --prefix tests/e2e)")
    s = start_server("serve", "--log-level", "warning")
    try:
        yield s
    finally:
        stop_server(s)


@pytest.fixture
def fresh(server: Server) -> Server:
    status, body = server.http("POST", "/_sim/reset", {})
    assert status == 200, body
    return server


@pytest.fixture
def hooks() -> Iterator[Receiver]:
    r = Receiver().start()
    try:
        yield r
    finally:
        r.stop()


def test_the_ts_sdk_gets_a_callback_per_attempt_and_a_failure_callback(fresh: Server, hooks: Receiver) -> None:
    dest = Receiver(status=500).start()
    try:
        out = node(
            fresh,
            [
                {
                    "method": "publishJSON",
                    "as": "pub",
                    "args": [
                        {
                            "url": dest.url("/orders"),
                            "body": {"order": 7},
                            "retries": 1,
                            "retryDelay": "1000",
                            "callback": hooks.url("/cb"),
                            "failureCallback": hooks.url("/failed"),
                            "headers": {
                                "X-Trace": "t1",
                                "Upstash-Callback-Forward-X-Cb": "1",
                                "Upstash-Failure-Callback-Forward-X-F": "2",
                                "Upstash-Failure-Callback-Method": "PUT",
                            },
                        }
                    ],
                },
                settle_call(fresh),
            ],
        )
        mid = out.ok("pub")["messageId"]
        fresh.advance("1s")
        assert [d.header("X-Trace") for d in delivered(dest, "/orders")] == ["t1", "t1"]
        cbs, (failed,) = delivered(hooks, "/cb"), delivered(hooks, "/failed")
        assert len(cbs) == 2 and all(d.header("X-Cb") == "1" for d in cbs)
        assert failed.method == "PUT" and failed.header("X-F") == "2" and failed.header("X-Cb") is None
        check = node(None, verify_calls(fresh, [*cbs, failed]))
        assert [check.ok(i) for i in range(3)] == [True, True, True]
        payloads = [d.json for d in cbs]
        assert [(p["status"], p["retried"], p["maxRetries"]) for p in payloads] == [(500, 0, 1), (500, 1, 1)]
        fp = failed.json
        assert fp["sourceMessageId"] == mid and fp["dlqId"] and fp["retried"] == fp["maxRetries"] == 1
        assert json.loads(base64.b64decode(fp["sourceBody"])) == {"order": 7} and fp["url"] == dest.url("/orders")
        source_header = {k.lower(): v for k, v in fp["sourceHeader"].items()}  # the SDK's Headers lower-case names
        assert source_header["x-trace"] == ["t1"] and base64.b64decode(fp["body"]) != b""
        status, dlq = fresh.http("GET", f"/v2/dlq/{fp['dlqId']}", token=fresh.token)
        assert status == 200 and dlq["messageId"] == mid
    finally:
        dest.stop()


def test_the_ts_sdk_schedule_and_its_callback(fresh: Server, hooks: Receiver) -> None:
    dest = Receiver().start()
    try:
        out = node(
            fresh,
            [
                {
                    "method": "schedules.create",
                    "as": "sched",
                    "args": [
                        {
                            "destination": dest.url("/tick"),
                            "cron": "* * * * *",
                            "body": "tick",
                            "callback": hooks.url("/cb"),
                        }
                    ],
                },
                {"method": "schedules.get", "as": "get", "args": [{"$ref": "sched.result.scheduleId"}]},
            ],
        )
        sid = out.ok("sched")["scheduleId"]
        assert out.ok("get")["callback"] == hooks.url("/cb")
        fresh.advance("1m")
        (fired,) = delivered(dest, "/tick")
        (cb,) = delivered(hooks, "/cb")
        assert node(None, verify_calls(fresh, [cb])).ok(0) is True
        p = cb.json
        assert (p["scheduleId"], p["sourceMessageId"], p["status"]) == (sid, fired.message_id, 200)
        assert base64.b64decode(p["sourceBody"]) == b"tick"
    finally:
        dest.stop()
