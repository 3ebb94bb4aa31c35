"""Upstash Workflow on the native surface: workflow-aware publish and batch, the run log, run end, cancel.

``POST /v2/batch`` and ``POST /v2/publish/{destination}`` are the ordinary operations; an item (or a
request) that carries ``Upstash-Workflow-RunId`` is a message of a workflow run and goes through the
core's :class:`~qstash_sim.core.workflow.Workflows` (a trigger creates the run, a step joins its log).
Everything else is published exactly as before.

* ``GET /v2/workflows/runs/{workflowRunId}``: the run's ``RawStep[]`` log (the SDK's lazy fetch), 404
  once the run ended.
* ``DELETE /v2/workflows/runs/{workflowRunId}?cancel=false|true``: the SDK ends the run (the body is its
  return value) or cancels it (``context.cancel()``); 404 if it ended already.
* ``DELETE /v2/workflows/runs?workflowRunIds=...`` (or a filter, or ``count`` alone): ``client.cancel``,
  ``{"cancelled": n}`` (see :mod:`qstash_sim.core.workflow_select`).
* ``GET /v2/workflows/events`` (and ``/v2/workflows/logs``): ``client.logs``, see
  :mod:`qstash_sim.core.workflow_logs`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from qstash_sim.api.qstash_v2 import publish as plain
from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.config import batch_items, publish_command, target, url_at
from qstash_sim.core import topics
from qstash_sim.core.workflow import raw_steps
from qstash_sim.core.workflow_logs import LogFilter, run_logs
from qstash_sim.core.workflow_select import RunFilter, running_matching
from qstash_sim.domain.commands import PublishCommand, PublishResult
from qstash_sim.domain.workflow import Invoker, WorkflowMessage, WorkflowRun
from qstash_sim.errors import BadRequest, NotFound
from qstash_sim.http.headers import QSTASH, parse_settings
from qstash_sim.http.surface import Ctx, Reply

__all__ = ["batch", "cancel_runs", "end_run", "get_run", "logs", "publish", "workflow_message"]

_MAX_RUN_ID = 256


def workflow_message(headers: Mapping[str, Any], where: str = "header") -> WorkflowMessage | None:
    """What the ``Upstash-Workflow-*`` headers say (names in any case), or ``None`` for a plain message."""
    low = {str(k).lower(): v for k, v in headers.items() if isinstance(v, str)}

    def loc(name: str) -> str:
        return f"{where} {name}" if where == "header" else f"{where}/{name}"

    run_id = low.get("upstash-workflow-runid")
    if run_id is None:
        return None
    if not run_id or len(run_id) > _MAX_RUN_ID or not run_id.isprintable() or "/" in run_id:
        raise BadRequest(
            f"{loc('Upstash-Workflow-RunId')}: expected 1 to {_MAX_RUN_ID} printable characters without '/', "
            f"got {run_id!r}"
        )
    init = low.get("upstash-workflow-init", "false").strip().lower()
    if init not in ("true", "false"):
        raise BadRequest(f"{loc('Upstash-Workflow-Init')}: expected true or false, got {init!r}")
    features = tuple(p.strip() for p in low.get("upstash-feature-set", "").split(",") if p.strip())
    return WorkflowMessage(
        run_id=run_id,
        init=init == "true",
        call_type=low.get("upstash-workflow-calltype", "step").strip() or "step",
        url=low.get("upstash-workflow-url"),
        feature_set=features,
        retries_given="upstash-retries" in low,
        retry_delay_given="upstash-retry-delay" in low,
        invoke=low.get("upstash-workflow-invoke", "").strip().lower() == "true",
        trigger_by_sdk=low.get("upstash-workflow-trigger-by-sdk", "").strip().lower() == "true",
    )


def _send(ctx: Ctx, cmd: PublishCommand, group: str | None, wf: WorkflowMessage | None) -> list[PublishResult]:
    if wf is not None and group is None:
        return [ctx.sim.workflows.publish(ctx.caller, cmd, wf)]
    if group is None:
        return [ctx.sim.publish(ctx.caller, cmd)]
    return topics.publish_to_group(ctx.sim, ctx.caller, cmd, group)


async def publish(ctx: Ctx) -> Reply:
    """POST /v2/publish/{destination}: a workflow message when it carries Upstash-Workflow-RunId."""
    wf = workflow_message(ctx.headers)
    if wf is None:
        return await plain.publish(ctx)
    dest = target(ctx, ctx.params["destination"])
    if dest.group is not None:
        raise BadRequest("path destination: a workflow message goes to a URL, not to a URL group")
    cmd = publish_command(ctx, dest)
    invoker = None
    if wf.invoke and wf.init:
        invoker, cmd.body = _invoker(ctx)
    result = ctx.sim.workflows.publish(ctx.caller, cmd, wf, invoker)
    body = wire.publish_results([result])[0]
    ids = [] if result.deduplicated else [result.message_id]
    return Reply(body, status=202 if result.deduplicated else 200, message_ids=ids, quantity=len(ids))


def _invoker(ctx: Ctx) -> tuple[Invoker, bytes]:
    """A ``context.invoke`` trigger's body, ``{"body", "headers", "workflowRunId", "workflowUrl",
    "workflowRunCreatedAt", "step"}``: the invoking run, and the invoked run's initial body."""
    try:
        req = json.loads(ctx.body)
    except ValueError:
        raise BadRequest("body: an invoke (Upstash-Workflow-Invoke: true) carries a JSON object") from None
    if not isinstance(req, dict):
        raise BadRequest("body: an invoke (Upstash-Workflow-Invoke: true) carries a JSON object")
    for key, kind in (("body", str), ("workflowRunId", str), ("workflowUrl", str), ("headers", dict), ("step", dict)):
        if not isinstance(req.get(key), kind):
            raise BadRequest(f"body /{key}: required, a {'string' if kind is str else 'JSON object'}")
    flat = {k: v[0] if isinstance(v, list) and v else v for k, v in req["headers"].items()}
    flat = {k: v for k, v in flat.items() if isinstance(v, str)}
    url = url_at(req["workflowUrl"], "body /workflowUrl")
    wf = workflow_message(flat, "body /headers")
    if wf is None:
        raise BadRequest("body /headers/Upstash-Workflow-RunId: required (the invoking run)")
    settings = parse_settings(url, flat, where="body /headers", warn=ctx.warn, dialect=QSTASH)
    created = req.get("workflowRunCreatedAt")
    invoker = Invoker(
        run_id=req["workflowRunId"],
        url=url,
        created_ms=created if isinstance(created, int) else 0,
        step=dict(req["step"]),
        settings=settings,
        wf=wf,
    )
    return invoker, req["body"].encode("utf-8")


