"""Upstash Workflow end to end with the unmodified Python SDK (``upstash-workflow`` 2.0.0) through its own
Flask adapter (``upstash_workflow.flask``, Flask 3.1.3): ``run``, ``sleep`` (seven days in one advance),
``sleep_until``, ``call`` and a failing step with its failure function, against two servers:

* ``serve``: the ``served`` simulator (in process, virtual clock, seed 1), with an explicit base URL: the
  SDK's ``QStash(token, base_url=...)`` and ``Receiver`` with the account's keys.
* ``dev``: a ``qstash-sim dev --clock virtual`` subprocess (one per module, reset before each test). The
  Python SDK has no ``QSTASH_DEV`` mode: the app gets the variables the dev server's banner prints
  (``QSTASH_URL``, ``QSTASH_TOKEN``, the signing keys) as ``env``, and the SDK makes its ``Receiver`` from
  them; only the ``QStash`` client is built here (the SDK's has no ``close()``: the test closes it).

Both are driven over the control API only (``/_sim/settle``, ``/_sim/clock/advance``,
``/_sim/workflows/runs``, ``/_sim/deliveries``): what the simulator saw, and what the endpoint recorded.
A run starts with a plain publish to the endpoint (the SDK has no trigger client).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from py_flask_app import FlaskWorkflowApp, flask_workflow_app
from qstash import QStash, Receiver

from conftest import Served
from e2e.ts_sdk import Server, start_server, stop_server
from qstash_sim.core.dev_users import DEFAULT_DEV_USER

TOKEN = "tok_workflow_flask"
WEEK_MS = 7 * 24 * 3600 * 1000
BANNER_VARS = ("QSTASH_URL", "QSTASH_TOKEN", "QSTASH_CURRENT_SIGNING_KEY", "QSTASH_NEXT_SIGNING_KEY")


def control(base: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    """One call of a simulator's control API (or a plain request to the app): (status, parsed JSON or text)."""
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


@dataclass
class Target:
    """A simulator, the Flask app the SDK serves against it, and the account its runs are in."""

    kind: str
    url: str
    app: FlaskWorkflowApp
    base: str
    account: str

    def sim(self, method: str, path: str, body: Any = None) -> Any:
        status, answer = control(self.url, method, path, body)
        assert status == 200, f"{method} {path} -> {status} {answer}"
        return answer

    def settle(self) -> None:
        self.sim("POST", "/_sim/settle")

    def advance(self, by: str) -> None:
        self.sim("POST", "/_sim/clock/advance", {"by": by})

    def now_ms(self) -> int:
        clock: dict[str, Any] = self.sim("GET", "/_sim/clock")
        return int(clock["now"])

    def start(self, workflow: str, body: Any) -> str:
        """Publish ``body`` to the workflow with the SDK's client and run what is due; the run's id."""
        self.app.client.message.publish_json(url=f"{self.base}/wf/{workflow}", body=body)
        self.settle()
        runs = self.sim("GET", f"/_sim/workflows/runs?url={self.base}/wf/{workflow}")["runs"]
        assert len(runs) == 1, runs
        run_id: str = runs[0]["workflowRunId"]
        return run_id

    def run(self, run_id: str) -> dict[str, Any]:
        run: dict[str, Any] = self.sim("GET", f"/_sim/workflows/runs/{run_id}")
        assert run["account"] == self.account
        return run

    def deliveries(self, workflow: str) -> list[dict[str, Any]]:
        page = self.sim("GET", f"/_sim/deliveries?url={self.base}/wf/{workflow}")
        assert "cursor" not in page
        found: list[dict[str, Any]] = page["deliveries"]
        return found

    def steps_run(self, workflow: str) -> list[str]:
        return self.app.steps_run(workflow)

    def events(self, event: str) -> list[dict[str, Any]]:
        return [r for r in self.app.results if r["event"] == event]


def banner_env(server: Server) -> dict[str, str | None]:
    """The variables ``qstash-sim dev`` printed after its start line (what a user pastes into the app's env)."""
    assert server.proc.stdout is not None
    env: dict[str, str | None] = {}
    for _ in range(20):  # the banner is a dozen lines, printed at once
        line = server.proc.stdout.readline().strip()
        name, _, value = line.partition("=")
        if name in BANNER_VARS:
            env[name] = value
        if len(env) == len(BANNER_VARS):
            return env
    pytest.fail(f"the dev banner has no {BANNER_VARS}: {env}")


@pytest.fixture(scope="module")
def dev_server() -> Iterator[tuple[Server, dict[str, str | None]]]:
    server = start_server("dev", "--log-level", "warning")
    try:
        yield server, banner_env(server)
    finally:
        stop_server(server)


@pytest.fixture(scope="module")
def dev_app(dev_server: tuple[Server, dict[str, str | None]]) -> Iterator[tuple[FlaskWorkflowApp, str]]:
    _, env = dev_server
    client = QStash(str(env["QSTASH_TOKEN"]), base_url=env["QSTASH_URL"])
    with flask_workflow_app(client, env=env) as pair:  # no receiver: the SDK makes it from env's keys
        yield pair


