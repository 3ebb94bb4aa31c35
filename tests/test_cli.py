"""The ``qstash-sim`` command: help, start-up banner, one log line per request, clean stop, clear errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys

from conftest import Client


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "qstash_sim", *args], capture_output=True, text=True, timeout=60)


def test_help_explains_every_serve_option() -> None:
    r = _run("serve", "--help")
    assert r.returncode == 0
    for option in (
        "--host",
        "--port",
        "--seed",
        "--clock",
        "--deliver-to",
        "--payment",
        "--payment-variant",
        "--api-key",
        "--scenario",
        "--strict",
        "--max-body",
        "--log-level",
    ):
        assert option in r.stdout, option
    assert "127.0.0.1" in r.stdout  # the safe default is stated
    top = _run("--help")
    assert top.returncode == 0 and "serve" in top.stdout and "check" in top.stdout


def test_bad_option_values_are_usage_errors_without_traceback() -> None:
    for args, needle in (
        (("serve", "--port", "99999"), "expected a port"),
        (("serve", "--seed", "-3"), "expected an integer"),
        (("serve", "--max-body", "lots"), "expected a size"),
        (("serve", "--clock", "sundial"), "invalid choice"),
        (("serve", "--limit", "journal=lots"), "journal: expected a count"),
        (("serve", "--limit", "inbox=5"), "STORE one of journal, deliveries"),
    ):
        r = _run(*args)
        assert r.returncode == 2, args
        assert needle in r.stderr and "Traceback" not in r.stderr, r.stderr


def test_serve_prints_url_logs_requests_and_stops_cleanly_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_sim", "serve", "--port", "0", "--clock", "virtual"]
        + ["--limit", "journal=3", "--limit", "ledger=none"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        banner = proc.stdout.readline()
        assert "running at http://127.0.0.1:" in banner
        rest = "".join(proc.stdout.readline() for _ in range(6))  # the banner is 7 lines
        port = int(banner.split("http://127.0.0.1:")[1].split()[0])
        c = Client("127.0.0.1", port)
        assert c.post("/v1/qstash/publish/https://example.com/x", body=b"{}").status == 200
        c_keys = c.get("/_sim/signing-keys").json
        limits = c.get("/_sim/health").json["limits"]
        assert (limits["journal"], limits["ledger"], limits["deliveries"]) == (3, None, 50_000)
        c.close()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0
    assert "stopping" in out
    assert "  clock      virtual: time moves with POST /_sim/clock/advance; seed 0" in rest
    assert "  scenarios  none (--scenario NAME_OR_FILE)" in rest
    keys = c_keys["current"], c_keys["next"]
    assert f"current {keys[0]}  next {keys[1]}" in rest  # the keys that verify a keyless publish's delivery
    assert f"  control    http://127.0.0.1:{port}/_sim" in rest
    assert "POST /v1/qstash/publish/https://example.com/x -> 200" in err
    assert "Traceback" not in err


def test_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = _run("serve", "--port", str(port))
    assert r.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in r.stderr and "Traceback" not in r.stderr


def test_an_unsupported_aiohttp_is_one_line_not_a_traceback() -> None:
    script = (
        "import sys, aiohttp; aiohttp.__version__ = '3.12.15'; "
        "from qstash_sim.cli import main; sys.exit(main(['serve', '--port', '0']))"
    )
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.startswith("qstash-sim cannot run on aiohttp 3.12.15: it is older than the oldest release verified")
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
