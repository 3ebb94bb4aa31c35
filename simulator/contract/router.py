"""The contract: ``openapi.yaml`` compiled once into routes and request/response validators.

``Contract.load()`` reads the spec shipped with the package, and compiles each path + method into an
:class:`Operation` that knows its route regex, its parameters, its request body and its responses. At
serving time the HTTP layer calls ``contract.match(method, raw_path)`` and then
``op.validate_request(...)``; both only run precompiled code (regexes, small closures, and
``jsonschema`` validators built at start-up).

Routing (``match``):

* The raw path is matched exactly as received: no slash merging, no percent-decoding first.
* Literal paths are one dict lookup. Templated paths are bucketed by their literal prefix (the text up to
  the last ``/`` before the first ``{``); a lookup tries the few prefixes of the request path, longest
  first, so it costs O(routes sharing a prefix), not O(all routes). Within a bucket, templates with more
  literal text come first and greedy ones last, so literals win over templates.
* A parameter with ``x-greedy: true`` (on the parameter or its schema) takes the rest of the raw path,
  ``//``, further ``/`` and the query string included, and is *not* percent-decoded: decoding an encoded
  destination (``https%3A%2F%2F...``) is the handler's job. Other path parameters match one segment and
  are percent-decoded. When a path fits both a single-segment template and a greedy one
  (``/schedules/scd_1``: ``{scheduleId}`` and ``{destination}``), the greedy one takes it only if its value
  fits the parameter's documented ``pattern`` (an URL); otherwise the answer is the other path's 405.

A schema marked ``x-checked-by: handler`` documents what the handler accepts (for clients and fuzzers)
and is enforced by the handler, with better messages and in its order (credentials before the body): the
destination URL (it may arrive percent-encoded; QStash's own messages), a cron expression, the x402 object
of a reauthorize, a payment policy. The contract enforces only its ``type``.

Errors are :class:`~simulator.errors.BadRequest` with the part and JSON pointer named, e.g.
``header Upstash-Retries: expected integer between 0 and 5, got "abc"`` or
``body /0/destination: required property missing``.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import unquote

import yaml
from jsonschema import Draft202012Validator
from qstash_sim.base.resources import spec_file
from qstash_sim.contract.schema import (
    INT_RE,
    INVALID,
    SPEC_URI,
    CompiledSchema,
    deref,
    describe,
    fast_parser,
    inline_refs,
    load_json,
    scalar_checker,
    schema_types,
)
from qstash_sim.errors import BadRequest, ContractError, MethodNotAllowed, NotFound
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["Contract", "Operation", "Parameter", "ValidatedRequest", "load_spec"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_DEFAULT_ERROR_SCHEMA = {
    "type": "object", "required": ["error"], "properties": {"error": {"type": "string"}},
}


def load_spec(path: str | Path | None = None) -> dict[str, Any]:
    """Load the OpenAPI document: ``path``, or the ``openapi.yaml`` shipped with the package.

    Parsed with libyaml's C loader when PyYAML has it (about 20 ms for the shipped file); nothing is
    cached on disk.
    """
    source = spec_file() if path is None else Path(path)
    text = source.read_text("utf-8")
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        spec = yaml.load(text, Loader=loader)  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        raise ContractError(f"{source}: invalid YAML: {e}".replace("\n", " ")) from None
    if not isinstance(spec, dict):
        raise ContractError(f"{source}: not a mapping")
    return spec


def fault_statuses(spec: Mapping[str, Any]) -> dict[str, frozenset[int]]:
    """``{operationId: statuses}`` of every operation that declares ``x-fault-statuses``:
    ``{"publishMessage": {401, 402, ...}, ...}``. Only these operations see faults."""
    out: dict[str, frozenset[int]] = {}
    for item in (spec.get("paths") or {}).values():
        for op in item.values():
            if isinstance(op, dict) and "x-fault-statuses" in op and "operationId" in op:
                out[op["operationId"]] = frozenset(int(s) for s in op["x-fault-statuses"])
    return out


@functools.cache
def packaged_fault_statuses() -> Mapping[str, frozenset[int]]:
    """:func:`fault_statuses` of the shipped ``openapi.yaml`` (read once per process)."""
    return MappingProxyType(fault_statuses(load_spec()))


# --------------------------------------------------------------------------- parameters, bodies


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
            items_t = schema_types(self.items.schema)
            out = [self._coerce(v, items_t, self.items) for v in values]
        else:
            out = self._coerce(raw[-1] if isinstance(raw, list) else raw, self.types, self.schema)
        errs = self.schema.errors(out, self.label)
        if errs:
            msg = errs[0]
            raise BadRequest(msg if ", got " in msg else f"{msg}, got {json.dumps(raw)}")
        return out


@dataclass(slots=True, frozen=True)
class _Media:
    """One content type of a request or response body."""

    media_type: str
    is_json: bool
    schema: CompiledSchema | None


def _media_key(content_type: str | None) -> str:
    return content_type.split(";", 1)[0].strip().lower() if content_type else ""


def _pick(media: Mapping[str, _Media], content_type: str | None) -> _Media | None:
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


# --------------------------------------------------------------------------- operations


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
    body_media: Mapping[str, _Media]  # media type -> compiled schema
    body_required: bool
    responses: Mapping[str, Mapping[str, _Media]]  # "200" / "4XX" / "default" -> media type -> schema
    extensions: Mapping[str, Any]  # the operation's x-* keys
    statuses: frozenset[int]
    header_prefixes: tuple[str, ...]  # lower case, e.g. "upstash-forward-"
    _required_headers: tuple[str, ...] = ()
    _group_names: tuple[tuple[str, str, bool], ...] = ()  # (regex group, param name, decode?)
    _only_json: _Media | None = None
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
    ) -> ValidatedRequest:
        """Validate one request against this operation; raise BadRequest naming the first problem.

        ``headers`` may be any mapping; names are compared case-insensitively. ``query`` may be a
        multidict (``getall`` is used for array parameters).
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
            return [f"{self.operation_id}: status {status} is not documented "
                    f"(documented: {', '.join(self.responses) or 'none'})"]
        return _check_body(f"{self.operation_id} {status}", media, content_type, body)


