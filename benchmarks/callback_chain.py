"""A 3-step callback chain with 5 failing retries each, on the virtual clock: the wall time it takes to settle.

    python -m benchmarks.callback_chain            # 20 rounds, prints the median and the worst (ms)
    python -m benchmarks.callback_chain --rounds 5

The chain, in process (the same core ``publish`` the HTTP layer calls, native dialect), each step a message
published with ``Upstash-Retries: 5`` (default backoff: 12 s, 2 m 28 s, 30 m, 6 h, 24 h of virtual time),
``Upstash-Callback`` and ``Upstash-Failure-Callback``:

* its destination answers 500 to all 6 attempts (5 failing retries): 6 callbacks (one per attempt, each a
  signed message of its own) and, once the retries are exhausted, the failure callback (with the DLQ id);
* the application, answering the failure callback URL, publishes the next step (what a saga's
  compensation handler does); after the third step the chain is done.

Two variants: virtual URLs, answered in process by a feature (the hook fault scenarios use), so the figure
is the engine's and the callbacks' own cost; and real loopback sockets (an aiohttp app on the simulator's
loop answers every URL and publishes the next step), each of the 39 deliveries a real HTTP exchange.

One step is 6 attempts + 6 callbacks + 1 failure callback; the chain is 39 deliveries over about 4 virtual
days (3 x 30.7 h). Measured: ``await sim.advance("5d")`` from the first publish to an idle simulator, a
fresh simulator per round; every round checks that the whole chain happened.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from typing import TYPE_CHECKING

from .harness import Progress, Report, Row

if TYPE_CHECKING:
    from qstash_sim import Simulator
    from qstash_sim.core.feature import Feature
    from qstash_sim.core.service import SimulatorCore
    from qstash_sim.engine.transport import OutboundRequest, Outcome

STEPS = 3
RETRIES = 5
TARGET_MS = 50.0
BASE = "https://chain.example"
ACCOUNT = "bench"


def _step_headers(step: int, base: str) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "Upstash-Retries": str(RETRIES),
        "Upstash-Callback": f"{base}/cb/{step}",
        "Upstash-Failure-Callback": f"{base}/failed/{step}",
    }


def _publish_step(core: SimulatorCore, step: int, base: str = BASE) -> None:
    from qstash_sim import Caller
    from qstash_sim.http.headers import QSTASH, publish_command

    body = f'{{"step":{step}}}'.encode()
    cmd = publish_command(f"{base}/dest/{step}", _step_headers(step, base), body, dialect=QSTASH)
    core.publish(Caller(account=ACCOUNT), cmd)


def _app() -> Feature:
    """The feature answering every virtual URL of the chain (the destinations fail, the application accepts
    its callbacks and, on a failure callback, publishes the next step)."""
    from qstash_sim.core.feature import Feature
    from qstash_sim.engine.transport import Outcome

    class ChainApp(Feature):
        name = "callback-chain"

        def attach(self, core: SimulatorCore) -> None:
            self.core = core

        def respond(self, req: OutboundRequest) -> Outcome | None:
            path = req.url.removeprefix(BASE)
            if path.startswith("/dest/"):
                return Outcome.response(500, b'{"error":"down"}')
            if path.startswith("/failed/"):
                step = int(path.rsplit("/", 1)[1])
                if step < STEPS:
                    _publish_step(self.core, step + 1)
                return Outcome.response(200, b"ok")
            if path.startswith("/cb/"):
                return Outcome.response(200, b"ok")
            return None

    return ChainApp()


def _check(sim: Simulator) -> None:
    """The whole chain happened: 3 x (6 failing attempts, 6 callbacks, 1 failure callback)."""
    inbox = list(sim.world.inbox)
    dest = [d for d in inbox if "/dest/" in d.url]
    cbs = [d for d in inbox if "/cb/" in d.url and d.status == 200]
    failed = [d for d in inbox if "/failed/" in d.url and d.status == 200]
    per_step = RETRIES + 1
    if (len(dest), len(cbs), len(failed)) != (STEPS * per_step, STEPS * per_step, STEPS):
        raise RuntimeError(f"incomplete chain: {len(dest)} attempts, {len(cbs)} callbacks, {len(failed)} failures")
    left = [m.message_id for m in sim.messages(ACCOUNT) if m.state.value not in ("delivered", "failed")]
    if left:
        raise RuntimeError(f"work left after the chain: {left}")


async def _round() -> float:
    from qstash_sim import Simulator

    sim = Simulator(seed=1, clock="virtual")
    sim.add_feature(_app())
    _publish_step(sim, 1)
    t0 = time.perf_counter()
    await sim.advance("5d")
    wall_ms = (time.perf_counter() - t0) * 1000
    _check(sim)
    await sim.close()
    return wall_ms


async def _real_round() -> float:
    """The same chain with every destination and callback URL a real loopback socket (an aiohttp app on
    the simulator's loop, which publishes the next step when its failure-callback URL is called)."""
    from aiohttp import web

    from qstash_sim import Simulator

    sim = Simulator(seed=1, clock="virtual")
    base = ""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        kind, step = request.path.strip("/").split("/")
        if kind == "dest":
            return web.Response(status=500, text='{"error":"down"}')
        if kind == "failed" and int(step) < STEPS:
            _publish_step(sim, int(step) + 1, base)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/{kind}/{step}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    base = f"http://127.0.0.1:{port}"
    try:
        _publish_step(sim, 1, base)
        t0 = time.perf_counter()
        await sim.advance("5d")
        wall_ms = (time.perf_counter() - t0) * 1000
        _check(sim)
    finally:
        await sim.close()
        await runner.cleanup()
    return wall_ms


def measure(rounds: int = 20, *, real: bool = False) -> list[float]:
    """Wall milliseconds of each round (a first one warms imports and caches up and is dropped)."""
    one = _real_round if real else _round
    asyncio.run(one())
    return [asyncio.run(one()) for _ in range(rounds)]


def run(progress: Progress, *, rounds: int = 20) -> Report:
    """The benchmark as report rows (for ``python -m benchmarks`` once it lists it)."""
    rows = []
    for real in (False, True):
        where = "real loopback sockets" if real else "virtual URLs"
        progress.step(f"callbacks: 3-step chain, 5 failing retries each, {where} ({rounds} rounds)")
        times = measure(rounds, real=real)
        median = statistics.median(times)
        rows.append(
            Row(
                f"callbacks: 3-step chain, 5 failing retries each (39 deliveries, ~4 virtual days), {where}",
                f"{median:.1f} ms median, {max(times):.1f} ms worst of {rounds}",
                "",
                f"< {TARGET_MS:g} ms",
                median < TARGET_MS,
            )
        )
    return Report(rows=rows, commands=["python -m benchmarks.callback_chain"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.callback_chain", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args(argv)
    for real in (False, True):
        times = measure(args.rounds, real=real)
        median = statistics.median(times)
        verdict = "met" if median < TARGET_MS else "NOT met"
        where = "real loopback sockets" if real else "virtual URLs"
        print(
            f"3-step callback chain, {RETRIES} failing retries each, {where}: median {median:.1f} ms, "
            f"best {min(times):.1f} ms, worst {max(times):.1f} ms over {args.rounds} rounds "
            f"(target < {TARGET_MS:g} ms: {verdict})"
        )


if __name__ == "__main__":
    main()
