"""Prices, transactions, the authorization policy, x402 402s and payment verification.

Pure logic: no sockets, no sleeps. ``sdk_extract`` below is a line-by-line port of ``@sapiom/core``
0.3.0 ``HttpErrorDetector.extractX402``/``extractResource``, so that each 402 variant is checked
against what the real SDK will accept (docs/sapiom-contract.md section 4).
"""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest

from qstash_sim.api.sapiom_wire import complete_to_json, transaction_to_json
from qstash_sim.base.clock import format_ms as iso_time
from qstash_sim.base.seed import Seed
from qstash_sim.domain.ledger import Ledger, LedgerEntry
from qstash_sim.errors import BadRequest, ConfigError, Conflict, NotFound, PaymentRequired
from qstash_sim.sapiom.paygate import PaymentGate, PaymentOK, PaymentRejected, PaymentSettings, verify_payment
from qstash_sim.sapiom.policy import AuthorizationPolicy, PolicyStep
from qstash_sim.sapiom.prices import GATEWAY_OPERATIONS, price, price_base_units
from qstash_sim.sapiom.records import PaymentMode, PaymentStatus, TransactionStatus
from qstash_sim.sapiom.transactions import TransactionStore
from qstash_sim.sapiom.x402 import PaymentTerms, X402Variant, b64json, b64json_decode, build_challenge

NOW = 1_790_000_000_000  # ms
SIM = "http://127.0.0.1:8080"
HOOK = "http://127.0.0.1:9999/hook"
URL = f"{SIM}/v1/qstash/publish/{HOOK}"
TX = "X-Sapiom-Transaction-Id"


# ---------------------------------------------------------------------------------------------------
# The SDK's 402 detection, ported


def _is_x402(data: Any) -> bool:
    if not isinstance(data, dict) or "x402Version" not in data or "accepts" not in data:
        return False
    if not isinstance(data["accepts"], list):
        return False
    if data["x402Version"] == 2 and type(data["x402Version"]) is int:
        res = data.get("resource")
        if not isinstance(res, dict) or not isinstance(res.get("url"), str):
            return False
    return True


def _resource_of(obj: dict[str, Any]) -> Any:
    if obj["x402Version"] == 2 and type(obj["x402Version"]) is int and obj.get("resource", {}).get("url"):
        return obj["resource"]["url"]
    first = obj["accepts"][0] if obj["accepts"] else None
    if isinstance(first, dict) and "resource" in first:
        return first["resource"] or None  # `|| request?.url`: the fetch adapter passes no request
    return None


def sdk_extract(body: Any, headers: dict[str, str]) -> tuple[dict[str, Any] | None, Any]:
    """(x402 object, resource) as @sapiom/core 0.3.0 sees a 402; the SDK pays iff both are truthy."""
    low = {k.lower(): v for k, v in headers.items()}
    header_obj = None
    if "payment-required" in low:
        try:
            parsed = json.loads(base64.b64decode(low["payment-required"]).decode())
            header_obj = parsed if _is_x402(parsed) else None
        except ValueError:
            header_obj = None
    if _is_x402(body):
        x402 = body
    elif isinstance(body, dict) and body.get("requiresPayment") is True and "paymentData" in body and body.get("x402"):
        x402 = body["x402"]
    else:
        x402 = header_obj
    if _is_x402(body):
        resource = _resource_of(body)
    elif header_obj is not None:
        resource = _resource_of(header_obj)
    else:
        resource = "unknown"
    return x402, resource


# ---------------------------------------------------------------------------------------------------
# Helpers


def make(mode: PaymentMode = PaymentMode.X402, variant: X402Variant = X402Variant.V1, **policy: Any):
    ledger = Ledger()
    store = TransactionStore(Seed(7), ledger=ledger, policy=AuthorizationPolicy.from_dict(policy or None))
    gate = PaymentGate(store, PaymentSettings(mode=mode, variant=variant))
    return store, gate, ledger


def create(store: TransactionStore, agent: str = "my-agent", account: str = "acct", now: int = NOW):
    body = {
        "requestFacts": {"source": "http-client", "version": "v1", "request": {"method": "POST", "url": URL}},
        "agentName": agent,
        "metadata": {"preemptiveAuthorization": True},
    }
    return store.create(account, body, now)


def first_402(gate: PaymentGate, tx_id: str | None, operation: str = "publishMessage", quantity: int = 1):
    headers = {TX: tx_id} if tx_id else {}
    with pytest.raises(PaymentRequired) as info:
        gate.check(headers, operation=operation, resource_url=URL, now_ms=NOW, quantity=quantity)
    assert type(info.value) is PaymentRequired  # not a rejection: no payment was presented
    return info.value


