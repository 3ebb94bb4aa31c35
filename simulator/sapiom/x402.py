"""The x402 wire protocol as the simulator speaks it: 402 bodies, payment payloads, their checks.

Pure functions, no I/O and no clock: callers pass ``now_ms``. The shapes follow
``docs/sapiom-contract.md`` sections 4-6 (coinbase x402 spec v1 and v2, plus Sapiom's wrapped body).

::

    challenge = build_challenge(X402Variant.V1, 10, "http://sim/v1/qstash/publish/http://h/hook", "QStash publish")
    challenge.body     -> {"x402Version": 1, "error": "X-PAYMENT header is required", "accepts": [{...}]}
    challenge.headers  -> {}
    payload = mint_payload(challenge.x402, challenge.x402["accepts"][0], ...)   # what reauthorize returns
    header  = b64json(payload)                                                  # what the SDK sends back
"""

from __future__ import annotations

import base64
import binascii
import copy
import enum
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qstash_sim.errors import BadRequest

V1_NETWORK = "base-sepolia"
V2_NETWORK = "eip155:84532"  # CAIP-2 id of Base Sepolia
USDC_ASSET = "0x036CbD53842c5426634e7929541eC2318f3dCF7e"  # USDC on Base Sepolia
USDC_EXTRA: dict[str, Any] = {"name": "USDC", "version": "2"}
DEFAULT_PAY_TO = "0x1111111111111111111111111111111111111111"
DEFAULT_MAX_TIMEOUT_SECONDS = 60
SCHEME = "exact"

V1_PAYMENT_HEADER = "X-PAYMENT"
V2_PAYMENT_HEADER = "PAYMENT-SIGNATURE"
V1_RESPONSE_HEADER = "X-PAYMENT-RESPONSE"
V2_RESPONSE_HEADER = "PAYMENT-RESPONSE"
REQUIRED_HEADER = "PAYMENT-REQUIRED"


class X402Variant(enum.Enum):
    """How a 402 carries its requirements (all four are understood by ``@sapiom/fetch`` 0.3.0)."""

    V1 = "v1"  # x402 v1 PaymentRequirementsResponse in the JSON body
    V2 = "v2"  # x402 v2 PaymentRequired in the JSON body
    V2_HEADER = "v2-header"  # body {} + PAYMENT-REQUIRED: base64(v2 object), the v2 HTTP transport
    WRAPPED = "wrapped"  # Sapiom's {"requiresPayment": true, "paymentData": ..., "x402": {v1}}

    @property
    def version(self) -> int:
        """The x402 version of the requirement object this variant carries."""
        return 2 if self in (X402Variant.V2, X402Variant.V2_HEADER) else 1

    @classmethod
    def parse(cls, value: str | X402Variant) -> X402Variant:
        """``X402Variant.parse("v2-header")`` -> ``X402Variant.V2_HEADER``; ValueError lists the choices."""
        if isinstance(value, X402Variant):
            return value
        for v in cls:
            if v.value == value:
                return v
        choices = ", ".join(v.value for v in cls)
        raise ValueError(f"unknown x402 variant {value!r}: expected one of {choices}")


@dataclass(frozen=True, slots=True)
class PaymentTerms:
    """Where the money goes and on which chain: the constant part of every requirement."""

    pay_to: str = DEFAULT_PAY_TO
    v1_network: str = V1_NETWORK
    v2_network: str = V2_NETWORK
    asset: str = USDC_ASSET
    extra: Mapping[str, Any] = field(default_factory=lambda: dict(USDC_EXTRA))
    max_timeout_seconds: int = DEFAULT_MAX_TIMEOUT_SECONDS
    mime_type: str = "application/json"


