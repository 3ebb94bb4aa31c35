"""The v2 request edge: the destination (a URL or a URL group), configuration in the query string, and the
core's commands built from ``Upstash-*`` headers (the ``QSTASH`` dialect: callbacks and flow control kept).

Configuration in the query string (``x-upstash-query-config``): on publish, enqueue and schedule creation
the query string belongs to the greedy destination, so every pair whose name, lower-cased, is
``qstash_token`` or starts with ``upstash-`` is taken out of it; each ``upstash-*`` pair is applied as the
header of that name (value percent-decoded once, validated by that header's own schema; a real header of
the same name wins). The other pairs stay in the destination, byte for byte.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from qstash_sim.contract.operation import Operation
from qstash_sim.domain.commands import PublishCommand, ScheduleCommand
from qstash_sim.errors import BadRequest
from qstash_sim.http.headers import QSTASH, check_name, parse_destination, parse_settings, schedule_fields
from qstash_sim.http.query_config import check_config, merge_config, split_config
from qstash_sim.http.surface import Ctx

__all__ = [
    "Target",
    "batch_items",
    "publish_command",
    "retry_overrides",
    "schedule_command",
    "target",
    "url_at",
]

_SCHEME_RE = re.compile(r"^https?://", re.IGNORECASE)
_SCHEME_ERROR = "invalid destination url: endpoint has invalid scheme, add http:// or https://"
_GROUP_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(slots=True)
class Target:
    """Where a publish goes: a URL, or the name of one of the account's URL groups (``url`` is then None)."""

    url: str | None
    group: str | None
    config: dict[str, str] = field(default_factory=dict)  # upstash-* pairs of the query string

    @property
    def name(self) -> str:
        """The URL, or the group's name."""
        return self.url if self.url is not None else str(self.group)


def _group_or_url(dest: str, where: str) -> tuple[str | None, str | None]:
    """``(url, None)`` for an ``http(s)://`` destination (decoded once if percent-encoded), ``(None, name)``
    for a URL-group name, else QStash's scheme message (400)."""
    if _SCHEME_RE.match(dest) or _SCHEME_RE.match(unquote(dest)):
        return url_at(dest, where), None
    if _GROUP_RE.match(dest) and dest not in (".", ".."):
        return None, dest
    raise BadRequest(f"{where}: {_SCHEME_ERROR} (or name a URL group: letters, digits, '.', '_', '-'), got {dest!r}")


def target(ctx: Ctx, raw: str) -> Target:
    """The destination of a publish, enqueue or schedule from the raw greedy path value, its configuration
    pairs taken out of the query string and checked against the operation's header schemas."""
    dest, config = split_config(raw, drop=("qstash_token",))
    url, group = _group_or_url(dest, "path destination")
    check_config(ctx.op, config, strict=ctx.sim.strict, warn=ctx.warn, check=_check_url)
    return Target(url, group, config)


def url_at(value: str, where: str) -> str:
    """``value`` checked as a destination URL (decoded once if percent-encoded); the 400 names ``where``."""
    try:
        return parse_destination(value, where)
    except BadRequest as exc:
        msg = exc.message if exc.message.startswith(where) else f"{where}: {exc.message}"
        raise BadRequest(msg) from None


def _check_url(name: str, value: str, where: str) -> None:
    """A callback URL is checked like a destination, and the message names where it came from."""
    if name.lower() in ("upstash-callback", "upstash-failure-callback"):
        url_at(value, where)


def _flow_needs_key(headers: dict[str, str], ctx: Ctx, where: str) -> None:
    """``Upstash-Flow-Control-Value`` without ``-Key`` limits nothing: dropped, with a warning."""
    lower = {k.lower(): k for k in headers}
    if "upstash-flow-control-value" in lower and "upstash-flow-control-key" not in lower:
        del headers[lower["upstash-flow-control-value"]]
        ctx.warn(f"{where} Upstash-Flow-Control-Value: ignored without Upstash-Flow-Control-Key")


def merged_headers(ctx: Ctx, config: Mapping[str, str] | None = None) -> dict[str, str]:
    """The request's headers (first of each name), then the query's ``upstash-*`` pairs they lack."""
    out = merge_config(ctx.headers, config)
    for name, value in out.items():
        _check_url(name, value, f"header {name}")
    _flow_needs_key(out, ctx, "header")
    return out


def publish_command(ctx: Ctx, dest: Target, queue: str | None = None) -> PublishCommand:
    """A publish or enqueue as a command (for a URL group, ``settings.url`` is the group's name)."""
    if queue is not None:
        check_name(queue, "path queueName")
    settings = parse_settings(dest.name, merged_headers(ctx, dest.config), warn=ctx.warn, dialect=QSTASH)
    return PublishCommand(settings, ctx.body, queue)


