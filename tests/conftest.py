"""Shared fixtures: a simulator served on a real loopback socket, and a client that checks every answer
against ``openapi.yaml`` (a response the contract does not describe fails the test)."""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qstash_sim.contract.router import Contract
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator

_CONTRACT: Contract | None = None
ROOT = Path(__file__).resolve().parent.parent


def contract() -> Contract:
    """The compiled contract, once per test process."""
    global _CONTRACT
    if _CONTRACT is None:
        _CONTRACT = Contract.load()
    return _CONTRACT


@dataclass
class Answer:
    """A response as the client saw it."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def error(self) -> str:
        return self.json["error"]


class Client:
    """A keep-alive HTTP/1.1 client that sends the path exactly as given (``//`` and encodings kept)."""

    def __init__(self, host: str, port: int, *, check_contract: bool = True) -> None:
        self.host, self.port = host, port
        self.check_contract = check_contract
        self._conn = http.client.HTTPConnection(host, port, timeout=30)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | str | None = None,
        json_body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        hdrs = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            hdrs.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        try:
            self._conn.request(method, path, body=body, headers=hdrs)
            resp = self._conn.getresponse()
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            self._conn.close()
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
            self._conn.request(method, path, body=body, headers=hdrs)
            resp = self._conn.getresponse()
        data = resp.read()
        answer = Answer(resp.status, resp.headers, data)
        if self.check_contract:
            problems = contract().validate_response(method, path, resp.status, resp.headers.get("Content-Type"), data)
            assert not problems, (
                f"{method} {path} -> {resp.status} breaks openapi.yaml: {problems}; body={data[:500]!r}"
            )
        return answer

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> Answer:
        return self.request("POST", path, **kw)

    def delete(self, path: str, **kw: Any) -> Answer:
        return self.request("DELETE", path, **kw)

    def patch(self, path: str, **kw: Any) -> Answer:
        return self.request("PATCH", path, **kw)

    def close(self) -> None:
        self._conn.close()


class Served:
    """A running simulator and a contract-checking client for it."""

    def __init__(self, server: ServerThread) -> None:
        self.server = server
        self.sim: Simulator = server.sim
        self.client = Client("127.0.0.1", server.port)

    @property
    def url(self) -> str:
        return self.server.url

    def advance(self, delta: Any) -> None:
        """Move the virtual clock, running due deliveries, on the server's loop."""
        self.server.call(lambda: self.sim.advance(delta))

    def settle(self) -> None:
        self.server.call(self.sim.settle)

    def on_loop(self, fn: Any) -> Any:
        """Read simulator state safely from the test thread."""
        return self.server.call_soon(fn)


@pytest.fixture
def served() -> Iterator[Served]:
    """A fresh virtual-clock simulator (seed 1) on a loopback port."""
    server = ServerThread(Simulator(seed=1, clock="virtual")).start()
    s = Served(server)
    try:
        yield s
    finally:
        s.client.close()
        server.stop()
        errors = list(server.sim.errors)
        assert not errors, f"the server raised internally: {errors!r}"


@pytest.fixture
def client(served: Served) -> Client:
    return served.client


class Receiver:
    """A real HTTP endpoint on 127.0.0.1 that records what it receives and answers a scripted status.

    ``statuses`` is consumed one per request; the last one repeats (``[500, 500, 200]`` fails twice).
    """

    def __init__(self, statuses: list[int] | None = None, headers: dict[str, str] | None = None) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.statuses = list(statuses or [200])
        self.reply_headers = dict(headers or {})
        self.received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with outer._lock:
                    outer.received.append(
                        {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body}
                    )
                    status = outer.statuses[min(len(outer.received) - 1, len(outer.statuses) - 1)]
                payload = b'{"ok":true}' if 200 <= status < 300 else b'{"error":"receiver says no"}'
                self.send_response(status)
                for k, v in outer.reply_headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            # The default listen backlog of 5 makes bursts of concurrent deliveries wait for SYN
            # retransmits (1 s, 3 s, ...): a receiver must accept what the engine's pool sends at once.
            request_queue_size = 256

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of this checkout, built once per test process (``pip wheel --no-deps``)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = out.glob("qstash_sim-*.whl")
    return wheel
