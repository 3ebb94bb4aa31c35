"""What contract fuzzing found in the contract itself (tests/contract/test_fuzz.py), each pinned here.

* A schema ``pattern`` means what JSON Schema means (ECMA 262): ``$`` is the end of the string and ``\\d``
  an ASCII digit. Python's ``$`` also matches before a final ``\\n``: the queue name ``abc\\n`` (``abc%0A``
  in a path) fitted ``^[A-Za-z0-9._-]+$`` and a queue of that name was created.
* ``Allow`` of a 405 names every method the URL takes. ``/v1/qstash/schedules/000`` is a URL of two
  templates, ``{scheduleId}`` (GET, DELETE) and the greedy ``{destination}`` (POST, a schedule creation
  with a bad destination); the 405 there said ``Allow: DELETE, GET``, leaving out POST.
"""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from conftest import Client
from qstash_sim.contract.router import Contract
from qstash_sim.contract.schema import ecma_regex
from qstash_sim.errors import BadRequest, MethodNotAllowed


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.load()


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("^[a-z]+$", "abc", True),
        ("^[a-z]+$", "abc\n", False),  # Python's own "$" takes it
        ("^[$]+$", "$$", True),  # "$" in a class is a character
        (r"^a\$$", "a$", True),  # so is an escaped one
        (r"^(a|b$)c?$", "b", True),
        (r"^\d+$", "123", True),
        (r"^\d+$", "\u0663", False),  # ARABIC-INDIC DIGIT THREE is no JSON Schema digit
    ],
)
def test_a_pattern_means_what_json_schema_means(pattern: str, text: str, matches: bool) -> None:
    assert bool(ecma_regex(pattern).search(text)) is matches


def test_a_queue_name_with_a_final_newline_is_refused(contract: Contract) -> None:
    op, params = contract.match("POST", "/v1/qstash/enqueue/abc%0A/https://example.com/x")
    with pytest.raises(BadRequest) as err:
        op.validate_request(CIMultiDictProxy(CIMultiDict()), MultiDict(), params, b"x")
    assert err.value.message == ("path queueName: expected a name of letters, digits, '.', '_' and '-', got \"abc\\n\"")


def test_a_batch_item_queue_with_a_final_newline_is_refused(contract: Contract) -> None:
    op, params = contract.match("POST", "/v1/qstash/batch")
    body = b'[{"destination": "https://example.com/x", "queue": "abc\\n"}]'
    with pytest.raises(BadRequest) as err:
        op.validate_request(CIMultiDictProxy(CIMultiDict()), MultiDict(), params, body, "application/json")
    assert err.value.message.startswith("body /0/queue: expected a name of letters, digits")


def test_an_integer_query_parameter_takes_ascii_digits_only(contract: Contract) -> None:
    op, params = contract.match("GET", "/_sim/state")
    assert op.validate_request({}, MultiDict(limit="3"), params, b"").query["limit"] == 3
    with pytest.raises(BadRequest, match=r"^query limit: expected integer"):
        op.validate_request({}, MultiDict(limit="\u0663"), params, b"")


def test_the_queue_is_not_created_over_http(client: Client) -> None:
    r = client.post("/v1/qstash/enqueue/abc%0A/https://example.com/x", body=b"x")
    assert r.status == 400 and r.error.startswith("path queueName: expected a name")
    assert client.get("/v1/qstash/queues").json == []


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("OPTIONS", "/v1/qstash/schedules/000", ["DELETE", "GET", "POST"]),
        ("PUT", "/v1/qstash/schedules/scd_1", ["DELETE", "GET", "POST"]),
        # a value that fits the destination grammar is the greedy template's alone
        ("GET", "/v1/qstash/schedules/https%3A%2F%2Fexample.com", ["POST"]),
    ],
)
def test_allow_names_every_method_of_overlapping_templates(
    contract: Contract, method: str, path: str, allowed: list[str]
) -> None:
    with pytest.raises(MethodNotAllowed) as err:
        contract.match(method, path)
    assert err.value.allowed == allowed
    assert contract.match("POST", "/v1/qstash/schedules/000")[0].operation_id == "createSchedule"
    assert contract.match("GET", "/v1/qstash/schedules/scd_1")[0].operation_id == "getSchedule"


def test_the_405_says_so_over_http(client: Client) -> None:
    r = client.request("OPTIONS", "/v1/qstash/schedules/000")
    assert r.status == 405 and r.headers["Allow"] == "DELETE, GET, POST"
    assert client.post("/v1/qstash/schedules/000", body=b"", headers={"Upstash-Cron": "* * * * *"}).status == 400
