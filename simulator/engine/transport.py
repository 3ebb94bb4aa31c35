"""Outbound HTTP to destinations, behind one small interface.

* :class:`RealTransport` sends over real sockets with one pooled ``aiohttp.ClientSession``.
* :class:`VirtualTransport` answers in memory (200 ``{}`` unless a scripted ``responder`` says otherwise).
* :class:`RoutingTransport` picks one per URL: loopback hosts and hosts the user allowed
  (``--deliver-to``) go real, everything else virtual. The simulator never reaches a host the user did
  not allow.

Documented choices:

* Redirects are never followed: QStash does not document following them, so a 3xx is a failed attempt.
* At most :data:`MAX_RESPONSE_BODY` bytes of a response body are kept; the rest is discarded (the
  connection is closed rather than drained).
* A real socket waits for the attempt's timeout (the message's ``Upstash-Timeout``, default the plan
  maximum; capped by ``--max-timeout`` upstream), and at most ``timeout_cap_ms`` when one is set (none by
  default).
* A virtual answer may take virtual time (``Outcome.duration_ms``); one longer than the message timeout
  becomes ``timeout after <timeout>ms`` at the timeout instant.
"""

from __future__ import annotations

import errno
import fnmatch
import ipaddress
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable
from urllib.parse import urlsplit

import aiohttp

from qstash_sim.base.clock import real_monotonic_ms
from qstash_sim.domain.message import LazyHeader

__all__ = [
    "DEFAULT_REAL_TIMEOUT_CAP_MS",
    "MAX_RESPONSE_BODY",
    "OutboundRequest",
    "Outcome",
    "RealTransport",
    "Responder",
    "RoutingTransport",
    "Transport",
    "VirtualTransport",
    "is_loopback_host",
    "is_own_address",
    "scripted_answer",
]

MAX_RESPONSE_BODY = 1024 * 1024  # 1 MiB of a destination's answer is kept (DLQ/callbacks show it)
DEFAULT_REAL_TIMEOUT_CAP_MS: int | None = None  # no cap of its own: the attempt's timeout decides
_MEMO_SIZE = 4096  # URLs whose routing (by host) is remembered; cleared when full or when the allow list changes


class OutboundRequest:
    """One HTTP request the simulator sends to a destination (``lazy``: a header made when ``headers`` is
    first read, the signature of an attempt to a virtual destination; ``flow_key``: its message's
    flow-control key, which is not sent)."""

    __slots__ = ("_headers", "body", "flow_key", "lazy", "method", "url")

    def __init__(
        self,
        url: str,
        method: str,
        headers: dict[str, str],
        body: bytes,
        lazy: LazyHeader | None = None,
        flow_key: str | None = None,
    ) -> None:
        self.url = url
        self.method = method
        self._headers = headers
        self.body = body
        self.lazy = lazy
        self.flow_key = flow_key  # the message's Upstash-Flow-Control-Key (not sent: scenario scripts match it)

    @property
    def headers(self) -> dict[str, str]:
        """The headers sent, every one of them."""
        return self._headers if self.lazy is None else self.lazy.fill()

    def __repr__(self) -> str:
        return f"OutboundRequest({self.url!r}, {self.method!r}, headers={self.headers!r}, body={self.body!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, OutboundRequest):
            return NotImplemented
        return (self.url, self.method, self.headers, self.body) == (other.url, other.method, other.headers, other.body)

    __hash__ = None  # type: ignore[assignment]  # mutable headers, as the dataclass it replaces


@dataclass(slots=True)
class Outcome:
    """What came of one request: a response (``status``) or a failure (``error``).

    ``duration_ms`` is how long the exchange took: real milliseconds for a real socket, *virtual*
    milliseconds for a virtual destination (the engine completes such an attempt that much later on the
    virtual clock).
    """

    status: int | None
    headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""
    error: str | None = None
    duration_ms: int = 0
    virtual: bool = False
    rule: str | None = None  # the scenario script that produced a scripted answer (journalled)

    @classmethod
    def response(
        cls,
        status: int,
        body: bytes | str = b"",
        headers: dict[str, str | list[str]] | None = None,
        *,
        duration_ms: int = 0,
    ) -> Outcome:
        """A scripted answer: ``Outcome.response(503, headers={"Retry-After": "30"})``."""
        hdrs = {k: ([v] if isinstance(v, str) else list(v)) for k, v in (headers or {}).items()}
        raw = body.encode() if isinstance(body, str) else body
        return cls(status=status, headers=hdrs, body=raw, duration_ms=duration_ms, virtual=True)

    @classmethod
    def failure(cls, error: str, *, duration_ms: int = 0) -> Outcome:
        """A scripted transport failure: ``Outcome.failure("connection reset")``."""
        return cls(status=None, error=error, duration_ms=duration_ms, virtual=True)

    @classmethod
    def hang(cls, duration_ms: int, status: int = 200, body: bytes | str = b"{}") -> Outcome:
        """A destination that answers after ``duration_ms`` virtual ms (a timeout if longer than allowed)."""
        return cls.response(status, body, duration_ms=duration_ms)

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return self.error is None and self.status is not None and 200 <= self.status < 300

    def header(self, name: str) -> str | None:
        """The first value of a response header, name case-insensitive."""
        low = name.lower()
        for k, v in self.headers.items():
            if k.lower() == low and v:
                return v[0]
        return None


