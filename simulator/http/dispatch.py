"""The dispatcher: one request in, one response out, whatever server carries them.

For each :class:`~qstash_sim.http.surface.InboundRequest` it journals the call, picks the surface whose
mount is the longest prefix of the path, lets that surface's router match the operation (404 vs 405),
reads the body within the limits (413, 408), validates it against the contract, authenticates the caller,
runs the surface's hooks and handler, bills successful calls by the operation's ``x-billing``, and renders
every error once, as QStash's ``{"error": "..."}`` (or the error's own body: x402).

It knows nothing of aiohttp: :mod:`qstash_sim.http.aiohttp_app` adapts it to an aiohttp server.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from qstash_sim.core.feature import Fired, FiredKind
from qstash_sim.domain.journal import JournalEntry
from qstash_sim.errors import ApiError, BadRequest, NotFound, PayloadTooLarge
from qstash_sim.http.recorded import recorded_headers
from qstash_sim.http.surface import Ctx, InboundRequest, Reply, Surface

if TYPE_CHECKING:
    from qstash_sim.simulator import Simulator

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_READ_TIMEOUT", "Dispatcher", "Response", "encode_json"]

log = logging.getLogger("qstash_sim.http")

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_READ_TIMEOUT = 30.0
NO_RESPONSE = 444  # placeholder status of a dropped/reset call (nginx's "closed without response")

encode_json = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps(...) builds one per call


@dataclass(slots=True)
class Response:
    """What to send: status, JSON body bytes, headers; ``fault`` is a scenario's socket trick to carry out."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    fault: Fired | None = None
    stream: AsyncIterator[bytes] | None = None  # sent after the head, chunk by chunk (server-sent events)


