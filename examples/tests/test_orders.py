"""A downstream suite for ``orders_app``, using only the public ``qstash_sim`` fixture.

Nothing is configured: installing qstash-sim registers the fixture. Every test starts on a fresh
simulator whose virtual clock reads 2026-01-01T00:00:00Z, so nothing here sleeps.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator

import pytest
from orders_app import PaymentRequiredError, dispatch_order, schedule_daily_report

DEST = "https://api.example.com"


class Receiver:
    """A loopback destination on port 0: answers each path with a fixed status and records what it got."""

    def __init__(self, statuses: dict[str, int]) -> None:
        self.statuses = statuses
        self.received: list[tuple[str, dict[str, str], bytes]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                owner.received.append((self.path, dict(self.headers), body))
                status = owner.statuses.get(self.path, 200)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def failing_fulfillment() -> Iterator[Receiver]:
    """A real destination whose /fulfillment always answers 500 (everything else 200)."""
    with Receiver({"/fulfillment": 500}) as receiver:
        yield receiver


def test_happy_path_reaches_every_service(qstash_sim):
    ids = dispatch_order("ord_456", qstash_sim.url, qstash_sim.api_key)

    qstash_sim.assert_delivered(to=f"{DEST}/fulfillment", times=1, json={"orderId": "ord_456", "action": "ship"})
    qstash_sim.assert_delivered(to=f"{DEST}/send-email", times=1, json={"template": "order-confirmation"})
    qstash_sim.assert_delivered(to=f"{DEST}/analytics", times=1, json={"event": "order.completed"})
    qstash_sim.assert_delivered(to=f"{DEST}/inventory", times=1, json={"action": "decrement"})
    qstash_sim.assert_states(ids["fulfillment"], ["CREATED", "ACTIVE", "DELIVERED"])
    # publish + enqueue + 2 batch items, $0.00001 each.
    qstash_sim.assert_spent(qstash_sim.api_key, "0.00004")
    assert [q.name for q in qstash_sim.queues] == ["email-queue"]


def test_failing_destination_ends_in_the_dlq(qstash_sim, failing_fulfillment):
    ids = dispatch_order("ord_456", qstash_sim.url, qstash_sim.api_key, dest_base=failing_fulfillment.url)

    qstash_sim.clock.advance("31h")

    entry = qstash_sim.assert_in_dlq(ids["fulfillment"])
    assert entry.response_status == 500
    qstash_sim.assert_states(ids["fulfillment"], ["CREATED", "ACTIVE", "ERROR", "RETRY", ..., "ERROR", "FAILED"])
    qstash_sim.assert_not_delivered(to=f"{failing_fulfillment.url}/fulfillment")
    qstash_sim.assert_delivered(to=f"{failing_fulfillment.url}/send-email", times=1)
    # 1 first attempt + 3 retries reached the real socket.
    assert [p for p, _, _ in failing_fulfillment.received].count("/fulfillment") == 4


@pytest.mark.qstash_scenario("burst-rate-limit")
def test_app_retries_a_429_after_retry_after(qstash_sim):
    waits: list[float] = []

    def virtual_sleep(seconds: float) -> None:
        waits.append(seconds)
        qstash_sim.clock.advance(seconds)

    ids = dispatch_order("ord_456", qstash_sim.url, qstash_sim.api_key, sleep=virtual_sleep)

    assert waits == [1.0]  # the 3rd call in one virtual second was refused with Retry-After: 1
    assert len(ids) == 4
    qstash_sim.assert_delivered(to=f"{DEST}/inventory", times=1)


@pytest.mark.qstash_scenario("payment-required-first-call")
def test_402_surfaces_as_payment_required(qstash_sim):
    with pytest.raises(PaymentRequiredError) as caught:
        dispatch_order("ord_456", qstash_sim.url, qstash_sim.api_key)

    assert caught.value.status == 402
    assert json.loads(caught.value.body)  # the x402 challenge says what to pay
    qstash_sim.assert_not_delivered(to=f"{DEST}/fulfillment")
    assert qstash_sim.messages == []


def test_daily_schedule_fires_seven_times_in_a_week(qstash_sim):
    schedule_daily_report(qstash_sim.url, qstash_sim.api_key, cron="0 9 * * *")

    qstash_sim.clock.advance("7d")

    fired = qstash_sim.assert_delivered(to=f"{DEST}/daily-report", times=7, json={"report": "daily-sales"})
    assert {d.time_ms % 86_400_000 for d in fired} == {9 * 3_600_000}  # always at 09:00 UTC
    qstash_sim.assert_spent(qstash_sim.api_key, "0.00007")