def paid(store: TransactionStore, gate: PaymentGate, tx_id: str, now: int = NOW) -> dict[str, str]:
    """Do what the SDK does after a 402: extract, reauthorize, build the retry's headers."""
    err = first_402(gate, tx_id)
    x402, resource = sdk_extract(err.body, err.headers)
    assert x402 is not None and resource
    meta = {"originalRequest": {"url": URL, "method": "POST"}, "httpStatusCode": 402}
    tx = store.reauthorize(tx_id, x402, meta, now)
    return retry_headers(tx_id, tx.payment.authorization_payload if tx.payment else None)


def retry_headers(tx_id: str, p: Any) -> dict[str, str]:
    value = p if isinstance(p, str) else b64json(p)
    name = "PAYMENT-SIGNATURE" if isinstance(p, dict) and p.get("x402Version") == 2 else "X-PAYMENT"
    return {TX: tx_id, name: value, "Content-Type": "application/json"}


def tamper(headers: dict[str, str], edit) -> dict[str, str]:
    name = "PAYMENT-SIGNATURE" if "PAYMENT-SIGNATURE" in headers else "X-PAYMENT"
    payload = b64json_decode(headers[name])
    edit(payload)
    return {**headers, name: b64json(payload)}


def rejected(gate: PaymentGate, headers: dict[str, str], now: int = NOW) -> PaymentRejected:
    with pytest.raises(PaymentRejected) as info:
        gate.check(headers, operation="publishMessage", resource_url=URL, now_ms=now)
    return info.value


# ---------------------------------------------------------------------------------------------------
# Prices


def test_every_gateway_operation_is_priced() -> None:
    assert len(GATEWAY_OPERATIONS) == 16
    assert price_base_units("publishMessage") == 10
    assert price_base_units("enqueueMessage") == 10
    assert price_base_units("batchMessages", 3) == 30
    assert price("batchMessages", 2) == Decimal("0.00002")
    assert price_base_units("createSchedule") == 0
    for op in (
        "getMessage",
        "cancelMessage",
        "listQueues",
        "getQueue",
        "deleteQueue",
        "pauseQueue",
        "resumeQueue",
        "listSchedules",
        "getSchedule",
        "deleteSchedule",
        "pauseSchedule",
        "resumeSchedule",
    ):
        assert price_base_units(op) == 1000, op


def test_unknown_operation_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="publishMessage"):
        price("publish")


# ---------------------------------------------------------------------------------------------------
# 402 shapes


def test_v1_challenge_is_the_spec_example() -> None:
    ch = build_challenge("v1", 1000, URL, "QStash publish")
    assert ch.headers == {}
    assert ch.body == {
        "x402Version": 1,
        "error": "X-PAYMENT header is required",
        "accepts": [
            {
                "scheme": "exact",
                "network": "base-sepolia",
                "maxAmountRequired": "1000",
                "resource": URL,
                "description": "QStash publish",
                "mimeType": "application/json",
                "payTo": "0x1111111111111111111111111111111111111111",
                "maxTimeoutSeconds": 60,
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "extra": {"name": "USDC", "version": "2"},
            }
        ],
    }


def test_v2_challenge_is_the_spec_example() -> None:
    ch = build_challenge("v2", 1000, URL, "QStash publish")
    assert ch.body == {
        "x402Version": 2,
        "error": "PAYMENT-SIGNATURE header is required",
        "resource": {"url": URL, "description": "QStash publish", "mimeType": "application/json"},
        "accepts": [
            {
                "scheme": "exact",
                "network": "eip155:84532",
                "amount": "1000",
                "asset": "0x036CbD53842c5426634e7929541eC2318f3dCF7e",
                "payTo": "0x1111111111111111111111111111111111111111",
                "maxTimeoutSeconds": 60,
                "extra": {"name": "USDC", "version": "2"},
            }
        ],
    }


def test_v2_header_challenge_has_an_empty_body_and_a_padded_base64_header() -> None:
    ch = build_challenge("v2-header", 1000, URL, "QStash publish")
    assert ch.body == {}
    raw = ch.headers["PAYMENT-REQUIRED"]
    assert len(raw) % 4 == 0 and "-" not in raw and "_" not in raw
    assert json.loads(base64.b64decode(raw, validate=True)) == build_challenge("v2", 1000, URL, "QStash publish").body


def test_wrapped_challenge_carries_a_v1_object() -> None:
    ch = build_challenge("wrapped", 1000, URL, "QStash publish", transaction_id="tx_1")
    assert ch.body["requiresPayment"] is True
    assert ch.body["transactionId"] == "tx_1"
    assert ch.body["paymentData"] == {"protocol": "x402", "amount": "1000"}
    assert ch.body["x402"] == build_challenge("v1", 1000, URL, "QStash publish").body
    assert list(ch.body) == ["requiresPayment", "transactionId", "paymentData", "x402"]


