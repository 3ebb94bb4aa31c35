"""Workflow runs on the control plane, for suites in any language: ``GET /_sim/workflows/runs``,
``GET /_sim/workflows/runs/{runId}`` (state and steps) and ``POST /_sim/workflows/runs/{runId}/wait`` over
HTTP, every answer checked against openapi.yaml; first with the protocol's own requests, then driving the
unmodified ``@upstash/workflow`` app as a JavaScript suite would."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from test_workflow_api import AUTH, SDK_ANSWER, batch, step_body, trigger, wf_headers
from wf_harness import WorkflowApp, workflow_app

from conftest import Receiver, Served

DAY_MS = 24 * 3600 * 1000


def test_a_run_read_and_waited_for_over_the_control_plane(served: Served) -> None:
    rx = Receiver([200], headers=SDK_ANSWER)
    url = f"http://127.0.0.1:{rx.port}/wf"
    client = served.client
    assert trigger(client, "wfr_c", url, body='{"qty":3}').status == 200
    served.settle()
    run_step = {"destination": url, "headers": wf_headers("wfr_c", url, init=False), "body": step_body(1, "price", 15)}
    nap = json.dumps({"stepId": 2, "stepName": "nap", "stepType": "SleepFor", "sleepFor": 86400, "concurrent": 1})
    sleep_step = {"destination": url, "headers": wf_headers("wfr_c", url, init=False, **{"upstash-delay": "1d"})}
    assert batch(client, [run_step]).status == 200
    served.settle()
    assert batch(client, [{**sleep_step, "body": nap}]).status == 200
    served.settle()
    run = client.get("/_sim/workflows/runs/wfr_c").json
    assert (run["workflowRunId"], run["workflowState"], run["finished"]) == ("wfr_c", "RUN_STARTED", False)
    assert (run["account"], run["workflowUrl"]) == ("tok_api", url)
    assert [(s["stepName"], s["stepType"], s["state"]) for s in run["steps"]] == [
        ("init", "Initial", "STEP_SUCCESS"),
        ("price", "Run", "STEP_SUCCESS"),
        ("nap", "SleepFor", "STEP_PROGRESS"),
    ]
    init, price, pending = run["steps"]
    assert (init["out"], price["out"], price["attempts"]) == ('{"qty":3}', "15", 1)
    assert "completedAt" not in pending and pending["attempts"] == 0
    created = run["createdAt"]
    # wait: bounded, the clock moves by the limit when the run does not end
    short = client.post("/_sim/workflows/runs/wfr_c/wait", json_body={"limit": "1h"})
    assert (short.status, short.json["finished"]) == (200, False)
    assert served.on_loop(served.sim.clock.now_ms) == created + 3600 * 1000
    later = client.post("/_sim/workflows/runs/wfr_c/wait", json_body={"limit": "2d"}).json
    assert later["finished"] is False and later["steps"][2]["state"] == "STEP_SUCCESS"  # the nap ended
    assert later["steps"][2]["completedAt"] - price["completedAt"] == DAY_MS
    end = client.delete("/v2/workflows/runs/wfr_c?cancel=false", body=b'"done"', headers=AUTH)
    assert end.status == 200
    done = client.post("/_sim/workflows/runs/wfr_c/wait").json  # no body: the default limit; ended already
    assert (done["workflowState"], done["finished"], done["response"]) == ("RUN_SUCCESS", True, '"done"')
    assert done["completedAt"] >= later["steps"][2]["completedAt"]
    # the list, filtered; the run stays readable after it ended (unlike GET /v2/workflows/runs/{id})
    trigger(client, "wfr_d", url)
    served.settle()
    listed = client.get("/_sim/workflows/runs").json
    assert [r["workflowRunId"] for r in listed["runs"]] == ["wfr_c", "wfr_d"] and listed["truncated"] is False
    ended = client.get("/_sim/workflows/runs?state=RUN_SUCCESS").json["runs"]
    assert [r["workflowRunId"] for r in ended] == ["wfr_c"]
    newest = client.get("/_sim/workflows/runs?limit=1").json
    assert ([r["workflowRunId"] for r in newest["runs"]], newest["truncated"]) == (["wfr_d"], True)
    assert client.get(f"/_sim/workflows/runs?url={url}&account=nobody").json["runs"] == []
    rx.close()


def test_bad_input_names_the_field(served: Served) -> None:
    client = served.client
    unknown = client.get("/_sim/workflows/runs/wfr_nope")
    assert (unknown.status, unknown.error) == (404, "path runId: no workflow run wfr_nope; no run is kept")
    rx = Receiver([200], headers=SDK_ANSWER)
    trigger(client, "wfr_e", f"http://127.0.0.1:{rx.port}/wf")
    served.settle()
    other = client.get("/_sim/workflows/runs/wfr_e?account=someone")
    assert other.status == 404
    assert other.error == "path runId: no workflow run wfr_e of account someone; no run is kept"
    assert "the newest runs are wfr_e" in client.post("/_sim/workflows/runs/wfr_x/wait").error
    bad = client.post("/_sim/workflows/runs/wfr_e/wait", json_body={"limit": "soon"})
    assert bad.status == 400 and bad.error.startswith("body /limit")
    extra = client.post("/_sim/workflows/runs/wfr_e/wait", json_body={"limt": "1d"})
    assert extra.status == 400 and "limt" in extra.error
    state = client.get("/_sim/workflows/runs?state=DONE")
    assert state.status == 400 and state.error.startswith("query state")
    rx.close()


@pytest.fixture
def app(served: Served) -> Iterator[WorkflowApp]:
    with workflow_app(served) as a:
        yield a


def test_a_javascript_suite_waits_for_a_week_long_run_and_reads_its_steps(served: Served, app: WorkflowApp) -> None:
    run_id = app.trigger("sleep", workflowRunId="ctl-1")
    client = served.client
    waited = client.post(f"/_sim/workflows/runs/{run_id}/wait", json_body={"limit": "8d"})
    assert waited.status == 200, waited.body
    run = waited.json
    assert (run["workflowState"], run["finished"]) == ("RUN_SUCCESS", True), app.stderr()
    steps = [(s["stepName"], s["stepType"], s["state"], s.get("out")) for s in run["steps"]]
    assert steps == [
        ("init", "Initial", "STEP_SUCCESS", "{}"),
        ("before", "Run", "STEP_SUCCESS", '"before"'),
        ("sleep-7d", "SleepFor", "STEP_SUCCESS", None),
        ("after", "Run", "STEP_SUCCESS", '"after before"'),
    ]
    assert run["steps"][2]["completedAt"] - run["steps"][1]["completedAt"] == 7 * DAY_MS
    assert run["completedAt"] == served.on_loop(served.sim.clock.now_ms)  # the clock stopped at the run's end
    assert json.loads(run["response"]) == "after before"
    assert client.get(f"/_sim/workflows/runs/{run_id}").json == run


def test_a_retrying_call_and_a_wait_show_as_pending_steps(served: Served, app: WorkflowApp) -> None:
    client = served.client
    call = app.trigger("call", workflowRunId="ctl-call", body={"path": "flaky-2-ctl", "retries": 2})
    wait = app.trigger("wait", workflowRunId="ctl-wait", body={"eventId": "never"})
    served.settle()
    retrying = client.get(f"/_sim/workflows/runs/{call}").json["steps"]
    assert [(s["stepName"], s["stepType"], s["state"], s["attempts"]) for s in retrying] == [
        ("init", "Initial", "STEP_SUCCESS", 1),
        ("third-party", "Call", "STEP_RETRY", 1),  # the third party answered 500; a retry is due in 12 s
    ]
    waiting = client.get(f"/_sim/workflows/runs/{wait}").json["steps"]
    assert [(s["stepName"], s["state"]) for s in waiting] == [("init", "STEP_SUCCESS")]  # no message until it ends
    done = client.post(f"/_sim/workflows/runs/{call}/wait", json_body={"limit": "1h"}).json
    assert done["workflowState"] == "RUN_SUCCESS", app.stderr()
    steps = [(s["stepName"], s["stepType"], s["state"]) for s in done["steps"]]
    assert steps == [
        ("init", "Initial", "STEP_SUCCESS"),
        ("third-party", "Call", "STEP_SUCCESS"),
        ("after-call", "Run", "STEP_SUCCESS"),
    ]
    assert json.loads(done["steps"][1]["out"])["status"] == 200
    timed_out = client.post(f"/_sim/workflows/runs/{wait}/wait", json_body={"limit": "2d"}).json
    assert timed_out["finished"] is True
    assert [(s["stepName"], s["stepType"]) for s in timed_out["steps"]][1] == ("wait-for-event", "Wait")
