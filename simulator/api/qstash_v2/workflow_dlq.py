"""The workflow DLQ on the wire (``@upstash/workflow`` 1.3.3 ``client.dlq``): ``GET /v2/dlq?source=workflow``
(what ``dlq.list`` sends; ``GET /v2/workflows/dlq`` is the documented path), ``GET|DELETE
/v2/workflows/dlq/{dlqId}``, ``DELETE /v2/workflows/dlq`` (``dlq.delete``), ``POST
/v2/workflows/dlq/resume|restart`` (``dlq.resume``/``dlq.restart``) and ``POST
/v2/workflows/dlq/callback/{dlqId}`` (``dlq.retryFailureFunction``). The store is
:class:`qstash_sim.core.workflow_dlq.WorkflowDlq`.

Bulk calls take ``dlqIds`` (repeated), the list's filters, or ``count`` alone (``{all: true}``); neither is a
400, never "everything" by accident.
"""

from __future__ import annotations

import base64
from typing import Any

from qstash_sim.api.qstash_v2 import dlq as plain
from qstash_sim.api.qstash_v2 import wire
from qstash_sim.api.qstash_v2.config import retry_overrides
from qstash_sim.api.qstash_v2.selection import filter_of
from qstash_sim.api.qstash_v2.workflow_trigger import iso_ms
from qstash_sim.core import dlq as core_dlq
from qstash_sim.core.filters import unique
from qstash_sim.core.workflow_dlq import DlqFilter, DlqSelection, Overrides, WorkflowDlqEntry, failure_state
from qstash_sim.domain.message import DlqEntry
from qstash_sim.domain.workflow import WorkflowRun
from qstash_sim.errors import BadRequest
from qstash_sim.http.surface import Ctx, Reply

__all__ = [
    "delete_entries",
    "delete_entry",
    "dlq_message",
    "get_entry",
    "list_dlq",
    "list_entries",
    "restart",
    "restart_one",
    "resume",
    "resume_one",
    "retry_failure_function",
]

_FILTERS = (
    "workflowUrl",
    "workflowRunId",
    "workflowCreatedAt",
    "failureFunctionState",
    "url",
    "label",
    "flowControlKey",
    "callerIp",
    "responseStatus",
    "fromDate",
    "toDate",
)


def _text(data: bytes) -> dict[str, str]:
    try:
        return {"body": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"bodyBase64": base64.b64encode(data).decode("ascii")}


def dlq_message(ctx: Ctx, e: WorkflowDlqEntry) -> dict[str, Any]:
    """``PublicDLQMessage``: the failed message and its last answer, the run, the failure function."""
    response = e.response or DlqEntry(e.dlq_id, e.message, e.created_ms, None, {}, b"")
    out = wire.dlq_entry(response)
    out.pop("bodyBase64", None)
    run = e.run
    out.update(_text(run.initial_body))  # the run's payload, not the log the failed delivery carried
    out.update(workflowRunId=run.run_id, workflowUrl=run.url, workflowCreatedAt=run.created_ms)
    if run.labels:
        out["label"], out["labels"] = run.labels[0], list(run.labels)
    if run.failure_callback is not None:
        out["failureCallback"] = run.failure_callback.url
    if e.failure is not None:
        info: dict[str, Any] = {"state": failure_state(e)}
        last = next((h for h in reversed(e.failure.history) if h.response_status is not None), None)
        if last is not None:
            info["responseStatus"] = last.response_status
        acc = ctx.sim.world.accounts.find(run.account)
        failed = acc.dlq.get(e.failure.dlq_id) if acc is not None and e.failure.dlq_id else None
        if failed is not None:
            info["responseBody"] = failed.response_body.decode("utf-8", errors="replace")
            info["responseHeaders"] = {k: list(v) for k, v in failed.response_headers.items()}
        out["failureCallbackInfo"] = info
    return out


def _selection(ctx: Ctx, *, bulk: bool) -> DlqSelection:
    q = ctx.query
    if q.get("dlqIds"):
        return DlqSelection(ids=list(unique(list(q["dlqIds"]))))
    if bulk and q.get("count") is None and not any(q.get(k) is not None for k in _FILTERS):
        raise BadRequest(
            "query: name the entries: dlqIds, a filter (workflowUrl, workflowRunId, label, fromDate, ...), "
            "or count alone for all of them"
        )
    urls = q.get("workflowUrl")
    flt = DlqFilter(
        base=filter_of(ctx, message_id_keys=()),
        workflow_urls=frozenset(urls) if urls else None,
        run_id=q.get("workflowRunId"),
        created_at=q.get("workflowCreatedAt"),
        failure_state=q.get("failureFunctionState"),
    )
    return DlqSelection(filter=flt)


