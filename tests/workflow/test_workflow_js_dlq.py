"""The workflow DLQ, bulk cancel and the REST trigger driven by the unmodified ``@upstash/workflow`` 1.3.3
``Client`` (``client.dlq.list/resume/restart/delete/retryFailureFunction``, ``client.cancel({all: true})``
and ``({urlStartingWith})``) against its own ``serve`` endpoints in node (``tests/e2e/workflow_app.mjs``),
on the virtual clock (the ``served`` fixture, seed 1). What the endpoint ran comes from
``WorkflowApp.steps_run``; what it received, from the simulator's inbox.
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


@pytest.fixture
def app(served: Served) -> Iterator[WorkflowApp]:
    with workflow_app(served) as a:
        yield a


def run_of(served: Served, run_id: str) -> WorkflowRun:
    run: WorkflowRun = served.on_loop(lambda: served.sim.workflows.run(run_id, TOKEN))
    return run


def deliveries(served: Served, run_id: str) -> list[Any]:
    """What the workflow endpoint received for ``run_id``, in order."""
    inbox = served.on_loop(lambda: list(served.sim.world.inbox))
    return [d for d in inbox if d.headers.get("Upstash-Workflow-RunId") == run_id]


def failed_run(served: Served, app: WorkflowApp, name: str) -> str:
    run_id = app.trigger("resumable", workflowRunId=name, retries=0, body={"n": 1})
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.FAILED, (run.state, run.error, app.stderr())
    return run_id


def test_dlq_list_retry_failure_function_and_resume_from_the_failed_step(served: Served, app: WorkflowApp) -> None:
    app.broken(step=True, failure=True)
    run_id = failed_run(served, app, "res-1")
    assert app.steps_run(run_id) == ["one"]  # "two" threw
    listed = app.sdk("dlq.list", {"filter": {"workflowRunId": run_id}})
    (entry,) = listed["messages"]
    assert "cursor" not in listed  # normalizeCursor: no more pages
    old = run_of(served, run_id)
    assert (entry["dlqId"], entry["workflowRunId"], entry["workflowUrl"]) == (old.dlq_id, run_id, old.url)
    assert entry["workflowUrl"] == f"{app.url}/wf/resumable" and entry["responseStatus"] == 500
    assert entry["failureCallback"] == entry["workflowUrl"]  # client.trigger's default failure URL
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_FAIL"  # the failure function threw
    # dlq.retryFailureFunction: the failure function once more, now working
    app.broken(failure=False)
    again = app.sdk("dlq.retryFailureFunction", {"dlqId": entry["dlqId"]})
    assert again["workflowRunId"] == run_id
    served.settle()
    assert [r["data"]["broken"] for r in app.results(run_id, "failureFunction")] == [True, False]
    assert app.sdk("dlq.list")["messages"][0]["failureCallbackInfo"]["state"] == "CALLBACK_SUCCESS"
    # dlq.resume: a new run that goes on at "two"; "one" is replayed from the log, not run again
    app.broken(step=False)
    resumed = app.sdk("dlq.resume", entry["dlqId"])
    (new,) = resumed["workflowRuns"]
    new_id = new["workflowRunId"]
    assert new_id.startswith("wfr_") and new_id != run_id and "cursor" not in resumed
    served.settle()
    run = run_of(served, new_id)
    assert run.state is RunState.SUCCESS, (run.state, run.error, app.stderr())
    assert app.steps_run(new_id) == ["two", "three"]
    assert json.loads(run.response or b"") == "123"
    first = deliveries(served, new_id)[0]
    log = [base64.b64decode(e["body"]) for e in json.loads(first.body)]
    assert log == [e.body for e in old.log]  # the failed run's log, the failed step delivered again
    assert app.sdk("dlq.list")["messages"] == []


def test_dlq_restart_runs_every_step_again_and_delete_all(served: Served, app: WorkflowApp) -> None:
    app.broken(step=True)
    first = failed_run(served, app, "rst-1")
    second = failed_run(served, app, "rst-2")
    by_run = {m["workflowRunId"]: m["dlqId"] for m in app.sdk("dlq.list")["messages"]}
    assert set(by_run) == {first, second}
    app.broken(step=False)
    restarted = app.sdk("dlq.restart", [by_run[first]])
    (new,) = restarted["workflowRuns"]
    served.settle()
    run = run_of(served, new["workflowRunId"])
    assert run.state is RunState.SUCCESS, (run.state, run.error, app.stderr())
    assert app.steps_run(new["workflowRunId"]) == ["one", "two", "three"]  # from the beginning
    assert json.loads(run.log[0].body) == {"n": 1}
    assert app.sdk("dlq.delete", {"all": True}) == {"deleted": 1}
    assert app.sdk("dlq.list")["messages"] == []


def test_client_cancel_by_url_prefix_then_all(served: Served, app: WorkflowApp) -> None:
    sleeping = [app.trigger("sleep", workflowRunId=f"cancel-{i}") for i in (1, 2)]
    waiting = app.trigger("wait", workflowRunId="cancel-3", body={"eventId": "never", "timeout": "30d"})
    served.settle()
    assert app.sdk("cancel", {"urlStartingWith": f"{app.url}/wf/sle"}) == {"cancelled": 2}
    assert run_of(served, waiting).state is RunState.STARTED
    assert app.sdk("cancel", {"all": True}) == {"cancelled": 1}
    served.advance("8d")
    for run_id in [*sleeping, waiting]:
        assert run_of(served, run_id).state is RunState.CANCELED
    assert [app.steps_run(r) for r in sleeping] == [["before"], ["before"]]  # "after" never ran


@pytest.mark.parametrize("unknown_sdk", [False, True])
def test_rest_trigger_runs_a_js_workflow(served: Served, app: WorkflowApp, unknown_sdk: bool) -> None:
    run_id = f"wfr_rest-{unknown_sdk}"
    headers = {
        "Authorization": f"Bearer {TOKEN}",
        "Content-Type": "application/json",
        "Upstash-Workflow-RunId": run_id,
        "Upstash-Forward-X-User-Header": "from-rest",
    }
    if unknown_sdk:
        headers["Upstash-Workflow-Unknown-Sdk"] = "true"
    answer = served.client.post(f"/v2/trigger/{app.url}/wf/steps", body=b'{"order":7}', headers=headers)
    assert answer.status == 200, answer.error
    assert answer.json == {"workflowRunId": run_id, "workflowCreatedAt": run_of(served, run_id).created_ms}
    served.settle()
    run = run_of(served, run_id)
    assert run.state is RunState.SUCCESS, (run.state, run.error, app.stderr())
    assert app.steps_run(run_id) == ["first", "second", "third"]
    (finish,) = app.results(run_id, "finish")
    assert finish["data"]["header"] == "from-rest"
    assert json.loads(run.log[0].body) == {"order": 7}
    # the trigger and three steps; with Unknown-Sdk one delivery more (the SDK then triggers the run itself)
    assert len(deliveries(served, run_id)) == (5 if unknown_sdk else 4)
