"""The workflow routes over plain HTTP, every answer checked against openapi.yaml (the ``served`` client):
trigger and steps as ``@upstash/workflow`` sends them, the lazy-fetch log, run end, cancel, bad input,
the caps, and determinism (same seed, same ids and times)."""

from __future__ import annotations

import base64
import json
from typing import Any

from conftest import Client, Receiver, Served
from qstash_sim.domain.workflow import MAX_RUNS, MAX_STEPS_PER_RUN, RunState

AUTH = {"Authorization": "Bearer tok_api"}
SDK_ANSWER = {"Upstash-Workflow-Sdk-Version": "1"}  # what a workflow endpoint answers (WF_DetectTrigger)
JS_FEATURES = "LazyFetch,InitialBody,WF_DetectTrigger,WF_TriggerOnConfig"


def wf_headers(run_id: str, url: str, *, init: bool, **extra: str) -> dict[str, str]:
    """The headers of a JS SDK 1.3.3 workflow message (lower case, as inside a batch item)."""
    return {
        "upstash-workflow-init": "true" if init else "false",
        "upstash-workflow-runid": run_id,
        "upstash-workflow-url": url,
        "upstash-feature-set": JS_FEATURES,
        "upstash-workflow-sdk-version": "1",
        "upstash-forward-upstash-workflow-sdk-version": "1",
        "content-type": "application/json",
        "upstash-method": "POST",
        **extra,
    }


def batch(client: Client, items: list[dict[str, Any]]) -> Any:
    return client.post("/v2/batch", json_body=items, headers=AUTH)


def trigger(client: Client, run_id: str, url: str, body: str = '{"n":1}', **extra: str) -> Any:
    return batch(client, [{"destination": url, "headers": wf_headers(run_id, url, init=True, **extra), "body": body}])


def step_body(step_id: int, name: str, out: Any) -> str:
    return json.dumps({"stepId": step_id, "stepName": name, "stepType": "Run", "out": json.dumps(out), "concurrent": 1})


def test_trigger_step_lazy_fetch_and_end(served: Served) -> None:
    rx = Receiver([200], headers=SDK_ANSWER)
    url = f"http://127.0.0.1:{rx.port}/wf"
    client = served.client
    first = trigger(client, "wfr_a", url, **{"upstash-forward-x-user": "u1", "upstash-retries": "0"})
    assert first.status == 200
    (trigger_id,) = [r["messageId"] for r in first.json]
    again = trigger(client, "wfr_a", url)
    assert again.json == [{"messageId": trigger_id, "url": url, "deduplicated": True}]
    served.settle()
    step = batch(
        client, [{"destination": url, "headers": wf_headers("wfr_a", url, init=False), "body": step_body(1, "s1", 7)}]
    )
    assert step.status == 200
    served.settle()
    log = client.get("/v2/workflows/runs/wfr_a", headers=AUTH)
    assert log.status == 200
    assert [e["callType"] for e in log.json] == ["step", "step"]
    assert base64.b64decode(log.json[0]["body"]) == b'{"n":1}'
    assert json.loads(base64.b64decode(log.json[1]["body"]))["stepName"] == "s1"
    (d1, d2) = rx.received
    assert json.loads(d1["body"]) == log.json[:1]
    assert json.loads(d2["body"]) == log.json
    assert d2["headers"]["x-user"] == "u1"  # the trigger's forwarded header (WF_TriggerOnConfig)
    assert d2["headers"]["Upstash-Workflow-RunId"] == "wfr_a"
    assert d2["headers"]["Upstash-Message-Id"] == log.json[1]["messageId"]
    end = client.delete("/v2/workflows/runs/wfr_a?cancel=false", body=b'"done"', headers=AUTH)
    assert (end.status, end.json) == (200, {"workflowRunId": "wfr_a", "workflowState": "RUN_SUCCESS"})
    assert client.get("/v2/workflows/runs/wfr_a", headers=AUTH).status == 404
    assert client.delete("/v2/workflows/runs/wfr_a", headers=AUTH).status == 404
    late = batch(
        client, [{"destination": url, "headers": wf_headers("wfr_a", url, init=False), "body": step_body(2, "s2", 8)}]
    )
    assert late.status == 400  # the SDK reads it as "workflow-was-finished"
    assert "body /0/headers/Upstash-Workflow-RunId: workflow run wfr_a has finished (RUN_SUCCESS)" == late.error
    run = served.on_loop(lambda: served.sim.workflows.run("wfr_a", "tok_api"))
    assert (run.state, run.response) == (RunState.SUCCESS, b'"done"')
    rx.close()


