"""Upstash Workflow in a test: start a run, read its steps, move time until it ends, assert on it.

``qstash_sim.trigger_workflow(url, body)`` starts a run the way ``@upstash/workflow``'s ``Client.trigger``
does: one ``POST /v2/batch`` item with ``Upstash-Workflow-Init: true`` (and the run's id, URL, feature set,
retries, forwarded headers and the failure URL), through the native surface; the engine then delivers it,
signed, to the endpoint (the JS SDK's ``serve`` or the Python SDK's). It returns a :class:`WorkflowRunHandle`,
as ``qstash_sim.workflow_run(run_id)`` does for any run (one started by the SDK's own client too):

>>> run = qstash_sim.trigger_workflow(f"{app}/wf/order", {"qty": 3})
>>> run.wait_finished()                       # moves the virtual clock until the run ends (30 days at most)
>>> qstash_sim.assert_step(run.run_id, "price", out=15)

Each read of a handle is a fresh snapshot (:class:`~qstash_sim.core.workflow_view.WorkflowRunView`); the steps
and their states are described in :mod:`qstash_sim.core.workflow_view`. Failed checks say what was there
instead: ``no step 'ship'; steps were: init, price, cool-off`` or ``step 'price' out was '15', expected
'16'``.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import Coroutine, Mapping
from typing import TYPE_CHECKING, Any

from qstash_sim.base.clock import format_ms
from qstash_sim.base.durations import to_ms
from qstash_sim.base.seed import RUN
from qstash_sim.core.workflow_view import WorkflowRunView, WorkflowStep, run_view
from qstash_sim.errors import NotFound

from . import assertions as _a

if TYPE_CHECKING:
    from .handle import Delta, _Core

__all__ = [
    "AsyncWorkflowAssertions",
    "AsyncWorkflowRunHandle",
    "WorkflowAssertions",
    "WorkflowRunHandle",
    "WorkflowRunView",
    "WorkflowStep",
    "check_run_state",
    "check_step",
]

FEATURES = "LazyFetch,InitialBody,WF_DetectTrigger,WF_TriggerOnConfig"  # what JS 1.3.3 sends
DEFAULT_RETRIES = 3  # the SDK leaves Upstash-Retries out for this value
WAIT_LIMIT = "30d"


# ---------------------------------------------------------------------------------------------- checks


def _names(view: WorkflowRunView) -> str:
    return ", ".join(s.name or s.message_id for s in view.steps) or "(none)"


def _step_line(s: WorkflowStep) -> str:
    when = f" at {format_ms(s.time_ms)}" if s.time_ms is not None else ""
    out = f" out {s.out_raw}" if s.out_raw is not None else ""
    tries = f", {s.attempts} attempts" if s.attempts > 1 or s.state == "STEP_RETRY" else ""
    return f"{s.name or '(unnamed)'} [{s.type or '?'}] {s.state}{when}{out}{tries}"


def describe(view: WorkflowRunView) -> str:
    """The run in a few lines: state, error, then one line per step."""
    head = f"workflow run {view.run_id} ({view.url}) is {view.state}"
    if view.completed_ms is not None:
        head += f" since {format_ms(view.completed_ms)}"
    lines = [head + (f": {view.error}" if view.error else "")]
    lines.extend(f"  {i}. {_step_line(s)}" for i, s in enumerate(view.steps, 1))
    return "\n".join(lines)


def check_run_state(view: WorkflowRunView, want: str, *, seed: int | None = None) -> WorkflowRunView:
    """``view`` is in state ``want`` (``RUN_SUCCESS``, ``RUN_FAILED``...), else a report of the run."""
    __tracebackhide__ = True
    if view.state == want:
        return view
    hint = ""
    if not view.finished:
        hint = "\nIt is still running: wait with run.wait_finished() or move the clock (qstash_sim.clock.advance)."
    raise _a.QstashSimAssertionError(f"expected {view.run_id} to be {want}; {describe(view)}{hint}{_a._footer(seed)}")


def _json_text(x: Any) -> str:
    try:
        return json.dumps(x, separators=(",", ":"))
    except (TypeError, ValueError):
        return repr(x)


def _misses(s: WorkflowStep, out: Any, kind: str | None, state: str | None) -> list[str]:
    found: list[str] = []
    if kind is not None and s.type != kind:
        found.append(f"step {s.name!r} type was {s.type!r}, expected {kind!r}")
    if state is not None and s.state != state:
        found.append(f"step {s.name!r} state was {s.state}, expected {state}")
    if out is not _a._MISSING:
        if not s.done:
            found.append(f"step {s.name!r} has no result yet ({s.state}), expected out {_json_text(out)!r}")
        elif not (out == s.out or (isinstance(out, str) and out == s.out_raw)):
            found.append(f"step {s.name!r} out was {s.out_raw!r}, expected {_json_text(out)!r}")
    return found


def check_step(
    view: WorkflowRunView,
    name: str,
    *,
    out: Any = _a._MISSING,
    kind: str | None = None,
    state: str | None = None,
    seed: int | None = None,
) -> WorkflowStep:
    """The step of ``view`` called ``name`` whose result, type and state match the given ones (a step run
    in a loop under one name matches if any of its runs does)."""
    __tracebackhide__ = True
    named = [s for s in view.steps if s.name == name]
    if not named:
        lines = [f"no step {name!r} in workflow run {view.run_id}; steps were: {_names(view)}"]
        if not view.finished:
            lines.append(f"The run is still {view.state}: its next steps may come once time moves on.")
        raise _a.QstashSimAssertionError("\n".join([*lines, describe(view)]) + _a._footer(seed))
    for s in named:
        if not _misses(s, out, kind, state):
            return s
    reasons = [r for s in named for r in _misses(s, out, kind, state)]
    raise _a.QstashSimAssertionError("\n".join([*reasons, describe(view)]) + _a._footer(seed))


def not_finished(
    view: WorkflowRunView, limit: Any, now_ms: int, *, seed: int | None = None
) -> _a.QstashSimAssertionError:
    """The error of a ``wait_finished`` that ran out of time: where the run stands, its last step."""
    last = view.steps[-1] if view.steps else None
    what = f"; its last step is {_step_line(last)}" if last is not None else ""
    return _a.QstashSimAssertionError(
        f"workflow run {view.run_id} did not end within {limit} (the clock is now {format_ms(now_ms)}): "
        f"it is {view.state}{what}\n{describe(view)}\n"
        "Wait longer (wait_finished(limit=...)), or check what it waits for (a notify, a failing step)."
        + _a._footer(seed)
    )


# ---------------------------------------------------------------------------------------------- run handles


class _RunReads:
    """What both run handles read: a fresh snapshot of the run per access."""

    def __init__(self, core: _Core, run_id: str, account: str) -> None:
        self._core, self.run_id, self.account = core, run_id, account

    def _view(self) -> WorkflowRunView:
        sim = self._core.sim
        return run_view(sim.workflows, sim.workflows.run(self.run_id, self.account))

    @property
    def view(self) -> WorkflowRunView:
        """The whole run now (state, response, error, steps), read in one hop."""
        return self._core.on_loop(self._view)

    @property
    def state(self) -> str:
        """``RUN_STARTED``, ``RUN_SUCCESS``, ``RUN_FAILED`` or ``RUN_CANCELED``."""
        return self.view.state

    @property
    def finished(self) -> bool:
        return self.view.finished

    @property
    def steps(self) -> list[WorkflowStep]:
        """Its steps in order (name, type, state, out, times): see :mod:`qstash_sim.core.workflow_view`."""
        return list(self.view.steps)

    @property
    def response(self) -> Any:
        """What the workflow function returned, decoded from JSON (``None`` while it runs, or when it
        returned nothing)."""
        raw = self.view.response
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw

    def step(self, name: str) -> WorkflowStep:
        """The (first) step called ``name``; an assertion error listing the steps when there is none."""
        __tracebackhide__ = True
        return check_step(self.view, name, seed=self._core.config.seed)

    def _unfinished(self, limit: Any) -> None:
        __tracebackhide__ = True
        view, now = self._core.on_loop(lambda: (self._view(), self._core.sim.clock.now_ms()))
        if not view.finished:
            raise not_finished(view, limit, now, seed=self._core.config.seed)

    def _until(self) -> Any:
        run = self._core.sim.workflows.run(self.run_id, self.account)
        return lambda: run.finished

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.run_id} {self.state}>"


class WorkflowRunHandle(_RunReads):
    """One workflow run, from a sync test (``qstash_sim.workflow_run(run_id)``)."""

    def wait_finished(self, limit: Delta = WAIT_LIMIT) -> WorkflowRunHandle:
        """Advance the virtual clock event by event until the run ends (at most ``limit``); returns the handle.
        Raises an assertion error with the run's state and last step when it does not end in time."""
        __tracebackhide__ = True
        to_ms(limit)
        pred = self._core.on_loop(self._until)
        self._core.call(lambda: self._core.sim.run_until(pred, limit))
        self._unfinished(limit)
        return self


