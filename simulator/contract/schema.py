"""JSON Schema pieces of the contract: local ``$ref`` handling, fast checks, human error messages.

:mod:`simulator.contract` compiles every schema of ``openapi.yaml`` into a :class:`CompiledSchema`:
a plain-Python check for the simple scalar schemas that header, query and path parameters use (no
``jsonschema`` call on the hot path), and a ``Draft202012Validator`` for everything else. Messages
name a JSON pointer and what was expected: ``/0/destination: required property missing``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError, best_match
from jsonschema.protocols import Validator

from qstash_sim.errors import BadRequest, ContractError

__all__ = [
    "INT_RE",
    "INVALID",
    "SPEC_URI",
    "CompiledSchema",
    "SchemaValidator",
    "deref",
    "describe",
    "ecma_regex",
    "error_message",
    "fast_parser",
    "inline_refs",
    "load_json",
    "pointer",
    "resolve_ref",
    "scalar_checker",
    "schema_types",
]

SPEC_URI = "urn:qstash-sim:openapi"  # the whole spec's URI in the validators' registry
_ANNOTATIONS = frozenset(
    {
        "description",
        "title",
        "default",
        "examples",
        "example",
        "format",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$comment",
        "nullable",
    }
)
SCALAR_KEYWORDS = frozenset(
    {
        "type",
        "enum",
        "const",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "minLength",
        "maxLength",
        "pattern",
    }
)
_SCALAR_TYPES = frozenset({"string", "integer", "number", "boolean", "null"})
INT_RE = re.compile(r"[+-]?[0-9]+")  # ASCII digits: int() would also take "٣"
Checker = Callable[[Any], "str | None"]  # returns why the value is invalid, or None


@lru_cache(maxsize=1024)
def ecma_regex(pattern: str) -> re.Pattern[str]:
    """A schema's ``pattern`` compiled to mean what JSON Schema means (ECMA 262), not what Python reads.

    Python's ``$`` also matches before a final ``\\n`` (``^[a-z]+$`` would take ``"abc\\n"`` as a queue
    name) and its ``\\d``/``\\w`` take any script's digits and letters: here ``$`` is the end of the string
    (``\\Z``) and the classes are ASCII.
    """
    out: list[str] = []
    escaped = in_class = False
    for ch in pattern:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "$":
            out.append(r"\Z")
            continue
        out.append(ch)
    return re.compile("".join(out), re.ASCII)


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and ecma_regex(pattern).search(instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


# Draft 2020-12, with ``pattern`` read as JSON Schema means it (``ecma_regex``). (The stubs leave ``extend``
# untyped; it returns a validator class.)
SchemaValidator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft202012Validator, {"pattern": _ecma_pattern}
)


def pointer(parts: Iterable[Any]) -> str:
    """``["a", 0, "b/c"]`` -> ``/a/0/b~1c`` (RFC 6901)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def resolve_ref(spec: Mapping[str, Any], ref: str) -> Any:
    """Follow a local ``#/a/b`` reference inside ``spec``."""
    if not ref.startswith("#"):
        raise ContractError(f"only local $refs are supported, got {ref!r}")
    node: Any = spec
    for raw in ref[1:].split("/")[1:]:
        key = unquote(raw).replace("~1", "/").replace("~0", "~")
        try:
            node = node[int(key)] if isinstance(node, list) else node[key]
        except (KeyError, IndexError, ValueError, TypeError):
            raise ContractError(f"unresolvable $ref {ref!r}") from None
    return node


def deref(spec: Mapping[str, Any], obj: Any) -> Any:
    """Follow ``$ref`` chains of OpenAPI objects (parameters, bodies, responses)."""
    seen: set[str] = set()
    while isinstance(obj, dict) and isinstance(obj.get("$ref"), str):
        ref = obj["$ref"]
        if ref in seen:
            raise ContractError(f"$ref cycle at {ref!r}")
        seen.add(ref)
        obj = resolve_ref(spec, ref)
    return obj


