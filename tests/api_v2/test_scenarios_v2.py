"""Fault scenarios target native QStash operations by their namespaced operationIds (``qstash.publish``),
checked against those operations' own ``x-fault-statuses``; a fault on ``/v2`` leaves ``/v1/qstash`` alone."""

from __future__ import annotations

from conftest import Client, Receiver, Served

H = {"Authorization": "Bearer tok_faults"}


def _load(client: Client, text: str) -> object:
    return client.post("/_sim/scenarios", body=text, headers={"Content-Type": "application/yaml"})


RATE_LIMITED = """
name: v2-throttle
rules:
  - name: second-publish-429
    match: {operation: qstash.publish}
    after: 1
    times: 1
    action: {respond: {status: 429, message: "too many requests", headers: {Retry-After: "7"}}}
"""


def test_a_rule_on_qstash_publish_fires_on_v2_only(served: Served, client: Client, receiver: Receiver) -> None:
    r = _load(client, RATE_LIMITED)
    assert r.status == 200, r.text  # type: ignore[attr-defined]
    url = receiver.url("/f")
    first = client.post(f"/v2/publish/{url}", body=b"a", headers=H)
    second = client.post(f"/v2/publish/{url}", body=b"b", headers=H)
    v1 = client.post(f"/v1/qstash/publish/{url}", body=b"c", headers={"x-api-key": "tok_faults"})
    third = client.post(f"/v2/publish/{url}", body=b"d", headers=H)
    assert (first.status, second.status, v1.status, third.status) == (200, 429, 200, 200)
    assert second.json == {"error": "too many requests"} and second.headers["Retry-After"] == "7"
    served.settle()
    assert sorted(d["body"] for d in receiver.received) == [b"a", b"c", b"d"]  # the refused call stored nothing
    requests = client.get("/_sim/journal?kind=request").json["entries"]
    (hit,) = [e for e in requests if e["rule"]]
    assert (hit["operation"], hit["status"], hit["rule"]) == ("qstash.publish", 429, "v2-throttle/second-publish-429")


def test_a_status_the_v2_operation_does_not_document_is_refused_at_load(client: Client) -> None:
    r = _load(
        client,
        "name: bad\nrules:\n  - match: {operation: qstash.getQueue}\n    action: {respond: {status: 418}}\n",
    )
    assert r.status == 400
    assert "418" in r.json["error"] and "qstash.getQueue" in r.json["error"]  # type: ignore[attr-defined]


def test_a_misspelt_v2_operation_gets_a_suggestion(client: Client) -> None:
    text = "name: bad\nrules:\n  - match: {operation: qstash.publsh}\n    action: {respond: {status: 500}}\n"
    r = _load(client, text)
    assert r.status == 400 and "qstash.publish" in r.json["error"]  # type: ignore[attr-defined]