@pytest.mark.parametrize("variant", list(X402Variant))
def test_every_variant_is_one_the_sdk_pays(variant: X402Variant) -> None:
    ch = build_challenge(variant, 10, URL, "QStash publish", transaction_id="tx_1")
    x402, resource = sdk_extract(ch.body, ch.headers)
    assert x402 == ch.x402
    assert resource == URL or (variant is X402Variant.WRAPPED and resource == "unknown")


@pytest.mark.parametrize(
    ("body", "headers", "pays"),
    [
        ({"x402Version": 1, "accepts": [{"resource": "http://r"}]}, {}, True),
        ({"x402Version": 1, "accepts": []}, {}, False),
        ({"x402Version": 1, "accepts": [{"scheme": "exact"}]}, {}, False),
        ({"x402Version": 1, "accepts": [{"resource": ""}]}, {}, False),
        ({"x402Version": 2, "resource": {"url": "http://r"}, "accepts": []}, {}, True),
        ({"x402Version": 2, "accepts": [{"resource": "http://r"}]}, {}, False),
        ({}, {"payment-required": b64json({"x402Version": 2, "resource": {"url": "http://r"}, "accepts": []})}, True),
        ({}, {"payment-required": "not base64!"}, False),
        ({"requiresPayment": True, "paymentData": {}, "x402": {"x402Version": 1}}, {}, True),
        ({"requiresPayment": True, "x402": {"x402Version": 1}}, {}, False),
        ({"x402Version": "2", "accepts": [{"resource": "http://r"}]}, {}, True),
    ],
)
def test_the_ported_detector_reproduces_the_contract_truth_table(body: Any, headers: dict, pays: bool) -> None:
    x402, resource = sdk_extract(body, headers)
    assert bool(x402 and resource) is pays


# ---------------------------------------------------------------------------------------------------
# The whole paid round trip, per variant


@pytest.mark.parametrize("variant", list(X402Variant))
def test_paid_round_trip(variant: X402Variant) -> None:
    store, gate, _ = make(variant=variant)
    tx = create(store)
    assert tx.status is TransactionStatus.AUTHORIZED
    headers = paid(store, gate, tx.id)
    assert ("PAYMENT-SIGNATURE" in headers) is (variant.version == 2)
    ok = gate.check(headers, operation="publishMessage", resource_url=URL, now_ms=NOW + 50)
    assert ok.amount == 10 and ok.transaction is tx and ok.account == "acct" and ok.agent == "my-agent"
    name = "PAYMENT-RESPONSE" if variant.version == 2 else "X-PAYMENT-RESPONSE"
    settle = b64json_decode(ok.headers[name])
    assert settle["success"] is True and settle["transaction"].startswith("0x") and len(settle["transaction"]) == 66
    assert settle["payer"] == tx.payment.payer
    ok.commit(NOW + 60)
    assert tx.payment.status is PaymentStatus.SETTLED
    assert [c.fiat_amount for c in tx.costs] == [Decimal("0.00001")]
    # Replaying the same retry is refused, and names the reason.
    err = rejected(gate, headers, NOW + 70)
    assert err.reason == "nonce_already_used" and err.status == 402
    assert sdk_extract(err.body, err.headers)[0]["error"] == "nonce_already_used"


def test_payload_is_ascii_and_bound_to_the_transaction() -> None:
    store, gate, _ = make()
    tx = create(store)
    paid(store, gate, tx.id)
    p = tx.payment.authorization_payload
    json.dumps(p, ensure_ascii=False).encode("ascii")
    auth = p["payload"]["authorization"]
    assert p["x402Version"] == 1 and p["scheme"] == "exact" and p["network"] == "base-sepolia"
    assert auth["to"] == PaymentTerms().pay_to and auth["value"] == "10"
    assert len(auth["nonce"]) == 66 and auth["nonce"] == tx.payment.nonce
    assert int(auth["validBefore"]) - int(auth["validAfter"]) == 60 and int(auth["validAfter"]) == NOW // 1000


def test_v2_payload_echoes_the_accepted_requirement() -> None:
    store, gate, _ = make(variant=X402Variant.V2)
    tx = create(store)
    paid(store, gate, tx.id)
    p = tx.payment.authorization_payload
    assert p["x402Version"] == 2 and p["resource"]["url"] == URL and p["extensions"] == {}
    assert p["accepted"] == gate.challenge("publishMessage", URL).accepts[0]


