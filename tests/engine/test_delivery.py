"""Real sockets, loopback only (127.0.0.1): every other host in here is only routed, never contacted."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from qstash import Receiver

from qstash_sim.base.clock import RealClock, VirtualClock
from qstash_sim.base.seed import Seed
from qstash_sim.domain.message import EventState, HistoryEvent, Message, MessageState
from qstash_sim.domain.world import World
from qstash_sim.engine.engine import Engine
from qstash_sim.engine.transport import (
    OutboundRequest,
    Outcome,
    RealTransport,
    RoutingTransport,
    VirtualTransport,
    is_loopback_host,
)

T0 = 1_767_225_600_000


class Destination:
    """A loopback aiohttp server that records what it receives and answers as told."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.hold = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1", port=0)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(
            {"path": request.path_qs, "method": request.method, "headers": list(request.headers.items()), "body": body}
        )
        tail = request.match_info["tail"]
        if tail == "redirect":
            raise web.HTTPFound("/elsewhere")
        if tail == "hang":
            await self.hold.wait()
        if tail == "big":
            return web.Response(body=b"x" * (3 * 1024 * 1024))
        if tail == "reset":
            assert request.transport is not None
            request.transport.abort()
            await self.hold.wait()
        if tail == "fail":
            return web.Response(status=503, body=b"down", headers={"Retry-After": "7"})
        return web.Response(body=b'{"ok":true}', content_type="application/json")

    def url(self, path: str) -> str:
        return str(self.server.make_url(path))


@pytest.fixture
async def dest() -> AsyncIterator[Destination]:
    d = Destination()
    await d.server.start_server()
    yield d
    d.hold.set()
    await d.server.close()


@pytest.fixture
async def real() -> AsyncIterator[RealTransport]:
    t = RealTransport()
    yield t
    await t.close()


def _req(url: str, body: bytes = b"hi", headers: dict[str, str] | None = None, method: str = "POST") -> OutboundRequest:
    return OutboundRequest(url=url, method=method, headers=headers or {}, body=body)


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _store(world: World, url: str, body: bytes, **kw: Any) -> Message:
    now = world.now
    fields: dict[str, Any] = dict(
        message_id="msg_real1",
        account="acct",
        url=url,
        method="PUT",
        body=body,
        content_type="text/plain; charset=utf-8",
        headers={"X-Custom": "v1", "Authorization": "Bearer abc"},
        max_retries=1,
        retry_delay_expr=None,
        timeout_ms=10_000,
        created_ms=now,
        not_before_ms=now,
        request_id="req_1",
    )
    fields.update(kw)
    msg = Message(**fields)
    msg.history.append(HistoryEvent(now, EventState.CREATED))
    world.accounts.get("acct").messages[msg.message_id] = msg
    return msg


# ----------------------------------------------------------------------------------------------------
# through the engine


async def test_engine_delivers_exact_headers_and_body_with_a_valid_signature(dest: Destination) -> None:
    world = World(clock=VirtualClock(T0), seed=Seed(1))
    transport = RoutingTransport(RealTransport(), VirtualTransport())
    # The PY receiver checks exp/nbf against the wall clock, so this engine signs with real time.
    engine = Engine(world, transport, on_schedule_fire=lambda s, t: None, sign_clock=RealClock())
    body = 'héllo wörld ✓ {"a": 1}'.encode()
    url = dest.url("/hook/path?q=1&r=two")
    msg = _store(world, url, body)
    engine.submit(msg)
    try:
        await engine.settle()
    finally:
        await engine.close()
    assert msg.state is MessageState.DELIVERED and world.now == T0  # virtual time never moved
    (got,) = dest.received
    assert got["path"] == "/hook/path?q=1&r=two" and got["method"] == "PUT"
    assert got["body"] == body
    sent = world.inbox[0].headers
    received = dict(got["headers"])
    assert len(got["headers"]) == len(received)  # no duplicated header
    assert {k: v for k, v in received.items() if k not in ("Host", "Content-Length")} == sent
    assert set(received) - set(sent) == {"Host", "Content-Length"}
    assert sent["Content-Type"] == "text/plain; charset=utf-8" and sent["Authorization"] == "Bearer abc"
    keys = world.accounts.get("acct").signing_keys
    Receiver(keys.current, keys.next).verify(signature=received["Upstash-Signature"], body=body.decode(), url=url)
    assert world.inbox[0].virtual is False and world.inbox[0].status == 200