def _check_body(where: str, media: Mapping[str, _Media], content_type: str | None, body: bytes) -> list[str]:
    if not media:
        return [f"{where}: body not documented, got {len(body)} bytes"] if body else []
    chosen = _pick(media, content_type)
    if chosen is None:
        return [f"{where}: content type {_media_key(content_type) or '(none)'!r} not documented "
                f"(documented: {', '.join(media)})"]
    if not chosen.is_json:
        return []
    try:
        doc = load_json(body, f"{where} body")
    except BadRequest as e:
        return [e.message]
    return chosen.schema.errors(doc, f"{where} body", first=False) if chosen.schema else []


# --------------------------------------------------------------------------- compilation


@dataclass(slots=True)
class _Compiler:
    spec: Mapping[str, Any]
    check: bool = True  # meta-validate every schema (slow: most of the start-up time)
    registry: Registry = field(init=False)
    # Shared components are compiled once: keyed by $ref, or by the identity of the (spec-owned) object.
    # The raw object is kept in the value so that its id() cannot be reused while cached.
    cache: dict[Any, tuple[Any, CompiledSchema]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.registry = Registry().with_resource(SPEC_URI, DRAFT202012.create_resource(self.spec))

    def schema(self, raw: Any, where: str) -> CompiledSchema:
        ref = raw.get("$ref") if isinstance(raw, dict) and len(raw) == 1 else None
        key = ref if isinstance(ref, str) else id(raw)
        hit = self.cache.get(key)
        if hit is None:
            hit = self.cache[key] = (raw, self._compile(raw, where))
        return hit[1]

    def _compile(self, raw: Any, where: str) -> CompiledSchema:
        s = _handler_checked(inline_refs(self.spec, raw if isinstance(raw, (dict, bool)) else {}))
        if self.check:
            try:
                Draft202012Validator.check_schema(s)
            except Exception as e:  # noqa: BLE001 - any schema error is a contract error
                raise ContractError(f"{where}: invalid schema: {getattr(e, 'message', e)}") from None
        fast = scalar_checker(s) if isinstance(s, dict) else None
        return CompiledSchema(s, Draft202012Validator(s, registry=self.registry), fast)

    def parameter(self, raw: Mapping[str, Any], where: str) -> Parameter:
        schema_raw = deref(self.spec, raw.get("schema", {}))
        sch = self.schema(schema_raw, f"{where} {raw['name']}")
        items = None
        if "array" in schema_types(sch.schema):
            items = self.schema(sch.schema.get("items", {}), f"{where} {raw['name']} items")
        return Parameter(
            name=raw["name"], location=raw["in"], required=bool(raw.get("required", raw["in"] == "path")),
            greedy=bool(raw.get("x-greedy") or schema_raw.get("x-greedy")),
            explode=bool(raw.get("explode", raw.get("style", "form") == "form")),
            schema=sch, items=items, types=schema_types(sch.schema), fast=fast_parser(sch.schema),
            default=sch.schema.get("default") if isinstance(sch.schema, dict) else None,
        )

    def media(self, content: Mapping[str, Any], where: str) -> dict[str, _Media]:
        out = {}
        for mt, obj in (content or {}).items():
            key = mt.lower()
            is_json = key == "application/json" or key.endswith("+json")
            sch = obj.get("schema") if isinstance(obj, dict) else None
            out[key] = _Media(key, is_json, self.schema(sch, f"{where} {mt}") if sch is not None else None)
        return out

    def operation(self, template: str, method: str, item: Mapping[str, Any], op: Mapping[str, Any],
                  prefixes: list[str]) -> Operation:
        where = f"{method.upper()} {template}"
        oid = op.get("operationId")
        if not oid:
            raise ContractError(f"{where}: operationId missing")
        params: dict[tuple[str, str], Parameter] = {}
        for raw in [*item.get("parameters", ()), *op.get("parameters", ())]:
            raw = deref(self.spec, raw)
            params[(raw["name"], raw["in"])] = self.parameter(raw, where)
        path_ps = [p for (_, loc), p in params.items() if loc == "path"]
        regex, groups, greedy = _template_regex(template, {p.name: p for p in path_ps}, where)
        body = deref(self.spec, op.get("requestBody")) or {}
        body_media = self.media(body.get("content", {}), f"{where} request")
        responses: dict[str, dict[str, _Media]] = {}
        for status, resp in (op.get("responses") or {}).items():
            resp = deref(self.spec, resp) or {}
            responses[str(status).upper() if str(status) != "default" else "default"] = self.media(
                resp.get("content", {}), f"{where} {status}")
        ext = {k: v for k, v in op.items() if k.startswith("x-")}
        medias = list(body_media.values())
        return Operation(
            operation_id=oid, method=method.upper(), path_template=template, path_regex=regex,
            greedy=greedy, path_params=tuple(path_ps),
            header_params={p.name.lower(): p for (_, loc), p in params.items() if loc == "header"},
            query_params=tuple(p for (_, loc), p in params.items() if loc == "query"),
            body_media=body_media, body_required=bool(body.get("required", False)),
            responses=responses, extensions=ext,
            statuses=frozenset(int(s) for s in responses if s.isdigit()),
            header_prefixes=tuple(p.lower() for p in [*prefixes, *op.get("x-header-prefixes", ())]),
            _required_headers=tuple(p.name for (_, loc), p in params.items() if loc == "header" and p.required),
            _group_names=groups,
            _greedy_doc=next((_first_pattern(inline_refs(self.spec, deref(self.spec, raw).get("schema", {})))
                              for raw in [*item.get("parameters", ()), *op.get("parameters", ())]
                              if (r := deref(self.spec, raw)).get("in") == "path" and r.get("x-greedy")), None),
            _only_json=medias[0] if len(medias) == 1 and medias[0].is_json else None,
            _any_json=any(m.is_json for m in medias),
            _header_defaults=tuple(p for (_, loc), p in params.items() if loc == "header" and p.default is not None),
        )


def _first_pattern(node: Any) -> re.Pattern[str] | None:
    """The first ``pattern`` in a (ref-inlined) schema, compiled; None if it has none."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            return re.compile(node["pattern"])
        for v in node.values():
            found = _first_pattern(v)
            if found is not None:
                return found
    if isinstance(node, list):
        for v in node:
            found = _first_pattern(v)
            if found is not None:
                return found
    return None


def _handler_checked(node: Any) -> Any:
    """``node`` with each ``x-checked-by: handler`` schema reduced to its ``type`` (the handler checks the rest)."""
    if isinstance(node, list):
        return [_handler_checked(n) for n in node]
    if not isinstance(node, dict):
        return node
    if node.get("x-checked-by") == "handler":
        return {"type": node["type"]} if "type" in node else {}
    return {k: _handler_checked(v) for k, v in node.items()}


_PARAM_RE = re.compile(r"\{([^{}]+)\}")


def _template_regex(template: str, params: Mapping[str, Parameter], where: str
                    ) -> tuple[re.Pattern[str], tuple[tuple[str, str, bool], ...], bool]:
    """``/q/{name}/pause`` -> (``^/q/(?P<p0>[^/]+)/pause$``, (("p0", "name", True),), False)."""
    out, groups, pos, greedy = [], [], 0, False
    for i, m in enumerate(_PARAM_RE.finditer(template)):
        name = m.group(1)
        p = params.get(name)
        if p is None:
            raise ContractError(f"{where}: path parameter {name!r} not declared")
        out.append(re.escape(template[pos:m.start()]))
        out.append(f"(?P<p{i}>.+)" if p.greedy else f"(?P<p{i}>[^/?]+)")
        groups.append((f"p{i}", name, not p.greedy))
        greedy = greedy or p.greedy
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out), re.DOTALL), tuple(groups), greedy


def _prefix(template: str) -> str:
    """The literal text up to the last ``/`` before the first ``{``: ``/q/{n}/x`` -> ``/q/``."""
    brace = template.find("{")
    return template if brace < 0 else template[: template.rfind("/", 0, brace) + 1]


def _router_errors(comp: _Compiler, raw: Any) -> dict[str, dict[str, _Media]]:
    """Compile ``x-router-errors``: ``{status: schema-or-response}``, one response object, or one schema.

    ``"default"`` always exists (the QStash error body ``{"error": string}`` unless given).
    """
    raw = deref(comp.spec, raw) if raw is not None else {}

    def one(obj: Any, where: str) -> dict[str, _Media]:
        obj = deref(comp.spec, obj) if isinstance(obj, dict) and "content" not in obj else obj
        if isinstance(obj, dict) and "content" in obj:
            return comp.media(obj["content"], where)
        schema = obj.get("schema", obj) if isinstance(obj, dict) and "type" not in obj else obj
        return comp.media({"application/json": {"schema": schema}}, where)

    keys = [str(k) for k in raw]
    if keys and all(k == "default" or (len(k) == 3 and k.isdigit()) for k in keys):
        out = {str(k): one(v, f"x-router-errors {k}") for k, v in raw.items()}
    else:
        out = {"default": one(raw, "x-router-errors")} if raw else {}
    out.setdefault("default", comp.media({"application/json": {"schema": _DEFAULT_ERROR_SCHEMA}}, "router"))
    return out


class Contract:
    """The compiled spec: a router plus one :class:`Operation` per path + method.

    Build it once (``Contract.load()``) and share it; it holds no per-request state.
    """

    def __init__(self, spec: Mapping[str, Any], operations: list[Operation],
                 router_errors: Mapping[str, Mapping[str, _Media]]):
        self.spec = spec
        self._ops = {op.operation_id: op for op in operations}
        self._router_errors = router_errors
        self._literal: dict[str, dict[str, Operation]] = {}
        self._buckets: dict[str, list[Operation]] = {}
        for op in operations:
            if not op._group_names:
                self._literal.setdefault(op.path_template, {})[op.method] = op
            else:
                self._buckets.setdefault(_prefix(op.path_template), []).append(op)
        for ops in self._buckets.values():
            # Within a prefix: single-segment params before greedy ones, more literal text first.
            ops.sort(key=lambda o: (o.greedy, -len(_PARAM_RE.sub("", o.path_template))))
        self._depths = sorted({p.count("/") for p in self._buckets}, reverse=True)

    @classmethod
    def from_spec(
        cls, spec: Mapping[str, Any], *, check: bool = True, prefix: str | tuple[str, ...] | None = None
    ) -> Contract:
        """Compile an already loaded OpenAPI 3.1 document; ContractError if it is inconsistent.

        ``check=False`` skips meta-validating each schema against JSON Schema 2020-12: the shipped
        ``openapi.yaml`` is checked by the test suite, so the server skips it to start fast.
        ``prefix`` compiles only the section of the spec whose paths start with it (one surface's).
        """
        comp = _Compiler(spec, check)
        prefixes = list(spec.get("x-header-prefixes", ()))
        common = spec.get("x-common-responses") or {}
        ops: list[Operation] = []
        seen: dict[str, str] = {}
        for template, item in (spec.get("paths") or {}).items():
            if prefix is not None and not template.startswith(prefix):
                continue
            item = deref(spec, item)
            for method in [k for k in item if k in _METHODS]:
                raw_op = dict(item[method])
                if common:  # responses every operation may give (e.g. 401, 429), unless overridden
                    raw_op["responses"] = {**common, **(raw_op.get("responses") or {})}
                op = comp.operation(template, method, item, raw_op, prefixes)
                if op.operation_id in seen:
                    raise ContractError(f"operationId {op.operation_id!r} used by both "
                                        f"{seen[op.operation_id]} and {method.upper()} {template}")
                seen[op.operation_id] = f"{method.upper()} {template}"
                ops.append(op)
        router = _router_errors(comp, spec.get("x-router-errors"))
        return cls(spec, ops, router)

    @classmethod
    def load(cls, path: str | Path | None = None, *, check: bool | None = None) -> Contract:
        """Load and compile ``path`` (default: the packaged ``openapi.yaml``, whose schemas the test
        suite meta-validates, so they are not checked again at start-up unless ``check=True``)."""
        return cls.from_spec(load_spec(path), check=(path is not None) if check is None else check)

    # ------------------------------------------------------------------ lookup

    @property
    def operation_ids(self) -> tuple[str, ...]:
        """Every operationId, in spec order."""
        return tuple(self._ops)

    @property
    def operations(self) -> Mapping[str, Operation]:
        """operationId -> compiled operation, in spec order (read-only)."""
        return MappingProxyType(self._ops)

    def operation(self, operation_id: str) -> Operation:
        """The operation with this id (KeyError if none)."""
        return self._ops[operation_id]

    def statuses(self, operation_id: str) -> set[int]:
        """The numeric statuses documented for an operation (``4XX``/``default`` not expanded)."""
        return set(self._ops[operation_id].statuses)

    def check_handlers(self, handler_ids: Collection[str]) -> None:
        """Raise ContractError unless handlers and operations correspond one to one."""
        handlers = set(handler_ids)
        missing = sorted(set(self._ops) - handlers)
        extra = sorted(handlers - set(self._ops))
        problems = []
        if missing:
            problems.append("operations without handler: " + ", ".join(missing))
        if extra:
            problems.append("handlers without operation: " + ", ".join(extra))
        if problems:
            raise ContractError("; ".join(problems))

    # ------------------------------------------------------------------ routing

    def match(self, method: str, raw_path: str) -> tuple[Operation, dict[str, str]]:
        """Find the operation for a raw request target (query string allowed) and its path values.

        ``match("POST", "/v1/qstash/publish/https://a.com/x?y=1")`` ->
        ``(<publish op>, {"destination": "https://a.com/x?y=1"})``.
        Raises NotFound for an unknown path and MethodNotAllowed (with ``allowed``) for a known path.
        """
        method = method.upper()
        q = raw_path.find("?")
        path = raw_path if q < 0 else raw_path[:q]
        allowed: set[str] = set()
        lit = self._literal.get(path)
        if lit is not None:
            op = lit.get(method)
            if op is not None:
                return op, {}
            allowed.update(lit)
        if self._depths:
            slashes, i = [], -1
            for _ in range(self._depths[0]):
                i = path.find("/", i + 1)
                if i < 0:
                    break
                slashes.append(i)
            for depth in self._depths:
                if depth > len(slashes):
                    continue
                bucket = self._buckets.get(path[: slashes[depth - 1] + 1])
                if bucket is None:
                    continue
                matches = [(op, m) for op in bucket
                           if (m := op.path_regex.fullmatch(raw_path if op.greedy else path)) is not None]
                if (len(matches) > 1 and len({op.greedy for op, _ in matches}) == 2
                        and all(op._greedy_doc is not None for op, _ in matches if op.greedy)):
                    # Ambiguous: /schedules/scd_1 fits {scheduleId} and the greedy {destination}. The path is
                    # the greedy template's if its value fits the documented pattern (an URL), else the other's.
                    fits = any(any(op._greedy_doc.search(v) for v in op.path_values(m).values())  # type: ignore[union-attr]
                               for op, m in matches if op.greedy)
                    matches = [(op, m) for op, m in matches if op.greedy == fits]
                for op, m in matches:
                    if op.method == method:
                        return op, op.path_values(m)
                    allowed.add(op.method)
        if allowed:
            methods = sorted(allowed)
            raise MethodNotAllowed(f"method {method} not allowed for {path}; allowed: {', '.join(methods)}",
                                   allowed=methods)
        raise NotFound(f"no such route: {method} {path}")

    # ------------------------------------------------------------------ responses

    def validate_response(self, method: str, raw_path: str, status: int, content_type: str | None,
                          body: bytes) -> list[str]:
        """Problems with a response to ``method raw_path`` (empty list = valid against the spec).

        Answers to unknown routes / wrong methods must be 404 / 405 with the router error body
        (``x-router-errors`` in the spec, default ``{"error": string}``).
        """
        where = f"{method.upper()} {raw_path.split('?', 1)[0]}"
        try:
            op, _ = self.match(method, raw_path)
        except (NotFound, MethodNotAllowed) as e:
            if status != e.status:
                return [f"{where}: router answer must be {e.status}, got {status}"]
            media = self._router_errors.get(str(status)) or self._router_errors["default"]
            return _check_body(f"{where} {status}", media, content_type, body)
        if str(status) in self._router_errors and not op.documents(status):
            return _check_body(f"{where} {status}", self._router_errors[str(status)], content_type, body)
        return op.response_errors(status, content_type, body)
