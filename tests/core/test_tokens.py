"""The token -> account map every surface authenticates with."""

from __future__ import annotations

import pytest

from qstash_sim.core.service import SimulatorCore
from qstash_sim.core.tokens import Tokens, parse_token_option


def test_without_configured_tokens_any_token_is_its_own_account() -> None:
    t = Tokens()
    assert not t.configured
    assert t.account_for("alice") == "alice" and t.account_for("  bob ") == "bob"
    assert t.account_for("") is None and t.account_for("   ") is None


def test_configured_tokens_name_their_accounts_and_refuse_others() -> None:
    t = Tokens()
    t.add("tok_a", "alice")
    t.add("tok_b")
    assert t.configured
    assert (t.account_for("tok_a"), t.account_for("tok_b"), t.account_for("tok_c")) == ("alice", "tok_b", None)
    assert list(t.items()) == [("tok_a", "alice"), ("tok_b", "tok_b")]
    t.clear()
    assert t.account_for("tok_c") == "tok_c"


def test_bad_tokens_are_refused_with_the_reason() -> None:
    t = Tokens()
    with pytest.raises(ValueError, match="must not be empty"):
        t.add("  ")
    with pytest.raises(ValueError, match="at most 1024"):
        t.add("x" * 1025)


def test_the_option_splits_at_the_last_equals_sign() -> None:
    assert parse_token_option("tok=alice") == ("tok", "alice")
    assert parse_token_option("tok") == ("tok", None)
    assert parse_token_option("ZGV2==") == ("ZGV2==", None)  # base64 padding is part of the token
    assert parse_token_option("ZGV2===alice") == ("ZGV2==", "alice")


def test_the_core_owns_one_map_for_every_surface() -> None:
    assert isinstance(SimulatorCore().tokens, Tokens)


def test_preset_signing_keys_are_what_an_account_is_created_with_even_after_reset() -> None:
    from qstash_sim.domain.account import SigningKeys

    sim = SimulatorCore(seed=1)
    preset = SigningKeys(current="sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r", next="sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs")
    sim.world.accounts.preset_keys["defaultUser"] = preset
    assert sim.world.accounts.get("defaultUser").signing_keys == preset
    other = sim.world.accounts.get("someone").signing_keys
    sim.reset()
    assert sim.world.accounts.get("defaultUser").signing_keys == preset
    assert sim.world.accounts.get("someone").signing_keys == other  # seeded keys: the same after reset
