"""Running the simulator's HTTP server: in the foreground (the CLI) or on a background thread (tests).

The background server owns its own event loop on a daemon thread, binds port 0 by default and reads
the real port back (no find-a-free-port race). Calls from other threads go through :meth:`call`.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from typing import Any, TypeVar

from aiohttp import web

from qstash_sim.api import default_surfaces
from qstash_sim.http.aiohttp_app import APP_DISPATCHER, APP_SIM, build_app
from qstash_sim.http.dispatch import DEFAULT_MAX_BODY, DEFAULT_READ_TIMEOUT
from qstash_sim.http.protocol import DEFAULT_MAX_HEADER_SIZE, AppRunner
from qstash_sim.http.surface import Surface
from qstash_sim.simulator import Simulator

T = TypeVar("T")


def tune_gc() -> None:
    """The garbage-collector settings ``qstash-sim serve`` runs with.

    Start-up objects (the compiled contract, modules) never die: ``gc.freeze()`` keeps the cyclic GC from
    re-scanning them, and a higher generation-0 threshold makes it run less often, as a server holding
    many messages allocates steadily (full collections over a 100k-message backlog otherwise cost ~10x
    per publish).
    """
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Start ``app`` on ``host:port`` (0 = any free port); return the runner and the bound port."""
    # Our runner: JSON bodies for the errors aiohttp answers itself, and a read timeout on request heads
    # (the dispatcher's ``read_timeout``, read for each head). The parser limits come with the app.
    dispatcher = app.get(APP_DISPATCHER)
    runner = AppRunner(
        app,
        access_log=None,
        handle_signals=False,
        head_timeout=(lambda: dispatcher.read_timeout) if dispatcher is not None else (lambda: DEFAULT_READ_TIMEOUT),
    )
    await runner.setup()
    # A backlog of 1024: bursts of connections wait in the kernel instead of being dropped (128 by default).
    site = web.TCPSite(runner, host, port, reuse_address=True, backlog=1024)
    await site.start()
    addresses = runner.addresses  # the bound sockets' addresses: (host, port, ...) tuples
    bound = int(addresses[0][1]) if addresses else port
    sim = app.get(APP_SIM)
    if sim is not None:
        sim.own_ports.update(int(a[1]) for a in addresses)  # the simulator never delivers to itself
    return runner, bound


async def stop_gracefully(runner: web.AppRunner, sim: Simulator, grace_s: float) -> dict[str, int]:
    """Stop serving: deliveries in flight get ``grace_s`` seconds, then are cancelled. Returns how many
    messages were not finished, per state (what a stop throws away)."""
    unfinished = sim.unfinished()
    try:
        await asyncio.wait_for(sim.close(), grace_s)
    except TimeoutError:
        closer = getattr(sim.transport, "close", None)  # the in-flight attempts were cancelled by wait_for
        if closer is not None:
            await closer()
    await runner.cleanup()
    return unfinished


class ServerThread:
    """A simulator served on ``host:port`` from a daemon thread with its own event loop.

    >>> srv = ServerThread(Simulator(seed=1)).start()
    >>> srv.url                                        # e.g. 'http://127.0.0.1:40123'
    >>> srv.stop()
    """

    def __init__(
        self,
        sim: Simulator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body: int = DEFAULT_MAX_BODY,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        configure: Callable[[web.Application], None] | None = None,
        surfaces: Sequence[Surface] | None = None,
    ) -> None:
        self.sim = sim
        self.surfaces = surfaces  # None: qstash_sim.api.default_surfaces()
        self.host = host
        self.port = port
        self.max_body = max_body
        self.read_timeout = read_timeout
        self.max_header_size = max_header_size
        self.configure = configure
        self.loop = asyncio.new_event_loop()
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:40123``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ServerThread:
        """Start serving; returns once the socket is bound."""
        self._thread = threading.Thread(target=self._run, name="qstash-sim-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise TimeoutError("qstash-sim: the server thread did not bind its socket within 30 s")
        if self._error is not None:
            raise self._error
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)

        async def boot() -> None:
            app = build_app(
                self.sim,
                self.surfaces if self.surfaces is not None else default_surfaces(),
                max_body=self.max_body,
                read_timeout=self.read_timeout,
                max_header_size=self.max_header_size,
            )
            if self.configure:
                self.configure(app)
            self._runner, self.port = await start_site(app, self.host, self.port)

        try:
            self.loop.run_until_complete(boot())
        except BaseException as exc:  # reported to the starting thread
            self._error = exc
            self.loop.close()
            self._ready.set()
            return
        self._ready.set()
        self.loop.run_forever()
        # Cancel what is still pending (e.g. a delivery in flight) so nothing is destroyed while pending.
        pending = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            self.loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.run_until_complete(self.loop.shutdown_default_executor())
        self.loop.close()

    def call(self, fn: Callable[[], Awaitable[T]] | Awaitable[T], timeout: float | None = 60) -> T:
        """Run a coroutine on the server's loop from another thread and return its result."""
        coro = fn() if callable(fn) else fn
        fut: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return fut.result(timeout)

    def call_soon(self, fn: Callable[[], T], timeout: float | None = 60) -> T:
        """Run a plain function on the server's loop (thread-safe access to the simulator)."""

        async def wrap() -> T:
            return fn()

        return self.call(wrap, timeout)

    def stop(self) -> None:
        """Stop serving, close connections and the loop's thread."""
        if self._thread is None:
            return
        if self._runner is not None:
            try:
                self.call(self._runner.cleanup(), timeout=30)
            except Exception:  # pragma: no cover - best effort on shutdown
                pass
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(30)
        self._thread = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
