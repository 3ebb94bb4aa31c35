"""The aiohttp application: one catch-all route whose dispatcher is compiled from ``openapi.yaml``.

Routing, 404/405, request validation and billing all come from the contract
(:mod:`simulator.contract`); handlers (``gateway.py``, ``control.py``) receive a validated
:class:`Ctx` and call one method of the :class:`~simulator.core.Simulator`.
Every error is rendered here, once, as QStash's ``{"error": "..."}`` (x402 bodies for 402).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import web
from qstash_sim.contract.router import Contract, Operation
from qstash_sim.core.journal import JournalEntry
from qstash_sim.core.service import Caller, Simulator
from qstash_sim.core.world import DEFAULT_ACCOUNT
from qstash_sim.errors import ApiError, BadRequest, PayloadTooLarge
from qstash_sim.http.protocol import DEFAULT_MAX_HEADER_SIZE, handler_args

log = logging.getLogger("qstash_sim.http")

DEFAULT_MAX_BODY = 1024 * 1024
DEFAULT_READ_TIMEOUT = 30.0
_JSON = "application/json"


@dataclass(slots=True)
class Ctx:
    """What a handler gets: the simulator, the matched operation and the validated request."""

    sim: Simulator
    request: web.Request
    op: Operation
    params: dict[str, str]
    body: bytes
    json: Any
    caller: Caller
    entry: JournalEntry

    @property
    def headers(self) -> Any:
        """The request headers (case-insensitive)."""
        return self.request.headers

    @property
    def query(self) -> Any:
        """The request's query parameters."""
        return self.request.query


@dataclass(slots=True)
class Reply:
    """A handler's answer: a JSON-able body, a status, extra headers, and billing facts."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message_ids: list[str] = field(default_factory=list)
    quantity: int = 1  # billing units for ``x-billing: per: item``


Handler = Callable[[Ctx], Awaitable[Reply]]
HANDLERS: dict[str, Handler] = {}


def handles(operation_id: str) -> Callable[[Handler], Handler]:
    """Register ``fn`` as the handler of ``operation_id`` (one per operation)."""

    def deco(fn: Handler) -> Handler:
        if operation_id in HANDLERS:
            raise RuntimeError(f"two handlers for {operation_id}")
        HANDLERS[operation_id] = fn
        return fn

    return deco


_encode = json.JSONEncoder(separators=(",", ":")).encode  # one encoder: json.dumps(...) builds one per call


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with a compact body."""
    return web.Response(body=_encode(body).encode(), status=status, headers=headers, content_type=_JSON)


def error_response(exc: ApiError) -> web.Response:
    """Render an :class:`ApiError`: QStash's error body, or the error's own body (x402)."""
    body = exc.body if exc.body is not None else {"error": exc.message}
    return json_response(body, exc.status, exc.headers or None)


async def _read_body(request: web.Request, limit: int) -> bytes:
    """Read the body, refusing (413) as soon as it is known to exceed ``limit`` — never buffering more."""
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"body: {length} bytes is over the limit of {limit} bytes")
    if not request.body_exists:
        return b""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body: over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def resolve_account(request: web.Request) -> str:
    """The caller's account: ``x-api-key``, else ``Authorization: Bearer``, else the default account."""
    key = request.headers.get("x-api-key")
    if key:
        return key
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer " and auth[7:].strip():
        return auth[7:].strip()
    return DEFAULT_ACCOUNT


InboundHook = Callable[[Ctx], Awaitable["web.StreamResponse | None"]]
AfterHook = Callable[[Ctx, Reply], None]


