"""The dashboard's Workflows tab in a real browser, on runs of the unmodified ``@upstash/workflow`` SDK
(``tests/e2e/workflow_app.mjs`` in node, through ``tests/workflow/wf_harness.py``): the runs with their
filters in the page URL, a run as one timeline with a lane per step (a sleep's wait, a waitForEvent's event
and timeout, a failed run's error and DLQ id), and a step's link to the message timeline of its delivery."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import Page, artifacts_fixture, browser_context_fixture, ui_fixture  # noqa: F401 (fixtures)

from conftest import Served

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workflow"))
from wf_harness import WorkflowApp, workflow_app  # noqa: E402 (the workflow tests' harness, not a package)

DAY_MS = 24 * 3600 * 1000


@pytest.fixture
def app(served: Served) -> Iterator[WorkflowApp]:
    with workflow_app(served) as a:
        yield a


def _runs(served: Served, app: WorkflowApp) -> dict[str, Any]:
    """Three runs: one failed (retries exhausted), one slept a week and ended, one waiting for an event."""
    failed = app.trigger("failing", workflowRunId="ui-fail", retries=1)
    served.advance("1h")
    slept = app.trigger("sleep", workflowRunId="ui-sleep")
    done = served.client.post(f"/_sim/workflows/runs/{slept}/wait", json_body={"limit": "8d"})
    assert done.json["workflowState"] == "RUN_SUCCESS", app.stderr()
    waiting = app.trigger("wait", workflowRunId="ui-wait", body={"eventId": "order-paid", "timeout": "1d"})
    served.settle()
    runs = {r: served.client.get(f"/_sim/workflows/runs/{r}").json for r in (failed, slept, waiting)}
    assert runs[failed]["workflowState"] == "RUN_FAILED", app.stderr()
    assert runs[waiting]["workflowState"] == "RUN_STARTED"
    # what the timeline reads: a sleep's duration, a wait's event and deadline, a failed run's DLQ id
    assert runs[slept]["steps"][2]["sleepFor"] == "7d"
    [w] = runs[waiting]["waiting"]
    assert (w["stepName"], w["stepType"], w["waitEventId"], w["timeout"], w["messageId"]) == (
        "wait-for-event",
        "Wait",
        "order-paid",
        "1d",
        "",
    )
    assert w["timeoutAt"] == runs[waiting]["createdAt"] + DAY_MS
    dlq = served.client.get(
        f"/v2/workflows/dlq/{runs[failed]['dlqId']}", headers={"Authorization": "Bearer tok_workflow"}
    )
    assert dlq.status == 200 and dlq.json["workflowRunId"] == failed, dlq.body
    return runs


def _states(page: Any) -> list[str]:
    return page.locator('[data-testid="wf-run-state"]').all_inner_texts()  # type: ignore[no-any-return]


def test_the_workflows_tab_lists_runs_and_keeps_its_filters_in_the_url(
    ui: Page, served: Served, app: WorkflowApp
) -> None:
    runs = _runs(served, app)
    page = ui.open("?view=workflows")
    page.wait_for_selector('[data-testid="wf-run-row"]')
    rows = page.locator('[data-testid="wf-run-row"]').evaluate_all("rs => rs.map(r => r.dataset.run)")
    assert rows == ["wfr_ui-wait", "wfr_ui-sleep", "wfr_ui-fail"]  # newest first
    assert _states(page) == ["RUN_STARTED", "RUN_SUCCESS", "RUN_FAILED"]
    assert page.locator('[data-testid="wf-run-url"]').all_inner_texts() == [runs[r]["workflowUrl"] for r in rows]
    page.select_option('[data-testid="wf-filter-state"]', "RUN_FAILED")
    page.wait_for_selector('[data-testid="wf-run-count"]:text("1 of 1 runs")')
    assert _states(page) == ["RUN_FAILED"]
    page = ui.open(page.url[page.url.index("?") :])  # a reload keeps the filter
    assert page.locator('[data-testid="wf-filter-state"]').input_value() == "RUN_FAILED"
    assert _states(page) == ["RUN_FAILED"]
    page.select_option('[data-testid="wf-filter-state"]', "")
    page.fill('[data-testid="wf-filter-url"]', "/wf/sleep")
    page.wait_for_selector('[data-testid="wf-run-count"]:text("1 of 3 runs")')
    assert "wfurl=%2Fwf%2Fsleep" in page.url
    assert page.locator('[data-testid="wf-run-row"]').evaluate_all("rs => rs.map(r => r.dataset.run)") == [
        "wfr_ui-sleep"
    ]


def test_a_run_is_one_timeline_of_its_steps(ui: Page, served: Served, app: WorkflowApp, artifacts: Path) -> None:
    runs = _runs(served, app)
    slept = runs["wfr_ui-sleep"]
    page = ui.open("?view=workflows")
    page.click('[data-testid="wf-run-open"][data-run="wfr_ui-sleep"]')
    page.wait_for_selector('[data-testid="wf-run-id"]:text("wfr_ui-sleep")')
    assert "run=wfr_ui-sleep" in page.url
    lanes = page.locator('[data-testid="wf-timeline"] [data-testid="wf-step"]')
    assert lanes.evaluate_all("ls => ls.map(l => l.dataset.type + ':' + l.dataset.state)") == [
        "Initial:STEP_SUCCESS",
        "Run:STEP_SUCCESS",
        "SleepFor:STEP_SUCCESS",
        "Run:STEP_SUCCESS",
    ]
    assert page.locator('[data-testid="wf-step-name"]').all_inner_texts() == ["init", "before", "sleep-7d", "after"]
    assert page.locator('[data-testid="wf-gap-sleep"]').all_inner_texts() == ["⋯ sleep 7d · 7 d ⋯"]
    assert page.locator('[data-testid="wf-step-out"]').all_inner_texts() == [
        "out {}",
        'out "before"',
        'out "after before"',
    ]
    assert page.locator('[data-testid="wf-step-attempts"]').all_inner_texts() == ["1 attempt"] * 4
    assert page.locator('[data-testid="wf-detail-state"]').inner_text() == "RUN_SUCCESS"
    assert page.locator('[data-testid="wf-run-response"]').inner_text() == 'returned "after before"'
    page.screenshot(path=str(artifacts / "workflow-run.png"), full_page=True)

    # a step opens the message timeline of its delivery
    sleep_msg = slept["steps"][2]["messageId"]
    page.locator('[data-testid="wf-step"][data-type="SleepFor"] [data-testid="wf-step-message"]').click()
    page.wait_for_selector(f'[data-testid="detail-id"]:text("{sleep_msg}")')
    states = page.locator('[data-testid="lane-message"] [data-testid="step"]').evaluate_all(
        "ns => ns.map(n => n.dataset.state)"
    )
    assert states == ["CREATED", "ACTIVE", "DELIVERED"]
    assert page.locator('[data-testid="gap-break"]').first.inner_text().startswith("⋯ 7 d ⋯")

    # a run waiting for an event: its event id, timeout and when the timeout fires
    page = ui.open("?view=workflows&run=wfr_ui-wait")
    wait = page.locator('[data-testid="wf-wait"]')
    assert wait.inner_text() == "waits for event order-paid · timeout 1d · times out at 01:00:00 (in 1 d)"
    assert page.locator('[data-testid="wf-step"]').evaluate_all("ls => ls.map(l => l.dataset.type)") == [
        "Initial",
        "Wait",
    ]
    # a failed run: its error and its workflow DLQ id
    page = ui.open("?view=workflows&run=wfr_ui-fail")
    failed = runs["wfr_ui-fail"]
    assert page.locator('[data-testid="wf-run-error"]').inner_text() == "Error: " + failed["error"]
    assert page.locator('[data-testid="wf-run-dlq"]').inner_text() == f"In the workflow DLQ as {failed['dlqId']}"
    lanes = page.locator('[data-testid="wf-step"]')
    assert lanes.locator('[data-testid="wf-step-attempts"]').all_inner_texts() == ["2 attempts"]  # retries=1
    end = page.locator('[data-testid="wf-end"]').inner_text()
    assert end == f"end\nRUN_FAILED\n+12 s · {failed['error']} · DLQ {failed['dlqId']}"
    page.screenshot(path=str(artifacts / "workflow-failed.png"), full_page=True)
    page.click('[data-testid="wf-run-error-message"]')
    init = failed["steps"][0]["messageId"]
    page.wait_for_selector(f'[data-testid="detail-id"]:text("{init}")')
    assert page.locator('[data-testid="detail-state"]').inner_text() == "failed"
