from __future__ import annotations

from datetime import timedelta

import pytest

from qstash_sim.base.durations import parse_duration, to_ms


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1d10h30m", 124_200_000),
        ("50s", 50_000),
        ("500ms", 500),
        ("2m", 120_000),
        ("6m5s", 365_000),
        ("1.5h", 5_400_000),
        ("1h0m0.5s", 3_600_500),
        ("250us", 0),
        ("1500us", 1),
        ("1500µs", 1),
        ("2000000ns", 2),
        ("30", 30_000),
        ("0", 0),
        ("1.5", 1_500),
        (" 10s ", 10_000),
        ("1d1h30m", 91_800_000),
    ],
)
def test_parse_duration(text: str, ms: int) -> None:
    assert parse_duration(text) == ms


@pytest.mark.parametrize("text", ["", "abc", "10x", "5s3", "1h-5m", "-5s", "s", "1..5s", "10 s"])
def test_parse_duration_rejects_with_the_text_and_expected_form(text: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_duration(text)
    assert repr(text) in str(err.value)
    assert "expected" in str(err.value)


def test_parse_duration_type() -> None:
    with pytest.raises(TypeError):
        parse_duration(5)  # type: ignore[arg-type]


def test_to_ms() -> None:
    assert to_ms(timedelta(minutes=2, milliseconds=3)) == 120_003
    assert to_ms(3) == 3000
    assert to_ms(1.5) == 1500
    assert to_ms(0.001) == 1
    assert to_ms("2m") == 120_000


@pytest.mark.parametrize("bad", [None, True, [1], object()])
def test_to_ms_type_error(bad: object) -> None:
    with pytest.raises(TypeError):
        to_ms(bad)  # type: ignore[arg-type]


def test_to_ms_rejects_nan() -> None:
    with pytest.raises(ValueError):
        to_ms(float("nan"))