def _item_headers(ctx: Ctx, publish: Operation, raw: Any, where: str) -> dict[str, str]:
    hdrs = dict(raw or {})
    for name, value in hdrs.items():
        p = publish.header_params.get(name.lower())
        if p is not None and isinstance(value, str):
            try:
                p.parse(value)
            except BadRequest as exc:
                raise BadRequest(exc.message.replace(p.label, f"{where}/{name}", 1)) from None
        if isinstance(value, str):
            _check_url(name, value, f"{where}/{name}")
        for unknown, hint in publish.unknown_upstash_headers([name]):
            suggestion = f"; did you mean {hint}?" if hint else ""
            if ctx.sim.strict:
                raise BadRequest(f"{where}/{unknown}: unknown Upstash header{suggestion}")
            ctx.warn(f"unknown header {where}/{unknown}{suggestion} (QStash ignores it)")
    _flow_needs_key(hdrs, ctx, where)
    return hdrs


def _item_body(raw: Any, where: str) -> bytes:
    if raw is None:
        return b""
    if not isinstance(raw, str):
        raise BadRequest(f"{where}/body: expected a string (JSON-encode objects first), got {type(raw).__name__}")
    try:
        return raw.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON may carry a lone surrogate ("\ud800"); UTF-8 cannot
        raise BadRequest(f"{where}/body: not valid Unicode text ({exc.reason} at character {exc.start})") from None


def batch_items(ctx: Ctx, publish: Operation) -> list[tuple[PublishCommand, str | None]]:
    """Every item of a batch as ``(command, URL group or None)``, all validated first (all or nothing).

    ``null`` means absent for ``headers``, ``body`` and ``queue``; header names are case-insensitive and
    checked with the publish headers' schemas; messages name the item (``body /1/headers/Upstash-Delay``).
    """
    items = ctx.json
    if not isinstance(items, list):
        raise BadRequest("body: expected a JSON array of messages")
    out: list[tuple[PublishCommand, str | None]] = []
    for i, item in enumerate(items):
        where = f"body /{i}"
        if not isinstance(item, dict):
            raise BadRequest(f"{where}: expected an object with destination, headers, body, queue")
        dest = item.get("destination")
        if not isinstance(dest, str) or not dest:
            raise BadRequest(f"{where}/destination: required, a URL or a URL group's name")
        url, group = _group_or_url(dest, f"{where}/destination")
        hdrs = _item_headers(ctx, publish, item.get("headers"), f"{where}/headers")
        queue = item.get("queue")
        if queue is not None:
            check_name(queue, f"{where}/queue")
        settings = parse_settings(url or str(group), hdrs, where=f"{where}/headers", warn=ctx.warn, dialect=QSTASH)
        out.append((PublishCommand(settings, _item_body(item.get("body"), where), queue), group))
    return out


def schedule_command(ctx: Ctx, dest: Target) -> ScheduleCommand:
    """A schedule creation as a command: ``Upstash-Cron`` required (``CRON_TZ=`` allowed),
    ``Upstash-Not-Before`` refused, ``Upstash-Schedule-Id`` and ``Upstash-Queue-Name`` checked."""
    headers = merged_headers(ctx, dest.config)
    lower = {k.lower(): v for k, v in headers.items()}
    cron, sid, queue = schedule_fields(lower, (lower.get("upstash-cron") or "").strip())
    settings = parse_settings(dest.name, headers, warn=ctx.warn, dialect=QSTASH)
    return ScheduleCommand(settings, cron, ctx.body, sid, queue, url_group=dest.group is not None)


# Which MessageSettings field each override header of a DLQ retry replaces.
_OVERRIDES = {
    "upstash-method": "method",
    "upstash-delay": "delay_ms",
    "upstash-not-before": "not_before_s",
    "upstash-retries": "retries",
    "upstash-retry-delay": "retry_delay_expr",
    "upstash-timeout": "timeout_ms",
    "upstash-label": "labels",
}


def retry_overrides(ctx: Ctx) -> dict[str, Any]:
    """The ``MessageSettings`` fields the ``Upstash-*`` headers of a DLQ retry replace (only those given)."""
    headers = merged_headers(ctx)
    s = parse_settings("https://override.invalid/", headers, warn=ctx.warn, dialect=QSTASH)
    names = {k.lower() for k in headers}
    out: dict[str, Any] = {attr: getattr(s, attr) for name, attr in _OVERRIDES.items() if name in names}
    if any(n.startswith("upstash-callback") for n in names):
        out["callback"] = s.callback
    if any(n.startswith("upstash-failure-callback") for n in names):
        out["failure_callback"] = s.failure_callback
    if "upstash-flow-control-key" in names:
        out["flow_control"] = s.flow_control
    return out
