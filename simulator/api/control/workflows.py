"""Workflow runs on the control plane, for test suites in any language (what the pytest helpers
``workflow_run``, ``wait_finished`` and ``assert_step`` read in Python):

* ``GET /_sim/workflows/runs[?account=&state=&url=&limit=]``: the newest ``limit`` runs, oldest first,
  each with its steps;
* ``GET /_sim/workflows/runs/{runId}[?account=]``: one run, its state and steps (404 naming the run);
* ``POST /_sim/workflows/runs/{runId}/wait {"limit"?: "30d"}``: advance the virtual clock event by event
  until the run ends or ``limit`` passes; answers the run (``finished`` says which).

The views are :mod:`qstash_sim.core.workflow_view`'s; this module only turns them into JSON.
"""

from __future__ import annotations

from typing import Any

from qstash_sim.base.clock import VirtualClock
from qstash_sim.base.durations import to_ms
from qstash_sim.core.workflow_view import WorkflowRunView, WorkflowStep, run_view
from qstash_sim.domain.workflow import WorkflowRun
from qstash_sim.errors import BadRequest, NotFound
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["get_run", "list_runs", "wait_run"]

_LIST_LIMIT = 1000
_WAIT_LIMIT = "30d"


def _step(s: WorkflowStep) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stepId": s.step_id,
        "stepName": s.name,
        "stepType": s.type,
        "state": s.state,
        "messageId": s.message_id,
        "attempts": s.attempts,
    }
    if s.out_raw is not None:
        out["out"] = s.out_raw
    if s.created_ms is not None:
        out["createdAt"] = s.created_ms
    if s.time_ms is not None:
        out["completedAt"] = s.time_ms
    waits = {
        "sleepFor": s.sleep_for,
        "sleepUntil": s.sleep_until,
        "waitEventId": s.wait_event_id,
        "timeout": s.wait_timeout,
        "timedOut": s.timed_out,
        "timeoutAt": s.wait_deadline_ms,
    }
    out.update({k: v for k, v in waits.items() if v is not None})
    return out


def _run(v: WorkflowRunView) -> dict[str, Any]:
    out: dict[str, Any] = {
        "workflowRunId": v.run_id,
        "account": v.account,
        "workflowUrl": v.url,
        "workflowState": v.state,
        "finished": v.finished,
        "createdAt": v.created_ms,
        "labels": list(v.labels),
        "steps": [_step(s) for s in v.steps],
    }
    if v.completed_ms is not None:
        out["completedAt"] = v.completed_ms
    if v.response is not None:
        out["response"] = v.response
    if v.error is not None:
        out["error"] = v.error
    if v.dlq_id is not None:
        out["dlqId"] = v.dlq_id
    if v.waiting:
        out["waiting"] = [_step(w) for w in v.waiting]
    return out


def _find(ctx: Ctx) -> WorkflowRun:
    run_id = ctx.params["runId"]
    account = ctx.query.get("account")
    try:
        return ctx.sim.workflows.run(run_id, account)
    except NotFound:
        where = f" of account {account}" if account else ""
        known = [r.run_id for r in ctx.sim.workflows.all_runs(account)][-5:]
        hint = f"; the newest runs are {', '.join(known)}" if known else "; no run is kept"
        raise NotFound(f"path runId: no workflow run {run_id}{where}{hint}") from None


async def list_runs(ctx: Ctx) -> Reply:
    """GET /_sim/workflows/runs[?account=&state=&url=&limit=]"""
    q = ctx.query
    runs = [
        r
        for r in ctx.sim.workflows.all_runs(q.get("account"))
        if q.get("state") in (None, r.state.value) and q.get("url") in (None, r.url)
    ]
    limit = int(q.get("limit") or _LIST_LIMIT)
    kept = runs[-limit:]
    wf = ctx.sim.workflows
    return Reply({"runs": [_run(run_view(wf, r)) for r in kept], "truncated": len(kept) < len(runs)})


async def get_run(ctx: Ctx) -> Reply:
    """GET /_sim/workflows/runs/{runId}[?account=]"""
    return Reply(_run(run_view(ctx.sim.workflows, _find(ctx))))


async def wait_run(ctx: Ctx) -> Reply:
    """POST /_sim/workflows/runs/{runId}/wait {"limit"?: duration}"""
    run = _find(ctx)
    body = ctx.json if isinstance(ctx.json, dict) else {}
    limit = body.get("limit", _WAIT_LIMIT)
    if not run.finished:
        if not isinstance(ctx.sim.clock, VirtualClock):
            raise BadRequest("path runId: the server runs on the real clock; start it with --clock virtual to wait")
        try:
            to_ms(limit)
        except (TypeError, ValueError) as exc:
            raise BadRequest(f"body /limit: expected a duration such as 30d or 90 (seconds) ({exc})") from None
        await ctx.sim.run_until(lambda: run.finished, limit)
    return Reply(_run(run_view(ctx.sim.workflows, run)))
