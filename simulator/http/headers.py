"""Turning a request's ``Upstash-*`` headers into the core's commands, with 400s that name the field.

The HTTP layer has already checked the top-level headers against ``openapi.yaml``; this module does the
checks a schema cannot (durations, retry-delay expressions, destinations) and is the only check for the
``headers`` object of each batch item, so its messages carry the item's location, e.g.
``body /1/headers/Upstash-Retries: expected an integer from 0 to 5, got "x"``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from qstash_sim.base.durations import parse_duration
from qstash_sim.domain.commands import (
    MAX_RETRIES,
    METHODS,
    CallbackSettings,
    MessageSettings,
    PublishCommand,
    ScheduleCommand,
)
from qstash_sim.domain.flow import FlowControl
from qstash_sim.engine.cron import check_cron
from qstash_sim.engine.retry import compile_retry_delay
from qstash_sim.errors import BadRequest

# Headers that describe a connection or a message's framing, not its content: never forwarded, whether
# named by Upstash-Forward-* or sent with Upstash-Header-Forward. The delivery sets its own (a forwarded
# Content-Length could cut the body the signature covers; Transfer-Encoding plus Content-Length is the
# request-smuggling pair).
FRAMING_HEADERS = frozenset(
    {
        "host",
        "content-length",
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "expect",
        "proxy-connection",
    }
)
# Headers never forwarded by Upstash-Header-Forward: hop-by-hop, credentials of the gateway, payment.
_NOT_FORWARDED = FRAMING_HEADERS | {
    "proxy-authorization",
    "authorization",
    "x-api-key",
    "x-sapiom-transaction-id",
    "x-payment",
    "payment-signature",
    "content-type",
    "accept-encoding",
}


_SCHEME_ERROR = "invalid destination url: endpoint has invalid scheme, add http:// or https://"


_SCHEME_RE = re.compile(r"^https?://", re.IGNORECASE)


# What the destination grammar of openapi.yaml (components.schemas.Destination) refuses anywhere: "..",
# "%2e", "%5c", "\\" and a "." segment (path traversal and dot-segment tricks).
_TRAVERSAL_RE = re.compile(r"\.\.|%2e|%5c|\\|/\.(?:[/?#]|\Z)", re.IGNORECASE)
_NOT_URL_CHAR_RE = re.compile(r"[^!-~]")  # a control character, a space, or anything not ASCII
_STRAY_PERCENT_RE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_AUTHORITY_END_RE = re.compile(r"[/?#]")
_HOST_RE = re.compile(r"[A-Za-z0-9_~-]+(?:\.[A-Za-z0-9_~-]+)*\.?")  # a name (maybe "name.") or an IPv4 address
_IPV6_CHARS_RE = re.compile(r"[0-9A-Fa-f:.]+")  # no zone id
_PORT_RE = re.compile(r"[0-9]{1,5}")


MAX_BATCH_ITEMS = 1000
MAX_HEADER_VALUE = 8190  # the server's limit on one header line (--max-header-size's default)
_NAME_RE = re.compile(r"[A-Za-z0-9._-]+")  # fullmatch: "$" would let a final "\n" in


_TOKEN_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 header field name (fullmatch)


def parse_destination(raw: str, where: str = "path destination") -> str:
    """The destination URL from the raw path tail, decoded once if percent-encoded.

    ``parse_destination("https://example.com/a?b=1")`` -> ``"https://example.com/a?b=1"``;
    ``parse_destination("https%3A%2F%2Fexample.com%2Fa")`` -> ``"https://example.com/a"``;
    ``parse_destination("example.com")`` raises ``BadRequest`` (the QStash scheme message).

    Exactly what ``components.schemas.Destination`` of openapi.yaml admits (``tests/http/test_destination.py``
    holds the two together): a raw ``http(s)://`` URL of printable ASCII, or any string that is not one and
    decodes once to one (each character raw or ``%XX``, any case: ``HTTps%3A%2f%2Fexample.com/a``). The
    host is a name, an IPv4 address or an ``[IPv6]`` address (no ``user@``), the port 0-65535, every ``%``
    starts an escape, and ``..``, ``%2e``, ``%5c``, ``\\`` or a ``.`` segment appear nowhere, before or
    after decoding.
    """
    dest = raw
    if not _SCHEME_RE.match(dest):
        decoded = unquote(dest)
        if not _SCHEME_RE.match(decoded):
            raise BadRequest(_SCHEME_ERROR)
        _check_url_text(dest, where)
        dest = decoded
    _check_url_text(dest, where)
    after = dest[dest.index("//") + 2 :]
    end = _AUTHORITY_END_RE.search(after)
    authority = after if end is None else after[: end.start()]
    if "@" in authority:
        raise BadRequest(
            f"{where}: invalid destination url: credentials in the URL (user@host) are not allowed; "
            "send them with Upstash-Forward-Authorization"
        )
    port: str | None
    if authority.startswith("["):
        close = authority.find("]")
        address = authority[1:close] if close > 0 else ""
        if not _IPV6_CHARS_RE.fullmatch(address) or not _is_ipv6(address):
            raise BadRequest(f"{where}: invalid destination url: invalid [IPv6] address in {dest!r}")
        tail = authority[close + 1 :]
        if tail and not tail.startswith(":"):
            raise BadRequest(f"{where}: invalid destination url: bad port in {dest!r}, expected 0 to 65535")
        port = tail[1:] if tail else None
    else:
        host, colon, after_colon = authority.partition(":")
        if not host:
            raise BadRequest(f"{where}: invalid destination url: missing host in {dest!r}")
        if not _HOST_RE.fullmatch(host):
            raise BadRequest(
                f"{where}: invalid destination url: invalid host {host!r}, expected a host name, an IPv4 "
                "address or an [IPv6] address"
            )
        port = after_colon if colon else None
    if port is not None and (not _PORT_RE.fullmatch(port) or int(port) > 65535):
        raise BadRequest(f"{where}: invalid destination url: bad port in {dest!r}, expected 0 to 65535")
    return dest


def _check_url_text(text: str, where: str) -> None:
    """The characters of a destination (raw, or before and after decoding): printable ASCII, ``%`` only in
    an escape, no traversal."""
    bad = _NOT_URL_CHAR_RE.search(text)
    if bad is not None:
        if bad.group() <= " " or bad.group() == "\x7f":
            raise BadRequest(f"{where}: invalid destination url: control characters or spaces are not allowed")
        raise BadRequest(
            f"{where}: invalid destination url: only ASCII characters are allowed; percent-encode the others "
            "as UTF-8 (e.g. %C3%A9 for \u00e9, RFC 3986)"
        )
    if _STRAY_PERCENT_RE.search(text):
        raise BadRequest(f"{where}: invalid destination url: '%' must start a percent-escape such as %20 in {text!r}")
    if _TRAVERSAL_RE.search(text):
        raise BadRequest(f"{where}: invalid destination url: path traversal is not allowed ({text!r})")


def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def check_name(value: str, where: str) -> str:
    """A queue or schedule name: ``[A-Za-z0-9._-]``, 1-128 characters."""
    if not value or len(value) > 128 or not _NAME_RE.fullmatch(value):
        raise BadRequest(f"{where}: must match ^[A-Za-z0-9._-]+$ (1-128 characters), got {value!r}")
    if value in (".", ".."):
        # clients normalise /queues/.. away: such a queue could never be addressed again
        raise BadRequest(f"{where}: '.' and '..' are not allowed as names")
    return value


def _bool(value: str, where: str) -> bool:
    low = value.strip().lower()
    if low not in ("true", "false"):
        raise BadRequest(f"{where}: expected true or false, got {value!r}")
    return low == "true"


def _duration(value: str, where: str) -> int:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise BadRequest(f"{where}: expected a duration such as 50s, 10m or 1d10h30m, got {value!r} ({exc})") from None


def _check_header_value(loc: str, value: str) -> None:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise BadRequest(f"{loc}: header values must not contain CR, LF or NUL")
    try:
        value.encode("utf-8")  # the HTTP parser keeps undecodable bytes as lone surrogates
    except UnicodeEncodeError:
        raise BadRequest(f"{loc}: header value is not valid UTF-8") from None


@dataclass(frozen=True, slots=True)
class Dialect:
    """How one surface reads ``Upstash-*`` headers.

    Sapiom's gateway accepts and drops callbacks and flow control (as the service does) and allows 5
    retries; native QStash keeps them and allows up to 100 (plan limits are not simulated).
    """

    keep_callbacks: bool = False
    keep_flow_control: bool = False
    max_retries: int = MAX_RETRIES


SAPIOM = Dialect()
QSTASH = Dialect(keep_callbacks=True, keep_flow_control=True, max_retries=100)

_CALLBACK_FIELDS = ("method", "timeout", "retries", "retry-delay", "delay")


def parse_settings(
    url: str,
    headers: Mapping[str, str],
    *,
    where: str = "header",
    warn: Callable[[str], None] | None = None,
    dialect: Dialect = SAPIOM,
) -> MessageSettings:
    """Read the ``Upstash-*`` settings and the forwarded headers of one message.

    ``headers`` is case-insensitive for a request (a multidict) or a plain dict for a batch item; either
    way names are compared case-insensitively. ``where`` prefixes every error message. A forwarded
    framing header (:data:`FRAMING_HEADERS`) is dropped, and ``warn`` is told why.
    """
    reader = _Reader(MessageSettings(url=url), where, warn, dialect)
    for raw_name, value in headers.items():
        reader.read(raw_name, value)
    return reader.finish()


class _Reader:
    """Reads one message's headers into :class:`MessageSettings` (one method per family of names)."""

    def __init__(self, s: MessageSettings, where: str, warn: Callable[[str], None] | None, dialect: Dialect) -> None:
        self.s, self.where, self.warn, self.dialect = s, where, warn, dialect
        self.forward_all = False
        self.extra: list[tuple[str, str]] = []
        self.callbacks: dict[str, dict[str, str]] = {"upstash-callback": {}, "upstash-failure-callback": {}}
        self.flow: dict[str, str] = {}

    def loc(self, raw_name: str) -> str:
        return f"{self.where} {raw_name}" if self.where == "header" else f"{self.where}/{raw_name}"

    def read(self, raw_name: str, value: Any) -> None:
        name, loc = raw_name.lower(), self.loc(raw_name)
        if not isinstance(value, str):
            raise BadRequest(f"{loc}: expected a string value, got {type(value).__name__}")
        if len(value) > MAX_HEADER_VALUE:  # a request's own headers are bounded by the server; an item's here
            raise BadRequest(f"{loc}: at most {MAX_HEADER_VALUE} characters, got {len(value)}")
        if name == "content-type":
            _check_header_value(loc, value)
            self.s.content_type = value
        elif name.startswith("upstash-forward-"):
            self.forwarded(self.s.headers, raw_name[len("upstash-forward-") :], value, loc)
        elif name.startswith(("upstash-callback", "upstash-failure-callback")):
            if self.dialect.keep_callbacks:
                family = (
                    "upstash-failure-callback" if name.startswith("upstash-failure-callback") else "upstash-callback"
                )
                self.callbacks[family][raw_name[len(family) :].lstrip("-") or ""] = value
        elif name.startswith("upstash-flow-control-"):
            if self.dialect.keep_flow_control:
                self.flow[name] = value
        elif name in _SIMPLE:
            _SIMPLE[name](self, value, loc)
        elif not name.startswith("upstash-"):
            self.extra.append((raw_name, value))
        # Every other Upstash-* header (cron, schedule id, telemetry, ...) is not a message setting.

    def forwarded(self, into: dict[str, str], fwd: str, value: str, loc: str) -> None:
        if not fwd or not _TOKEN_RE.fullmatch(fwd):
            raise BadRequest(f"{loc}: {fwd!r} is not a valid header name")
        _check_header_value(loc, value)
        if fwd.lower() in FRAMING_HEADERS:
            if self.warn is not None:
                self.warn(f"{loc}: {fwd} is a connection/framing header; dropped, not forwarded")
            return
        into[fwd] = value

    def finish(self) -> MessageSettings:
        s = self.s
        if self.forward_all:
            for raw_name, value in self.extra:
                if raw_name.lower() not in _NOT_FORWARDED:
                    _check_header_value(self.loc(raw_name), value)
                    s.headers.setdefault(raw_name, value)
        s.callback = self.callback("upstash-callback", "Upstash-Callback")
        s.failure_callback = self.callback("upstash-failure-callback", "Upstash-Failure-Callback")
        if self.flow:
            s.flow_control = self.flow_control()
        return s

    def callback(self, family: str, label: str) -> CallbackSettings | None:
        parts = self.callbacks[family]
        if not parts:
            return None
        url_raw = next((v for k, v in parts.items() if k == ""), None)
        if url_raw is None:
            return None  # settings without a callback URL: nothing to call
        cb = CallbackSettings(url=parse_destination(url_raw, self.loc(label)))
        for key, value in parts.items():
            low, loc = key.lower(), self.loc(f"{label}-{key}")
            if low == "":
                continue
            if low == "method":
                cb.method = _method(value, loc)
            elif low == "timeout":
                cb.timeout_ms = _timeout(value, loc)
            elif low == "retries":
                cb.retries = _retries(value, loc, self.dialect.max_retries)
            elif low == "retry-delay":
                cb.retry_delay_expr = _retry_delay(value, loc)
            elif low == "delay":
                cb.delay_ms = _duration(value, loc)
            elif low.startswith("forward-"):
                self.forwarded(cb.headers, key[len("forward-") :], value, loc)
            else:  # the Python SDK's spelling: Upstash-Callback-<Name> without -Forward-
                self.forwarded(cb.headers, key, value, loc)
        return cb

    def flow_control(self) -> FlowControl | None:
        key = self.flow.get("upstash-flow-control-key", "").strip()
        loc = self.loc("Upstash-Flow-Control-Value")
        if not key:
            raise BadRequest(f"{self.loc('Upstash-Flow-Control-Key')}: required with Upstash-Flow-Control-Value")
        values: dict[str, int] = {}
        for part in self.flow.get("upstash-flow-control-value", "").split(","):
            if not part.strip():
                continue
            k, sep, v = part.partition("=")
            k, v = k.strip().lower(), v.strip()
            if not sep or k not in ("parallelism", "rate", "period"):
                raise BadRequest(f"{loc}: expected parallelism=N, rate=N and/or period=P, got {part.strip()!r}")
            n = _duration(v, loc) // 1000 if k == "period" else (int(v) if v.isdigit() else -1)
            if n < 1:
                raise BadRequest(
                    f"{loc}: {k} must be a positive {'duration' if k == 'period' else 'integer'}, got {v!r}"
                )
            values[k] = n
        return FlowControl(key, values.get("parallelism"), values.get("rate"), values.get("period", 1))


