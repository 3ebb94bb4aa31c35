"""A compiled operation: its parameters, request bodies and responses, and the request/response checks.

Errors are :class:`~qstash_sim.errors.BadRequest` with the part and JSON pointer named, e.g.
``header Upstash-Retries: expected integer between 0 and 5, got "abc"`` or
``body /0/destination: required property missing``.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, unquote_plus

from qstash_sim.contract.schema import (
    INT_RE,
    INVALID,
    CompiledSchema,
    describe,
    load_json,
    schema_types,
)
from qstash_sim.errors import BadRequest

DEFAULT_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}},
}


@dataclass(slots=True, frozen=True)
class Parameter:
    """A compiled path, query or header parameter."""

    name: str
    location: str  # "path", "query" or "header"
    required: bool
    greedy: bool
    explode: bool
    schema: CompiledSchema
    items: CompiledSchema | None  # for array parameters: the item schema
    types: tuple[str, ...]
    fast: Callable[[str], Any] | None = None  # the common case, no messages
    default: Any = None  # the schema's ``default`` (applied when the parameter is absent), or None

    @property
    def label(self) -> str:
        """How messages name this parameter: ``header Upstash-Retries``."""
        return f"{self.location} {self.name}"

    def _coerce(self, raw: str, types: tuple[str, ...], schema: CompiledSchema) -> Any:
        for t in types:
            if t == "integer" and INT_RE.fullmatch(raw):
                return int(raw)
            if t == "number":
                try:
                    f = float(raw)
                except ValueError:
                    continue
                if f == f and f not in (float("inf"), float("-inf")):
                    return int(raw) if INT_RE.fullmatch(raw) else f
            if t == "boolean" and raw in ("true", "false"):
                return raw == "true"
            if t == "string":
                return raw
        if not types:
            return raw
        raise BadRequest(f"{self.label}: expected {describe(schema.schema)}, got {json.dumps(raw)}")

    def parse(self, raw: str | list[str]) -> Any:
        """Coerce the string value(s) to the schema type and validate; raise BadRequest if invalid."""
        if self.fast is not None and isinstance(raw, str):
            v = self.fast(raw)
            if v is not INVALID:
                return v
        if self.items is not None:
            values = raw if isinstance(raw, list) else [raw]
            if not self.explode or self.location != "query":
                values = [p.strip() for v in values for p in v.split(",") if p.strip()]
            return self.parse_items(values, raw)
        out = self._coerce(raw[-1] if isinstance(raw, list) else raw, self.types, self.schema)
        return self._checked(out, raw)

    def parse_items(self, values: list[str], raw: Any) -> Any:
        """An array parameter from its items, already split (``raw``: what to quote in an error)."""
        assert self.items is not None
        items_t = schema_types(self.items.schema)
        return self._checked([self._coerce(v, items_t, self.items) for v in values], raw)

    def _checked(self, out: Any, raw: Any) -> Any:
        errs = self.schema.errors(out, self.label)
        if errs:
            msg = errs[0]
            raise BadRequest(msg if ", got " in msg else f"{msg}, got {json.dumps(raw)}")
        return out


@dataclass(slots=True, frozen=True)
class Media:
    """One content type of a request or response body."""

    media_type: str
    is_json: bool
    schema: CompiledSchema | None


def _media_key(content_type: str | None) -> str:
    return content_type.split(";", 1)[0].strip().lower() if content_type else ""


def _pick(media: Mapping[str, Media], content_type: str | None) -> Media | None:
    key = _media_key(content_type)
    return media.get(key) or media.get(key.split("/", 1)[0] + "/*") or media.get("*/*")


@dataclass(slots=True)
class ValidatedRequest:
    """What a handler receives: coerced, validated input.

    ``headers`` holds only declared header parameters, keyed by their declared name, values coerced to
    the schema type (``{"Upstash-Retries": 3}``); ``json`` is the parsed body when the chosen body
    media type is JSON, else None (then use ``body_bytes``).
    """

    path_params: dict[str, Any]
    headers: dict[str, Any]
    query: dict[str, Any]
    body_bytes: bytes
    json: Any = None


@dataclass(slots=True, frozen=True)
class Operation:
    """One path + method of the spec, compiled."""

    operation_id: str
    method: str  # upper case
    path_template: str
    path_regex: re.Pattern[str]
    greedy: bool  # the regex runs on the raw path with its query string
    path_params: tuple[Parameter, ...]
    header_params: Mapping[str, Parameter]  # lower-case name -> parameter
    query_params: tuple[Parameter, ...]
    body_media: Mapping[str, Media]  # media type -> compiled schema
    body_required: bool
    responses: Mapping[str, Mapping[str, Media]]  # "200" / "4XX" / "default" -> media type -> schema
    extensions: Mapping[str, Any]  # the operation's x-* keys
    statuses: frozenset[int]
    header_prefixes: tuple[str, ...]  # lower case, e.g. "upstash-forward-"
    _required_headers: tuple[str, ...] = ()
    _group_names: tuple[tuple[str, str, bool], ...] = ()  # (regex group, param name, decode?)
    _only_json: Media | None = None
    _greedy_doc: re.Pattern[str] | None = None  # the greedy parameter's documented pattern, for ambiguous paths
    _any_json: bool = False
    _header_defaults: tuple[Parameter, ...] = ()

    def path_values(self, m: re.Match[str]) -> dict[str, str]:
        """Path parameter values from a route match (non-greedy ones percent-decoded)."""
        out: dict[str, str] = {}
        for group, name, decode in self._group_names:
            v = m.group(group)
            out[name] = unquote(v) if decode and "%" in v else v
        return out

    def validate_request(
        self,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        path_params: Mapping[str, str],
        body: bytes,
        content_type: str | None = None,
        raw_query: str | None = None,
    ) -> ValidatedRequest:
        """Validate one request against this operation; raise BadRequest naming the first problem.

        ``headers`` may be any mapping; names are compared case-insensitively. ``query`` may be a
        multidict (``getall`` is used for array parameters). ``raw_query``, the query string as sent, lets
        a comma-separated array (``explode: false``) be split on its literal commas before decoding, so an
        item may hold an encoded one (``label=a%2Cb,c`` is two labels, ``a,b`` and ``c``).
        """
        pp = {p.name: p.parse(path_params[p.name]) for p in self.path_params if p.name in path_params}
        hv: dict[str, Any] = {}
        if self.header_params:
            hp = self.header_params
            for k, v in headers.items():
                p = hp.get(k.lower())
                if p is not None and p.name not in hv:
                    hv[p.name] = p.parse(v)
            missing = [n for n in self._required_headers if n not in hv]
            if missing:
                raise BadRequest(f"missing required header{'s' * (len(missing) > 1)}: {', '.join(missing)}")
            for p in self._header_defaults:
                hv.setdefault(p.name, p.default)
        qv: dict[str, Any] = {}
        for p in self.query_params:
            if p.items is not None and not p.explode and raw_query is not None:
                parts = csv_parts(raw_query, p.name)
                if parts is not None:
                    qv[p.name] = p.parse_items(parts, ",".join(parts))
                    continue
            if p.items is not None and hasattr(query, "getall"):
                raw: Any = query.getall(p.name, [])
            else:
                raw = query.get(p.name)
            if raw is None or raw == []:
                if p.required:
                    raise BadRequest(f"query {p.name}: required parameter missing")
                if p.default is not None:
                    qv[p.name] = p.default
                continue
            qv[p.name] = p.parse(raw)
        return ValidatedRequest(pp, hv, qv, body, self._body_json(body, content_type))

    def _body_json(self, body: bytes, content_type: str | None) -> Any:
        if not self.body_media:
            return None
        if not body:
            if self.body_required:
                raise BadRequest("body: required")
            return None
        if not self._any_json:  # e.g. publish's "*/*": bytes pass through untouched
            return None
        media = _pick(self.body_media, content_type) or self._only_json
        if media is None:
            raise BadRequest(
                f"body: unsupported content type {_media_key(content_type) or '(none)'!r}, "
                f"expected {', '.join(self.body_media)}"
            )
        if not media.is_json:
            return None
        doc = load_json(body)
        if media.schema is not None:
            errs = media.schema.errors(doc, "body")
            if errs:
                raise BadRequest(errs[0])
        return doc

    def unknown_upstash_headers(self, headers: Iterable[str]) -> list[tuple[str, str | None]]:
        """``Upstash-*`` names this operation does not declare, each with a did-you-mean suggestion.

        Names in a declared prefix family (``x-header-prefixes``, e.g. ``Upstash-Forward-``) are known.
        ``headers`` may be a mapping (its keys are used) or any iterable of names.
        """
        out: list[tuple[str, str | None]] = []
        seen: set[str] = set()
        for name in headers:
            low = name.lower()
            if not low.startswith("upstash-") or low in self.header_params or low in seen:
                continue
            seen.add(low)
            if any(low.startswith(p) for p in self.header_prefixes):
                continue
            # Compare what follows "upstash-": the shared prefix would make everything look close.
            declared = {k[8:]: p.name for k, p in self.header_params.items() if k.startswith("upstash-")}
            close = difflib.get_close_matches(low[8:], list(declared), n=1, cutoff=0.6)
            out.append((name, declared[close[0]] if close else None))
        return out

    def documents(self, status: int) -> bool:
        """Whether ``status`` is documented, exactly, by range (``4XX``) or by ``default``."""
        key = str(status)
        return key in self.responses or f"{key[0]}XX" in self.responses or "default" in self.responses

    def response_errors(self, status: int, content_type: str | None, body: bytes) -> list[str]:
        """Why a response does not match this operation's documented responses (empty = OK)."""
        key = str(status)
        media = self.responses.get(key)
        if media is None:
            media = self.responses.get(f"{key[0]}XX", self.responses.get("default"))
        if media is None:
            return [
                f"{self.operation_id}: status {status} is not documented "
                f"(documented: {', '.join(self.responses) or 'none'})"
            ]
        return check_body(f"{self.operation_id} {status}", media, content_type, body)


def check_body(where: str, media: Mapping[str, Media], content_type: str | None, body: bytes) -> list[str]:
    if not media:
        return [f"{where}: body not documented, got {len(body)} bytes"] if body else []
    chosen = _pick(media, content_type)
    if chosen is None:
        return [
            f"{where}: content type {_media_key(content_type) or '(none)'!r} not documented "
            f"(documented: {', '.join(media)})"
        ]
    if not chosen.is_json:
        return []
    try:
        doc = load_json(body, f"{where} body")
    except BadRequest as e:
        return [e.message]
    return chosen.schema.errors(doc, f"{where} body", first=False) if chosen.schema else []


def csv_parts(raw_query: str, name: str) -> list[str] | None:
    """The items of the comma-separated query parameter ``name`` in ``raw_query`` (not decoded): every
    occurrence split on its literal commas, each part then decoded; empty parts dropped. ``None`` when the
    parameter is absent."""
    found: list[str] | None = None
    for pair in raw_query.split("&"):
        key, sep, value = pair.partition("=")
        if unquote_plus(key) != name:
            continue
        found = found if found is not None else []
        found.extend(p for part in value.split(",") if (p := unquote_plus(part).strip()))
    return found