@dataclass(frozen=True, slots=True)
class Challenge:
    """A 402 ready to render: ``body`` (JSON) and ``headers``; ``x402`` is the requirement object itself."""

    variant: X402Variant
    x402: dict[str, Any]  # the v1 or v2 object (inside the body, the header, or the wrapper)
    body: dict[str, Any]
    headers: dict[str, str]

    @property
    def version(self) -> int:
        """1 or 2."""
        return int(self.x402["x402Version"])

    @property
    def accepts(self) -> list[dict[str, Any]]:
        """The payment requirements offered."""
        return list(self.x402["accepts"])

    @property
    def resource_url(self) -> str:
        """The URL being paid for."""
        if self.version == 2:
            return str(self.x402["resource"]["url"])
        return str(self.x402["accepts"][0]["resource"])

    @property
    def network(self) -> str:
        """The network of the first requirement."""
        return str(self.x402["accepts"][0]["network"])

    @property
    def response_header(self) -> str:
        """The settlement header name for this version."""
        return V2_RESPONSE_HEADER if self.version == 2 else V1_RESPONSE_HEADER

    def with_error(self, reason: str) -> Challenge:
        """The same challenge with ``error`` set to ``reason`` (used for rejected payments)."""
        return build_challenge_from(self.variant, {**self.x402, "error": reason}, self.body.get("transactionId"))


def b64json(obj: Any) -> str:
    """Standard base64 (with ``=`` padding) of compact UTF-8 JSON: ``b64json({})`` -> ``"e30="``."""
    raw = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.b64encode(raw).decode("ascii")


def b64json_decode(text: str) -> Any:
    """The inverse of :func:`b64json`; tolerant of missing padding and surrounding blanks.

    Raises ``ValueError`` saying which step failed (base64, UTF-8 or JSON).
    """
    s = text.strip()
    s += "=" * (-len(s) % 4)
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not standard base64 ({exc})") from None
    try:
        decoded = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError("base64 decodes to bytes that are not UTF-8") from None
    try:
        return json.loads(decoded)
    except json.JSONDecodeError as exc:
        raise ValueError(f"base64 decodes to text that is not JSON ({exc.msg} at char {exc.pos})") from None


def build_requirements(
    version: int, amount: int, resource_url: str, description: str, terms: PaymentTerms | None = None
) -> dict[str, Any]:
    """The spec-valid x402 object (v1 ``PaymentRequirementsResponse`` or v2 ``PaymentRequired``).

    ``amount`` is in USDC base units (``10`` = $0.00001). ``error`` is set to the "header is required"
    text of that version.
    """
    t = terms or PaymentTerms()
    if version == 1:
        return {
            "x402Version": 1,
            "error": f"{V1_PAYMENT_HEADER} header is required",
            "accepts": [
                {
                    "scheme": SCHEME,
                    "network": t.v1_network,
                    "maxAmountRequired": str(amount),
                    "resource": resource_url,
                    "description": description,
                    "mimeType": t.mime_type,
                    "payTo": t.pay_to,
                    "maxTimeoutSeconds": t.max_timeout_seconds,
                    "asset": t.asset,
                    "extra": dict(t.extra),
                }
            ],
        }
    if version == 2:
        return {
            "x402Version": 2,
            "error": f"{V2_PAYMENT_HEADER} header is required",
            "resource": {"url": resource_url, "description": description, "mimeType": t.mime_type},
            "accepts": [
                {
                    "scheme": SCHEME,
                    "network": t.v2_network,
                    "amount": str(amount),
                    "asset": t.asset,
                    "payTo": t.pay_to,
                    "maxTimeoutSeconds": t.max_timeout_seconds,
                    "extra": dict(t.extra),
                }
            ],
        }
    raise ValueError(f"x402 version must be 1 or 2, not {version!r}")


def build_challenge(
    variant: X402Variant | str,
    amount: int,
    resource_url: str,
    description: str,
    terms: PaymentTerms | None = None,
    *,
    transaction_id: str | None = None,
    error: str | None = None,
) -> Challenge:
    """The 402 for ``variant``: see :class:`X402Variant` for the four shapes.

    ``transaction_id`` is echoed by the wrapped form only (left out when unknown).
    """
    v = X402Variant.parse(variant)
    obj = build_requirements(v.version, amount, resource_url, description, terms)
    if error is not None:
        obj["error"] = error
    return build_challenge_from(v, obj, transaction_id)


