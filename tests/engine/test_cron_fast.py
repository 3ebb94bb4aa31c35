"""The fast cron plan (:class:`~qstash_sim.engine.cron.FastUtc`) gives croniter's answers, fire for fire, for
every kind of plain UTC expression; the others (``L``, ``#``, zones) are left to croniter."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from croniter import croniter

from qstash_sim.domain.schedule import Schedule
from qstash_sim.engine.cron import CronFires, FastUtc, next_cron_ms

EXPRESSIONS = [
    "* * * * *",
    "*/1 * * * *",
    "*/7 * * * *",
    "5 * * * *",
    "0 9 * * 1-5",
    "0 0 1 * 1",
    "0 0 */1 * 1",
    "*/15 1-3 * JAN,JUL MON",
    "30 23 31 * *",
    "0 0 29 2 *",
    "0 12 * * 0",
    "0 12 * * 7",
    "0 0 13 * 5",
    "59 23 * 12 SUN,SAT",
    "0,30 8-18/2 1-7,15 * *",
    "0 0 1 1 *",
]


def _croniter_fires(expr: str, start_ms: int, n: int) -> list[int]:
    it = croniter(expr, datetime.fromtimestamp(start_ms / 1000, tz=UTC))
    return [round(it.get_next(float) * 1000) for _ in range(n)]


@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_fast_fires_equal_croniters(expr: str) -> None:
    fast = FastUtc.build(expr)
    assert fast is not None
    rng = random.Random(expr)
    for _ in range(5):
        start = rng.randrange(0, 4_000_000_000_000)  # 1970 .. 2096
        start -= rng.choice([0, start % 60_000])  # on a minute boundary, or not
        want = _croniter_fires(expr, start, 40)
        got, t = [], start
        for _ in range(40):
            t = fast.next_after(t)  # type: ignore[assignment]
            got.append(t)
        assert got == want, (expr, start)


@pytest.mark.parametrize(
    "expr",
    [
        "0 0 L * *",
        "0 0 * * 1#2",
        "0 0 15W * *",
        "6,*/5,*/36 */59,05/54,0-14/82,* *,* *,*,*/1,10,12/9 3/63",  # found by the fuzzer: * inside lists
    ],
)
def test_special_forms_are_left_to_croniter(expr: str) -> None:
    assert FastUtc.build(expr) is None


def test_odd_but_valid_expressions_plan_like_croniter() -> None:
    expr = "*/19,*,* *,00/2,21-20,*/62,0-0,20/40,17-23 *,*/93 10,*/5,02-9,*/9,12/1,*,12,10-2,5-12,*,*,*,4-11/2 3/25"
    sch = Schedule(
        schedule_id="s",
        account="a",
        cron=f"CRON_TZ=UTC {expr}",
        destination="https://e.example/",
        method="POST",
        body=b"",
        content_type=None,
        headers={},
        retries=0,
        retry_delay_expr=None,
        timeout_ms=1000,
        delay_ms=0,
        created_ms=0,
    )
    assert CronFires().first(sch, 1_767_225_600_000) == next_cron_ms(expr, 1_767_225_600_000)