def render(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response with a compact body."""
    return Response(status, encode_json(body).encode(), dict(headers or {}))


def render_error(exc: ApiError) -> Response:
    """An :class:`ApiError` as QStash's error body, or the error's own body (x402)."""
    body = exc.body if exc.body is not None else {"error": exc.message}
    return render(body, exc.status, exc.headers)


class Dispatcher:
    """Routes to surfaces, validates, calls hooks and handlers, bills, journals and renders."""

    def __init__(
        self,
        sim: Simulator,
        surfaces: Sequence[Surface],
        *,
        max_body: int = DEFAULT_MAX_BODY,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        strict: bool | None = None,
    ) -> None:
        self.sim = sim
        self.surfaces = list(surfaces)
        names = [s.name for s in self.surfaces]
        if len(set(names)) != len(names):
            raise ValueError(f"two surfaces with the same name: {names}")
        # Longest mount first, so /v1/qstash/ could be its own surface beside /v1/.
        self._mounts = sorted(((m, s) for s in self.surfaces for m in s.mount), key=lambda p: -len(p[0]))
        self.max_body = max_body
        # Seconds a request body may take to arrive once its head is in (408 after that); also the head's
        # own timeout in the aiohttp adapter. Settable at run time.
        self.read_timeout = read_timeout
        self._strict = strict  # None: follow ``sim.strict``, which may change between tests
        self.prices: dict[tuple[str, str], tuple[Decimal, str]] = {}
        for s in self.surfaces:
            for op_id, op in s.contract.operations.items():
                billing = op.extensions.get("x-billing")
                if billing:
                    self.prices[(s.name, op_id)] = (Decimal(str(billing["price"])), str(billing.get("per", "call")))

    @property
    def strict(self) -> bool:
        """Unknown ``Upstash-*`` headers are a 400 (else a journal warning)."""
        return self.sim.strict if self._strict is None else self._strict

    @strict.setter
    def strict(self, value: bool | None) -> None:
        self._strict = value

    def surface_for(self, raw_path: str) -> Surface | None:
        """The surface that owns ``raw_path`` (longest mount prefix), or ``None``."""
        for mount, surface in self._mounts:
            if raw_path.startswith(mount):
                return surface
        return None

    def fault_statuses(self) -> dict[str, frozenset[int]]:
        """``{operationId: x-fault-statuses}`` over every surface."""
        out: dict[str, frozenset[int]] = {}
        for s in self.surfaces:
            out.update(s.fault_statuses())
        return out

    # ------------------------------------------------------------------ one request

    async def dispatch(self, request: InboundRequest) -> Response:
        """Answer one request (never raises for a request's own mistakes; a bug answers 500)."""
        started = time.perf_counter()
        world = self.sim.world
        entry = world.journal.add(world.now, "request", method=request.method, path=request.raw_path)
        entry.request_id = f"req_{entry.seq}"
        ctx: Ctx | None = None
        try:
            ctx, response = await self._handle(request, entry)
        except ApiError as exc:
            entry.status = exc.status
            entry.error = exc.message
            response = render_error(exc)
        except Exception as exc:  # a bug: answer without a traceback, keep it (bounded) for a test to re-raise
            log.exception("internal error on %s %s", request.method, request.raw_path)
            self.sim.errors.append(_detached(exc))
            entry.status = 500
            entry.error = f"internal error: {type(exc).__name__}"
            response = render({"error": f"internal error: {type(exc).__name__}"}, 500)
        self._finish(ctx, entry, response)
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s -> %s %s(%.1f ms)",
                request.method,
                request.raw_path,
                entry.status if entry.status is not None else "no answer",
                f"[{entry.rule}] " if entry.rule else "",
                (time.perf_counter() - started) * 1000,
            )
        return response

    async def _handle(self, request: InboundRequest, entry: JournalEntry) -> tuple[Ctx | None, Response]:
        surface = self.surface_for(request.raw_path)
        if surface is None:
            path = request.raw_path.split("?", 1)[0]
            raise NotFound(f"no such route: {request.method.upper()} {path}")
        op, params = surface.contract.match(request.method, request.raw_path)
        entry.operation = op.operation_id
        body = await self._read_body(request)
        # who is calling comes before what they sent: bad credentials are a 401 whatever the request holds
        caller = surface.authenticate(request, self.sim)
        validated = op.validate_request(
            request.headers,
            request.query,
            params,
            body,
            request.headers.get("Content-Type"),
            raw_query=request.raw_path.partition("?")[2],
        )
        caller.request_id = entry.request_id
        entry.account = caller.account if surface.accounts else None
        if surface.upstash_headers:
            self._unknown_headers(op, request, caller.account, entry)
        ctx = Ctx(
            self.sim,
            surface,
            request,
            op,
            validated.path_params,
            validated.query,
            validated.headers,
            body,
            validated.json,
            caller,
            entry,
        )
        for hook in surface.hooks:
            hook.resolve(ctx)
        reply: Reply | None = None
        for hook in surface.hooks:
            reply = hook.before(ctx)
            if reply is not None:
                break
        if reply is None:
            reply = await surface.handlers[op.operation_id](ctx)
            entry.message_ids = reply.message_ids
            if reply.message_ids or "deduplicated" in entry.detail:  # what the inspector compares attempts with
                entry.detail["headers"] = recorded_headers(request.headers)
            price = self.prices.get((surface.name, op.operation_id))
            if price is not None and 200 <= reply.status < 300:
                unit, per = price
                self.sim.charge(ctx.caller, op.operation_id, reply.quantity if per == "item" else 1, unit)
            for hook in surface.hooks:
                hook.after(ctx, reply)
        fault = reply.fault if reply.fault is not None else ctx.state.get("fault")
        if fault is not None and fault.kind is FiredKind.PASS and fault.headers:
            reply.headers.update(fault.headers)
        entry.status = reply.status
        if isinstance(reply.body, bytes):  # sent as it is (its Content-Type in the headers)
            response = Response(reply.status, reply.body, dict(reply.headers), stream=reply.stream)
        else:
            response = render(reply.body, reply.status, reply.headers)
        response.fault = fault
        return ctx, response

    async def _read_body(self, request: InboundRequest) -> bytes:
        if request.read_body is None:
            return b""
        try:
            async with asyncio.timeout(self.read_timeout):
                body = await request.read_body(self.max_body)
        except TimeoutError:
            raise ApiError(
                f"body: not received within {self.read_timeout:g} s (the server's read timeout); "
                "send the whole body promptly",
                status=408,
                headers={"Connection": "close"},
            ) from None
        if len(body) > self.max_body:
            raise PayloadTooLarge(f"body: {len(body)} bytes is over the limit of {self.max_body} bytes")
        return body

    def _unknown_headers(self, op: Any, request: InboundRequest, account: str, entry: JournalEntry) -> None:
        for name, hint in op.unknown_upstash_headers(request.headers):
            suggestion = f"; did you mean {hint}?" if hint else ""
            if self.strict:
                raise BadRequest(f"header {name}: unknown Upstash header{suggestion}")
            text = f"unknown header {name}{suggestion} (QStash ignores it)"
            entry.warnings.append(text)
            self.sim.world.journal.warn(self.sim.world.now, text, account=account, request_id=entry.request_id)

    def _finish(self, ctx: Ctx | None, entry: JournalEntry, response: Response) -> None:
        """Journal a fault's socket trick, then let every hook see the final status."""
        fault = response.fault
        if fault is not None and fault.kind in (FiredKind.DROP, FiredKind.RESET):
            entry.status = None
            entry.outcome = fault.kind.value
            dropped = "dropped" if fault.kind is FiredKind.DROP else "reset"
            entry.error = f"connection {dropped} by scenario rule {fault.rule}"
        elif fault is not None and fault.kind is FiredKind.MALFORMED:
            entry.outcome = fault.kind.value
        if ctx is not None:
            for hook in ctx.surface.hooks:
                hook.finish(ctx, entry.status)


def _detached(exc: Exception) -> Exception:
    """``exc`` without its traceback frames (they hold the request's body and every local), the
    formatted traceback kept as a note: what a test needs to see, without keeping the request alive."""
    text = "".join(traceback.format_exception(exc)).rstrip()
    exc.add_note(f"server-side traceback:\n{text}")
    return exc.with_traceback(None)
