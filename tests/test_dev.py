"""``qstash-sim dev``: a drop-in for the official ``qstash dev`` server, run as a user runs it (a subprocess).

It starts with the dev users (their tokens accepted, every other token refused), prints the official start
line first, answers ``GET /v2/keys`` with the default user's keys, and keeps the control API and scenarios
of ``serve``. The SDKs' ``QSTASH_DEV=true`` probe itself is driven in ``tests/api_v2/test_sdk_ts.py``.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from conftest import Client
from qstash_sim.core.dev_users import DEFAULT_DEV_USER, DEV_USERS

# @upstash/qstash 2.12.0 waits for this on the stdout of a dev server it starts itself (spawnServer).
TS_STARTUP_RE = re.compile(r"runn+ing( at|\.)", re.IGNORECASE)


@dataclass
class Dev:
    proc: subprocess.Popen[str]
    port: int
    banner: list[str]

    def client(self) -> Client:
        return Client("127.0.0.1", self.port)


def start_dev(*args: str) -> Dev:
    """``qstash-sim dev --port 0 ARGS``, once its banner is printed (the last banner line starts ``  SDKs``)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "qstash_sim", "dev", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    banner: list[str] = []
    for line in proc.stdout:
        banner.append(line.rstrip("\n"))
        if line.startswith("  SDKs") or len(banner) > 40:
            break
    match = re.fullmatch(r"Upstash QStash development server is running at http://127\.0\.0\.1:(\d+)", banner[0])
    assert match, banner
    return Dev(proc, int(match.group(1)), banner)


def stop_dev(dev: Dev) -> tuple[str, str]:
    dev.proc.send_signal(signal.SIGTERM)
    out, err = dev.proc.communicate(timeout=30)
    assert dev.proc.returncode == 0, (out, err)
    return out, err


@pytest.fixture(scope="module")
def dev() -> Iterator[Dev]:
    d = start_dev("--clock", "virtual", "--token", "my-token=alice", "--scenario", "flaky-destination")
    try:
        yield d
    finally:
        if d.proc.poll() is None:
            _, err = stop_dev(d)
            assert "Traceback" not in err, err


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_the_banner_is_the_official_start_line_then_the_default_users_env_and_a_curl(dev: Dev) -> None:
    url = f"http://127.0.0.1:{dev.port}"
    assert TS_STARTUP_RE.search(dev.banner[0])
    assert f"QSTASH_URL={url}" in dev.banner
    assert f"QSTASH_TOKEN={DEFAULT_DEV_USER.token}" in dev.banner
    assert f"QSTASH_CURRENT_SIGNING_KEY={DEFAULT_DEV_USER.current_signing_key}" in dev.banner
    assert f"QSTASH_NEXT_SIGNING_KEY={DEFAULT_DEV_USER.next_signing_key}" in dev.banner
    (curl,) = [line for line in dev.banner if line.startswith("curl ")]
    assert curl.startswith(f"curl -X POST {url}/v2/publish/") and DEFAULT_DEV_USER.token in curl
    text = "\n".join(dev.banner)
    assert "clock      virtual" in text and "flaky-destination" in text and "1 more from --token" in text
    (dashboard,) = [line for line in dev.banner if line.startswith("  dashboard")]
    assert dashboard == f"  dashboard  {url}/_sim/ui"
    c = dev.client()
    try:
        assert c.get("/_sim/ui").status == 200  # the link works
    finally:
        c.close()


def test_get_v2_keys_answers_the_default_users_keys_as_the_sdk_probe_expects(dev: Dev) -> None:
    c = dev.client()
    try:
        # The probe of @upstash/qstash sends only Authorization (no User-Agent, no Accept).
        r = c.get("/v2/keys", headers=_bearer(DEFAULT_DEV_USER.token))
        assert r.status == 200, r.body
        assert r.json == {"current": DEFAULT_DEV_USER.current_signing_key, "next": DEFAULT_DEV_USER.next_signing_key}
        for user in DEV_USERS[1:]:
            keys = c.get("/v2/keys", headers=_bearer(user.token)).json
            assert keys == {"current": user.current_signing_key, "next": user.next_signing_key}
    finally:
        c.close()


def test_the_dev_tokens_and_extra_tokens_are_accepted_every_other_is_refused(dev: Dev) -> None:
    c = dev.client()
    try:
        assert c.get("/v2/keys", headers=_bearer("my-token")).status == 200  # --token my-token=alice
        for token in ("tok_unknown", "eyJVc2VySUQiOiJub2JvZHkiLCJQYXNzd29yZCI6InRlc3RQYXNzd29yZCJ9"):
            r = c.get("/v2/keys", headers=_bearer(token))
            assert r.status == 401 and isinstance(r.json["error"], str), r.body
            p = c.post("/v2/publish/https://example.com/x", body=b"{}", headers=_bearer(token))
            assert p.status == 401, p.body
        accounts = {a["name"] for a in c.get("/_sim/accounts").json["accounts"]}
        assert "tok_unknown" not in accounts  # a refused token creates nothing
    finally:
        c.close()


def test_the_control_api_and_scenarios_work_as_on_serve(dev: Dev) -> None:
    c = dev.client()
    try:
        health = c.get("/_sim/health").json
        assert health["ok"] and health["clock"] == "virtual"
        assert [s["name"] for s in c.get("/_sim/scenarios").json["scenarios"]] == ["flaky-destination"]
        assert c.post("/_sim/clock/advance", json_body={"by": "1m"}).status == 200
        assert c.post("/_sim/reset", json_body={}).status == 200
        keys = c.get("/v2/keys", headers=_bearer(DEFAULT_DEV_USER.token)).json  # the preset keys survive reset
        assert keys["current"] == DEFAULT_DEV_USER.current_signing_key
    finally:
        c.close()


def test_dev_runs_on_the_real_clock_by_default_and_stops_cleanly() -> None:
    d = start_dev()
    try:
        c = d.client()
        assert c.get("/_sim/health").json["clock"] == "real"
        r = c.post("/_sim/clock/advance", json_body={"by": "1m"})
        assert r.status == 400 and "--clock virtual" in r.json["error"]
        c.close()
    finally:
        out, err = stop_dev(d)
    assert "stopping" in out and "Traceback" not in err


def test_dev_help_and_a_taken_port() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "qstash_sim", "dev", "--help"], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0
    assert "QSTASH_DEV=true" in r.stdout and "--token" in r.stdout and "--max-timeout" in r.stdout
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = subprocess.run(
            [sys.executable, "-m", "qstash_sim", "dev", "--port", str(port)], capture_output=True, text=True, timeout=60
        )
    assert r.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in r.stderr
