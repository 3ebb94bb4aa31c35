"""Hostile input: each attack gets a clear error or is cut off at a documented limit, and the server keeps
answering other clients.

Documented limits exercised here:

* request body: ``--max-body`` (default 1 MiB) -> 413 with QStash's error body, before buffering more;
* request line, header line and header count: the HTTP parser's limits (``--max-header-size``, default
  8190 bytes, for the request line and each header field; 128 headers) -> 400 with QStash's JSON error
  body, and the connection is closed;
* a request head, then its body, must arrive within ``--read-timeout`` (``read_timeout``; default 30 s;
  0.5 s here) -> 408 with the JSON body, and the connection is closed;
* an error aiohttp would answer by itself (a path it cannot route, ...) is the JSON error body too;
* batch: at most 1000 items; JSON nesting beyond the parser's recursion limit -> 400;
* a destination's answer: at most ``delivery.MAX_RESPONSE_BODY`` (1 MiB) is read, then the connection is
  closed; a destination that never answers is given up after the message's ``Upstash-Timeout``.

Every socket is loopback; every wait is bounded by a socket timeout (no sleeps, no timing assertions).
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import tracemalloc
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from qstash_sim.engine.transport import MAX_RESPONSE_BODY
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator

READ_TIMEOUT = 0.5
PUBLISH = "/v1/qstash/publish/https://example.com/hook"


@pytest.fixture(scope="module")
def _shared_server() -> Iterator[ServerThread]:
    """One virtual-clock simulator on a loopback port for the module, with a short read timeout."""
    srv = ServerThread(Simulator(seed=3, clock="virtual"), read_timeout=READ_TIMEOUT).start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def server(_shared_server: ServerThread) -> Iterator[ServerThread]:
    """The shared server, reset before the test; fails the test if the server raised internally."""
    srv = _shared_server
    srv.call_soon(srv.sim.reset)
    yield srv
    errors = list(srv.sim.errors)
    srv.sim.errors.clear()
    assert not errors, f"the server raised internally: {errors!r}"


# ---------------------------------------------------------------------------------------------- raw HTTP


@dataclass(slots=True)
class Raw:
    """A response read off a raw socket: status, lower-case headers, body; ``closed`` if the peer closed."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""

    @property
    def json(self) -> object:
        return json.loads(self.body)


def _read_response(sock: socket.socket) -> Raw | None:
    """One response, or None if the server closed (or said nothing) before answering."""
    data = b""
    while b"\r\n\r\n" not in data:
        try:
            chunk = sock.recv(65536)
        except (TimeoutError, ConnectionResetError):
            return None
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    size = int(headers.get("content-length", "0"))
    while len(body) < size:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return Raw(int(lines[0].split(" ")[1]), headers, body)


def send_raw(srv: ServerThread, data: bytes, timeout: float = 10.0) -> Raw:
    """Send bytes as they are, read one response (the socket timeout bounds the wait)."""
    with socket.create_connection(("127.0.0.1", srv.port), timeout=timeout) as sock:
        sock.sendall(data)
        answer = _read_response(sock)
    assert answer is not None, "the server closed the connection without an answer"
    return answer


def request(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    """A well-formed HTTP/1.1 request as bytes."""
    hdrs = {"Host": "127.0.0.1", "Content-Length": str(len(body)), **(headers or {})}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hdrs.items()) + "\r\n"
    return head.encode("latin-1") + body


def assert_responsive(srv: ServerThread) -> None:
    """Another client still gets a normal answer."""
    answer = send_raw(srv, request("GET", "/_sim/health"), timeout=5)
    assert answer.status == 200 and answer.json["ok"] is True  # type: ignore[index]


def qstash_error(answer: Raw, status: int, *fragments: str) -> str:
    """Assert a QStash-shaped JSON error with ``status`` whose message contains ``fragments``."""
    assert answer.status == status, (answer.status, answer.body[:300])
    assert answer.headers.get("content-type", "").startswith("application/json")
    message = answer.json["error"]  # type: ignore[index]
    for fragment in fragments:
        assert fragment in message, message
    return message


# ---------------------------------------------------------------------------------------------- bodies


def test_oversized_body_with_content_length_is_refused_before_it_is_read(server: ServerThread) -> None:
    body = b"a" * (2 * 1024 * 1024)
    answer = send_raw(server, request("POST", PUBLISH, body))
    qstash_error(answer, 413, "2097152 bytes is over the limit of 1048576 bytes")
    assert_responsive(server)


