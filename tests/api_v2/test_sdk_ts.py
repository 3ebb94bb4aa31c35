"""The real ``@upstash/qstash`` 2.12.0 (TypeScript, pinned in ``tests/e2e/package-lock.json``) against
``qstash-sim serve`` and ``qstash-sim dev``, unmodified: every client method of qstash-sdk-wire.md §5, each
test asserting what the SDK returned and what reached the destination.

* The servers are the real commands, run as a user runs them (``--port 0 --clock virtual``), one of each per
  module (so per xdist worker), reset before each test (``POST /_sim/reset``). Time moves only through the
  control API (``/_sim/settle``, ``/_sim/clock/advance``): no test sleeps.
* The destination is a loopback :class:`~qstash_sim.receiver.Receiver` in this process: what it recorded is
  what reached the destination, over a real socket.
* The SDK runs in ``tests/e2e/qstash_call.mjs`` (one node process per call list) under ``_guard.mjs``, which
  refuses anything but loopback: no request leaves the machine, no binary is downloaded or spawned. The
  environment is minimal (``PATH`` and a throw-away ``HOME``), so nothing the SDK reads (``QSTASH_*``,
  ``NODE_ENV``...) leaks in from the developer's shell.
* ``QSTASH_DEV=true`` makes the SDK ignore ``baseUrl``/``token``, probe ``GET /v2/keys`` on
  ``127.0.0.1:$QSTASH_DEV_PORT`` and, unless the answer is the default dev user's keys, download the
  official binary: against ``qstash-sim dev`` it must use the simulator as is. ``@upstash/workflow`` 1.3.3
  (``workflow_trigger.mjs``) goes through the same probe.
* The harness (servers, driver, checks every delivery must pass) is ``tests/e2e/ts_sdk.py``.

Needs ``node`` (skipped without it) and ``tests/e2e/node_modules`` (``make e2e-deps``; failing without it).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.ts_sdk import (
    NODE,
    Server,
    assert_clean_delivery,
    delivered,
    node,
    node_script,
    settle_call,
    start_server,
    stop_server,
    verify_calls,
)
from qstash_sim.core.dev_users import DEFAULT_DEV_USER
from qstash_sim.receiver import Receiver

E2E = Path(__file__).resolve().parents[2] / "tests" / "e2e"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the real @upstash/qstash SDK needs it")


@pytest.fixture(scope="module", autouse=True)
def _sdk_installed() -> None:
    if not (E2E / "node_modules" / "@upstash" / "qstash" / "package.json").is_file():
        pytest.fail("tests/e2e/node_modules is missing: run `make e2e-deps` (npm ci --prefix tests/e2e)")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, Server]]:
    started = {
        "serve": start_server("serve", "--log-level", "warning"),
        "dev": start_server("dev", "--log-level", "warning"),
    }
    try:
        yield started
    finally:
        for server in started.values():
            stop_server(server)


@pytest.fixture(scope="module")
def _destination() -> Iterator[Receiver]:
    receiver = Receiver().start()
    try:
        yield receiver
    finally:
        receiver.stop()


@pytest.fixture
def dest(_destination: Receiver) -> Iterator[Receiver]:
    _destination.clear()
    yield _destination
    _destination.clear()


@pytest.fixture(params=["serve", "dev"])
def server(request: pytest.FixtureRequest, servers: dict[str, Server]) -> Server:
    s = servers[request.param]
    status, body = s.http("POST", "/_sim/reset", {})
    assert status == 200, body
    return s


# ---------------------------------------------------------------------------------------------- publishing


def test_publish_and_publish_json_reach_the_destination_and_verify(server: Server, dest: Receiver) -> None:
    raw, js = dest.url("/raw?x=1"), dest.url("/json")
    out = node(
        server,
        [
            {
                "method": "publish",
                "as": "raw",
                "args": [{"url": raw, "body": "plain text", "headers": {"X-Trace": "t1"}, "method": "PUT"}],
            },
            {"method": "publishJSON", "as": "json", "args": [{"url": js, "body": {"order": 7}, "retries": 1}]},
            settle_call(server),
        ],
    )
    r1, r2 = out.ok("raw"), out.ok("json")
    assert r1["messageId"].startswith("msg_") and r2["messageId"].startswith("msg_") and r1 != r2
    (d1,) = delivered(dest, "/raw?x=1")
    (d2,) = delivered(dest, "/json")
    assert (d1.method, d1.text, d1.header("X-Trace")) == ("PUT", "plain text", "t1")
    assert (d2.method, d2.json, d2.header("Content-Type")) == ("POST", {"order": 7}, "application/json")
    assert_clean_delivery(d1, r1["messageId"])
    assert_clean_delivery(d2, r2["messageId"])
    check = node(None, verify_calls(server, [d1, d2]))
    assert [check.ok(0), check.ok(1)] == [True, True]
    keys = server.keys()
    tampered = node(
        None,
        [
            {
                "method": "Receiver.verify",
                "receiver": keys,
                "args": [{"signature": d1.header("Upstash-Signature"), "body": "tampered", "url": d1.url}],
            }
        ],
    )
    assert tampered.err(0)["name"] == "SignatureError"


def test_batch_and_batch_json_answer_one_result_per_message(server: Server, dest: Receiver) -> None:
    out = node(
        server,
        [
            {
                "method": "batch",
                "args": [[{"url": dest.url("/b1"), "body": "one"}, {"url": dest.url("/b2"), "body": "two"}]],
            },
            {"method": "batchJSON", "args": [[{"url": dest.url("/b3"), "body": {"n": 3}, "queueName": "bq"}]]},
            settle_call(server),
        ],
    )
    first, second = out.ok("batch"), out.ok("batchJSON")
    assert [len(first), len(second)] == [2, 1]
    ids = {f"/b{i + 1}": r["messageId"] for i, r in enumerate(first + second)}
    for path, mid in ids.items():
        (d,) = delivered(dest, path)
        assert_clean_delivery(d, mid)
    assert delivered(dest, "/b3")[0].json == {"n": 3}
    status, queue = server.http("GET", "/v2/queues/bq", token=server.token)
    assert status == 200 and queue["name"] == "bq"  # the batch item's queue was created


def test_url_groups_fan_out_one_message_per_endpoint(server: Server, dest: Receiver) -> None:
    a, b = dest.url("/ep-a"), dest.url("/ep-b")
    out = node(
        server,
        [
            {
                "method": "urlGroups.addEndpoints",
                "args": [{"name": "grp", "endpoints": [{"name": "a", "url": a}, {"url": b}]}],
            },
            {"method": "urlGroups.get", "as": "get", "args": ["grp"]},
            {"method": "urlGroups.list", "as": "list"},
            {"method": "publishJSON", "as": "pub", "args": [{"urlGroup": "grp", "body": {"fan": "out"}}]},
            settle_call(server),
            {"method": "urlGroups.removeEndpoints", "args": [{"name": "grp", "endpoints": [{"url": b}]}]},
            {"method": "urlGroups.get", "as": "after", "args": ["grp"]},
            {"method": "urlGroups.delete", "args": ["grp"]},
            {"method": "urlGroups.get", "as": "gone", "args": ["grp"]},
        ],
    )
    out.ok("urlGroups.addEndpoints")
    group = out.ok("get")
    assert group["name"] == "grp" and sorted(e["url"] for e in group["endpoints"]) == [a, b]
    assert [g["name"] for g in out.ok("list")] == ["grp"]
    published = out.ok("pub")
    assert isinstance(published, list) and sorted(p["url"] for p in published) == [a, b]
    for p in published:
        (d,) = delivered(dest, p["url"].removeprefix(f"http://127.0.0.1:{dest.port}"))
        assert_clean_delivery(d, p["messageId"])
        assert d.header("Upstash-Topic-Name") == "grp" and d.json == {"fan": "out"}
    out.ok("urlGroups.removeEndpoints")
    assert [e["url"] for e in out.ok("after")["endpoints"]] == [a]
    out.ok("urlGroups.delete")
    assert out.err("gone")["status"] == 404


def test_queues_enqueue_pause_resume_and_delete(server: Server, dest: Receiver) -> None:
    q = {"queueName": "orders"}
    out = node(
        server,
        [
            {"method": "queue.upsert", **q, "args": [{"parallelism": 2}]},
            {"method": "queue.get", "as": "get", **q},
            {"method": "queue.list", "as": "list", **q},
            {"method": "queue.enqueueJSON", "as": "e1", **q, "args": [{"url": dest.url("/q1"), "body": {"q": 1}}]},
            settle_call(server),
            {"method": "queue.pause", **q},
            {"method": "queue.enqueue", "as": "e2", **q, "args": [{"url": dest.url("/q2"), "body": "two"}]},
            {"method": "$http", "as": "settle2", "args": [{"method": "POST", "url": f"{server.url}/_sim/settle"}]},
            {"method": "queue.get", "as": "paused", **q},
        ],
    )
    out.ok("queue.upsert")
    got = out.ok("get")
    assert (got["name"], got["parallelism"], got["paused"], got["lag"]) == ("orders", 2, False, 0)
    assert [x["name"] for x in out.ok("list")] == ["orders"]
    (d1,) = delivered(dest, "/q1")
    assert_clean_delivery(d1, out.ok("e1")["messageId"])
    paused = out.ok("paused")
    assert paused["paused"] is True and paused["lag"] == 1
    assert delivered(dest, "/q2") == []  # a paused queue accepts, delivers nothing
    more = node(
        server,
        [
            {"method": "queue.resume", **q},
            settle_call(server),
            {"method": "queue.delete", **q},
            {"method": "queue.get", "as": "gone", **q},
        ],
    )
    more.ok("queue.resume")
    (d2,) = delivered(dest, "/q2")
    assert_clean_delivery(d2, out.ok("e2")["messageId"])
    more.ok("queue.delete")
    assert more.err("gone")["status"] == 404


# ---------------------------------------------------------------------------------------------- messages


def test_messages_get_cancel_and_the_bulk_forms(server: Server, dest: Receiver) -> None:
    later = [
        {
            "method": "publishJSON",
            "as": f"m{i}",
            "args": [{"url": dest.url(f"/later{i}"), "body": {"i": i}, "delay": 3600}],
        }
        for i in range(7)
    ]
    out = node(
        server,
        [
            *later,
            {"method": "messages.get", "as": "get", "args": [{"$ref": "m0.result.messageId"}]},
            {"method": "messages.cancel", "as": "cancel1", "args": [{"$ref": "m0.result.messageId"}]},
            {"method": "messages.get", "as": "gone", "args": [{"$ref": "m0.result.messageId"}]},
            {"method": "messages.delete", "as": "delete1", "args": [{"$ref": "m1.result.messageId"}]},
            {
                "method": "messages.cancel",
                "as": "cancelIds",
                "args": [[{"$ref": "m2.result.messageId"}, {"$ref": "m3.result.messageId"}]],
            },
            {"method": "messages.cancel", "as": "cancelFilter", "args": [{"filter": {"url": dest.url("/later4")}}]},
            {"method": "messages.deleteMany", "as": "deleteMany", "args": [[{"$ref": "m5.result.messageId"}]]},
            {"method": "messages.cancel", "as": "cancelAll", "args": [{"all": True}]},
            {"method": "messages.deleteAll", "as": "deleteAll"},
        ],
    )
    m0 = out.ok("m0")["messageId"]
    got = out.ok("get")
    assert got["messageId"] == m0 and got["url"] == dest.url("/later0") and got["method"] == "POST"
    assert out.ok("cancel1") == {"cancelled": 1}
    assert out.err("gone")["status"] == 404
    out.ok("delete1")
    assert out.ok("cancelIds") == {"cancelled": 2}
    assert out.ok("cancelFilter") == {"cancelled": 1}
    assert out.ok("deleteMany") == 1
    assert out.ok("cancelAll") == {"cancelled": 1}  # the last one left
    assert out.ok("deleteAll") == 0
    server.advance("2h")
    assert dest.deliveries == []  # every one was cancelled before its time


# ---------------------------------------------------------------------------------------------- schedules


def test_schedules_create_get_list_pause_resume_delete(server: Server, dest: Receiver) -> None:
    out = node(
        server,
        [
            {
                "method": "schedules.create",
                "as": "create",
                "args": [{"destination": dest.url("/cron"), "cron": "* * * * *", "body": '{"tick":1}'}],
            },
            {"method": "schedules.get", "as": "get", "args": [{"$ref": "create.result.scheduleId"}]},
            {"method": "schedules.list", "as": "list"},
            {"method": "schedules.pause", "as": "pause", "args": [{"schedule": {"$ref": "create.result.scheduleId"}}]},
            {"method": "schedules.get", "as": "paused", "args": [{"$ref": "create.result.scheduleId"}]},
        ],
    )
    sid = out.ok("create")["scheduleId"]
    got = out.ok("get")
    assert (got["scheduleId"], got["cron"], got["destination"]) == (sid, "* * * * *", dest.url("/cron"))
    assert [s["scheduleId"] for s in out.ok("list")] == [sid]
    out.ok("pause")
    assert out.ok("paused")["isPaused"] is True
    server.advance("2m")
    assert dest.deliveries == []  # paused: cron triggers are skipped
    more = node(server, [{"method": "schedules.resume", "args": [{"schedule": sid}]}])
    more.ok(0)
    server.advance("1m")
    (d,) = delivered(dest, "/cron")
    assert d.header("Upstash-Schedule-Id") == sid and d.json == {"tick": 1}
    assert d.header("Content-Type") == "application/json"  # the SDK's default for schedules
    gone = node(server, [{"method": "schedules.delete", "args": [sid]}, {"method": "schedules.list", "as": "list"}])
    gone.ok(0)
    assert gone.ok("list") == []


# ---------------------------------------------------------------------------------------------- DLQ


def test_dlq_list_retry_and_delete(server: Server, dest: Receiver) -> None:
    dest.respond(500)
    out = node(
        server,
        [
            {
                "method": "publishJSON",
                "as": "p1",
                "args": [{"url": dest.url("/fail1"), "body": {"n": 1}, "retries": 0}],
            },
            {
                "method": "publishJSON",
                "as": "p2",
                "args": [{"url": dest.url("/fail2"), "body": {"n": 2}, "retries": 0}],
            },
            {
                "method": "publishJSON",
                "as": "p3",
                "args": [{"url": dest.url("/fail3"), "body": {"n": 3}, "retries": 0}],
            },
            settle_call(server),
            {"method": "dlq.listMessages", "as": "list"},
        ],
    )
    listed = out.ok("list")["messages"]
    by_mid = {m["messageId"]: m for m in listed}
    mids = [out.ok(f"p{i}")["messageId"] for i in (1, 2, 3)]
    assert sorted(by_mid) == sorted(mids) and all(m["responseStatus"] == 500 for m in listed)
    dlq_ids = [by_mid[mid]["dlqId"] for mid in mids]
    dest.respond(200)
    more = node(
        server,
        [
            {"method": "dlq.retry", "as": "retry", "args": [dlq_ids[0]]},
            settle_call(server),
            {"method": "dlq.delete", "as": "delete", "args": [dlq_ids[1]]},
            {"method": "dlq.deleteMany", "as": "deleteMany", "args": [{"dlqIds": [dlq_ids[2]]}]},
            {"method": "dlq.listMessages", "as": "empty"},
            {"method": "dlq.delete", "as": "again", "args": [[dlq_ids[1]]]},
        ],
    )
    (retried,) = more.ok("retry")["responses"]
    assert retried["messageId"] not in mids  # a new message
    ok = [d for d in delivered(dest, "/fail1") if d.status == 200]
    assert [d.message_id for d in ok] == [retried["messageId"]] and ok[0].json == {"n": 1}
    assert more.ok("delete") == {"deleted": 1}
    assert more.ok("deleteMany")["deleted"] == 1
    assert more.ok("empty")["messages"] == []
    assert more.ok("again")["deleted"] == 0


# -------------------------------------------------------------------------------------- logs, keys, flow control


def test_logs_and_events_read_the_lifecycle(server: Server, dest: Receiver) -> None:
    out = node(
        server,
        [
            {"method": "publishJSON", "as": "pub", "args": [{"url": dest.url("/logged"), "body": {}}]},
            settle_call(server),
            {"method": "logs", "as": "logs", "args": [{"filter": {"messageId": {"$ref": "pub.result.messageId"}}}]},
            {"method": "events", "as": "events", "args": [{"messageIds": [{"$ref": "pub.result.messageId"}]}]},
        ],
    )
    mid = out.ok("pub")["messageId"]
    for name in ("logs", "events"):
        page = out.ok(name)
        states = {e["state"] for e in page["events"] if e["messageId"] == mid}
        assert {"CREATED", "ACTIVE", "DELIVERED"} <= states, page
        assert page["logs"] == page["events"]  # the SDK hands the same list under both names
    assert len(delivered(dest, "/logged")) == 1


def test_keys_via_fetch_rotate_and_verify_with_the_new_pair(server: Server, dest: Receiver) -> None:
    auth = {"Authorization": f"Bearer {server.token}"}
    out = node(
        server,
        [
            {"method": "$http", "as": "keys", "args": [{"path": "/v2/keys", "headers": auth}]},
            {
                "method": "$http",
                "as": "rotate",
                "args": [{"method": "POST", "path": "/v2/keys/rotate", "headers": auth}],
            },
            {"method": "publishJSON", "as": "pub", "args": [{"url": dest.url("/after-rotate"), "body": {"k": 1}}]},
            settle_call(server),
        ],
    )
    before, after = out.ok("keys"), out.ok("rotate")
    assert before["status"] == 200 and after["status"] == 200
    assert after["body"]["current"] == before["body"]["next"] and after["body"]["next"] != before["body"]["next"]
    if server.kind == "dev":
        assert before["body"] == {
            "current": DEFAULT_DEV_USER.current_signing_key,
            "next": DEFAULT_DEV_USER.next_signing_key,
        }
    (d,) = delivered(dest, "/after-rotate")
    old = {"currentSigningKey": before["body"]["current"], "nextSigningKey": before["body"]["next"]}
    check = node(
        None,
        [
            {
                "method": "Receiver.verify",
                "receiver": old,
                "args": [{"signature": d.header("Upstash-Signature"), "body": d.text, "url": d.url}],
            },
            *verify_calls(server, [d]),
        ],
    )
    assert check.ok(0) is True  # a receiver not updated yet verifies with its next key
    assert check.ok(1) is True


def test_flow_control_reads(server: Server, dest: Receiver) -> None:
    out = node(
        server,
        [
            {
                "method": "publishJSON",
                "args": [
                    {
                        "url": dest.url("/fc"),
                        "body": {},
                        "delay": 600,
                        "flowControl": {"key": "fc-key", "parallelism": 2},
                    }
                ],
            },
            {"method": "flowControl.get", "as": "get", "args": ["fc-key"]},
            {"method": "flowControl.getGlobalParallelism", "as": "global"},
        ],
    )
    got = out.ok("get")
    assert got["flowControlKey"] == "fc-key" and got["parallelismMax"] == 2
    glob = out.ok("global")
    assert isinstance(glob["parallelismMax"], int) and isinstance(glob["parallelismCount"], int)


# ---------------------------------------------------------------------------------------------- QSTASH_DEV=true


def test_qstash_dev_true_uses_qstash_sim_dev_as_is_and_downloads_nothing(
    servers: dict[str, Server], dest: Receiver
) -> None:
    dev = servers["dev"]
    assert dev.http("POST", "/_sim/reset", {})[0] == 200
    env = {"QSTASH_DEV": "true", "QSTASH_DEV_PORT": str(dev.port)}
    out = node(
        None,  # no baseUrl, no token: dev mode supplies both
        [
            {"method": "publishJSON", "as": "pub", "args": [{"url": dest.url("/devmode"), "body": {"dev": True}}]},
            {"method": "$http", "as": "settle", "args": [{"method": "POST", "url": f"{dev.url}/_sim/settle"}]},
            {"method": "messages.cancel", "as": "unknown", "args": ["msg_unknown"]},
            {"method": "$guardLog", "as": "guard"},
        ],
        env=env,
    )
    mid = out.ok("pub")["messageId"]
    assert out.err("unknown")["status"] == 404  # later calls reach the simulator too
    assert out.ok("guard") == []  # nothing off the machine was tried: no S3 listing, no download, no spawn
    (d,) = delivered(dest, "/devmode")
    assert_clean_delivery(d, mid)
    # A dev-mode Receiver (QSTASH_DEV=true, no keys given) knows only the dev keys: they verify it.
    check = node(
        None,
        [
            {
                "method": "Receiver.verify",
                "args": [{"signature": d.header("Upstash-Signature"), "body": d.text, "url": d.url}],
            }
        ],
        env=env,
    )
    assert check.ok(0) is True
    status, page = dev.http("GET", "/_sim/journal?kind=request")
    assert status == 200
    calls = [(e.get("operation"), e.get("status")) for e in page["entries"]]
    assert calls[0] == ("qstash.getSigningKeys", 200), calls  # the probe came first, and it was answered
    status, accounts = dev.http("GET", "/_sim/accounts")
    assert [a["name"] for a in accounts["accounts"]] == ["defaultUser"]  # the dev token named the default user


def test_upstash_workflow_with_qstash_dev_true_triggers_through_qstash_sim_dev(
    servers: dict[str, Server], dest: Receiver
) -> None:
    dev = servers["dev"]
    assert dev.http("POST", "/_sim/reset", {})[0] == 200
    env = {"QSTASH_DEV": "true", "QSTASH_DEV_PORT": str(dev.port)}
    out = node_script("workflow_trigger.mjs", {"url": dest.url("/workflow"), "body": {"step": 0}}, env=env)
    assert out["ok"], out
    assert out["result"]["workflowRunId"].startswith("wfr_") and out["guard"] == []  # nothing downloaded
    dev.settle()
    (d,) = delivered(dest, "/workflow")
    (initial,) = d.json  # a workflow run's delivery: its RawStep[] log, entry 0 the initial body (base64)
    assert json.loads(base64.b64decode(initial["body"])) == {"step": 0}
    assert d.header("Upstash-Workflow-RunId") == out["result"]["workflowRunId"]
    assert d.header("Upstash-Region") == "EU-CENTRAL-1"
    status, page = dev.http("GET", "/_sim/journal?kind=request")
    ops = [e.get("operation") for e in page["entries"]]
    assert ops[:2] == ["qstash.getSigningKeys", "qstash.batch"], ops  # the probe, then the run's first step
    status, deliveries = dev.http("GET", "/_sim/deliveries")
    assert [x["account"] for x in deliveries["deliveries"]] == ["defaultUser"]
    keys = {
        "currentSigningKey": DEFAULT_DEV_USER.current_signing_key,
        "nextSigningKey": DEFAULT_DEV_USER.next_signing_key,
    }
    check = node(
        None,
        [
            {
                "method": "Receiver.verify",
                "receiver": keys,
                "args": [{"signature": d.header("Upstash-Signature"), "body": d.text, "url": d.url}],
            }
        ],
    )
    assert check.ok(0) is True
