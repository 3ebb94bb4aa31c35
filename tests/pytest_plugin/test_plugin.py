"""The pytest plugin, tested as users meet it: inner pytest runs through ``pytester``.

Inner runs are in-process (fast, and thread/socket leaks are visible to this process) except the
xdist one, which needs real worker processes.
"""

from __future__ import annotations

import os
import re
import textwrap
import threading
from pathlib import Path

import pytest

from qstash_sim.pytest_plugin import QstashSimAssertionError

pytest_plugins = ["pytester"]

# Helpers the inner tests share: a stdlib publisher (keep-alive off, so nothing is left open).
CONFTEST = """
import json, urllib.request
import pytest

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

def _post(url, body, headers):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **headers})
    with _OPENER.open(req, timeout=10) as resp:
        return json.loads(resp.read())

@pytest.fixture
def publish(qstash_sim):
    def do(dest, body=None, headers=None):
        hdrs = {**qstash_sim.headers, **(headers or {})}
        return _post(f"{qstash_sim.url}/publish/{dest}", body or {}, hdrs)["messageId"]
    return do
"""


@pytest.fixture
def tester(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester with the shared inner conftest and a quiet ini (pytest-asyncio is always installed here)."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(CONFTEST)
    return pytester


# ---------------------------------------------------------------------------------------------- registration


def test_registered_by_entry_point_with_nothing_configured(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        def test_x(qstash_sim, publish):
            mid = publish("http://127.0.0.1:1/down")   # a closed loopback port: every attempt fails
            qstash_sim.clock.advance("31h")
            qstash_sim.assert_in_dlq(mid)
        """
    )
    result = tester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["qstash-sim: seed 0 (default), scenario none"])


def test_p_no_qstash_sim_disables_it(tester: pytest.Pytester) -> None:
    tester.makeconftest("")  # the shared conftest needs the fixture
    tester.makepyfile("def test_x(qstash_sim): pass")
    result = tester.runpytest("-p", "no:qstash_sim")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'qstash_sim' not found*"])
    assert "qstash-sim: seed" not in result.stdout.str()


# ---------------------------------------------------------------------------------------------- isolation


def test_each_test_starts_clean_at_the_epoch_with_the_same_ids(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        seen = []

        @pytest.mark.parametrize("run", [1, 2, 3])
        def test_fresh(qstash_sim, publish, run):
            assert qstash_sim.messages == [] and qstash_sim.deliveries == [] and qstash_sim.ledger == []
            assert qstash_sim.clock.now.isoformat() == "2026-01-01T00:00:00+00:00"
            seen.append(publish("https://api.example.com/a", {"run": run}))
            qstash_sim.clock.advance("5h")   # leaves a moved clock behind on purpose
            qstash_sim.assert_delivered(to="https://api.example.com/a", times=1, json={"run": run})

        def test_same_seed_same_ids():
            assert len(set(seen)) == 1, seen
        """
    )
    tester.runpytest("-p", "no:randomly").assert_outcomes(passed=4)


INBOX_DUMP = """
import json, os, pytest

def _dump(qstash_sim, name):
    rows = [[d.message_id, d.url, d.retried, d.status, sorted(d.headers.items())] for d in qstash_sim.deliveries]
    with open(os.path.join(os.environ["DUMP_DIR"], name), "w") as f:
        json.dump({"rows": rows, "keys": [qstash_sim.signing_keys.current, qstash_sim.signing_keys.next]}, f)

@pytest.mark.qstash_sim(seed=3)
def test_first(qstash_sim, publish):
    for i in range(4):
        publish(f"https://api.example.com/first/{i}", {"i": i})
    qstash_sim.clock.advance("1h")

@pytest.mark.qstash_sim(seed=11)
@pytest.mark.qstash_scenario({"name": "coin", "destinations": [
    {"name": "half", "match": "*", "probability": "50%", "respond": 503}]})
def test_second(qstash_sim, publish):
    for i in range(6):
        publish(f"https://api.example.com/second/{i}", {"i": i})
    qstash_sim.clock.advance("2h")
    _dump(qstash_sim, "second.json")
"""


def test_a_tests_inbox_is_the_same_whichever_tests_ran_before_it(
    tester: pytest.Pytester, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tester.makepyfile(test_order=INBOX_DUMP)
    dumps = []
    for args in (["-k", "second"], ["-k", "first or second"]):
        out = tmp_path / f"run{len(dumps)}"
        out.mkdir()
        monkeypatch.setenv("DUMP_DIR", str(out))
        tester.runpytest("-p", "no:randomly", *args).assert_outcomes(passed=len(args[1].split(" or ")))
        dumps.append((out / "second.json").read_text())
    alone, after = dumps
    assert '"Upstash-Signature"' in alone and "503" in alone
    assert alone == after, "test_second's deliveries (ids, signatures, fault draws) depend on test_first"


def test_reads_are_snapshots_of_domain_objects(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        from datetime import datetime, timezone
        import pytest

        def test_reads(qstash_sim, publish):
            assert qstash_sim.url.endswith("/v1/qstash") and qstash_sim.url.startswith("http://127.0.0.1:")
            assert qstash_sim.sapiom_base_url + "/v1/qstash" == qstash_sim.url
            assert qstash_sim.api_key == "sk_test_qstash_sim"
            keys = qstash_sim.signing_keys
            assert keys.current.startswith("sig_") and keys.next.startswith("sig_")
            mid = publish("https://api.example.com/a", {"x": 1}, {"Upstash-Delay": "10m"})
            assert qstash_sim.message(mid).state.value == "pending"
            assert qstash_sim.deliveries == []
            qstash_sim.clock.move_to("2026-01-01T00:10:00Z")
            assert qstash_sim.clock.now == datetime(2026, 1, 1, 0, 10, tzinfo=timezone.utc)
            [d] = qstash_sim.deliveries
            assert d.message_id == mid and d.virtual and d.status == 200
            assert "Upstash-Signature" in d.headers
            assert [e.kind for e in qstash_sim.journal if e.kind == "request"] == ["request"]
            assert qstash_sim.spent(qstash_sim.api_key) == qstash_sim.spent()
            with pytest.raises(ValueError, match="backwards"):
                qstash_sim.clock.move_to("2026-01-01T00:00:00Z")
            with pytest.raises(TypeError, match="delta"):
                qstash_sim.clock.advance(None)

        def test_run_until_predicate_may_read_the_handle(qstash_sim, publish):
            mid = publish("http://127.0.0.1:1/down")
            assert qstash_sim.run_until(lambda: qstash_sim.message(mid).state.value == "failed", "2d")
            assert qstash_sim.clock.now_ms < 1767225600000 + 3_600_000   # stopped when it became true
            assert not qstash_sim.run_until(lambda: False, "1h")
        """
    )
    tester.runpytest().assert_outcomes(passed=2)


# ---------------------------------------------------------------------------------------------- markers, options


def test_seed_from_marker_option_and_ini(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        test_seed="""
        import pytest

        def test_option(qstash_sim):
            assert qstash_sim.seed == 5

        @pytest.mark.qstash_sim(seed=7)
        def test_marker(qstash_sim):
            assert qstash_sim.seed == 7 and qstash_sim.sim.seed == 7

        @pytest.mark.qstash_sim(seed=9)
        class TestClass:
            def test_class_marker(self, qstash_sim):
                assert qstash_sim.seed == 9
        """
    )
    result = tester.runpytest("--qstash-sim-seed=5", "test_seed.py")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["qstash-sim: seed 5 (--qstash-sim-seed), scenario none"])

    tester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\nqstash_sim_seed = 5\n")
    result = tester.runpytest("test_seed.py")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["qstash-sim: seed 5 (ini qstash_sim_seed), scenario none"])


def test_random_seed_is_printed_and_used(tester: pytest.Pytester) -> None:
    tester.makepyfile("def test_x(qstash_sim): print('SEED', qstash_sim.seed)")
    result = tester.runpytest("--qstash-sim-seed=random", "-s")
    result.assert_outcomes(passed=1)
    header = re.search(r"qstash-sim: seed (\d+) \(--qstash-sim-seed=random\)", result.stdout.str())
    assert header is not None, result.stdout.str()
    result.stdout.fnmatch_lines([f"*SEED {header.group(1)}*"])


def test_bad_seed_and_bad_markers_are_usage_errors(tester: pytest.Pytester) -> None:
    tester.makepyfile("def test_x(qstash_sim): pass")
    result = tester.runpytest("--qstash-sim-seed=abc")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--qstash-sim-seed: expected an int or 'random', got 'abc'*"])

    tester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash_sim(sed=3)
        def test_typo(qstash_sim):
            pass
        """
    )
    result = tester.runpytest()
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        ["*qstash_sim takes keyword arguments seed, payment, deliver_to, api_key, strict; got [[]'sed'[]]"]
    )


def test_deliver_to_marker_applies_to_one_test_only(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash_sim(deliver_to=["*.internal.test"], api_key="sk_other")
        def test_marked(qstash_sim):
            assert qstash_sim.sim.transport.is_real("https://hooks.internal.test/x")
            assert qstash_sim.api_key == "sk_other"

        def test_unmarked(qstash_sim):
            assert not qstash_sim.sim.transport.is_real("https://hooks.internal.test/x")
            assert qstash_sim.sim.transport.is_real("http://127.0.0.1:9/x")   # loopback always is
        """
    )
    tester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_strict_marker_applies_to_one_test_only(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import json, urllib.error, urllib.request
        import pytest

        def publish(qstash_sim):
            req = urllib.request.Request(f"{qstash_sim.url}/publish/https://example.com/x", data=b"{}",
                                         headers={"Upstash-Dealy": "10s"})
            try:
                return urllib.request.urlopen(req).status, ""
            except urllib.error.HTTPError as e:
                return e.code, json.load(e)["error"]

        @pytest.mark.qstash_sim(strict=True)
        def test_strict(qstash_sim):
            status, error = publish(qstash_sim)
            assert status == 400 and "did you mean Upstash-Delay?" in error

        def test_lenient(qstash_sim):
            assert publish(qstash_sim) == (200, "")
            assert any("Upstash-Dealy" in (e.error or "") for e in qstash_sim.journal if e.kind == "warning")
        """
    )
    tester.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_scenario_marker_and_option(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        @pytest.mark.qstash_scenario("flaky-destination", seed=7)
        def test_flaky(qstash_sim, publish):
            assert qstash_sim.seed == 7
            mid = publish("https://api.example.com/hook")
            qstash_sim.clock.advance("1h")
            qstash_sim.assert_states(mid, ["CREATED", "ACTIVE", "ERROR", "RETRY", ..., "DELIVERED"])

        def test_option_scenario(qstash_sim, publish):
            mid = publish("https://api.example.com/hook")
            qstash_sim.clock.advance("31h")
            qstash_sim.assert_in_dlq(mid)
        """
    )
    result = tester.runpytest("--qstash-sim-scenario=destination-down")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["qstash-sim: seed 0 (default), scenario destination-down"])


def test_scenario_from_a_path_a_dict_and_yaml_text(tester: pytest.Pytester) -> None:
    tester.mkdir("faults").joinpath("teapot.yaml").write_text(
        "name: teapot\ndestinations:\n  - name: pot\n    match: '*'\n    respond: 418\n"
    )
    tester.path.joinpath("faults", "test_paths.py").write_text(
        textwrap.dedent(
            r"""
            import pytest

            @pytest.mark.qstash_scenario("teapot.yaml")
            def test_path_next_to_the_test(qstash_sim, publish):
                mid = publish("https://api.example.com/tea")
                qstash_sim.clock.advance("31h")
                assert qstash_sim.assert_in_dlq(mid).response_status == 418

            def test_dict_and_text_at_run_time(qstash_sim, publish):
                qstash_sim.load_scenario({"name": "down", "destinations": [{"match": "*", "respond": 503}]})
                mid = publish("https://api.example.com/a")
                qstash_sim.clock.advance("31h")
                assert qstash_sim.assert_in_dlq(mid).response_status == 503
                qstash_sim.load_scenario("name: down\ndestinations:\n  - match: '*'\n    respond: 200\n")
                mid = publish("https://api.example.com/b")
                qstash_sim.assert_delivered(message_id=mid, times=1)

            @pytest.mark.qstash_scenario("rules:\n  - action: {drop_conection: true}\n")
            def test_a_mistake_is_reported(qstash_sim):
                pass
            """
        )
    )
    result = tester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*drop_conection*"])


def test_payment_marker_sets_the_mode_for_one_test(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import urllib.error
        import pytest

        @pytest.mark.qstash_sim(payment="x402")
        def test_x402(qstash_sim, publish):
            with pytest.raises(urllib.error.HTTPError) as caught:
                publish("https://api.example.com/a")
            assert caught.value.code == 402
            caught.value.close()
            assert qstash_sim.messages == []

        def test_default_is_off_again(qstash_sim, publish):
            publish("https://api.example.com/a")
            qstash_sim.assert_delivered(to="https://api.example.com/a", times=1)

        @pytest.mark.qstash_sim(payment="bitcoin")
        def test_bad_mode(qstash_sim):
            pass
        """
    )
    result = tester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*unknown payment mode 'bitcoin'*"])


# ---------------------------------------------------------------------------------------------- failure output


def test_failure_output_is_a_near_miss_report_with_the_seed(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest
        from qstash_sim.pytest_plugin import QstashSimAssertionError

        @pytest.mark.qstash_sim(seed=42)
        def test_near_miss(qstash_sim, publish):
            publish("https://api.example.com/fulfilment", {"orderId": "ord_455", "action": "ship"})
            publish("https://api.example.com/send-email", {"orderId": "ord_456"})
            qstash_sim.assert_delivered(to="https://api.example.com/fulfillment", times=1, json={"orderId": "ord_456"})

        def test_not_yet_in_dlq(qstash_sim, publish):
            mid = publish("http://127.0.0.1:1/down")
            qstash_sim.clock.advance("1m")
            qstash_sim.assert_in_dlq(mid)

        def test_states(qstash_sim, publish):
            mid = publish("https://api.example.com/ok")
            qstash_sim.assert_states(mid, ["CREATED", "ACTIVE", "ERROR", ..., "DELIVERED"])

        def test_spent(qstash_sim, publish):
            publish("https://api.example.com/ok")
            qstash_sim.assert_spent("sk_test_qstash_sin", "0.00002")

        def test_not_delivered(qstash_sim, publish):
            publish("https://api.example.com/ok", {"n": 1})
            qstash_sim.assert_not_delivered(to="https://api.example.com/*")

        def test_is_an_assertion_error(qstash_sim):
            with pytest.raises(QstashSimAssertionError):
                qstash_sim.assert_delivered()
            assert issubclass(QstashSimAssertionError, AssertionError)
        """
    )
    result = tester.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=5, passed=1)
    out = result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            "*QstashSimAssertionError: expected 1 delivery to https://api.example.com/fulfillment"
            ' with json ⊇ {"orderId": "ord_456"}, found 0.',
            "*Closest of 2 other deliveries in the inbox:",
            "*1. POST https://api.example.com/fulfilment -> 200 at 2026-01-01T00:00:00.000Z*",
            "*url differs: https://api.example.com/fulfilment",
            '*json /orderId is "ord_455", expected "ord_456"',
            "*did you mean to='https://api.example.com/fulfilment'?",
            "*2. POST https://api.example.com/send-email*",
            "*(qstash-sim seed 42: replay with --qstash-sim-seed=42)",
            "*- qstash-sim -*",
            "seed=42",
            "replay: pytest 'test_failure_output_is_a_near_miss_report_with_the_seed.py::test_near_miss'"
            " --qstash-sim-seed=42",
        ]
    )
    # the closest candidate is listed first
    assert out.index("1. POST https://api.example.com/fulfilment") < out.index(
        "2. POST https://api.example.com/send-email"
    )
    result.stdout.fnmatch_lines(
        [
            "*expected message msg_* in the DLQ, but it is RETRY, next attempt at 2026-01-01T00:02:40.000Z"
            " (in 1m40s: advance the clock); 2 of 4 attempts made.",
            "*2026-01-01T00:00:00.000Z ERROR (connection refused)",
            "*2026-01-01T00:00:00.000Z RETRY, next at 2026-01-01T00:00:12.000Z",
        ],
        consecutive=False,
    )
    result.stdout.fnmatch_lines(
        [
            "*message msg_* went through CREATED -> ACTIVE -> DELIVERED",
            "*expected *[[]CREATED, ACTIVE, ERROR, ..., DELIVERED[]]",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*expected account 'sk_test_qstash_sin' to have spent $0.00002, it spent $0.*",
            "*Nobody called 'sk_test_qstash_sin' was charged. Accounts charged: 'sk_test_qstash_sim'; agents: none.",
            "*Did you mean 'sk_test_qstash_sim'?",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*expected no delivery to https://api.example.com/* found 1:", "*1. POST https://api.example.com/ok -> 200*"]
    )
    # plugin internals are hidden from the traceback
    assert "conftest_plugin/handle.py" not in out and "conftest_plugin/assertions.py" not in out


def test_server_errors_are_raised_in_the_test(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import pytest

        def boom(*args, **kwargs):
            raise RuntimeError("boom in the core")

        def test_raised_at_next_call(qstash_sim, publish, monkeypatch):
            monkeypatch.setattr(qstash_sim.sim, "publish", boom)
            with pytest.raises(Exception, match="500"):
                publish("https://api.example.com/a")
            with pytest.raises(RuntimeError, match="boom in the core") as caught:
                qstash_sim.settle()
            notes = caught.value.__notes__
            assert any("raised inside the qstash-sim server thread" in n for n in notes)
            assert any("server-side traceback" in n for n in notes)
            qstash_sim.settle()   # reported once only

        def test_raised_at_teardown_if_unseen(qstash_sim, publish, monkeypatch):
            monkeypatch.setattr(qstash_sim.sim, "publish", boom)
            with pytest.raises(Exception, match="500"):
                publish("https://api.example.com/a")

        def test_next_test_is_clean(qstash_sim):
            qstash_sim.settle()
        """
    )
    result = tester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*ERROR at teardown of test_raised_at_teardown_if_unseen*", "*RuntimeError: boom in the core*"],
        consecutive=False,
    )


