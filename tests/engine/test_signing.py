from __future__ import annotations

import base64
import json
import time

import pytest
from qstash import Receiver
from qstash.errors import SignatureError

from qstash_sim.domain.account import SigningKeys
from qstash_sim.engine.signing import body_hash, rotate, sign

CURRENT = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"
NEXT = "sig_5ZB6DVzB1wjE8S6rZ7eenA8Pdnhs"
NEWER = "sig_7GVPjvuwsfqF65iC8fSrs1dfYruM"
URL = "https://example.com/api/hook?x=1"


def _now_ms() -> int:
    # The PY Receiver checks exp/nbf against the wall clock, so these tokens carry real time.
    return time.time_ns() // 1_000_000


def _part(token: str, i: int) -> dict:
    seg = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4)))


def test_token_shape() -> None:
    tok = sign(CURRENT, URL, b'{"a":1}', 1_767_225_600_123, "jwt_abc")
    assert _part(tok, 0) == {"alg": "HS256", "typ": "JWT"}
    claims = _part(tok, 1)
    assert claims == {
        "iss": "Upstash",
        "sub": URL,
        "exp": 1_767_225_900,
        "nbf": 0,  # QStash's since 2024-09: valid from the epoch, only exp bounds it
        "iat": 1_767_225_600,
        "jti": "jwt_abc",
        "body": body_hash(b'{"a":1}'),
    }
    assert claims["body"].endswith("=")


def test_empty_body_hash_matches_docs() -> None:
    assert body_hash(b"") == "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU="


def test_receiver_accepts() -> None:
    body = '{"hello":"world"}'
    tok = sign(CURRENT, URL, body.encode(), _now_ms(), "jwt_1")
    Receiver(CURRENT, NEXT).verify(signature=tok, body=body, url=URL)


def test_receiver_accepts_after_rotation() -> None:
    keys = SigningKeys(current=CURRENT, next=NEXT)
    assert rotate(keys, NEWER) is keys
    assert (keys.current, keys.next) == (NEXT, NEWER)
    body = "payload"
    tok = sign(keys.current, URL, body.encode(), _now_ms(), "jwt_2")
    # A receiver not yet updated still holds (old current, old next): it falls back to next.
    Receiver(CURRENT, NEXT).verify(signature=tok, body=body, url=URL)
    Receiver(keys.current, keys.next).verify(signature=tok, body=body, url=URL)
    with pytest.raises(SignatureError):  # a token signed with the retired key fails the new pair
        Receiver(keys.current, keys.next).verify(
            signature=sign(CURRENT, URL, body.encode(), _now_ms(), "jwt_3"), body=body, url=URL
        )


def test_receiver_rejects_changed_body_or_sub() -> None:
    tok = sign(CURRENT, URL, b"original", _now_ms(), "jwt_4")
    Receiver(CURRENT, NEXT).verify(signature=tok, body="original", url=URL)
    with pytest.raises(SignatureError):
        Receiver(CURRENT, NEXT).verify(signature=tok, body="tampered", url=URL)
    with pytest.raises(SignatureError):
        Receiver(CURRENT, NEXT).verify(signature=tok, body="original", url=URL + "&y=2")
    # With both slots holding the signing key, the receiver's own reason shows through.
    with pytest.raises(SignatureError, match="body hash"):
        Receiver(CURRENT, CURRENT).verify(signature=tok, body="tampered", url=URL)
    with pytest.raises(SignatureError, match="subject"):
        Receiver(CURRENT, CURRENT).verify(signature=tok, body="original", url=URL + "&y=2")


def test_expired_token_is_rejected() -> None:
    tok = sign(CURRENT, URL, b"x", _now_ms() - 301_000, "jwt_5")
    with pytest.raises(SignatureError):
        Receiver(CURRENT, NEXT).verify(signature=tok, body="x", url=URL)
