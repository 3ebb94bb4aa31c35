"""The HTTP connection layer under the application: header limits, a head read timeout, JSON parser errors.

aiohttp parses each request head with fixed limits and answers a head it refuses (request line or a
header field over ``max_line_size``/``max_field_size``, more than ``max_headers`` fields, malformed
syntax) from :meth:`RequestHandler.handle_error` -- before any route or middleware runs -- with a
``text/plain`` body and an ERROR log with a traceback. It also has no timeout while a head arrives: a
client that trickles header bytes holds its connection for as long as it likes.

:class:`AppRunner` builds the server with :class:`RequestHandler` (a subclass of aiohttp's, through
aiohttp's documented ``handler_args``/``AppRunner`` pieces; nothing of aiohttp is patched), which

* renders every error aiohttp answers by itself as QStash's ``{"error": "..."}`` JSON body, and logs
  a refused head as one WARNING line (a 500 from a bug keeps its traceback);
* gives a request head ``read_timeout()`` seconds from its first byte (or from the connection's opening):
  past that it answers ``408`` with the JSON body (or just closes a connection that sent nothing) and
  closes the connection.

Limitation: the timer starts when the connection is idle (waiting for a request); a partial head
pipelined behind a request still being handled is timed from the next byte that arrives after it.

aiohttp versions: this module is the one place in qstash-sim that touches aiohttp's private internals
(``RequestHandler._request_in_progress``, ``._messages``, ``._waiter``, ``._loop``; ``web.Server._kwargs``;
``AppRunner._make_server``). They were verified on the aiohttp releases ``AIOHTTP_SUPPORTED`` names, so
importing this module checks the installed aiohttp first (:func:`check_aiohttp_version`, then
:func:`check_aiohttp_internals`) and refuses to start on any other release with
:class:`UnsupportedAiohttpVersion`, naming the version and the range, instead of an ``AttributeError``
in the middle of a request. ``QSTASH_SIM_ALLOW_UNVERIFIED_AIOHTTP=1`` lets a *newer* release through
(never an older one): the internals are still checked, the behaviour is not guaranteed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestHandler as _AiohttpRequestHandler

from qstash_sim.errors import UnsupportedAiohttpVersion

# ---------------------------------------------------------------------------------------- aiohttp versions
# The releases whose private internals (and parser behaviour) the whole test suite was run against:
# 3.13.4 is the floor (pyproject.toml, constraints/floors.txt: older releases do not enforce
# ``max_headers``, and before 3.10.6 there is no ``_request_in_progress``); 3.14.5 the newest run.
# Raise the upper bound only after running the suite on the new release.
AIOHTTP_VERIFIED_MIN = (3, 13, 4)  # inclusive
AIOHTTP_VERIFIED_BELOW = (3, 15, 0)  # exclusive: every 3.14.x
AIOHTTP_SUPPORTED = ">=3.13.4,<3.15"
ALLOW_UNVERIFIED_ENV = "QSTASH_SIM_ALLOW_UNVERIFIED_AIOHTTP"

_VERSION_RE = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?(?:\.\d+)*(.*)$")
_PRERELEASE_RE = re.compile(r"^[-_.]?(a|alpha|b|beta|c|rc|pre|preview|dev)", re.IGNORECASE)


def _unsupported(version: str, why: str) -> UnsupportedAiohttpVersion:
    return UnsupportedAiohttpVersion(
        f"qstash-sim cannot run on aiohttp {version}: {why}. Supported: aiohttp{AIOHTTP_SUPPORTED} "
        f"(qstash_sim.http.protocol uses aiohttp internals verified on those releases only); "
        f'install one with: pip install "aiohttp{AIOHTTP_SUPPORTED}"'
    )


def check_aiohttp_version(version: str, *, allow_newer: bool = False) -> tuple[int, int, int]:
    """``(major, minor, micro)`` of ``version`` if it is in ``AIOHTTP_SUPPORTED``; else raise.

    ``check_aiohttp_version("3.14.5")`` -> ``(3, 14, 5)``; ``"3.12.15"``, ``"4.0.0"``, ``"3.15.0a1"`` and
    ``"garbage"`` raise :class:`UnsupportedAiohttpVersion`. A pre-release sorts before its release
    (``"3.13.4rc1"`` is too old). ``allow_newer`` lets a release above the range through, never one below.
    """
    m = _VERSION_RE.match(version or "")
    if m is None:
        raise _unsupported(repr(version), "its version number cannot be read")
    major, minor, micro = int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)
    pre = bool(_PRERELEASE_RE.match(m.group(4).strip()))
    key = (major, minor, micro, 0 if pre else 1)  # 0: a pre-release, before the release itself
    if key < (*AIOHTTP_VERIFIED_MIN, 1):
        raise _unsupported(version, "it is older than the oldest release verified")
    if key >= (*AIOHTTP_VERIFIED_BELOW, 0) and not allow_newer:
        what = "a new major version" if major > AIOHTTP_VERIFIED_MIN[0] else "newer than the newest release verified"
        raise _unsupported(
            version,
            f"it is {what} (set {ALLOW_UNVERIFIED_ENV}=1 to try it anyway)",
        )
    return major, minor, micro


# What this module reads or overrides of aiohttp's, beyond its documented API.
_PRIVATE_HANDLER_ATTRS = ("_request_in_progress", "_messages", "_waiter", "_loop")


def check_aiohttp_internals(
    version: str,
    handler: type = _AiohttpRequestHandler,
    server: type = web.Server,
    runner: type = web.AppRunner,
) -> None:
    """Raise :class:`UnsupportedAiohttpVersion` if an aiohttp internal this module relies on is missing.

    ``handler``/``server``/``runner`` are aiohttp's classes (parameters only so that a test can pass others).
    """
    # RequestHandler's state is in __slots__: a class attribute (a slot descriptor) per name.
    missing = [f"RequestHandler.{n}" for n in _PRIVATE_HANDLER_ATTRS if not hasattr(handler, n)]
    # web.Server sets these in __init__ (no class attribute to look at): they are names its code assigns.
    server_names = getattr(getattr(getattr(server, "__init__", None), "__code__", None), "co_names", ())
    missing += [f"web.Server.{n}" for n in ("_kwargs", "handler_cancellation") if n not in server_names]
    if not callable(getattr(runner, "_make_server", None)):
        missing.append("web.AppRunner._make_server")
    if missing:
        raise _unsupported(version, f"it lacks {', '.join(missing)}")


def _check_installed_aiohttp() -> None:
    version = getattr(aiohttp, "__version__", "")
    allow = os.environ.get(ALLOW_UNVERIFIED_ENV, "").strip().lower() in ("1", "true", "yes")
    check_aiohttp_version(version, allow_newer=allow)
    check_aiohttp_internals(version)


_check_installed_aiohttp()  # at import: before any server is built

log = logging.getLogger("qstash_sim.http")

# aiohttp's defaults, made explicit (``qstash-sim serve --max-header-size`` changes the two sizes).
DEFAULT_MAX_HEADER_SIZE = 8190  # bytes: the request line, and each header field
DEFAULT_MAX_HEADERS = 128  # header fields per request


def handler_args(
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE, max_headers: int = DEFAULT_MAX_HEADERS
) -> dict[str, int]:
    """The parser limits, as ``web.Application(handler_args=...)`` / ``web.AppRunner(**kwargs)`` take them."""
    return {"max_line_size": max_header_size, "max_field_size": max_header_size, "max_headers": max_headers}


def _error_body(status: int, message: str) -> bytes:
    return json.dumps({"error": message}, separators=(",", ":")).encode()


class RequestHandler(_AiohttpRequestHandler):
    """aiohttp's connection handler, with JSON errors and a read timeout on the request head."""

    def __init__(self, manager: web.Server, *, head_timeout: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._head_timeout = head_timeout
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_since: float | None = None  # loop time the pending head started (None: no head pending)
        self._head_started = False  # a byte of the pending head has arrived

    # ------------------------------------------------------------------ head read timeout
    # One timer per connection, re-armed lazily: a busy keep-alive connection pays a clock read per
    # request, not a timer creation and cancellation (that cost ~7 % of a publish).

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._head_since = self._loop.time()  # a connection that sends nothing is timed from its opening
        self._arm_head_timer(self._head_timeout())

    def data_received(self, data: bytes) -> None:
        # Between requests (none being handled, none parsed and queued), a byte starts a new head.
        # (``_request_in_progress`` and ``_messages`` are aiohttp's own RequestHandler state.)
        if data and not self._head_started and not self._request_in_progress and not self._messages:
            self._head_started = True
            if self._head_since is None:
                self._head_since = self._loop.time()
            if self._head_timer is None:
                self._arm_head_timer(self._head_timeout())
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:  # a whole head was parsed (or refused): nothing pending
            self._head_since = None
            self._head_started = False

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def _waiting_for_request(self) -> bool:
        """The connection is between requests: aiohttp's loop waits for the next parsed head (its ``_waiter``)."""
        waiter = self._waiter
        return waiter is not None and not waiter.done()

    def _arm_head_timer(self, delay: float) -> None:
        if delay > 0 and self._head_timer is None:
            self._head_timer = self._loop.call_later(delay, self._head_timer_fired)

    def _head_timer_fired(self) -> None:
        self._head_timer = None
        if self._head_since is None:
            return  # no head pending; the next one re-arms the timer
        timeout = self._head_timeout()
        remaining = self._head_since + timeout - self._loop.time()
        if remaining > 0:  # this head started after the timer was armed: wait for its own deadline
            self._arm_head_timer(remaining)
            return
        self._head_timed_out(timeout)

    def _head_timed_out(self, timeout: float) -> None:
        transport = self.transport
        if transport is None or transport.is_closing() or not self._waiting_for_request():
            return  # a request is being handled: its body has its own timeout (the dispatcher's)
        if self._head_started:
            message = (
                f"request head: not received within {timeout:g} s (the server's read timeout); "
                "send the request line and headers promptly"
            )
            log.warning("408 to %s: %s", _peer(transport), message)
            body = _error_body(408, message)
            transport.write(
                b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json; charset=utf-8\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
            )
        self.force_close()  # the written answer is flushed before the socket closes

    # ------------------------------------------------------------------ errors aiohttp answers itself

    def handle_error(
        self,
        request: Any,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """The answer aiohttp gives without the application (a refused head, an unhandled error): JSON."""
        if request.writer.output_size > 0:  # part of a response is out already: only closing is left
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Error"
        if status >= 500:
            self.logger.error("%d answering %s", status, _remote(request), exc_info=exc)
            text = f"internal error: {type(exc).__name__}" if exc is not None else phrase
        else:
            detail = " ".join((message or getattr(exc, "message", None) or phrase).split())
            # One line, no traceback: a refused head is the client's mistake, not the server's.
            log.warning("%d to %s: request head refused by the HTTP parser: %s", status, _remote(request), detail)
            text = f"request head: {detail}"
        resp = web.Response(
            body=_error_body(status, text),
            status=status,
            content_type="application/json",
            headers={"Connection": "close"},
        )
        resp.force_close()
        return resp


def _remote(request: Any) -> str:
    try:
        return str(request.remote)
    except Exception:  # noqa: BLE001 - only for a log line
        return "?"


def _peer(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if isinstance(peer, tuple) and peer else "?"


class Server(web.Server):
    """``web.Server`` whose connections are :class:`RequestHandler` with a head read timeout."""

    def __init__(self, *args: Any, head_timeout: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timeout = head_timeout

    def __call__(self) -> RequestHandler:
        # What web.Server.__call__ does, with our class: ``_kwargs`` are the handler's keyword arguments.
        return RequestHandler(self, loop=self._loop, head_timeout=self._head_timeout, **self._kwargs)


class AppRunner(web.AppRunner):
    """``web.AppRunner`` serving through :class:`Server` (same start-up, cleanup and sites).

    ``head_timeout()`` is read for each new head, so changing the dispatcher's ``read_timeout`` at run
    time changes it too.
    """

    def __init__(self, app: web.Application, *, head_timeout: Callable[[], float], **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self._head_timeout = head_timeout

    async def _make_server(self) -> web.Server:
        base = await super()._make_server()  # runs the app's start-up; its kwargs are what we need
        return Server(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=asyncio.get_running_loop(),
            head_timeout=self._head_timeout,
            **base._kwargs,  # debug, access_log_class, handler_args (the parser limits), access_log, ...
        )