async def test_engine_binary_body_is_byte_identical_and_failures_retry(dest: Destination) -> None:
    world = World(clock=VirtualClock(T0), seed=Seed(1))
    engine = Engine(world, RoutingTransport(RealTransport(), VirtualTransport()), on_schedule_fire=lambda s, t: None)
    body = bytes(range(256)) * 4
    msg = _store(world, dest.url("/fail"), body, content_type=None)
    engine.submit(msg)
    try:
        await engine.advance("10s")
    finally:
        await engine.close()
    assert [r["body"] for r in dest.received] == [body, body]
    assert "Content-Type" not in dict(dest.received[0]["headers"])  # none given, none invented
    assert [d.time_ms - T0 for d in world.inbox] == [0, 7000]  # Retry-After: 7 honoured
    assert msg.state is MessageState.FAILED
    entry = world.accounts.get("acct").dlq[msg.dlq_id or ""]
    assert (entry.response_status, entry.response_body) == (503, b"down")
    assert entry.response_headers["Retry-After"] == ["7"]


# ----------------------------------------------------------------------------------------------------
# the real transport


async def test_connection_refused(real: RealTransport) -> None:
    out = await real.send(_req(f"http://127.0.0.1:{_free_port()}/x"), 5_000)
    assert (out.status, out.error, out.virtual) == (None, "connection refused", False)


async def test_timeout(real: RealTransport, dest: Destination) -> None:
    out = await real.send(_req(dest.url("/hang")), 200)
    assert (out.status, out.error) == (None, "timeout after 200ms")


async def test_timeout_is_capped(dest: Destination) -> None:
    t = RealTransport(timeout_cap_ms=150)
    try:
        out = await t.send(_req(dest.url("/hang")), 3_600_000)
    finally:
        await t.close()
    assert out.error == "timeout after 150ms"


async def test_connection_reset(real: RealTransport, dest: Destination) -> None:
    out = await real.send(_req(dest.url("/reset")), 5_000)
    assert out.status is None and out.error is not None and out.error.startswith("connection reset")


async def test_redirects_are_not_followed(real: RealTransport, dest: Destination) -> None:
    out = await real.send(_req(dest.url("/redirect")), 5_000)
    assert out.status == 302 and not out.ok
    assert [r["path"] for r in dest.received] == ["/redirect"]


async def test_response_body_is_capped(dest: Destination) -> None:
    t = RealTransport(max_body=100_000)
    try:
        out = await t.send(_req(dest.url("/big"), method="GET", body=b""), 5_000)
        assert out.status == 200 and out.body == b"x" * 100_000
        again = await t.send(_req(dest.url("/ok")), 5_000)  # the pool still works afterwards
        assert again.status == 200 and again.body == b'{"ok":true}'
    finally:
        await t.close()


# ----------------------------------------------------------------------------------------------------
# routing: which hosts are real