def test_batch_price_follows_the_item_count() -> None:
    store, gate, _ = make()
    tx = create(store)
    err = first_402(gate, tx.id, "batchMessages", quantity=2)
    assert err.body["accepts"][0]["maxAmountRequired"] == "20"


def test_same_seed_same_ids_and_payloads() -> None:
    runs = []
    for _ in range(2):
        store, gate, _ = make()
        tx = create(store)
        runs.append((tx.id, paid(store, gate, tx.id)))
    assert runs[0] == runs[1]


# ---------------------------------------------------------------------------------------------------
# Each check of the paid retry


def test_missing_header_gives_the_challenge_itself() -> None:
    store, gate, _ = make()
    tx = create(store)
    err = first_402(gate, tx.id)
    assert err.body == gate.challenge("publishMessage", URL).body
    assert err.body["error"] == "X-PAYMENT header is required"


def test_header_name_is_case_insensitive() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = paid(store, gate, tx.id)
    lower = {k.lower(): v for k, v in h.items()}
    assert gate.check(lower, operation="publishMessage", resource_url=URL, now_ms=NOW).payment is tx.payment


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("payment-token-xyz", "not standard base64"),  # an opaque string payload, as Sapiom's tests use
        (base64.b64encode(b"\xff\xfe").decode(), "not UTF-8"),
        (base64.b64encode(b"{nope").decode(), "not JSON"),
        (b64json([1, 2]), "must decode to a JSON object"),
        (b64json("payment-token-xyz"), "must decode to a JSON object"),
    ],
)
def test_undecodable_payment_is_a_400_that_burns_nothing(value: str, fragment: str) -> None:
    store, gate, _ = make()
    tx = create(store)
    paid(store, gate, tx.id)
    with pytest.raises(BadRequest, match=fragment) as info:
        gate.check({TX: tx.id, "X-PAYMENT": value}, operation="publishMessage", resource_url=URL, now_ms=NOW)
    assert "X-PAYMENT header" in info.value.message
    assert tx.payment.status is PaymentStatus.AUTHORIZED and not tx.payment.reserved


def test_wrong_version() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = tamper(paid(store, gate, tx.id), lambda p: p.update(x402Version=2))
    err = rejected(gate, h)
    assert err.reason == "invalid_x402_version" and "/x402Version must be 1" in err.message


def test_wrong_scheme_and_network() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = paid(store, gate, tx.id)
    assert rejected(gate, tamper(h, lambda p: p.update(scheme="upto"))).reason == "invalid_scheme"
    assert rejected(gate, tamper(h, lambda p: p.update(network="base"))).reason == "invalid_network"


def test_v2_accepted_and_resource_must_match() -> None:
    store, gate, _ = make(variant=X402Variant.V2)
    tx = create(store)
    h = paid(store, gate, tx.id)
    err = rejected(gate, tamper(h, lambda p: p["accepted"].update(amount="1")))
    assert err.reason == "invalid_payment_requirements" and "/accepted" in err.message
    err = rejected(gate, tamper(h, lambda p: p["resource"].update(url="http://elsewhere/")))
    assert err.reason == "invalid_payment_requirements" and "/resource/url" in err.message
    # The v2-header rejection re-encodes the reason in PAYMENT-REQUIRED.
    store, gate, _ = make(variant=X402Variant.V2_HEADER)
    tx = create(store)
    err = rejected(gate, tamper(paid(store, gate, tx.id), lambda p: p["resource"].update(url="http://x/")))
    assert err.body == {} and b64json_decode(err.headers["PAYMENT-REQUIRED"])["error"] == err.reason


def test_wrong_pay_to() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = tamper(paid(store, gate, tx.id), lambda p: p["payload"]["authorization"].update(to="0x" + "2" * 40))
    err = rejected(gate, h)
    assert err.reason == "invalid_exact_evm_payload_recipient_mismatch"
    assert "/payload/authorization/to must be" in err.message
    failure = b64json_decode(err.headers["X-PAYMENT-RESPONSE"])
    assert failure["success"] is False and failure["errorReason"] == err.reason


def test_amount_too_low() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = tamper(paid(store, gate, tx.id), lambda p: p["payload"]["authorization"].update(value="9"))
    err = rejected(gate, h)
    assert err.reason == "invalid_exact_evm_payload_authorization_value" and "at least 10" in err.message


def test_expired_and_not_yet_valid() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = paid(store, gate, tx.id)
    assert rejected(gate, h, NOW + 60_000).reason == "invalid_exact_evm_payload_authorization_valid_before"
    assert rejected(gate, h, NOW - 1_000).reason == "invalid_exact_evm_payload_authorization_valid_after"
    ok = gate.check(h, operation="publishMessage", resource_url=URL, now_ms=NOW + 59_999)  # last valid instant
    assert ok.payment is tx.payment


