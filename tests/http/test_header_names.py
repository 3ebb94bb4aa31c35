"""Names the gateway reads itself (a forwarded header's, a queue's or schedule's) end at the end of the string.

Its regular expressions ended in ``$``, which in Python also matches before a final ``\\n``: a batch item's
``{"Upstash-Forward-X\\n": "v"}`` was accepted and stored as a header named ``X\\n`` (what no HTTP request
may carry; aiohttp refuses to send it), and ``check_name`` took ``abc\\n``.
"""

from __future__ import annotations

import pytest

from conftest import Client, Served
from qstash_sim.errors import BadRequest
from qstash_sim.http.headers import check_name, parse_settings


def test_a_forwarded_header_name_with_a_final_newline_is_refused() -> None:
    with pytest.raises(BadRequest, match=r"^body /0/headers/Upstash-Forward-X\n: 'X\\n' is not a valid header name$"):
        parse_settings("https://example.com/x", {"Upstash-Forward-X\n": "v"}, where="body /0/headers")
    assert parse_settings("https://example.com/x", {"Upstash-Forward-X": "v"}).headers == {"X": "v"}


@pytest.mark.parametrize("name", ["abc\n", "a b", "", ".", "x" * 129])
def test_a_queue_or_schedule_name_is_the_whole_string(name: str) -> None:
    with pytest.raises(BadRequest):
        check_name(name, "header Upstash-Schedule-Id")
    assert check_name("abc.-_9", "header Upstash-Schedule-Id") == "abc.-_9"


def test_a_batch_item_forwarding_such_a_header_stores_nothing(served: Served, client: Client) -> None:
    items = [{"destination": "https://example.com/x", "headers": {"Upstash-Forward-X\n": "v"}}]
    r = client.post("/v1/qstash/batch", json_body=items)
    assert r.status == 400 and r.error.startswith("body /0/headers/Upstash-Forward-X\n: ")
    assert served.on_loop(served.sim.messages) == []