def test_bad_workflow_headers_are_400s_naming_the_field(served: Served) -> None:
    client = served.client
    url = "http://127.0.0.1:9/wf"
    unknown = batch(client, [{"destination": url, "headers": wf_headers("wfr_x", url, init=False), "body": "{}"}])
    assert (unknown.status, unknown.error) == (
        400,
        "body /0/headers/Upstash-Workflow-RunId: workflow run wfr_x does not exist",
    )
    bad_init = trigger(client, "wfr_y", url, **{"upstash-workflow-init": "maybe"})
    assert bad_init.status == 400
    assert bad_init.error.startswith("body /0/headers/Upstash-Workflow-Init: expected true or false")
    slash = trigger(client, "wfr/z", url)
    assert slash.status == 400 and "Upstash-Workflow-RunId" in slash.error
    publish = client.post(
        f"/v2/publish/{url}",
        body=b"{}",
        headers={**AUTH, "Upstash-Workflow-RunId": "wfr_q", "Upstash-Workflow-Init": "false"},
    )
    assert (publish.status, publish.error) == (400, "header Upstash-Workflow-RunId: workflow run wfr_q does not exist")
    assert client.delete("/v2/workflows/runs", headers=AUTH).status == 400
    cancel = client.delete("/v2/workflows/runs?workflowRunIds=nope", headers=AUTH)
    assert (cancel.status, cancel.json) == (200, {"cancelled": 0})
    assert client.get("/v2/workflows/runs/nope", headers=AUTH).status == 404
    # nothing of it was stored
    assert served.on_loop(lambda: served.sim.workflows.all_runs()) == []


def test_a_trigger_answered_without_the_sdk_header_fails_the_run(served: Served) -> None:
    rx = Receiver([200])  # a plain endpoint, not a workflow (WF_DetectTrigger)
    url = f"http://127.0.0.1:{rx.port}/plain"
    trigger(served.client, "wfr_plain", url)
    served.settle()
    run = served.on_loop(lambda: served.sim.workflows.run("wfr_plain", "tok_api"))
    assert run.state is RunState.FAILED
    assert run.error is not None and run.error.startswith("detected a non-workflow destination")
    rx.close()


def test_caps_on_runs_and_steps(served: Served) -> None:
    wf = served.sim.workflows  # the real store, with tiny caps
    wf.max_runs, wf.max_steps = 2, 1
    try:
        client = served.client
        url = "http://127.0.0.1:9/wf"
        assert trigger(client, "wfr_1", url).status == 200
        assert trigger(client, "wfr_2", url).status == 200
        full = trigger(client, "wfr_3", url)
        assert full.status == 412 and "2 runs are still running" in full.error
        assert client.delete("/v2/workflows/runs/wfr_1", headers=AUTH).status == 200
        assert trigger(client, "wfr_3", url).status == 200  # the finished run made room
        assert served.on_loop(lambda: wf.evicted) == 1
        steps = batch(client, [{"destination": url, "headers": wf_headers("wfr_2", url, init=False), "body": "{}"}])
        assert steps.status == 412 and "1 messages, the most one run may" in steps.error
    finally:
        wf.max_runs, wf.max_steps = MAX_RUNS, MAX_STEPS_PER_RUN


