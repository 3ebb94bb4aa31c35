"""A :class:`Surface` is one API the server offers: its section of the contract, its handlers, how it knows
the caller, and its hooks. The app is built from a list of surfaces (:func:`qstash_sim.http.app.build_app`).

========================  ============================================================================
``mount``                 the path prefixes it owns (``("/v1/",)``): a request goes to the surface whose
                          prefix is the longest match, then to that surface's own router (404 vs 405)
``contract``              the compiled operations of its spec section (``paths`` under the mount)
``handlers``              ``operationId -> handler``: exactly one per operation (checked at start-up);
                          two surfaces may both have a ``publish``
``authenticate``          (request, simulator) -> the :class:`~qstash_sim.domain.commands.Caller`
``hooks``                 :class:`Hook` objects, in order: ``resolve`` (refine the caller), ``before``
                          (may answer instead of the handler), ``after`` (a successful handler's reply),
                          ``finish`` (always, with the final status)
``upstash_headers``       unknown ``Upstash-*`` headers are a journal warning (a 400 when strict)
========================  ============================================================================

Handlers are ``async def handler(ctx: Ctx) -> Reply``; they receive the validated request (path
parameters, query and declared headers coerced to their schema types, the spec's defaults applied, the
parsed JSON body) and call one method of the simulator.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qstash_sim.contract.operation import Operation
from qstash_sim.contract.router import Contract
from qstash_sim.domain.commands import Caller
from qstash_sim.domain.journal import JournalEntry
from qstash_sim.errors import ContractError

if TYPE_CHECKING:
    from qstash_sim.core.feature import Fired
    from qstash_sim.simulator import Simulator

__all__ = ["Ctx", "Handler", "Hook", "InboundRequest", "Reply", "Surface"]


@dataclass(slots=True)
class InboundRequest:
    """An HTTP request as the dispatcher sees it, whatever server received it.

    ``headers`` and ``query`` are case-insensitive / multi-valued mappings (``multidict``'s proxies);
    ``raw_path`` is the request target exactly as sent (path and query string, nothing decoded).
    """

    method: str
    raw_path: str
    headers: Any
    query: Any
    scheme: str = "http"
    host: str = "127.0.0.1"
    remote: str | None = "127.0.0.1"
    read_body: Callable[[int], Awaitable[bytes]] | None = None  # (limit) -> body; None: no body

    @property
    def url(self) -> str:
        """The full URL as the client sent it (what an x402 ``resource`` names)."""
        return f"{self.scheme}://{self.host}{self.raw_path}"


@dataclass(slots=True)
class Reply:
    """A handler's (or a hook's) answer: a JSON-able body, a status, extra headers, and billing facts.

    A ``bytes`` body is sent as it is, with the ``Content-Type`` of ``headers`` (the dashboard's files);
    ``stream``, when set, is sent after the head, chunk by chunk, until it ends or the server stops
    (server-sent events)."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    message_ids: list[str] = field(default_factory=list)
    quantity: int = 1  # billing units for ``x-billing: per: item``
    fault: Fired | None = None  # a fault the server carries out while answering (drop, reset, latency...)
    stream: AsyncIterator[bytes] | None = None  # chunks sent after the head (then ``body`` is ignored)


@dataclass(slots=True)
class Ctx:
    """What a handler gets: the simulator, the matched operation and the validated request."""

    sim: Simulator
    surface: Surface
    request: InboundRequest
    op: Operation
    params: dict[str, Any]  # path parameters
    query: dict[str, Any]  # declared query parameters, coerced, defaults applied
    header_values: dict[str, Any]  # declared headers by their declared name, coerced, defaults applied
    body: bytes
    json: Any
    caller: Caller
    entry: JournalEntry
    state: dict[str, Any] = field(default_factory=dict)  # per-request notes of the hooks

    @property
    def headers(self) -> Any:
        """Every request header, raw (case-insensitive)."""
        return self.request.headers

    def warn(self, text: str) -> None:
        """A warning about this request: on its journal entry, as a journal ``warning`` line and in the log."""
        self.entry.warnings.append(text)
        world = self.sim.world
        world.journal.warn(world.now, text, account=self.caller.account, request_id=self.entry.request_id)


Handler = Callable[[Ctx], Awaitable[Reply]]


class Hook:
    """A surface hook; override the steps it takes part in (each a no-op by default)."""

    def resolve(self, ctx: Ctx) -> None:
        """Refine ``ctx.caller`` before anything else looks at the call."""

    def before(self, ctx: Ctx) -> Reply | None:
        """Answer instead of the handler (a :class:`Reply`), raise an ``ApiError``, or ``None`` to go on."""
        return None

    def after(self, ctx: Ctx, reply: Reply) -> None:
        """The handler answered ``reply`` (any status); adjust it (headers) or commit something."""

    def finish(self, ctx: Ctx, status: int | None) -> None:
        """Always last: the call is answered with ``status`` (``None``: no answer, e.g. a dropped connection)."""


def no_caller(request: InboundRequest) -> Caller:
    """Authentication of a surface without accounts (the control plane)."""
    return Caller(caller_ip=request.remote or "127.0.0.1")


class Surface:
    """One API surface: see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        mount: Sequence[str],
        contract: Contract,
        handlers: Mapping[str, Handler],
        authenticate: Callable[[InboundRequest, Simulator], Caller] = lambda request, sim: no_caller(request),
        hooks: Sequence[Hook] = (),
        upstash_headers: bool = False,
        accounts: bool = True,
        description: str = "",
    ) -> None:
        self.name = name
        self.mount = tuple(mount)
        self.contract = contract
        contract.check_handlers(handlers.keys())
        self.handlers = dict(handlers)
        self.authenticate = authenticate
        self.hooks = list(hooks)
        self.upstash_headers = upstash_headers
        self.accounts = accounts  # journal entries name the caller's account
        self.description = description
        for op in contract.operations.values():
            if not op.path_template.startswith(self.mount):
                raise ContractError(f"surface {name}: {op.method} {op.path_template} is outside its mount {self.mount}")

    def fault_statuses(self) -> dict[str, frozenset[int]]:
        """``{operationId: x-fault-statuses}`` of the operations of this surface that admit faults."""
        return {
            op_id: frozenset(int(s) for s in op.extensions["x-fault-statuses"])
            for op_id, op in self.contract.operations.items()
            if "x-fault-statuses" in op.extensions
        }

    def __repr__(self) -> str:
        return f"Surface({self.name!r}, mount={self.mount!r}, operations={len(self.contract.operation_ids)})"
