from __future__ import annotations

import pytest

from qstash_sim.engine.retry import MAX_DELAY_MS, compile_retry_delay, default_backoff_ms, parse_retry_after

NOW = 1_767_225_600_000  # 2026-01-01T00:00:00Z, a Thursday


@pytest.mark.parametrize(
    ("n", "ms"),
    [
        (1, 12_000),
        (2, (2 * 60 + 28) * 1000),
        (3, (30 * 60 + 8) * 1000),
        (4, (6 * 3600 + 7 * 60 + 6) * 1000),
        (5, 86_400_000),
        (6, 86_400_000),
        (1000, 86_400_000),
    ],
)
def test_default_backoff_matches_the_contract_table(n: int, ms: int) -> None:
    assert default_backoff_ms(n) == ms


@pytest.mark.parametrize(
    ("expr", "retried", "ms"),
    [
        ("pow(2, retried) * 1000", 3, 8000),
        ("1000", 0, 1000),
        ("1000 * (retried + 1)", 2, 3000),
        ("2 ** 3 ** 2", 0, 512),  # right-associative
        ("-2 ** 2 + 10", 0, 6),  # unary minus binds looser than **
        ("10 - 2 - 3", 0, 5),
        ("100 / 8", 0, 12),  # whole ms, fractions dropped
        ("7 % 4 * 1000", 0, 3000),
        ("max(1000, retried * 500, 10)", 4, 2000),
        ("min(5000, exp(retried) * 1000)", 1, 2718),
        ("sqrt(16) + abs(-3) + floor(1.7) + ceil(1.2) + round(2.5)", 0, 13),
        ("1e3 * .5", 0, 500),
        ("-5000", 0, 0),  # negative -> 0
        ("pow(10, 12)", 0, MAX_DELAY_MS),  # capped at one day
        ("exp(1000)", 0, MAX_DELAY_MS),  # overflow -> cap
        ("  retried  ", 7, 7),
    ],
)
def test_retry_delay_expressions(expr: str, retried: int, ms: int) -> None:
    assert compile_retry_delay(expr).evaluate(retried) == ms


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        (
            "foo(2)",
            "unknown function 'foo' at position 0; expected one of pow, exp, sqrt, abs, floor, ceil, round, min, max",
        ),
        ("1 + powr(2, 3)", "unknown function 'powr' at position 4"),
        ("retry * 2", "unknown variable 'retry' at position 0"),
        ("2 ^ 3", "unexpected character '^' at position 2"),
        ("(1 + 2", "expected ')' at position 6"),
        ("1 +", "at position 3, found end of expression"),
        ("1 2", "expected an operator"),
        ("pow(2)", "function 'pow' at position 0 takes 2 argument(s), got 1"),
        ("", "empty expression"),
        ("__import__(1)", "unknown function '__import__'"),
        ("'os'", 'unexpected character "\'" at position 0'),
        ("1; 2", "unexpected character ';'"),
        ("exp", "expected '(' after function 'exp'"),
    ],
)
def test_bad_expressions_say_where_and_what(expr: str, fragment: str) -> None:
    with pytest.raises(ValueError) as err:
        compile_retry_delay(expr)
    assert str(err.value).startswith("Upstash-Retry-Delay:")
    assert fragment in str(err.value)


def test_did_you_mean() -> None:
    with pytest.raises(ValueError, match="did you mean 'retried'"):
        compile_retry_delay("retreid * 1000")


def test_undefined_values_raise_at_evaluation() -> None:
    d = compile_retry_delay("1000 / retried")
    assert d.evaluate(2) == 500
    with pytest.raises(ValueError, match="undefined for retried=0"):
        d.evaluate(0)
    with pytest.raises(ValueError):
        compile_retry_delay("sqrt(-1)").evaluate(0)


@pytest.mark.parametrize(
    ("headers", "ms"),
    [
        ({"Retry-After": ["120"]}, 120_000),
        ({"retry-after": "0"}, 0),
        ({"Retry-After": "6m5s"}, 365_000),
        ({"Retry-After": "1.5h"}, 5_400_000),
        ({"Retry-After": "Thu, 01 Jan 2026 00:01:00 GMT"}, 60_000),
        ({"Retry-After": "Wed, 31 Dec 2025 23:00:00 GMT"}, 0),  # in the past: at once
        ({"X-RateLimit-Reset": ["30"]}, 30_000),
        ({"X-RateLimit-Reset-Requests": ["1m"]}, 60_000),
        ({"X-RateLimit-Reset-Tokens": ["500ms"]}, 500),
        ({"Retry-After": "86400"}, 86_400_000),
        ({"Retry-After": "86401"}, None),  # over a day: ignored
        ({"Retry-After": "25h"}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        ({"Retry-After": "5", "X-RateLimit-Reset": "9"}, 5_000),  # Retry-After first
        ({"Retry-After": "garbage", "X-RateLimit-Reset": "9"}, 9_000),
    ],
)
def test_parse_retry_after(headers: dict, ms: int | None) -> None:
    assert parse_retry_after(headers, NOW) == ms
