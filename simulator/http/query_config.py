"""Configuration in the query string (``x-upstash-query-config``), shared by every surface that takes a
greedy destination: ``POST .../publish/https://example.com/hook?upstash-delay=1m`` is a publish with
``Upstash-Delay: 1m`` to ``https://example.com/hook``.

Every pair whose name, lower-cased, starts with ``upstash-`` is taken out of the destination's query
string and applied as the header of that name (value percent-decoded once, checked with that header's
schema in the operation, the 400 naming ``query <name>``; the first of a repeated pair wins; a real header
of the same name wins over it). The other pairs stay, byte for byte and in order; with none left the ``?``
goes too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from urllib.parse import unquote, unquote_plus

from qstash_sim.contract.operation import Operation
from qstash_sim.errors import BadRequest

__all__ = ["check_config", "merge_config", "split_config"]

_SCHEME_RE = re.compile(r"^https?://", re.IGNORECASE)


def split_config(raw: str, *, drop: Collection[str] = ()) -> tuple[str, dict[str, str]]:
    """``(destination without its upstash-* pairs, {name: value})`` from the raw greedy path value.

    A percent-encoded URL (its query string encoded too) is decoded once first. Pairs named in ``drop``
    (lower case, e.g. ``qstash_token``) are removed without being applied.
    """
    if not _SCHEME_RE.match(raw) and _SCHEME_RE.match(unquote(raw)):
        raw = unquote(raw)
    base, q, query = raw.partition("?")
    config: dict[str, str] = {}
    kept: list[str] = []
    for pair in query.split("&") if q else ():
        name_raw, _, value = pair.partition("=")
        name = unquote_plus(name_raw)
        low = name.lower()
        if low in drop:
            continue
        if low.startswith("upstash-"):
            if not any(k.lower() == low for k in config):  # the first of a repeated pair wins
                config[name] = unquote_plus(value)
        else:
            kept.append(pair)
    return base + ("?" + "&".join(kept) if kept else ""), config


def check_config(
    op: Operation,
    config: Mapping[str, str],
    *,
    strict: bool,
    warn: Callable[[str], None],
    check: Callable[[str, str, str], None] | None = None,
) -> None:
    """Each pair checked with the schema of its header in ``op`` (400 ``query <name>: ...``); an unknown
    ``upstash-*`` name is a warning (a 400 when ``strict``). ``check(name, value, where)`` adds a
    surface's own checks."""
    for name, value in config.items():
        p = op.header_params.get(name.lower())
        if p is not None:
            try:
                p.parse(value)
            except BadRequest as exc:
                raise BadRequest(exc.message.replace(p.label, f"query {name}", 1)) from None
        if check is not None:
            check(name, value, f"query {name}")
        for unknown, hint in op.unknown_upstash_headers([name]):
            suggestion = f"; did you mean {hint.lower()}?" if hint else ""
            if strict:
                raise BadRequest(f"query {unknown}: unknown Upstash setting{suggestion}")
            warn(f"unknown query parameter {unknown}{suggestion} (QStash ignores it)")


def merge_config(headers: Mapping[str, str], config: Mapping[str, str] | None) -> dict[str, str]:
    """The request's headers (first of each name), then the query's ``upstash-*`` pairs they lack."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, value in headers.items():
        low = name.lower()
        if low not in seen:
            seen.add(low)
            out[name] = value
    for name, value in (config or {}).items():
        if name.lower() not in seen:
            seen.add(name.lower())
            out[name] = value
    return out