class AsyncWorkflowRunHandle(_RunReads):
    """One workflow run, from an async test: ``await run.wait_finished()``; reads stay plain properties."""

    def wait_finished(self, limit: Delta = WAIT_LIMIT) -> Coroutine[Any, Any, AsyncWorkflowRunHandle]:
        """See :meth:`WorkflowRunHandle.wait_finished` (awaitable; one never awaited fails the test)."""
        to_ms(limit)
        return self._core.track("workflow_run(...).wait_finished", self._wait(limit))

    async def _wait(self, limit: Delta) -> AsyncWorkflowRunHandle:
        __tracebackhide__ = True
        pred = self._core.on_loop(self._until)
        await self._core.acall(lambda: self._core.sim.run_until(pred, limit))
        self._unfinished(limit)
        return self


# ---------------------------------------------------------------------------------------------- fixture verbs


def _trigger_item(
    url: str, run_id: str, body: Any, headers: Mapping[str, str] | None, retries: int | None
) -> dict[str, Any]:
    """The ``/v2/batch`` item ``Client.trigger`` sends (JS 1.3.3), the failure URL being the workflow's."""
    user = dict(headers or {})
    h: dict[str, str] = {
        "Upstash-Workflow-Init": "true",
        "Upstash-Workflow-RunId": run_id,
        "Upstash-Workflow-Url": url,
        "Upstash-Feature-Set": FEATURES,
        "Upstash-Workflow-Sdk-Version": "1",
        "Upstash-Forward-Upstash-Workflow-Sdk-Version": "1",
        "Upstash-Method": "POST",
        "Upstash-Failure-Callback": url,
        "Upstash-Failure-Callback-Forward-Upstash-Workflow-Is-Failure": "true",
        "Upstash-Failure-Callback-Forward-Upstash-Workflow-Failure-Callback": "true",
        "Upstash-Failure-Callback-Workflow-Runid": run_id,
        "Upstash-Failure-Callback-Workflow-Init": "false",
        "Upstash-Failure-Callback-Workflow-Url": url,
        "Upstash-Failure-Callback-Workflow-Calltype": "failureCall",
        "Upstash-Failure-Callback-Feature-Set": FEATURES,
    }
    if retries is not None and retries != DEFAULT_RETRIES:
        h["Upstash-Retries"] = h["Upstash-Failure-Callback-Retries"] = str(retries)
    for name, value in user.items():
        h[f"Upstash-Forward-{name}"] = h[f"Upstash-Failure-Callback-Forward-{name}"] = value
    h["Content-Type"] = next((v for k, v in user.items() if k.lower() == "content-type"), "application/json")
    if body is None:
        text = ""
    elif isinstance(body, bytes):
        text = body.decode()
    elif isinstance(body, str):
        text = body
    else:
        text = json.dumps(body)
    return {"destination": url, "headers": h, "body": text}


