"""The REST trigger (``POST /v2/trigger/{url}``, ``POST /v2/batch/trigger``) and bulk cancel by filter
(``DELETE /v2/workflows/runs`` as ``client.cancel({filter})`` / ``{all: true}`` send it) over plain HTTP,
every answer checked against openapi.yaml (the ``served`` client)."""

from __future__ import annotations

import base64
import json
from typing import Any

from test_workflow_api import AUTH, JS_FEATURES, batch, trigger, wf_headers

from conftest import Receiver, Served
from qstash_sim.core.workflow import REST_SDK_ERROR
from qstash_sim.domain.workflow import RunState, WorkflowRun

JS_ANSWER = {"Upstash-Workflow-Sdk-Version": "1", "Upstash-Workflow-Sdk": "v1.3.2"}  # what serve() answers


def _run(served: Served, run_id: str) -> WorkflowRun:
    run: WorkflowRun = served.on_loop(lambda: served.sim.workflows.run(run_id, "tok_api"))
    return run


def _low(delivery: dict[str, Any]) -> dict[str, str]:
    return {k.lower(): v for k, v in delivery["headers"].items()}


def _log(delivery: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(e["body"]) for e in json.loads(delivery["body"])]


def test_rest_trigger_starts_a_run_as_an_sdk_trigger_would(served: Served) -> None:
    rx = Receiver([200], headers=JS_ANSWER)
    url = f"http://127.0.0.1:{rx.port}/wf"
    headers = {**AUTH, "Upstash-Forward-X-User": "u1", "Upstash-Retries": "0", "Content-Type": "application/json"}
    answer = served.client.post(f"/v2/trigger/{url}", body=b'{"n":2}', headers=headers)
    assert answer.status == 200, answer.error
    run_id = answer.json["workflowRunId"]
    assert run_id.startswith("wfr_") and len(run_id) == 26  # from the seed
    assert answer.json == {"workflowRunId": run_id, "workflowCreatedAt": served.on_loop(served.sim.clock.now_ms)}
    served.settle()
    run = _run(served, run_id)
    assert run.state is RunState.STARTED and run.rest_trigger == "sdk"
    assert run.feature_set == tuple(JS_FEATURES.split(",")) and run.retries == 0
    assert run.failure_callback is not None and run.failure_callback.url == url  # the default failure URL
    (first,) = rx.received
    assert first["headers"]["Upstash-Workflow-RunId"] == run_id
    assert first["headers"]["Upstash-Workflow-Sdk-Version"] == "1"  # replayed as an SDK trigger's delivery
    assert first["headers"]["X-User"] == "u1"
    assert _log(first) == [b'{"n":2}']
    again = served.client.post(f"/v2/trigger/{url}", body=b"{}", headers={**AUTH, "Upstash-Workflow-RunId": run_id})
    assert again.json == {"workflowRunId": run_id, "workflowCreatedAt": run.created_ms, "deduplicated": True}
    rx.close()


def test_rest_trigger_fails_a_run_whose_endpoint_is_no_sdk_v1(served: Served) -> None:
    rx = Receiver([200], headers={"Upstash-Workflow-Sdk-Version": "1"})  # no Upstash-Workflow-Sdk: v1...
    url = f"http://127.0.0.1:{rx.port}/old"
    run_id = served.client.post(f"/v2/trigger/{url}", body=b"{}", headers=AUTH).json["workflowRunId"]
    served.settle()
    run = _run(served, run_id)
    assert (run.state, run.error) == (RunState.FAILED, REST_SDK_ERROR)
    rx.close()


