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
``body /0/destination: required property missing``."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

from qstash_sim.contract.compile import METHODS, PARAM_RE, Compiler, route_prefix, router_errors
from qstash_sim.contract.load import load_spec
from qstash_sim.contract.operation import Media, Operation, check_body
from qstash_sim.contract.schema import (
    deref,
)
from qstash_sim.errors import ContractError, MethodNotAllowed, NotFound


class Contract:
    """The compiled spec: a router plus one :class:`Operation` per path + method.

    Build it once (``Contract.load()``) and share it; it holds no per-request state.
    """

    def __init__(
        self, spec: Mapping[str, Any], operations: list[Operation], router_errors: Mapping[str, Mapping[str, Media]]
    ):
        self.spec = spec
        self._ops = {op.operation_id: op for op in operations}
        self.router_errors = router_errors
        self._literal: dict[str, dict[str, Operation]] = {}
        self._buckets: dict[str, list[Operation]] = {}
        for op in operations:
            if not op._group_names:
                self._literal.setdefault(op.path_template, {})[op.method] = op
            else:
                self._buckets.setdefault(route_prefix(op.path_template), []).append(op)
        for ops in self._buckets.values():
            # Within a prefix: single-segment params before greedy ones, more literal text first.
            ops.sort(key=lambda o: (o.greedy, -len(PARAM_RE.sub("", o.path_template))))
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
        comp = Compiler(spec, check)
        prefixes = list(spec.get("x-header-prefixes", ()))
        common = spec.get("x-common-responses") or {}
        ops: list[Operation] = []
        seen: dict[str, str] = {}
        for template, item in (spec.get("paths") or {}).items():
            if prefix is not None and not template.startswith(prefix):
                continue
            item = deref(spec, item)
            for method in [k for k in item if k in METHODS]:
                raw_op = dict(item[method])
                if common:  # responses every operation may give (e.g. 401, 429), unless overridden
                    raw_op["responses"] = {**common, **(raw_op.get("responses") or {})}
                op = comp.operation(template, method, item, raw_op, prefixes)
                if op.operation_id in seen:
                    raise ContractError(
                        f"operationId {op.operation_id!r} used by both "
                        f"{seen[op.operation_id]} and {method.upper()} {template}"
                    )
                seen[op.operation_id] = f"{method.upper()} {template}"
                ops.append(op)
        router = router_errors(comp, spec.get("x-router-errors"))
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
                matches = [
                    (op, m)
                    for op in bucket
                    if (m := op.path_regex.fullmatch(raw_path if op.greedy else path)) is not None
                ]
                if (
                    len(matches) > 1
                    and len({op.greedy for op, _ in matches}) == 2
                    and all(op._greedy_doc is not None for op, _ in matches if op.greedy)
                ):
                    # Ambiguous: /schedules/scd_1 fits {scheduleId} and the greedy {destination}. The path is
                    # the greedy template's if its value fits the documented pattern (an URL), else the other's;
                    # except that a method only the greedy side has is always the greedy side's (POST
                    # /schedules/000 is a schedule creation with a bad destination: the handler's 400, as
                    # QStash answers, not a 405).
                    fits = any(
                        any(op._greedy_doc.search(v) for v in op.path_values(m).values())  # type: ignore[union-attr]
                        for op, m in matches
                        if op.greedy
                    )
                    by_method = [(op, m) for op, m in matches if op.method == method]
                    if by_method and all(op.greedy for op, _ in by_method):
                        fits = True
                    if not fits:  # a 405's Allow names every method the path takes, the greedy-only ones too
                        others = {op.method for op, _ in matches if not op.greedy}
                        allowed.update(op.method for op, _ in matches if op.greedy and op.method not in others)
                    matches = [(op, m) for op, m in matches if op.greedy == fits]
                for op, m in matches:
                    if op.method == method:
                        return op, op.path_values(m)
                    allowed.add(op.method)
        if allowed:
            methods = sorted(allowed)
            raise MethodNotAllowed(
                f"method {method} not allowed for {path}; allowed: {', '.join(methods)}", allowed=methods
            )
        raise NotFound(f"no such route: {method} {path}")

    # ------------------------------------------------------------------ responses

    def validate_response(
        self, method: str, raw_path: str, status: int, content_type: str | None, body: bytes
    ) -> list[str]:
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
            media = self.router_errors.get(str(status)) or self.router_errors["default"]
            return check_body(f"{where} {status}", media, content_type, body)
        if str(status) in self.router_errors and not op.documents(status):
            return check_body(f"{where} {status}", self.router_errors[str(status)], content_type, body)
        return op.response_errors(status, content_type, body)