class _Verbs:
    """What both fixture mixins share: the trigger request, run lookup, snapshots."""

    _core: _Core

    def _wf_account(self) -> str:
        return self._core.config.api_key

    def _wf_run_id(self, run_id: str | None) -> str:
        if run_id is not None:
            return f"wfr_{run_id}"  # as Client.trigger({workflowRunId}) does
        return self._core.on_loop(lambda: self._core.sim.world.seed.ids(RUN).new("wfr"))

    def _wf_post(self, item: dict[str, Any]) -> None:
        __tracebackhide__ = True
        req = urllib.request.Request(
            f"{self._core.server.origin}/v2/batch",
            data=json.dumps([item]).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {self._wf_account()}", "Content-Type": "application/json"},
        )
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never a proxy
        try:
            with opener.open(req, timeout=30) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            raise AssertionError(f"trigger of {item['destination']} answered {exc.code}: {text}") from None
        self._core.reraise()

    def _wf_locate(self, run_id: str) -> str:
        """The account of run ``run_id`` (the test's own first); a ``KeyError`` naming the runs kept."""

        def find() -> str | None:
            wf = self._core.sim.workflows
            for account in (self._wf_account(), None):
                try:
                    return wf.run(run_id, account).account
                except NotFound:
                    continue
            return None

        account = self._core.on_loop(find)
        if account is None:
            known = self._core.on_loop(lambda: [r.run_id for r in self._core.sim.workflows.all_runs()][-10:])
            raise KeyError(f"no workflow run {run_id!r}; runs kept (newest last): {known or 'none'}")
        return account

    def _wf_snapshot(self, run_id: str) -> WorkflowRunView:
        account = self._wf_locate(run_id)
        sim = self._core.sim
        return self._core.on_loop(lambda: run_view(sim.workflows, sim.workflows.run(run_id, account)))