class Dispatcher:
    """Matches, validates, calls the handler, bills, journals and renders."""

    # Seconds a request body may take to arrive once its headers are in (a slow client gets 408 after
    # that, instead of holding a connection and a buffer for ever); set it on the instance to change it.
    read_timeout: float = DEFAULT_READ_TIMEOUT

    def __init__(self, sim: Simulator, contract: Contract, *, max_body: int, strict: bool | None = None) -> None:
        self.sim = sim
        self.contract = contract
        self.max_body = max_body
        self._strict = strict  # None: follow ``sim.strict``, which may change between tests
        contract.check_handlers(HANDLERS.keys())
        self.handlers = {op_id: HANDLERS[op_id] for op_id in contract.operation_ids}
        self.prices: dict[str, tuple[Decimal, str]] = {}
        for op_id in contract.operation_ids:
            billing = contract.operations[op_id].extensions.get("x-billing")
            if billing:
                self.prices[op_id] = (Decimal(str(billing["price"])), str(billing.get("per", "call")))
        # Hooks the scenario and payment layers install: before the handler (may answer instead of
        # it) and after a successful handler (e.g. to settle a payment).
        # ``resolvers`` run first and only refine ``ctx.caller``; then ``before`` hooks, in order.
        self.resolvers: list[InboundHook] = []
        self.before: list[InboundHook] = []
        self.after: list[AfterHook] = []

    @property
    def strict(self) -> bool:
        """Unknown ``Upstash-*`` headers are a 400 (else a journal warning)."""
        return self.sim.strict if self._strict is None else self._strict

    @strict.setter
    def strict(self, value: bool | None) -> None:
        self._strict = value

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        sim = self.sim
        world = sim.world
        entry = world.journal.add(world.now, "request", method=request.method, path=request.raw_path)
        entry.request_id = f"req_{entry.seq}"
        try:
            response = await self._handle(request, entry)
        except ApiError as exc:
            entry.status = exc.status
            entry.error = exc.message
            response = error_response(exc)
        except Exception as exc:  # a bug: answer without a traceback, keep it for the test to re-raise
            log.exception("internal error on %s %s", request.method, request.raw_path)
            sim.extensions.setdefault("errors", []).append(exc)
            entry.status = 500
            entry.error = f"internal error: {type(exc).__name__}"
            response = json_response({"error": f"internal error: {type(exc).__name__}"}, 500)
        if entry.status is None:
            entry.status = response.status
        if log.isEnabledFor(logging.INFO):
            log.info(
                "%s %s -> %d %s(%.1f ms)",
                request.method,
                request.raw_path,
                response.status,
                f"[{entry.rule}] " if entry.rule else "",
                (time.perf_counter() - started) * 1000,
            )
        return response

    async def _handle(self, request: web.Request, entry: JournalEntry) -> web.StreamResponse:
        op, params = self.contract.match(request.method, request.raw_path)
        entry.operation = op.operation_id
        content = request.content
        if content.is_eof():  # the whole body arrived with the headers: take it, no timer needed
            body = content.read_nowait()
            if len(body) > self.max_body:
                raise PayloadTooLarge(f"body: {len(body)} bytes is over the limit of {self.max_body} bytes")
        else:
            try:
                async with asyncio.timeout(self.read_timeout):
                    body = await _read_body(request, self.max_body)
            except TimeoutError:
                raise ApiError(
                    f"body: not received within {self.read_timeout:g} s (the server's read timeout); "
                    "send the whole body promptly", status=408, headers={"Connection": "close"},
                ) from None
        validated = op.validate_request(
            request.headers, request.query, params, body, request.headers.get("Content-Type")
        )
        gateway = not op.path_template.startswith("/_sim/")
        caller = Caller(
            account=resolve_account(request) if gateway else DEFAULT_ACCOUNT,
            request_id=entry.request_id,
            caller_ip=request.remote or "127.0.0.1",
        )
        entry.account = caller.account if gateway else None
        if gateway:
            for name, hint in op.unknown_upstash_headers(request.headers):
                text = f"unknown header {name}" + (f"; did you mean {hint}?" if hint else "") + " (QStash ignores it)"
                if self.strict:
                    raise BadRequest(f"header {name}: unknown Upstash header" + (f"; did you mean {hint}?" if hint else ""))
                entry.warnings.append(text)
                self.sim.world.journal.warn(self.sim.world.now, text, account=caller.account, request_id=entry.request_id)
        ctx = Ctx(self.sim, request, op, validated.path_params, body, validated.json, caller, entry)
        for resolve in self.resolvers:
            await resolve(ctx)
        for hook in self.before:
            early = await hook(ctx)
            if early is not None:
                return early
        reply = await self.handlers[op.operation_id](ctx)
        entry.message_ids = reply.message_ids
        price = self.prices.get(op.operation_id)
        if price is not None and 200 <= reply.status < 300:
            unit, per = price
            self.sim.charge(ctx.caller, op.operation_id, reply.quantity if per == "item" else 1, unit)
        for after in self.after:
            after(ctx, reply)
        entry.status = reply.status
        return json_response(reply.body, reply.status, reply.headers or None)


