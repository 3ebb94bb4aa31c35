"""The official dev server's users, as ``qstash-sim dev`` installs them (tokens -> accounts, preset keys)."""

from __future__ import annotations

import base64
import json

import pytest

from qstash_sim.core.dev_users import DEFAULT_DEV_USER, DEV_USERS, install_dev_users
from qstash_sim.dev import dev_banner, setup_dev
from qstash_sim.simulator import Simulator


def test_the_four_users_are_the_official_ones() -> None:
    assert [u.account for u in DEV_USERS] == ["defaultUser", "testUser1", "testUser2", "testUser3"]
    for user in DEV_USERS:  # a token is the base64 of {"UserID": <account>, "Password": ...}
        assert json.loads(base64.b64decode(user.token))["UserID"] == user.account
    assert DEFAULT_DEV_USER.token == "eyJVc2VySUQiOiJkZWZhdWx0VXNlciIsIlBhc3N3b3JkIjoiZGVmYXVsdFBhc3N3b3JkIn0="
    assert (DEFAULT_DEV_USER.current_signing_key, DEFAULT_DEV_USER.next_signing_key) == (
        "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r",
        "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs",
    )


def test_installed_users_name_their_accounts_with_their_keys_and_others_are_refused() -> None:
    sim = Simulator(seed=3)
    install_dev_users(sim, [("tok_extra", "alice"), ("tok_plain", None)])
    for user in DEV_USERS:
        assert sim.tokens.account_for(user.token) == user.account
        keys = sim.account(user.account).signing_keys
        assert (keys.current, keys.next) == (user.current_signing_key, user.next_signing_key)
    assert sim.tokens.account_for("tok_extra") == "alice" and sim.tokens.account_for("tok_plain") == "tok_plain"
    assert sim.tokens.account_for("tok_unknown") is None
    assert sim.anonymous_account == "defaultUser"


def test_the_keys_survive_rotation_then_reset_and_an_existing_account_gets_them() -> None:
    sim = Simulator(seed=3)
    seeded = sim.account("defaultUser").signing_keys.current  # created before the users are installed
    setup_dev(sim, ["my-token=bob"])
    assert sim.account("defaultUser").signing_keys.current == DEFAULT_DEV_USER.current_signing_key != seeded
    assert sim.tokens.account_for("my-token") == "bob"
    rotated = sim.rotate_signing_keys("defaultUser")
    assert rotated.current == DEFAULT_DEV_USER.next_signing_key  # the old next signs now
    sim.reset()
    keys = sim.account("defaultUser").signing_keys
    assert (keys.current, keys.next) == (DEFAULT_DEV_USER.current_signing_key, DEFAULT_DEV_USER.next_signing_key)


def test_a_bad_extra_token_is_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="at most 1024"):
        setup_dev(Simulator(), ["x" * 2000])


def test_the_banner_starts_with_the_official_start_line() -> None:
    text = dev_banner("http://127.0.0.1:8080", clock="real", seed=0, scenarios=["flaky-destination"], extra_tokens=2)
    lines = text.splitlines()
    assert lines[0] == "Upstash QStash development server is running at http://127.0.0.1:8080"
    assert f"QSTASH_TOKEN={DEFAULT_DEV_USER.token}" in lines
    assert "QSTASH_CURRENT_SIGNING_KEY=sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r" in lines
    assert "QSTASH_NEXT_SIGNING_KEY=sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs" in lines
    assert any(line.startswith("curl -X POST http://127.0.0.1:8080/v2/publish/") for line in lines)
    assert "2 more from --token" in text and "flaky-destination" in text
    assert "  dashboard  http://127.0.0.1:8080/_sim/ui" in lines
    guarded = dev_banner("http://127.0.0.1:8080", clock="real", seed=0, control_token=True)
    assert "  dashboard  http://127.0.0.1:8080/_sim/ui?token=<the control token>" in guarded.splitlines()