class Spy:
    """A transport that records and answers; used to see which way a request was routed."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.urls: list[str] = []

    async def send(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
        self.urls.append(req.url)
        return Outcome(status=200, virtual=self.name == "virtual")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.5.6.7", "localhost", "LOCALHOST", "[::1]", "::1"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback_host(host)


@pytest.mark.parametrize("host", ["example.com", "10.0.0.1", "127.0.0.1.nip.io", "localhost.example.com", "0.0.0.0"])
def test_not_loopback(host: str) -> None:
    assert not is_loopback_host(host)


async def test_non_loopback_hosts_go_virtual_and_are_never_touched() -> None:
    real, virtual = Spy("real"), Spy("virtual")
    rt = RoutingTransport(real, virtual)
    for url in [
        "https://api.example.com/hook",
        "http://127.0.0.1.nip.io/x",
        "http://10.1.2.3:8080/",
        "ftp://127.0.0.1/file",
        "not a url",
    ]:
        out = await rt.send(_req(url), 1000)
        assert out.virtual
    assert real.urls == []
    await rt.send(_req("http://127.0.0.1:9/x"), 1000)
    await rt.send(_req("http://[::1]:9/x"), 1000)
    await rt.send(_req("http://localhost:9/x"), 1000)
    assert len(real.urls) == 3


async def test_allow_list_widens_real_delivery() -> None:
    real, virtual = Spy("real"), Spy("virtual")
    rt = RoutingTransport(real, virtual, allow=["127.0.0.2", "localhost:8443"], loopback=False)
    await rt.send(_req("http://127.0.0.2:8080/a"), 1000)
    await rt.send(_req("https://localhost:8443/b"), 1000)
    await rt.send(_req("https://localhost/c"), 1000)  # port 443 is not 8443
    await rt.send(_req("http://127.0.0.3/d"), 1000)
    assert real.urls == ["http://127.0.0.2:8080/a", "https://localhost:8443/b"]
    assert virtual.urls == ["https://localhost/c", "http://127.0.0.3/d"]


def test_allow_patterns_match_host_or_host_and_port() -> None:
    # Only routing decisions: nothing is sent anywhere.
    rt = RoutingTransport(
        Spy("real"), Spy("virtual"), allow=["*.example.com", "api.example.org:8443", "https://Svc.Test/"]
    )
    assert rt.is_real("https://a.example.com/x")
    assert rt.is_real("https://b.c.example.com:9000/x")
    assert not rt.is_real("https://example.com/x")
    assert rt.is_real("https://api.example.org:8443/x")
    assert not rt.is_real("https://api.example.org/x")
    assert rt.is_real("http://svc.test/")


async def test_virtual_transport_script_and_timeout() -> None:
    vt = VirtualTransport()
    out = await vt.send(_req("https://example.com/"), 1000)
    assert (out.status, out.body, out.virtual) == (200, b"{}", True)
    vt.responder = lambda req: Outcome.hang(5000)
    out = await vt.send(_req("https://example.com/"), 1000)
    assert (out.status, out.error, out.duration_ms) == (None, "timeout after 1000ms", 1000)
    vt.responder = lambda req: Outcome.failure("connection refused")
    out = await vt.send(_req("https://example.com/"), 1000)
    assert out.error == "connection refused" and out.virtual
    assert len(vt.requests) == 3


async def test_routing_force_virtual_sends_even_loopback_urls_to_the_virtual_destination() -> None:
    from qstash_sim.engine.transport import RealTransport, RoutingTransport, VirtualTransport

    vt = VirtualTransport()
    routing = RoutingTransport(RealTransport(), vt, force_virtual=lambda url: url.endswith("/scripted"))
    assert routing.is_real("http://127.0.0.1:9/other")
    assert not routing.is_real("http://127.0.0.1:9/scripted")
    out = await routing.send(OutboundRequest("http://127.0.0.1:9/scripted", "POST", {}, b""), 1000)
    assert out.virtual and out.status == 200 and len(vt.requests) == 1
    await routing.close()


async def test_routing_divert_answers_some_real_bound_attempts_virtually(dest: Destination) -> None:
    """``divert`` is asked once per attempt that would go real: an Outcome is answered virtually (and recorded,
    a hang longer than the timeout becoming a timeout), ``None`` goes over the socket."""
    from qstash_sim.engine.transport import RealTransport, RoutingTransport, VirtualTransport

    asked: list[str] = []
    answers = iter([Outcome.response(503, "no"), None, Outcome.hang(40_000)])

    def divert(req: OutboundRequest) -> Outcome | None:
        asked.append(req.url)
        return next(answers)

    vt = VirtualTransport(lambda req: pytest.fail("the virtual responder must not be asked again"))
    routing = RoutingTransport(RealTransport(), vt, divert=divert)
    url = dest.url("/ok")
    assert routing.is_real(url)  # routing by host is unchanged: divert decides per attempt, at send time
    first = await routing.send(OutboundRequest(url, "POST", {}, b"1"), 1000)
    assert (first.status, first.body, first.virtual) == (503, b"no", True)
    second = await routing.send(OutboundRequest(url, "POST", {}, b"2"), 5000)
    assert second.status == 200 and not second.virtual
    third = await routing.send(OutboundRequest(url, "POST", {}, b"3"), 30_000)
    assert (third.status, third.error, third.duration_ms, third.virtual) == (
        None,
        "timeout after 30000ms",
        30_000,
        True,
    )
    assert asked == [url] * 3 and [r.body for r in vt.requests] == [b"1", b"3"]
    vt.responder = None
    virtual = await routing.send(OutboundRequest("https://example.com/x", "POST", {}, b""), 1000)  # not asked
    assert virtual.virtual and asked == [url] * 3 and len(vt.requests) == 3
    await routing.close()


def test_allow_patterns_match_names_not_the_addresses_they_resolve_to() -> None:
    """L4, a deliberate choice: --deliver-to patterns match the URL's host as written; the simulator does
    not resolve names to decide. Allowing *.allowed.test allows whatever that name's DNS points at (the
    README's security section says so); an IP literal outside the patterns stays virtual."""
    rt = RoutingTransport(Spy("real"), Spy("virtual"), allow=["*.allowed.test"])
    assert rt.is_real("http://metadata.allowed.test:9301/admin")  # by name, whatever it resolves to
    assert not rt.is_real("http://10.0.0.7/admin")  # an address nobody allowed: virtual
    assert not rt.is_real("http://other.test/")