def test_forged_value_fails_the_signature() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = tamper(paid(store, gate, tx.id), lambda p: p["payload"]["authorization"].update(value="999999"))
    assert rejected(gate, h).reason == "invalid_exact_evm_payload_signature"


def test_nonce_from_another_transaction() -> None:
    store, gate, _ = make()
    a, b = create(store), create(store)
    ha = paid(store, gate, a.id)
    paid(store, gate, b.id)
    err = rejected(gate, {**ha, TX: b.id})
    assert err.reason == "nonce_mismatch" and b.id in err.message


def test_transaction_header_is_required_and_must_exist() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = paid(store, gate, tx.id)
    assert rejected(gate, {k: v for k, v in h.items() if k != TX}).reason == "missing_transaction_id"
    assert rejected(gate, {**h, TX: "tx_nope"}).reason == "unknown_transaction"


def test_string_payload_under_x_payment_is_accepted_when_it_is_base64_json() -> None:
    """An opaque-string authorizationPayload always travels as X-PAYMENT, even for v2 (lenient)."""
    store, gate, _ = make(variant=X402Variant.V2)
    tx = create(store)
    h = paid(store, gate, tx.id)
    moved = {TX: tx.id, "X-PAYMENT": h["PAYMENT-SIGNATURE"]}
    assert gate.check(moved, operation="publishMessage", resource_url=URL, now_ms=NOW).payment is tx.payment
    strict = PaymentGate(store, PaymentSettings(mode=PaymentMode.X402, variant=X402Variant.V2, strict_headers=True))
    tx2 = create(store)
    h2 = paid(store, strict, tx2.id)
    with pytest.raises(PaymentRejected, match="must be sent in PAYMENT-SIGNATURE"):
        strict.check(
            {TX: tx2.id, "X-PAYMENT": h2["PAYMENT-SIGNATURE"]}, operation="publishMessage", resource_url=URL, now_ms=NOW
        )


def test_failed_checks_have_no_side_effect_and_release_gives_the_payment_back() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = paid(store, gate, tx.id)
    rejected(gate, tamper(h, lambda p: p["payload"]["authorization"].update(value="1")))
    assert tx.payment.status is PaymentStatus.AUTHORIZED and not tx.payment.reserved
    ok = gate.check(h, operation="publishMessage", resource_url=URL, now_ms=NOW)
    # While verified and not yet committed, a concurrent copy is a replay.
    assert rejected(gate, h).reason == "nonce_already_used"
    ok.release()  # e.g. the QStash layer answered 400 after the check
    assert tx.costs == []
    gate.check(h, operation="publishMessage", resource_url=URL, now_ms=NOW).commit(NOW)
    assert tx.payment.status is PaymentStatus.SETTLED and len(tx.costs) == 1


def test_verify_payment_works_without_a_gate() -> None:
    store, gate, _ = make()
    tx = create(store)
    h = paid(store, gate, tx.id)
    ch = gate.challenge("publishMessage", URL)
    ok = verify_payment(h, store.find, ch, NOW, secret=store.secret)
    assert isinstance(ok, PaymentOK) and ok.headers
    with pytest.raises(PaymentRejected, match="signature"):
        verify_payment({**h, TX: tx.id}, store.find, ch, NOW, secret="another secret")


# ---------------------------------------------------------------------------------------------------
# Modes


def test_off_mode_serves_without_payment_and_still_attaches_the_cost() -> None:
    store, gate, _ = make(mode=PaymentMode.OFF)
    tx = create(store)
    ok = gate.check({TX: tx.id}, operation="publishMessage", resource_url=URL, now_ms=NOW)
    assert ok.payment is None and ok.headers == {}
    ok.commit(NOW)
    assert len(tx.costs) == 1
    anonymous = gate.check({}, operation="getQueue", resource_url=URL, now_ms=NOW)
    assert anonymous.transaction is None and anonymous.amount == 1000


def test_free_operation_never_needs_payment() -> None:
    _, gate, _ = make()
    ok = gate.check({}, operation="createSchedule", resource_url=URL, now_ms=NOW)
    assert ok.amount == 0
    ok.commit(NOW)


def test_transaction_mode() -> None:
    store, gate, _ = make(mode=PaymentMode.TRANSACTION, create={"pending": 1})
    tx = create(store)
    assert first_402(gate, None).body["error"] == "missing_transaction_id"
    assert first_402(gate, tx.id).body["error"] == "invalid_transaction_state"
    store.poll(tx.id, NOW)
    store.poll(tx.id, NOW)
    assert tx.status is TransactionStatus.AUTHORIZED
    assert gate.check({TX: tx.id}, operation="publishMessage", resource_url=URL, now_ms=NOW).transaction is tx


