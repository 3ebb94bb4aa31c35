"""H4/H5: a server reachable from other machines protects its control plane with a token; loopback binds
stay open and zero-config. M5: SIGTERM stops within a bounded time and reports unfinished messages."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from conftest import Client
from qstash_sim import Simulator
from qstash_sim.api import default_surfaces
from qstash_sim.server import ServerThread

TOKEN = "s3cret-token"


@pytest.fixture
def guarded() -> Iterator[Client]:
    server = ServerThread(Simulator(seed=1), surfaces=default_surfaces(control_token=TOKEN)).start()
    client = Client("127.0.0.1", server.port)
    yield client
    client.close()
    server.stop()


def test_every_control_call_needs_the_token_once_one_is_set(guarded: Client) -> None:
    for method, path in (
        ("GET", "/_sim/health"),
        ("GET", "/_sim/signing-keys"),
        ("GET", "/_sim/payment"),
        ("POST", "/_sim/reset"),
        ("GET", "/_sim/state"),
        ("GET", "/_sim/journal"),
    ):
        r = guarded.request(method, path)
        assert r.status == 401 and "control token" in r.error, (method, path)
        assert "sig_" not in r.body.decode()
    wrong = guarded.get("/_sim/signing-keys", headers={"Authorization": "Bearer nope"})
    assert wrong.status == 401
    ok = guarded.get("/_sim/signing-keys", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status == 200 and ok.json["current"].startswith("sig_")
    assert guarded.get("/_sim/health", headers={"X-Qstash-Sim-Token": TOKEN}).status == 200
    # the gateway is not the control plane: it keeps its own authentication
    assert guarded.post("/v1/qstash/publish/https://example.com/x", body=b"x").status == 200


def test_a_loopback_server_without_a_token_stays_open(client: Client) -> None:
    assert client.get("/_sim/health").status == 200


def _serve(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "qstash_sim", "serve", "--port", "0", "--log-level", "warning", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_a_non_loopback_bind_warns_and_generates_a_token() -> None:
    # 0.0.0.0 is bound here, but every request below goes to 127.0.0.1 only.
    proc = _serve("--host", "0.0.0.0", "--clock", "virtual")
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = proc.stdout.readline()
        port = int(banner.split("running at http://0.0.0.0:")[1].split()[0])
        warning = proc.stderr.readline()
        assert "WARNING: 0.0.0.0 is not a loopback address" in warning
        token = warning.split("control token (generated): ")[1].split()[0]
        client = Client("127.0.0.1", port)
        assert client.get("/_sim/health").status == 401
        assert client.get("/_sim/health", headers={"Authorization": f"Bearer {token}"}).status == 200
        client.close()
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_sigterm_stops_within_the_grace_and_reports_unfinished_messages(receiver_that_hangs: int) -> None:
    proc = _serve("--clock", "real", "--stop-grace", "1")
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline().split("running at http://127.0.0.1:")[1].split()[0])
        client = Client("127.0.0.1", port)
        hang = f"http://127.0.0.1:{receiver_that_hangs}/slow"
        for _ in range(3):
            client.post(f"/v1/qstash/publish/{hang}", body=b"x", headers={"Upstash-Timeout": "60s"})
        client.post("/v1/qstash/publish/https://example.com/later", body=b"x", headers={"Upstash-Delay": "1h"})
        _until_on_the_wire(client, 3)
        client.close()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        elapsed = time.monotonic() - started
        assert proc.returncode == 0
        assert elapsed < 10, elapsed
        assert "stopped with messages not finished" in out and "4 pending" in out, out
    finally:
        if proc.poll() is None:
            proc.kill()


def _until_on_the_wire(client: Client, n: int) -> None:
    """Poll (bounded) until ``n`` attempts are in flight: this server runs on the real clock."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        msgs = [m for acc in client.get("/_sim/state").json["accounts"].values() for m in acc["messages"]]
        if sum(1 for m in msgs if any(h["state"] == "ACTIVE" for h in m["history"])) >= n:
            return
    raise AssertionError(f"{n} attempts did not start within 10 s")


@pytest.fixture
def receiver_that_hangs() -> Iterator[int]:
    """A loopback socket that accepts connections and never answers."""
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    yield sock.getsockname()[1]
    sock.close()
