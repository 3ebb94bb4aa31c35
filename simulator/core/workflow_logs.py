"""Workflow run logs (``client.logs``, ``GET /v2/workflows/events?groupBy=workflowRunId``): a projection of
the runs the core keeps, in QStash's ``WorkflowRunLogs`` shape.

Each run: ``workflowRunId``, ``workflowUrl``, ``workflowState``, ``workflowRunCreatedAt``,
``workflowRunCompletedAt``, ``workflowRunResponse``, ``label``/``labels`` and ``steps``, a list of groups:
``{"type": "sequential", "steps": [StepLog]}`` for the initial body and each step, ``{"type": "parallel",
"steps": [...]}`` for the results of one ``Promise.all`` (plan steps are not listed), and last, while the run
has undelivered messages, ``{"type": "next", "steps": [{"messageId", "stepName"?, "state", "retries"}]}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qstash_sim.domain.message import FINAL_STATES, MessageState
from qstash_sim.domain.workflow import LogEntry, WorkflowRun

if TYPE_CHECKING:
    from qstash_sim.core.workflow import Workflows

__all__ = ["LogFilter", "run_logs"]

_COPIED = ("sleepFor", "sleepUntil", "waitEventId", "waitTimeout", "targetStep")


@dataclass(frozen=True, slots=True)
class LogFilter:
    """Which runs a log request selects (every field optional)."""

    run_id: str | None = None
    url: str | None = None
    state: str | None = None
    label: str | None = None
    created_at: int | None = None
    from_ms: int | None = None
    to_ms: int | None = None

    def matches(self, run: WorkflowRun) -> bool:
        return (
            self.run_id in (None, run.run_id)
            and self.url in (None, run.url)
            and self.state in (None, run.state.value)
            and (self.label is None or self.label in run.labels)
            and self.created_at in (None, run.created_ms)
            and (self.from_ms is None or run.created_ms >= self.from_ms)
            and (self.to_ms is None or run.created_ms <= self.to_ms)
        )


def _text(data: bytes) -> str:
    return data.decode("utf-8", errors="replace")


def _step_log(run: WorkflowRun, entry: LogEntry, step: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stepId": step.get("stepId", 0),
        "stepName": step.get("stepName", ""),
        "stepType": step.get("stepType", ""),
        "callType": entry.call_type,
        "messageId": entry.message_id,
        "out": step.get("out") if isinstance(step.get("out"), str) else json.dumps(step.get("out")),
        "retries": run.retries,
        "concurrent": step.get("concurrent", 1),
        "state": "STEP_SUCCESS",
        "createdAt": entry.time_ms,
        "headers": {},
    }
    out.update({k: step[k] for k in _COPIED if step.get(k) is not None})
    return out


def _groups(run: WorkflowRun) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    if run.log:
        first = run.log[0]
        initial = {"stepId": 0, "stepName": "init", "stepType": "Initial", "out": _text(first.body), "concurrent": 1}
        groups.append({"type": "sequential", "steps": [_step_log(run, first, initial)]})
    parallel: dict[str, Any] | None = None
    for entry in run.log[1:]:
        if entry.call_type != "step":
            continue  # a context.call's request: its result is the Call step
        try:
            step = json.loads(entry.body)
        except ValueError:
            continue
        if not isinstance(step, dict) or (step.get("stepId") == 0 and "targetStep" in step):
            continue  # a parallel plan step
        if int(step.get("concurrent") or 1) > 1:
            if parallel is None:
                parallel = {"type": "parallel", "steps": []}
                groups.append(parallel)
            parallel["steps"].append(_step_log(run, entry, step))
            if len(parallel["steps"]) >= int(step["concurrent"]):
                parallel = None
            continue
        parallel = None
        groups.append({"type": "sequential", "steps": [_step_log(run, entry, step)]})
    return groups


def _next(workflows: Workflows, run: WorkflowRun) -> dict[str, Any] | None:
    acc = workflows.core.world.accounts.find(run.account)
    logged = {e.message_id for e in run.log}
    pending: list[dict[str, Any]] = []
    for mid in run.message_ids:
        msg = acc.messages.get(mid) if acc is not None else None
        if msg is None or msg.state in FINAL_STATES or mid in logged:
            continue
        item: dict[str, Any] = {
            "messageId": mid,
            "state": "STEP_RETRY" if msg.state is MessageState.RETRY else "STEP_PROGRESS",
            "retries": msg.max_retries,
        }
        name = workflows.step_name(run.account, mid)
        if name is not None:
            item["stepName"] = name
        pending.append(item)
    return {"type": "next", "steps": pending} if pending else None


def _view(workflows: Workflows, run: WorkflowRun) -> dict[str, Any]:
    view: dict[str, Any] = {
        "workflowRunId": run.run_id,
        "workflowUrl": run.url,
        "workflowState": run.state.value,
        "workflowRunCreatedAt": run.created_ms,
        "steps": _groups(run),
    }
    if not run.finished:
        nxt = _next(workflows, run)
        if nxt is not None:
            view["steps"].append(nxt)
    if run.completed_ms is not None:
        view["workflowRunCompletedAt"] = run.completed_ms
    if run.response is not None:
        view["workflowRunResponse"] = _text(run.response)
    if run.labels:
        view["label"], view["labels"] = run.labels[0], list(run.labels)
    if run.dlq_id is not None:
        view["dlqId"] = run.dlq_id  # its workflow DLQ entry (while the run failed)
    return view


def run_logs(
    workflows: Workflows, account: str, flt: LogFilter, *, count: int, cursor: int
) -> tuple[list[dict[str, Any]], int | None]:
    """The selected runs of ``account``, newest first, from offset ``cursor``: ``(runs, next cursor)``."""
    chosen = [r for r in reversed(workflows.all_runs(account)) if flt.matches(r)]
    page = chosen[cursor : cursor + count]
    more = cursor + count if cursor + count < len(chosen) else None
    return [_view(workflows, r) for r in page], more
