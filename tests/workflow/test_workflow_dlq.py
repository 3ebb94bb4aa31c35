"""The workflow DLQ over plain HTTP, every answer checked against openapi.yaml (the ``served`` client): a run
whose step fails for good is listed (``GET /v2/dlq?source=workflow``, what ``client.dlq.list`` sends, and
``/v2/workflows/dlq``) with its failure function's state; get, delete, resume (a new run from the failed
step), restart (a new run from the beginning), the failure function's rerun, bad selections, the cap,
and the new run ids from the seed."""

from __future__ import annotations

import base64
import json
from typing import Any

from test_workflow_api import AUTH, SDK_ANSWER, batch, step_body, trigger, wf_headers

from conftest import Receiver, Served
from qstash_sim.domain.workflow import MAX_DLQ, RunState, WorkflowRun


def _run(served: Served, run_id: str) -> WorkflowRun:
    run: WorkflowRun = served.on_loop(lambda: served.sim.workflows.run(run_id, "tok_api"))
    return run


def _fail_a_run(served: Served, run_id: str, rx: Receiver, failure_url: str | None = None) -> None:
    """A run whose trigger is delivered (200) and whose step ``s1`` then fails for good (``rx``: 200, 500)."""
    url = f"http://127.0.0.1:{rx.port}/wf"
    extra = {"upstash-retries": "0", "upstash-label": "lbl"}
    if failure_url is not None:
        extra.update(
            {
                "upstash-failure-callback": failure_url,
                "upstash-failure-callback-retries": "0",
                "upstash-failure-callback-forward-upstash-workflow-is-failure": "true",
            }
        )
    assert trigger(served.client, run_id, url, **extra).status == 200
    served.settle()
    step = {"destination": url, "headers": wf_headers(run_id, url, init=False), "body": step_body(1, "s1", 7)}
    assert batch(served.client, [step]).status == 200
    served.settle()
    assert _run(served, run_id).state is RunState.FAILED


def _listed(served: Served, query: str = "") -> list[dict[str, Any]]:
    answer = served.client.get(f"/v2/dlq?source=workflow{query}", headers=AUTH)
    assert answer.status == 200, answer.error
    messages: list[dict[str, Any]] = answer.json["messages"]
    return messages


def _log_bodies(delivery: dict[str, Any]) -> list[bytes]:
    return [base64.b64decode(e["body"]) for e in json.loads(delivery["body"])]


def test_a_failed_run_is_listed_with_its_failure_function_and_filters(served: Served) -> None:
    rx, fcb = Receiver([200, 500, 200], headers=SDK_ANSWER), Receiver([500, 200])
    fcb_url = f"http://127.0.0.1:{fcb.port}/failure"
    _fail_a_run(served, "wfr_d1", rx, fcb_url)
    (entry,) = _listed(served)
    run = _run(served, "wfr_d1")
    assert entry["dlqId"] == run.dlq_id and entry["workflowRunId"] == "wfr_d1"
    assert (entry["workflowUrl"], entry["url"]) == (run.url, run.url)
    assert (entry["workflowCreatedAt"], entry["body"], entry["labels"]) == (run.created_ms, '{"n":1}', ["lbl"])
    assert (entry["responseStatus"], entry["responseBody"]) == (500, '{"error":"receiver says no"}')
    assert entry["failureCallback"] == fcb_url
    assert entry["failureCallbackInfo"]["state"] == "CALLBACK_FAIL"
    assert entry["failureCallbackInfo"]["responseStatus"] == 500
    # the failure function got the QStash DLQ id of the failed step: the same id
    assert json.loads(fcb.received[0]["body"])["dlqId"] == entry["dlqId"]
    assert served.client.get("/v2/workflows/dlq", headers=AUTH).json["messages"] == [entry]
    assert served.client.get(f"/v2/workflows/dlq/{entry['dlqId']}", headers=AUTH).json == entry
    assert _listed(served, "&workflowRunId=wfr_d1&failureFunctionState=CALLBACK_FAIL&label=lbl") == [entry]
    assert _listed(served, f"&workflowUrl={run.url}") == [entry]
    assert _listed(served, "&workflowRunId=wfr_other") == []
    assert _listed(served, "&failureFunctionState=CALLBACK_SUCCESS") == []
    # plain GET /v2/dlq still lists QStash's own entries: the failed step, then the failed failure callback
    plain = served.client.get("/v2/dlq", headers=AUTH).json["messages"]
    assert [(m["dlqId"], m["url"]) for m in plain][0] == (entry["dlqId"], run.url)
    assert [m["url"] for m in plain][1:] == [fcb_url]
    # the failure function failed: call it again, once
    again = served.client.post(f"/v2/workflows/dlq/callback/{entry['dlqId']}", headers=AUTH)
    assert again.status == 200 and again.json["workflowRunId"] == "wfr_d1"
    assert again.json["workflowCreatedAt"].endswith("Z")
    served.settle()
    assert len(fcb.received) == 2
    assert _listed(served)[0]["failureCallbackInfo"]["state"] == "CALLBACK_SUCCESS"
    twice = served.client.post(f"/v2/workflows/dlq/callback/{entry['dlqId']}", headers=AUTH)
    assert twice.status == 400 and "has not failed (CALLBACK_SUCCESS)" in twice.error
    rx.close()
    fcb.close()


