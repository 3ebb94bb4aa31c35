"""What every benchmark shares: result rows, a progress line, server processes, ``wrk``, the machine.

Everything here talks to 127.0.0.1 only, and every wait is bounded.
"""

from __future__ import annotations

import http.client
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parent.parent
OPENAPI = ROOT / "openapi.yaml"
HOST = "127.0.0.1"


@dataclass(slots=True)
class Row:
    """One line of the final table."""

    what: str
    result: str
    compared: str = ""
    target: str = ""
    met: bool | None = None  # None: no target


@dataclass(slots=True)
class Report:
    """Rows plus the exact commands that produced them and the notes worth keeping."""

    rows: list[Row] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Progress:
    """One status line on stderr, rewritten in place on a terminal, one line per step otherwise."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.tty = sys.stderr.isatty()

    def step(self, text: str) -> None:
        """Show ``text`` with the elapsed time."""
        line = f"[{time.monotonic() - self.started:6.1f}s] {text}"
        if self.tty:
            sys.stderr.write("\r\033[K" + line[:150])
        else:
            sys.stderr.write(line + "\n")
        sys.stderr.flush()

    def done(self) -> None:
        """End the status line."""
        if self.tty:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()


def median(values: Sequence[float]) -> float:
    """The median (0.0 for no values)."""
    return statistics.median(values) if values else 0.0


def free_port() -> int:
    """A port free on 127.0.0.1 right now (only for servers that cannot report the port they bound)."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def get(port: int, path: str, timeout: float = 2.0) -> int:
    """Status of ``GET path`` on 127.0.0.1:port; raises OSError when nothing answers."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    finally:
        conn.close()


class ServerProcess:
    """A server subprocess on a known port; :meth:`start` returns seconds from spawn to first 200 response."""

    def __init__(self, name: str, argv: list[str], port: int, probe: str = "/_sim/health") -> None:
        self.name, self.argv, self.port, self.probe = name, argv, port, probe
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, limit_s: float = 30.0) -> float:
        """Spawn and poll ``probe`` every 2 ms until it answers 200 (bounded by ``limit_s``)."""
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        while time.perf_counter() - t0 < limit_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}: {' '.join(self.argv)}")
            try:
                if get(self.port, self.probe, timeout=1.0) == 200:
                    return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.002)
        self.stop()
        raise RuntimeError(f"{self.name} gave no 200 on {self.probe} within {limit_s:.0f} s")

    def rss_mib(self) -> float:
        """Resident memory of the process in MiB (0 when unknown)."""
        try:
            text = Path(f"/proc/{self.proc.pid if self.proc else 0}/status").read_text()
        except OSError:
            return 0.0
        m = re.search(r"VmRSS:\s+(\d+) kB", text)
        return int(m.group(1)) / 1024 if m else 0.0

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL after 5 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except (subprocess.TimeoutExpired, ProcessLookupError):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ------------------------------------------------------------------------------------------ systems

PRISM_VERSION = "5.16.0"
PRISM_DIR = ROOT / ".bench" / "prism"
PRISM_BIN = PRISM_DIR / "node_modules" / ".bin" / "prism"


def ensure_prism(progress: Progress) -> Path | None:
    """Install the pinned Prism into ``.bench/prism`` with npm (once); None if npm is missing or fails."""
    marker = PRISM_DIR / f".installed-{PRISM_VERSION}"
    if PRISM_BIN.exists() and marker.exists():
        return PRISM_BIN
    npm = shutil.which("npm")
    if npm is None:
        return None
    progress.step(f"installing @stoplight/prism-cli@{PRISM_VERSION} into {PRISM_DIR.relative_to(ROOT)} (npm)")
    PRISM_DIR.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(  # noqa: PLW1510 - the return code is checked below
        [
            npm,
            "install",
            "--prefix",
            str(PRISM_DIR),
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            f"@stoplight/prism-cli@{PRISM_VERSION}",
        ],
        cwd=PRISM_DIR,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0 or not PRISM_BIN.exists():
        sys.stderr.write(f"\nnpm install of Prism failed:\n{done.stderr[-2000:]}\n")
        return None
    marker.touch()
    return PRISM_BIN


def sim_argv(port: int) -> list[str]:
    """``python -m qstash_sim serve`` on ``port`` with a virtual clock and quiet logs."""
    return [
        sys.executable,
        "-m",
        "qstash_sim",
        "serve",
        "--port",
        str(port),
        "--clock",
        "virtual",
        "--log-level",
        "warning",
    ]


def dev_argv(port: int) -> list[str]:
    """``python -m qstash_sim dev`` on ``port`` (the drop-in for ``qstash dev``), quiet logs."""
    return [sys.executable, "-m", "qstash_sim", "dev", "--port", str(port), "--log-level", "warning"]


def bare_argv(port: int) -> list[str]:
    """The bare aiohttp ceiling on ``port``."""
    return [sys.executable, "-m", "benchmarks.bare", "--port", str(port)]


def prism_argv(prism: Path, port: int) -> list[str]:
    """Prism serving the same openapi.yaml as a validating mock (request validation is on by default)."""
    return [str(prism), "mock", str(OPENAPI), "-h", HOST, "-p", str(port), "-v", "warn"]


def show(argv: list[str]) -> str:
    """A command line for the report, with the port and the absolute paths replaced by readable ones."""
    out = []
    for a in argv:
        if a == sys.executable:
            a = "python"
        elif a.startswith(str(ROOT) + "/"):
            a = a[len(str(ROOT)) + 1 :]
        out.append(a)
    return " ".join(out)


# ------------------------------------------------------------------------------------------ wrk

_PUBLISH_LUA = """\
wrk.method = "POST"
wrk.body = '{"hello":"world","n":1}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Upstash-Retries"] = "3"
wrk.headers["Upstash-Delay"] = "10s"
"""
PUBLISH_PATH = "/v1/qstash/publish/https%3A%2F%2Fexample.com%2Fhook"
# The same publish on the native surface: the same body and headers, the token as QStash's SDKs send it.
PUBLISH_PATHS = {"v1": PUBLISH_PATH, "v2": "/v2/publish/https%3A%2F%2Fexample.com%2Fhook"}
_SURFACE_LUA = {"v1": "", "v2": 'wrk.headers["Authorization"] = "Bearer bench-token"\n'}


def publish_script(surface: str = "v1") -> Path:
    """The wrk Lua script of a validated publish (JSON body, two validated Upstash-* headers)."""
    path = ROOT / ".bench" / ("publish.lua" if surface == "v1" else f"publish-{surface}.lua")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(_PUBLISH_LUA + _SURFACE_LUA[surface])
    return path


def wrk_argv(port: int, *, connections: int, seconds: float, threads: int = 1, surface: str = "v1") -> list[str]:
    """The wrk command line for the publish load on ``surface`` (``v1``: Sapiom's gateway; ``v2``: QStash)."""
    return [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds:g}s",
        "-s",
        str(publish_script(surface)),
        f"http://{HOST}:{port}{PUBLISH_PATHS[surface]}",
    ]


