"""Upstash Workflow in the SDK's dev mode: the unmodified ``@upstash/workflow`` 1.3.3 app
(``tests/e2e/workflow_app.mjs``) started with ``QSTASH_DEV=true`` and ``QSTASH_DEV_PORT`` only (no URL,
token or keys: ``serve`` and ``Client`` take the SDK's own defaults, its dev-mode ``Receiver`` checks every
delivery with the dev keys) against a real ``qstash-sim dev --clock virtual`` subprocess. Every step type
the app has, one workflow per case; time moves only over the control API.

One dev server and one app per module (the server is reset before each case, run ids differ per case).
Needs ``node`` (skipped without it) and ``tests/e2e/node_modules`` (``make e2e-deps``).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from wf_harness import WorkflowApp, workflow_app

from e2e.ts_sdk import Server, start_server, stop_server
from qstash_sim.core.dev_users import DEFAULT_DEV_USER
from qstash_sim.engine.signing import sign

WEEK_MS = 7 * 24 * 3600 * 1000
DAY_MS = 24 * 3600 * 1000


@pytest.fixture(scope="module")
def dev() -> Iterator[Server]:
    server = start_server("dev", "--log-level", "warning")
    try:
        yield server
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def dev_app(dev: Server) -> Iterator[WorkflowApp]:
    with workflow_app(None, dev_port=dev.port) as app:
        yield app


@pytest.fixture
def app(dev: Server, dev_app: WorkflowApp) -> WorkflowApp:
    assert dev.http("POST", "/_sim/reset", {})[0] == 200
    return dev_app


def run_of(dev: Server, run_id: str) -> dict[str, Any]:
    status, run = dev.http("GET", f"/_sim/workflows/runs/{run_id}")
    assert status == 200, run
    assert run["account"] == DEFAULT_DEV_USER.account  # the dev-mode client used the default user's token
    result: dict[str, Any] = run
    return result


def steps(run: dict[str, Any]) -> list[tuple[str, str]]:
    return [(s["stepName"], s["stepType"]) for s in run["steps"]]


def deliveries(dev: Server, url: str) -> list[dict[str, Any]]:
    status, page = dev.http("GET", f"/_sim/deliveries?url={url}")
    assert status == 200 and "cursor" not in page, page
    found: list[dict[str, Any]] = page["deliveries"]
    return found


def case_steps(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger(
        "steps", body={"order": 42}, workflowRunId="dev-steps", headers={"x-user-header": "hi"}, label="lbl"
    )
    dev.settle()
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    assert app.steps_run(run_id) == ["first", "second", "third"]
    assert steps(run) == [("init", "Initial"), ("first", "Run"), ("second", "Run"), ("third", "Run")]
    assert json.loads(run["response"]) == {"a": {"got": {"order": 42}}, "b": 'second saw {"got":{"order":42}}', "c": 2}
    (finish,) = app.results(run_id, "finish")
    assert (finish["data"]["header"], finish["data"]["labels"]) == ("hi", ["lbl"])
    assert finish["data"]["createdAt"] == run["createdAt"]
    got = deliveries(dev, f"{app.url}/wf/steps")
    assert [(d["status"], d["account"]) for d in got] == [(200, DEFAULT_DEV_USER.account)] * 4
    assert [len(json.loads(d["body"])) for d in got] == [1, 2, 3, 4]  # each the log up to itself
    assert {d["headers"]["Upstash-Workflow-RunId"] for d in got} == {run_id}


def case_sleep_7d(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("sleep", workflowRunId="dev-sleep")
    dev.settle()
    assert run_of(dev, run_id)["workflowState"] == "RUN_STARTED"
    assert app.steps_run(run_id) == ["before"]
    dev.advance("6d23h59m")
    assert run_of(dev, run_id)["workflowState"] == "RUN_STARTED"
    assert app.steps_run(run_id) == ["before"]
    dev.advance("1m")
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    assert app.steps_run(run_id) == ["before", "after"]
    assert steps(run)[1:] == [("before", "Run"), ("sleep-7d", "SleepFor"), ("after", "Run")]
    times = [s["completedAt"] for s in run["steps"][1:]]
    assert [t - times[0] for t in times] == [0, WEEK_MS, WEEK_MS]
    assert json.loads(run["response"]) == "after before"


def case_sleep_until(dev: Server, app: WorkflowApp) -> None:
    until = dev.http("GET", "/_sim/clock")[1]["now"] // 1000 + 3 * 24 * 3600
    run_id = app.trigger("sleep-until", workflowRunId="dev-until", body={"until": until})
    dev.settle()
    assert app.steps_run(run_id) == ["before"]
    dev.advance("3d")
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    sleep = run["steps"][2]
    assert (sleep["stepType"], sleep["sleepUntil"], sleep["completedAt"]) == ("SleepUntil", until, until * 1000)


def case_parallel(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("parallel", workflowRunId="dev-par")
    dev.settle()
    assert run_of(dev, run_id)["workflowState"] == "RUN_STARTED"  # the parallel sleep holds the group
    assert sorted(app.steps_run(run_id)) == ["par-a", "par-b"]
    dev.advance("1h")
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    assert app.steps_run(run_id)[2:] == ["join"]
    assert app.results(run_id, "finish")[0]["data"]["joined"] == "AB"
    results = sorted((s["stepId"], s["stepName"], s["stepType"]) for s in run["steps"] if s["stepId"] in (1, 2, 3))
    assert results == [(1, "par-a", "Run"), (2, "par-b", "Run"), (3, "par-sleep", "SleepFor")]
    assert steps(run)[-1] == ("join", "Run")


def case_call(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("call", workflowRunId="dev-call", body={"path": "flaky-2-dev-call", "retries": 2})
    dev.advance("1h")  # two retries of the third party: 12 s, then 2 min 28 s
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    res = app.results(run_id, "call-result")[-1]["data"]
    assert (res["status"], res["body"]) == (200, {"attempt": 3, "ok": True})
    assert steps(run) == [("init", "Initial"), ("third-party", "Call"), ("after-call", "Run")]
    third = deliveries(dev, f"{app.url}/_thirdparty/flaky-2-dev-call")
    assert [(d["status"], d["retried"]) for d in third] == [(500, 0), (500, 1), (200, 2)]
    assert {d["headers"]["x-call-header"] for d in third} == {"call-value"}  # as the SDK named it


def case_wait_notify(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("wait", workflowRunId="dev-wait", body={"eventId": "dev-order"})
    dev.settle()
    (waiter,) = app.client("waiters", eventId="dev-order")
    assert waiter["url"] == f"{app.url}/wf/wait"
    assert waiter["deadline"] == dev.http("GET", "/_sim/clock")[1]["now"] + DAY_MS
    (notified,) = app.client("notify", eventId="dev-order", eventData={"paid": True})
    assert notified["messageId"].startswith("msg_")
    dev.settle()
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    assert app.results(run_id, "wait-result")[-1]["data"] == {"eventData": {"paid": True}, "timeout": False}
    wait = run["steps"][1]
    assert (wait["stepType"], wait["waitEventId"], wait["timedOut"]) == ("Wait", "dev-order", False)
    assert app.client("waiters", eventId="dev-order") == []


def case_wait_timeout(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("wait", workflowRunId="dev-wait-timeout", body={"eventId": "never"})
    dev.settle()
    dev.advance("23h59m")
    assert run_of(dev, run_id)["workflowState"] == "RUN_STARTED"
    dev.advance("1m")
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    assert app.results(run_id, "wait-result")[-1]["data"] == {"timeout": True}
    assert run["steps"][1]["timedOut"] is True


def case_invoke(dev: Server, app: WorkflowApp) -> None:
    parent_id = app.trigger("/invoke/parent", workflowRunId="dev-parent")
    dev.settle()
    parent = run_of(dev, parent_id)
    assert parent["workflowState"] == "RUN_SUCCESS", (parent, app.stderr())
    status, page = dev.http("GET", f"/_sim/workflows/runs?url={app.url}/invoke/child")
    (child,) = page["runs"]
    assert child["workflowState"] == "RUN_SUCCESS" and child["account"] == DEFAULT_DEV_USER.account
    assert json.loads(child["steps"][0]["out"]) == {"n": 42}
    assert app.results(child["workflowRunId"], "finish")[-1]["data"] == {"payload": {"n": 42}, "header": "invoke-value"}
    res = app.results(parent_id, "invoke-result")[-1]["data"]
    assert res == {"body": {"childResult": 'child got {"n":42}'}, "isFailed": False, "isCanceled": False}
    assert steps(parent) == [("init", "Initial"), ("invoke-child", "Invoke"), ("after-invoke", "Run")]


def case_webhook(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("webhook", workflowRunId="dev-hook")
    dev.settle()
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    seen = app.results(run_id, "webhook-result")[-1]["data"]
    # The URL names the dev token's UserID (defaultUser) and the dev server the SDK found.
    assert seen["webhookUrl"].startswith(f"{dev.url}/v2/workflows/hooks/defaultUser/{run_id}/evt_")
    assert seen["url"] == seen["webhookUrl"] + "?q=1"
    assert (seen["timeout"], seen["method"], seen["header"]) == (False, "POST", "yes")
    assert json.loads(seen["body"]) == {"hooked": True}
    assert [t for _, t in steps(run)[1:]] == ["CreateWebhook", "Run", "WaitForWebhook"]


def case_cancel(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("cancel", workflowRunId="dev-cancel")
    dev.settle()
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_CANCELED", (run, app.stderr())
    assert app.steps_run(run_id) == ["before-cancel"]
    assert app.results(run_id, "UNREACHABLE") == []


def case_client_cancel(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("sleep", workflowRunId="dev-client-cancel")
    dev.settle()
    assert app.cancel([run_id]) == {"cancelled": 1}
    dev.advance("8d")
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_CANCELED"
    assert app.steps_run(run_id) == ["before"]


def case_failing(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger(
        "failing", workflowRunId="dev-fail", retries=2, body={"order": 9}, headers={"x-user-header": "u"}
    )
    dev.advance("1h")  # QStash's default backoff: 12 s, then 2 min 28 s
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_FAILED", (run, app.stderr())
    assert "failed for good (500)" in run["error"]
    assert [r["data"] for r in app.results(run_id, "attempt")] == [0, 1, 2]
    (failure,) = app.results(run_id, "failureFunction")
    assert failure["data"] == {"failStatus": 500, "failResponse": "boom", "payload": {"order": 9}, "header": "u"}
    statuses = [d["status"] for d in deliveries(dev, f"{app.url}/wf/failing")]
    assert statuses == [500, 500, 500, 200]  # the trigger runs "boom" (attempt 0), two retries, the failure callback


def case_non_retryable(dev: Server, app: WorkflowApp) -> None:
    run_id = app.trigger("non-retryable", workflowRunId="dev-nr", retries=3)
    dev.settle()
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_FAILED", (run, app.stderr())
    assert [r["data"] for r in app.results(run_id, "attempt")] == [0]
    (failure,) = app.results(run_id, "failureFunction")
    assert failure["data"] == {"failStatus": 489, "failResponse": "stop now"}


CASES: dict[str, Callable[[Server, WorkflowApp], None]] = {
    "steps": case_steps,
    "sleep-7d": case_sleep_7d,
    "sleep-until": case_sleep_until,
    "parallel": case_parallel,
    "call": case_call,
    "wait-notify": case_wait_notify,
    "wait-timeout": case_wait_timeout,
    "invoke": case_invoke,
    "webhook": case_webhook,
    "cancel": case_cancel,
    "client-cancel": case_client_cancel,
    "failing": case_failing,
    "non-retryable": case_non_retryable,
}


@pytest.mark.parametrize("case", list(CASES))
def test_dev_mode_workflow(case: str, dev: Server, app: WorkflowApp) -> None:
    CASES[case](dev, app)


def post_signed(url: str, body: bytes, key: str) -> tuple[int, Any]:
    """POST ``body`` to ``url`` with an ``Upstash-Signature`` made with ``key`` (QStash's JWT, wall-clock times)."""
    signature = sign(key, url, body, int(time.time() * 1000), "jwt_test")
    req = urllib.request.Request(url, data=body, method="POST", headers={"Upstash-Signature": signature})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_dev_mode_found_qstash_sim_dev_and_its_receiver_takes_the_dev_keys_only(dev: Server, app: WorkflowApp) -> None:
    # The SDK's dev probe (GET /v2/keys with the dev token) got the dev keys: no download was tried.
    log = app.stderr()
    assert f"[QStash Dev]\x1b[0m Server already running at {dev.url}" in log, log
    assert "LoopbackGuardError" not in log and "Could not start dev server" not in log
    # Its dev-mode Receiver (no keys given to the app) refuses a request signed with any other key...
    url = f"{app.url}/wf/steps"
    status, answer = post_signed(url, b'{"order": 1}', "sig_not_a_dev_key")
    assert status == 500 and "SignatureError: signature verification failed" in answer["message"], answer
    assert dev.http("GET", "/_sim/workflows/runs")[1]["runs"] == []
    # ... and takes one signed with the dev user's next key: a first call, the SDK starts the run itself.
    status, answer = post_signed(url, b'{"order": 1}', DEFAULT_DEV_USER.next_signing_key)
    assert status == 200, answer
    run_id = answer["workflowRunId"]
    dev.settle()
    run = run_of(dev, run_id)
    assert run["workflowState"] == "RUN_SUCCESS", (run, app.stderr())
    assert app.steps_run(run_id) == ["first", "second", "third"]
    assert json.loads(run["steps"][0]["out"]) == {"order": 1}