def _method(value: str, loc: str) -> str:
    if value.upper() not in METHODS:
        raise BadRequest(f"{loc}: expected one of {', '.join(METHODS)}, got {value!r}")
    return value.upper()


def _retries(value: str, loc: str, most: int) -> int:
    if not value.strip().isdigit() or not 0 <= int(value) <= most:
        raise BadRequest(f"{loc}: expected an integer from 0 to {most}, got {value!r}")
    return int(value)


def _retry_delay(value: str, loc: str) -> str:
    try:
        compile_retry_delay(value)
    except ValueError as exc:
        raise BadRequest(f"{loc}: {exc}") from None
    return value


def _timeout(value: str, loc: str) -> int:
    ms = int(value) * 1000 if value.strip().isdigit() else _duration(value, loc)
    if ms <= 0:
        raise BadRequest(f"{loc}: expected a positive duration, got {value!r}")
    return ms


def _not_before(value: str, loc: str) -> int:
    if not value.strip().isdigit():
        raise BadRequest(f"{loc}: expected Unix seconds (an integer), got {value!r}")
    return int(value)


def _set(attr: str, parse: Callable[[str, str], Any]) -> Callable[[_Reader, str, str], None]:
    def setter(r: _Reader, value: str, loc: str) -> None:
        setattr(r.s, attr, parse(value, loc))

    return setter


