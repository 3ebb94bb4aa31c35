"""``qstash_sim.clock.process_time()``: application code in the test's process reads the simulator's virtual
time from ``time.time()`` and ``datetime.now()``, instant by instant during an advance, and a signature made
with the process clock still verifies in the same process (``qstash.Receiver``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from qstash import Receiver

from qstash_sim import QstashSim

HOUR_MS = 3600 * 1000


@pytest.fixture
def app(qstash_sim: QstashSim) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A loopback endpoint that notes the process's time at each request and checks its signature."""
    keys = qstash_sim.signing_keys
    receiver = Receiver(current_signing_key=keys.current, next_signing_key=keys.next)
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"] or 0)).decode()
            url = f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"
            try:
                receiver.verify(signature=self.headers["Upstash-Signature"], body=body, url=url)
                verified = True
            except Exception:  # the Receiver's own error types: the test asserts on the flag
                verified = False
            seen.append({"ms": int(time.time() * 1000), "now": datetime.now(UTC), "ok": verified, "body": body})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_time_time_follows_the_virtual_clock_instant_by_instant(
    qstash_sim: QstashSim, app: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = app
    client = qstash_sim.qstash_client()
    start = qstash_sim.clock.now_ms
    with qstash_sim.clock.process_time():
        assert int(time.time() * 1000) == start  # 2026-01-01T00:00:00Z, not today
        for hours in (1, 3):
            client.message.publish(url=f"{url}/in-{hours}h", body=str(hours), delay=f"{hours}h")
        qstash_sim.clock.advance("1d")
        assert int(time.time() * 1000) == start + 24 * HOUR_MS == qstash_sim.clock.now_ms
    assert [(s["body"], s["ms"] - start) for s in seen] == [("1", HOUR_MS), ("3", 3 * HOUR_MS)]
    assert seen[1]["now"] == datetime.fromtimestamp((start + 3 * HOUR_MS) / 1000, tz=UTC)
    assert all(s["ok"] for s in seen)  # signed with the process clock: the in-process Receiver accepts it
    assert time.time() * 1000 > start + 300 * 24 * HOUR_MS  # back to the wall clock after the block


def test_without_it_the_process_keeps_the_wall_clock(
    qstash_sim: QstashSim, app: tuple[str, list[dict[str, Any]]]
) -> None:
    url, seen = app
    wall = time.time() * 1000
    qstash_sim.qstash_client().message.publish(url=f"{url}/later", body="x", delay="2h")
    qstash_sim.clock.advance("2h")
    (got,) = seen
    assert got["ms"] >= wall and got["ms"] - qstash_sim.clock.now_ms > 300 * 24 * HOUR_MS and got["ok"]
