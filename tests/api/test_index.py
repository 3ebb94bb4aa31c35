"""``GET /`` answers a short index instead of 404; every other unowned path still answers 404."""

from __future__ import annotations

from conftest import Client
from qstash_sim.base.version import __version__


def test_the_root_is_an_index_of_what_is_served(client: Client) -> None:
    r = client.get("/")  # the test client checks the answer against openapi.yaml
    assert r.status == 200
    body = r.json
    assert (body["name"], body["version"], body["clock"]) == ("qstash-sim", __version__, "virtual")
    mounts = {s["name"]: s["mount"] for s in body["surfaces"]}
    assert mounts["sapiom"] == ["/v1/"] and mounts["control"] == ["/_sim/"] and "index" not in mounts
    assert body["links"]["health"] == "/_sim/health"
    assert client.get(body["links"]["health"]).status == 200


def test_other_paths_and_methods_still_answer_404_and_405(client: Client) -> None:
    nope = client.get("/nope/deeper?x=1")
    assert nope.status == 404 and nope.json == {"error": "no such route: GET /nope/deeper"}
    post = client.post("/", body=b"{}")
    assert post.status == 405 and "allowed: GET" in post.json["error"]


def test_accounts_lists_every_account_with_its_keys(client: Client) -> None:
    for key in ("alice", "bob"):
        assert (
            client.post("/v1/qstash/publish/https://example.com/x", body=b"{}", headers={"x-api-key": key}).status
            == 200
        )
    listed = {a["name"]: a for a in client.get("/_sim/accounts").json["accounts"]}
    assert {"alice", "bob"} <= set(listed) and listed["alice"]["messages"] == 1
    keys = client.get("/_sim/signing-keys?account=bob").json
    assert (listed["bob"]["current"], listed["bob"]["next"]) == (keys["current"], keys["next"])
    newest = client.get("/_sim/accounts?limit=1").json
    assert [a["name"] for a in newest["accounts"]] == ["bob"] and newest["truncated"] is True
    assert client.get("/_sim/accounts?limit=0").status == 400
