"""Compiling the spec's paths into :class:`~qstash_sim.contract.operation.Operation` objects: parameters,
bodies, responses, route regexes (``x-greedy`` parameters), and the router's own error answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from qstash_sim.contract.operation import DEFAULT_ERROR_SCHEMA, Media, Operation, Parameter
from qstash_sim.contract.schema import (
    SPEC_URI,
    CompiledSchema,
    SchemaValidator,
    deref,
    ecma_regex,
    fast_parser,
    inline_refs,
    scalar_checker,
    schema_types,
)
from qstash_sim.errors import ContractError

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")


@dataclass(slots=True)
class Compiler:
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
        return CompiledSchema(s, SchemaValidator(s, registry=self.registry), fast)

    def parameter(self, raw: Mapping[str, Any], where: str) -> Parameter:
        schema_raw = deref(self.spec, raw.get("schema", {}))
        sch = self.schema(schema_raw, f"{where} {raw['name']}")
        items = None
        if "array" in schema_types(sch.schema):
            items = self.schema(sch.schema.get("items", {}), f"{where} {raw['name']} items")
        return Parameter(
            name=raw["name"],
            location=raw["in"],
            required=bool(raw.get("required", raw["in"] == "path")),
            greedy=bool(raw.get("x-greedy") or schema_raw.get("x-greedy")),
            explode=bool(raw.get("explode", raw.get("style", "form") == "form")),
            schema=sch,
            items=items,
            types=schema_types(sch.schema),
            fast=fast_parser(sch.schema),
            default=sch.schema.get("default") if isinstance(sch.schema, dict) else None,
        )

    def media(self, content: Mapping[str, Any], where: str) -> dict[str, Media]:
        out = {}
        for mt, obj in (content or {}).items():
            key = mt.lower()
            is_json = key == "application/json" or key.endswith("+json")
            sch = obj.get("schema") if isinstance(obj, dict) else None
            out[key] = Media(key, is_json, self.schema(sch, f"{where} {mt}") if sch is not None else None)
        return out

    def operation(
        self, template: str, method: str, item: Mapping[str, Any], op: Mapping[str, Any], prefixes: list[str]
    ) -> Operation:
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
        responses: dict[str, dict[str, Media]] = {}
        for status, resp in (op.get("responses") or {}).items():
            resp = deref(self.spec, resp) or {}
            responses[str(status).upper() if str(status) != "default" else "default"] = self.media(
                resp.get("content", {}), f"{where} {status}"
            )
        ext = {k: v for k, v in op.items() if k.startswith("x-")}
        medias = list(body_media.values())
        return Operation(
            operation_id=oid,
            method=method.upper(),
            path_template=template,
            path_regex=regex,
            greedy=greedy,
            path_params=tuple(path_ps),
            header_params={p.name.lower(): p for (_, loc), p in params.items() if loc == "header"},
            query_params=tuple(p for (_, loc), p in params.items() if loc == "query"),
            body_media=body_media,
            body_required=bool(body.get("required", False)),
            responses=responses,
            extensions=ext,
            statuses=frozenset(int(s) for s in responses if s.isdigit()),
            header_prefixes=tuple(p.lower() for p in [*prefixes, *op.get("x-header-prefixes", ())]),
            _required_headers=tuple(p.name for (_, loc), p in params.items() if loc == "header" and p.required),
            _group_names=groups,
            _greedy_doc=next(
                (
                    _first_pattern(inline_refs(self.spec, deref(self.spec, raw).get("schema", {})))
                    for raw in [*item.get("parameters", ()), *op.get("parameters", ())]
                    if (r := deref(self.spec, raw)).get("in") == "path" and r.get("x-greedy")
                ),
                None,
            ),
            _only_json=medias[0] if len(medias) == 1 and medias[0].is_json else None,
            _any_json=any(m.is_json for m in medias),
            _header_defaults=tuple(p for (_, loc), p in params.items() if loc == "header" and p.default is not None),
        )


def _first_pattern(node: Any) -> re.Pattern[str] | None:
    """The first ``pattern`` in a (ref-inlined) schema, compiled; None if it has none."""
    if isinstance(node, dict):
        if isinstance(node.get("pattern"), str):
            return ecma_regex(node["pattern"])
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


PARAM_RE = re.compile(r"\{([^{}]+)\}")


def _template_regex(
    template: str, params: Mapping[str, Parameter], where: str
) -> tuple[re.Pattern[str], tuple[tuple[str, str, bool], ...], bool]:
    """``/q/{name}/pause`` -> (``^/q/(?P<p0>[^/]+)/pause$``, (("p0", "name", True),), False)."""
    out, groups, pos, greedy = [], [], 0, False
    for i, m in enumerate(PARAM_RE.finditer(template)):
        name = m.group(1)
        p = params.get(name)
        if p is None:
            raise ContractError(f"{where}: path parameter {name!r} not declared")
        out.append(re.escape(template[pos : m.start()]))
        out.append(f"(?P<p{i}>.+)" if p.greedy else f"(?P<p{i}>[^/?]+)")
        groups.append((f"p{i}", name, not p.greedy))
        greedy = greedy or p.greedy
        pos = m.end()
    out.append(re.escape(template[pos:]))
    return re.compile("".join(out), re.DOTALL), tuple(groups), greedy


def route_prefix(template: str) -> str:
    """The literal text up to the last ``/`` before the first ``{``: ``/q/{n}/x`` -> ``/q/``."""
    brace = template.find("{")
    return template if brace < 0 else template[: template.rfind("/", 0, brace) + 1]


def router_errors(comp: Compiler, raw: Any) -> dict[str, dict[str, Media]]:
    """Compile ``x-router-errors``: ``{status: schema-or-response}``, one response object, or one schema.

    ``"default"`` always exists (the QStash error body ``{"error": string}`` unless given).
    """
    raw = deref(comp.spec, raw) if raw is not None else {}

    def one(obj: Any, where: str) -> dict[str, Media]:
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
    out.setdefault("default", comp.media({"application/json": {"schema": DEFAULT_ERROR_SCHEMA}}, "router"))
    return out
