"""Upstash Workflow runs on the engine (native QStash ``/v2``): trigger, step log, delivery, end, cancel.

The server side of the protocol ``@upstash/workflow`` and ``upstash-workflow`` speak:

* A message with ``Upstash-Workflow-Init: true`` and ``Upstash-Workflow-RunId`` creates the run (the same
  id again answers the first message's id with ``deduplicated: true``). Its delivery carries the log
  ``[initial body]``.
* Every later message of the run with call type ``step`` (a ``context.run`` result, a sleep with
  ``Upstash-Delay``/``Upstash-Not-Before``, a parallel plan step) joins the log **when it is delivered**
  and is delivered with the log up to and including itself: ``[{"messageId", "body" (base64),
  "callType"}, ...]``. A sleep of seven days is seven days on the virtual clock.
* ``WF_TriggerOnConfig`` (JS 1.3.3): the trigger's retries, retry delay and forwarded headers apply to
  every step message of the run (the SDK sends them on the trigger only).
* Deliveries carry ``Upstash-Workflow-RunId``, ``-Url``, ``-CreatedAt``, ``Upstash-Label`` and what the
  run forwards (``Upstash-Workflow-Sdk-Version`` among them), besides every delivery's headers.
* The SDK ends a run with ``DELETE /v2/workflows/runs/{id}?cancel=false`` (its return value as the
  body) and ``context.cancel()`` with ``?cancel=true``; a step published to a finished run answers 400,
  which the SDK reads as "the workflow was finished". A message that fails for good fails its run, and
  the run goes to the workflow DLQ (:mod:`qstash_sim.core.workflow_dlq`: resume, restart).
* A REST trigger (``POST /v2/trigger``, the API edge fills in the SDK's headers) marks its run
  ``rest_trigger``: ``"sdk"`` fails if the endpoint's answer has no ``Upstash-Workflow-Sdk: v1...``;
  ``"unknown-sdk"`` waits for the SDK's own trigger of the run id (``upstash-workflow-trigger-by-sdk``).

Bounded: at most :data:`MAX_RUNS` runs (the oldest finished go first; 412 when every kept run is still
running) and :data:`MAX_STEPS_PER_RUN` messages per run (412).
"""

from __future__ import annotations

import base64
import copy
import json
from typing import TYPE_CHECKING

from qstash_sim.core.callbacks import callback_body
from qstash_sim.core.workflow_dlq import WorkflowDlq
from qstash_sim.core.workflow_wait import Waits
from qstash_sim.domain.commands import Caller, MessageSettings, PublishCommand, PublishResult
from qstash_sim.domain.message import FINAL_STATES, EventState, Message
from qstash_sim.domain.workflow import (
    MAX_RUNS,
    MAX_STEPS_PER_RUN,
    Invoker,
    LogEntry,
    RunState,
    WorkflowMessage,
    WorkflowRun,
)
from qstash_sim.engine.transport import Outcome
from qstash_sim.errors import ApiError, BadRequest, NotFound

if TYPE_CHECKING:
    from qstash_sim.core.service import SimulatorCore

__all__ = ["NON_WORKFLOW_ERROR", "REST_SDK_ERROR", "Workflows", "raw_steps"]

NON_WORKFLOW_ERROR = (
    "detected a non-workflow destination for trigger/invoke. make sure you are sending the request to the "
    "correct endpoint"
)
REST_SDK_ERROR = "trigger rest api is only usable with sdk versions after v1.0.0 major version"
_STEP = "step"
_CALL = "toCallback"


def _callback_headers(headers: dict[str, str], run: WorkflowRun) -> dict[str, str]:
    """The headers a ``context.call``'s callback (or the run's failure callback) is delivered with (the
    nested-prefix rule).

    ``Upstash-Callback-Workflow-RunId`` and its siblings configure the callback message as a message of
    the run: it is delivered with ``Upstash-Workflow-RunId`` (and the run's forwarded headers and labels),
    never with ``Upstash-Workflow-Sdk-Version`` (the SDK reads a callback as a first invocation). What
    ``Upstash-Callback-Forward-*`` names (``Upstash-Workflow-Callback``, ``-StepId``, ...) is kept."""
    out = {k: v for k, v in run.headers.items() if k.lower() != "upstash-workflow-sdk-version"}
    for name, value in headers.items():
        low = name.lower()
        if low == "workflow-runid":
            out["Upstash-Workflow-RunId"] = value
        elif not low.startswith("workflow-") and low != "feature-set":
            out[name] = value
    if run.labels:
        out["Upstash-Label"] = ",".join(run.labels)
    return out