def wrk(port: int, *, connections: int, seconds: float, threads: int = 1, surface: str = "v1") -> float:
    """Requests/s of a keep-alive publish load; raises if any answer was not 2xx or sockets failed."""
    argv = wrk_argv(port, connections=connections, seconds=seconds, threads=threads, surface=surface)
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=seconds + 60)
    out = done.stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if done.returncode != 0 or m is None:
        raise RuntimeError(f"wrk failed: {done.stderr or out}")
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if bad:
        raise RuntimeError(f"{bad.group(1)} answers were not 2xx:\n{out}")
    errors = re.search(r"Socket errors: (.*)", out)
    if errors and re.search(r"[1-9]", errors.group(1).replace("timeout 0", "")):
        raise RuntimeError(f"socket errors: {errors.group(1)}")
    return float(m.group(1))


# ------------------------------------------------------------------------------------------ machine


def machine() -> str:
    """CPU, cores, memory, OS and tool versions, for the report."""
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))  # type: ignore[union-attr]
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    import aiohttp

    def version(argv: list[str]) -> str:
        try:
            done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=10)
        except OSError:
            return "missing"
        return (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"

    return (
        f"{cpu}, {os.cpu_count()} cores, {mem} RAM; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}, aiohttp {aiohttp.__version__}; node {version(['node', '--version'])}; "
        f"{version(['wrk', '--version']).split(' [')[0]}"
    )