def _set_retries(r: _Reader, value: str, loc: str) -> None:
    r.s.retries = _retries(value, loc, r.dialect.max_retries)


def _set_forward_all(r: _Reader, value: str, loc: str) -> None:
    r.forward_all = _bool(value, loc)


# Simple settings: header name -> how it sets the message's settings.
_SIMPLE: dict[str, Callable[[_Reader, str, str], None]] = {
    "upstash-method": _set("method", _method),
    "upstash-delay": _set("delay_ms", _duration),
    "upstash-not-before": _set("not_before_s", _not_before),
    "upstash-retries": _set_retries,
    "upstash-retry-delay": _set("retry_delay_expr", _retry_delay),
    "upstash-timeout": _set("timeout_ms", _timeout),
    "upstash-deduplication-id": _set("dedup_id", lambda v, loc: v),
    "upstash-content-based-deduplication": _set("content_dedup", _bool),
    "upstash-label": _set("labels", lambda v, loc: [p.strip() for p in v.split(",") if p.strip()]),
    "upstash-redact-fields": _set("redact", lambda v, loc: v),
    "upstash-header-forward": _set_forward_all,
}


Warn = Callable[[str], None]


def publish_command(
    destination: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    queue: str | None = None,
    warn: Warn | None = None,
    dialect: Dialect = SAPIOM,
) -> PublishCommand:
    """A publish or enqueue request as a command: ``destination`` is the raw path tail."""
    url = parse_destination(destination)
    if queue is not None:
        check_name(queue, "path queueName")
    return PublishCommand(parse_settings(url, headers, warn=warn, dialect=dialect), body, queue)


