"""Workflow endpoints on the unmodified ``upstash-workflow`` 2.0.0 (its framework-neutral sync ``serve``, what
its Flask adapter wraps) behind a stdlib ``ThreadingHTTPServer`` on 127.0.0.1, in the test's process, for
tests/workflow/test_workflow_py.py. Signatures are checked by ``qstash.Receiver`` with the account's keys.

The Python SDK has no ``Client.trigger``: a run starts when a message reaches the endpoint (a plain
publish, signed like any delivery), and the SDK then triggers the run itself.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qstash import QStash, Receiver
from upstash_workflow import WorkflowContext, serve
from upstash_workflow.workflow_types import _SyncRequest

TOKEN = "tok_workflow_py"


class PyWorkflowApp:
    """The served workflows and what they recorded: ``(workflow, run id, event, data)`` dicts, in order."""

    def __init__(self, base_url: str, current: str, nxt: str) -> None:
        self.results: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.client = client = QStash(TOKEN, base_url=base_url)
        receiver = Receiver(current_signing_key=current, next_signing_key=nxt)
        self.routes: dict[str, Callable[[Any], Any]] = {
            name: serve(fn, qstash_client=client, receiver=receiver, failure_function=self._failure)["handler"]
            for name, fn in self._workflows().items()
        }
        self.third_party_hits = 0

    def record(self, workflow: str, context: WorkflowContext[Any], event: str, data: Any) -> None:
        with self._lock:
            self.results.append(
                {"workflow": workflow, "workflowRunId": context.workflow_run_id, "event": event, "data": data}
            )

    def steps_run(self, workflow: str) -> list[str]:
        return [r["data"] for r in self.results if r["workflow"] == workflow and r["event"] == "step"]

    def _failure(self, context: WorkflowContext[Any], status: int, message: str, header: dict[str, Any]) -> str:
        self.record("failure", context, "failure_function", {"status": status, "payload": context.request_payload})
        return "handled"

    def _step(self, wf: str, context: WorkflowContext[Any], name: str, value: Callable[[], Any]) -> Any:
        def body() -> Any:
            self.record(wf, context, "step", name)
            return value()

        return context.run(name, body)

    def _workflows(self) -> dict[str, Callable[[WorkflowContext[Any]], None]]:
        def steps(context: WorkflowContext[Any]) -> None:
            a = self._step("steps", context, "first", lambda: {"got": context.request_payload})
            b = self._step("steps", context, "second", lambda: f"second saw {a['got']['n']}")
            self.record("steps", context, "finish", {"a": a, "b": b})

        def sleep(context: WorkflowContext[Any]) -> None:
            self._step("sleep", context, "before", lambda: "before")
            context.sleep("sleep-7d", "7d")
            self._step("sleep", context, "after", lambda: "after")
            self.record("sleep", context, "finish", {})

        def sleep_until(context: WorkflowContext[Any]) -> None:
            self._step("sleep-until", context, "before", lambda: "before")
            context.sleep_until("sleep-until", int(context.request_payload["until"]))
            self._step("sleep-until", context, "after", lambda: "after")

        def call(context: WorkflowContext[Any]) -> None:
            res = context.call("third-party", url=context.request_payload["url"], method="POST", body={"q": 1})
            self.record("call", context, "call-result", {"status": res.status, "body": res.body})
            self._step("call", context, "after-call", lambda: res.status)

        def failing(context: WorkflowContext[Any]) -> None:
            def boom() -> None:
                self.record("failing", context, "attempt", None)
                raise RuntimeError("boom")

            context.run("boom", boom)

        return {"steps": steps, "sleep": sleep, "sleep-until": sleep_until, "call": call, "failing": failing}

    def handle(self, path: str, method: str, headers: Any, body: bytes, url: str) -> tuple[int, Any, bytes]:
        if path == "/third-party":
            self.third_party_hits += 1
            return 200, {"Content-Type": "application/json"}, json.dumps({"echo": json.loads(body or b"null")}).encode()
        handler = self.routes.get(path.removeprefix("/wf/"))
        if handler is None:
            return 404, {"Content-Type": "application/json"}, b'{"error":"no such workflow"}'
        response = handler(_SyncRequest(body=body.decode("utf-8"), headers=headers, method=method, url=url, query={}))
        return response.status, dict(response.headers or {}), response.body.encode("utf-8")


@contextlib.contextmanager
def py_workflow_app(served: Any) -> Iterator[tuple[PyWorkflowApp, str]]:
    """The app and its base URL, for the ``served`` simulator (token :data:`TOKEN`, its account's keys)."""
    keys = served.on_loop(lambda: served.sim.account(TOKEN).signing_keys)
    app = PyWorkflowApp(served.url, keys.current, keys.next)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
            # headers: case-insensitive, as a framework's request headers are (the SDK reads lower-case names)
            status, headers, payload = app.handle(self.path, "POST", self.headers, body, url)
            self.send_response(status)
            for k, v in headers.items():
                if k.lower() != "content-length":
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)
        app.client.http._client.close()  # the SDK has no close(): its pooled keep-alive socket to the simulator