def raw_steps(entries: list[LogEntry]) -> list[dict[str, str]]:
    """The ``RawStep[]`` the SDK reads: ``[{"messageId", "body" (base64), "callType"}, ...]``."""
    return [
        {"messageId": e.message_id, "body": base64.b64encode(e.body).decode("ascii"), "callType": e.call_type}
        for e in entries
    ]


def _sdk_v1(outcome: Outcome) -> bool:
    """The endpoint answered with ``Upstash-Workflow-Sdk: v1...`` or later (``@upstash/workflow`` >= 1.0)."""
    version = (outcome.header("Upstash-Workflow-Sdk") or "").strip().lstrip("vV")
    major = version.split(".", 1)[0]
    return major.isdigit() and int(major) >= 1


class Workflows:
    """Every workflow run of one simulator, and the engine hooks that deliver them."""

    def __init__(self, core: SimulatorCore, *, max_runs: int = MAX_RUNS, max_steps: int = MAX_STEPS_PER_RUN) -> None:
        self.core = core
        self.max_runs = max_runs
        self.max_steps = max_steps
        self.runs: dict[tuple[str, str], WorkflowRun] = {}  # (account, run id), oldest first
        self._messages: dict[tuple[str, str], tuple[WorkflowRun, WorkflowMessage, bytes]] = {}
        self.evicted = 0
        self.waits = Waits(self)  # context.waitForEvent and notify
        self.dlq = WorkflowDlq(self)  # runs that failed: client.dlq
        core.engine.before_attempt = self._before_attempt
        core.engine.lanes.lane_of = self._lane_of  # a run's deliveries go one at a time (engine/lanes.py)
        chained = core.engine.on_attempt

        def on_attempt(msg: Message, outcome: Outcome, failed: bool) -> None:
            if chained is not None:
                chained(msg, outcome, failed)
            self._after_attempt(msg, outcome, failed)

        core.engine.on_attempt = on_attempt

    def reset(self) -> None:
        """Forget every run (with ``core.reset()``)."""
        self.runs.clear()
        self._messages.clear()
        self.evicted = 0
        self.waits.reset()
        self.dlq.reset()

    # ------------------------------------------------------------------ reading

    def run(self, run_id: str, account: str | None = None) -> WorkflowRun:
        """A run by id (of ``account``, or of any account when ``None``), or 404."""
        if account is not None:
            found = self.runs.get((account, run_id))
        else:
            found = next((r for (_, rid), r in self.runs.items() if rid == run_id), None)
        if found is None:
            raise NotFound(f"workflow run {run_id} not found")
        return found

    def all_runs(self, account: str | None = None) -> list[WorkflowRun]:
        """Every run kept (of one account, or of all), oldest first."""
        return [r for (acc, _), r in self.runs.items() if account is None or acc == account]

    def step_name(self, account: str, message_id: str) -> str | None:
        """The ``stepName`` a run's message carries (its step JSON as published), if any."""
        found = self._messages.get((account, message_id))
        if found is None or found[1].init:
            return None
        try:
            step = json.loads(found[2])
        except ValueError:
            return None
        name = step.get("stepName") if isinstance(step, dict) else None
        return name if isinstance(name, str) else None

    def message_body(self, account: str, message_id: str) -> bytes | None:
        """The body a run's message was published with (its step JSON), if it is a message of a kept run."""
        found = self._messages.get((account, message_id))
        return None if found is None else found[2]

    def pending_log(self, caller: Caller, run_id: str) -> list[LogEntry]:
        """The log of a running run (the SDK's lazy fetch); 404 once it ended (or if unknown)."""
        run = self.runs.get((caller.account, run_id))
        if run is None or run.finished:
            raise NotFound(f"workflow run {run_id} not found" if run is None else f"workflow run {run_id} has ended")
        return list(run.log)

    # ------------------------------------------------------------------ publishing

    def check(
        self, caller: Caller, wf: WorkflowMessage, where: str = "header Upstash-Workflow-RunId"
    ) -> WorkflowRun | None:
        """The run a step message joins (400 if it does not exist or ended, 412 if it is full); ``None`` for
        a trigger. Nothing changes: a batch checks every item first."""
        if wf.init:
            return None
        run = self.runs.get((caller.account, wf.run_id))
        if run is None or run.finished:
            state = "does not exist" if run is None else f"has finished ({run.state.value})"
            raise BadRequest(f"{where}: workflow run {wf.run_id} {state}")
        if len(run.message_ids) >= self.max_steps:
            raise ApiError(
                f"workflow run {wf.run_id} has published {self.max_steps} messages, the most one run may", status=412
            )
        return run

    def publish(
        self, caller: Caller, cmd: PublishCommand, wf: WorkflowMessage, invoker: Invoker | None = None
    ) -> PublishResult:
        """Accept one message of a run: a trigger creates the run, a step joins it (400 if it ended).

        ``invoker``: the trigger is a ``context.invoke`` of that run; ``cmd.body`` is then the invoked run's
        initial body, and the invoker gets the ``Invoke`` result step when the run ends."""
        run = self.check(caller, wf)
        if run is None:
            return self._trigger(caller, cmd, wf, invoker)
        if run.trigger_on_config and wf.call_type == _STEP:
            s = cmd.settings
            if not wf.retries_given:
                s.retries = run.retries
            if not wf.retry_delay_given:
                s.retry_delay_expr = run.retry_delay_expr
            own = {k.lower() for k in s.headers}
            s.headers = {**{k: v for k, v in run.headers.items() if k.lower() not in own}, **s.headers}
            if not s.labels:
                s.labels = list(run.labels)
        return self._publish(caller, cmd, run, wf)

    def _trigger(
        self, caller: Caller, cmd: PublishCommand, wf: WorkflowMessage, invoker: Invoker | None
    ) -> PublishResult:
        key = (caller.account, wf.run_id)
        old = self.runs.get(key)
        if old is not None and wf.trigger_by_sdk and old.rest_trigger == "unknown-sdk" and not old.finished:
            return self._adopt(caller, cmd, wf, old)
        if old is not None:
            return PublishResult(old.trigger_message_id, old.url, deduplicated=True)
        self._make_room(wf.run_id)
        s = cmd.settings
        run = WorkflowRun(
            run_id=wf.run_id,
            account=caller.account,
            url=s.url,
            created_ms=self.core.world.now,
            initial_body=cmd.body,
            content_type=s.content_type,
            trigger_message_id="",
            feature_set=wf.feature_set,
            retries=s.retries,
            retry_delay_expr=s.retry_delay_expr,
            headers=dict(s.headers),
            labels=list(s.labels),
            failure_callback=s.failure_callback,
            invoker=invoker,
        )
        s.failure_callback = None  # the run's (called when the run fails), not the trigger message's
        self.runs[key] = run
        try:
            result = self._publish(caller, cmd, run, wf)
        except ApiError:
            del self.runs[key]
            raise
        return self._started(run, result)

    def _started(self, run: WorkflowRun, result: PublishResult) -> PublishResult:
        """``run`` started with ``result``, its first message: journalled as ``RUN_STARTED``."""
        run.trigger_message_id = result.message_id
        self.core.world.journal.add(
            run.created_ms,
            "workflow",
            account=run.account,
            message_id=result.message_id,
            url=run.url,
            detail={"workflowRunId": run.run_id, "event": "RUN_STARTED"},
        )
        return result

    def start(self, caller: Caller, run: WorkflowRun, cmd: PublishCommand, wf: WorkflowMessage) -> PublishResult:
        """Start ``run``, a new run made elsewhere (a resume from the workflow DLQ: its log already holds
        the steps that succeeded), with ``cmd``, its first message (a step message of it)."""
        key = (caller.account, run.run_id)
        self._make_room(run.run_id)
        self.runs[key] = run
        try:
            result = self.publish(caller, cmd, wf)
        except ApiError:
            del self.runs[key]
            raise
        return self._started(run, result)

    def _adopt(self, caller: Caller, cmd: PublishCommand, wf: WorkflowMessage, run: WorkflowRun) -> PublishResult:
        """The SDK's own trigger of a run a REST trigger with ``Upstash-Workflow-Unknown-Sdk`` started
        (``upstash-workflow-trigger-by-sdk: true``): its headers configure the run (what it does not set
        stays the REST trigger's), and the run starts again from its initial body."""
        s = cmd.settings
        run.rest_trigger, run.feature_set = "adopted", wf.feature_set
        run.retries = s.retries if wf.retries_given else run.retries
        run.retry_delay_expr = s.retry_delay_expr if wf.retry_delay_given else run.retry_delay_expr
        s.retries, s.retry_delay_expr = run.retries, run.retry_delay_expr
        run.headers, run.labels = dict(s.headers), list(s.labels) or run.labels
        run.failure_callback = s.failure_callback or run.failure_callback
        s.failure_callback = None
        run.log.clear()  # the Unknown-Sdk delivery's log entry: the SDK's trigger is the run's first message
        result = self._publish(caller, cmd, run, wf)
        run.trigger_message_id = result.message_id
        return result

    def _publish(self, caller: Caller, cmd: PublishCommand, run: WorkflowRun, wf: WorkflowMessage) -> PublishResult:
        s = cmd.settings
        if wf.call_type == _STEP:
            s.failure_callback = None
            s.headers["Upstash-Workflow-RunId"] = run.run_id
            s.headers["Upstash-Workflow-Url"] = run.url
            s.headers["Upstash-Workflow-CreatedAt"] = str(run.created_ms)
            if s.labels:
                s.headers["Upstash-Label"] = ",".join(s.labels)
        elif wf.call_type == _CALL and s.callback is not None:
            s.callback.headers = _callback_headers(s.callback.headers, run)
        result = self.core.publish(caller, cmd)
        if not result.deduplicated:
            run.message_ids.append(result.message_id)
            self._messages[(caller.account, result.message_id)] = (run, wf, cmd.body)
        return result

    def _make_room(self, run_id: str) -> None:
        if len(self.runs) < self.max_runs:
            return
        oldest = next((k for k, r in self.runs.items() if r.finished), None)
        if oldest is None:
            raise ApiError(
                f"header Upstash-Workflow-RunId: cannot start run {run_id}: {self.max_runs} runs are still "
                "running, the most the simulator keeps",
                status=412,
            )
        self._forget(self.runs.pop(oldest))
        self.evicted += 1

    def _forget(self, run: WorkflowRun) -> None:
        for mid in run.message_ids:
            self._messages.pop((run.account, mid), None)

    # ------------------------------------------------------------------ end and cancel

    def end(self, caller: Caller, run_id: str, *, cancel: bool, body: bytes) -> WorkflowRun:
        """The SDK's ``DELETE /v2/workflows/runs/{id}``: success (its result) or cancel; 404 if it ended."""
        run = self.runs.get((caller.account, run_id))
        if run is None or run.finished:
            raise NotFound(f"workflow run {run_id} not found" if run is None else f"workflow run {run_id} has ended")
        if cancel:
            self._finish(run, RunState.CANCELED)
        else:
            run.response = body
            self._finish(run, RunState.SUCCESS)
        return run

    def cancel_runs(self, caller: Caller, run_ids: list[str]) -> int:
        """Cancel the given running runs of the caller's account; returns how many (unknown ones skipped)."""
        cancelled = 0
        for rid in run_ids:
            run = self.runs.get((caller.account, rid))
            if run is not None and not run.finished:
                self._finish(run, RunState.CANCELED)
                cancelled += 1
        return cancelled

    def _finish(self, run: WorkflowRun, state: RunState, error: str | None = None) -> None:
        now = self.core.world.now
        run.state, run.completed_ms, run.error = state, now, error
        self.waits.drop_run(run)
        if run.invoker is not None:
            self._invoke_result(run, run.invoker)
        acc = self.core.account(run.account)
        for mid in run.message_ids:
            msg = acc.messages.get(mid)
            if msg is None or msg.state in FINAL_STATES:
                continue
            if msg.history and msg.history[-1].state is EventState.ACTIVE:
                continue  # the delivery that is ending the run: let its answer count
            self.core.engine.cancel(msg)
        self.core.world.journal.add(
            now,
            "workflow",
            account=run.account,
            url=run.url,
            error=error,
            detail={"workflowRunId": run.run_id, "event": state.value},
        )

    def _invoke_result(self, run: WorkflowRun, invoker: Invoker) -> None:
        """The invoked ``run`` ended: its invoker gets the ``Invoke`` step (the run's result, or failed or
        cancelled)."""
        out: dict[str, object] = {}
        if run.state is RunState.SUCCESS:
            out["body"] = (run.response or b"").decode("utf-8", errors="replace")
        out["isFailed"] = run.state is RunState.FAILED
        out["isCanceled"] = run.state is RunState.CANCELED
        step = {**invoker.step, "out": json.dumps(out, separators=(",", ":"))}
        body = json.dumps(step, separators=(",", ":")).encode()
        cmd = PublishCommand(copy.deepcopy(invoker.settings), body)
        try:
            self.publish(Caller(account=run.account), cmd, invoker.wf)
        except ApiError as exc:  # the invoker ended meanwhile
            self.core.world.journal.warn(
                self.core.world.now, f"invoke result of run {run.run_id} not sent: {exc.message}", account=run.account
            )

    # ------------------------------------------------------------------ engine hooks

    def _lane_of(self, msg: Message) -> tuple[str, str] | None:
        """The lane of a run's message: its run (one delivery of a run at a time); ``None`` for the others."""
        found = self._messages.get((msg.account, msg.message_id))
        return None if found is None else (msg.account, found[0].run_id)

    def _before_attempt(self, msg: Message) -> None:
        """Before each attempt of a run's message: the log up to it becomes the body (appended once)."""
        found = self._messages.get((msg.account, msg.message_id))
        if found is None:
            return
        run, wf, body = found
        index = next((i for i, e in enumerate(run.log) if e.message_id == msg.message_id), None)
        if index is None and wf.call_type in (_STEP, _CALL):
            now = self.core.world.now
            entry_body = run.initial_body if wf.init else body
            run.log.append(LogEntry(msg.message_id, entry_body, wf.call_type, now))
            index = len(run.log) - 1
        if wf.call_type != _STEP or index is None:
            return  # a context.call's request goes to the third party as it was published
        msg.body = json.dumps(raw_steps(run.log[: index + 1]), separators=(",", ":")).encode()

    def _after_attempt(self, msg: Message, outcome: Outcome, failed: bool) -> None:
        found = self._messages.get((msg.account, msg.message_id))
        if found is None:
            return
        run, wf, _ = found
        if run.finished:
            return
        if (
            wf.init
            and outcome.ok
            and "WF_DetectTrigger" in run.feature_set
            and outcome.header("Upstash-Workflow-Sdk-Version") is None
        ):
            self._finish(run, RunState.FAILED, NON_WORKFLOW_ERROR)
        elif wf.init and outcome.ok and run.rest_trigger == "sdk" and not _sdk_v1(outcome):
            self._finish(run, RunState.FAILED, REST_SDK_ERROR)
        elif failed and wf.call_type == _STEP:  # a call that failed for good still calls back (WF_NoDelete)
            status = outcome.status if outcome.status is not None else outcome.error
            self._finish(run, RunState.FAILED, f"message {msg.message_id} failed for good ({status})")
            self._failure_callback(run, msg, outcome)
            self.dlq.add(run, msg, wf, found[2])

    def _failure_callback(self, run: WorkflowRun, msg: Message, outcome: Outcome) -> None:
        """The run's failure function (``Upstash-Failure-Callback`` of its trigger), called once it failed:
        QStash's failure-callback body with the run's initial body as ``sourceBody``."""
        cb = run.failure_callback
        if cb is None:
            return
        payload = callback_body(msg, outcome, msg.dlq_id)
        payload["sourceBody"] = base64.b64encode(run.initial_body).decode("ascii")
        payload["url"] = run.url
        payload["workflowRunId"] = run.run_id
        payload["workflowCreatedAt"] = run.created_ms
        headers = _callback_headers(cb.headers, run)
        settings = MessageSettings(
            url=cb.url,
            method=cb.method,
            content_type="application/json",
            headers=headers,
            retries=cb.retries if cb.retries is not None else run.retries,
            retry_delay_expr=cb.retry_delay_expr if cb.retry_delay_expr is not None else run.retry_delay_expr,
        )
        body = json.dumps(payload, separators=(",", ":")).encode()
        try:
            result = self.core.publish(Caller(account=run.account), PublishCommand(settings, body))
        except ApiError as exc:
            self.core.world.journal.warn(
                self.core.world.now,
                f"failure function of run {run.run_id} not called: {exc.message}",
                account=run.account,
            )
            return
        run.failure_message_id = result.message_id
