"""A workflow run as a test reads it: its state and one line per step, for the pytest helpers
(``qstash_sim.workflow_run(id)``) and the control plane (``GET /_sim/workflows/runs/{runId}``).

The steps are the run's log as the SDK wrote it, in log order: ``init`` (the initial body, type
``Initial``), then each result step (``context.run``, a sleep once it ended, a ``Call`` result, a ``Wait``
result; parallel plan steps and a ``context.call``'s outbound request are left out, as in ``client.logs``),
then the run's messages not delivered yet (a sleep still sleeping, a call still retrying), each with its
state (a ``context.waitForEvent`` still waiting has no message yet: it is in ``waiting``, not a step):

* ``STEP_SUCCESS``: in the log (its result is what the SDK replays);
* ``STEP_PROGRESS``: published, not delivered yet (a sleep, a wait's timeout, a call on its way: a
  ``context.call`` is pending until its third party has answered for good, then its ``Call`` result is
  logged);
* ``STEP_RETRY``: its last attempt failed and another one is scheduled;
* ``STEP_FAILED`` / ``STEP_CANCELED``: a message that never joined the log and failed for good, or was
  cancelled (with its run).

``out`` is the step's result decoded from the JSON text the SDKs log (``out_raw``), e.g. ``15`` for
``"15"``; text that is not JSON stays text. Times are virtual ms.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qstash_sim.domain.message import FINAL_STATES, EventState, Message, MessageState
from qstash_sim.domain.workflow import LogEntry, Waiter, WorkflowRun

if TYPE_CHECKING:
    from qstash_sim.core.workflow import Workflows

__all__ = ["WorkflowRunView", "WorkflowStep", "run_view"]

_PENDING = {
    MessageState.PENDING: "STEP_PROGRESS",
    MessageState.RETRY: "STEP_RETRY",
    MessageState.FAILED: "STEP_FAILED",
    MessageState.CANCELLED: "STEP_CANCELED",
}


@dataclass(frozen=True, slots=True)
class WorkflowStep:
    """One step of a run (see the module docstring for the states)."""

    name: str  # the step name given in the code ("init" for the initial body; "" when unknown)
    type: str  # the SDK's step type: Initial, Run, SleepFor, SleepUntil, Call, Wait, Invoke, ...
    state: str  # STEP_SUCCESS | STEP_PROGRESS | STEP_RETRY | STEP_FAILED | STEP_CANCELED
    out: Any  # the result, decoded from out_raw (None when the step has none)
    out_raw: str | None  # the result as the SDK logged it (JSON text)
    step_id: int
    message_id: str
    created_ms: int | None  # when its message was published (None: unknown, e.g. evicted)
    time_ms: int | None  # when it joined the log (its result became visible); None while pending
    attempts: int  # deliveries of its message so far
    sleep_for: float | str | None = None  # a SleepFor step: the duration the code gave (seconds or "7d")
    sleep_until: float | None = None  # a SleepUntil step: the epoch seconds the code gave
    wait_event_id: str | None = None  # a Wait step: the event it waits for
    wait_timeout: float | str | None = None  # a Wait step: its timeout as the code gave it
    timed_out: bool | None = None  # a Wait step in the log: it ended by its timeout (not notified)
    wait_deadline_ms: int | None = None  # a Wait step still waiting: when its timeout fires

    @property
    def done(self) -> bool:
        """The step's result is in the log."""
        return self.state == "STEP_SUCCESS"


@dataclass(frozen=True, slots=True)
class WorkflowRunView:
    """A snapshot of one run: what it is, how it ended, its steps."""

    run_id: str
    account: str
    url: str
    state: str  # RUN_STARTED | RUN_SUCCESS | RUN_FAILED | RUN_CANCELED
    created_ms: int
    completed_ms: int | None
    response: str | None  # the run's return value as the SDK sent it (JSON text)
    error: str | None  # why it failed
    labels: tuple[str, ...]
    steps: tuple[WorkflowStep, ...]
    dlq_id: str | None = None  # its workflow DLQ entry, once it failed (and until deleted or resumed)
    waiting: tuple[WorkflowStep, ...] = ()  # its context.waitForEvent calls still waiting (not steps yet)

    @property
    def finished(self) -> bool:
        """The run ended (success, failure or cancel)."""
        return self.state != "RUN_STARTED"


def _decode(raw: Any) -> tuple[Any, str | None]:
    if raw is None:
        return None, None
    if not isinstance(raw, str):  # already structured: keep it, and its JSON text
        return raw, json.dumps(raw, separators=(",", ":"))
    try:
        return json.loads(raw), raw
    except ValueError:
        return raw, raw


def _attempts(msg: Message | None) -> int:
    return 0 if msg is None else sum(1 for h in msg.history if h.state is EventState.ACTIVE)


def _step_json(body: bytes) -> dict[str, Any] | None:
    try:
        step = json.loads(body)
    except ValueError:
        return None
    return step if isinstance(step, dict) else None