def batch_commands(items: Any, *, warn: Warn | None = None, dialect: Dialect = SAPIOM) -> list[PublishCommand]:
    """Every item of a batch body as a command, all validated first (all or nothing).

    The contract has checked the JSON shape; the messages here name the item, e.g.
    ``body /1/headers/Upstash-Retries: expected an integer from 0 to 5, got "x"``.
    """
    if not isinstance(items, list) or not items:
        raise BadRequest("body: expected a non-empty JSON array of messages")
    if len(items) > MAX_BATCH_ITEMS:
        raise BadRequest(f"body: at most {MAX_BATCH_ITEMS} items per batch, got {len(items)}")
    commands: list[PublishCommand] = []
    for i, item in enumerate(items):
        where = f"body /{i}"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: expected an object with destination, headers, body, queue")
        unknown = set(item) - {"destination", "headers", "body", "queue"}
        if unknown:
            raise BadRequest(
                f"{where}: unknown field(s) {', '.join(sorted(unknown))}; expected destination, headers, body, queue"
            )
        dest = item.get("destination")
        if not isinstance(dest, str) or not dest:
            raise BadRequest(f"{where}/destination: required, a URL string")
        try:
            url = parse_destination(dest, f"{where}/destination")
        except BadRequest as exc:
            msg = exc.message if exc.message.startswith(where) else f"{where}/destination: {exc.message}"
            raise BadRequest(msg) from None
        hdrs = item.get("headers") or {}
        if not isinstance(hdrs, dict):
            raise BadRequest(f"{where}/headers: expected an object of header name to string value")
        raw_body = item.get("body", "")
        if raw_body is None:
            raw_body = ""
        if not isinstance(raw_body, str):
            raise BadRequest(
                f"{where}/body: expected a string (JSON-encode objects first), got {type(raw_body).__name__}"
            )
        try:
            body = raw_body.encode("utf-8")
        except UnicodeEncodeError as exc:  # JSON may carry a lone surrogate ("\ud800"); UTF-8 cannot
            raise BadRequest(f"{where}/body: not valid Unicode text ({exc.reason} at character {exc.start})") from None
        queue = item.get("queue")
        if queue is not None:
            if not isinstance(queue, str):
                raise BadRequest(f"{where}/queue: expected a string")
            check_name(queue, f"{where}/queue")
        settings = parse_settings(url, hdrs, where=f"{where}/headers", warn=warn, dialect=dialect)
        commands.append(PublishCommand(settings, body, queue))
    return commands