def test_resume_continues_at_the_failed_step_as_a_new_run(served: Served) -> None:
    rx = Receiver([200, 500, 200], headers=SDK_ANSWER)
    _fail_a_run(served, "wfr_r1", rx)
    (entry,) = _listed(served)
    old = _run(served, "wfr_r1")
    answer = served.client.post(
        f"/v2/workflows/dlq/resume?dlqIds={entry['dlqId']}", headers={**AUTH, "Upstash-Retries": "2"}
    )
    assert answer.status == 200, answer.error
    (new,) = answer.json["workflowRuns"]
    assert new["workflowRunId"].startswith("wfr_") and new["workflowRunId"] != "wfr_r1"
    assert "cursor" not in answer.json
    served.settle()
    resumed = _run(served, new["workflowRunId"])
    assert resumed.state is RunState.STARTED and resumed.retries == 2
    delivery = rx.received[-1]
    assert delivery["headers"]["Upstash-Workflow-RunId"] == resumed.run_id
    # the log of the failed run up to the failed step, then that step again (as a message of the new run)
    assert _log_bodies(delivery) == [e.body for e in old.log]
    assert json.loads(_log_bodies(delivery)[-1])["stepName"] == "s1"
    assert [e.message_id for e in resumed.log[:-1]] == [e.message_id for e in old.log[:-1]]
    assert resumed.log[-1].message_id == delivery["headers"]["Upstash-Message-Id"]
    # the entry (and QStash's DLQ entry of the step) are gone
    assert _listed(served) == []
    assert served.client.get(f"/v2/dlq/{entry['dlqId']}", headers=AUTH).status == 404
    assert served.client.post(f"/v2/workflows/dlq/resume?dlqIds={entry['dlqId']}", headers=AUTH).status == 404
    rx.close()


def test_restart_starts_a_new_run_from_the_initial_body(served: Served) -> None:
    rx = Receiver([200, 500, 200], headers=SDK_ANSWER)
    _fail_a_run(served, "wfr_s1", rx)
    answer = served.client.post("/v2/workflows/dlq/restart?workflowRunId=wfr_s1", headers=AUTH)
    assert answer.status == 200, answer.error
    (new,) = answer.json["workflowRuns"]
    served.settle()
    restarted = _run(served, new["workflowRunId"])
    assert (restarted.initial_body, restarted.labels, restarted.retries) == (b'{"n":1}', ["lbl"], 0)
    delivery = rx.received[-1]
    assert delivery["headers"]["Upstash-Workflow-RunId"] == restarted.run_id
    assert delivery["headers"]["upstash-workflow-sdk-version"] == "1"  # forwarded: not a first invocation
    assert _log_bodies(delivery) == [b'{"n":1}']
    assert _listed(served) == []
    rx.close()