# ---------------------------------------------------------------------------------------------- async, factory


def test_async_variant_with_a_receiver_on_the_test_loop(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        import aiohttp
        import pytest
        from aiohttp import web

        async def serve(status):
            hits = []
            async def handler(request):
                hits.append(await request.read())
                return web.Response(status=status)
            app = web.Application()
            app.router.add_post("/hook", handler)
            runner = web.AppRunner(app)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = runner.addresses[0][1]
            return runner, f"http://127.0.0.1:{port}/hook", hits

        async def publish(sim, dest):
            async with aiohttp.ClientSession() as s:
                async with s.post(f"{sim.url}/publish/{dest}", json={"a": 1}, headers=sim.headers) as r:
                    return (await r.json())["messageId"]

        @pytest.mark.asyncio
        async def test_delivered_to_a_receiver_on_this_loop(qstash_sim_async):
            runner, url, hits = await serve(200)
            try:
                mid = await publish(qstash_sim_async, url)
                await qstash_sim_async.assert_delivered(to=url, times=1, json={"a": 1})
                await qstash_sim_async.assert_states(mid, ["CREATED", "ACTIVE", "DELIVERED"])
                assert hits == [b'{"a": 1}']
            finally:
                await runner.cleanup()

        @pytest.mark.asyncio
        async def test_dlq_after_a_virtual_day(qstash_sim_async):
            runner, url, hits = await serve(500)
            try:
                mid = await publish(qstash_sim_async, url)
                await qstash_sim_async.clock.advance("31h")
                entry = await qstash_sim_async.assert_in_dlq(mid)
                assert entry.response_status == 500 and len(hits) == 4
                await qstash_sim_async.assert_not_delivered(to=url)
                await qstash_sim_async.assert_spent(qstash_sim_async.api_key, "0.00001")
            finally:
                await runner.cleanup()

        @pytest.mark.anyio
        @pytest.mark.parametrize("anyio_backend", ["asyncio"])
        async def test_anyio(qstash_sim_async, anyio_backend):
            await qstash_sim_async.settle()
            assert await qstash_sim_async.run_until(lambda: True, "1s")
        """
    )
    tester.runpytest().assert_outcomes(passed=3)


def test_factory_makes_independent_simulators(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        def test_two(qstash_sim_factory, qstash_sim, publish):
            other = qstash_sim_factory(seed=2)
            assert other.url != qstash_sim.url and other.seed == 2
            publish("https://api.example.com/a")
            assert len(qstash_sim.messages) == 1 and other.messages == []
            other.clock.advance("1d")
            assert qstash_sim.clock.now_ms + 86_400_000 == other.clock.now_ms
            third = qstash_sim_factory()
            assert len({qstash_sim.url, other.url, third.url}) == 3
        """
    )
    tester.runpytest().assert_outcomes(passed=1)


