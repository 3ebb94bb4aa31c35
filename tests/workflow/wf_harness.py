"""The workflow app harness: the unmodified ``@upstash/workflow`` 1.3.3 ``serve`` handler in a node process
on 127.0.0.1 (``tests/e2e/workflow_app.mjs``), talking to the :func:`served` simulator (virtual clock,
seed 1) with the SDK's own Client and Receiver.

Needs ``node`` (skipped without it) and ``tests/e2e/node_modules`` (``make e2e-deps``; failing without it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

E2E = Path(__file__).resolve().parents[1] / "e2e"
APP = E2E / "workflow_app.mjs"
NODE = shutil.which("node")
TOKEN = "tok_workflow"


class WorkflowApp:
    """The node process serving the workflows, and what a test asks of it."""

    def __init__(self, served: Any, proc: subprocess.Popen[str], port: int, log: Any) -> None:
        self.served, self.proc, self.port, self.log = served, proc, port, log

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(req, timeout=30) as resp:
            return json.loads(resp.read())

    def trigger(self, workflow: str, **options: Any) -> str:
        """Start a run with the SDK's ``client.trigger`` (``body``, ``workflowRunId``, ``headers``,
        ``retries``, ``label``, ``delay``); returns its run id."""
        answer = self._call("POST", "/_trigger", {"workflow": workflow, **options})
        assert answer["ok"], f"client.trigger failed: {answer}"
        run_id: str = answer["result"]["workflowRunId"]
        return run_id

    def cancel(self, ids: list[str]) -> Any:
        """The SDK's ``client.cancel({ids})``."""
        answer = self._call("POST", "/_cancel", {"ids": ids})
        assert answer["ok"], f"client.cancel failed: {answer}"
        return answer["result"]

    def client(self, method: str, **args: Any) -> Any:
        """The SDK's ``client.notify(args)`` (``"notify"``), ``client.getWaiters(args)`` (``"waiters"``) or
        ``client.logs(args)`` (``"logs"``)."""
        answer = self._call("POST", f"/_{method}", args)
        assert answer["ok"], f"client {method} failed: {answer}"
        return answer["result"]

    def sdk(self, method: str, *args: Any) -> Any:
        """The SDK's ``client.<method>(*args)`` (``"cancel"``) or ``client.dlq.<method>(*args)``
        (``"dlq.list"``, ``"dlq.resume"``, ``"dlq.restart"``, ``"dlq.delete"``, ``"dlq.retryFailureFunction"``)."""
        answer = self._call("POST", "/_client", {"method": method, "args": list(args)})
        assert answer["ok"], f"client.{method} failed: {answer}"
        return answer["result"]

    def broken(self, **flags: bool) -> None:
        """What the ``resumable`` workflow fails on: ``step`` (its step "two"), ``failure`` (its failure function)."""
        self._call("POST", "/_broken", flags)

    def results(self, run_id: str | None = None, event: str | None = None) -> list[dict[str, Any]]:
        """What the workflows recorded, in order (of one run, of one event kind)."""
        lines: list[dict[str, Any]] = self._call("GET", "/_results")
        return [
            r
            for r in lines
            if (run_id is None or r["workflowRunId"] == run_id) and (event is None or r["event"] == event)
        ]

    def steps_run(self, run_id: str) -> list[str]:
        """The names of the steps whose code ran, in order (each runs once; replays return the logged value)."""
        return [r["data"] for r in self.results(run_id, "step")]

    def stderr(self) -> str:
        self.log.seek(0)
        text: str = self.log.read()
        return text


@contextlib.contextmanager
def workflow_app(served: Any, token: str = TOKEN, dev_port: int | None = None) -> Iterator[WorkflowApp]:
    """The workflow app, configured for ``served`` (the ``served`` fixture of tests/conftest.py): ``token``
    (default :data:`TOKEN`), its account's signing keys. With ``dev_port``, the SDK's dev mode instead
    (``QSTASH_DEV=true``, ``QSTASH_DEV_PORT``: no URL, token or keys given) against ``qstash-sim dev`` there."""
    if NODE is None:
        pytest.skip("node is not installed: the real @upstash/workflow SDK needs it")
    if not (E2E / "node_modules" / "@upstash" / "workflow").is_dir():
        pytest.fail("tests/e2e/node_modules is missing: run `make e2e-deps` (npm ci in tests/e2e)")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": tempfile.gettempdir()}
    if dev_port is not None:
        env.update(QSTASH_DEV="true", QSTASH_DEV_PORT=str(dev_port))
    else:
        keys = served.on_loop(lambda: served.sim.account(token).signing_keys)
        env.update(QSTASH_URL=served.url, QSTASH_TOKEN=token)
        env.update(QSTASH_CURRENT_SIGNING_KEY=keys.current, QSTASH_NEXT_SIGNING_KEY=keys.next)
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen([NODE, str(APP)], cwd=E2E, env=env, stdout=subprocess.PIPE, stderr=log, text=True)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    try:
        port = int(json.loads(first)["port"])
    except (ValueError, KeyError):
        proc.kill()
        log.seek(0)
        pytest.fail(f"workflow_app.mjs did not start: {first!r}\n{log.read()}")
    app = WorkflowApp(served, proc, port, log)
    try:
        yield app
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        log.close()
