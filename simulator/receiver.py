"""A built-in destination: a loopback HTTP endpoint that records each delivery, checks its signature, and
answers what it is told (200 by default, or fail the first N).

``qstash-sim receive`` runs one in the foreground and prints each delivery; the pytest fixture
``qstash_receiver`` runs one on a daemon thread for a test. It listens on 127.0.0.1 only.

Signatures are checked the way the official Receivers check them (:func:`qstash_sim.engine.signing.verify`)
against every account's keys that ``keys()`` returns, and a failure says why: another key, another URL
(the claim ``sub`` against ``http://<Host header><path>``), a changed body, an expired token.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from qstash_sim.domain.account import SigningKeys
from qstash_sim.engine.signing import Verification, verify

__all__ = ["KeysSource", "ReceivedDelivery", "Receiver", "simulator_keys"]

KeysSource = Callable[[], Iterable[tuple[str, SigningKeys]]]  # () -> [(account, keys), ...]
_SHOWN = (
    "content-type",
    "upstash-message-id",
    "upstash-retried",
    "upstash-schedule-id",
    "upstash-topic-name",
    "upstash-caller-ip",
    "upstash-region",
    "user-agent",
)


@dataclass(frozen=True, slots=True)
class ReceivedDelivery:
    """One request the receiver got, with what its signature check found."""

    seq: int
    method: str
    path: str  # path and query string, as received
    url: str  # http://<Host header><path>: what the signature's ``sub`` must name
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered
    verification: Verification
    account: str | None  # the account whose keys verified the signature

    @property
    def verified(self) -> bool:
        """Whether ``Upstash-Signature`` verifies for this URL and body with one account's keys."""
        return self.verification.ok

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not JSON)."""
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        """A header's value, name case-insensitive."""
        low = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == low), None)

    @property
    def message_id(self) -> str | None:
        """``Upstash-Message-Id``."""
        return self.header("Upstash-Message-Id")

    def describe(self) -> str:
        """A few lines for a terminal: request line, headers that matter, body, signature verdict."""
        lines = [f"#{self.seq} {self.method} {self.path} -> {self.status}"]
        lines += [f"   {k}: {v}" for k, v in self.headers.items() if k.lower() in _SHOWN]
        body = self.text if len(self.body) <= 2000 else self.text[:2000] + f"... ({len(self.body)} bytes)"
        lines.append(f"   body: {body}")
        v = self.verification
        if v.ok:
            lines.append(f"   signature: ok (account {self.account}, {v.key} key)")
        else:
            lines.append(f"   signature: NOT VERIFIED: {v.reason}")
        return "\n".join(lines)


@dataclass(slots=True)
class _Plan:
    status: int = 200
    fail_first: int = 0
    fail_status: int = 503
    answered: int = 0