def test_delete_and_bad_selections(served: Served) -> None:
    rx1, rx2 = Receiver([200, 500], headers=SDK_ANSWER), Receiver([200, 500], headers=SDK_ANSWER)
    _fail_a_run(served, "wfr_x1", rx1)
    _fail_a_run(served, "wfr_x2", rx2)
    first, second = _listed(served)
    client = served.client
    for path in ("/v2/workflows/dlq/resume", "/v2/workflows/dlq/restart"):
        none = client.post(path, headers=AUTH)
        assert none.status == 400 and none.error.startswith("query: name the entries: dlqIds")
    assert client.delete("/v2/workflows/dlq", headers=AUTH).status == 400
    unknown = client.post(f"/v2/workflows/dlq/resume?dlqIds={first['dlqId']}&dlqIds=1-0", headers=AUTH)
    assert (unknown.status, unknown.error) == (404, "workflow dlq message 1-0 not found (nothing was done)")
    assert len(_listed(served)) == 2  # all or nothing
    assert client.get("/v2/workflows/dlq/oops", headers=AUTH).status == 400
    assert client.get("/v2/dlq?source=nope", headers=AUTH).status == 400
    page = client.get("/v2/workflows/dlq?count=1", headers=AUTH).json
    assert [m["dlqId"] for m in page["messages"]] == [first["dlqId"]] and page["cursor"] == first["dlqId"]
    rest = client.get(f"/v2/workflows/dlq?count=1&cursor={page['cursor']}", headers=AUTH).json
    assert [m["dlqId"] for m in rest["messages"]] == [second["dlqId"]] and "cursor" not in rest
    one = client.delete(f"/v2/workflows/dlq/{first['dlqId']}", headers=AUTH)
    assert (one.status, one.json) == (200, {"deleted": 1})
    assert client.delete(f"/v2/workflows/dlq/{first['dlqId']}", headers=AUTH).status == 404
    everything = client.delete("/v2/workflows/dlq?count=100", headers=AUTH)  # what delete({all: true}) sends
    assert everything.json == {"deleted": 1}
    assert _listed(served) == []
    rx1.close()
    rx2.close()


def test_the_dlq_is_capped_oldest_first(served: Served) -> None:
    store = served.sim.workflows.dlq
    store.max_entries = 1
    try:
        rx1, rx2 = Receiver([200, 500], headers=SDK_ANSWER), Receiver([200, 500], headers=SDK_ANSWER)
        _fail_a_run(served, "wfr_c1", rx1)
        _fail_a_run(served, "wfr_c2", rx2)
        assert [m["workflowRunId"] for m in _listed(served)] == ["wfr_c2"]
        assert served.on_loop(lambda: store.evicted) == 1
        rx1.close()
        rx2.close()
    finally:
        store.max_entries = MAX_DLQ


def _resumed_ids(served: Served) -> list[str]:
    rx = Receiver([200, 500, 200], headers=SDK_ANSWER)
    _fail_a_run(served, "wfr_det", rx)
    dlq_id = _listed(served)[0]["dlqId"]
    resumed = served.client.post(f"/v2/workflows/dlq/resume?dlqIds={dlq_id}", headers=AUTH).json
    served.settle()
    rx.close()
    return [dlq_id, resumed["workflowRuns"][0]["workflowRunId"], resumed["workflowRuns"][0]["workflowCreatedAt"]]


def test_same_seed_same_dlq_ids_and_new_run_ids(served: Served) -> None:
    start = served.on_loop(served.sim.clock.now_ms)
    first = _resumed_ids(served)
    served.on_loop(lambda: served.sim.reset(seed=1, now_ms=start))
    assert _resumed_ids(served) == first


def test_the_documented_path_forms_resume_and_restart_one_entry(served: Served) -> None:
    rx1, rx2 = Receiver([200, 500, 200], headers=SDK_ANSWER), Receiver([200, 500, 200], headers=SDK_ANSWER)
    _fail_a_run(served, "wfr_p1", rx1)
    _fail_a_run(served, "wfr_p2", rx2)
    by_run = {m["workflowRunId"]: m["dlqId"] for m in _listed(served)}
    resumed = served.client.post(f"/v2/workflows/dlq/resume/{by_run['wfr_p1']}", headers=AUTH)
    assert resumed.status == 200 and set(resumed.json) == {"workflowRunId", "workflowCreatedAt"}
    restarted = served.client.post(f"/v2/workflows/dlq/restart/{by_run['wfr_p2']}", headers=AUTH)
    assert restarted.status == 200 and restarted.json["workflowRunId"] != resumed.json["workflowRunId"]
    served.settle()
    assert len(_log_bodies(rx1.received[-1])) == 2 and len(_log_bodies(rx2.received[-1])) == 1
    assert served.client.post(f"/v2/workflows/dlq/resume/{by_run['wfr_p1']}", headers=AUTH).status == 404
    assert _listed(served) == []
    rx1.close()
    rx2.close()
