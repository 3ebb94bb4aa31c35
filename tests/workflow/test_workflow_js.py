"""Upstash Workflow end to end: the unmodified ``@upstash/workflow`` 1.3.3 ``serve`` handler in node on
127.0.0.1, triggered with the SDK's own ``Client``, against a simulator on the virtual clock (the
``served`` fixture: seed 1). The step order comes from what the endpoint ran (``WorkflowApp.steps_run``)
and from the run's log in the simulator.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from wf_harness import TOKEN, WorkflowApp, workflow_app

from conftest import Served
from qstash_sim.domain.workflow import RunState, WorkflowRun

WEEK_MS = 7 * 24 * 3600 * 1000


@pytest.fixture
def app(served: Served) -> Iterator[WorkflowApp]:
    with workflow_app(served) as a:
        yield a


def run_of(served: Served, run_id: str) -> WorkflowRun:
    run: WorkflowRun = served.on_loop(lambda: served.sim.workflows.run(run_id, TOKEN))
    return run


def logged_steps(run: WorkflowRun) -> list[dict[str, Any]]:
    """The step JSON of every log entry after the initial body."""
    return [json.loads(e.body) for e in run.log[1:]]


def test_run_steps_complete_in_order_with_results(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger(
        "steps", body={"order": 42}, workflowRunId="steps-1", headers={"x-user-header": "hello"}, label="lbl"
    )
    assert run_id == "wfr_steps-1"
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.state, run.error, app.stderr())
    assert app.steps_run(run_id) == ["first", "second", "third"]
    assert [s["stepName"] for s in logged_steps(run)] == ["first", "second", "third"]
    assert [s["stepId"] for s in logged_steps(run)] == [1, 2, 3]
    assert json.loads(run.log[0].body) == {"order": 42}
    assert json.loads(logged_steps(run)[0]["out"]) == {"got": {"order": 42}}
    expected = {"a": {"got": {"order": 42}}, "b": 'second saw {"got":{"order":42}}', "c": 2}
    assert json.loads(run.response or b"") == expected
    (finish,) = app.results(run_id, "finish")
    # The trigger's user header and label reach the last step (WF_TriggerOnConfig), CreatedAt is virtual.
    assert finish["data"]["header"] == "hello"
    assert finish["data"]["labels"] == ["lbl"]
    assert finish["data"]["createdAt"] == run.created_ms
    # N steps: the trigger and N step deliveries, each with the log up to itself as its body.
    deliveries = [d for d in served.on_loop(lambda: list(served.sim.world.inbox)) if d.url.startswith(app.url)]
    assert len(deliveries) == 4
    assert all(d.status == 200 for d in deliveries)
    assert [len(json.loads(d.body)) for d in deliveries] == [1, 2, 3, 4]
    last = deliveries[-1]
    headers = {k.lower(): v for k, v in last.headers.items()}
    assert headers["upstash-workflow-runid"] == run_id
    assert headers["upstash-workflow-sdk-version"] == "1"
    assert headers["upstash-workflow-createdat"] == str(run.created_ms)
    assert headers["upstash-label"] == "lbl"
    assert [e["messageId"] for e in json.loads(last.body)] == [e.message_id for e in run.log]
    assert base64.b64decode(json.loads(last.body)[0]["body"]) == run.log[0].body


def test_a_week_long_sleep_completes_after_one_advance(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("sleep", workflowRunId="sleep-1")
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.STARTED
    assert app.steps_run(run_id) == ["before"]
    assert [e.call_type for e in run.log] == ["step", "step"]  # the sleep joins the log when it is due
    start = run.log[1].time_ms
    served.advance("6d23h59m")
    assert run_of(served, run_id).state is RunState.STARTED
    assert app.steps_run(run_id) == ["before"]
    served.advance("1m")
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.error, app.stderr())
    assert app.steps_run(run_id) == ["before", "after"]
    steps = logged_steps(run)
    assert [s["stepName"] for s in steps] == ["before", "sleep-7d", "after"]
    assert steps[1]["stepType"] == "SleepFor"
    assert [e.time_ms - start for e in run.log[1:]] == [0, WEEK_MS, WEEK_MS]
    assert json.loads(run.response or b"") == "after before"
    assert run.completed_ms == start + WEEK_MS


def test_parallel_steps_run_each_once_then_join(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("parallel", workflowRunId="par-1")
    served.settle()
    assert run_of(served, run_id).state is RunState.STARTED  # the parallel sleep holds the group
    assert sorted(app.steps_run(run_id)) == ["par-a", "par-b"]
    served.advance("1h")
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.error, app.stderr())
    assert app.steps_run(run_id)[2:] == ["join"]
    (finish,) = app.results(run_id, "finish")
    assert finish["data"]["joined"] == "AB"
    steps = logged_steps(run)
    plans = [s for s in steps if s["stepId"] == 0]
    assert [p["targetStep"] for p in plans] == [1, 2, 3]
    assert all(p["concurrent"] == 3 for p in plans)
    results = sorted((s["stepId"], s["stepName"]) for s in steps if s["stepId"] in (1, 2, 3))
    assert results == [(1, "par-a"), (2, "par-b"), (3, "par-sleep")]
    assert steps[-1]["stepName"] == "join"
    assert json.loads(run.response or b"") == "AB"


def test_sleep_until_wakes_at_the_virtual_instant(served: Served, app: WorkflowApp) -> None:
    now_ms: int = served.on_loop(served.sim.clock.now_ms)
    until = now_ms // 1000 + 3 * 24 * 3600
    run_id = app.trigger("sleep-until", workflowRunId="until-1", body={"until": until})
    served.settle()
    assert app.steps_run(run_id) == ["before"]
    served.advance("3d")
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.error, app.stderr())
    assert app.steps_run(run_id) == ["before", "after"]
    sleep = logged_steps(run)[1]
    assert (sleep["stepType"], sleep["sleepUntil"]) == ("SleepUntil", until)
    assert run.log[2].time_ms == until * 1000


def test_context_cancel_ends_the_run_canceled(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("cancel", workflowRunId="cancel-1")
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.CANCELED, (run.error, app.stderr())
    assert app.steps_run(run_id) == ["before-cancel"]
    assert app.results(run_id, "UNREACHABLE") == []


def test_client_cancel_drops_a_sleeping_run(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("sleep", workflowRunId="cancel-2")
    served.settle()
    assert app.cancel([run_id, "wfr_unknown"]) == {"cancelled": 1}
    served.advance("8d")
    run = run_of(served, run_id)
    assert run.state is RunState.CANCELED
    assert app.steps_run(run_id) == ["before"]  # the sleep was cancelled: "after" never ran
    assert len(run.log) == 2


def test_a_failing_step_is_retried_then_fails_the_run_and_calls_the_failure_function(
    served: Served, app: WorkflowApp
) -> None:
    run_id = app.trigger(
        "failing", workflowRunId="fail-1", retries=2, body={"order": 9}, headers={"x-user-header": "u"}
    )
    served.advance("1h")  # QStash's default backoff: 12 s, then 2 min 28 s
    run = run_of(served, run_id)
    assert run.state is RunState.FAILED, app.stderr()
    assert [r["data"] for r in app.results(run_id, "attempt")] == [0, 1, 2]
    assert run.error is not None and "failed for good (500)" in run.error
    # The failure function ran once, with the run's payload and the step's error.
    (failure,) = app.results(run_id, "failureFunction")
    assert failure["data"] == {"failStatus": 500, "failResponse": "boom", "payload": {"order": 9}, "header": "u"}
    assert run.failure_message_id is not None
    callback = served.on_loop(lambda: served.sim.account(TOKEN).messages[run.failure_message_id])
    assert callback.state.value == "delivered"


def test_context_call_reaches_the_third_party_and_returns_its_answer(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("call", workflowRunId="call-1")
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.error, app.stderr())
    res = app.results(run_id, "call-result")[-1]  # recorded outside a step: again on every replay
    assert res["data"]["status"] == 200
    assert res["data"]["body"] == {"method": "POST", "header": "call-value", "body": '{"hello":"third party"}'}
    assert app.steps_run(run_id) == ["after-call"]
    assert [e.call_type for e in run.log] == ["step", "toCallback", "step", "step"]
    call_step = json.loads(run.log[2].body)
    assert (call_step["stepType"], call_step["stepName"]) == ("Call", "third-party")


def test_context_call_retries_a_failing_third_party(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("call", workflowRunId="call-2", body={"path": "flaky-2-call-2", "retries": 2})
    served.advance("1h")  # two retries: 12 s, then 2 min 28 s
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.error, app.stderr())
    res = app.results(run_id, "call-result")[-1]  # recorded outside a step: again on every replay
    assert (res["data"]["status"], res["data"]["body"]) == (200, {"attempt": 3, "ok": True})


def test_wait_for_event_times_out_after_one_day(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("wait", workflowRunId="wait-1", body={"eventId": "never"})
    served.settle()
    assert run_of(served, run_id).state is RunState.STARTED
    served.advance("23h59m")
    assert app.steps_run(run_id) == []
    served.advance("1m")
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.error, app.stderr())
    assert app.results(run_id, "wait-result")[-1]["data"] == {"timeout": True}
    wait_step = logged_steps(run)[0]
    assert (wait_step["stepType"], wait_step["waitTimeout"], wait_step["waitEventId"]) == ("Wait", True, "never")


def test_client_notify_wakes_the_waiting_run_with_the_data(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("wait", workflowRunId="wait-2", body={"eventId": "order-7"})
    served.settle()
    (waiter,) = app.client("waiters", eventId="order-7")
    assert waiter["url"] == f"{app.url}/wf/wait"
    now_ms: int = served.on_loop(served.sim.clock.now_ms)
    assert waiter["deadline"] == now_ms + 24 * 3600 * 1000
    answer = app.client("notify", eventId="order-7", eventData={"paid": True})
    assert len(answer) == 1 and answer[0]["messageId"].startswith("msg_")
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.error, app.stderr())
    assert app.results(run_id, "wait-result")[-1]["data"] == {"eventData": {"paid": True}, "timeout": False}
    assert app.client("waiters", eventId="order-7") == []
    assert app.client("notify", eventId="order-7", eventData=1) == []  # nobody waits any more


def test_notify_from_another_workflow_and_run_scoped_notify_before_the_wait(served: Served, app: WorkflowApp) -> None:
    waiting = app.trigger("wait", workflowRunId="wait-3", body={"eventId": "e3"})
    served.settle()
    notifier = app.trigger("notify", workflowRunId="notifier", body={"eventId": "e3", "data": {"n": 3}})
    served.settle()
    assert run_of(served, notifier).state is RunState.SUCCESS, app.stderr()
    assert app.results(waiting, "wait-result")[-1]["data"] == {"eventData": {"n": 3}, "timeout": False}
    # Run-scoped ("safe") notify: sent before the run exists, kept, consumed by its wait.
    assert app.client("notify", eventId="e4", eventData="early", workflowRunId="wfr_wait-4") == []
    late = app.trigger("wait", workflowRunId="wait-4", body={"eventId": "e4"})
    served.settle()
    assert run_of(served, late).state is RunState.SUCCESS, app.stderr()
    assert app.results(late, "wait-result")[-1]["data"] == {"eventData": "early", "timeout": False}


def test_client_logs_show_each_run_with_its_steps(served: Served, app: WorkflowApp) -> None:
    done = app.trigger("steps", workflowRunId="logs-1", body={"x": 1}, label="l1")
    sleeping = app.trigger("sleep", workflowRunId="logs-2")
    served.settle()
    logs = app.client("logs", workflowRunId=done)
    (run,) = logs["runs"]
    assert (run["workflowRunId"], run["workflowState"], run["labels"]) == (done, "RUN_SUCCESS", ["l1"])
    assert json.loads(run["workflowRunResponse"])["c"] == 2
    names = [(g["type"], [s["stepName"] for s in g["steps"]]) for g in run["steps"]]
    assert names == [
        ("sequential", ["init"]),
        ("sequential", ["first"]),
        ("sequential", ["second"]),
        ("sequential", ["third"]),
    ]
    assert run["steps"][0]["steps"][0]["out"] == '{"x":1}'
    both = app.client("logs")
    assert [r["workflowRunId"] for r in both["runs"]] == [sleeping, done]  # newest first
    pending = both["runs"][0]
    assert pending["workflowState"] == "RUN_STARTED"
    assert pending["steps"][-1]["type"] == "next"
    assert [s["stepName"] for s in pending["steps"][-1]["steps"]] == ["sleep-7d"]
    page = app.client("logs", count=1)
    assert len(page["runs"]) == 1 and page["cursor"] == "1"


def test_invoke_runs_the_child_and_hands_its_result_to_the_parent(served: Served, app: WorkflowApp) -> None:
    parent_id = app.trigger("/invoke/parent", workflowRunId="parent-1")
    served.settle()
    parent = run_of(served, parent_id)
    assert parent.state is RunState.SUCCESS, (parent.error, app.stderr())
    (child,) = [r for r in served.on_loop(lambda: served.sim.workflows.all_runs(TOKEN)) if r.run_id != parent_id]
    assert child.state is RunState.SUCCESS and child.url == f"{app.url}/invoke/child"
    assert json.loads(child.log[0].body) == {"n": 42}
    assert child.invoker is not None and child.invoker.run_id == parent_id
    finish = app.results(child.run_id, "finish")[-1]["data"]
    assert finish == {"payload": {"n": 42}, "header": "invoke-value"}
    res = app.results(parent_id, "invoke-result")[-1]["data"]
    assert res == {"body": {"childResult": 'child got {"n":42}'}, "isFailed": False, "isCanceled": False}
    invoke_step = json.loads(parent.log[1].body)
    assert invoke_step["stepType"] == "Invoke"
    assert app.steps_run(parent_id) == ["after-invoke"]


def test_a_non_retryable_error_fails_the_run_at_once(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("non-retryable", workflowRunId="nr-1", retries=3)
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.FAILED, app.stderr()
    assert [r["data"] for r in app.results(run_id, "attempt")] == [0]  # 489: no retry
    (failure,) = app.results(run_id, "failureFunction")
    assert failure["data"] == {"failStatus": 489, "failResponse": "stop now"}


def test_create_webhook_then_wait_for_webhook_gets_the_request(served: Served) -> None:
    # createWebhook puts the token's UserID in the URL: the token must be base64 JSON with a UserID.
    token = base64.b64encode(json.dumps({"UserID": "hook-user", "Password": "x"}).encode()).decode()
    with workflow_app(served, token) as app:
        run_id = app.trigger("webhook", workflowRunId="hook-1")
        served.settle()
        run: WorkflowRun = served.on_loop(lambda: served.sim.workflows.run(run_id, token))
        assert run.state is RunState.SUCCESS, (run.error, app.stderr())
        seen = app.results(run_id, "webhook-result")[-1]["data"]
    assert seen["webhookUrl"].startswith(f"{served.url}/v2/workflows/hooks/hook-user/{run_id}/evt_")
    assert seen["url"] == seen["webhookUrl"] + "?q=1"
    assert (seen["timeout"], seen["method"], seen["header"]) == (False, "POST", "yes")
    assert json.loads(seen["body"]) == {"hooked": True}
    assert [json.loads(e.body)["stepType"] for e in run.log[1:]] == ["CreateWebhook", "Run", "WaitForWebhook"]
