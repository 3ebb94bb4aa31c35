"""Tests for simulator.contract: routing, request validation, response validation, handler checks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml
from multidict import CIMultiDict, CIMultiDictProxy, MultiDict

from qstash_sim.contract.load import load_spec
from qstash_sim.contract.router import Contract
from qstash_sim.errors import BadRequest, ContractError, MethodNotAllowed, NotFound

SPEC_YAML = r"""
openapi: 3.1.0
info: {title: fixture, version: "1"}
x-header-prefixes: [Upstash-Forward-]
paths:
  /v1/qstash/publish/{destination}:
    post:
      operationId: publish
      x-billing: {unit: message}
      x-header-prefixes: [Upstash-Callback-, Upstash-Failure-Callback-]
      parameters:
        - {name: destination, in: path, required: true, x-greedy: true, schema: {type: string}}
        - {name: Upstash-Retries, in: header, schema: {type: integer, minimum: 0, maximum: 5}}
        - {name: Upstash-Delay, in: header, schema: {$ref: "#/components/schemas/Duration"}}
        - {name: Upstash-Method, in: header, schema: {type: string, enum: [GET, POST, PUT, DELETE]}}
        - {name: Upstash-Deduplication-Id, in: header, schema: {type: string}}
        - {name: Upstash-Content-Based-Deduplication, in: header, schema: {type: boolean}}
      requestBody:
        content:
          "*/*": {schema: {}}
      responses:
        "201":
          content:
            application/json: {schema: {$ref: "#/components/schemas/PublishResult"}}
        "400": {$ref: "#/components/responses/Error"}
  /v1/qstash/batch:
    post:
      operationId: batch
      requestBody:
        required: true
        content:
          application/json:
            schema:
              type: array
              maxItems: 100
              items: {$ref: "#/components/schemas/BatchItem"}
      responses:
        "200":
          content:
            application/json: {schema: {type: array, items: {$ref: "#/components/schemas/PublishResult"}}}
        4XX: {$ref: "#/components/responses/Error"}
  /v1/qstash/tree:
    post:
      operationId: tree
      requestBody:
        content:
          application/json: {schema: {$ref: "#/components/schemas/Node"}}
      responses:
        "204": {description: ok}
  /v1/qstash/queues:
    get:
      operationId: listQueues
      responses: {"200": {content: {application/json: {schema: {type: array}}}}}
  /v1/qstash/queues/upsert:
    post:
      operationId: upsertQueue
      parameters:
        - {name: Upstash-Auth, in: header, required: true, schema: {type: string}}
        - {name: Upstash-Mode, in: header, required: true, schema: {type: string}}
      responses: {"200": {description: ok}}
  /v1/qstash/queues/{queueName}:
    parameters:
      - {$ref: "#/components/parameters/QueueName"}
    get:
      operationId: getQueue
      responses: {"200": {content: {application/json: {schema: {type: object}}}}}
    delete:
      operationId: deleteQueue
      responses: {"200": {description: ok}}
  /v1/qstash/schedules:
    get:
      operationId: listSchedules
      responses: {"200": {description: ok}}
  /v1/qstash/schedules/{destination}:
    post:
      operationId: createSchedule
      parameters:
        - name: destination
          in: path
          required: true
          schema: {type: string, x-greedy: true}
      responses: {"201": {description: ok}}
  /v1/qstash/schedules/{scheduleId}:
    get:
      operationId: getSchedule
      parameters: [{name: scheduleId, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: ok}}
    delete:
      operationId: deleteSchedule
      parameters: [{name: scheduleId, in: path, required: true, schema: {type: string}}]
      responses: {"200": {description: ok}}
  /v1/qstash/schedules/{scheduleId}/pause:
    parameters: [{name: scheduleId, in: path, required: true, schema: {type: string}}]
    patch: {operationId: pauseSchedulePatch, responses: {"200": {description: ok}}}
    post: {operationId: pauseSchedule, responses: {"200": {description: ok}}}
  /v1/qstash/messages:
    get:
      operationId: listMessages
      parameters:
        - {name: count, in: query, schema: {type: integer, minimum: 1, maximum: 100}}
        - {name: cursor, in: query, schema: {type: string}}
        - {name: messageIds, in: query, schema: {type: array, items: {type: string}, maxItems: 3}}
        - {name: verbose, in: query, required: true, schema: {type: boolean}}
      responses: {"200": {description: ok}}