def test_unknown_sdk_rest_trigger_then_the_sdk_triggers_the_run_itself(served: Served) -> None:
    rx = Receiver([200], headers=JS_ANSWER)
    url = f"http://127.0.0.1:{rx.port}/wf"
    headers = {**AUTH, "Upstash-Workflow-RunId": "wfr_u1", "Upstash-Workflow-Unknown-Sdk": "true"}
    assert served.client.post(f"/v2/trigger/{url}", body=b'"hi"', headers=headers).status == 200
    served.settle()
    (first,) = rx.received
    assert _low(first)["upstash-workflow-unknown-sdk"] == "true"
    assert "upstash-workflow-sdk-version" not in _low(first)
    assert _log(first) == [b'"hi"']
    assert _run(served, "wfr_u1").rest_trigger == "unknown-sdk"
    # what the SDK answers it with: its own trigger of the same run id
    sdk = trigger(served.client, "wfr_u1", url, body='"hi"', **{"upstash-workflow-trigger-by-sdk": "true"})
    assert sdk.status == 200 and "deduplicated" not in sdk.json[0]
    assert trigger(served.client, "wfr_u1", url).json[0]["deduplicated"] is True  # a plain second trigger
    served.settle()
    second = rx.received[1]
    assert _low(second)["upstash-workflow-sdk-version"] == "1"
    assert _log(second) == [b'"hi"']
    run = _run(served, "wfr_u1")
    assert run.rest_trigger == "adopted" and len(run.log) == 1 and "WF_TriggerOnConfig" in run.feature_set
    rx.close()


def test_batch_trigger_answers_every_run_in_order(served: Served) -> None:
    url = "http://127.0.0.1:9/wf"
    items = [
        {"destination": url, "headers": {"Upstash-Workflow-RunId": "wfr_b1"}, "body": "{}"},
        {"destination": url, "body": '{"k":2}'},
    ]
    answer = served.client.post("/v2/batch/trigger", json_body=items, headers=AUTH)
    assert answer.status == 201, answer.error
    assert [a["deduplicated"] for a in answer.json] == [False, False]
    assert answer.json[0]["workflowRunId"] == "wfr_b1" and answer.json[1]["workflowRunId"].startswith("wfr_")
    again = served.client.post("/v2/batch/trigger", json_body=items[:1], headers=AUTH)
    assert again.json[0]["deduplicated"] is True
    group = served.client.post("/v2/batch/trigger", json_body=[{"destination": "grp", "body": "{}"}], headers=AUTH)
    assert (group.status, group.error) == (
        400,
        "body /0/destination: a workflow is triggered at a URL, not at a URL group",
    )
    bad = served.client.post(
        "/v2/batch/trigger", json_body=[{"destination": url, "headers": {"Upstash-Retries": "x"}}], headers=AUTH
    )
    assert bad.status == 400 and bad.error.startswith("body /0/headers/Upstash-Retries")
    assert len(served.on_loop(lambda: served.sim.workflows.all_runs())) == 2


def _start(served: Served, run_id: str, url: str, **extra: str) -> None:
    assert trigger(served.client, run_id, url, **extra).status == 200


def test_cancel_by_url_prefix_exact_url_label_and_all(served: Served) -> None:
    base = "http://127.0.0.1:9"
    _start(served, "wfr_a1", f"{base}/a/1", **{"upstash-label": "red"})
    _start(served, "wfr_a2", f"{base}/a/2")
    _start(served, "wfr_a3", f"{base}/a/3")
    _start(served, "wfr_b1", f"{base}/b/1")
    _start(served, "wfr_c1", f"{base}/c/1")
    client = served.client

    def cancel(query: str) -> Any:
        answer = client.delete(f"/v2/workflows/runs?{query}", headers=AUTH)
        assert answer.status == 200, answer.error
        return answer.json

    assert cancel("label=red&count=100") == {"cancelled": 1}
    assert cancel(f"workflowUrl={base}/a&count=1") == {"cancelled": 1}  # urlStartingWith; at most count
    assert cancel(f"workflowUrl={base}/a&count=100") == {"cancelled": 1}
    assert cancel(f"workflowUrl={base}/b&workflowUrlExactMatch=true&count=100") == {"cancelled": 0}
    assert cancel(f"workflowUrl={base}/b/1&workflowUrlExactMatch=true&count=100") == {"cancelled": 1}
    assert cancel("count=100") == {"cancelled": 1}  # {all: true}
    states = {r.run_id: r.state for r in served.on_loop(lambda: served.sim.workflows.all_runs())}
    assert set(states.values()) == {RunState.CANCELED}
    none = client.delete("/v2/workflows/runs", headers=AUTH)
    assert none.status == 400 and none.error.startswith("query: name the runs to cancel")
    step = batch(client, [{"destination": f"{base}/c/1", "headers": wf_headers("wfr_c1", f"{base}/c/1", init=False)}])
    assert step.status == 400  # the SDK reads it as "workflow-was-finished"