class WorkflowAssertions(_Verbs):
    """``trigger_workflow``, ``workflow_run`` and the run assertions of :class:`~conftest_plugin.handle.QstashSim`."""

    def trigger_workflow(
        self,
        url: str,
        body: Any = None,
        *,
        run_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int | None = None,
    ) -> WorkflowRunHandle:
        """Start a run of the workflow served at ``url`` as ``Client.trigger`` does; returns its handle.

        ``body``: the initial payload (bytes, text, or anything JSON-able); ``run_id``: the run is then
        ``wfr_<run_id>`` (as with the SDK), else an id drawn from the seed; ``headers``: forwarded to every
        step (``context.headers``); ``retries``: for every step of the run (QStash's default 3)."""
        __tracebackhide__ = True
        rid = self._wf_run_id(run_id)
        self._wf_post(_trigger_item(url, rid, body, headers, retries))
        return WorkflowRunHandle(self._core, rid, self._wf_locate(rid))

    def workflow_run(self, run_id: str) -> WorkflowRunHandle:
        """The handle of run ``run_id`` (started by any client); ``KeyError`` listing the runs when unknown."""
        return WorkflowRunHandle(self._core, run_id, self._wf_locate(run_id))

    def assert_run_succeeded(self, run_id: str) -> WorkflowRunView:
        """Assert the run ended with ``RUN_SUCCESS`` (settles first); on a miss, its state, error and steps."""
        __tracebackhide__ = True
        self._core.call(self._core.sim.settle)
        return check_run_state(self._wf_snapshot(run_id), "RUN_SUCCESS", seed=self._core.config.seed)

    def assert_run_failed(self, run_id: str) -> WorkflowRunView:
        """Assert the run ended with ``RUN_FAILED`` (retries exhausted, or a non-retryable error)."""
        __tracebackhide__ = True
        self._core.call(self._core.sim.settle)
        return check_run_state(self._wf_snapshot(run_id), "RUN_FAILED", seed=self._core.config.seed)

    def assert_step(
        self,
        run_id: str,
        name: str,
        *,
        out: Any = _a._MISSING,
        type: str | None = None,  # noqa: A002 - the step's type, as the SDKs name it
        state: str | None = None,
    ) -> WorkflowStep:
        """Assert run ``run_id`` has a step ``name`` with result ``out`` (compared decoded: ``out=15`` for a
        logged ``"15"``), of type ``type`` (``Run``, ``SleepFor``, ``Call``...) and ``state`` if given
        (settles first). Returns the step; on a miss, says what the run has instead."""
        __tracebackhide__ = True
        self._core.call(self._core.sim.settle)
        return check_step(self._wf_snapshot(run_id), name, out=out, kind=type, state=state, seed=self._core.config.seed)