# ---------------------------------------------------------------------------------------------- leaks, xdist


def _socket_fds() -> int:
    fd_dir = Path("/proc/self/fd")
    if not fd_dir.is_dir():
        pytest.skip("needs /proc to count sockets")
    count = 0
    for fd in fd_dir.iterdir():
        try:
            count += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return count


def test_teardown_leaves_no_threads_or_sockets(tester: pytest.Pytester) -> None:
    tester.makepyfile(
        """
        def test_a(qstash_sim, publish):
            mid = publish("http://127.0.0.1:1/down")
            qstash_sim.clock.advance("31h")
            qstash_sim.assert_in_dlq(mid)

        def test_b(qstash_sim_factory):
            qstash_sim_factory().settle()
        """
    )
    threads_before = {t.ident for t in threading.enumerate()}
    sockets_before = _socket_fds()
    tester.runpytest().assert_outcomes(passed=2)
    left = [t.name for t in threading.enumerate() if t.ident not in threads_before and t.is_alive()]
    assert left == []
    assert _socket_fds() == sockets_before


def test_xdist_workers_have_separate_servers_and_no_cross_talk(tester: pytest.Pytester) -> None:
    pytest.importorskip("xdist")
    tester.makepyfile(
        """
        import os
        import pathlib
        import pytest

        @pytest.mark.parametrize("n", range(8))
        def test_worker(qstash_sim, publish, n):
            publish(f"https://api.example.com/{n}", {"n": n})
            qstash_sim.clock.advance("1h")
            assert [d.url for d in qstash_sim.deliveries] == [f"https://api.example.com/{n}"]
            worker = os.environ.get("PYTEST_XDIST_WORKER", "none")
            out = pathlib.Path(__file__).parent / f"port-{worker}-{n}"
            out.write_text(f"{qstash_sim.url} {qstash_sim.seed}")
        """
    )
    result = tester.runpytest_subprocess("-n", "2", "--qstash-sim-seed=random", "-p", "no:randomly")
    result.assert_outcomes(passed=8)
    seed = re.search(r"qstash-sim: seed (\d+)", result.stdout.str())
    assert seed is not None
    records = {}
    for f in tester.path.rglob("port-*"):
        worker = f.name.split("-")[1]
        url, used_seed = f.read_text().split()
        records.setdefault(worker, set()).add(url)
        assert used_seed == seed.group(1)  # one seed for the whole run
    assert sorted(records) == ["gw0", "gw1"]
    assert all(len(urls) == 1 for urls in records.values())  # one server per worker...
    assert records["gw0"] != records["gw1"]  # ...and not the same one


def test_assertion_error_class_is_public() -> None:
    assert issubclass(QstashSimAssertionError, AssertionError)