def _waits(step: dict[str, Any] | None) -> dict[str, Any]:
    """What a sleep or a wait step says about its waiting (the keyword arguments of WorkflowStep)."""
    if step is None:
        return {}
    out: dict[str, Any] = {}
    for key, field in (("sleepFor", "sleep_for"), ("sleepUntil", "sleep_until"), ("timeout", "wait_timeout")):
        if isinstance(step.get(key), (int, float, str)) and not isinstance(step.get(key), bool):
            out[field] = step[key]
    if isinstance(step.get("waitEventId"), str):
        out["wait_event_id"] = step["waitEventId"]
    if isinstance(step.get("waitTimeout"), bool):
        out["timed_out"] = step["waitTimeout"]
    return out


def _logged(run: WorkflowRun, entry: LogEntry, msg: Message | None, index: int) -> WorkflowStep | None:
    created = msg.created_ms if msg is not None else None
    if index == 0:
        out, raw = _decode(entry.body.decode("utf-8", errors="replace"))
        tries = _attempts(msg) if msg is not None else 1  # its message also carries the first step's code
        return WorkflowStep(
            "init", "Initial", "STEP_SUCCESS", out, raw, 0, entry.message_id, created, entry.time_ms, tries
        )
    step = _step_json(entry.body) if entry.call_type == "step" else None
    if step is None or (step.get("stepId") == 0 and "targetStep" in step):
        return None  # a context.call's request, or a parallel plan step
    out, raw = _decode(step.get("out"))
    return WorkflowStep(
        name=str(step.get("stepName") or ""),
        type=str(step.get("stepType") or ""),
        state="STEP_SUCCESS",
        out=out,
        out_raw=raw,
        step_id=int(step.get("stepId") or 0),
        message_id=entry.message_id,
        created_ms=created,
        time_ms=entry.time_ms,
        attempts=_attempts(msg),
        **_waits(step),
    )


def _pending(msg: Message, body: bytes | None) -> WorkflowStep | None:
    state = _PENDING.get(msg.state)
    if state is None:
        return None
    step = _step_json(body) if body is not None else None
    name, kind, step_id = "", "", 0
    if step is not None and "stepName" in step:
        name, kind, step_id = (
            str(step.get("stepName") or ""),
            str(step.get("stepType") or ""),
            int(step.get("stepId") or 0),
        )
    elif msg.callback is not None:  # a context.call on its way: the step is named in its callback's headers
        low = {k.lower(): v for k, v in msg.callback.headers.items()}
        name = next((v for k, v in low.items() if k.endswith("upstash-workflow-stepname")), "")
        kind = next((v for k, v in low.items() if k.endswith("upstash-workflow-steptype")), "Call")
    return WorkflowStep(
        name, kind, state, None, None, step_id, msg.message_id, msg.created_ms, None, _attempts(msg), **_waits(step)
    )


def _waiting(w: Waiter) -> WorkflowStep:
    """A ``context.waitForEvent`` still waiting: no message yet, only the waiter and its deadline."""
    step = w.step
    return WorkflowStep(
        name=str(step.get("stepName") or ""),
        type=str(step.get("stepType") or "Wait"),
        state="STEP_PROGRESS",
        out=None,
        out_raw=None,
        step_id=int(step.get("stepId") or 0),
        message_id="",
        created_ms=w.created_ms,
        time_ms=None,
        attempts=0,
        wait_event_id=w.event_id,
        wait_timeout=w.timeout,
        wait_deadline_ms=w.deadline_ms,
    )


def run_view(workflows: Workflows, run: WorkflowRun) -> WorkflowRunView:
    """The snapshot of ``run`` (read on the simulator's loop)."""
    acc = workflows.core.world.accounts.find(run.account)
    messages = acc.messages if acc is not None else {}
    steps: list[WorkflowStep] = []
    for i, entry in enumerate(run.log):
        msg = messages.get(entry.message_id)
        if entry.call_type == "toCallback" and msg is not None and msg.state not in FINAL_STATES:
            pending = _pending(msg, None)  # a context.call still trying its third party
            if pending is not None:
                steps.append(pending)
            continue
        logged = _logged(run, entry, msg, i)
        if logged is not None:
            steps.append(logged)
    in_log = {e.message_id for e in run.log}
    for mid in run.message_ids:
        msg = messages.get(mid)
        if msg is None or mid in in_log or msg.callback_kind is not None:
            continue
        pending = _pending(msg, workflows.message_body(run.account, mid))
        if pending is not None:
            steps.append(pending)
    return WorkflowRunView(
        run_id=run.run_id,
        account=run.account,
        url=run.url,
        state=run.state.value,
        created_ms=run.created_ms,
        completed_ms=run.completed_ms,
        response=None if run.response is None else run.response.decode("utf-8", errors="replace"),
        error=run.error,
        labels=tuple(run.labels),
        steps=tuple(steps),
        dlq_id=run.dlq_id,
        waiting=tuple(
            _waiting(w) for w in workflows.waits.waiters if (w.account, w.run_id) == (run.account, run.run_id)
        ),
    )
