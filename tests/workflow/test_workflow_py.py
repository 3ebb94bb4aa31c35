"""Upstash Workflow end to end with the unmodified Python SDK (``upstash-workflow`` 2.0.0): ``run``,
``sleep`` (seven days in one advance), ``sleep_until`` and ``call``, against the ``served`` simulator on the
virtual clock. A run starts with a plain publish to the endpoint (the SDK has no trigger client)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from py_workflow_app import TOKEN, PyWorkflowApp, py_workflow_app

from conftest import Served
from qstash_sim.domain.workflow import RunState, WorkflowRun

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def py_app(served: Served) -> Iterator[tuple[PyWorkflowApp, str]]:
    with py_workflow_app(served) as pair:
        yield pair


def start(served: Served, url: str, body: object) -> WorkflowRun:
    """Publish ``body`` to the workflow endpoint and run what is due: the SDK starts a run; returns it."""
    answer = served.client.post(f"/v2/publish/{url}", json_body=body, headers=AUTH)
    assert answer.status == 200, answer.body
    served.settle()
    (run,) = served.on_loop(lambda: served.sim.workflows.all_runs(TOKEN))
    return run


def test_python_run_steps(served: Served, py_app: tuple[PyWorkflowApp, str]) -> None:
    app, base = py_app
    run = start(served, f"{base}/wf/steps", {"n": 5})
    assert run.state is RunState.SUCCESS, run.error
    assert app.steps_run("steps") == ["first", "second"]
    finish = [r for r in app.results if r["event"] == "finish"][-1]
    assert finish["data"] == {"a": {"got": {"n": 5}}, "b": "second saw 5"}
    steps = [json.loads(e.body) for e in run.log[1:]]
    assert [(s["stepName"], s["method"]) for s in steps] == [("first", "POST"), ("second", "POST")]


def test_python_sleep_seven_days(served: Served, py_app: tuple[PyWorkflowApp, str]) -> None:
    app, base = py_app
    run = start(served, f"{base}/wf/sleep", {})
    assert run.state is RunState.STARTED
    assert app.steps_run("sleep") == ["before"]
    served.advance("7d")
    assert run.state is RunState.SUCCESS, run.error
    assert app.steps_run("sleep") == ["before", "after"]
    assert run.log[3].time_ms - run.log[1].time_ms == 7 * 24 * 3600 * 1000


def test_python_sleep_until(served: Served, py_app: tuple[PyWorkflowApp, str]) -> None:
    app, base = py_app
    until = served.on_loop(served.sim.clock.now_ms) // 1000 + 3600
    run = start(served, f"{base}/wf/sleep-until", {"until": until})
    served.advance("1h")
    assert run.state is RunState.SUCCESS, run.error
    assert app.steps_run("sleep-until") == ["before", "after"]
    assert run.log[2].time_ms == until * 1000


def test_python_call(served: Served, py_app: tuple[PyWorkflowApp, str]) -> None:
    app, base = py_app
    run = start(served, f"{base}/wf/call", {"url": f"{base}/third-party"})
    assert run.state is RunState.SUCCESS, run.error
    assert app.third_party_hits == 1
    result = [r for r in app.results if r["event"] == "call-result"][-1]
    assert result["data"] == {"status": 200, "body": {"echo": {"q": 1}}}
    assert app.steps_run("call") == ["after-call"]


def test_python_failing_step_fails_the_run_and_calls_the_failure_function(
    served: Served, py_app: tuple[PyWorkflowApp, str]
) -> None:
    app, base = py_app
    run = start(served, f"{base}/wf/failing", {"k": 1})
    served.advance("1h")  # the default 3 retries: 12 s, 2 min 28 s, 30 min 8 s
    assert run.state is RunState.FAILED
    assert len([r for r in app.results if r["event"] == "attempt"]) == 4
    (failure,) = [r for r in app.results if r["event"] == "failure_function"]
    assert failure["data"] == {"status": 500, "payload": {"k": 1}}
