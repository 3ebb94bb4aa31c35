"""The workflow DLQ (``@upstash/workflow``'s ``client.dlq``): runs that failed, and resume, restart, delete
and the failure function's rerun.

A run whose step message fails for good (retries exhausted, or 489 with ``Upstash-NonRetryable-Error``)
gets an entry keyed by the id of that message's QStash DLQ entry (the ``dlqId`` the failure function
receives too). The entry keeps the run itself, so a resume or restart works after the run store dropped
the run.

* **resume**: a new run (a new id from the seed, created now) with the failed run's initial payload,
  configuration and log up to the failed step; the failed step message is delivered again as the new
  run's, so the steps that succeeded are not run again.
* **restart**: a new run from the initial payload (an empty log): every step runs again.
* **retry the failure function**: the failure-callback message again, once it failed for good.

Resume and restart remove the entry and its QStash DLQ entry. Bounded: at most :data:`MAX_DLQ` entries
over all accounts, the oldest dropped first (``evicted`` counts them).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from qstash_sim.base.seed import RUN
from qstash_sim.core.dlq import dlq_key
from qstash_sim.core.filters import Filter
from qstash_sim.domain.commands import Caller, MessageSettings, PublishCommand
from qstash_sim.domain.flow import FlowControl
from qstash_sim.domain.message import DlqEntry, Message, MessageState
from qstash_sim.domain.workflow import MAX_DLQ, WorkflowMessage, WorkflowRun
from qstash_sim.errors import BadRequest, NotFound

if TYPE_CHECKING:
    from qstash_sim.core.workflow import Workflows

__all__ = ["DlqFilter", "DlqSelection", "Overrides", "WorkflowDlq", "WorkflowDlqEntry", "failure_state"]

_STATES = {
    MessageState.DELIVERED: "CALLBACK_SUCCESS",
    MessageState.FAILED: "CALLBACK_FAIL",
    MessageState.CANCELLED: "CALLBACK_CANCELED",
}


@dataclass(slots=True)
class WorkflowDlqEntry:
    """A failed run: the step message that failed for good, its last answer, and the run."""

    dlq_id: str
    run: WorkflowRun
    message: Message  # the step message that failed
    step: WorkflowMessage  # what its workflow headers said
    step_body: bytes  # its body as published (the step JSON; the initial body for the trigger)
    created_ms: int
    log_index: int  # log entries before the failed message (what a resume keeps)
    response: DlqEntry | None = None  # its QStash DLQ entry (the last answer)
    failure: Message | None = None  # the latest failure-callback message, when the run has a failure function


def failure_state(e: WorkflowDlqEntry) -> str | None:
    """``failureCallbackInfo.state``: ``None`` when the run has no failure function."""
    if e.failure is None:
        return None
    return _STATES.get(e.failure.state, "CALLBACK_INPROGRESS")


@dataclass(frozen=True, slots=True)
class DlqFilter:
    """Which entries a list or bulk call selects: the message filter plus the workflow fields."""

    base: Filter = field(default_factory=Filter)
    workflow_urls: frozenset[str] | None = None
    run_id: str | None = None
    created_at: int | None = None
    failure_state: str | None = None

    def matches(self, e: WorkflowDlqEntry) -> bool:
        """Every condition holds (``responseStatus`` 0 when the last attempt got no answer)."""
        status = e.response.response_status if e.response is not None else None
        return (
            self.base.message(e.message)
            and self.base.time(e.created_ms)
            and self.base.status(status or 0)
            and (self.workflow_urls is None or e.run.url in self.workflow_urls)
            and self.run_id in (None, e.run.run_id)
            and self.created_at in (None, e.run.created_ms)
            and self.failure_state in (None, failure_state(e))
        )


@dataclass(frozen=True, slots=True)
class DlqSelection:
    """Exactly ``ids`` (when given), else what ``filter`` matches."""

    ids: list[str] | None = None
    filter: DlqFilter = field(default_factory=DlqFilter)


@dataclass(frozen=True, slots=True)
class Overrides:
    """What a resume or restart's ``Upstash-Retries`` and ``Upstash-Flow-Control-*`` replace."""

    retries: int | None = None
    flow_control: FlowControl | None = None


