"""The ceiling: a bare aiohttp server whose one handler reads the body and returns a fixed JSON.

Run it as ``python -m benchmarks.bare --port 0``; like ``qstash-sim serve`` it prints
``... running at http://127.0.0.1:PORT``. The benchmarks also use it as a loopback delivery sink;
``/sleep/<ms>`` answers after that many milliseconds (a slow destination).
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import web

_BODY = b'{"messageId":"msg_0000000000000000000000","url":"https://example.com/hook"}'


async def _handle(request: web.Request) -> web.Response:
    await request.read()
    tail = request.match_info["tail"]
    if tail.startswith("sleep/") and tail[6:].isdigit():  # /sleep/200: a destination that takes 200 ms
        await asyncio.sleep(int(tail[6:]) / 1000)
    return web.Response(body=_BODY, content_type="application/json")


async def _serve(port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _handle)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, reuse_address=True)
    await site.start()
    print(f"bare aiohttp running at http://127.0.0.1:{runner.addresses[0][1]}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Serve on 127.0.0.1 (loopback only) until SIGTERM or Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bare")
    parser.add_argument("--port", type=int, default=0)
    asyncio.run(_serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
