"""A ``qstash-sim serve`` subprocess, for the tests that need the real command line (its options, its banner,
a fresh server per run) rather than a ``ServerThread``.

* ``serve(*options)``: a context manager that starts ``qstash-sim serve`` on a free port of 127.0.0.1 with a
  virtual clock and ``options``, reads the address from the banner's first line, keeps draining its output
  (a chatty server never blocks on a full pipe), and stops it at the end (terminate, then kill);
* ``command(*options)`` and ``address(banner)``: the same command line and banner reading, for a test that
  starts the process itself (an asyncio one).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, NamedTuple

ROOT = Path(__file__).resolve().parents[1]
BANNER = re.compile(r"running at (http://127\.0\.0\.1:(\d+))")


class Server(NamedTuple):
    url: str  # http://127.0.0.1:PORT
    port: int


def command(*options: str) -> list[str]:
    """``qstash-sim serve`` on a free port of 127.0.0.1, on the virtual clock, then ``options``."""
    return [sys.executable, "-m", "qstash_sim", "serve", "--port", "0", "--clock", "virtual", *options]


def address(banner: str) -> str:
    """The base URL in the banner's first line; AssertionError (with the line) when the server did not start."""
    m = BANNER.search(banner)
    if m is None:
        raise AssertionError(f"the server did not start: {banner!r}")
    return m.group(1)


def stop(proc: subprocess.Popen[Any], timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def serve(*options: str, stderr: int | IO[Any] = subprocess.DEVNULL) -> Iterator[Server]:
    """A running ``qstash-sim serve`` (``command(*options)``), stopped when the block ends."""
    proc = subprocess.Popen(
        command(*options), cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr, text=True
    )
    assert proc.stdout is not None
    drain: threading.Thread | None = None
    try:
        url = address(proc.stdout.readline())
        drain = threading.Thread(target=proc.stdout.read, daemon=True)
        drain.start()
        yield Server(url, int(url.rsplit(":", 1)[1]))
    finally:
        stop(proc)
        if drain is not None:
            drain.join(10)
        proc.stdout.close()
