"""End to end with the real ``@sapiom/fetch`` 0.3.0 (node) against a simulator on a loopback port.

Each test starts a ``ServerThread`` simulator (virtual clock) plus a loopback ``Receiver`` as the
destinations, runs one of the scripts in ``tests/e2e/`` with ``node``, and then asserts from the
simulator's own state (journal, transactions, ledger, inbox) what happened on the wire.

Needs ``node`` (the tests skip without it) and ``tests/e2e/node_modules`` (``make e2e-deps``; the tests
fail without it, since ``make test`` installs it). Pending polls cost the SDK ~1 s each (hard-coded
in 0.3.0), so the policies here use at most one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import Client, Receiver, Served
from qstash_sim.sapiom.records import TransactionStatus
from qstash_sim.server import ServerThread
from qstash_sim.simulator import Simulator

ROOT = Path(__file__).resolve().parents[2]
E2E = ROOT / "tests" / "e2e"
NODE = shutil.which("node")
TX = "X-Sapiom-Transaction-Id"

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed: the real @sapiom/fetch SDK needs it")


@pytest.fixture(scope="module", autouse=True)
def _sdk_installed() -> None:
    if not (E2E / "node_modules" / "@sapiom" / "fetch" / "package.json").is_file():
        pytest.fail("tests/e2e/node_modules is missing: run `make e2e-deps` (npm ci --prefix tests/e2e)")


@pytest.fixture
def sdk() -> Iterator[tuple[Served, Receiver]]:
    """A virtual-clock simulator in x402 mode (variant v1) and a loopback receiver."""
    sim = Simulator(seed=1, clock="virtual")
    sim.sapiom.configure(mode="x402", variant="v1")
    server = ServerThread(sim).start()
    served = Served(server)
    receiver = Receiver()
    try:
        yield served, receiver
    finally:
        served.client.close()
        server.stop()
        receiver.close()
        errors = list(sim.errors)
        assert not errors, f"the server raised internally: {errors!r}"


def run_node(
    script: Path | str, served: Served, *args: str, env: dict[str, str] | None = None, cwd: Path = E2E
) -> tuple[int, list[dict[str, Any]], str]:
    """Run a node script; (exit code, its JSON stdout lines, stderr)."""
    full_env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "SAPIOM_BASE_URL": served.url,
        "SAPIOM_API_KEY": "sk_test_e2e",
        "SAPIOM_AGENT_NAME": "my-agent",
        **(env or {}),
    }
    p = subprocess.run(
        [NODE or "node", str(script), *args],
        check=False,
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    return p.returncode, lines, p.stderr


def call(served: Served, spec: dict[str, Any]) -> dict[str, Any]:
    """One sapiomFetch through tests/e2e/sapiom_call.mjs; its JSON answer (status/headers/body or error)."""
    rc, lines, err = run_node(E2E / "sapiom_call.mjs", served, json.dumps(spec))
    assert lines, f"sapiom_call.mjs printed nothing (exit {rc}): {err}"
    return lines[-1]


def steps_by_transaction(served: Served) -> dict[str, list[tuple[str, int, str | None]]]:
    """Journal request lines grouped by transaction: (operation, status, payment detail), in order."""
    out: dict[str, list[tuple[str, int, str | None]]] = {}

    def read() -> None:
        for e in served.sim.world.journal.of_kind("request"):
            tx = e.detail.get("transactionId")
            if tx:
                out.setdefault(tx, []).append((e.operation or "", e.status or 0, e.detail.get("payment")))

    served.on_loop(read)
    return out


def wait_for_completions(served: Served, n: int) -> None:
    """/complete is fire-and-forget; node only exits once it was answered, but check the server side
    a bounded number of times (each settle() is one trip through the server's loop, no sleeping)."""
    for _ in range(100):
        done = served.on_loop(lambda: sum(1 for t in served.sim.sapiom.store if t.completions))
        if done >= n:
            return
        served.settle()
    pytest.fail(f"expected {n} completed transactions, got {done}")


PAID = ["createTransaction", "GATEWAY/402", "reauthorizeTransaction", "GATEWAY/200", "completeTransaction"]


def shape(steps: list[tuple[str, int, str | None]]) -> list[str]:
    return [f"GATEWAY/{s}" if not op.endswith("Transaction") else op for op, s, _ in steps]


# ---------------------------------------------------------------------------------------------------
# The product page's example


def test_process_order_example_pays_every_call(sdk: tuple[Served, Receiver]) -> None:
    served, receiver = sdk
    rc, lines, err = run_node(E2E / "process_order.mjs", served, env={"DEST_BASE": f"http://127.0.0.1:{receiver.port}"})
    assert rc == 0, (lines, err)
    assert [(x["call"], x["status"]) for x in lines if "call" in x] == [(1, 200), (2, 200), (3, 200)]
    assert lines[-1] == {"done": True, "calls": 3}
    wait_for_completions(served, 3)

    steps = steps_by_transaction(served)
    assert len(steps) == 3
    gateway_ops = []
    for tx_steps in steps.values():
        assert shape(tx_steps) == PAID, tx_steps
        assert [p for _, _, p in tx_steps] == [None, "required", None, "paid", None]
        gateway_ops.append(tx_steps[1][0])
    assert gateway_ops == ["publishMessage", "enqueueMessage", "batchMessages"]
    txs = served.on_loop(lambda: list(served.sim.sapiom.store))
    assert all(t.status is TransactionStatus.COMPLETED and t.outcome == "success" for t in txs)
    assert all(t.account == "sk_test_e2e" and t.agent == "my-agent" for t in txs)
    facts = txs[0].completions[0].response_facts["facts"]
    assert facts["status"] == 200 and "x-payment-response" in facts["headers"]

    # The destinations got exactly the bodies sent.
    served.settle()
    got = sorted((r["path"], r["body"]) for r in receiver.received)
    assert got == sorted(
        [
            ("/fulfillment", b'{"orderId":"ord_456","action":"ship"}'),
            ("/send-email", b'{"orderId":"ord_456","template":"order-confirmation"}'),
            ("/analytics", b'{"event":"order.completed","orderId":"ord_456"}'),
            ("/inventory", b'{"action":"decrement","orderId":"ord_456"}'),
        ]
    )

    # The seed's prices: $0.00001 x (1 publish + 1 enqueue + 2 batch items) = $0.00004 for my-agent.
    ledger = served.client.get("/_sim/ledger?agent=my-agent").json
    assert ledger["total"] == "0.00004" and ledger["agents"] == {"my-agent": "0.00004"}
    assert [(e["operation"], e["quantity"]) for e in ledger["entries"]] == [
        ("publishMessage", 1),
        ("enqueueMessage", 1),
        ("batchMessages", 2),
    ]
    assert {e["transactionId"] for e in ledger["entries"]} == set(steps)
    assert sum(Decimal(c.fiat_amount) for t in txs for c in t.costs) == Decimal("0.00004")


def test_example_app(sdk: tuple[Served, Receiver], tmp_path: Path) -> None:
    """examples/sapiom-app/app.js: the seed's code, only the base URLs pointed at the simulator."""
    served, _ = sdk
    shutil.copy(ROOT / "examples" / "sapiom-app" / "app.js", tmp_path / "app.mjs")
    (tmp_path / "node_modules").symlink_to(E2E / "node_modules", target_is_directory=True)
    rc, _, err = run_node(tmp_path / "app.mjs", served, cwd=tmp_path, env={"SAPIOM_API_KEY": ""})
    assert rc == 0, err
    wait_for_completions(served, 3)
    assert all(shape(s) == PAID for s in steps_by_transaction(served).values())
    served.settle()
    urls = sorted(d["url"] for d in served.client.get("/_sim/deliveries").json["deliveries"])
    assert urls == [f"https://api.example.com/{p}" for p in ("analytics", "fulfillment", "inventory", "send-email")]
    assert served.client.get("/_sim/ledger?agent=my-agent").json["total"] == "0.00004"


# ---------------------------------------------------------------------------------------------------
# The 402 variants


def publish_spec(served: Served, receiver: Receiver, body: Any = None) -> dict[str, Any]:
    return {
        "method": "POST",
        "url": f"{served.url}/v1/qstash/publish/{receiver.url('/hook')}",
        "headers": {"Content-Type": "application/json"},
        "body": body if body is not None else {"hello": "world"},
    }


@pytest.mark.parametrize(
    ("variant", "settlement"),
    [("v2", "payment-response"), ("v2-header", "payment-response"), ("wrapped", "x-payment-response")],
)
def test_variants(sdk: tuple[Served, Receiver], variant: str, settlement: str) -> None:
    served, receiver = sdk
    served.client.post("/_sim/payment", json_body={"variant": variant})
    out = call(served, publish_spec(served, receiver))
    assert out["status"] == 200 and out["body"]["messageId"].startswith("msg_"), out
    assert settlement in out["headers"]
    wait_for_completions(served, 1)
    [steps] = steps_by_transaction(served).values()
    assert shape(steps) == PAID
    served.settle()
    assert [r["body"] for r in receiver.received] == [b'{"hello":"world"}']


# ---------------------------------------------------------------------------------------------------
# Authorization policies


def test_pending_then_authorized(sdk: tuple[Served, Receiver]) -> None:
    served, receiver = sdk
    # create: pending for one more GET (~1 s for the SDK); reauthorize: pending, settled by the first GET.
    served.client.post("/_sim/payment", json_body={"policy": {"create": {"pending": 1}, "reauthorize": {"pending": 0}}})
    out = call(served, publish_spec(served, receiver))
    assert out["status"] == 200, out
    wait_for_completions(served, 1)
    [steps] = steps_by_transaction(served).values()
    assert shape(steps) == [
        "createTransaction",
        "getTransaction",
        "getTransaction",  # pending, then authorized
        "GATEWAY/402",
        "reauthorizeTransaction",
        "getTransaction",  # pending payment, then authorized
        "GATEWAY/200",
        "completeTransaction",
    ]


def test_denied(sdk: tuple[Served, Receiver]) -> None:
    served, receiver = sdk
    served.client.post("/_sim/payment", json_body={"policy": {"create": "denied"}})
    out = call(served, publish_spec(served, receiver))
    assert out["error"]["name"] == "AuthorizationDeniedError", out
    [steps] = steps_by_transaction(served).values()
    assert [op for op, _, _ in steps] == ["createTransaction"]  # the request itself never went out
    served.settle()
    assert served.on_loop(lambda: served.sim.messages()) == [] and receiver.received == []


def test_budget_exhausted(sdk: tuple[Served, Receiver]) -> None:
    served, receiver = sdk
    served.client.post("/_sim/payment", json_body={"policy": {"budgets": {"agents": {"my-agent": "0.00001"}}}})
    rc, lines, err = run_node(E2E / "process_order.mjs", served, env={"DEST_BASE": f"http://127.0.0.1:{receiver.port}"})
    assert rc == 1, (lines, err)
    assert lines[0]["call"] == 1 and lines[0]["status"] == 200
    assert lines[-1]["call"] == 2 and lines[-1]["error"]["name"] == "AuthorizationDeniedError"
    wait_for_completions(served, 1)
    ledger = served.client.get("/_sim/ledger?agent=my-agent").json
    assert ledger["total"] == "0.00001" and [e["operation"] for e in ledger["entries"]] == ["publishMessage"]
    served.settle()
    assert [r["path"] for r in receiver.received] == ["/fulfillment"]


def test_replayed_payment_is_refused(sdk: tuple[Served, Receiver]) -> None:
    """After the SDK's paid call, sending its payment again (as an attacker or a buggy retry would) is a 402."""
    served, receiver = sdk
    out = call(served, publish_spec(served, receiver))
    assert out["status"] == 200
    wait_for_completions(served, 1)
    [tx] = served.on_loop(lambda: list(served.sim.sapiom.store))
    from qstash_sim.sapiom.x402 import b64json

    client: Client = served.client
    path = f"/v1/qstash/publish/{receiver.url('/hook')}"
    replay = client.post(
        path,
        body=b'{"hello":"world"}',
        headers={TX: tx.id, "X-PAYMENT": b64json(tx.payment.authorization_payload), "Content-Type": "application/json"},
    )
    assert replay.status == 402 and replay.json["error"] == "nonce_already_used"
    served.settle()
    assert len(receiver.received) == 1
    assert served.client.get("/_sim/ledger").json["total"] == "0.00001"


def test_off_mode_still_works_with_the_sdk(sdk: tuple[Served, Receiver]) -> None:
    """The default mode: no 402, the SDK still creates, sends with the transaction id, completes."""
    served, receiver = sdk
    served.client.post("/_sim/payment", json_body={"mode": "off"})
    out = call(served, publish_spec(served, receiver))
    assert out["status"] == 200
    wait_for_completions(served, 1)
    [steps] = steps_by_transaction(served).values()
    assert shape(steps) == ["createTransaction", "GATEWAY/200", "completeTransaction"]
    assert served.client.get("/_sim/ledger?agent=my-agent").json["total"] == "0.00001"
