"""The simulated Sapiom API (``/v1/transactions...``) and the gateway's payment layer, over a real socket.

Every answer goes through the contract-checking ``Client`` (``tests/conftest.py``): a status or body that
``openapi.yaml`` does not describe fails the test. The x402 flow is driven here "by hand", doing what
``@sapiom/fetch`` does (docs/sapiom-contract.md sections 3-6); ``test_sdk_e2e.py`` drives the real SDK.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from conftest import Answer, Client, Receiver, Served
from qstash_sim.cli import build_parser

KEY = "sk_test_alice"
OTHER = "sk_test_bob"
TX = "X-Sapiom-Transaction-Id"


# ---------------------------------------------------------------------------------------------------
# Helpers


def auth(key: str = KEY) -> dict[str, str]:
    return {"x-api-key": key}


def set_payment(client: Client, **body: Any) -> dict[str, Any]:
    r = client.post("/_sim/payment", json_body=body)
    assert r.status == 200, r.body
    return r.json


def create_tx(client: Client, url: str = "", *, agent: str = "my-agent", key: str = KEY, **extra: Any) -> dict:
    body = {
        "requestFacts": {"source": "http-client", "version": "v1", "request": {"method": "POST", "url": url}},
        "serviceName": "Messaging Publish",
        "agentName": agent,
        "metadata": {"preemptiveAuthorization": True},
        **extra,
    }
    r = client.post("/v1/transactions", json_body=body, headers=auth(key))
    assert r.status == 200, r.body
    return r.json


def b64(obj: Any) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def unb64(text: str) -> Any:
    return json.loads(base64.b64decode(text))


def extract_x402(answer: Answer) -> dict[str, Any]:
    """What the SDK pulls out of a 402: the body, the wrapped body's x402, or the PAYMENT-REQUIRED header."""
    body = answer.json
    if "x402Version" in body:
        return body
    if body.get("requiresPayment") is True and "paymentData" in body:
        return body["x402"]
    return unb64(answer.headers["PAYMENT-REQUIRED"])


def reauthorize(client: Client, tx_id: str, x402: Any, path: str, key: str = KEY) -> Answer:
    meta = {"originalRequest": {"url": path, "method": "POST"}, "httpStatusCode": 402}
    return client.post(
        f"/v1/transactions/{tx_id}/reauthorize", json_body={"x402": x402, "metadata": meta}, headers=auth(key)
    )


def payment_headers(tx_id: str, payload: Any) -> dict[str, str]:
    """The retry's headers, as @sapiom/fetch builds them (interceptors.js handlePayment)."""
    name = "PAYMENT-SIGNATURE" if isinstance(payload, dict) and payload.get("x402Version") == 2 else "X-PAYMENT"
    value = payload if isinstance(payload, str) else b64(payload)
    return {TX: tx_id, name: value, "Content-Type": "application/json"}


def publish_path(receiver: Receiver, hook: str = "/hook") -> str:
    return f"/v1/qstash/publish/{receiver.url(hook)}"


def sim_txs(client: Client, **query: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in query.items())
    return client.get("/_sim/transactions" + (f"?{qs}" if qs else "")).json["transactions"]


def messages(served: Served) -> list[Any]:
    return served.on_loop(lambda: served.sim.messages())


# ---------------------------------------------------------------------------------------------------
# Transactions: happy paths