components:
  parameters:
    QueueName:
      {name: queueName, in: path, required: true, schema: {type: string, pattern: "^[A-Za-z0-9._-]+$"}}
  responses:
    Error:
      description: error
      content:
        application/json: {schema: {$ref: "#/components/schemas/Error"}}
  schemas:
    Duration: {type: string, pattern: "^[0-9]+[smhd]$"}
    Error:
      type: object
      required: [error]
      properties: {error: {type: string}}
    PublishResult:
      type: object
      required: [messageId]
      additionalProperties: false
      properties:
        messageId: {type: string}
        deduplicated: {type: boolean}
    BatchItem:
      type: object
      required: [destination]
      properties:
        destination: {type: string, minLength: 1}
        headers: {type: object, additionalProperties: {type: string}}
        body: {type: string}
    Node:
      type: object
      properties:
        children: {type: array, items: {$ref: "#/components/schemas/Node"}}
        name: {type: string}
"""

REAL_SPEC = Path(__file__).resolve().parents[2] / "openapi.yaml"


@pytest.fixture(scope="module")
def contract() -> Contract:
    return Contract.from_spec(yaml.safe_load(SPEC_YAML))


def headers(**kw: str) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict({k.replace("_", "-"): v for k, v in kw.items()}))


def validate(
    contract: Contract,
    method: str,
    raw_path: str,
    *,
    hdrs: dict[str, str] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    query: MultiDict[str] | None = None,
):
    op, pp = contract.match(method, raw_path)
    return op.validate_request(CIMultiDictProxy(CIMultiDict(hdrs or {})), query or MultiDict(), pp, body, content_type)


# ------------------------------------------------------------------ loading


def test_load_spec_reads_a_file_with_the_c_loader(tmp_path: Path) -> None:
    p = tmp_path / "spec.yaml"
    p.write_text(SPEC_YAML)
    spec = load_spec(p)
    assert spec["paths"]["/v1/qstash/batch"]["post"]["operationId"] == "batch"
    assert Contract.load(p).operation_ids == Contract.from_spec(spec).operation_ids


def test_load_spec_reports_yaml_errors_with_their_line(tmp_path: Path) -> None:
    p = tmp_path / "bad.yaml"
    p.write_text("paths:\n  /a:\n    description: a: b\n")
    with pytest.raises(ContractError, match=r"bad.yaml: invalid YAML: .*line 3, column 19"):
        load_spec(p)


def test_operation_ids_statuses_and_extensions(contract: Contract) -> None:
    assert "publish" in contract.operation_ids and len(contract.operation_ids) == 14
    assert contract.statuses("publish") == {201, 400}
    assert contract.statuses("batch") == {200}  # 4XX is a range, not expanded
    op = contract.operation("publish")
    assert contract.operations["publish"] is op and list(contract.operations) == list(contract.operation_ids)
    assert op.extensions == {
        "x-billing": {"unit": "message"},
        "x-header-prefixes": ["Upstash-Callback-", "Upstash-Failure-Callback-"],
    }
    assert op.method == "POST" and op.path_template == "/v1/qstash/publish/{destination}"


def test_missing_operation_id_and_undeclared_path_param_are_contract_errors() -> None:
    spec = yaml.safe_load(SPEC_YAML)
    del spec["paths"]["/v1/qstash/batch"]["post"]["operationId"]
    with pytest.raises(ContractError, match="POST /v1/qstash/batch: operationId missing"):
        Contract.from_spec(spec)
    spec = {"paths": {"/a/{x}": {"get": {"operationId": "a", "responses": {}}}}}
    with pytest.raises(ContractError, match="path parameter 'x' not declared"):
        Contract.from_spec(spec)


def test_duplicate_operation_id_and_bad_schema_are_contract_errors() -> None:
    dup = {"paths": {"/a": {"get": {"operationId": "x"}}, "/b": {"get": {"operationId": "x"}}}}
    with pytest.raises(ContractError, match="'x' used by both GET /a and GET /b"):
        Contract.from_spec(dup)
    bad = {
        "paths": {
            "/a": {
                "get": {"operationId": "a", "parameters": [{"name": "n", "in": "query", "schema": {"type": "integr"}}]}
            }
        }
    }
    with pytest.raises(ContractError, match="GET /a n: invalid schema"):
        Contract.from_spec(bad)


# ------------------------------------------------------------------ routing


@pytest.mark.parametrize(
    ("raw_path", "destination"),
    [
        ("/v1/qstash/publish/https://example.com/a?b=1", "https://example.com/a?b=1"),
        ("/v1/qstash/publish/https://example.com//a//b/", "https://example.com//a//b/"),
        ("/v1/qstash/publish/https%3A%2F%2Fexample.com%2Fa", "https%3A%2F%2Fexample.com%2Fa"),
        ("/v1/qstash/publish/http://x/?q=a%20b&c=/d", "http://x/?q=a%20b&c=/d"),
    ],
)
def test_greedy_param_takes_the_raw_rest_of_the_path(contract: Contract, raw_path: str, destination: str) -> None:
    op, params = contract.match("POST", raw_path)
    assert op.operation_id == "publish"
    assert params == {"destination": destination}


def test_single_segment_params_are_percent_decoded(contract: Contract) -> None:
    op, params = contract.match("GET", "/v1/qstash/queues/my%20queue?x=1")
    assert (op.operation_id, params) == ("getQueue", {"queueName": "my queue"})
    with pytest.raises(BadRequest) as e:
        op.validate_request({}, {}, params, b"")
    assert e.value.message == 'path queueName: must match ^[A-Za-z0-9._-]+$, got "my queue"'


def test_404_vs_405(contract: Contract) -> None:
    with pytest.raises(NotFound, match=r"^no such route: GET /x$"):
        contract.match("GET", "/x?y=1")
    with pytest.raises(NotFound):
        contract.match("POST", "/v1/qstash/publish")  # the greedy param needs at least one character
    with pytest.raises(NotFound):
        contract.match("GET", "/v1//qstash/queues")  # no slash merging
    with pytest.raises(MethodNotAllowed) as e:
        contract.match("PUT", "/v1/qstash/queues/q1")
    assert e.value.allowed == ["DELETE", "GET"] and e.value.headers == {"Allow": "DELETE, GET"}
    with pytest.raises(MethodNotAllowed) as e:
        contract.match("GET", "/v1/qstash/publish/https://x.com")
    assert e.value.allowed == ["POST"]


def test_literal_paths_win_over_templates(contract: Contract) -> None:
    assert contract.match("GET", "/v1/qstash/queues")[0].operation_id == "listQueues"
    assert contract.match("POST", "/v1/qstash/queues/upsert")[0].operation_id == "upsertQueue"
    assert contract.match("GET", "/v1/qstash/queues/upsert") == (
        contract.operation("getQueue"),
        {"queueName": "upsert"},
    )


def test_schedules_single_segment_vs_greedy(contract: Contract) -> None:
    assert contract.match("GET", "/v1/qstash/schedules/scd_1")[0].operation_id == "getSchedule"
    assert contract.match("DELETE", "/v1/qstash/schedules/scd_1")[0].operation_id == "deleteSchedule"
    op, params = contract.match("POST", "/v1/qstash/schedules/https://a.com/b?c=d")
    assert (op.operation_id, params) == ("createSchedule", {"destination": "https://a.com/b?c=d"})
    assert contract.match("PATCH", "/v1/qstash/schedules/scd_1/pause") == (
        contract.operation("pauseSchedulePatch"),
        {"scheduleId": "scd_1"},
    )
    assert contract.match("POST", "/v1/qstash/schedules/scd_1/pause")[0].operation_id == "pauseSchedule"
    assert contract.match("GET", "/v1/qstash/schedules")[0].operation_id == "listSchedules"
    with pytest.raises(MethodNotAllowed) as e:
        contract.match("GET", "/v1/qstash/schedules/scd_1/pause")
    assert e.value.allowed == ["PATCH", "POST"]


# ------------------------------------------------------------------ request validation


def test_headers_are_coerced_case_insensitively(contract: Contract) -> None:
    req = validate(
        contract,
        "POST",
        "/v1/qstash/publish/https://a.com",
        hdrs={
            "upstash-retries": "3",
            "UPSTASH-DELAY": "10s",
            "Upstash-Content-Based-Deduplication": "true",
            "Content-Type": "application/json",
            "Upstash-Forward-X": "1",
        },
        body=b"{not json",
        content_type="application/json",
    )
    assert req.headers == {"Upstash-Retries": 3, "Upstash-Delay": "10s", "Upstash-Content-Based-Deduplication": True}
    assert req.json is None and req.body_bytes == b"{not json"  # */* body passes through unparsed
    assert req.path_params == {"destination": "https://a.com"}
    # A plain dict works too.
    op = contract.operation("publish")
    assert op.validate_request({"UPSTASH-RETRIES": "0"}, {}, {}, b"").headers == {"Upstash-Retries": 0}


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("Upstash-Retries", "abc", 'header Upstash-Retries: expected integer between 0 and 5, got "abc"'),
        ("Upstash-Retries", "6", 'header Upstash-Retries: expected integer between 0 and 5, got "6"'),
        ("Upstash-Retries", "1.5", 'header Upstash-Retries: expected integer between 0 and 5, got "1.5"'),
        ("Upstash-Delay", "10 s", 'header Upstash-Delay: must match ^[0-9]+[smhd]$, got "10 s"'),
        ("Upstash-Method", "get", 'header Upstash-Method: expected one of "GET", "POST", "PUT", "DELETE", got "get"'),
        (
            "Upstash-Content-Based-Deduplication",
            "yes",
            'header Upstash-Content-Based-Deduplication: expected boolean, got "yes"',
        ),
    ],
)
def test_header_messages(contract: Contract, name: str, value: str, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        validate(contract, "POST", "/v1/qstash/publish/https://a.com", hdrs={name: value})
    assert e.value.message == message and e.value.status == 400


def test_required_headers_missing_are_named(contract: Contract) -> None:
    with pytest.raises(BadRequest, match="^missing required headers: Upstash-Auth, Upstash-Mode$"):
        validate(contract, "POST", "/v1/qstash/queues/upsert")
    with pytest.raises(BadRequest, match="^missing required header: Upstash-Mode$"):
        validate(contract, "POST", "/v1/qstash/queues/upsert", hdrs={"upstash-auth": "x"})


def test_query_parameters(contract: Contract) -> None:
    q = MultiDict([("count", "5"), ("messageIds", "a"), ("messageIds", "b"), ("verbose", "false"), ("x", "y")])
    req = validate(contract, "GET", "/v1/qstash/messages", query=q)
    assert req.query == {"count": 5, "messageIds": ["a", "b"], "verbose": False}
    with pytest.raises(BadRequest, match="^query verbose: required parameter missing$"):
        validate(contract, "GET", "/v1/qstash/messages", query=MultiDict(count="5"))
    with pytest.raises(BadRequest, match=r'^query count: expected integer between 1 and 100, got "0"$'):
        validate(contract, "GET", "/v1/qstash/messages", query=MultiDict(count="0", verbose="true"))
    too_many = MultiDict([("messageIds", v) for v in "abcd"] + [("verbose", "true")])
    with pytest.raises(BadRequest, match=r"^query messageIds: expected at most 3 items, got 4$"):
        validate(contract, "GET", "/v1/qstash/messages", query=too_many)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'[{"destination": "https://a"}, {"body": "x"}]', "body /1/destination: required property missing"),
        (b'[{"destination": 5}]', "body /0/destination: expected string, got integer"),
        (b'[{"destination": ""}]', 'body /0/destination: expected string of at least 1 characters, got ""'),
        (b'[{"destination": "d", "headers": {"a/b": 1}}]', "body /0/headers/a~1b: expected string, got integer"),
        (b'{"destination": "d"}', "body: expected array, got object"),
        (b"[" + b'{"destination": "d"},' * 100 + b'{"destination": "d"}]', "body: expected at most 100 items, got 101"),
        (b"", "body: required"),
        (b"{", "body: invalid JSON: Expecting property name enclosed in double quotes at line 1 column 2"),
        (b"nope", "body: invalid JSON: Expecting value at line 1 column 1"),
        (b'[{"destination": NaN}]', "body: invalid JSON: NaN is not valid JSON"),
        (b'["\xff"]', "body: invalid UTF-8 at byte 2"),
    ],
)
def test_body_messages(contract: Contract, body: bytes, message: str) -> None:
    with pytest.raises(BadRequest) as e:
        validate(contract, "POST", "/v1/qstash/batch", body=body, content_type="application/json")
    assert e.value.message == message


def test_json_body_is_parsed_even_without_content_type(contract: Contract) -> None:
    req = validate(contract, "POST", "/v1/qstash/batch", body=b'[{"destination": "https://a"}]', content_type=None)
    assert req.json == [{"destination": "https://a"}]


def test_deep_nesting_is_a_400_not_a_crash(contract: Contract) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(BadRequest, match="^body: JSON nested too deeply$"):
        validate(contract, "POST", "/v1/qstash/batch", body=deep, content_type="application/json")
    # Parses, but recursing through the recursive $ref schema runs out of stack: still a 400.
    node = b'{"children": [' * 400 + b"{}" + b"]}" * 400
    try:
        validate(contract, "POST", "/v1/qstash/tree", body=node, content_type="application/json")
    except BadRequest as e:
        assert e.message == "body: JSON nested too deeply"


def test_recursive_schema_validates_through_the_registry(contract: Contract) -> None:
    ok = validate(contract, "POST", "/v1/qstash/tree", body=b'{"children": [{"children": [{"name": "x"}]}]}')
    assert ok.json["children"][0]["children"][0]["name"] == "x"
    with pytest.raises(BadRequest, match="^body /children/0/children/0/name: expected string, got integer$"):
        validate(contract, "POST", "/v1/qstash/tree", body=b'{"children": [{"children": [{"name": 1}]}]}')


def test_unknown_upstash_headers_get_suggestions(contract: Contract) -> None:
    op = contract.operation("publish")
    hdrs = headers(
        Upstash_Retry="3",
        Upstash_Forward_Authorization="x",
        Upstash_Callback_Retries="1",
        Upstash_Failure_Callback_Forward_A="b",
        Upstash_Retries="1",
        Upstash_Zzz="1",
        Content_Type="x",
    )
    assert op.unknown_upstash_headers(hdrs) == [("Upstash-Retry", "Upstash-Retries"), ("Upstash-Zzz", None)]
    assert contract.operation("batch").unknown_upstash_headers(["Upstash-Forward-A", "upstash-delay"]) == [
        ("upstash-delay", None)
    ]


# ------------------------------------------------------------------ responses and handlers


def test_validate_response(contract: Contract) -> None:
    path = "/v1/qstash/publish/https://a.com"
    assert contract.validate_response("POST", path, 201, "application/json", b'{"messageId": "m"}') == []
    assert contract.validate_response("POST", path, 201, "application/json", b'{"id": "m"}') == [
        "publish 201 body /id: unexpected property",
        "publish 201 body /messageId: required property missing",
    ]
    assert contract.validate_response("POST", path, 500, "application/json", b'{"error": "x"}') == [
        "publish: status 500 is not documented (documented: 201, 400)"
    ]
    assert contract.validate_response("POST", path, 201, "text/plain", b"m") == [
        "publish 201: content type 'text/plain' not documented (documented: application/json)"
    ]
    assert contract.validate_response("POST", "/v1/qstash/batch", 429, "application/json", b'{"error": "s"}') == []
    assert contract.validate_response("POST", "/v1/qstash/batch", 429, "application/json", b"{}") == [
        "batch 429 body /error: required property missing"
    ]
    assert contract.validate_response("POST", "/v1/qstash/tree", 204, None, b"") == []
    assert contract.validate_response("POST", "/v1/qstash/tree", 204, "text/plain", b"x") == [
        "tree 204: body not documented, got 1 bytes"
    ]


def test_validate_response_for_router_errors(contract: Contract) -> None:
    assert contract.validate_response("GET", "/nope", 404, "application/json", b'{"error": "no"}') == []
    assert contract.validate_response("PUT", "/v1/qstash/queues/q", 405, "application/json", b'{"error": "x"}') == []
    assert contract.validate_response("GET", "/nope", 404, "application/json", b'{"message": "no"}') == [
        "GET /nope 404 body /error: required property missing"
    ]
    assert contract.validate_response("GET", "/nope", 200, "application/json", b"{}") == [
        "GET /nope: router answer must be 404, got 200"
    ]


def test_check_handlers_both_directions(contract: Contract) -> None:
    contract.check_handlers(contract.operation_ids)
    ids = set(contract.operation_ids) - {"batch", "tree"} | {"legacyPublish"}
    with pytest.raises(ContractError) as e:
        contract.check_handlers(ids)
    assert str(e.value) == ("operations without handler: batch, tree; handlers without operation: legacyPublish")


def test_router_errors_per_status_and_common_responses() -> None:
    spec = yaml.safe_load(SPEC_YAML)
    spec["x-router-errors"] = {
        "404": {"$ref": "#/components/schemas/Error"},
        "413": {"$ref": "#/components/responses/Error"},
    }
    spec["x-common-responses"] = {"429": {"$ref": "#/components/responses/Error"}}
    c = Contract.from_spec(spec)
    assert c.validate_response("GET", "/nope", 404, "application/json", b'{"error": "x"}') == []
    # 413 is a router answer for any route, documented by the operation or not.
    assert c.validate_response("GET", "/v1/qstash/queues", 413, "application/json", b'{"error": "big"}') == []
    assert c.validate_response("GET", "/v1/qstash/queues", 413, "application/json", b"[]") == [
        "GET /v1/qstash/queues 413 body: expected object, got array"
    ]
    assert c.statuses("listQueues") == {200, 429}


def test_one_of_messages_list_the_alternatives() -> None:
    spec = {
        "paths": {
            "/a": {
                "post": {
                    "operationId": "a",
                    "requestBody": {
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "by": {"oneOf": [{"type": "string", "maxLength": 3}, {"type": "number"}]}
                                    },
                                }
                            }
                        }
                    },
                }
            }
        }
    }
    op, _ = Contract.from_spec(spec).match("POST", "/a")
    with pytest.raises(BadRequest) as e:
        op.validate_request({}, {}, {}, b'{"by": true}', "application/json")
    assert e.value.message == "body /by: expected exactly one of: string of at most 3 characters; number, got true"


def test_query_arrays_without_explode_are_comma_separated() -> None:
    spec = {
        "paths": {
            "/a": {
                "get": {
                    "operationId": "a",
                    "parameters": [
                        {
                            "name": "ids",
                            "in": "query",
                            "explode": False,
                            "schema": {"type": "array", "items": {"type": "integer"}},
                        },
                        {"name": "ratio", "in": "query", "schema": {"type": "number", "maximum": 1}},
                    ],
                }
            }
        }
    }
    op, _ = Contract.from_spec(spec).match("GET", "/a")
    assert op.validate_request({}, {"ids": "1,2, 3", "ratio": "0.5"}, {}, b"").query == {"ids": [1, 2, 3], "ratio": 0.5}
    with pytest.raises(BadRequest, match=r'^query ids: expected integer, got "x"$'):
        op.validate_request({}, {"ids": "1,x"}, {}, b"")
    with pytest.raises(BadRequest, match=r'^query ratio: expected number <= 1, got "nan"$'):
        op.validate_request({}, {"ratio": "nan"}, {}, b"")


# ------------------------------------------------------------------ the real spec

real_spec = pytest.mark.skipif(not REAL_SPEC.exists(), reason="openapi.yaml not written yet")


@pytest.fixture(scope="module")
def real() -> Contract:
    return Contract.load()


@real_spec
def test_real_spec_compiles_and_every_operation_has_an_id(real: Contract) -> None:
    for template, item in real.spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
                assert op.get("operationId"), f"{method.upper()} {template} has no operationId"
    assert len(real.operation_ids) == len(set(real.operation_ids)) > 0


@real_spec
def test_real_spec_routes(real: Contract) -> None:
    op, params = real.match("POST", "/v1/qstash/publish/https://example.com//a?b=1")
    assert op.path_template == "/v1/qstash/publish/{destination}"
    assert params == {"destination": "https://example.com//a?b=1"}
    assert real.match("GET", "/v1/qstash/schedules/scd_1")[0].path_template == "/v1/qstash/schedules/{scheduleId}"
    assert real.match("POST", "/v1/qstash/schedules/https://a.com/x")[0].path_template == (
        "/v1/qstash/schedules/{destination}"
    )
    assert real.match("PATCH", "/v1/qstash/schedules/scd_1/pause")[0].path_template == (
        "/v1/qstash/schedules/{scheduleId}/pause"
    )
    assert real.match("POST", "/v1/qstash/schedules/scd_1/pause")[0].path_template == (
        "/v1/qstash/schedules/{scheduleId}/pause"
    )
    assert real.match("GET", "/v1/qstash/queues")[0].path_template == "/v1/qstash/queues"
    with pytest.raises(NotFound):
        real.match("GET", "/v1/qstash/nope")


@real_spec
def test_real_spec_publish_throughput(real: Contract) -> None:
    """Prints match + validate + unknown-header checks per second for publish (run with -s to see it)."""
    hdrs = CIMultiDictProxy(
        CIMultiDict(
            {
                "Host": "127.0.0.1:8080",
                "User-Agent": "python-httpx",
                "Accept": "*/*",
                "Connection": "keep-alive",
                "Authorization": "Bearer sk_test",
                "Content-Type": "application/json",
                "Content-Length": "17",
                "Upstash-Retries": "3",
                "Upstash-Delay": "10s",
                "Upstash-Method": "POST",
                "Upstash-Forward-X-Trace": "a",
            }
        )
    )
    query = MultiDict(b="1")
    raw = "/v1/qstash/publish/https://example.com/hook?b=1"

    def once() -> object:
        op, params = real.match("POST", raw)
        req = op.validate_request(hdrs, query, params, b'{"hello":"world"}', "application/json")
        assert not op.unknown_upstash_headers(hdrs)
        return req

    assert once().headers == {"Upstash-Retries": 3, "Upstash-Delay": "10s", "Upstash-Method": "POST"}
    n, start = 20_000, time.perf_counter()
    for _ in range(n):
        once()
    rate = n / (time.perf_counter() - start)
    print(f"\npublish match+validate+unknown-headers: {rate:,.0f}/s ({1e6 / rate:.1f} us each)")


def test_shipped_spec_schemas_are_valid_json_schema() -> None:
    """The server skips meta-validation at start-up; this is where the shipped spec gets it."""
    checked = Contract.load(check=True)
    assert checked.operation_ids == Contract.load().operation_ids


def test_loading_the_spec_writes_nothing_to_the_home_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qstash_sim.contract.load import load_spec

    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n")
    assert load_spec(spec_file)["info"]["title"] == "t"
    assert load_spec()["openapi"].startswith("3.1")
    assert list(home.rglob("*")) == []