def test_oversized_chunked_body_is_cut_off_at_the_limit(server: ServerThread) -> None:
    chunk = b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
    data = (
        f"POST {PUBLISH} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + chunk * 40 + b"0\r\n\r\n"
    )
    qstash_error(send_raw(server, data), 413, "over the limit of 1048576 bytes")
    assert_responsive(server)


def test_a_body_trickled_past_the_read_timeout_gets_408_and_others_are_served_meanwhile(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT / 5) as slow:
        slow.sendall(request("POST", PUBLISH, headers={"Content-Length": "1000"}) + b'{"a":')
        answer = None
        for _ in range(100):  # a byte per wait: the waits are the server's chance to answer, bounded
            assert_responsive(server)
            try:
                slow.sendall(b" ")
            except (BrokenPipeError, ConnectionResetError):
                pass  # cut off already: the answer is waiting to be read
            slow.settimeout(READ_TIMEOUT / 5)
            answer = _read_response(slow)
            if answer is not None:
                break
    assert answer is not None, "the trickling client was never cut off"
    qstash_error(answer, 408, f"not received within {READ_TIMEOUT:g} s")
    assert answer.headers.get("connection", "").lower() == "close"
    assert_responsive(server)
    # Nothing was stored for the cut-off request.
    assert server.call_soon(lambda: server.sim.messages()) == []


def test_headers_trickled_past_the_read_timeout_are_cut_off(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT / 5) as slow:
        slow.sendall(f"POST {PUBLISH} HTTP/1.1\r\n".encode())
        answer = None
        for i in range(100):  # a header line per wait: the waits are the server's chance to answer, bounded
            assert_responsive(server)
            try:
                slow.sendall(f"X-Slow-{i}: 1\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                pass  # cut off already: the answer is waiting to be read
            answer = _read_response(slow)
            if answer is not None:
                break
    assert answer is not None, "the trickling client was never cut off"
    qstash_error(answer, 408, "request head: not received within 0.5 s")
    assert answer.headers.get("connection", "").lower() == "close"
    assert server.call_soon(lambda: server.sim.messages()) == []
    assert_responsive(server)


def test_a_connection_that_sends_nothing_is_closed_after_the_read_timeout(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT * 20) as idle:
        assert idle.recv(1024) == b""  # closed by the server (the socket timeout bounds the wait)
    assert_responsive(server)


def test_a_keep_alive_connection_gets_the_head_timeout_for_each_request(server: ServerThread) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=READ_TIMEOUT * 20) as conn:
        conn.sendall(request("GET", "/_sim/health"))
        first = _read_response(conn)
        assert first is not None and first.status == 200
        conn.sendall(b"GET /_sim/health HTTP/1.1\r\n")  # the next head starts, never ends
        qstash_error(_read_response(conn) or Raw(0), 408, "request head")


# ---------------------------------------------------------------------------------------------- heads


