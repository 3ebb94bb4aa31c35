"""The built-in receiver: the ``qstash_receiver`` fixture and ``qstash-sim receive``."""

from __future__ import annotations

import time
import urllib.request

import pytest

from qstash_sim.domain.account import SigningKeys
from qstash_sim.engine.signing import sign
from qstash_sim.receiver import Receiver

pytest_plugins = ["pytester"]

INNER = """
import json, urllib.request

def _publish(sim, dest, body=b'{"order":1}', headers=None):
    req = urllib.request.Request(f"{sim.url}/publish/{dest}", data=body, method="POST",
                                 headers={"Content-Type": "application/json", **sim.headers, **(headers or {})})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return json.loads(resp.read())["messageId"]

def test_deliveries_are_recorded_and_verified(qstash_sim, qstash_receiver):
    mid = _publish(qstash_sim, qstash_receiver.url("/hook?src=test"))
    qstash_sim.settle()
    [d] = qstash_receiver.deliveries
    assert (d.method, d.path, d.json, d.message_id) == ("POST", "/hook?src=test", {"order": 1}, mid)
    assert d.verified, d.verification.reason

def test_scripted_failures_then_success(qstash_sim, qstash_receiver):
    qstash_receiver.respond(200, fail_first=2)
    mid = _publish(qstash_sim, qstash_receiver.url("/flaky"))
    qstash_sim.clock.advance("10m")
    assert [d.status for d in qstash_receiver.deliveries] == [503, 503, 200]
    qstash_sim.assert_delivered(to=qstash_receiver.url("/flaky"), times=1)

def test_starts_empty(qstash_receiver):
    assert qstash_receiver.deliveries == []

async def test_works_in_async_tests(qstash_sim_async, qstash_receiver):
    import asyncio, aiohttp
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{qstash_sim_async.url}/publish/{qstash_receiver.url('/a')}", data=b"x") as r:
            assert r.status == 200
    await qstash_sim_async.settle()
    assert [d.path for d in qstash_receiver.deliveries] == ["/a"]
"""


def test_the_fixture_records_verifies_and_scripts(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(INNER)
    pytester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


def _post(url: str, body: bytes, headers: dict[str, str]) -> int:
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        return int(resp.status)


def test_a_failed_check_says_why() -> None:
    keys = SigningKeys("sig_" + "a" * 28, "sig_" + "b" * 28)
    receiver = Receiver(keys=lambda: [("acct", keys)]).start()
    try:
        url = receiver.url("/hook")
        now = int(time.time() * 1000)
        good = sign(keys.current, url, b"{}", now, "jwt_1")
        _post(url, b"{}", {"Upstash-Signature": good})
        _post(url, b"{tampered}", {"Upstash-Signature": good})
        _post(receiver.url("/other"), b"{}", {"Upstash-Signature": good})
        _post(url, b"{}", {"Upstash-Signature": sign("sig_" + "c" * 28, url, b"{}", now, "jwt_2")})
        _post(url, b"{}", {})
        verdicts = [(d.verified, d.account, d.verification.reason) for d in receiver.deliveries]
    finally:
        receiver.stop()
    assert verdicts == [
        (True, "acct", ""),
        (False, "acct", "the body's SHA-256 does not match the signature's body claim (was it changed?)"),
        (False, "acct", f"signed for {url}, received at {url.replace('/hook', '/other')}"),
        (False, None, "signed with another key (not these current or next signing keys)"),
        (False, None, "no Upstash-Signature header"),
    ]


FOOTGUNS = """
import pytest

async def test_sync_fixture_in_an_async_test_fails_at_once(qstash_sim):
    with pytest.raises(RuntimeError, match="use qstash_sim_async|Use qstash_sim_async"):
        qstash_sim.clock.advance("1h")

async def test_an_unawaited_assertion_fails_the_test(qstash_sim_async):
    qstash_sim_async.assert_in_dlq("msg_nope")   # no await: nothing would be checked

def test_env_and_publish_helpers(qstash_sim, qstash_receiver, monkeypatch):
    import os
    env = qstash_sim.setenv(monkeypatch)
    assert os.environ["QSTASH_URL"] == qstash_sim.sapiom_base_url == env["SAPIOM_BASE_URL"]
    assert env["QSTASH_TOKEN"] == qstash_sim.api_key
    assert env["QSTASH_CURRENT_SIGNING_KEY"] == qstash_sim.signing_keys.current
    mid = qstash_sim.publish(qstash_receiver.url("/h"), {"a": 1})
    qstash_sim.settle()
    [d] = qstash_receiver.deliveries
    assert d.message_id == mid and d.json == {"a": 1} and d.verified and d.account == qstash_sim.api_key

def test_keyless_calls_are_the_tests_own_account(qstash_sim, qstash_receiver):
    import urllib.request
    req = urllib.request.Request(f"{qstash_sim.url}/publish/{qstash_receiver.url('/k')}", data=b"x", method="POST")
    urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10).read()
    qstash_sim.settle()
    [d] = qstash_receiver.deliveries
    assert d.account == qstash_sim.api_key   # the keys qstash_sim.signing_keys shows verify it
    qstash_sim.assert_spent(qstash_sim.api_key, "0.00001")
"""


def test_async_footguns_and_the_env_helpers(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(FOOTGUNS)
    result = pytester.runpytest("-p", "no:randomly", "-W", "error::RuntimeWarning")
    result.assert_outcomes(passed=4, errors=1)
    result.stdout.fnmatch_lines(
        ["*qstash_sim_async.assert_in_dlq(...) was never awaited, so nothing was checked*"], consecutive=False
    )
