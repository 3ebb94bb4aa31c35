"""The dashboard's surface without a browser: its files, the control token, the journal's event stream."""

from __future__ import annotations

import http.client
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import Client, Served, contract
from qstash_sim.api import default_surfaces
from qstash_sim.api.ui.stream import MAX_STREAMS
from qstash_sim.api.ui.surface import ASSETS
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator


def test_the_page_and_its_files_are_served_and_linked_from_the_index(client: Client) -> None:
    page = client.get("/_sim/ui?state=failed")  # the client checks each answer against openapi.yaml
    assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert b"<title>[qstash-sim] dashboard</title>" in page.body and b'src="/_sim/ui/app.js"' in page.body
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    for name, kind in (("app.js", "text/javascript"), ("app.css", "text/css"), ("favicon.svg", "image/svg+xml")):
        got = client.get(f"/_sim/ui/{name}")
        assert got.status == 200 and got.headers["Content-Type"].startswith(kind) and got.body
    assert client.get("/_sim/ui/secrets.txt").status == 400
    assert client.get("/").json["links"]["ui"] == "/_sim/ui"
    assert "ui" in {s["name"] for s in client.get("/").json["surfaces"]}


@pytest.fixture
def guarded() -> Iterator[ServerThread]:
    server = ServerThread(Simulator(seed=1, clock="virtual"), surfaces=default_surfaces(control_token="s3cret")).start()
    yield server
    server.stop()


def test_the_control_token_guards_the_page_and_a_right_one_is_kept_in_a_cookie(guarded: ServerThread) -> None:
    c = Client("127.0.0.1", guarded.port)
    assert c.get("/_sim/ui").status == 401
    assert c.get("/_sim/ui?token=nope").status == 401
    assert c.get("/_sim/ui/app.js").status == 401
    assert c.get("/_sim/events/stream").status == 401
    ok = c.get("/_sim/ui?token=s3cret")
    assert ok.status == 200 and b'<meta name="qstash-sim-token" content="s3cret">' in ok.body
    cookie = ok.headers["Set-Cookie"]
    assert cookie == "qstash_sim_token=s3cret; Path=/_sim; HttpOnly; SameSite=Strict"
    jar = {"Cookie": cookie.split(";")[0]}
    assert c.get("/_sim/ui/app.js", headers=jar).status == 200
    assert c.get("/_sim/ui", headers=jar).status == 200 and c.get("/_sim/ui", headers=jar).headers["Set-Cookie"] is None
    assert c.get("/_sim/ui", headers={"Cookie": "qstash_sim_token=other"}).status == 401
    assert c.get("/_sim/ui/favicon.svg", headers={"Authorization": "Bearer s3cret"}).status == 200
    assert c.get("/_sim/health", headers=jar).status == 401  # the control plane itself wants the header
    c.close()


def _open_stream(port: int, query: str = "") -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/_sim/events/stream" + query, headers={"Accept": "text/event-stream"})
    return conn, conn.getresponse()


def _events(resp: http.client.HTTPResponse, until: str) -> list[tuple[str, str]]:
    """``(event, data)`` pairs read from the stream up to the first event named ``until``."""
    out: list[tuple[str, str]] = []
    kind, data = "message", ""
    while True:
        line = resp.readline().decode()
        assert line, "the stream ended early"
        line = line.rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            data = line[6:]
        elif line == "" and data:
            out.append((kind, data))
            if kind == until:
                return out
            kind, data = "message", ""


def test_the_event_stream_sends_the_journal_then_follows_it(served: Served) -> None:
    served.client.post(
        "/v2/publish/https://example.com/a",
        body=b"{}",
        headers={"Authorization": "Bearer alice", "Upstash-Delay": "10s"},
    )
    served.client.get("/_sim/state")  # a control-plane read: left out of the stream
    conn, resp = _open_stream(served.server.port)
    assert resp.status == 200 and resp.headers["Content-Type"] == "text/event-stream"
    assert contract().validate_response("GET", "/_sim/events/stream", 200, resp.headers["Content-Type"], b"") == []
    first = _events(resp, "clock")
    entries = [json.loads(d) for k, d in first if k == "journal"]
    assert [(e["kind"], e["operation"]) for e in entries] == [("request", "qstash.publish")]
    served.advance("10s")  # the virtual destination answers: an attempt entry arrives live
    more = [json.loads(d) for k, d in _events(resp, "clock") if k == "journal"]
    assert [(e["kind"], e["outcome"]) for e in more] == [("attempt", "delivered")]
    served.client.post("/_sim/reset", json_body={})
    assert ("reset", "{}") in _events(resp, "clock")
    conn.close()


def test_event_streams_are_bounded_and_end_when_the_server_stops() -> None:
    server = ServerThread(Simulator(seed=1, clock="virtual")).start()
    opened = [_open_stream(server.port) for _ in range(MAX_STREAMS)]
    assert all(resp.status == 200 for _, resp in opened)
    conn, extra = _open_stream(server.port)
    body = extra.read()
    assert extra.status == 429 and json.loads(body)["error"].startswith("too many event streams open (at most 8)")
    assert contract().validate_response("GET", "/_sim/events/stream", 429, extra.headers["Content-Type"], body) == []
    conn.close()
    first_conn, first = opened.pop()
    first_conn.close()
    again_conn, again = _open_stream(server.port, "?since=0")
    opened.append((again_conn, again))
    server.stop()
    for c, resp in opened:
        assert resp.read()  # the greeting, then the end of the stream: read() returns once it is closed
        c.close()


def test_the_wheel_ships_the_dashboard_files(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as wheel:
        names = set(wheel.namelist())
    wanted = {f"qstash_sim/api/ui/static/{n}" for n in ("index.html", *ASSETS)}
    assert wanted <= names, sorted(wanted - names)


def test_without_accept_event_stream_the_answer_is_the_backlog_and_ends(client: Client) -> None:
    client.post("/v2/publish/https://example.com/a", body=b"{}", headers={"Authorization": "Bearer alice"})
    got = client.get("/_sim/events/stream?since=0")  # no Accept: text/event-stream (curl, a fuzzer)
    assert got.status == 200 and got.headers["Content-Type"] == "text/event-stream"
    events = [block for block in got.body.decode().split("\n\n") if "event: journal" in block]
    assert [json.loads(b.split("data: ", 1)[1])["kind"] for b in events] == ["request", "attempt"]
    assert client.get("/_sim/events/stream?since=-1").status == 400
    assert client.get("/_sim/events/stream?reads=maybe").status == 400