def test_create_get_list(client: Client) -> None:
    tx = create_tx(client, "http://127.0.0.1:1/v1/qstash/publish/http://127.0.0.1:2/hook")
    assert tx["id"].startswith("tx_") and tx["status"] == "authorized"
    assert tx["serviceName"] == "Messaging Publish" and tx["requiresPayment"] is False
    assert KEY not in json.dumps(tx)  # the key is never echoed (organizationId is derived from it)
    got = client.get(f"/v1/transactions/{tx['id']}", headers=auth())
    assert got.status == 200 and got.json["id"] == tx["id"] and got.json["status"] == "authorized"
    # Bearer works as well as x-api-key, and names the same account.
    create_tx(client, serviceName="other")
    bearer = client.get("/v1/transactions", headers={"Authorization": f"Bearer {KEY}"})
    assert bearer.status == 200 and bearer.json["total"] == 2
    assert [t["serviceName"] for t in bearer.json["transactions"]] == ["other", "Messaging Publish"]  # newest first
    page = client.get("/v1/transactions?limit=1&offset=1", headers=auth()).json
    assert (page["total"], page["limit"], page["offset"], len(page["transactions"])) == (2, 1, 1, 1)
    assert page["transactions"][0]["id"] == tx["id"]
    only = client.get("/v1/transactions?serviceName=other&status=authorized", headers=auth()).json
    assert only["total"] == 1
    assert client.get("/v1/transactions?status=completed", headers=auth()).json["total"] == 0
    assert client.get("/v1/transactions?limit=0", headers=auth()).status == 400
    assert client.get("/v1/transactions?status=nope", headers=auth()).status == 400
    # Another account sees none of them.
    assert client.get("/v1/transactions", headers=auth(OTHER)).json["total"] == 0


def test_create_rejects_wrong_types(client: Client) -> None:
    r = client.post("/v1/transactions", json_body={"agentName": 5}, headers=auth())
    assert r.status == 400 and "agentName" in r.error
    assert client.post("/v1/transactions", body=b"", headers=auth()).status == 400


def test_complete_is_idempotent_and_recorded(client: Client) -> None:
    tx = create_tx(client)
    facts = {"source": "http-client", "version": "v1", "facts": {"status": 200, "statusText": "OK"}}
    first = client.post(
        f"/v1/transactions/{tx['id']}/complete",
        json_body={"outcome": "success", "responseFacts": facts},
        headers=auth(),
    )
    assert first.status == 200
    assert first.json["transaction"]["status"] == "completed" and first.json["transaction"]["outcome"] == "success"
    assert first.json["factId"].startswith("fact_")
    again = client.post(f"/v1/transactions/{tx['id']}/complete", json_body={"outcome": "error"}, headers=auth())
    assert again.status == 200 and again.json["transaction"]["status"] == "completed"
    [seen] = sim_txs(client)
    assert [c["outcome"] for c in seen["completions"]] == ["success", "error"]
    bad = client.post(f"/v1/transactions/{tx['id']}/complete", json_body={"outcome": "ok"}, headers=auth())
    assert bad.status == 400


def test_costs_and_facts(client: Client) -> None:
    tx = create_tx(client)
    est = client.post(
        f"/v1/transactions/{tx['id']}/costs",
        headers=auth(),
        json_body={"fiatAmount": "0.25", "fiatAssetSymbol": "USD", "isEstimate": True},
    )
    assert est.status == 200 and est.json["fiatAmount"] == "0.250000000000000000" and est.json["isActive"]
    final = client.post(
        f"/v1/transactions/{tx['id']}/costs",
        headers=auth(),
        json_body={"fiatAmount": "0.2", "supersedesCostId": est.json["id"]},
    )
    assert final.status == 200 and final.json["supersedesCostId"] == est.json["id"]
    costs = client.get(f"/v1/transactions/{tx['id']}", headers=auth()).json["costs"]
    assert [c["isActive"] for c in costs] == [False, True]
    assert (
        client.post(f"/v1/transactions/{tx['id']}/costs", headers=auth(), json_body={"fiatAmount": "lots"}).status
        == 400
    )
    fact = client.post(
        f"/v1/transactions/{tx['id']}/facts",
        headers=auth(),
        json_body={"source": "s", "version": "v1", "factPhase": "response", "facts": {"a": 1}},
    )
    assert fact.status == 200 and fact.json["success"] is True and fact.json["factId"].startswith("fact_")
    assert client.post(f"/v1/transactions/{tx['id']}/facts", headers=auth(), json_body={"facts": {}}).status == 400


# ---------------------------------------------------------------------------------------------------
# Auth and ownership