def build_challenge_from(variant: X402Variant, x402: dict[str, Any], transaction_id: str | None = None) -> Challenge:
    """Wrap an existing x402 object in ``variant``'s body/headers."""
    if variant is X402Variant.V2_HEADER:
        return Challenge(variant, x402, {}, {REQUIRED_HEADER: b64json(x402)})
    if variant is X402Variant.WRAPPED:
        req = x402["accepts"][0]
        amount = req.get("maxAmountRequired", req.get("amount"))
        body: dict[str, Any] = {"requiresPayment": True}
        if transaction_id is not None:
            body["transactionId"] = transaction_id
        body["paymentData"] = {"protocol": "x402", "amount": amount}
        body["x402"] = x402
        return Challenge(variant, x402, body, {})
    return Challenge(variant, x402, x402, {})


# ---------------------------------------------------------------------------------------------------
# Validation of an x402 object handed to reauthorize


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _require_str(obj: Mapping[str, Any], key: str, path: str, *, digits: bool = False) -> str:
    value = obj.get(key)
    where = f"{path}/{key}"
    if key not in obj:
        raise BadRequest(f"{where} is missing: expected a {'decimal string' if digits else 'non-empty string'}")
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{where} must be a non-empty string, got {json.dumps(value)}")
    if digits and not (value.isascii() and value.isdigit()):
        raise BadRequest(f'{where} must be a decimal string of base units such as "10", got {json.dumps(value)}')
    return value


def validate_x402(x402: Any, path: str = "/x402") -> dict[str, Any]:
    """Check an x402 object well enough to pay it; return it. Raises ``BadRequest`` naming the JSON path.

    ``validate_x402({"x402Version": 1, "accepts": []})`` -> BadRequest("/x402/accepts must be a
    non-empty array of payment requirements, got []").
    """
    if not isinstance(x402, dict):
        raise BadRequest(f"{path} must be an x402 object, got {json.dumps(x402)}")
    if "x402Version" not in x402:
        raise BadRequest(f"{path}/x402Version is missing: expected the number 1 or 2")
    version = x402["x402Version"]
    if isinstance(version, float) and version.is_integer():  # JSON Schema counts 1.0 as the integer 1
        version = x402["x402Version"] = int(version)
    if not _is_int(version) or version not in (1, 2):
        raise BadRequest(f"{path}/x402Version must be the number 1 or 2, got {json.dumps(version)}")
    accepts = x402.get("accepts")
    if not isinstance(accepts, list) or not accepts:
        raise BadRequest(f"{path}/accepts must be a non-empty array of payment requirements, got {json.dumps(accepts)}")
    for i, req in enumerate(accepts):
        if not isinstance(req, dict):
            raise BadRequest(f"{path}/accepts/{i} must be an object, got {json.dumps(req)}")
    if version == 2:
        resource = x402.get("resource")
        if not isinstance(resource, dict):
            raise BadRequest(f'{path}/resource must be an object such as {{"url": "http://..."}} for x402 v2')
        _require_str(resource, "url", f"{path}/resource")
    # Only the chosen requirement (accepts[0]) has to be payable.
    req0, p0 = accepts[0], f"{path}/accepts/0"
    _require_str(req0, "scheme", p0)
    _require_str(req0, "network", p0)
    _require_str(req0, "payTo", p0)
    _require_str(req0, "maxAmountRequired" if version == 1 else "amount", p0, digits=True)
    if version == 1:
        _require_str(req0, "resource", p0)
    timeout = req0.get("maxTimeoutSeconds")
    if isinstance(timeout, float) and timeout.is_integer():
        timeout = req0["maxTimeoutSeconds"] = int(timeout)
    if not _is_int(timeout) or timeout <= 0:
        raise BadRequest(f"{p0}/maxTimeoutSeconds must be a positive integer, got {json.dumps(timeout)}")
    # The payload echoes these; the SDK's btoa() cannot carry non-ASCII (see mint_payload).
    where = _first_non_ascii(req0, p0)
    if where is None and version == 2:
        where = _first_non_ascii(x402["resource"], f"{path}/resource")
    if where is not None:
        raise BadRequest(f"{where} holds non-ASCII text, which @sapiom/fetch cannot send back (btoa)")
    return x402