Responder = Callable[[OutboundRequest], "Outcome | None"]


@runtime_checkable
class Transport(Protocol):
    """Sends one request; never raises for network trouble (that is an ``Outcome`` with ``error``)."""

    async def send(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
        """Send ``req``, giving up after ``timeout_ms``."""
        ...


class VirtualTransport:
    """An in-memory destination: 200 ``{}`` at once, unless ``responder`` scripts another answer.

    ``responder(req)`` returns an :class:`Outcome` (``Outcome.response``/``failure``/``hang``) or ``None``
    for the default answer. Every request is kept in ``requests`` (bounded by ``keep``).
    """

    def __init__(self, responder: Responder | None = None, *, keep: int = 10_000) -> None:
        self.responder: Responder | None = responder
        self._recorded: list[OutboundRequest] = []  # up to 2 x keep: trimmed in bulk (O(1) per request)
        self._keep = keep

    @property
    def requests(self) -> list[OutboundRequest]:
        """The last ``keep`` requests, oldest first, for tests of the transport (a copy)."""
        return self._recorded[-self._keep :] if self._keep else []

    async def send(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
        """Answer ``req`` from the script (or 200 ``{}``), with ``virtual=True``."""
        return self.answer(req, timeout_ms)

    def answer(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
        """:meth:`send` without the coroutine (the engine's inline path for virtual destinations)."""
        self.record(req)
        scripted = self.responder(req) if self.responder is not None else None
        if scripted is None:
            return Outcome(status=200, headers={"Content-Type": ["application/json"]}, body=b"{}", virtual=True)
        return scripted_answer(scripted, timeout_ms)

    def record(self, req: OutboundRequest) -> None:
        """Keep ``req`` in ``requests`` (bounded by ``keep``), as :meth:`send` does."""
        if self._keep:
            rec = self._recorded
            rec.append(req)
            if len(rec) > 2 * self._keep:
                del rec[: len(rec) - self._keep]

    def clear_recorded(self) -> None:
        """Forget the recorded requests (the script stays)."""
        self._recorded.clear()


def scripted_answer(scripted: Outcome, timeout_ms: int) -> Outcome:
    """What the virtual destination answers for a scripted ``Outcome``: a copy marked virtual (so a responder
    may reuse one object for many requests), or a timeout at ``timeout_ms`` if it takes longer than that."""
    if scripted.duration_ms > timeout_ms:
        return Outcome(
            status=None,
            error=f"timeout after {timeout_ms}ms",
            duration_ms=timeout_ms,
            virtual=True,
            rule=scripted.rule,
        )
    return Outcome(
        status=scripted.status,
        headers={k: list(v) for k, v in scripted.headers.items()},
        body=scripted.body,
        error=scripted.error,
        duration_ms=max(0, scripted.duration_ms),
        virtual=True,
        rule=scripted.rule,
    )


class RealTransport:
    """Real HTTP with one pooled ``aiohttp.ClientSession``, created lazily in the running loop.

    ``pool_size`` caps its connections (0, the default: no cap of its own; the engine's ``Limits.in_flight``
    bounds the attempts on the wire, and a request waiting for a pooled connection would spend its timeout
    waiting)."""

    def __init__(
        self,
        *,
        max_body: int = MAX_RESPONSE_BODY,
        pool_size: int = 0,
        timeout_cap_ms: int | None = DEFAULT_REAL_TIMEOUT_CAP_MS,
    ) -> None:
        self.timeout_cap_ms = timeout_cap_ms
        self._session: aiohttp.ClientSession | None = None
        self._max_body = max_body
        self._pool_size = pool_size

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size),
                auto_decompress=False,  # keep the destination's bytes as they were sent
                # Never read the proxy environment: a proxy would reach hosts the user did not allow.
                trust_env=False,
            )
        return self._session

    async def send(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
        """Send ``req`` over a real socket, waiting at most ``timeout_ms`` (and ``timeout_cap_ms`` if set).

        Network trouble becomes ``Outcome(error=...)``: ``connection refused``, ``timeout after 30000ms``,
        ``connection reset``...
        """
        if self.timeout_cap_ms is not None:
            timeout_ms = min(timeout_ms, self.timeout_cap_ms)
        session = self._get_session()
        start = real_monotonic_ms()
        # aiohttp adds Accept, Accept-Encoding, User-Agent and (for bytes) a default Content-Type:
        # skip them so the destination receives exactly our headers (plus Host and Content-Length).
        present = {k.lower() for k in req.headers}
        skip = [h for h in ("Accept", "Accept-Encoding", "User-Agent", "Content-Type") if h.lower() not in present]
        try:
            async with session.request(
                req.method,
                req.url,
                headers=req.headers,
                data=req.body,
                allow_redirects=False,
                skip_auto_headers=skip,
                timeout=aiohttp.ClientTimeout(total=timeout_ms / 1000),
            ) as resp:
                body = await self._read_capped(resp)
                headers: dict[str, list[str]] = {}
                for k, v in resp.headers.items():
                    headers.setdefault(k, []).append(v)
                return Outcome(
                    status=resp.status,
                    headers=headers,
                    body=body,
                    duration_ms=round(real_monotonic_ms() - start),
                )
        except TimeoutError:
            return self._failed(f"timeout after {timeout_ms}ms", start)
        except aiohttp.ClientConnectorError as exc:
            return self._failed(_connect_error(exc), start)
        except aiohttp.ServerDisconnectedError:
            return self._failed("connection reset", start)
        except aiohttp.ClientOSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE) or "write request body" in str(exc):
                return self._failed("connection reset", start)  # the peer reset while we were sending
            return self._failed(f"network error: {_short(str(exc))}", start)
        except aiohttp.ClientPayloadError as exc:
            return self._failed(f"connection reset while reading the response ({exc})", start)
        except aiohttp.InvalidURL as exc:
            return self._failed(f"invalid url: {exc}", start)
        except aiohttp.ClientResponseError as exc:  # the answer was not HTTP (its parser's words, cut short)
            return self._failed(f"invalid HTTP response: {_short(exc.message)}", start)
        except aiohttp.ClientError as exc:
            return self._failed(f"{type(exc).__name__}: {_short(str(exc))}", start)

    async def _read_capped(self, resp: aiohttp.ClientResponse) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while size < self._max_body:
            chunk = await resp.content.read(min(65536, self._max_body - size))
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        if not resp.content.at_eof():
            resp.close()  # discard the rest: closing is cheaper than draining an endless body
        return b"".join(chunks)

    @staticmethod
    def _failed(error: str, start: float) -> Outcome:
        return Outcome(status=None, error=error, duration_ms=round(real_monotonic_ms() - start))

    async def close(self) -> None:
        """Close the pooled session (safe to call twice)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _short(text: str, limit: int = 160) -> str:
    """One line of at most ``limit`` characters (a destination's garbage must not fill the journal)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


def _connect_error(exc: aiohttp.ClientConnectorError) -> str:
    err = getattr(exc, "os_error", None)
    if isinstance(err, ConnectionRefusedError) or getattr(err, "errno", None) == errno.ECONNREFUSED:
        return "connection refused"
    if getattr(err, "errno", None) == errno.ECONNRESET:
        return "connection reset"
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return f"dns lookup failed for {exc.host}"
    return f"connection failed: {err or exc}"


def is_own_address(url: str, ports: Collection[int]) -> bool:
    """Whether ``url`` points at a loopback host on one of ``ports`` (the simulator's own listeners)."""
    return _loopback_port(url) in ports


def _loopback_port(url: str) -> int:
    """The port ``url`` calls when its host is loopback, else -1."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return -1
    if not host or not is_loopback_host(host):
        return -1
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return port


def is_loopback_host(host: str) -> bool:
    """``127.0.0.1``, anything in 127.0.0.0/8, ``::1`` and ``localhost`` are loopback."""
    h = host.strip("[]").lower().rstrip(".")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


class RoutingTransport:
    """Real sockets for loopback and allowed hosts, the virtual destination for everything else.

    ``allow`` holds ``fnmatch`` patterns tried against ``host`` and ``host:port`` (port explicit or the
    scheme's default), e.g. ``*.example.com`` or ``api.example.com:8443``. ``loopback=False`` sends even
    loopback hosts to the virtual destination. ``real_timeout_cap_ms`` (optional) caps the real wait on
    top of the real transport's own cap. ``force_virtual(url)`` returning ``True`` sends that URL to the
    virtual destination whatever its host (fault scenarios use it for the URLs they script every time).

    ``divert(req)`` is asked once for each request that would go real, just before it goes: an ``Outcome``
    answers that request from the virtual destination instead (recorded there, a ``duration_ms`` longer than
    the timeout becomes a timeout), ``None`` lets it go real. Fault scenarios use it for scripts that answer
    only some deliveries (``probability``): the draw and the routing are then one decision per attempt,
    taken synchronously at the start of :meth:`send`, so attempts started in order draw in order.
    """

    def __init__(
        self,
        real: Transport,
        virtual: Transport,
        allow: Iterable[str] = (),
        *,
        loopback: bool = True,
        real_timeout_cap_ms: int | None = None,
        force_virtual: Callable[[str], bool] | None = None,
        divert: Callable[[OutboundRequest], Outcome | None] | None = None,
        own_ports: Collection[int] = (),
    ) -> None:
        self.own_ports = own_ports  # the simulator's listening ports: never delivered to (a live view)
        self.force_virtual = force_virtual
        self.divert = divert
        self.real = real
        self.virtual = virtual
        self.allow: list[str] = []
        self._memo: dict[str, bool] = {}  # url -> what its host says (parsing one costs ~15 us)
        self._own_memo: dict[str, int] = {}  # url -> its port when its host is loopback, else -1
        self.set_allow(allow)
        self._loopback = loopback
        self.real_timeout_cap_ms = real_timeout_cap_ms

    @property
    def loopback(self) -> bool:
        """Whether loopback hosts are delivered for real (the default)."""
        return self._loopback

    @loopback.setter
    def loopback(self, value: bool) -> None:
        self._loopback = value
        self._memo.clear()

    def set_allow(self, allow: Iterable[str]) -> None:
        """Replace the patterns of hosts delivered for real (``--deliver-to``)."""
        self.allow = [_normalise_pattern(p) for p in allow]
        self._memo.clear()

    def is_real(self, url: str) -> bool:
        """Whether ``url`` would be sent over a real socket."""
        if self.force_virtual is not None and self.force_virtual(url):
            return False
        hit = self._memo.get(url)
        if hit is None:
            hit = self._host_is_real(url)
            if len(self._memo) >= _MEMO_SIZE:
                self._memo.clear()
            self._memo[url] = hit
        return hit

    def _is_own(self, url: str) -> bool:
        """:func:`is_own_address` for ``own_ports`` (a live view), the URL's loopback port remembered per URL
        (it is asked on every attempt; ``-1``: not a loopback URL)."""
        port = self._own_memo.get(url)
        if port is None:
            port = _loopback_port(url)
            if len(self._own_memo) >= _MEMO_SIZE:
                self._own_memo.clear()
            self._own_memo[url] = port
        return port in self.own_ports

    def _host_is_real(self, url: str) -> bool:
        try:
            parts = urlsplit(url)
            host = parts.hostname
            port = parts.port
        except ValueError:
            return False
        if parts.scheme not in ("http", "https") or not host:
            return False
        if self._loopback and is_loopback_host(host):
            return True
        if port is None:
            port = 443 if parts.scheme == "https" else 80
        shown = f"[{host}]" if ":" in host else host
        candidates = (host, f"{shown}:{port}")
        return any(fnmatch.fnmatchcase(c, p) for p in self.allow for c in candidates)

    async def send(self, req: OutboundRequest, timeout_ms: int) -> Outcome:
        """Send ``req`` through the real transport if :meth:`is_real` (and ``divert`` lets it), else through
        the virtual one. The simulator's own address is never called (a failed attempt instead)."""
        if self.own_ports and self._is_own(req.url):
            return Outcome(status=None, error="refused: the destination is the simulator's own address")
        if self.is_real(req.url):
            diverted = self.divert(req) if self.divert is not None else None
            if diverted is None:
                cap = self.real_timeout_cap_ms
                return await self.real.send(req, timeout_ms if cap is None else min(timeout_ms, cap))
            record = getattr(self.virtual, "record", None)
            if callable(record):
                record(req)
            return scripted_answer(diverted, timeout_ms)
        return await self.virtual.send(req, timeout_ms)

    def answer_virtual(self, req: OutboundRequest, timeout_ms: int) -> Outcome | None:
        """What :meth:`send` answers for a URL that :meth:`is_real` says is not real, synchronously, when the
        virtual transport can answer so (``None``: await :meth:`send` instead)."""
        if self.own_ports and self._is_own(req.url):
            return Outcome(status=None, error="refused: the destination is the simulator's own address")
        answer = getattr(self.virtual, "answer", None)
        return answer(req, timeout_ms) if callable(answer) else None

    async def close(self) -> None:
        """Close both transports when they can be closed."""
        for t in (self.real, self.virtual):
            closer = getattr(t, "close", None)
            if closer is not None:
                await closer()


def _normalise_pattern(pattern: str) -> str:
    p = pattern.strip().lower()
    for prefix in ("http://", "https://"):
        p = p.removeprefix(prefix)
    return p.rstrip("/")