def _page(ctx: Ctx, *, bulk: bool, strict: bool = False) -> tuple[list[WorkflowDlqEntry], str | None]:
    count = int(ctx.query.get("count") or core_dlq.MAX_PAGE)
    if not bulk:
        count = min(count, core_dlq.MAX_PAGE)
    sel = _selection(ctx, bulk=bulk)
    return ctx.sim.workflows.dlq.page(ctx.caller, sel, cursor=ctx.query.get("cursor"), count=count, strict=strict)


def _with_cursor(body: dict[str, Any], cursor: str | None) -> dict[str, Any]:
    if cursor is not None:
        body["cursor"] = cursor
    return body


async def list_entries(ctx: Ctx) -> Reply:
    """GET /v2/workflows/dlq (and /v2/dlq?source=workflow): ``{"messages": [...], "cursor"?}``, oldest first."""
    entries, cursor = _page(ctx, bulk=False)
    return Reply(_with_cursor({"messages": [dlq_message(ctx, e) for e in entries]}, cursor))


async def list_dlq(ctx: Ctx) -> Reply:
    """GET /v2/dlq: the workflow DLQ with ``source=workflow``, QStash's DLQ otherwise."""
    if ctx.query.get("source") == "workflow":
        return await list_entries(ctx)
    return await plain.list_dlq(ctx)


async def get_entry(ctx: Ctx) -> Reply:
    """GET /v2/workflows/dlq/{dlqId}"""
    return Reply(dlq_message(ctx, ctx.sim.workflows.dlq.get(ctx.caller, ctx.params["dlqId"])))


async def delete_entry(ctx: Ctx) -> Reply:
    """DELETE /v2/workflows/dlq/{dlqId}: a second delete of the same id is 404."""
    store = ctx.sim.workflows.dlq
    return Reply({"deleted": store.delete(ctx.caller, [store.get(ctx.caller, ctx.params["dlqId"])])})


async def delete_entries(ctx: Ctx) -> Reply:
    """DELETE /v2/workflows/dlq: by ids, by filters or all (at most ``count``, with a cursor)."""
    entries, cursor = _page(ctx, bulk=True)
    return Reply(_with_cursor({"deleted": ctx.sim.workflows.dlq.delete(ctx.caller, entries)}, cursor))


def _runs(runs: list[WorkflowRun]) -> list[dict[str, str]]:
    return [{"workflowRunId": r.run_id, "workflowCreatedAt": iso_ms(r.created_ms)} for r in runs]


def _overrides(ctx: Ctx) -> Overrides:
    found = retry_overrides(ctx)
    return Overrides(retries=found.get("retries"), flow_control=found.get("flow_control"))


async def resume(ctx: Ctx) -> Reply:
    """POST /v2/workflows/dlq/resume: a new run per entry, from the failed step."""
    entries, cursor = _page(ctx, bulk=True, strict=True)
    runs = ctx.sim.workflows.dlq.resume(ctx.caller, entries, _overrides(ctx))
    return Reply(_with_cursor({"workflowRuns": _runs(runs)}, cursor))


async def restart(ctx: Ctx) -> Reply:
    """POST /v2/workflows/dlq/restart: a new run per entry, from the beginning."""
    entries, cursor = _page(ctx, bulk=True, strict=True)
    runs = ctx.sim.workflows.dlq.restart(ctx.caller, entries, _overrides(ctx))
    return Reply(_with_cursor({"workflowRuns": _runs(runs)}, cursor))


async def resume_one(ctx: Ctx) -> Reply:
    """POST /v2/workflows/dlq/resume/{dlqId}: ``{"workflowRunId", "workflowCreatedAt"}`` of the new run."""
    store = ctx.sim.workflows.dlq
    (run,) = store.resume(ctx.caller, [store.get(ctx.caller, ctx.params["dlqId"])], _overrides(ctx))
    return Reply(_runs([run])[0])


async def restart_one(ctx: Ctx) -> Reply:
    """POST /v2/workflows/dlq/restart/{dlqId}: ``{"workflowRunId", "workflowCreatedAt"}`` of the new run."""
    store = ctx.sim.workflows.dlq
    (run,) = store.restart(ctx.caller, [store.get(ctx.caller, ctx.params["dlqId"])], _overrides(ctx))
    return Reply(_runs([run])[0])


async def retry_failure_function(ctx: Ctx) -> Reply:
    """POST /v2/workflows/dlq/callback/{dlqId}: the failure function once more (it failed for good)."""
    e = ctx.sim.workflows.dlq.retry_failure(ctx.caller, ctx.params["dlqId"])
    ids = [e.failure.message_id] if e.failure is not None else []
    return Reply(
        {"workflowRunId": e.run.run_id, "workflowCreatedAt": iso_ms(e.run.created_ms)}, message_ids=ids, quantity=0
    )