def test_modes_parse() -> None:
    assert PaymentMode.parse("x402") is PaymentMode.X402
    with pytest.raises(ValueError, match="off, x402, transaction"):
        PaymentMode.parse("on")
    with pytest.raises(ValueError, match="v2-header"):
        X402Variant.parse("v3")


# ---------------------------------------------------------------------------------------------------
# Policies


def test_create_pending_for_n_polls_then_authorized() -> None:
    store, _, _ = make(create={"pending": 2})
    tx = create(store)
    seen = [tx.status] + [store.poll(tx.id, NOW + i).status for i in range(1, 4)]
    assert [s.value for s in seen] == ["pending", "pending", "pending", "authorized"]
    assert tx.polls == 3 and tx.authorized_ms == NOW + 3


def test_create_pending_then_denied() -> None:
    store, _, _ = make(create={"status": "preparing", "polls": 0, "then": "denied"})
    tx = create(store)
    assert tx.status is TransactionStatus.PREPARING
    assert store.poll(tx.id, NOW).status is TransactionStatus.DENIED


@pytest.mark.parametrize("status", ["denied", "cancelled"])
def test_create_denied_or_cancelled(status: str) -> None:
    store, _, _ = make(create=status)
    assert create(store).status.value == status


def test_agent_budget_denies_creates_once_spent() -> None:
    store, _, ledger = make(budgets={"agents": {"my-agent": "0.00002"}})
    for _ in range(2):
        tx = create(store)
        assert tx.status is TransactionStatus.AUTHORIZED
        ledger.charge(LedgerEntry(NOW, "acct", "publishMessage", 1, Decimal("0.00001"), agent="my-agent"))
    denied = create(store)
    assert denied.status is TransactionStatus.DENIED
    assert "agent 'my-agent' spent $0.00002 of its $0.00002 budget" in denied.history[-1].reason
    assert create(store, agent="other").status is TransactionStatus.AUTHORIZED


def test_account_budget_and_reauthorize_overrun() -> None:
    store, gate, ledger = make(budgets={"accounts": {"acct": "0.001"}})
    ledger.charge(LedgerEntry(NOW, "acct", "getQueue", 1, Decimal("0.0009995")))
    tx = create(store)
    assert tx.status is TransactionStatus.AUTHORIZED
    err = first_402(gate, tx.id)
    store.reauthorize(tx.id, err.body, None, NOW)  # 0.0009995 + 0.00001 > 0.001
    assert tx.status is TransactionStatus.DENIED and tx.payment is None
    assert create(store, account="other").status is TransactionStatus.AUTHORIZED


def test_reauthorize_pending_then_authorized_carries_the_payment() -> None:
    store, gate, _ = make(reauthorize={"pending": 1})
    tx = create(store)
    h = paid(store, gate, tx.id)
    assert tx.status is TransactionStatus.PENDING and tx.payment.status is PaymentStatus.PENDING
    assert rejected(gate, h).reason == "invalid_transaction_state"
    assert store.poll(tx.id, NOW).status is TransactionStatus.PENDING
    polled = store.poll(tx.id, NOW)
    assert polled.status is TransactionStatus.AUTHORIZED
    assert transaction_to_json(polled)["payment"]["authorizationPayload"] == tx.payment.authorization_payload
    gate.check(h, operation="publishMessage", resource_url=URL, now_ms=NOW).commit(NOW)


def test_reauthorize_denied() -> None:
    store, gate, _ = make(reauthorize="denied")
    tx = create(store)
    err = first_402(gate, tx.id)
    assert store.reauthorize(tx.id, err.body, None, NOW).status is TransactionStatus.DENIED
    assert "payment" not in transaction_to_json(tx)


