"""The aiohttp version guard of ``qstash_sim.http.protocol`` (the one module touching aiohttp internals).

Only strings and stand-in classes: no other aiohttp is installed. The floor the guard starts from must be
the one pyproject.toml declares and constraints/floors.txt pins.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from qstash_sim.http import protocol
from qstash_sim.http.protocol import (
    AIOHTTP_SUPPORTED,
    AIOHTTP_VERIFIED_BELOW,
    AIOHTTP_VERIFIED_MIN,
    ALLOW_UNVERIFIED_ENV,
    UnsupportedAiohttpVersion,
    check_aiohttp_internals,
    check_aiohttp_version,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("version", "parsed"),
    [
        ("3.13.4", (3, 13, 4)),
        ("3.13.5", (3, 13, 5)),
        ("3.14.0", (3, 14, 0)),
        ("3.14.5", (3, 14, 5)),
        ("3.14.99", (3, 14, 99)),  # a later 3.14 patch release
        ("3.13.4.post1", (3, 13, 4)),
        ("3.14.6.dev0", (3, 14, 6)),
    ],
)
def test_verified_releases_pass(version: str, parsed: tuple[int, int, int]) -> None:
    assert check_aiohttp_version(version) == parsed


@pytest.mark.parametrize("version", ["3.13.3", "3.12.15", "3.10.5", "3.9.0", "3.9", "2.3.10", "3.13.4rc1", "3.13.4a0"])
def test_older_releases_are_refused_naming_the_version_and_the_range(version: str) -> None:
    with pytest.raises(UnsupportedAiohttpVersion, match="older than the oldest release verified") as exc:
        check_aiohttp_version(version)
    message = str(exc.value)
    assert f"aiohttp {version}:" in message
    assert f"aiohttp{AIOHTTP_SUPPORTED}" in message


@pytest.mark.parametrize("version", ["4.0.0", "4.0.0a1", "5.1"])
def test_a_new_major_version_is_refused(version: str) -> None:
    with pytest.raises(UnsupportedAiohttpVersion, match="new major version") as exc:
        check_aiohttp_version(version)
    assert f"aiohttp {version}:" in str(exc.value) and AIOHTTP_SUPPORTED in str(exc.value)


@pytest.mark.parametrize("version", ["3.15.0", "3.15.0a1", "3.15.0rc2", "3.20.1"])
def test_a_newer_minor_release_is_refused_unless_allowed(version: str) -> None:
    newer = f"newer than the newest release verified.*{ALLOW_UNVERIFIED_ENV}"
    with pytest.raises(UnsupportedAiohttpVersion, match=newer):
        check_aiohttp_version(version)
    assert check_aiohttp_version(version, allow_newer=True)[:2] >= AIOHTTP_VERIFIED_BELOW[:2]


def test_allowing_newer_releases_never_allows_an_older_one() -> None:
    with pytest.raises(UnsupportedAiohttpVersion, match="older"):
        check_aiohttp_version("3.12.15", allow_newer=True)


@pytest.mark.parametrize("version", ["", "garbage", "latest", "three.fourteen", "3"])
def test_an_unreadable_version_is_refused(version: str) -> None:
    with pytest.raises(UnsupportedAiohttpVersion, match="cannot be read"):
        check_aiohttp_version(version)


def test_the_error_is_not_an_attribute_error() -> None:
    assert issubclass(UnsupportedAiohttpVersion, RuntimeError)
    assert not issubclass(UnsupportedAiohttpVersion, AttributeError)


def test_the_installed_aiohttp_passes_both_checks() -> None:
    check_aiohttp_version(aiohttp.__version__)
    check_aiohttp_internals(aiohttp.__version__)


def test_internals_missing_from_a_release_are_named() -> None:
    class OldHandler:  # like aiohttp < 3.10.6: no _request_in_progress
        _messages = _waiter = _loop = None

    class OldServer:
        def __init__(self) -> None:
            self._other: dict[str, int] = {}

    class OldRunner:
        pass

    with pytest.raises(UnsupportedAiohttpVersion) as exc:
        check_aiohttp_internals("3.14.9", handler=OldHandler, server=OldServer, runner=OldRunner)
    message = str(exc.value)
    assert "aiohttp 3.14.9: it lacks RequestHandler._request_in_progress" in message
    assert "web.Server._kwargs, web.Server.handler_cancellation, web.AppRunner._make_server" in message
    # the real classes have them all
    check_aiohttp_internals("3.14.9", server=web.Server, runner=web.AppRunner)


def test_import_time_check_reads_the_installed_version_and_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ALLOW_UNVERIFIED_ENV, raising=False)
    monkeypatch.setattr(aiohttp, "__version__", "3.15.0")
    with pytest.raises(UnsupportedAiohttpVersion, match="aiohttp 3.15.0:"):
        protocol._check_installed_aiohttp()
    monkeypatch.setenv(ALLOW_UNVERIFIED_ENV, "1")
    protocol._check_installed_aiohttp()  # a newer one may be tried; the internals are still checked
    monkeypatch.setattr(aiohttp, "__version__", "3.12.15")
    with pytest.raises(UnsupportedAiohttpVersion, match="aiohttp 3.12.15: it is older"):
        protocol._check_installed_aiohttp()


def _floor(spec: str) -> tuple[int, ...]:
    m = re.fullmatch(r"aiohttp\s*(?:>=|==)\s*([\d.]+)", spec.split(";")[0].split(",")[0].strip())
    assert m is not None, spec
    return tuple(int(p) for p in m.group(1).split("."))


def test_the_guard_starts_at_the_declared_and_pinned_floor() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]["dependencies"]
    declared = [_floor(d) for d in deps if re.match(r"aiohttp\b", d)]
    pinned = [
        _floor(line)
        for line in (ROOT / "constraints" / "floors.txt").read_text("utf-8").splitlines()
        if re.match(r"aiohttp\s*==", line)
    ]
    assert declared == [AIOHTTP_VERIFIED_MIN]
    assert pinned == [AIOHTTP_VERIFIED_MIN]
    assert AIOHTTP_SUPPORTED == ">={}.{}.{},<{}.{}".format(*AIOHTTP_VERIFIED_MIN, *AIOHTTP_VERIFIED_BELOW[:2])
