"""``Upstash-Signature``: the HS256 JWT QStash puts on every request it sends (pure stdlib).

Header ``{"alg":"HS256","typ":"JWT"}``; claims ``iss="Upstash"``, ``sub`` = the exact URL called,
``iat`` = ``nbf`` = now (s), ``exp`` = now + 300, ``jti``, ``body`` = base64url(SHA-256(body)) with ``=``
padding. The HMAC key is the signing key string's UTF-8 bytes (the whole ``sig_...`` string).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from qstash_sim.domain.account import SigningKeys

__all__ = ["TOKEN_LIFETIME_S", "body_hash", "rotate", "sign"]

TOKEN_LIFETIME_S = 300
_HEADER_B64 = base64.urlsafe_b64encode(
    json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode()
).rstrip(b"=")


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def body_hash(body: bytes) -> str:
    """``body_hash(b"")`` -> ``"47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="`` (padding kept)."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()


def sign(keys_current: str, url: str, body: bytes, now_ms: int, jti: str) -> str:
    """The ``Upstash-Signature`` JWT for a request to ``url`` carrying ``body``, signed at ``now_ms``.

    ``sign("sig_...", "https://example.com/api", b"{}", 1767225600000, "jwt_abc")`` -> ``"eyJhbGciOi..."``
    """
    now_s = now_ms // 1000
    claims = {
        "iss": "Upstash",
        "sub": url,
        "exp": now_s + TOKEN_LIFETIME_S,
        "nbf": now_s,
        "iat": now_s,
        "jti": jti,
        "body": body_hash(body),
    }
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = _HEADER_B64 + b"." + payload
    mac = hmac.new(keys_current.encode("utf-8"), signing_input, hashlib.sha256).digest()
    return (signing_input + b"." + _b64url(mac)).decode("ascii")


def rotate(keys: SigningKeys, new_next: str) -> SigningKeys:
    """Roll keys in place: the old ``next`` becomes ``current``, ``new_next`` becomes ``next``.

    Returns ``keys`` (the same object) so callers can answer ``{"current", "next"}`` at once.
    """
    keys.current, keys.next = keys.next, new_next
    return keys