class WorkflowDlq:
    """The workflow DLQ of one simulator (every account), oldest first."""

    def __init__(self, workflows: Workflows, *, max_entries: int = MAX_DLQ) -> None:
        self.workflows = workflows
        self.max_entries = max_entries
        self.entries: OrderedDict[tuple[str, str], WorkflowDlqEntry] = OrderedDict()
        self.evicted = 0

    def reset(self) -> None:
        """Forget every entry (with ``core.reset()``)."""
        self.entries.clear()
        self.evicted = 0

    # ------------------------------------------------------------------ filling

    def add(self, run: WorkflowRun, msg: Message, step: WorkflowMessage, body: bytes) -> None:
        """``msg``, a step message of ``run``, failed for good (the run has failed): its entry."""
        if msg.dlq_id is None:
            return
        core = self.workflows.core
        acc = core.account(run.account)
        index = next((i for i, e in enumerate(run.log) if e.message_id == msg.message_id), len(run.log))
        failure = acc.messages.get(run.failure_message_id) if run.failure_message_id else None
        entry = WorkflowDlqEntry(
            dlq_id=msg.dlq_id,
            run=run,
            message=msg,
            step=step,
            step_body=body,
            created_ms=core.world.now,
            log_index=index,
            response=acc.dlq.get(msg.dlq_id),
            failure=failure,
        )
        self.entries[(run.account, msg.dlq_id)] = entry
        run.dlq_id = msg.dlq_id
        while len(self.entries) > self.max_entries:
            self.entries.popitem(last=False)
            self.evicted += 1

    # ------------------------------------------------------------------ reading

    def get(self, caller: Caller, dlq_id: str) -> WorkflowDlqEntry:
        """One entry of the caller's account, or 404."""
        found = self.entries.get((caller.account, dlq_id))
        if found is None:
            raise NotFound(f"workflow dlq message {dlq_id} not found")
        return found

    def page(
        self, caller: Caller, sel: DlqSelection, *, cursor: str | None, count: int, strict: bool = False
    ) -> tuple[list[WorkflowDlqEntry], str | None]:
        """The selected entries: ids (those that exist; all or 404 when ``strict``), or at most ``count``
        matching ones after ``cursor``, with the cursor of the rest."""
        if sel.ids is not None:
            missing = [i for i in sel.ids if (caller.account, i) not in self.entries]
            if strict and missing:
                raise NotFound(f"workflow dlq message {missing[0]} not found (nothing was done)")
            return [self.entries[(caller.account, i)] for i in sel.ids if i not in missing], None
        after = dlq_key(cursor) if cursor is not None else None
        chosen = [
            e
            for (acc, _), e in self.entries.items()
            if acc == caller.account and (after is None or dlq_key(e.dlq_id) > after) and sel.filter.matches(e)
        ]
        n = max(1, count)
        return chosen[:n], (chosen[n - 1].dlq_id if len(chosen) > n else None)

    # ------------------------------------------------------------------ acting

    def delete(self, caller: Caller, entries: list[WorkflowDlqEntry]) -> int:
        """Remove ``entries`` (and their QStash DLQ entries); how many were there."""
        dlq = self.workflows.core.account(caller.account).dlq
        gone = 0
        for e in entries:
            if self.entries.pop((caller.account, e.dlq_id), None) is not None:
                gone += 1
                if e.run.dlq_id == e.dlq_id:
                    e.run.dlq_id = None
            dlq.pop(e.dlq_id, None)
        return gone

    def resume(self, caller: Caller, entries: list[WorkflowDlqEntry], o: Overrides) -> list[WorkflowRun]:
        """A new run per entry that continues from the failed step; the entries leave the DLQ."""
        runs = [self._resume(caller, e, o) if not e.step.init else self._restart(caller, e, o) for e in entries]
        self.delete(caller, entries)
        return runs

    def restart(self, caller: Caller, entries: list[WorkflowDlqEntry], o: Overrides) -> list[WorkflowRun]:
        """A new run per entry from the initial payload; the entries leave the DLQ."""
        runs = [self._restart(caller, e, o) for e in entries]
        self.delete(caller, entries)
        return runs

    def retry_failure(self, caller: Caller, dlq_id: str) -> WorkflowDlqEntry:
        """Publish the entry's failure-callback message again (400 unless it failed for good)."""
        e = self.get(caller, dlq_id)
        if e.failure is None:
            raise BadRequest(f"path dlqId: workflow run {e.run.run_id} has no failure function to retry")
        state = failure_state(e)
        if state != "CALLBACK_FAIL":
            raise BadRequest(f"path dlqId: the failure function of run {e.run.run_id} has not failed ({state})")
        f = e.failure
        settings = MessageSettings(
            url=f.url,
            method=f.method,
            content_type=f.content_type,
            headers=dict(f.headers),
            retries=f.max_retries,
            retry_delay_expr=f.retry_delay_expr,
            timeout_ms=f.timeout_ms,
            flow_control=f.flow_control,
        )
        core = self.workflows.core
        result = core.publish(caller, PublishCommand(settings, f.body))
        e.failure = core.account(caller.account).messages.get(result.message_id, f)
        e.run.failure_message_id = result.message_id
        return e

    # ------------------------------------------------------------------ new runs

    def _new_id(self) -> str:
        return self.workflows.core.world.seed.ids(RUN).new("wfr")

    def _resume(self, caller: Caller, e: WorkflowDlqEntry, o: Overrides) -> WorkflowRun:
        old, msg = e.run, e.message
        run = self._copy(old, self._new_id(), o)
        run.log = list(old.log[: e.log_index])
        settings = MessageSettings(
            url=msg.url,
            method=msg.method,
            content_type=msg.content_type,
            headers=dict(msg.headers),
            retries=run.retries,
            retry_delay_expr=run.retry_delay_expr,
            timeout_ms=msg.timeout_ms,
            labels=list(run.labels),
            flow_control=o.flow_control or msg.flow_control,
        )
        wf = replace(e.step, run_id=run.run_id, retries_given=True, retry_delay_given=True)
        self.workflows.start(caller, run, PublishCommand(settings, e.step_body), wf)
        return run

    def _restart(self, caller: Caller, e: WorkflowDlqEntry, o: Overrides) -> WorkflowRun:
        old = e.run
        trigger = self.workflows.core.account(old.account).messages.get(old.trigger_message_id)
        flow = o.flow_control or (trigger.flow_control if trigger is not None else e.message.flow_control)
        settings = MessageSettings(
            url=old.url,
            content_type=old.content_type,
            headers=dict(old.headers),
            retries=o.retries if o.retries is not None else old.retries,
            retry_delay_expr=old.retry_delay_expr,
            labels=list(old.labels),
            failure_callback=copy.deepcopy(old.failure_callback),
            flow_control=flow,
        )
        wf = WorkflowMessage(run_id=self._new_id(), init=True, url=old.url, feature_set=old.feature_set)
        self.workflows.publish(caller, PublishCommand(settings, old.initial_body), wf)
        return self.workflows.run(wf.run_id, caller.account)

    def _copy(self, old: WorkflowRun, run_id: str, o: Overrides) -> WorkflowRun:
        return WorkflowRun(
            run_id=run_id,
            account=old.account,
            url=old.url,
            created_ms=self.workflows.core.world.now,
            initial_body=old.initial_body,
            content_type=old.content_type,
            trigger_message_id="",
            feature_set=old.feature_set,
            retries=o.retries if o.retries is not None else old.retries,
            retry_delay_expr=old.retry_delay_expr,
            headers=dict(old.headers),
            labels=list(old.labels),
            failure_callback=copy.deepcopy(old.failure_callback),
        )
