"""A downstream project installs the wheel and uses the plugin, even with its own ``simulator`` and
``conftest_plugin`` packages: qstash-sim installs one import name, ``qstash_sim``, and nothing generic."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import venv
from pathlib import Path

import pytest

PROJECT = {
    "simulator/__init__.py": "NAME = 'the project\\'s own simulator'\n",
    "simulator/clock.py": "def now():\n    return 'project time'\n",
    "conftest_plugin/__init__.py": "MARK = 'the project\\'s own conftest_plugin'\n",
    "pytest.ini": "[pytest]\npythonpath = .\nasyncio_default_fixture_loop_scope = function\n",
    "tests/test_mine.py": """
        import json, urllib.request
        import pytest
        import simulator, simulator.clock, conftest_plugin
        from qstash_sim import QstashSim

        def _publish(sim, dest):
            req = urllib.request.Request(f"{sim.url}/publish/{dest}", data=b'{"a":1}', method="POST",
                                         headers={**sim.headers, "Content-Type": "application/json"})
            opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with opener.open(req, timeout=10) as resp:
                return json.loads(resp.read())["messageId"]

        def test_own_packages_are_untouched():
            assert simulator.NAME == "the project's own simulator" and simulator.clock.now() == "project time"
            assert conftest_plugin.MARK == "the project's own conftest_plugin"

        def test_sync_fixture(qstash_sim: QstashSim):
            mid = _publish(qstash_sim, "http://127.0.0.1:1/down")
            qstash_sim.clock.advance("31h")
            qstash_sim.assert_in_dlq(mid)

        @pytest.mark.asyncio
        async def test_async_fixture(qstash_sim_async):
            await qstash_sim_async.clock.advance("1h")
            assert qstash_sim_async.clock.now.isoformat() == "2026-01-01T01:00:00+00:00"

        def test_receiver_sync(qstash_sim, qstash_receiver):
            mid = qstash_sim.publish(qstash_receiver.url("/orders"), {"order": 1})
            qstash_sim.settle()
            [d] = qstash_receiver.deliveries
            assert (d.message_id, d.json, d.verified) == (mid, {"order": 1}, True)

        @pytest.mark.asyncio
        async def test_receiver_async(qstash_sim_async, qstash_receiver):
            import aiohttp
            async with aiohttp.ClientSession() as s:
                url = f"{qstash_sim_async.url}/publish/{qstash_receiver.url('/a')}"
                async with s.post(url, data=b'{"a":1}') as r:
                    assert r.status == 200
            await qstash_sim_async.settle()
            [d] = qstash_receiver.deliveries
            assert d.path == "/a" and d.verified, d.verification.reason
    """,
}


@pytest.fixture(scope="module")
def downstream_python(built_wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv outside the repository, installed with the README's command: the wheel with its
    ``pytest`` extra (pytest and pytest-asyncio), plus pytest-xdist for the parallel run."""
    where = tmp_path_factory.mktemp("downstream-venv")
    venv.create(where, with_pip=True)
    python = where / "bin" / "python"
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"qstash-sim[pytest] @ {built_wheel.as_uri()}",
            "pytest-xdist",
        ],
        check=True,
        capture_output=True,
        timeout=600,
    )
    return python


def _project(root: Path) -> Path:
    for rel, text in PROJECT.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip())
    return root


@pytest.mark.parametrize("args", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_a_project_with_its_own_simulator_package_runs_the_fixture(
    downstream_python: Path, tmp_path: Path, args: list[str]
) -> None:
    project = _project(tmp_path / "project")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "PYTHONPATH", "VIRTUAL_ENV"))}
    res = subprocess.run(
        [str(downstream_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "5 passed" in res.stdout
    assert sys.prefix not in res.stdout  # nothing ran from this checkout's venv
