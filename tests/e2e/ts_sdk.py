"""pytest-side helpers for the TypeScript SDK driver (``qstash_call.mjs``): a ``qstash-sim serve|dev``
subprocess, one node process per list of SDK calls, and what every delivery must carry.

Used by ``tests/api_v2/test_sdk_ts.py``. ``node(server, calls)`` runs ``calls`` (see the header of
``qstash_call.mjs``) in one node process under ``_guard.mjs`` (loopback only: nothing is downloaded or
spawned) with a minimal environment (``PATH`` and a throw-away ``HOME``: nothing the SDK reads, such as
``QSTASH_*`` or ``NODE_ENV``, leaks in from the developer's shell; pass what a test wants in ``env``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from qstash_sim.core.dev_users import DEFAULT_DEV_USER
from qstash_sim.receiver import ReceivedDelivery, Receiver

E2E = Path(__file__).resolve().parent
DRIVER = E2E / "qstash_call.mjs"
NODE = shutil.which("node")
SERVE_TOKEN = "tok_ts_sdk"

__all__ = [
    "NODE",
    "SERVE_TOKEN",
    "Calls",
    "Server",
    "assert_clean_delivery",
    "delivered",
    "node",
    "node_script",
    "settle_call",
    "start_server",
    "stop_server",
    "verify_calls",
]


@dataclass
class Server:
    """A ``qstash-sim serve|dev`` subprocess, and the token its SDK clients use."""

    kind: str
    proc: subprocess.Popen[str]
    port: int
    token: str
    log: Any

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def http(self, method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        """One plain HTTP call (the control API, or /v2 with ``token``); (status, parsed JSON or text)."""
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
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

    def settle(self) -> None:
        assert self.http("POST", "/_sim/settle")[0] == 200

    def advance(self, by: str) -> None:
        status, body = self.http("POST", "/_sim/clock/advance", {"by": by})
        assert status == 200, body

    def keys(self) -> dict[str, str]:
        status, body = self.http("GET", "/v2/keys", token=self.token)
        assert status == 200, f"GET /v2/keys -> {status} {body}"
        return {"currentSigningKey": body["current"], "nextSigningKey": body["next"]}


def start_server(kind: str, *args: str) -> Server:
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_sim", kind, "--port", "0", "--clock", "virtual", "--seed", "1", *args],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    match = re.search(r"running at http://127\.0\.0\.1:(\d+)", first)
    if match is None:
        proc.kill()
        log.seek(0)
        pytest.fail(f"qstash-sim {kind} did not start: {first!r}\n{log.read()}")
    token = DEFAULT_DEV_USER.token if kind == "dev" else SERVE_TOKEN
    return Server(kind, proc, int(match.group(1)), token, log)


def stop_server(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    try:
        server.proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.communicate()
    server.log.seek(0)
    errors = server.log.read()
    server.log.close()
    assert "Traceback" not in errors, errors


@dataclass
class Calls:
    """What one node process answered, call by call: ``ok(i)`` the SDK's result, ``err(i)`` its error."""

    lines: list[dict[str, Any]]
    names: list[str] = field(default_factory=list)

    def ok(self, i: int | str) -> Any:
        __tracebackhide__ = True
        line = self._line(i)
        if not line["ok"]:
            err = line["error"]
            missing = " (a /v2 piece is missing)" if "no such route" in err.get("message", "") else ""
            pytest.fail(f"{self._label(i)} failed{missing}: {err}", pytrace=False)
        return line["result"]

    def err(self, i: int | str) -> dict[str, Any]:
        __tracebackhide__ = True
        line = self._line(i)
        if line["ok"]:
            pytest.fail(f"{self._label(i)} should have failed, returned {line['result']!r}", pytrace=False)
        error: dict[str, Any] = line["error"]
        return error

    def _line(self, i: int | str) -> dict[str, Any]:
        return self.lines[self.names.index(i) if isinstance(i, str) else i]

    def _label(self, i: int | str) -> str:
        n = self.names.index(i) if isinstance(i, str) else i
        return f"call {n} ({self.names[n]})"


def node(server: Server | None, calls: list[dict[str, Any]], env: dict[str, str] | None = None) -> Calls:
    """Run ``calls`` through the driver in one node process; client config defaults to ``server``'s."""
    defaults: dict[str, Any] = {"retry": False}
    if server is not None:
        defaults.update(baseUrl=server.url, token=server.token)
    names = [str(c.get("as") or c["method"]) for c in calls]
    script = json.dumps({"defaults": defaults, "calls": calls})
    with tempfile.TemporaryDirectory(prefix="qstash-ts-home-") as home:
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": home, **(env or {})}
        p = subprocess.run(
            [NODE or "node", str(DRIVER), "-"],
            input=script,
            capture_output=True,
            text=True,
            timeout=120,
            env=full_env,
            cwd=E2E,
            check=False,
        )
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0 and len(lines) == len(calls), f"driver exit {p.returncode}: {p.stdout}\n{p.stderr}"
    return Calls(lines, names)


def settle_call(server: Server) -> dict[str, Any]:
    """A driver step that runs the deliveries due now (the control API), so later steps see them."""
    return {"method": "$http", "as": "settle", "args": [{"method": "POST", "url": f"{server.url}/_sim/settle"}]}


def delivered(dest: Receiver, path: str) -> list[ReceivedDelivery]:
    return [d for d in dest.deliveries if d.path == path]


def assert_clean_delivery(d: ReceivedDelivery, message_id: str) -> None:
    """What every delivery carries (qstash-contract.md §4.1), and what it must not."""
    __tracebackhide__ = True
    assert d.message_id == message_id
    assert d.header("User-Agent") == "Upstash-QStash" and d.header("Upstash-Retried") == "0"
    assert d.header("Upstash-Region") == "EU-CENTRAL-1" and d.header("Upstash-Caller-Ip") == "127.0.0.1"
    assert d.header("Upstash-Signature")
    leaked = [
        k for k in d.headers if k.lower().startswith(("upstash-forward-", "upstash-telemetry-", "upstash-method"))
    ]
    assert not leaked, leaked


def verify_calls(server: Server, deliveries: list[ReceivedDelivery]) -> list[dict[str, Any]]:
    """``Receiver.verify`` of the TS SDK for each delivery, with the server's signing keys."""
    keys = server.keys()
    return [
        {
            "method": "Receiver.verify",
            "receiver": keys,
            "args": [{"signature": d.header("Upstash-Signature"), "body": d.text, "url": d.url}],
        }
        for d in deliveries
    ]


def node_script(script: str, payload: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run another driver of this folder (e.g. ``workflow_trigger.mjs``) with ``payload``; its one JSON line."""
    with tempfile.TemporaryDirectory(prefix="qstash-ts-home-") as home:
        full_env = {"PATH": os.environ.get("PATH", ""), "HOME": home, **(env or {})}
        p = subprocess.run(
            [NODE or "node", str(E2E / script), json.dumps(payload)],
            capture_output=True,
            text=True,
            timeout=120,
            env=full_env,
            cwd=E2E,
            check=False,
        )
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode == 0 and len(lines) == 1, f"{script} exit {p.returncode}: {p.stdout}\n{p.stderr}"
    result: dict[str, Any] = lines[0]
    return result
