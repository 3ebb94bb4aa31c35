"""``context.waitForEvent`` and ``notify`` for workflow runs: waiters, the timeout on the virtual clock, and
run-scoped notifies kept until the run waits ("lookback").

* ``POST /v2/wait/{eventId}`` registers a waiter of the run (its deadline: now + ``timeout``). A notify
  removes it and publishes the ``Wait`` step to the run with ``out`` = base64 of the notify body and
  ``waitTimeout: false``; at the deadline the same step goes out with ``waitTimeout: true`` and no ``out``.
  Either way it is a step message of the run (it joins the log when it is delivered).
* ``POST /v2/notify/{eventId}`` wakes every waiter of ``eventId`` in the account, oldest first; nobody
  waiting: ``[]`` and the event is gone. ``POST /v2/notify/{runId}/{eventId}`` wakes that run's waiter; if
  it is not waiting yet the event is kept (at most :data:`MAX_EVENTS`, oldest dropped first) and consumed
  by the run's next wait for ``eventId``, which is then answered at once.
* A run that ends drops its waiters (their timeouts do nothing).
"""

from __future__ import annotations

import base64
import copy
import json
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

from qstash_sim.domain.commands import Caller, PublishCommand
from qstash_sim.domain.workflow import MAX_EVENTS, Waiter, WorkflowRun
from qstash_sim.errors import ApiError, NotFound

if TYPE_CHECKING:
    from qstash_sim.core.workflow import Workflows

__all__ = ["Waits"]


class Waits:
    """The waiters and kept events of every run of one simulator."""

    def __init__(self, workflows: Workflows, *, max_events: int = MAX_EVENTS) -> None:
        self.workflows = workflows
        self.max_events = max_events
        self.waiters: list[Waiter] = []  # oldest first
        self.events: OrderedDict[tuple[str, str, str], bytes] = OrderedDict()  # (account, run, event) -> body

    def reset(self) -> None:
        self.waiters.clear()
        self.events.clear()

    def of_event(self, caller: Caller, event_id: str) -> list[Waiter]:
        """The waiters of ``event_id`` in the caller's account, oldest first (``GET /v2/waiters/{eventId}``)."""
        return [w for w in self.waiters if w.account == caller.account and w.event_id == event_id]

    def wait(self, caller: Caller, waiter: Waiter) -> None:
        """Register ``waiter`` (its run must be running: 404 otherwise); a kept event answers it at once."""
        run = self.workflows.runs.get((caller.account, waiter.run_id))
        if run is None or run.finished:
            state = "not found" if run is None else f"has finished ({run.state.value})"
            raise NotFound(f"header Upstash-Workflow-RunId: workflow run {waiter.run_id} {state}")
        kept = self.events.pop((caller.account, waiter.run_id, waiter.event_id), None)
        if kept is not None:
            self._produce(waiter, kept)
            return
        self.waiters.append(waiter)
        self.workflows.core.engine.at(waiter.deadline_ms, self._timeout(waiter), alive=lambda: waiter in self.waiters)

    def notify(self, caller: Caller, event_id: str, data: bytes, run_id: str | None = None) -> list[tuple[Waiter, str]]:
        """Wake the waiters of ``event_id`` (of one run with ``run_id``): ``[(waiter, step message id)]``."""
        woken = [w for w in self.of_event(caller, event_id) if run_id is None or w.run_id == run_id]
        if not woken and run_id is not None:
            self.events.pop((caller.account, run_id, event_id), None)
            self.events[(caller.account, run_id, event_id)] = data
            while len(self.events) > self.max_events:
                self.events.popitem(last=False)
            return []
        out: list[tuple[Waiter, str]] = []
        for w in woken:
            self.waiters.remove(w)
            mid = self._produce(w, data)
            if mid is not None:
                out.append((w, mid))
        return out

    def drop_run(self, run: WorkflowRun) -> None:
        """A run ended: its waiters go (and with them their timeouts)."""
        self.waiters = [w for w in self.waiters if (w.account, w.run_id) != (run.account, run.run_id)]

    def _timeout(self, waiter: Waiter) -> Callable[[], None]:
        def fire() -> None:
            if waiter in self.waiters:
                self.waiters.remove(waiter)
                self._produce(waiter, None)

        return fire

    def _produce(self, waiter: Waiter, data: bytes | None) -> str | None:
        """Publish the ``Wait`` step of ``waiter``: notified with ``data``, or timed out (``None``)."""
        step = {**waiter.step, "waitEventId": waiter.event_id, "timeout": waiter.timeout}
        step["waitTimeout"] = data is None
        if data is not None:
            step["out"] = base64.b64encode(data).decode("ascii")
        settings = copy.deepcopy(waiter.notify if data is not None else waiter.on_timeout)
        wf = waiter.wf_notify if data is not None else waiter.wf_timeout
        body = json.dumps(step, separators=(",", ":")).encode()
        core = self.workflows.core
        try:
            result = self.workflows.publish(Caller(account=waiter.account), PublishCommand(settings, body), wf)
        except ApiError as exc:  # the run ended meanwhile, or is full
            core.world.journal.warn(
                core.world.now, f"wait step of run {waiter.run_id} not sent: {exc.message}", account=waiter.account
            )
            return None
        return result.message_id