@web.middleware
async def http_errors_as_json(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                              ) -> web.StreamResponse:
    """Outermost: an error aiohttp raises itself (``web.HTTPException``: 404/405/413...) gets QStash's JSON body."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text if exc.text and exc.text != f"{exc.status}: {exc.reason}" else exc.reason
        headers = {k: v for k, v in exc.headers.items() if k.lower() not in ("content-type", "content-length")}
        return web.Response(body=json.dumps({"error": text}, separators=(",", ":")).encode(), status=exc.status,
                            headers=headers, content_type=_JSON)


APP_SIM: web.AppKey[Simulator] = web.AppKey("sim", Simulator)
APP_DISPATCHER: web.AppKey[Dispatcher] = web.AppKey("dispatcher", Dispatcher)


def build_app(
    sim: Simulator,
    *,
    contract: Contract | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    strict: bool | None = None,
    read_timeout: float = DEFAULT_READ_TIMEOUT,
    max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
) -> web.Application:
    """The aiohttp application serving ``sim``. The contract is compiled once, here.

    ``read_timeout``: seconds a request head, then its body, may take to arrive (408 after that; the head
    part needs :func:`simulator.server.start_site`). ``max_header_size``: the HTTP parser's limit on the
    request line and on each header field, in bytes (a larger one is refused with 400).
    """
    # Importing the handler modules registers their handlers.
    from qstash_sim.api.control import handlers as control  # noqa: F401
    from qstash_sim.api.control import scenarios as scenario_api  # noqa: F401
    from qstash_sim.api.sapiom_v1 import handlers as gateway  # noqa: F401
    from qstash_sim.api.sapiom_v1 import paywall
    from qstash_sim.api.sapiom_v1 import transactions as sapiom_api  # noqa: F401
    from qstash_sim.http import faults

    contract = contract or Contract.load()
    dispatcher = Dispatcher(sim, contract, max_body=max_body, strict=strict)
    dispatcher.read_timeout = read_timeout
    # aiohttp's own limit is above ours so that our reader answers 413 with the QStash body.
    app = web.Application(client_max_size=max_body + 1, handler_args=handler_args(max_header_size))
    app.middlewares.append(http_errors_as_json)  # first: the outermost
    app[APP_SIM] = sim
    app[APP_DISPATCHER] = dispatcher
    paywall.install(app, dispatcher)  # caller from X-Sapiom-Transaction-Id; x402/transaction payment modes
    faults.install(app, dispatcher)  # scenario faults: first before-hook (ahead of payments) + middleware
    # Every path, newlines and odd escapes included (aiohttp matches the decoded path; ".*" stops at "\n"):
    # routing is the contract's job (404/405 with the JSON body), never aiohttp's.
    app.router.add_route("*", r"/{tail:[\s\S]*}", dispatcher.__call__)

    async def _start(_: web.Application) -> None:
        sim.start()

    async def _stop(_: web.Application) -> None:
        await sim.close()

    app.on_startup.append(_start)
    app.on_cleanup.append(_stop)
    return app