class Receiver:
    """A loopback endpoint on ``port`` (0: any free one). ``status`` answers every delivery, after
    ``fail_first`` answers of ``fail_status``. ``keys()`` gives the accounts' keys to verify against;
    ``on_delivery`` is called for each delivery (from the server's thread)."""

    def __init__(
        self,
        *,
        port: int = 0,
        status: int = 200,
        fail_first: int = 0,
        fail_status: int = 503,
        keys: KeysSource | None = None,
        on_delivery: Callable[[ReceivedDelivery], None] | None = None,
        max_body: int = 16 * 1024 * 1024,
    ) -> None:
        self._plan = _Plan(status, fail_first, fail_status)
        self._keys = keys or (lambda: ())
        self._on_delivery = on_delivery
        self._lock = threading.Lock()
        self._received: list[ReceivedDelivery] = []
        self._max_body = max_body
        self._httpd = _Server(("127.0.0.1", port), self._handler())
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self._thread: threading.Thread | None = None

    # -- life

    def start(self) -> Receiver:
        """Serve on a daemon thread; returns ``self``."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="qstash-sim-receiver", daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until :meth:`stop` (or Ctrl-C)."""
        self._httpd.serve_forever()

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent)."""
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(10)
            self._thread = None
        self._httpd.server_close()

    # -- what the test (or the user) uses

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:PORT`` + ``path``: a destination to publish to."""
        return f"http://127.0.0.1:{self.port}{path if path.startswith('/') else '/' + path}"

    def respond(self, status: int = 200, *, fail_first: int = 0, fail_status: int = 503) -> None:
        """Answer ``status`` from now on, after ``fail_first`` answers of ``fail_status``."""
        with self._lock:
            self._plan = _Plan(status, fail_first, fail_status)

    @property
    def deliveries(self) -> list[ReceivedDelivery]:
        """Every delivery received so far, in order (a copy)."""
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        """Forget the deliveries and answer 200 again."""
        with self._lock:
            self._received.clear()
            self._plan = _Plan()

    # -- internals

    def _answer_status(self) -> int:
        with self._lock:
            plan = self._plan
            plan.answered += 1
            return plan.fail_status if plan.answered <= plan.fail_first else plan.status

    def _record(self, method: str, path: str, headers: dict[str, str], body: bytes, status: int) -> ReceivedDelivery:
        host = next((v for k, v in headers.items() if k.lower() == "host"), f"127.0.0.1:{self.port}")
        url = f"http://{host}{path}"
        token = next((v for k, v in headers.items() if k.lower() == "upstash-signature"), None)
        verdict, account = _check(token, url, body, self._keys())
        with self._lock:
            d = ReceivedDelivery(len(self._received) + 1, method, path, url, headers, body, status, verdict, account)
            self._received.append(d)
        if self._on_delivery is not None:
            self._on_delivery(d)
        return d

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > outer._max_body:
                    self.send_error(413)
                    return
                body = self.rfile.read(length) if length else b""
                status = outer._answer_status()
                outer._record(self.command, self.path, dict(self.headers.items()), body, status)
                payload = b'{"ok":true}' if 200 <= status < 300 else b'{"error":"the receiver answers %d"}' % status
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _any  # noqa: N815 - http.server's names

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


class _Server(ThreadingHTTPServer):
    # The default listen backlog of 5 makes bursts of concurrent deliveries wait for SYN retransmits.
    request_queue_size = 256


def _check(
    token: str | None, url: str, body: bytes, accounts: Iterable[tuple[str, SigningKeys]]
) -> tuple[Verification, str | None]:
    """The verdict with the best-matching account: verified, else the account whose key signed it (so the
    reason is about the URL, body or time), else "another key"."""
    now = time.time()
    best: tuple[Verification, str | None] | None = None
    for account, keys in accounts:
        v = verify(token, keys, url, body, now)
        if v.ok:
            return v, account
        if v.key is not None and (best is None or best[0].key is None):
            best = (v, account)
        elif best is None:
            best = (v, None)
    if best is None:
        return verify(token, SigningKeys("", ""), url, body, now), None
    return best


def simulator_keys(base_url: str, control_token: str | None = None) -> KeysSource:
    """A key source reading a running simulator's control API (every account, then the default one).

    Read at each delivery (keys rotate); a simulator that cannot be reached gives no keys, and the verdict
    then says the signature was made with another key.
    """

    def read() -> list[tuple[str, SigningKeys]]:
        headers = {"Authorization": f"Bearer {control_token}"} if control_token else {}
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for path in ("/_sim/accounts", "/_sim/signing-keys"):
            req = urllib.request.Request(base_url.rstrip("/") + path, headers=headers)
            try:
                with opener.open(req, timeout=5) as resp:
                    data = json.loads(resp.read())
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and isinstance(data.get("accounts"), list):
                return [(a["name"], SigningKeys(a["current"], a["next"])) for a in data["accounts"]]
            if isinstance(data, dict) and "current" in data:
                return [(str(data.get("account", "default")), SigningKeys(data["current"], data["next"]))]
        return []

    return read
