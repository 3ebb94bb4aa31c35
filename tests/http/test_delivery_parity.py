"""Delivery parity with the documented QStash service, on both surfaces (Sapiom's ``/v1/qstash`` and native
``/v2``): every delivery carries ``Upstash-Caller-Ip`` and ``Upstash-Region``, the signature's ``nbf`` is 0,
a message without ``Upstash-Timeout`` waits the plan maximum (2 h), and the real socket waits what the
attempt allows (``--max-timeout`` caps every attempt).
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
from qstash import Receiver as QstashReceiver
from qstash.errors import SignatureError

from conftest import Client, Receiver, Served
from qstash_sim import Caller, MessageSettings, PublishCommand, ScheduleCommand, Simulator
from qstash_sim.base.clock import VirtualClock
from qstash_sim.domain.commands import DEFAULT_TIMEOUT_MS
from qstash_sim.domain.delivery import DeliverySettings, check_region
from qstash_sim.engine.transport import OutboundRequest, Outcome, RealTransport, RoutingTransport, VirtualTransport

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
TWO_HOURS = 2 * 60 * 60 * 1000
TOKEN = "tok_parity"
SURFACES = {
    "v1": ("/v1/qstash", {"Authorization": f"Bearer {TOKEN}"}),
    "v2": ("/v2", {"Authorization": f"Bearer {TOKEN}"}),
}


def _claims(token: str) -> dict[str, Any]:
    part = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_every_delivery_carries_caller_ip_region_and_a_signature_valid_from_the_epoch(
    surface: str, served: Served, client: Client, receiver: Receiver
) -> None:
    prefix, auth = SURFACES[surface]
    url = receiver.url("/hook?src=parity")
    body = b'{"order":1}'
    r = client.post(f"{prefix}/publish/{url}", body=body, headers={**auth, "Content-Type": "application/json"})
    assert r.status in (200, 201, 202), r.body
    served.settle()
    (got,) = receiver.received
    h = got["headers"]
    assert h["Upstash-Caller-Ip"] == "127.0.0.1"  # the publisher's address: this test, over loopback
    assert h["Upstash-Region"] == "EU-CENTRAL-1"
    assert h["Upstash-Message-Id"] == r.json["messageId"]
    claims = _claims(h["Upstash-Signature"])
    assert claims["nbf"] == 0  # as QStash signs since 2024-09
    assert claims["exp"] == claims["iat"] + 300 and abs(claims["iat"] - time.time()) < 3600  # the process clock
    keys = served.on_loop(lambda: served.sim.account(TOKEN).signing_keys)
    receiver_ = QstashReceiver(keys.current, keys.next)  # PyJWT: requires nbf, and accepts 0
    receiver_.verify(signature=h["Upstash-Signature"], body=body.decode(), url=url)
    with pytest.raises(SignatureError):
        receiver_.verify(signature=h["Upstash-Signature"], body='{"order":2}', url=url)


async def test_the_region_is_configured_once_and_kept_across_reset() -> None:
    sim = Simulator(seed=1, clock=VirtualClock(T0), region="us_east_1")
    try:
        sim.publish(Caller(account="a"), PublishCommand(MessageSettings("https://example.com/1"), b"{}"))
        await sim.settle()
        sim.configure(region="ap-southeast-1")
        sim.reset()
        sim.publish(Caller(account="a"), PublishCommand(MessageSettings("https://example.com/2"), b"{}"))
        await sim.settle()
        assert [d.headers["Upstash-Region"] for d in sim.world.inbox] == ["AP-SOUTHEAST-1"]
        assert sim.world.delivery.region == "AP-SOUTHEAST-1"
    finally:
        await sim.close()
    assert check_region("US-EAST-1") == "US-EAST-1" and check_region(" eu_central_1 ") == "EU-CENTRAL-1"
    for bad in ("", "eu central", "EU-CENTRAL-1\r\nX: y", "x" * 64):
        with pytest.raises(ValueError, match="a region is letters, digits and '-'"):
            check_region(bad)
    with pytest.raises(ValueError, match="a region is"):
        Simulator(region="not a region")


async def test_caller_ip_is_the_publishers_and_a_schedules_fires_carry_its_creators() -> None:
    sim = Simulator(seed=1, clock=VirtualClock(T0))
    try:
        publisher, creator = Caller(account="a", caller_ip="198.51.100.2"), Caller(account="a", caller_ip="203.0.113.7")
        sim.publish(publisher, PublishCommand(MessageSettings("https://example.com/now"), b"{}"))
        sim.create_schedule(creator, ScheduleCommand(MessageSettings("https://example.com/cron"), "* * * * *", b"t"))
        await sim.advance("61s")
        got = [(d.url, d.headers["Upstash-Caller-Ip"]) for d in sim.world.inbox]
        assert got == [("https://example.com/now", "198.51.100.2"), ("https://example.com/cron", "203.0.113.7")]
        assert sorted(m.caller_ip for m in sim.messages()) == ["198.51.100.2", "203.0.113.7"]
    finally:
        await sim.close()


def _hanging(durations: dict[str, int]) -> VirtualTransport:
    """A virtual destination that answers each path after ``durations[path]`` virtual ms."""

    def answer(req: OutboundRequest) -> Outcome:
        return Outcome.hang(durations[req.url.rsplit("/", 1)[1]])

    return VirtualTransport(answer)


async def test_without_upstash_timeout_an_attempt_waits_the_plan_maximum_of_two_hours() -> None:
    assert DEFAULT_TIMEOUT_MS == TWO_HOURS == MessageSettings("https://example.com").timeout_ms
    sim = Simulator(
        seed=1, clock=VirtualClock(T0), transport=_hanging({"slow": TWO_HOURS - 1, "slower": TWO_HOURS + 1})
    )
    try:
        for path in ("slow", "slower"):
            settings = MessageSettings(f"https://example.com/{path}", retries=0)
            sim.publish(Caller(account="a"), PublishCommand(settings, b"{}"))
        await sim.advance("3h")
        by_url = {m.url.rsplit("/", 1)[1]: m for m in sim.messages()}
        slow, slower = by_url["slow"], by_url["slower"]
        assert slow.state.value == "delivered" and slow.history[-1].time_ms == T0 + TWO_HOURS - 1
        assert slower.state.value == "failed"
        assert (slower.history[-1].time_ms, slower.history[-1].error) == (T0 + TWO_HOURS, "timeout after 7200000ms")
    finally:
        await sim.close()


async def test_max_timeout_caps_every_attempt_and_can_be_lifted() -> None:
    transport = _hanging({"a": 10_000, "b": 10_000, "c": 10_000})
    sim = Simulator(seed=1, clock=VirtualClock(T0), transport=transport, max_timeout_ms=5_000)
    try:
        caller = Caller(account="a")
        sim.publish(caller, PublishCommand(MessageSettings("https://example.com/a", retries=0), b"{}"))
        sim.publish(caller, PublishCommand(MessageSettings("https://example.com/b", retries=0, timeout_ms=2_000), b""))
        await sim.advance("1m")
        sim.configure(max_timeout_ms=None)
        sim.publish(caller, PublishCommand(MessageSettings("https://example.com/c", retries=0), b"{}"))
        await sim.advance("1m")
        by_url = {m.url.rsplit("/", 1)[1]: m for m in sim.messages()}
        a, b, c = by_url["a"], by_url["b"], by_url["c"]
        assert [e.error for e in a.history if e.state.value == "ERROR"] == ["timeout after 5000ms"]  # capped
        assert [e.error for e in b.history if e.state.value == "ERROR"] == ["timeout after 2000ms"]  # its own
        assert c.state.value == "delivered"  # no cap: it waits its 2 h
        assert a.timeout_ms == TWO_HOURS  # the message keeps what was asked; only the attempt is capped
    finally:
        await sim.close()
    with pytest.raises(ValueError, match="max_timeout_ms must be None or a positive integer"):
        DeliverySettings(max_timeout_ms=0)


class _RecordingReal:
    """Stands in for the real transport: records the timeout each real-socket attempt was given."""

    def __init__(self) -> None:
        self.timeouts: list[int] = []

    async def send(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
        self.timeouts.append(timeout_ms)
        return Outcome(status=200)


async def test_the_real_socket_waits_the_attempts_timeout_not_a_fixed_cap() -> None:
    assert RealTransport().timeout_cap_ms is None
    real = _RecordingReal()
    routing = RoutingTransport(real, VirtualTransport())
    sim = Simulator(seed=1, clock=VirtualClock(T0), transport=routing)
    try:
        caller = Caller(account="a")
        sim.publish(caller, PublishCommand(MessageSettings("http://127.0.0.1:9/default"), b""))
        sim.publish(caller, PublishCommand(MessageSettings("http://127.0.0.1:9/asked", timeout_ms=45 * 60_000), b""))
        await sim.settle()
        sim.configure(max_timeout_ms=90_000)
        sim.publish(caller, PublishCommand(MessageSettings("http://127.0.0.1:9/capped"), b""))
        await sim.settle()
    finally:
        await sim.close()
    assert real.timeouts == [TWO_HOURS, 45 * 60_000, 90_000]


async def test_a_real_socket_gives_up_at_upstash_timeout() -> None:
    import socket

    with socket.socket() as listener:  # accepts the connection (backlog) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/hang"
        follows, capped = RealTransport(), RealTransport(timeout_cap_ms=100)
        try:
            out = await follows.send(OutboundRequest(url, "POST", {}, b"{}"), 200)
            cut = await capped.send(OutboundRequest(url, "POST", {}, b"{}"), 200)
        finally:
            await follows.close()
            await capped.close()
    assert (out.status, out.error) == (None, "timeout after 200ms")  # the attempt's timeout, whatever it is
    assert (cut.status, cut.error) == (None, "timeout after 100ms")  # an explicit cap of the real transport


def test_serve_takes_region_and_max_timeout_from_the_command_line() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_sim", "serve", "--port", "0", "--clock", "virtual"]
        + ["--region", "us-east-1", "--max-timeout", "5s", "--scenario", "slow-destination-timeout"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "running at http://127.0.0.1:" in banner, banner
        port = int(banner.split("http://127.0.0.1:")[1].split()[0])
        c = Client("127.0.0.1", port)
        headers = {"Upstash-Retries": "0", "Authorization": "Bearer cli"}
        mid = c.post("/v1/qstash/publish/https://example.com/slow", body=b"x", headers=headers).json["messageId"]
        assert c.post("/_sim/clock/advance", json_body={"by": "1m"}).status == 200
        m = c.get(f"/v1/qstash/messages/{mid}", headers={"Authorization": "Bearer cli"}).json
        deliveries = c.get("/_sim/deliveries").json["deliveries"]
        c.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert [e["error"] for e in m["history"] if e["state"] == "ERROR"] == ["timeout after 5000ms"]
    assert [d["headers"]["Upstash-Region"] for d in deliveries] == ["US-EAST-1"]


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--region", "eu central"], "a region is letters, digits and '-'"),
        (["--max-timeout", "0"], "expected a duration > 0"),
        (["--max-timeout", "soon"], "--max-timeout"),
    ],
)
def test_bad_region_or_max_timeout_is_a_usage_error(args: list[str], needle: str) -> None:
    r = subprocess.run([sys.executable, "-m", "qstash_sim", "serve", *args], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and needle in r.stderr and "Traceback" not in r.stderr, r.stderr