def schedule_command(
    destination: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    warn: Warn | None = None,
    dialect: Dialect = SAPIOM,
) -> ScheduleCommand:
    """A schedule-creation request as a command (``Upstash-Cron`` required, ``Upstash-Not-Before`` refused)."""
    url = parse_destination(destination)
    lower = {k.lower(): v for k, v in headers.items()}
    cron, sid, queue = schedule_fields(lower, lower.get("upstash-cron"))
    return ScheduleCommand(parse_settings(url, headers, warn=warn, dialect=dialect), cron, body, sid, queue)


def schedule_fields(lower: Mapping[str, str], cron: str | None) -> tuple[str, str | None, str | None]:
    """What a schedule creation adds to a publish, checked (both surfaces): ``cron`` (the ``Upstash-Cron``
    value as the surface read it) required and valid, ``Upstash-Not-Before`` refused, the schedule id and
    queue name checked. ``lower``: the request's headers by lower-case name. Returns (cron stripped, schedule
    id, queue name)."""
    if not cron:
        raise BadRequest("header Upstash-Cron: required to create a schedule, e.g. '0 9 * * *'")
    check_cron(cron, "header Upstash-Cron")
    if "upstash-not-before" in lower:
        raise BadRequest("header Upstash-Not-Before: not allowed on schedules; use Upstash-Delay")
    sid = lower.get("upstash-schedule-id")
    if sid is not None:
        check_name(sid, "header Upstash-Schedule-Id")
    queue = lower.get("upstash-queue-name")
    if queue is not None:
        check_name(queue, "header Upstash-Queue-Name")
    return cron.strip(), sid, queue
