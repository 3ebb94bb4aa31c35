"""Same-instant deliveries of a workflow run: one at a time, in a seeded order; ``order="shuffle"`` explores
the other orderings, reproducibly. The race of upstash/workflow-js#102 (a notify sent before the wait it
was meant for: the event is lost and the wait times out) reproduces on demand with the real
``@upstash/workflow`` 1.3.3: a run whose parallel steps are a ``waitForEvent`` and a ``notify`` of the
same event (``/wf/race`` in tests/e2e/workflow_app.mjs)."""

from __future__ import annotations

from typing import Any

from wf_harness import TOKEN, workflow_app

from conftest import Client, Served
from qstash_sim.domain.workflow import RunState


def _race(served: Served, seed: int, order: str) -> tuple[Any, ...]:
    """Run the race once after a reset with ``seed`` and ``order``: what the run saw, and the order in which
    its two parallel steps reached the endpoint."""
    served.on_loop(lambda: served.sim.reset(seed=seed))
    served.on_loop(lambda: setattr(served.sim, "order", order))
    with workflow_app(served) as app:
        run_id = app.trigger("race", workflowRunId=f"race-{seed}")
        served.settle()
        served.advance("1h")
        run = served.on_loop(lambda: served.sim.workflows.run(run_id, TOKEN))
        assert run.state is RunState.SUCCESS, (run.error, app.stderr())
        (result,) = app.results(run_id, "race-result")
        in_flight = served.on_loop(lambda: _most_in_flight(served))
    return result["data"]["timeout"], result["data"]["woke"], in_flight


def _most_in_flight(served: Served) -> int:
    """The most attempts in flight at once (the journal's startStep/endStep sweep)."""
    attempts = [e.detail for e in served.sim.world.journal.entries if e.kind == "attempt"]
    steps = sorted([(d["startStep"], 1) for d in attempts] + [(d["endStep"], -1) for d in attempts])
    running = most = 0
    for _, delta in steps:
        running += delta
        most = max(most, running)
    return most


def test_a_runs_same_instant_deliveries_go_one_at_a_time_in_the_order_they_fell_due(served: Served) -> None:
    """By default (``seq``) the wait step (first in Promise.all) reaches the endpoint first: the notify
    finds it; never two deliveries of the run at once, though the endpoint is a real socket."""
    assert _race(served, 1, "seq") == (False, 1, 1)


def test_shuffle_explores_the_other_order_and_a_seed_reproduces_it(served: Served) -> None:
    """``order="shuffle"``: across seeds, both outcomes happen (notify first: the event is lost, the wait
    times out after 1 h, as in upstash/workflow-js#102); each seed gives the same outcome every time."""
    outcomes = {seed: _race(served, seed, "shuffle") for seed in range(6)}
    assert {o[:2] for o in outcomes.values()} == {(False, 1), (True, 0)}, outcomes
    lost = next(seed for seed, o in outcomes.items() if o[0])
    assert _race(served, lost, "shuffle") == outcomes[lost]  # the race, on demand
    assert all(o[2] == 1 for o in outcomes.values())


def test_the_order_is_set_by_reset_over_http(served: Served, client: Client) -> None:
    r = client.post("/_sim/reset", json_body={"seed": 3, "order": "shuffle"})
    assert r.json == {"ok": True, "seed": 3, "order": "shuffle"}
    assert client.post("/_sim/reset", json_body={"seed": 4}).json["order"] == "shuffle"  # kept
    bad = client.post("/_sim/reset", json_body={"order": "random"})
    assert bad.status == 400 and "order" in bad.json["error"] and "shuffle" in bad.json["error"], bad.body
    assert client.post("/_sim/reset", json_body={"order": "seq"}).json["order"] == "seq"