def _history(served: Served) -> list[Any]:
    rx = Receiver([200], headers=SDK_ANSWER)
    url = f"http://127.0.0.1:{rx.port}/wf"
    trigger(served.client, "wfr_det", url)
    served.settle()
    batch(
        served.client,
        [
            {
                "destination": url,
                "headers": wf_headers("wfr_det", url, init=False, **{"upstash-delay": "7d"}),
                "body": "{}",
            }
        ],
    )
    served.advance("7d")
    run = served.on_loop(lambda: served.sim.workflows.run("wfr_det", "tok_api"))
    rx.close()
    return [run.created_ms, [(e.message_id, e.time_ms) for e in run.log], [d["body"] for d in rx.received]]


def test_same_seed_same_ids_and_times(served: Served) -> None:
    start = served.on_loop(served.sim.clock.now_ms)
    first = _history(served)
    served.on_loop(lambda: served.sim.reset(seed=1, now_ms=start))
    assert _history(served) == first


def test_wait_notify_waiters_hooks_and_logs_answer_as_documented(served: Served) -> None:
    rx = Receiver([200], headers=SDK_ANSWER)
    url = f"http://127.0.0.1:{rx.port}/wf"
    client = served.client
    trigger(client, "wfr_w", url)
    served.settle()
    wait_headers = {
        **AUTH,
        **{
            k: v for k, v in wf_headers("wfr_w", url, init=False).items() if k not in ("upstash-method", "content-type")
        },
    }
    body = {
        "url": url,
        "timeout": "1d",
        "timeoutUrl": url,
        "timeoutHeaders": {},
        "step": {"stepId": 1, "stepName": "w", "stepType": "Wait", "concurrent": 1},
    }
    assert client.post("/v2/wait/e1", json_body=body, headers=wait_headers).status == 200
    (waiter,) = client.get("/v2/waiters/e1", headers=AUTH).json
    assert waiter["url"] == url and waiter["timeoutUrl"] == url
    notified = client.post("/v2/notify/e1", body=b"data", headers=AUTH)
    assert notified.status == 200 and notified.json[0]["messageId"].startswith("msg_")
    assert client.post("/v2/notify/e1", body=b"again", headers=AUTH).json == []  # nobody waits now
    served.settle()
    step = json.loads(base64.b64decode(json.loads(rx.received[-1]["body"])[-1]["body"]))
    assert (step["stepType"], step["waitTimeout"], base64.b64decode(step["out"])) == ("Wait", False, b"data")
    # A webhook needs no token; for a run not waiting yet it is kept, then answers its wait at once.
    hook = client.post("/v2/workflows/hooks/u1/wfr_w/e2?x=1", body=b"hi", headers={"X-Hook": "1"})
    assert (hook.status, hook.json) == (200, {})
    assert client.post("/v2/workflows/hooks/u1/wfr_nope/e2", body=b"").status == 404
    assert client.post("/v2/wait/e2", json_body=body, headers=wait_headers).status == 200
    served.settle()
    step = json.loads(base64.b64decode(json.loads(rx.received[-1]["body"])[-1]["body"]))
    event = json.loads(base64.b64decode(step["out"]))
    assert (event["method"], event["url"], base64.b64decode(event["body"])) == (
        "POST",
        "/v2/workflows/hooks/u1/wfr_w/e2?x=1",
        b"hi",
    )
    assert event["header"]["X-Hook"] == ["1"]
    logs = client.get("/v2/workflows/events?groupBy=workflowRunId&workflowRunId=wfr_w", headers=AUTH)
    (run,) = logs.json["runs"]
    assert [g["steps"][0]["stepType"] for g in run["steps"]] == ["Initial", "Wait", "Wait"]
    assert client.get("/v2/workflows/logs?cursor=x", headers=AUTH).status == 400
    missing = client.post("/v2/wait/e3", json_body=body, headers=AUTH)
    assert missing.status == 400 and "Upstash-Workflow-RunId" in missing.error
    rx.close()