def requirement_amount(req: Mapping[str, Any]) -> int:
    """The price of one requirement in base units (v1 ``maxAmountRequired``, v2 ``amount``)."""
    return int(req.get("maxAmountRequired", req.get("amount", "0")))


# ---------------------------------------------------------------------------------------------------
# Payment payloads (what the simulated Sapiom API "signs" and the gateway verifies)


def payer_address(account: str, agent: str | None = None) -> str:
    """A stable fake wallet address for an account (and agent): ``0x`` + 40 hex digits."""
    return "0x" + hashlib.sha256(f"payer:{account}:{agent or ''}".encode()).hexdigest()[:40]


def sign_authorization(secret: str, version: int, network: str, authorization: Mapping[str, Any]) -> str:
    """A deterministic fake EIP-3009 signature: HMAC-SHA512 over the canonical authorization, 65 bytes hex."""
    msg = json.dumps(
        {"v": version, "network": network, "authorization": dict(authorization)}, sort_keys=True, separators=(",", ":")
    )
    return "0x" + hmac.new(secret.encode(), msg.encode(), hashlib.sha512).hexdigest() + "1b"


def mint_payload(
    x402: Mapping[str, Any],
    accepted: Mapping[str, Any],
    *,
    payer: str,
    nonce: str,
    now_ms: int,
    secret: str,
) -> dict[str, Any]:
    """The x402 ``PaymentPayload`` for ``accepted`` (one of ``x402["accepts"]``), all ASCII.

    v1: ``{x402Version, scheme, network, payload:{signature, authorization}}``;
    v2: ``{x402Version, resource, accepted, payload:{...}, extensions:{}}``.
    ``validAfter`` is now (seconds), ``validBefore`` now + ``maxTimeoutSeconds``.
    """
    version = int(x402["x402Version"])
    now_s = now_ms // 1000
    authorization = {
        "from": payer,
        "to": accepted["payTo"],
        "value": str(requirement_amount(accepted)),
        "validAfter": str(now_s),
        "validBefore": str(now_s + int(accepted["maxTimeoutSeconds"])),
        "nonce": nonce,
    }
    network = str(accepted["network"])
    inner = {"signature": sign_authorization(secret, version, network, authorization), "authorization": authorization}
    if version == 1:
        payload: dict[str, Any] = {"x402Version": 1, "scheme": accepted["scheme"], "network": network, "payload": inner}
    else:
        payload = {
            "x402Version": 2,
            "resource": copy.deepcopy(x402["resource"]),
            "accepted": copy.deepcopy(dict(accepted)),
            "payload": inner,
            "extensions": {},
        }
    # The SDK sends btoa(JSON.stringify(payload)): btoa throws outside Latin-1, and Latin-1 would not
    # decode as UTF-8 at the gateway. Only the echoed requirement can bring non-ASCII text in.
    # validate_x402 already refused such input; this guards direct callers.
    where = _first_non_ascii(payload, "")
    if where is not None:
        raise ValueError(f"the payment payload holds non-ASCII text at {where}")
    return payload


def _first_non_ascii(value: Any, path: str) -> str | None:
    """The JSON pointer of the first string (or key) that is not ASCII, or None."""
    if isinstance(value, str):
        return None if value.isascii() else path
    if isinstance(value, dict):
        for k, v in value.items():
            found = f"{path}/{k}" if not str(k).isascii() else _first_non_ascii(v, f"{path}/{k}")
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _first_non_ascii(v, f"{path}/{i}")
            if found is not None:
                return found
    return None


def settlement(success: bool, *, nonce: str, network: str, payer: str, reason: str | None = None) -> dict[str, Any]:
    """The ``X-PAYMENT-RESPONSE``/``PAYMENT-RESPONSE`` object; the fake tx hash is derived from the nonce."""
    out: dict[str, Any] = {"success": success}
    if not success:
        out["errorReason"] = reason
    out["transaction"] = "0x" + hashlib.sha256(f"settle:{nonce}".encode()).hexdigest() if success else ""
    out["network"] = network
    out["payer"] = payer
    return out
