"""The fixture's Upstash Workflow helpers: ``trigger_workflow``, ``workflow_run``, ``run.wait_finished``,
``assert_run_succeeded`` / ``assert_run_failed`` and ``assert_step`` with their near-miss reports, sync and
async, against the unmodified Python SDK (``upstash-workflow`` 2.0.0) served from this process on 127.0.0.1;
and the report functions on their own."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from qstash import Receiver
from upstash_workflow import WorkflowContext, serve
from upstash_workflow.workflow_types import _SyncRequest

from qstash_sim import AsyncQstashSim, QstashSim, Seed, WorkflowRunView, WorkflowStep
from qstash_sim.base.seed import RUN
from qstash_sim.pytest_plugin import QstashSimAssertionError
from qstash_sim.pytest_plugin.workflow import check_run_state, check_step

WEEK_MS = 7 * 24 * 3600 * 1000
ran: list[str] = []  # the steps whose code ran, across the workflows of one test


def order(context: WorkflowContext[Any]) -> None:
    def price() -> int:
        ran.append("price")
        return int(context.request_payload["qty"]) * 5

    total = context.run("price", price)
    context.sleep("cool-off", "7d")
    context.run("ship", lambda: f"shipped {total} to {context.headers.get('x-customer')}")


def failing(context: WorkflowContext[Any]) -> None:
    def boom() -> None:
        ran.append("boom")
        raise RuntimeError("out of stock")

    context.run("boom", boom)


def forever(context: WorkflowContext[Any]) -> None:
    context.run("start", lambda: "started")
    context.sleep("long-nap", "90d")
    context.run("end", lambda: "never within the limit")


WORKFLOWS: dict[str, Callable[[WorkflowContext[Any]], None]] = {"order": order, "failing": failing, "forever": forever}


@contextlib.contextmanager
def workflow_app(sim: QstashSim | AsyncQstashSim) -> Iterator[str]:
    """The workflows above behind a stdlib HTTP server on 127.0.0.1; yields its base URL."""
    env = sim.env()
    receiver = Receiver(env["QSTASH_CURRENT_SIGNING_KEY"], env["QSTASH_NEXT_SIGNING_KEY"])
    from qstash import QStash

    client = QStash(sim.qstash_token, base_url=sim.qstash_url)
    handlers = {n: serve(fn, qstash_client=client, receiver=receiver)["handler"] for n, fn in WORKFLOWS.items()}

    class App(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
            request = _SyncRequest(body=body, headers=self.headers, method="POST", url=url, query={})
            answer = handlers[self.path.removeprefix("/wf/")](request)
            payload = answer.body.encode()
            self.send_response(answer.status)
            for name, value in (answer.headers or {}).items():
                if name.lower() != "content-length":
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), App)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    ran.clear()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/wf"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
        client.http._client.close()  # the SDK has no close(): its pooled keep-alive socket


@pytest.fixture
def app(qstash_sim: QstashSim) -> Iterator[str]:
    with workflow_app(qstash_sim) as base:
        yield base


def test_trigger_then_wait_finished_runs_a_week_in_one_call(qstash_sim: QstashSim, app: str) -> None:
    start = qstash_sim.clock.now_ms
    run = qstash_sim.trigger_workflow(f"{app}/order", {"qty": 3}, run_id="order-1", headers={"x-customer": "ada"})
    assert run.run_id == "wfr_order-1"  # as Client.trigger({workflowRunId}) names it
    assert run.wait_finished() is run
    assert run.state == "RUN_SUCCESS" and run.finished
    assert [(s.name, s.type, s.state) for s in run.steps] == [
        ("init", "Initial", "STEP_SUCCESS"),
        ("price", "Run", "STEP_SUCCESS"),
        ("cool-off", "SleepFor", "STEP_SUCCESS"),
        ("ship", "Run", "STEP_SUCCESS"),
    ]
    init, price, cool, ship = run.steps
    assert init.out == {"qty": 3}
    assert (price.out, price.out_raw) == (15, "15")
    assert ship.out == "shipped 15 to ada"  # the trigger's header reached a later step
    assert cool.time_ms is not None and price.time_ms is not None
    assert cool.time_ms - price.time_ms == WEEK_MS
    assert qstash_sim.clock.now_ms - start == WEEK_MS  # the clock stopped where the run ended
    assert ran == ["price"]  # each step's code runs once; later deliveries replay its result
    view = qstash_sim.assert_run_succeeded(run.run_id)
    assert isinstance(view, WorkflowRunView) and view.completed_ms == qstash_sim.clock.now_ms
    step = qstash_sim.assert_step(run.run_id, "price", out=15, type="Run")
    assert isinstance(step, WorkflowStep) and step.attempts == 1
    assert qstash_sim.assert_step(run.run_id, "price", out="15").name == "price"  # the logged text matches too
    assert qstash_sim.workflow_run("wfr_order-1").steps == run.steps
    # every delivery was signed and went to the endpoint
    deliveries = [d for d in qstash_sim.deliveries if d.url == f"{app}/order"]
    assert len(deliveries) == 4 and all(d.status == 200 and "Upstash-Signature" in d.headers for d in deliveries)


def test_near_miss_reports(qstash_sim: QstashSim, app: str) -> None:
    run = qstash_sim.trigger_workflow(f"{app}/order", {"qty": 3})
    assert run.run_id == Seed(qstash_sim.seed).ids(RUN).new("wfr")  # no run_id: drawn from the seed
    qstash_sim.settle()  # price ran; the run sleeps
    assert run.state == "RUN_STARTED"
    assert [(s.name, s.state) for s in run.steps] == [
        ("init", "STEP_SUCCESS"),
        ("price", "STEP_SUCCESS"),
        ("cool-off", "STEP_PROGRESS"),
    ]
    with pytest.raises(QstashSimAssertionError) as miss:
        qstash_sim.assert_step(run.run_id, "ship")
    text = str(miss.value)
    assert f"no step 'ship' in workflow run {run.run_id}; steps were: init, price, cool-off" in text
    assert "still RUN_STARTED" in text and "seed" in text
    with pytest.raises(QstashSimAssertionError, match="step 'price' out was '15', expected '16'"):
        qstash_sim.assert_step(run.run_id, "price", out=16)
    with pytest.raises(QstashSimAssertionError, match="step 'price' type was 'Run', expected 'SleepFor'"):
        qstash_sim.assert_step(run.run_id, "price", type="SleepFor")
    with pytest.raises(QstashSimAssertionError, match="step 'cool-off' has no result yet \\(STEP_PROGRESS\\)"):
        qstash_sim.assert_step(run.run_id, "cool-off", out=None)
    with pytest.raises(QstashSimAssertionError) as not_yet:
        qstash_sim.assert_run_succeeded(run.run_id)
    assert f"expected {run.run_id} to be RUN_SUCCESS; workflow run {run.run_id}" in str(not_yet.value)
    assert "cool-off [SleepFor] STEP_PROGRESS" in str(not_yet.value) and "wait_finished" in str(not_yet.value)
    with pytest.raises(KeyError) as unknown:
        qstash_sim.workflow_run("wfr_nope")
    assert f"no workflow run 'wfr_nope'; runs kept (newest last): ['{run.run_id}']" in str(unknown.value)
    qstash_sim.assert_step(run.run_id, "cool-off", type="SleepFor", state="STEP_PROGRESS")


def test_a_failing_step_fails_the_run(qstash_sim: QstashSim, app: str) -> None:
    run = qstash_sim.trigger_workflow(f"{app}/failing", retries=1)
    run.wait_finished("1h")
    assert ran == ["boom", "boom"]  # one retry
    view = qstash_sim.assert_run_failed(run.run_id)
    assert view.error is not None and "failed for good (500)" in view.error
    with pytest.raises(QstashSimAssertionError, match="to be RUN_SUCCESS; workflow run .* is RUN_FAILED"):
        qstash_sim.assert_run_succeeded(run.run_id)


def test_wait_finished_is_bounded_and_says_where_the_run_stands(qstash_sim: QstashSim, app: str) -> None:
    run = qstash_sim.trigger_workflow(f"{app}/forever", run_id="nap")
    start = qstash_sim.clock.now_ms
    with pytest.raises(QstashSimAssertionError) as miss:
        run.wait_finished("30d")
    text = str(miss.value)
    assert "workflow run wfr_nap did not end within 30d (the clock is now 2026-01-31T00:00:00" in text
    assert "it is RUN_STARTED; its last step is long-nap [SleepFor] STEP_PROGRESS" in text
    assert qstash_sim.clock.now_ms - start == 30 * 24 * 3600 * 1000
    run.wait_finished("60d")
    qstash_sim.assert_step("wfr_nap", "end", out="never within the limit")
    with pytest.raises(TypeError):
        run.wait_finished(object())  # type: ignore[arg-type]


async def test_the_async_fixture(qstash_sim_async: AsyncQstashSim) -> None:
    with workflow_app(qstash_sim_async) as base:
        run = await qstash_sim_async.trigger_workflow(f"{base}/order", '{"qty": 2}', run_id="a1")
        assert await run.wait_finished() is run
        await qstash_sim_async.assert_run_succeeded("wfr_a1")
        step = await qstash_sim_async.assert_step("wfr_a1", "price", out=10)
        assert step.state == "STEP_SUCCESS" and run.state == "RUN_SUCCESS"
        assert qstash_sim_async.workflow_run("wfr_a1").response is None  # the Python SDK returns nothing
        with pytest.raises(QstashSimAssertionError, match="to be RUN_FAILED"):
            await qstash_sim_async.assert_run_failed("wfr_a1")


def _view(*steps: WorkflowStep, state: str = "RUN_STARTED") -> WorkflowRunView:
    return WorkflowRunView("wfr_x", "acc", "http://127.0.0.1:9/wf", state, 0, None, None, None, (), steps)


def _step(name: str, out_raw: str | None, state: str = "STEP_SUCCESS", kind: str = "Run") -> WorkflowStep:
    import json

    out = None if out_raw is None else json.loads(out_raw)
    return WorkflowStep(name, kind, state, out, out_raw, 1, "msg_1", 0, 0 if state == "STEP_SUCCESS" else None, 1)


def test_the_checks_on_their_own() -> None:
    loop = _view(_step("item", '"a"'), _step("item", '"b"'), state="RUN_SUCCESS")
    assert check_step(loop, "item", out="b").out_raw == '"b"'  # one name, several runs: any may match
    with pytest.raises(QstashSimAssertionError) as miss:
        check_step(loop, "item", out="c", seed=3)
    text = str(miss.value)
    assert "step 'item' out was '\"a\"', expected '\"c\"'" in text and "out was '\"b\"'" in text
    assert "--qstash-sim-seed=3" in text
    assert check_run_state(loop, "RUN_SUCCESS") is loop
    with pytest.raises(QstashSimAssertionError, match="no step 'x' in workflow run wfr_x; steps were: \\(none\\)"):
        check_step(_view(), "x")