ENDPOINTS = [
    ("POST", "/v1/transactions", {}),
    ("GET", "/v1/transactions", None),
    ("GET", "/v1/transactions/{id}", None),
    ("POST", "/v1/transactions/{id}/reauthorize", {"x402": {}}),
    ("POST", "/v1/transactions/{id}/complete", {"outcome": "success"}),
    ("POST", "/v1/transactions/{id}/costs", {"fiatAmount": "1"}),
    ("POST", "/v1/transactions/{id}/facts", {"factPhase": "response"}),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_every_endpoint_needs_a_key(client: Client, method: str, path: str, body: Any) -> None:
    tx = create_tx(client)
    p = path.format(id=tx["id"])
    for headers in ({}, {"x-api-key": ""}, {"Authorization": "Bearer "}, {"Authorization": f"Basic {KEY}"}):
        r = client.request(method, p, json_body=body, headers=headers)
        assert r.status == 401 and "API key" in r.error, (headers, r.body)


@pytest.mark.parametrize(("method", "path", "body"), [e for e in ENDPOINTS if "{id}" in e[1]])
def test_unknown_or_foreign_transaction_is_404(client: Client, method: str, path: str, body: Any) -> None:
    tx = create_tx(client)
    for tx_id, key in (("tx_doesnotexist", KEY), (tx["id"], OTHER)):
        r = client.request(method, path.format(id=tx_id), json_body=body, headers=auth(key))
        assert r.status == 404 and "not found" in r.error


def test_api_key_allow_list(client: Client) -> None:
    assert set_payment(client, apiKeys=[KEY])["apiKeys"] == [KEY]
    assert client.post("/v1/transactions", json_body={}, headers=auth(OTHER)).status == 401
    assert client.post("/v1/transactions", json_body={}, headers=auth(KEY)).status == 200
    assert set_payment(client, apiKeys=[])["apiKeys"] == []
    assert client.post("/v1/transactions", json_body={}, headers=auth(OTHER)).status == 200


def test_cli_payment_options() -> None:
    args = build_parser().parse_args(
        ["serve", "--payment", "x402", "--payment-variant", "v2-header", "--api-key", "a", "--api-key", "b"]
    )
    assert (args.payment, args.payment_variant, args.api_key) == ("x402", "v2-header", ["a", "b"])
    defaults = build_parser().parse_args(["serve"])
    assert (defaults.payment, defaults.payment_variant, defaults.api_key) == ("off", "v1", [])
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--payment", "on"])


# ---------------------------------------------------------------------------------------------------
# Policies: pending, denied, budgets


def test_pending_for_n_polls_then_authorized(client: Client) -> None:
    set_payment(client, policy={"create": {"pending": 2}})
    tx = create_tx(client)
    assert tx["status"] == "pending"
    statuses = [client.get(f"/v1/transactions/{tx['id']}", headers=auth()).json["status"] for _ in range(4)]
    assert statuses == ["pending", "pending", "authorized", "authorized"]
    [seen] = sim_txs(client)
    assert seen["polls"] == 4 and [h["status"] for h in seen["history"]] == ["pending", "authorized"]


@pytest.mark.parametrize("status", ["denied", "cancelled"])
def test_create_denied(client: Client, status: str) -> None:
    set_payment(client, policy={"create": status})
    tx = create_tx(client)
    assert tx["status"] == status
    # The SDK completes denied transactions too (outcome error); they keep their status.
    done = client.post(f"/v1/transactions/{tx['id']}/complete", json_body={"outcome": "error"}, headers=auth())
    assert done.status == 200 and done.json["transaction"]["status"] == status


def test_policy_errors_are_400(client: Client) -> None:
    r = client.post("/_sim/payment", json_body={"policy": {"create": "maybe"}})
    assert r.status == 400 and "policy.create must be one of" in r.error
    assert client.post("/_sim/payment", json_body={"mode": "on"}).status == 400
    assert client.post("/_sim/payment", json_body={"colour": "red"}).status == 400
    assert client.get("/_sim/payment").json["mode"] == "off"  # nothing applied


def test_agent_budget_denies_once_spent(client: Client, served: Served, receiver: Receiver) -> None:
    set_payment(client, policy={"budgets": {"agents": {"my-agent": "0.00002"}}})
    for _ in range(2):  # off mode: the transaction header alone makes the charge the agent's
        tx = create_tx(client)
        assert tx["status"] == "authorized"
        r = client.post(publish_path(receiver), body=b"{}", headers={TX: tx["id"], "Content-Type": "application/json"})
        assert r.status == 200
    assert create_tx(client)["status"] == "denied"
    assert create_tx(client, agent="other-agent")["status"] == "authorized"
    reason = sim_txs(client, agent="my-agent")[-1]["history"][-1]["reason"]
    assert "agent 'my-agent' spent $0.00002 of its $0.00002 budget" in reason


def test_reauthorize_denied_returns_no_payment(client: Client, receiver: Receiver) -> None:
    set_payment(client, mode="x402", policy={"reauthorize": "denied"})
    tx = create_tx(client)
    first = client.post(publish_path(receiver), body=b"{}", headers={TX: tx["id"]})
    assert first.status == 402
    r = reauthorize(client, tx["id"], extract_x402(first), publish_path(receiver))
    assert r.status == 200 and r.json["status"] == "denied" and "payment" not in r.json


def test_reauthorize_pending_then_authorized_carries_the_payment(client: Client, receiver: Receiver) -> None:
    set_payment(client, mode="x402", policy={"reauthorize": {"pending": 1}})
    tx = create_tx(client)
    path = publish_path(receiver)
    r = reauthorize(client, tx["id"], extract_x402(client.post(path, body=b"{}", headers={TX: tx["id"]})), path)
    assert r.json["status"] == "pending" and r.json["payment"]["status"] == "pending"
    too_early = client.post(
        path, body=b"{}", headers=payment_headers(tx["id"], r.json["payment"]["authorizationPayload"])
    )
    assert too_early.status == 402 and too_early.json["error"] == "invalid_transaction_state"
    assert client.get(f"/v1/transactions/{tx['id']}", headers=auth()).json["status"] == "pending"
    polled = client.get(f"/v1/transactions/{tx['id']}", headers=auth()).json
    assert polled["status"] == "authorized" and polled["payment"]["status"] == "authorized"
    paid = client.post(path, body=b"{}", headers=payment_headers(tx["id"], polled["payment"]["authorizationPayload"]))
    assert paid.status == 200


# ---------------------------------------------------------------------------------------------------
# Reauthorize input


@pytest.mark.parametrize(
    ("x402", "fragment"),
    [
        ("nope", "body /x402"),
        ([1], "body /x402"),
        ({"x402Version": 1, "accepts": []}, "/x402/accepts must be a non-empty array"),
        ({"x402Version": 2, "accepts": [{"scheme": "exact"}]}, "/x402/resource must be an object"),
        ({"x402Version": 3, "accepts": [{}]}, "/x402/x402Version must be the number 1 or 2"),
    ],
)
def test_reauthorize_bad_x402_is_400(client: Client, x402: Any, fragment: str) -> None:
    tx = create_tx(client)
    r = reauthorize(client, tx["id"], x402, "/x")
    assert r.status == 400 and fragment in r.error
    missing = client.post(f"/v1/transactions/{tx['id']}/reauthorize", json_body={"metadata": {}}, headers=auth())
    assert missing.status == 400 and "x402" in missing.error
    assert client.get(f"/v1/transactions/{tx['id']}", headers=auth()).json.get("payment") is None


# ---------------------------------------------------------------------------------------------------
# The x402 flow by hand


@pytest.mark.parametrize("variant", ["v1", "v2", "v2-header", "wrapped"])
def test_x402_flow_by_hand(client: Client, served: Served, receiver: Receiver, variant: str) -> None:
    set_payment(client, mode="x402", variant=variant)
    path = publish_path(receiver)
    tx = create_tx(client, f"{served.url}{path}")
    body = b'{"type":"job.created","payload":{"id":"job_123"}}'
    # 1. The first call: 402 with the requirements, priced $0.00001 = 10 base units. No side effect.
    first = client.post(path, body=body, headers={TX: tx["id"], "Content-Type": "application/json"})
    assert first.status == 402
    x402 = extract_x402(first)
    req = x402["accepts"][0]
    assert req.get("maxAmountRequired", req.get("amount")) == "10"
    resource = x402["resource"]["url"] if x402["x402Version"] == 2 else req["resource"]
    assert resource == f"{served.url}{path}"
    if variant == "wrapped":
        assert first.json["transactionId"] == tx["id"]
    served.settle()
    assert messages(served) == [] and receiver.received == []
    # 2. Reauthorize: the simulated Sapiom API "signs" a PaymentPayload bound to the transaction.
    r = reauthorize(client, tx["id"], x402, f"{served.url}{path}")
    assert r.status == 200 and r.json["id"] == tx["id"] and r.json["status"] == "authorized"
    payload = r.json["payment"]["authorizationPayload"]
    assert payload["x402Version"] == (2 if variant in ("v2", "v2-header") else 1)
    # 3. The paid retry: 200, settlement header, one message delivered with exactly the bytes sent.
    retry = payment_headers(tx["id"], payload)
    paid = client.post(path, body=body, headers=retry)
    assert paid.status == 200 and paid.json["messageId"].startswith("msg_")
    name = "PAYMENT-RESPONSE" if payload["x402Version"] == 2 else "X-PAYMENT-RESPONSE"
    settlement = unb64(paid.headers[name])
    assert settlement["success"] is True and settlement["transaction"].startswith("0x")
    served.settle()
    assert [x["body"] for x in receiver.received] == [body]
    # 4. Replaying the same payment: 402 nonce_already_used, nothing new stored or charged.
    replay = client.post(path, body=body, headers=retry)
    assert replay.status == 402 and extract_x402(replay)["error"] == "nonce_already_used"
    assert len(messages(served)) == 1
    # The ledger: one publish for my-agent, against the key's account and the transaction.
    ledger = client.get("/_sim/ledger?agent=my-agent").json
    assert ledger["total"] == "0.00001" and ledger["agents"] == {"my-agent": "0.00001"}
    [entry] = ledger["entries"]
    assert (entry["account"], entry["transactionId"], entry["operation"]) == (KEY, tx["id"], "publishMessage")
    [seen] = sim_txs(client)
    assert [c["fiatAmount"] for c in seen["costs"]] == ["0.000010000000000000"]
    assert seen["payments"][0]["status"] == "settled"
    # The journal tells the story, per transaction.
    steps = [
        (e["operation"], e["status"], e["detail"].get("payment"))
        for e in client.get("/_sim/journal?kind=request").json["entries"]
        if e["detail"].get("transactionId") == tx["id"]
    ]
    assert steps == [
        ("createTransaction", 200, None),
        ("publishMessage", 402, "required"),
        ("reauthorizeTransaction", 200, None),
        ("publishMessage", 200, "paid"),
        ("publishMessage", 402, "rejected:nonce_already_used"),
    ]


def test_no_side_effect_on_402_and_400(client: Client, served: Served, receiver: Receiver) -> None:
    set_payment(client, mode="x402")
    path = publish_path(receiver)
    tx = create_tx(client)
    assert client.post(path, body=b"{}", headers={TX: tx["id"]}).status == 402
    assert client.post(path, body=b"{}").status == 402  # no transaction at all
    bad = client.post(path, body=b"{}", headers={TX: tx["id"], "X-PAYMENT": "payment-token-xyz"})
    assert bad.status == 400 and "X-PAYMENT header" in bad.error
    first = client.post(path, body=b"{}", headers={TX: tx["id"]})
    payload = reauthorize(client, tx["id"], extract_x402(first), path).json["payment"]["authorizationPayload"]
    tampered = json.loads(json.dumps(payload))
    tampered["payload"]["authorization"]["value"] = "999"
    forged = client.post(path, body=b"{}", headers=payment_headers(tx["id"], tampered))
    assert forged.status == 402 and forged.json["error"] == "invalid_exact_evm_payload_signature"
    assert unb64(forged.headers["X-PAYMENT-RESPONSE"])["success"] is False
    served.settle()
    assert messages(served) == [] and receiver.received == []
    assert client.get("/_sim/ledger").json["entries"] == []
    assert sim_txs(client)[0]["payments"][0]["status"] == "authorized"  # the real payment is still usable
    assert client.post(path, body=b"{}", headers=payment_headers(tx["id"], payload)).status == 200


def test_a_payment_is_released_when_the_call_fails_after_the_check(client: Client, served: Served) -> None:
    set_payment(client, mode="x402")
    tx = create_tx(client)
    path = "/v1/qstash/batch"
    items = json.dumps([{"destination": "ftp://127.0.0.1/x", "body": "{}"}]).encode()
    first = client.post(path, body=items, headers={TX: tx["id"], "Content-Type": "application/json"})
    assert first.status == 402
    payload = reauthorize(client, tx["id"], extract_x402(first), path).json["payment"]["authorizationPayload"]
    failed = client.post(path, body=items, headers=payment_headers(tx["id"], payload))
    assert failed.status == 400 and "destination" in failed.error
    assert sim_txs(client)[0]["payments"][0]["status"] == "authorized"
    assert client.get("/_sim/ledger").json["entries"] == []


def test_batch_is_priced_per_item_and_free_operations_never_402(client: Client, receiver: Receiver) -> None:
    set_payment(client, mode="x402")
    items = [{"destination": receiver.url(f"/{i}"), "body": "{}"} for i in range(3)]
    r = client.post("/v1/qstash/batch", json_body=items)
    assert r.status == 402 and r.json["accepts"][0]["maxAmountRequired"] == "30"
    mgmt = client.get("/v1/qstash/queues")
    assert mgmt.status == 402 and mgmt.json["accepts"][0]["maxAmountRequired"] == "1000"
    free = client.post(f"/v1/qstash/schedules/{receiver.url()}", body=b"{}", headers={"Upstash-Cron": "0 9 * * *"})
    assert free.status == 200


def test_transaction_mode(client: Client, served: Served, receiver: Receiver) -> None:
    set_payment(client, mode="transaction", policy={"create": {"pending": 0}})
    path = publish_path(receiver)
    none = client.post(path, body=b"{}")
    assert none.status == 402 and none.json["error"] == "missing_transaction_id"
    tx = create_tx(client)
    assert tx["status"] == "pending"
    early = client.post(path, body=b"{}", headers={TX: tx["id"]})
    assert early.status == 402 and early.json["error"] == "invalid_transaction_state"
    assert client.get(f"/v1/transactions/{tx['id']}", headers=auth()).json["status"] == "authorized"
    ok = client.post(path, body=b"{}", headers={TX: tx["id"]})
    assert ok.status == 200 and "X-PAYMENT-RESPONSE" not in ok.headers
    assert client.get("/_sim/ledger?agent=my-agent").json["total"] == "0.00001"


# ---------------------------------------------------------------------------------------------------
# Accounts on the gateway; control endpoints


def test_gateway_account_comes_from_the_transaction_then_the_key(client: Client, receiver: Receiver) -> None:
    path = publish_path(receiver)
    tx = create_tx(client, agent="agent-a")
    assert client.post(path, body=b"{}", headers={TX: tx["id"]}).status == 200
    assert client.post(path, body=b"{}", headers={"x-api-key": OTHER}).status == 200
    unknown = client.post(path, body=b"{}", headers={TX: "tx_unknown"})  # names no transaction: not served
    assert (
        unknown.status == 404 and unknown.error == "transaction tx_unknown not found (header X-Sapiom-Transaction-Id)"
    )
    state = client.get("/_sim/state").json["accounts"]
    assert {k: len(v["messages"]) for k, v in state.items()} == {KEY: 1, OTHER: 1}
    ledger = client.get("/_sim/ledger").json
    assert ledger["accounts"] == {KEY: "0.00001", OTHER: "0.00001"}
    assert ledger["agents"] == {"agent-a": "0.00001"}
    assert [e["transactionId"] for e in ledger["entries"]] == [tx["id"], None]
    assert client.get("/_sim/ledger?agent=agent-a").json["total"] == "0.00001"


def test_a_transaction_id_never_overrides_the_callers_own_key(client: Client, receiver: Receiver) -> None:
    """H2: with a key, only the key's own transactions count; another account's id is a 404 everywhere."""
    path = publish_path(receiver)
    tx_a = create_tx(client, agent="agent-a")  # created with KEY
    mid = client.post(path, body=b"{}", headers={"x-api-key": KEY, "Upstash-Delay": "1h"}).json["messageId"]
    other = {"x-api-key": OTHER, TX: tx_a["id"]}
    for method, url in (
        ("GET", f"/v1/qstash/messages/{mid}"),
        ("DELETE", f"/v1/qstash/messages/{mid}"),
        ("POST", path),
        ("GET", "/v1/qstash/queues"),
    ):
        r = client.request(method, url, body=b"{}" if method == "POST" else None, headers=other)
        assert r.status == 404 and "transaction" in r.error, (method, url, r.status)
    # the same answer for an id that does not exist: a caller cannot tell someone else's from nothing
    assert client.get(f"/v1/qstash/messages/{mid}", headers={"x-api-key": OTHER, TX: "tx_nope"}).status == 404
    own = client.get(f"/v1/qstash/messages/{mid}", headers={"x-api-key": KEY, TX: tx_a["id"]})
    assert own.status == 200 and own.json["state"] == "pending"
    # without credentials (what @sapiom/fetch sends the gateway) the id names its account
    assert client.get(f"/v1/qstash/messages/{mid}", headers={TX: tx_a["id"]}).status == 200
    assert client.get(f"/_sim/state?account={OTHER}").json["accounts"] == {}


def test_payment_control_and_reset(client: Client, served: Served) -> None:
    got = client.get("/_sim/payment").json
    assert got == {"mode": "off", "variant": "v1", "strictHeaders": False, "policy": {}, "apiKeys": []}
    changed = set_payment(client, mode="x402", variant="wrapped", strictHeaders=True, policy={"create": "denied"})
    assert (changed["mode"], changed["variant"], changed["strictHeaders"]) == ("x402", "wrapped", True)
    assert changed["policy"] == {"create": "denied"}
    create_tx(client)
    assert len(sim_txs(client)) == 1
    # Reset forgets the transactions and restores the start-up settings.
    assert client.post("/_sim/reset", json_body={}).status == 200
    assert client.get("/_sim/payment").json["mode"] == "off" and sim_txs(client) == []
    # A configured baseline survives a reset.
    served.on_loop(lambda: served.sim.sapiom.configure(mode="x402", variant="v2"))
    set_payment(client, mode="transaction")
    client.post("/_sim/reset", json_body={})
    assert (client.get("/_sim/payment").json["mode"], served.sim.sapiom.settings.variant.value) == ("x402", "v2")


def test_same_seed_same_transaction_ids(client: Client) -> None:
    ids = []
    for _ in range(2):
        client.post("/_sim/reset", json_body={"seed": 5})
        ids.append([create_tx(client)["id"] for _ in range(2)])
    assert ids[0] == ids[1]


def test_scenario_rules_see_the_transactions_account(client: Client) -> None:
    """The key never reaches the gateway: a rule on ``match.account`` must see the transaction's account."""
    scenario = {
        "name": "alice-down",
        "rules": [
            {
                "name": "alice-503",
                "match": {"account": KEY, "operation": "publishMessage"},
                "action": {"respond": {"status": 503, "message": "alice is throttled"}},
            }
        ],
    }
    assert client.post("/_sim/scenarios", json_body=scenario).status == 200
    tx = create_tx(client)
    r = client.post("/v1/qstash/publish/https://example.com/a", body=b"{}", headers={TX: tx["id"]})
    assert r.status == 503 and r.error == "alice is throttled"
    other = create_tx(client, key=OTHER)
    assert client.post("/v1/qstash/publish/https://example.com/a", body=b"{}", headers={TX: other["id"]}).status == 200
    entries = client.get("/_sim/journal?kind=request").json["entries"]
    fired = [e for e in entries if e["operation"] == "publishMessage"]
    assert [(e["account"], e["rule"]) for e in fired] == [(KEY, "alice-down/alice-503"), (OTHER, None)]


def test_api_keys_guard_the_sapiom_api_not_the_gateway(client: Client) -> None:
    """L3: --api-key (apiKeys) is the Sapiom API's allow-list; gateway calls name their account by key and are
    not refused for an unknown one (the README says so exactly)."""
    set_payment(client, apiKeys=[KEY])
    assert client.post("/v1/transactions", json_body={}, headers=auth(OTHER)).status == 401
    assert client.post("/v1/qstash/publish/https://example.com/x", body=b"x", headers=auth(OTHER)).status == 200
