"""The workflows of :mod:`py_workflow_app` (run, sleep, sleep_until, call, a failing step with the failure
function) served through the unmodified ``upstash-workflow`` 2.0.0's own Flask adapter
(``upstash_workflow.flask.Serve``, one ``@serve.route`` per workflow) on a real Flask 3 app, behind werkzeug's
``make_server`` on 127.0.0.1 in a thread, for tests/workflow/test_workflow_py_flask.py.

How the SDK finds the simulator is the caller's: an explicit ``qstash_client`` and ``receiver`` (``serve``),
or ``env``, the variables ``qstash-sim dev`` prints (the SDK then makes its ``Receiver`` from the signing
keys there itself: the Python SDK 2.0.0 has no ``QSTASH_DEV`` mode).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

from flask import Flask, request
from py_workflow_app import PyWorkflowApp
from qstash import QStash, Receiver
from upstash_workflow.flask import Serve
from werkzeug.serving import make_server


class FlaskWorkflowApp(PyWorkflowApp):
    """The Flask app with the workflows at ``/wf/<name>`` and a third party at ``/third-party``; what the
    workflows recorded is in ``results`` (see :class:`PyWorkflowApp`)."""

    def __init__(
        self,
        qstash_client: QStash,
        receiver: Receiver | None = None,
        env: dict[str, str | None] | None = None,
    ) -> None:  # not PyWorkflowApp's: no framework-neutral handlers, the adapter makes its own
        self.results: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.third_party_hits = 0
        self.client = qstash_client
        self.flask = Flask("py_flask_workflows")
        serve = Serve(self.flask)
        for name, fn in self._workflows().items():
            route = serve.route(
                f"/wf/{name}", qstash_client=qstash_client, receiver=receiver, env=env, failure_function=self._failure
            )
            route(fn)
        self.flask.add_url_rule("/third-party", "third_party", self._third_party, methods=["POST"])

    def _third_party(self) -> Any:
        with self._lock:
            self.third_party_hits += 1
        return {"echo": json.loads(request.data or b"null")}

    def clear(self) -> None:
        with self._lock:
            self.results.clear()
            self.third_party_hits = 0


@contextlib.contextmanager
def flask_workflow_app(
    qstash_client: QStash, receiver: Receiver | None = None, env: dict[str, str | None] | None = None
) -> Iterator[tuple[FlaskWorkflowApp, str]]:
    """The app and its base URL (``http://127.0.0.1:<port>``), served until the block ends; the client's
    pooled socket is closed then (the SDK's ``QStash`` has no ``close()``)."""
    app = FlaskWorkflowApp(qstash_client, receiver, env)
    server = make_server("127.0.0.1", 0, app.flask, threaded=True)
    # a short poll: shutdown() waits for the loop to look (0.5 s by default, per test)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield app, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        qstash_client.http._client.close()
