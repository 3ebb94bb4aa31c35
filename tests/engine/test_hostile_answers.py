"""Whatever a destination answers, no message is lost: each one ends delivered, retrying (with a live
event), failed with a DLQ entry, or cancelled, and no answer affects another message or the engine."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qstash_sim import Caller, MessageSettings, PublishCommand, Simulator
from qstash_sim.domain.message import MessageState
from qstash_sim.engine.retry import parse_retry_after
from qstash_sim.engine.transport import OutboundRequest, Outcome

DAY = 86_400_000


def test_absurd_retry_after_values_are_ignored_not_raised() -> None:
    for value in [
        "1" * 400,
        "9" * 65,
        "1" * 64 + ".5",
        "99999999999999999999",
        "1e400",
        "Fri, 31 Dec 99999 23:59:59 GMT",
        "-1",
        "NaN",
        "inf",
        "\x00",
        "999999999999h",
        "Sun, 06 Nov 1994 08:49:37",
    ]:
        delay = parse_retry_after({"Retry-After": value}, 1_767_225_600_000)
        assert delay is None or 0 <= delay <= DAY, (value, delay)
    assert parse_retry_after({"Retry-After": "30"}) == 30_000
    assert parse_retry_after({"X-RateLimit-Reset": "6m5s"}) == 365_000


def _publish(sim: Simulator, account: str, url: str, retries: int = 2) -> str:
    cmd = PublishCommand(MessageSettings(url, retries=retries, timeout_ms=10_000), b"x")
    return sim.publish(Caller(account=account), cmd).message_id


def _check_nothing_lost(sim: Simulator) -> None:
    live = {mid for (_account, mid) in sim.engine._armed}  # the one live event per retrying message
    for msg in sim.messages():
        dlq = sim.account(msg.account).dlq
        if msg.state is MessageState.DELIVERED or msg.state is MessageState.CANCELLED:
            continue
        if msg.state is MessageState.FAILED:
            assert msg.dlq_id in dlq, f"{msg.message_id} failed without a DLQ entry"
            continue
        # retrying, or an attempt still on the (virtual) wire: either way its next event is in the heap
        assert msg.state in (MessageState.RETRY, MessageState.PENDING) and msg.message_id in live, (
            f"{msg.message_id} is {msg.state.value} with no event left: lost"
        )


def test_one_poisoned_answer_does_not_strand_other_accounts_messages_due_with_it() -> None:
    sim = Simulator(seed=1)

    def respond(req: OutboundRequest) -> Outcome | None:
        if "/poison" in req.url:
            return Outcome.response(503, headers={"Retry-After": "1" * 400, "X-RateLimit-Reset": "9" * 500})
        return None

    sim.virtual_transport.responder = respond
    victims = [_publish(sim, "victim", f"https://example.com/v{i}") for i in range(3)]
    poison = _publish(sim, "attacker", "https://poison.example.com/poison")
    victims += [_publish(sim, "victim", f"https://example.com/w{i}") for i in range(3)]
    asyncio.run(_advance(sim, "2d"))
    assert [sim.get_message(Caller(account="victim"), m).state for m in victims] == [MessageState.DELIVERED] * 6
    assert sim.get_message(Caller(account="attacker"), poison).state is MessageState.FAILED
    assert list(sim.errors) == []
    _check_nothing_lost(sim)


async def _advance(sim: Simulator, by: str) -> None:
    await sim.advance(by)
    await sim.close()


HEADER_VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.just("1" * 400),
    st.sampled_from(["0", "1.5", "6m5s", "Wed, 21 Oct 2015 07:28:00 GMT", "3600", "86401", "1e9", "nan"]),
)
ANSWER = st.one_of(
    st.builds(
        lambda status, hdrs, body, ms: Outcome.response(status, body, hdrs, duration_ms=ms),
        st.integers(min_value=100, max_value=599),
        st.dictionaries(
            st.sampled_from(
                [
                    "Retry-After",
                    "X-RateLimit-Reset",
                    "X-RateLimit-Reset-Requests",
                    "X-RateLimit-Reset-Tokens",
                    "Upstash-NonRetryable-Error",
                    "Content-Type",
                ]
            ),
            HEADER_VALUES,
            max_size=4,
        ),
        st.binary(max_size=64),
        st.integers(min_value=0, max_value=60_000),
    ),
    st.builds(
        lambda err, ms: Outcome.failure(err, duration_ms=ms),
        st.text(max_size=20),
        st.integers(min_value=0, max_value=60_000),
    ),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    answers=st.lists(ANSWER, min_size=1, max_size=12),
    cancel=st.sets(st.integers(0, 7), max_size=3),
    advance=st.sampled_from(["1s", "5m", "2h", "2d"]),
)
def test_random_destination_answers_never_lose_a_message(
    answers: list[Outcome], cancel: set[int], advance: str
) -> None:
    sim = Simulator(seed=3)
    calls: dict[str, Any] = {"n": 0}

    def respond(req: OutboundRequest) -> Outcome:
        calls["n"] += 1
        return answers[calls["n"] % len(answers)]

    sim.virtual_transport.responder = respond
    ids = [_publish(sim, f"acct{i % 3}", f"https://dest{i}.example.com/h", retries=i % 4) for i in range(8)]

    async def run() -> None:
        await sim.advance("1s")
        for i in sorted(cancel):
            msg = sim.get_message(Caller(account=f"acct{i % 3}"), ids[i])
            if msg.state not in (MessageState.DELIVERED, MessageState.FAILED, MessageState.CANCELLED):
                sim.cancel_message(Caller(account=f"acct{i % 3}"), ids[i])
        await sim.advance(advance)
        await sim.close()

    asyncio.run(run())
    assert list(sim.errors) == []
    _check_nothing_lost(sim)