def test_policy_overrides_per_call() -> None:
    store, _, _ = make()
    tx = store.create("acct", {}, NOW, policy=AuthorizationPolicy(create=PolicyStep(TransactionStatus.DENIED)))
    assert tx.status is TransactionStatus.DENIED


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ({"create": "maybe"}, "authorization.create must be one of authorized, pending"),
        ({"create": "completed"}, "authorization.create must be one of"),
        ({"create": {"pending": -1}}, "authorization.create.polls must be an integer >= 0"),
        ({"create": {"pending": 1, "then": "pending"}}, "authorization.create.then must be one of authorized"),
        ({"reauthorize": {"pending": 1, "later": 2}}, "unknown key(s) later"),
        ({"budgets": {"agents": {"a": "lots"}}}, "authorization.budgets.agents.a must be a dollar amount"),
        ({"budget": {}}, "unknown key(s) budget"),
    ],
)
def test_policy_config_errors_name_the_key(data: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        AuthorizationPolicy.from_dict(data)
    assert fragment in str(info.value)


# ---------------------------------------------------------------------------------------------------
# Reauthorize input validation


def _v1() -> dict[str, Any]:
    return build_challenge("v1", 10, URL, "d").body


def _v2() -> dict[str, Any]:
    return build_challenge("v2", 10, URL, "d").body


@pytest.mark.parametrize(
    ("x402", "fragment"),
    [
        ("nope", '/x402 must be an x402 object, got "nope"'),
        ({"accepts": []}, "/x402/x402Version is missing"),
        ({**_v1(), "x402Version": "1"}, '/x402/x402Version must be the number 1 or 2, got "1"'),
        ({**_v1(), "x402Version": 3}, "/x402/x402Version must be the number 1 or 2, got 3"),
        ({"x402Version": 1}, "/x402/accepts must be a non-empty array"),
        ({**_v1(), "accepts": []}, "/x402/accepts must be a non-empty array of payment requirements, got []"),
        ({**_v1(), "accepts": ["x"]}, "/x402/accepts/0 must be an object"),
        ({k: v for k, v in _v2().items() if k != "resource"}, "/x402/resource must be an object"),
        ({**_v2(), "resource": {}}, "/x402/resource/url is missing"),
        ({**_v1(), "accepts": [{**_v1()["accepts"][0], "payTo": ""}]}, "/x402/accepts/0/payTo must be a non-empty"),
        (
            {**_v1(), "accepts": [{**_v1()["accepts"][0], "maxAmountRequired": "1.5"}]},
            "/x402/accepts/0/maxAmountRequired must be a decimal string",
        ),
        (
            {**_v2(), "accepts": [{k: v for k, v in _v2()["accepts"][0].items() if k != "amount"}]},
            "/x402/accepts/0/amount is missing",
        ),
        (
            {**_v1(), "accepts": [{k: v for k, v in _v1()["accepts"][0].items() if k != "resource"}]},
            "/x402/accepts/0/resource is missing",
        ),
        (
            {**_v1(), "accepts": [{**_v1()["accepts"][0], "maxTimeoutSeconds": 0}]},
            "/x402/accepts/0/maxTimeoutSeconds must be a positive integer",
        ),
    ],
)
def test_reauthorize_rejects_bad_x402_naming_the_path(x402: Any, fragment: str) -> None:
    store, _, _ = make()
    tx = create(store)
    with pytest.raises(BadRequest) as info:
        store.reauthorize(tx.id, x402, None, NOW)
    assert fragment in info.value.message
    assert tx.payment is None and tx.status is TransactionStatus.AUTHORIZED


def test_reauthorize_refuses_text_the_sdk_cannot_send_back() -> None:
    store, _, _ = make()
    tx = create(store)
    x402 = build_challenge("v2", 10, URL, "Caf\u00e9 orders").body
    with pytest.raises(BadRequest, match="/x402/resource/description holds non-ASCII text"):
        store.reauthorize(tx.id, x402, None, NOW)
    assert tx.payment is None


def test_reauthorize_needs_an_authorized_transaction() -> None:
    store, _, _ = make(create="denied")
    tx = create(store)
    with pytest.raises(Conflict, match="is denied: only an authorized transaction can be reauthorized"):
        store.reauthorize(tx.id, _v1(), None, NOW)
    with pytest.raises(NotFound):
        store.reauthorize("tx_nope", _v1(), None, NOW)


# ---------------------------------------------------------------------------------------------------
# Complete, costs, facts, list, JSON


def test_transaction_json_is_the_realistic_shape() -> None:
    store, gate, _ = make()
    tx = create(store)
    paid(store, gate, tx.id)
    j = transaction_to_json(tx)
    for key in (
        "id",
        "organizationId",
        "serviceName",
        "actionName",
        "resourceName",
        "status",
        "outcome",
        "requiresPayment",
        "metadata",
        "createdAt",
        "updatedAt",
        "authorizedAt",
        "payment",
        "trace",
        "costs",
    ):
        assert key in j, key
    assert j["status"] == "authorized" and j["requiresPayment"] is True
    assert (j["serviceName"], j["actionName"], j["resourceName"]) == ("messaging", "publish", URL)
    assert j["createdAt"] == iso_time(NOW) and j["createdAt"].endswith("Z")
    assert "acct" not in j["organizationId"]
    pay = j["payment"]
    for key in (
        "id",
        "transactionId",
        "protocol",
        "network",
        "token",
        "scheme",
        "amount",
        "payTo",
        "payToType",
        "status",
        "authorizationPayload",
        "createdAt",
        "updatedAt",
    ):
        assert key in pay, key
    assert (pay["protocol"], pay["token"], pay["amount"], pay["status"]) == ("x402", "USDC", "10", "authorized")
    json.dumps(j)


def test_iso_time() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(1_795_811_562_928) == "2026-11-27T20:32:42.928Z"


def test_complete_is_tolerant_and_recorded() -> None:
    store, _, _ = make()
    tx = create(store)
    facts = {"source": "http-client", "version": "v1", "facts": {"status": 200}}
    done, fact = store.complete(tx.id, "success", facts, NOW + 5)
    assert done.status is TransactionStatus.COMPLETED and done.outcome == "success"
    assert complete_to_json(done, fact)["factId"] == fact.id
    again, _ = store.complete(tx.id, "error", None, NOW + 6)  # duplicates are kept, never rejected
    assert again.status is TransactionStatus.COMPLETED and len(again.completions) == 2
    denied = make(create="denied")[0]
    d = create(denied)
    assert denied.complete(d.id, "error", None, NOW)[0].status is TransactionStatus.DENIED
    with pytest.raises(BadRequest, match='/outcome must be "success" or "error"'):
        store.complete(tx.id, "ok", None, NOW)
    with pytest.raises(NotFound):
        store.complete("tx_missing", "success", None, NOW)


def test_costs_facts_and_list() -> None:
    store, _, _ = make()
    tx = create(store)
    est = store.add_cost(tx.id, {"fiatAmount": "0.25", "fiatAssetSymbol": "USD", "isEstimate": True}, NOW)
    final = store.add_cost(tx.id, {"fiatAmount": "0.2", "isEstimate": False, "supersedesCostId": est.id}, NOW + 1)
    assert not est.is_active and final.is_active
    assert transaction_to_json(tx)["costs"][0]["fiatAmount"] == "0.250000000000000000"
    with pytest.raises(BadRequest, match="/fiatAmount must be a decimal string"):
        store.add_cost(tx.id, {"fiatAmount": "lots"}, NOW)
    fact = store.add_facts(tx.id, {"source": "s", "version": "v1", "factPhase": "response", "facts": {"a": 1}}, NOW)
    assert fact.phase == "response" and tx.facts == [fact]
    with pytest.raises(BadRequest, match="/factPhase"):
        store.add_facts(tx.id, {"facts": {}}, NOW)
    other = create(store, account="other")
    page, total = store.list(account="acct")
    assert total == 1 and page == [tx]
    assert store.list(status="authorized")[1] == 2
    with pytest.raises(NotFound):
        store.get(other.id, account="acct")


def test_create_validates_known_fields() -> None:
    store, _, _ = make()
    with pytest.raises(BadRequest, match="/agentName must be a string"):
        store.create("acct", {"agentName": 5}, NOW)
    with pytest.raises(BadRequest, match="/metadata must be an object"):
        store.create("acct", {"metadata": []}, NOW)
    tx = store.create("acct", {"serviceName": "Messaging Publish", "x-future-field": 1}, NOW)
    assert tx.service_name == "Messaging Publish"


def test_an_authorized_transaction_pays_for_one_gateway_call_only() -> None:
    """L5: in transaction mode one authorized transaction pays for one billed call (the SDK creates one per
    request), so a leaked or replayed transaction id cannot publish for free forever."""
    store, gate, _ = make(mode=PaymentMode.TRANSACTION)
    tx = create(store)
    ok = gate.check({TX: tx.id}, operation="publishMessage", resource_url=URL, now_ms=NOW)
    ok.commit(NOW)
    err = first_402(gate, tx.id)
    assert err.body["error"] == "transaction_already_used"
    assert (
        "must name an authorized transaction not used yet" in err.message and "already paid for a call" in err.message
    )


def test_an_x402_v1_payment_pays_only_for_the_request_it_was_minted_for() -> None:
    """L5: x402 v1 carries no resource in the payment itself; the simulator binds the payment to the request
    it was minted for, so paying for /publish/<a> does not pay for /publish/<b>."""
    store, gate, _ = make()
    tx = create(store)
    headers = paid(store, gate, tx.id)
    other = f"{SIM}/v1/qstash/publish/http://127.0.0.1:9999/OTHER"
    with pytest.raises(PaymentRejected) as info:
        gate.check(headers, operation="publishMessage", resource_url=other, now_ms=NOW)
    assert "the payment was minted for" in info.value.message and "OTHER" in info.value.message
    assert gate.check(headers, operation="publishMessage", resource_url=URL, now_ms=NOW).transaction is tx