async def batch(ctx: Ctx) -> Reply:
    """POST /v2/batch: every item checked first (workflow runs included), then all are published."""
    raw = ctx.json if isinstance(ctx.json, list) else []
    wfs = [
        workflow_message(item.get("headers") or {}, f"body /{i}/headers") if isinstance(item, dict) else None
        for i, item in enumerate(raw)
    ]
    if not any(wfs):
        return await plain.batch(ctx)
    items = batch_items(ctx, ctx.surface.contract.operation("qstash.publish"))
    for i, ((cmd, group), wf) in enumerate(zip(items, wfs, strict=True)):
        if group is None:
            ctx.sim.refuse_self(cmd.settings.url, f"body /{i}/destination")
        else:
            try:
                topics.get_url_group(ctx.sim, ctx.caller, group)
            except NotFound as exc:
                raise NotFound(f"body /{i}/destination: {exc.message}") from None
        if wf is not None:
            if group is not None:
                raise BadRequest(f"body /{i}/destination: a workflow message goes to a URL, not to a URL group")
            ctx.sim.workflows.check(ctx.caller, wf, f"body /{i}/headers/Upstash-Workflow-RunId")
    out: list[Any] = []
    ids: list[str] = []
    for (cmd, group), wf in zip(items, wfs, strict=True):
        results = _send(ctx, cmd, group, wf)
        bodies = wire.publish_results(results)
        out.append(bodies if group is not None else bodies[0])
        ids.extend(r.message_id for r in results if not r.deduplicated)
    return Reply(out, message_ids=ids, quantity=len(ids))


async def get_run(ctx: Ctx) -> Reply:
    """GET /v2/workflows/runs/{workflowRunId}: the log of a running run (404 once it ended)."""
    entries = ctx.sim.workflows.pending_log(ctx.caller, ctx.params["workflowRunId"])
    return Reply(raw_steps(entries))


def _run_view(run: WorkflowRun) -> dict[str, Any]:
    return {"workflowRunId": run.run_id, "workflowState": run.state.value}


async def end_run(ctx: Ctx) -> Reply:
    """DELETE /v2/workflows/runs/{workflowRunId}?cancel=: the run ends (its result) or is cancelled."""
    cancel = bool(ctx.query.get("cancel", False))
    run = ctx.sim.workflows.end(ctx.caller, ctx.params["workflowRunId"], cancel=cancel, body=ctx.body)
    return Reply(_run_view(run))


async def logs(ctx: Ctx) -> Reply:
    """GET /v2/workflows/events?groupBy=workflowRunId (and /v2/workflows/logs): runs, newest first."""
    q = ctx.query
    cursor_raw = q.get("cursor") or "0"
    if not str(cursor_raw).isdigit():
        raise BadRequest(f"query cursor: expected the cursor of an earlier answer, got {cursor_raw!r}")
    flt = LogFilter(
        run_id=q.get("workflowRunId"),
        url=q.get("workflowUrl"),
        state=q.get("state"),
        label=q.get("label"),
        created_at=q.get("workflowCreatedAt"),
        from_ms=q.get("fromDate"),
        to_ms=q.get("toDate"),
    )
    runs, more = run_logs(
        ctx.sim.workflows, ctx.caller.account, flt, count=q.get("count") or 10, cursor=int(cursor_raw)
    )
    return Reply({"cursor": "" if more is None else str(more), "runs": runs})


def _frozen(value: Any) -> frozenset[Any] | None:
    return frozenset(value) if value else None


async def cancel_runs(ctx: Ctx) -> Reply:
    """DELETE /v2/workflows/runs: by ``workflowRunIds``, by filters, or all (``count`` alone)."""
    q = ctx.query
    ids = list(q.get("workflowRunIds") or [])
    if not ids:
        flt = RunFilter(
            urls=_frozen(q.get("workflowUrl")),
            exact=bool(q.get("workflowUrlExactMatch")),
            labels=_frozen(q.get("label")),
            caller_ips=_frozen(q.get("callerIp")),
            flow_keys=_frozen(q.get("flowControlKey")),
            hosts=_frozen([str(h).lower() for h in q.get("host") or []]),
            paths=_frozen(q.get("path")),
            from_ms=q.get("fromDate"),
            to_ms=q.get("toDate"),
        )
        if flt.empty and flt.from_ms is None and flt.to_ms is None and q.get("count") is None:
            raise BadRequest(
                "query: name the runs to cancel: workflowRunIds (repeated), a filter (workflowUrl, label, "
                "fromDate, ...) or count alone for every running run"
            )
        ids = running_matching(ctx.sim.workflows, ctx.caller.account, flt, int(q.get("count") or 100))
    return Reply({"cancelled": ctx.sim.workflows.cancel_runs(ctx.caller, ids)})
