"""The fixtures' native QStash side: ``qstash_url``, ``env()``, ``qstash_client()`` and ``receiver()`` (the
official ``qstash`` SDK, pinned at 3.4.0 by the test extra), tested as users meet them: inner pytest runs."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

INNER = """
import json, urllib.request

import pytest
import qstash


def _gateway_publish(sim, dest, body):
    req = urllib.request.Request(f"{sim.url}/publish/{dest}", data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **sim.headers})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as resp:
        return json.loads(resp.read())["messageId"]


def test_the_native_base_url_and_the_environment(qstash_sim, monkeypatch):
    assert qstash_sim.qstash_url == qstash_sim.sapiom_base_url
    assert qstash_sim.qstash_url.startswith("http://127.0.0.1:") and not qstash_sim.qstash_url.endswith("/")
    env = qstash_sim.setenv(monkeypatch)
    keys = qstash_sim.signing_keys
    assert env == {
        "SAPIOM_BASE_URL": qstash_sim.qstash_url,
        "QSTASH_URL": qstash_sim.qstash_url,
        "QSTASH_TOKEN": qstash_sim.api_key,
        "QSTASH_CURRENT_SIGNING_KEY": keys.current,
        "QSTASH_NEXT_SIGNING_KEY": keys.next,
    }
    assert qstash_sim.qstash_token == qstash_sim.api_key


def test_the_client_is_ready_and_does_not_retry_unless_asked(qstash_sim):
    client = qstash_sim.qstash_client()
    assert isinstance(client, qstash.QStash)
    assert client.http._base_url == qstash_sim.qstash_url and client.http._token == f"Bearer {qstash_sim.api_key}"
    assert client.http._retry["retries"] == 0
    assert qstash_sim.qstash_client(retry=None).http._retry["retries"] == 5  # the SDK's own default
    assert qstash_sim.qstash_client(token="tok_other").http._token == "Bearer tok_other"


def test_a_publish_through_the_client_is_delivered_signed_and_asserted(qstash_sim, qstash_receiver):
    client = qstash_sim.qstash_client()
    res = client.message.publish_json(url=qstash_receiver.url("/orders?x=1"), body={"order": 7},
                                      headers={"X-Trace": "t1"})
    qstash_sim.settle()
    [d] = qstash_receiver.deliveries
    assert (d.path, d.json, d.message_id, d.header("X-Trace")) == ("/orders?x=1", {"order": 7}, res.message_id, "t1")
    assert d.header("Upstash-Region") == "EU-CENTRAL-1" and d.header("Upstash-Caller-Ip") == "127.0.0.1"
    qstash_sim.receiver().verify(signature=d.header("Upstash-Signature"), body=d.text, url=d.url)  # raises if not
    [m] = qstash_sim.assert_delivered(to=qstash_receiver.url("/orders?x=1"), json={"order": 7})
    assert m.message_id == res.message_id
    assert qstash_sim.message(res.message_id).account == qstash_sim.api_key


def test_the_receiver_verifies_a_delivery_of_the_sapiom_gateway_too(qstash_sim, qstash_receiver):
    mid = _gateway_publish(qstash_sim, qstash_receiver.url("/g"), {"a": 1})
    qstash_sim.settle()
    [d] = qstash_receiver.deliveries
    assert d.message_id == mid
    receiver = qstash_sim.receiver()
    assert isinstance(receiver, qstash.Receiver)
    receiver.verify(signature=d.header("Upstash-Signature"), body=d.text, url=d.url)  # raises SignatureError if not
    with pytest.raises(qstash.errors.SignatureError):
        receiver.verify(signature=d.header("Upstash-Signature"), body='{"a": 2}', url=d.url)
    other = qstash_sim.receiver("someone-else")  # another account's keys do not verify it
    with pytest.raises(qstash.errors.SignatureError):
        other.verify(signature=d.header("Upstash-Signature"), body=d.text, url=d.url)


def test_a_missing_sdk_is_one_clear_error(qstash_sim, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "qstash", None)   # as if not installed
    needs = r"qstash_sim.qstash_client\\(\\) needs the official QStash Python SDK.*pip install qstash"
    with pytest.raises(ImportError, match=needs):
        qstash_sim.qstash_client()
    with pytest.raises(ImportError, match=r"qstash_sim.receiver\\(\\) needs .*pip install qstash"):
        qstash_sim.receiver()


async def test_the_async_fixture_hands_out_the_async_client(qstash_sim_async, qstash_receiver):
    client = qstash_sim_async.qstash_client()
    assert isinstance(client, qstash.AsyncQStash)
    res = await client.message.publish(url=qstash_receiver.url("/async"), body="plain")
    await qstash_sim_async.settle()
    [d] = qstash_receiver.deliveries
    assert (d.path, d.text, d.message_id) == ("/async", "plain", res.message_id)
    qstash_sim_async.receiver().verify(signature=d.header("Upstash-Signature"), body=d.text, url=d.url)
    assert qstash_sim_async.env()["QSTASH_URL"] == qstash_sim_async.qstash_url
"""


def test_native_qstash_helpers(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(INNER)
    # A pooled socket the SDK never closes would be an unraisable ResourceWarning in a later test: none is left.
    result = pytester.runpytest("-p", "no:randomly", "-W", "error::pytest.PytestUnraisableExceptionWarning")
    result.assert_outcomes(passed=6)


def test_the_fixture_waits_at_most_30_s_for_a_real_destination() -> None:
    """QStash's default Upstash-Timeout is 2 h; a test's hanging handler must fail its attempt long before."""
    from qstash_sim.pytest_plugin.server import REAL_WAIT_CAP_MS, SimServer

    server = SimServer.start()
    try:
        assert REAL_WAIT_CAP_MS == 30_000
        assert server.sim.transport.real.timeout_cap_ms == REAL_WAIT_CAP_MS  # type: ignore[attr-defined]
    finally:
        server.thread.stop()