@pytest.mark.parametrize(
    ("what", "data"),
    [
        ("header value over 8190 bytes", request("POST", PUBLISH, b"{}", {"Upstash-Forward-A": "a" * 100_000})),
        ("more than 128 headers", request("POST", PUBLISH, b"{}", {f"X-H{i}": "1" for i in range(300)})),
        ("request line over 8190 bytes", request("POST", PUBLISH + "/" + "a" * 20_000, b"{}")),
        (
            "raw non-ASCII byte in the path",
            (b"POST /v1/qstash/enqueue/q\xff/https://example.com/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}"),
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_oversized_or_malformed_heads_are_refused_by_the_parser(
    server: ServerThread, what: str, data: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("DEBUG"):
        answer = send_raw(server, data)
    qstash_error(answer, 400, "request head: ")
    assert answer.headers.get("connection", "").lower() == "close"
    refused = [r for r in caplog.records if "request head refused" in r.getMessage()]
    assert refused and all(r.levelname == "WARNING" and r.exc_info is None for r in refused), caplog.records
    assert not [r for r in caplog.records if r.levelno >= 40], "an ERROR was logged for a refused head"
    assert server.call_soon(lambda: server.sim.messages()) == []
    assert_responsive(server)


def test_a_smaller_max_header_size_is_the_limit() -> None:
    with ServerThread(Simulator(seed=3, clock="virtual"), max_header_size=1024) as srv:
        answer = send_raw(srv, request("GET", "/_sim/health", headers={"X-Big": "a" * 2000}))
        qstash_error(answer, 400, "request head: ")
        ok = send_raw(srv, request("GET", "/_sim/health", headers={"X-Big": "a" * 900}))
        assert ok.status == 200


@pytest.mark.parametrize(
    "path", ["/v1/transactions/0%F3%B1%BC%9A%0A%C2%8B%C3%AF", "/v1/transactions/a%0Ab", "/_sim/nope%0A", "/%0A"]
)
def test_paths_aiohttp_cannot_route_get_the_json_error(server: ServerThread, path: str) -> None:
    answer = send_raw(server, request("GET", path, headers={"x-api-key": "k"}))
    assert answer.status in (400, 404), (answer.status, answer.body)
    qstash_error(answer, answer.status)


# ---------------------------------------------------------------------------------------------- content


def test_invalid_utf8_in_a_json_body_names_the_byte(server: ServerThread) -> None:
    body = b'[{"destination":"https://example.com/\xff"}]'
    answer = send_raw(server, request("POST", "/v1/qstash/batch", body, {"Content-Type": "application/json"}))
    qstash_error(answer, 400, "invalid UTF-8 at byte 37")


def test_invalid_utf8_percent_encoded_in_a_queue_name_is_refused(server: ServerThread) -> None:
    answer = send_raw(server, request("POST", "/v1/qstash/enqueue/q%ff/https://example.com/x", b"{}"))
    qstash_error(answer, 400, "path queueName")


def test_invalid_utf8_in_a_forwarded_header_value_is_refused(server: ServerThread) -> None:
    data = (
        f"POST {PUBLISH} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n".encode()
        + b"Upstash-Forward-A: \xff\xfe\r\n\r\n{}"
    )
    qstash_error(send_raw(server, data), 400, "Upstash-Forward-A")


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_json_is_refused_without_a_crash(server: ServerThread, depth: int) -> None:
    body = b"[" * depth + b"]" * depth
    answer = send_raw(server, request("POST", "/v1/qstash/batch", body, {"Content-Type": "application/json"}))
    qstash_error(answer, 400, "nested too deeply")
    assert_responsive(server)


def test_a_batch_over_1000_items_is_refused_and_1000_items_under_the_body_limit_pass(server: ServerThread) -> None:
    item = {"destination": "https://example.com/x", "body": "y" * 900}
    too_many = json.dumps([item] * 1001).encode()
    assert len(too_many) < 1024 * 1024
    answer = send_raw(server, request("POST", "/v1/qstash/batch", too_many, {"Content-Type": "application/json"}))
    qstash_error(answer, 400, "1000")
    assert server.call_soon(lambda: server.sim.messages()) == []
    full = json.dumps([item] * 1000).encode()
    answer = send_raw(server, request("POST", "/v1/qstash/batch", full, {"Content-Type": "application/json"}))
    assert answer.status == 200 and len(answer.json) == 1000  # type: ignore[arg-type]


def test_crlf_in_a_forwarded_header_value_is_refused(server: ServerThread) -> None:
    body = json.dumps(
        [{"destination": "https://example.com/x", "headers": {"Upstash-Forward-A": "a\r\nInjected: 1"}}]
    ).encode()
    answer = send_raw(server, request("POST", "/v1/qstash/batch", body, {"Content-Type": "application/json"}))
    qstash_error(answer, 400, "body /0/headers/Upstash-Forward-A", "CR, LF")
    # On the wire, a folded header line (obs-fold) cannot smuggle a header either.
    data = (
        f"POST {PUBLISH} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n".encode()
        + b"Upstash-Forward-A: a\r\n Injected: 1\r\n\r\n{}"
    )
    answer = send_raw(server, data)
    assert answer.status == 400
    assert server.call_soon(lambda: server.sim.messages()) == []


@pytest.mark.parametrize(
    "path",
    [
        "/v1/qstash/publish/https://example.com/a/../../etc",
        "/v1/qstash/publish/https://example.com/%2e%2e/x",
        "/v1/qstash/publish/https%3A%2F%2Fexample.com%2F..%2F..%2Fetc",
        "/v1/qstash/publish/file:///etc/passwd",
        "/v1/qstash/enqueue/a%2Fb/https://example.com/x",
    ],
)
def test_traversal_in_destinations_and_queue_names_is_refused(server: ServerThread, path: str) -> None:
    answer = send_raw(server, request("POST", path, b"{}"))
    assert answer.status == 400, (path, answer.body)
    assert re.search(r"traversal|invalid scheme|queueName", answer.json["error"]), answer.json  # type: ignore[index]
    assert server.call_soon(lambda: server.sim.messages()) == []


@pytest.mark.parametrize("name", ["..", "%2e%2e"])
def test_dot_segments_as_queue_names_are_refused(server: ServerThread, name: str) -> None:
    answer = send_raw(server, request("POST", f"/v1/qstash/enqueue/{name}/https://example.com/x", b"{}"))
    qstash_error(answer, 400, "queueName")


# ---------------------------------------------------------------------------------------------- destinations


@dataclass(slots=True)
class HostileSink:
    """Loopback destinations that misbehave: a 1 GiB answer made lazily, silence, or an endless trickle."""

    sent: int = 0
    requests: int = 0
    server: asyncio.base_events.Server | None = None

    async def start(self, mode: str) -> int:
        self.server = await asyncio.start_server(lambda r, w: self._serve(r, w, mode), "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, mode: str) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            size = int(re.search(rb"(?i)content-length: (\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(size)
            self.requests += 1
            if mode == "silent":  # read the request, never answer, never close
                await reader.read()
                return
            if mode == "gigabyte":
                writer.write(
                    b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                    b"Content-Length: 1073741824\r\n\r\n"
                )
            else:  # trickle: an answer whose body never ends
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 1000000\r\n\r\n")
            chunk = b"x" * 65536
            while self.sent < 1024**3:  # lazily: one chunk at a time, as fast as the reader takes them
                writer.write(chunk if mode == "gigabyte" else b"x")
                self.sent += len(chunk) if mode == "gigabyte" else 1
                if mode == "gigabyte":
                    await writer.drain()
                else:
                    await reader.read(1)  # waits until the client goes away: never-ending in practice
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


def _publish_to(srv: ServerThread, url: str, **headers: str) -> str:
    answer = send_raw(
        srv,
        request(
            "POST",
            f"/v1/qstash/publish/{url}",
            b'{"x":1}',
            {"Content-Type": "application/json", "Upstash-Retries": "0", **headers},
        ),
    )
    assert answer.status == 200, answer.body
    return str(answer.json["messageId"])  # type: ignore[index]


def test_a_destination_answering_1_gib_is_cut_off_at_the_documented_cap(server: ServerThread) -> None:
    sink = HostileSink()
    port = server.call(sink.start("gigabyte"))
    tracemalloc.start()
    try:
        mid = _publish_to(server, f"http://127.0.0.1:{port}/big")
        server.call(server.sim.settle)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        server.call(sink.close())
    msg = server.call_soon(lambda: server.sim.world.accounts.get("default").messages[mid])
    assert msg.state.value == "failed"
    entry = server.call_soon(lambda: server.sim.world.accounts.get("default").dlq[msg.dlq_id])
    assert entry.response_status == 500
    assert len(entry.response_body) == MAX_RESPONSE_BODY
    assert sink.sent < 64 * 1024**2, f"the sink pushed {sink.sent} bytes: the client did not stop reading"
    assert peak < 16 * 1024**2, f"{peak} bytes traced at peak while reading a capped 1 MiB answer"
    assert_responsive(server)


@pytest.mark.parametrize("mode", ["silent", "trickle"])
def test_a_destination_that_never_finishes_is_given_up_at_the_message_timeout(server: ServerThread, mode: str) -> None:
    sink = HostileSink()
    port = server.call(sink.start(mode))
    try:
        mid = _publish_to(server, f"http://127.0.0.1:{port}/hang", **{"Upstash-Timeout": "1s"})
        assert_responsive(server)  # while the delivery hangs
        server.call(server.sim.settle, timeout=30)
    finally:
        server.call(sink.close())
    msg = server.call_soon(lambda: server.sim.world.accounts.get("default").messages[mid])
    assert msg.state.value == "failed"
    assert msg.history[-1].error == "timeout after 1000ms"
    assert sink.requests == 1
    assert_responsive(server)


# ---------------------------------------------------------------------------------------------- control plane


def test_an_advance_of_1000_years_is_refused_at_once(server: ServerThread) -> None:
    for by in (b'{"by": 31535999999}', b'{"by": "365000d"}'):
        answer = send_raw(server, request("POST", "/_sim/clock/advance", by, {"Content-Type": "application/json"}))
        qstash_error(answer, 400, "body /by")
    assert_responsive(server)


def test_a_reset_to_an_integral_float_instant_is_an_integer(server: ServerThread) -> None:
    body = b'{"now": 1768.0, "seed": 3.0}'
    answer = send_raw(server, request("POST", "/_sim/reset", body, {"Content-Type": "application/json"}))
    assert answer.status == 200, answer.body
    clock = send_raw(server, request("GET", "/_sim/clock"))
    assert clock.json["now"] == 1768 and isinstance(clock.json["now"], int)  # type: ignore[index]
    too_late = send_raw(
        server, request("POST", "/_sim/reset", b'{"now": 253402300800000}', {"Content-Type": "application/json"})
    )
    qstash_error(too_late, 400, "body /now")
