"""Upstash Workflow runs as plain data: a run, its step log, and the caps that keep the store bounded.

A run is created by a message carrying ``Upstash-Workflow-Init: true`` and ``Upstash-Workflow-RunId``
(what ``@upstash/workflow``'s ``client.trigger`` and ``serve``'s first invocation send). Every later
message of the run (a step, a sleep, a parallel plan step) joins the run's **log** when it is delivered,
not when it is published; the endpoint receives the log up to and including that message as the
``RawStep[]`` body. Times are integer milliseconds on the simulator's clock.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from qstash_sim.domain.commands import CallbackSettings, MessageSettings

__all__ = [
    "MAX_DLQ",
    "MAX_EVENTS",
    "Invoker",
    "MAX_RUNS",
    "MAX_STEPS_PER_RUN",
    "LogEntry",
    "RunState",
    "Waiter",
    "WorkflowMessage",
    "WorkflowRun",
]

MAX_RUNS = 10_000  # runs kept over all accounts; past it the oldest finished runs go first
MAX_STEPS_PER_RUN = 1_000  # messages (steps, sleeps, plan steps) one run may publish: more answer 412
MAX_EVENTS = 10_000  # run-scoped notifies kept for a run not waiting yet; past it the oldest go first
MAX_DLQ = 10_000  # workflow DLQ entries kept over all accounts; past it the oldest go first


class RunState(enum.Enum):
    """QStash's run states (``workflowState`` in the logs)."""

    STARTED = "RUN_STARTED"
    SUCCESS = "RUN_SUCCESS"
    FAILED = "RUN_FAILED"
    CANCELED = "RUN_CANCELED"


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One ``RawStep`` of a run's log: the message, its body (the step JSON the SDK published, or the
    run's initial body for entry 0), its call type, and when it joined the log."""

    message_id: str
    body: bytes
    call_type: str  # "step" (the only kind the SDK replays) | "toCallback" | "fromCallback"
    time_ms: int


@dataclass(frozen=True, slots=True)
class WorkflowMessage:
    """What the ``Upstash-Workflow-*`` headers of one published message say (read at the API edge)."""

    run_id: str
    init: bool
    call_type: str = "step"  # Upstash-Workflow-CallType; "step" when absent
    url: str | None = None  # Upstash-Workflow-Url
    feature_set: tuple[str, ...] = ()  # Upstash-Feature-Set, e.g. ("LazyFetch", "WF_TriggerOnConfig")
    retries_given: bool = False  # the message carried Upstash-Retries itself
    retry_delay_given: bool = False
    invoke: bool = False  # Upstash-Workflow-Invoke: a trigger by context.invoke (its body an InvokeWorkflowRequest)
    trigger_by_sdk: bool = False  # upstash-workflow-trigger-by-sdk: the SDK answering an Unknown-Sdk REST trigger


@dataclass(frozen=True, slots=True)
class Invoker:
    """The run that started a run with ``context.invoke``: where the ``Invoke`` result step goes once the
    invoked run ends (``settings``/``wf`` read from the request's ``headers`` at the API edge)."""

    run_id: str
    url: str
    created_ms: int
    step: dict[str, Any]
    settings: MessageSettings
    wf: WorkflowMessage


@dataclass(slots=True)
class WorkflowRun:
    """One run of a workflow: its configuration from the trigger, its log and its outcome."""

    run_id: str
    account: str
    url: str  # the workflow endpoint (the trigger's destination)
    created_ms: int
    initial_body: bytes
    content_type: str | None
    trigger_message_id: str
    feature_set: tuple[str, ...] = ()
    # Run configuration from the trigger (WF_TriggerOnConfig: applied to every step message of the run).
    retries: int = 3
    retry_delay_expr: str | None = None
    headers: dict[str, str] = field(default_factory=dict)  # the trigger's forwarded (user) headers
    labels: list[str] = field(default_factory=list)
    failure_callback: CallbackSettings | None = None  # called once the run failed (the failure function)
    failure_message_id: str | None = None  # that call's message
    invoker: Invoker | None = None  # the run that invoked this one (context.invoke)
    rest_trigger: str | None = None  # POST /v2/trigger: "sdk", "unknown-sdk" (until the SDK triggers it), "adopted"
    dlq_id: str | None = None  # its workflow DLQ entry, once it failed
    state: RunState = RunState.STARTED
    log: list[LogEntry] = field(default_factory=list)
    message_ids: list[str] = field(default_factory=list)  # every message of the run, in publish order
    completed_ms: int | None = None
    response: bytes | None = None  # the body of the SDK's final DELETE (its return value as JSON)
    error: str | None = None  # why the run failed

    @property
    def finished(self) -> bool:
        """The run ended (success, failure or cancel): it takes no more steps."""
        return self.state is not RunState.STARTED

    @property
    def trigger_on_config(self) -> bool:
        """``WF_TriggerOnConfig``: step messages carry no retries or user headers; the trigger's apply."""
        return "WF_TriggerOnConfig" in self.feature_set


@dataclass(slots=True)
class Waiter:
    """A run waiting for an event (``context.waitForEvent``): what a notify or the timeout publishes.

    ``notify`` and ``on_timeout`` are the step messages' settings (read from the wait request's headers and
    its ``timeoutHeaders``), ``wf_notify``/``wf_timeout`` their workflow headers; ``headers`` and
    ``timeout_headers`` are kept as given for ``GET /v2/waiters/{eventId}`` and the notify answer."""

    account: str
    run_id: str
    event_id: str
    url: str
    timeout: str  # as the SDK sent it ("1d", "30s")
    deadline_ms: int
    step: dict[str, Any]
    headers: dict[str, list[str]]
    timeout_url: str
    timeout_headers: dict[str, list[str]]
    notify: MessageSettings
    on_timeout: MessageSettings
    wf_notify: WorkflowMessage
    wf_timeout: WorkflowMessage
    created_ms: int = 0