def inline_refs(spec: Mapping[str, Any], node: Any, stack: tuple[str, ...] = ()) -> Any:
    """Copy a schema with its local ``$ref``s inlined (fewer hops per validation).

    A recursive reference is kept as an absolute ``$ref`` into the registry instead.
    """
    if isinstance(node, list):
        return [inline_refs(spec, n, stack) for n in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        rest = {k: inline_refs(spec, v, stack) for k, v in node.items() if k != "$ref"}
        if ref in stack:
            return {**rest, "$ref": SPEC_URI + ref}
        target = inline_refs(spec, resolve_ref(spec, ref), (*stack, ref))
        return {"allOf": [target], **rest} if rest else target
    return {k: inline_refs(spec, v, stack) for k, v in node.items()}


def schema_types(schema: Any) -> tuple[str, ...]:
    """The schema's ``type`` as a tuple: ``{"type": ["string", "null"]}`` -> ``("string", "null")``."""
    t = schema.get("type") if isinstance(schema, Mapping) else None
    return (t,) if isinstance(t, str) else tuple(t or ())


def describe(schema: Mapping[str, Any]) -> str:
    """A short human phrase: ``{"type": "integer", "minimum": 0, "maximum": 5}`` -> ``integer between 0 and 5``."""
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    base = " or ".join(schema_types(schema)) or "value"
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    if lo is not None and hi is not None:
        return f"{base} between {lo} and {hi}"
    bounds = [
        f">= {lo}" if lo is not None else "",
        f"> {xlo}" if xlo is not None else "",
        f"<= {hi}" if hi is not None else "",
        f"< {xhi}" if xhi is not None else "",
    ]
    if any(bounds):
        return f"{base} " + " and ".join(b for b in bounds if b)
    mn, mx = schema.get("minLength"), schema.get("maxLength")
    if mn is not None or mx is not None:
        span = (
            f"{mn} to {mx}"
            if mn is not None and mx is not None
            else (f"at least {mn}" if mn is not None else f"at most {mx}")
        )
        return f"{base} of {span} characters"
    return base


def _type_ok(value: Any, types: tuple[str, ...]) -> bool:
    for t in types:
        if t == "string" and isinstance(value, str):
            return True
        if t == "boolean" and isinstance(value, bool):
            return True
        if isinstance(value, bool):
            continue
        if t == "integer" and (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            return True
        if t == "number" and isinstance(value, (int, float)):
            return True
        if t == "null" and value is None:
            return True
    return False


def scalar_checker(schema: Mapping[str, Any]) -> Checker | None:
    """A plain-Python check for simple scalar schemas (the usual header/query/path case), else None."""
    if not isinstance(schema, Mapping):
        return None
    keys = {k for k in schema if not k.startswith("x-")} - _ANNOTATIONS
    types = schema_types(schema)
    if not keys <= SCALAR_KEYWORDS or not set(types) <= _SCALAR_TYPES:
        return None
    expected = "expected " + describe(schema)
    enum = [v for v in schema.get("enum", ())] if "enum" in schema else None
    if "const" in schema:
        enum = [schema["const"]]
    lo, hi = schema.get("minimum"), schema.get("maximum")
    xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
    mn, mx = schema.get("minLength"), schema.get("maxLength")
    pattern = schema.get("pattern")
    rx = ecma_regex(pattern) if pattern is not None else None
    expected_text = schema.get("x-expected")  # a human phrase for the pattern (never show a raw regex)

    def check(v: Any) -> str | None:
        if types and not _type_ok(v, types):
            return expected
        if enum is not None and not any(v == e and type(v) is type(e) for e in enum):
            return expected
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                return expected
            if (xlo is not None and v <= xlo) or (xhi is not None and v >= xhi):
                return expected
        elif isinstance(v, str):
            if (mn is not None and len(v) < mn) or (mx is not None and len(v) > mx):
                return expected
            if rx is not None and rx.search(v) is None:
                return f"expected {expected_text}" if expected_text else f"must match {pattern}"
        return None

    return check


INVALID = object()  # what a fast parser returns when the slow path must build the message


def fast_parser(schema: Mapping[str, Any]) -> Callable[[str], Any] | None:
    """A string -> value parser for the common string/integer parameter schemas (``INVALID`` if bad)."""
    check = scalar_checker(schema)
    types = schema_types(schema)
    if check is None:
        return None
    if types == ("string",) and "const" not in schema:
        enum = frozenset(schema["enum"]) if "enum" in schema else None
        mn, mx = schema.get("minLength"), schema.get("maxLength")
        rx = ecma_regex(schema["pattern"]) if "pattern" in schema else None

        def parse_str(raw: str) -> Any:
            if enum is not None and raw not in enum:
                return INVALID
            if (mn is not None and len(raw) < mn) or (mx is not None and len(raw) > mx):
                return INVALID
            return INVALID if rx is not None and rx.search(raw) is None else raw

        return parse_str
    if types == ("integer",):

        def parse_int(raw: str) -> Any:
            if INT_RE.fullmatch(raw) is None:
                return INVALID
            v = int(raw)
            return v if check(v) is None else INVALID

        return parse_int
    return None


def error_message(error: ValidationError) -> tuple[str, str]:
    """(JSON pointer, reason) for a jsonschema error, phrased for a human."""
    path = list(error.absolute_path)
    # jsonschema types these as "Any | Unset" (unset only on errors built by hand): read them as Any.
    kw: Any = error.validator
    inst: Any = error.instance
    val: Any = error.validator_value
    sch: Any = error.schema
    if kw == "required" and isinstance(inst, dict):
        missing = [p for p in val if p not in inst]
        return pointer([*path, missing[0] if missing else "?"]), "required property missing"
    if kw == "additionalProperties" and isinstance(inst, dict):
        known = sch.get("properties", {}) if isinstance(sch, dict) else {}
        pats = sch.get("patternProperties", {}) if isinstance(sch, dict) else {}
        extra = [k for k in inst if k not in known and not any(re.search(p, k) for p in pats)]
        return pointer([*path, extra[0] if extra else "?"]), "unexpected property"
    got = json.dumps(inst, default=str)
    if len(got) > 60:
        got = got[:57] + "..."
    if kw == "type":
        return pointer(path), f"expected {' or '.join(schema_types(sch))}, got {_json_type(inst)}"
    if kw == "pattern":
        human = sch.get("x-expected") if isinstance(sch, Mapping) else None
        return pointer(path), (f"expected {human}, got {got}" if human else f"must match {val}, got {got}")
    if kw in ("enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength"):
        return pointer(path), f"expected {describe(sch)}, got {got}"
    if kw in ("minItems", "maxItems"):
        bound = "at least" if kw == "minItems" else "at most"
        return pointer(path), f"expected {bound} {val} item{'s' * (val != 1)}, got {len(inst)}"
    if kw in ("oneOf", "anyOf") and isinstance(val, list):
        options = "; ".join(describe(o) if isinstance(o, Mapping) else str(o) for o in val)
        return pointer(path), f"expected {'exactly ' * (kw == 'oneOf')}one of: {options}, got {got}"
    return pointer(path), error.message


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, float):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _where(part: str, pointer: str) -> str:
    return f"{part} {pointer}" if pointer else part


@dataclass(slots=True, frozen=True)
class CompiledSchema:
    """A compiled schema: a fast plain-Python checker when possible, jsonschema otherwise."""

    schema: Mapping[str, Any]
    validator: Validator
    fast: Checker | None

    def errors(self, value: Any, part: str, *, first: bool = True) -> list[str]:
        """Messages like ``body /0/destination: required property missing`` (empty when valid)."""
        try:
            if self.fast is not None:
                why = self.fast(value)
                return [] if why is None else [f"{part}: {why}"]
            if self.validator.is_valid(value):
                return []
            errs = list(self.validator.iter_errors(value))
        except RecursionError:
            return [f"{part}: JSON nested too deeply"]
        chosen = [best_match(errs)] if first else errs
        return sorted(f"{_where(part, p)}: {why}" for p, why in map(error_message, chosen))


def load_json(body: bytes, part: str = "body") -> Any:
    """Parse strict JSON from bytes; BadRequest names what went wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadRequest(f"{part}: invalid UTF-8 at byte {e.start}") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        raise BadRequest(f"{part}: invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None
    except RecursionError:
        raise BadRequest(f"{part}: JSON nested too deeply") from None
    except ValueError as e:
        raise BadRequest(f"{part}: invalid JSON: {e}") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")