@pytest.fixture(params=["serve", "dev"])
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    if request.param == "dev":
        server, env = request.getfixturevalue("dev_server")
        assert env == {
            "QSTASH_URL": server.url,
            "QSTASH_TOKEN": DEFAULT_DEV_USER.token,
            "QSTASH_CURRENT_SIGNING_KEY": DEFAULT_DEV_USER.current_signing_key,
            "QSTASH_NEXT_SIGNING_KEY": DEFAULT_DEV_USER.next_signing_key,
        }
        app, base = request.getfixturevalue("dev_app")
        assert control(server.url, "POST", "/_sim/reset", {})[0] == 200
        app.clear()
        yield Target("dev", server.url, app, base, DEFAULT_DEV_USER.account)
        return
    served: Served = request.getfixturevalue("served")
    keys = served.on_loop(lambda: served.sim.account(TOKEN).signing_keys)
    client = QStash(TOKEN, base_url=served.url)
    receiver = Receiver(current_signing_key=keys.current, next_signing_key=keys.next)
    with flask_workflow_app(client, receiver, env={}) as (app, base):  # env={}: nothing from the shell
        yield Target("serve", served.url, app, base, TOKEN)


def test_flask_run_steps(target: Target) -> None:
    run_id = target.start("steps", {"n": 5})
    run = target.run(run_id)
    assert run["workflowState"] == "RUN_SUCCESS", run
    assert target.steps_run("steps") == ["first", "second"]
    (finish,) = target.events("finish")
    assert finish["data"] == {"a": {"got": {"n": 5}}, "b": "second saw 5"}
    assert finish["workflowRunId"] == run_id
    steps = [(s["stepName"], s["stepType"], s["state"]) for s in run["steps"]]
    assert steps == [
        ("init", "Initial", "STEP_SUCCESS"),
        ("first", "Run", "STEP_SUCCESS"),
        ("second", "Run", "STEP_SUCCESS"),
    ]
    assert json.loads(run["steps"][1]["out"]) == {"got": {"n": 5}}
    # The publish, the SDK's own trigger of the run, then one delivery per step: each answered 200 by Flask,
    # each signed (the SDK's Receiver let it through) and carrying the run id.
    deliveries = target.deliveries("steps")
    assert [d["status"] for d in deliveries] == [200, 200, 200, 200]
    assert [d["account"] for d in deliveries] == [target.account] * 4
    assert all(d["headers"]["Upstash-Signature"] for d in deliveries)
    assert [d["headers"].get("Upstash-Workflow-RunId") for d in deliveries[1:]] == [run_id] * 3


def test_flask_sleep_seven_days_in_one_advance(target: Target) -> None:
    run_id = target.start("sleep", {})
    run = target.run(run_id)
    assert run["workflowState"] == "RUN_STARTED"
    assert target.steps_run("sleep") == ["before"]
    assert [(s["stepName"], s["state"]) for s in run["steps"]][-1] == ("sleep-7d", "STEP_PROGRESS")
    target.advance("6d23h59m")
    assert target.run(run_id)["workflowState"] == "RUN_STARTED"
    assert target.steps_run("sleep") == ["before"]
    target.advance("1m")
    run = target.run(run_id)
    assert run["workflowState"] == "RUN_SUCCESS", run
    assert target.steps_run("sleep") == ["before", "after"]
    by_name = {s["stepName"]: s for s in run["steps"]}
    assert by_name["sleep-7d"]["stepType"] == "SleepFor"
    assert by_name["after"]["completedAt"] - by_name["before"]["completedAt"] == WEEK_MS


def test_flask_sleep_until(target: Target) -> None:
    until = target.now_ms() // 1000 + 3600
    run_id = target.start("sleep-until", {"until": until})
    assert target.steps_run("sleep-until") == ["before"]
    target.advance("1h")
    run = target.run(run_id)
    assert run["workflowState"] == "RUN_SUCCESS", run
    assert target.steps_run("sleep-until") == ["before", "after"]
    sleep = next(s for s in run["steps"] if s["stepName"] == "sleep-until")
    assert (sleep["stepType"], sleep["sleepUntil"], sleep["completedAt"]) == ("SleepUntil", until, until * 1000)


def test_flask_call_reaches_the_third_party(target: Target) -> None:
    run_id = target.start("call", {"url": f"{target.base}/third-party"})
    run = target.run(run_id)
    assert run["workflowState"] == "RUN_SUCCESS", run
    assert target.app.third_party_hits == 1
    (result,) = {json.dumps(r["data"]) for r in target.events("call-result")}  # recorded on every replay
    assert json.loads(result) == {"status": 200, "body": {"echo": {"q": 1}}}
    assert target.steps_run("call") == ["after-call"]
    assert [s["stepType"] for s in run["steps"]] == ["Initial", "Call", "Run"]
    third = target.sim("GET", f"/_sim/deliveries?url={target.base}/third-party")["deliveries"]
    assert [(d["method"], d["status"], json.loads(d["body"])) for d in third] == [("POST", 200, {"q": 1})]


def test_flask_failing_step_is_retried_then_the_failure_function_runs(target: Target) -> None:
    run_id = target.start("failing", {"k": 1})
    target.advance("1h")  # the SDK's default 3 retries: 12 s, 2 min 28 s, 30 min 8 s
    run = target.run(run_id)
    assert run["workflowState"] == "RUN_FAILED", run
    assert len(target.events("attempt")) == 4
    (failure,) = target.events("failure_function")
    assert failure["data"] == {"status": 500, "payload": {"k": 1}}
    assert failure["workflowRunId"] == run_id
    statuses = [d["status"] for d in target.deliveries("failing")]
    assert statuses.count(500) == 4 and statuses[-1] == 200  # four failed attempts, then the failure callback


def test_flask_endpoint_refuses_an_unsigned_request(target: Target) -> None:
    status, answer = control(target.base, "POST", "/wf/steps", {"n": 1})
    assert status == 500, answer
    assert "Failed to verify that the Workflow request comes from QStash" in json.dumps(answer)
    assert target.steps_run("steps") == []
    assert target.sim("GET", "/_sim/workflows/runs")["runs"] == []
