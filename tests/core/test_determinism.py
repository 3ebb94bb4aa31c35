"""One seed: a fresh simulator and one reset to the same seed are the same run, byte for byte.

The streams per purpose (message ids, schedule ids, keys, transactions, nonces, jti, faults) are owned by
one :class:`~qstash_sim.base.seed.Seed`; reading keys or creating a transaction never shifts message ids.
"""

from __future__ import annotations

import asyncio
import json

from qstash_sim import Caller, MessageSettings, PublishCommand, ScheduleCommand, Simulator
from qstash_sim.api import wire
from qstash_sim.base.clock import DEFAULT_START_MS
from qstash_sim.base.seed import FAULTS, MESSAGE, PURPOSES, Seed

SCENARIO = """
name: coin-flips
destinations:
  - name: flaky
    match: "https://flaky.example.com/*"
    probability: 50%
    respond: 503
"""


def _script(sim: Simulator) -> str:
    """Publish, schedule, pay, fail and retry on the virtual clock; return journal + inbox as JSON text."""
    sim.load_scenario(SCENARIO)
    sim.sapiom.store.create("acct-a", {"agentName": "agent-1"}, sim.world.now)
    sim.account("acct-b").signing_keys  # noqa: B018 - reading keys draws nothing new for messages
    for i in range(12):
        settings = MessageSettings(f"https://flaky.example.com/{i}", retries=3)
        sim.publish(Caller(account="acct-a"), PublishCommand(settings, f'{{"n":{i}}}'.encode()))
    tick = ScheduleCommand(MessageSettings("https://cron.example.com/tick"), "*/30 * * * *", b"{}")
    sim.create_schedule(Caller(account="acct-b"), tick)
    asyncio.run(_advance(sim, "3h"))
    journal = [wire.journal_entry(e) for e in sim.world.journal]
    inbox = [wire.delivery(d) for d in sim.world.inbox]
    keys = {a.name: [a.signing_keys.current, a.signing_keys.next] for a in sim.world.accounts}
    return json.dumps({"journal": journal, "inbox": inbox, "keys": keys}, sort_keys=True)


async def _advance(sim: Simulator, by: str) -> None:
    await sim.advance(by)
    await sim.close()


def _noise(sim: Simulator) -> None:
    """Work under another seed before a reset: ids, keys, transactions, jti and fault draws all advance."""
    sim.load_scenario(SCENARIO)
    for i in range(5):
        sim.publish(
            Caller(account=f"other-{i}"), PublishCommand(MessageSettings(f"https://flaky.example.com/x{i}"), b"x")
        )
    sim.sapiom.store.create("other-0", {}, sim.world.now)
    asyncio.run(_advance(sim, "1h"))


def test_a_reset_to_a_seed_replays_a_fresh_simulator_byte_for_byte() -> None:
    fresh = _script(Simulator(seed=5))
    for previous in (0, 3, 5):
        sim = Simulator(seed=previous)
        _noise(sim)
        sim.reset(seed=5, now_ms=DEFAULT_START_MS)
        assert _script(sim) == fresh, f"reset from seed {previous} to 5 differs from a fresh seed 5"


def test_another_seed_gives_another_run() -> None:
    assert _script(Simulator(seed=5)) != _script(Simulator(seed=6))


def test_reading_keys_or_state_or_creating_a_transaction_does_not_shift_message_ids() -> None:
    def first_ids(sim: Simulator) -> list[str]:
        return [
            sim.publish(Caller(), PublishCommand(MessageSettings(f"https://example.com/{i}"))).message_id
            for i in range(3)
        ]

    plain = first_ids(Simulator(seed=9))
    busy = Simulator(seed=9)
    for name in ("a", "b", "c"):
        busy.account(name).signing_keys  # noqa: B018 - creates the account and draws its keys
    busy.sapiom.store.create("a", {}, busy.world.now)
    busy.messages()
    busy.world.faults.random()
    assert first_ids(busy) == plain


def test_each_purpose_has_its_own_stream_and_reset_restarts_them() -> None:
    seed = Seed(4)
    first = {p: seed.stream(p).random() for p in PURPOSES}
    assert len(set(first.values())) == len(PURPOSES)
    seed.stream(FAULTS).random()
    seed.reset()
    assert {p: seed.stream(p).random() for p in PURPOSES} == first
    seed.reset(5)
    assert seed.ids(MESSAGE).new("msg") == Seed(5).ids(MESSAGE).new("msg")


def test_the_seed_of_a_simulator_is_an_int_and_reset_can_change_it() -> None:
    sim = Simulator(seed=2)
    assert sim.seed == 2
    sim.reset(seed=8)
    assert sim.seed == 8
    sim.reset()
    assert sim.seed == 8, "a reset without a seed keeps the current one"


def test_an_accounts_keys_depend_on_the_seed_and_its_name_only() -> None:
    """Keys come from a stream per account: creating other accounts first (or reading keys in another
    order) never changes them; a rotation is deterministic too, and differs per account."""
    from qstash_sim.core.service import SimulatorCore

    one, two = SimulatorCore(seed=5), SimulatorCore(seed=5)
    for name in ("x", "y", "z"):
        two.world.accounts.get(name)
    assert one.world.accounts.get("default").signing_keys == two.world.accounts.get("default").signing_keys
    assert one.rotate_signing_keys("default") == two.rotate_signing_keys("default")
    other_seed = SimulatorCore(seed=6).world.accounts.get("default").signing_keys
    assert other_seed != one.world.accounts.get("default").signing_keys
    assert one.world.accounts.get("x").signing_keys != one.world.accounts.get("y").signing_keys