class AsyncWorkflowAssertions(_Verbs):
    """The same for :class:`~conftest_plugin.handle.AsyncQstashSim`: the verbs that wait are awaitables, tracked
    like its other verbs (``_Core.track``), so one called without ``await`` fails the test at teardown."""

    def trigger_workflow(
        self,
        url: str,
        body: Any = None,
        *,
        run_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        retries: int | None = None,
    ) -> Coroutine[Any, Any, AsyncWorkflowRunHandle]:
        """See :meth:`WorkflowAssertions.trigger_workflow` (the request runs off this test's loop)."""
        item = _trigger_item(url, self._wf_run_id(run_id), body, headers, retries)
        return self._core.track("trigger_workflow", self._wf_trigger(item))

    async def _wf_trigger(self, item: dict[str, Any]) -> AsyncWorkflowRunHandle:
        __tracebackhide__ = True
        await asyncio.to_thread(self._wf_post, item)
        rid = item["headers"]["Upstash-Workflow-RunId"]
        return AsyncWorkflowRunHandle(self._core, rid, self._wf_locate(rid))

    def workflow_run(self, run_id: str) -> AsyncWorkflowRunHandle:
        """See :meth:`WorkflowAssertions.workflow_run`."""
        return AsyncWorkflowRunHandle(self._core, run_id, self._wf_locate(run_id))

    async def _wf_state(self, run_id: str, want: str) -> WorkflowRunView:
        __tracebackhide__ = True
        await self._core.acall(self._core.sim.settle)
        return check_run_state(self._wf_snapshot(run_id), want, seed=self._core.config.seed)

    def assert_run_succeeded(self, run_id: str) -> Coroutine[Any, Any, WorkflowRunView]:
        """See :meth:`WorkflowAssertions.assert_run_succeeded` (awaitable)."""
        return self._core.track("assert_run_succeeded", self._wf_state(run_id, "RUN_SUCCESS"))

    def assert_run_failed(self, run_id: str) -> Coroutine[Any, Any, WorkflowRunView]:
        """See :meth:`WorkflowAssertions.assert_run_failed` (awaitable)."""
        return self._core.track("assert_run_failed", self._wf_state(run_id, "RUN_FAILED"))

    async def _wf_step(self, run_id: str, name: str, out: Any, kind: str | None, state: str | None) -> WorkflowStep:
        __tracebackhide__ = True
        await self._core.acall(self._core.sim.settle)
        return check_step(self._wf_snapshot(run_id), name, out=out, kind=kind, state=state, seed=self._core.config.seed)

    def assert_step(
        self,
        run_id: str,
        name: str,
        *,
        out: Any = _a._MISSING,
        type: str | None = None,  # noqa: A002 - the step's type, as the SDKs name it
        state: str | None = None,
    ) -> Coroutine[Any, Any, WorkflowStep]:
        """See :meth:`WorkflowAssertions.assert_step` (awaitable)."""
        return self._core.track("assert_step", self._wf_step(run_id, name, out, type, state))
