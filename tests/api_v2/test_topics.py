"""``/v2/topics``: URL groups (endpoints named or not, add, remove, list, get, delete; caps)."""

from __future__ import annotations

import pytest

from conftest import Client, Served
from qstash_sim.core import topics

H = {"Authorization": "Bearer tok_topics"}


def _add(client: Client, name: str, *endpoints: dict[str, str]) -> dict[str, object]:
    r = client.post(f"/v2/topics/{name}/endpoints", json_body={"endpoints": list(endpoints)}, headers=H)
    assert r.status == 200, r.body
    return dict(r.json)


def test_add_update_list_get_delete(served: Served, client: Client) -> None:
    g = _add(client, "g1", {"url": "https://a.example/x", "name": "a"}, {"url": "https://b.example/y"})
    assert g["name"] == "g1" and g["createdAt"] == g["updatedAt"]
    assert g["endpoints"] == [{"url": "https://a.example/x", "name": "a"}, {"url": "https://b.example/y"}]
    served.advance("1s")
    # a named endpoint is replaced by name, an unnamed one by URL; others are appended
    g = _add(
        client,
        "g1",
        {"url": "https://a2.example/x", "name": "a"},
        {"url": "https://b.example/y"},
        {"url": "https://c.example/"},
    )
    assert g["endpoints"] == [
        {"url": "https://a2.example/x", "name": "a"},
        {"url": "https://b.example/y"},
        {"url": "https://c.example/"},
    ]
    assert g["updatedAt"] == g["createdAt"] + 1000
    _add(client, "g2", {"url": "https://d.example/"})
    assert [x["name"] for x in client.get("/v2/topics", headers=H).json] == ["g1", "g2"]
    assert client.get("/v2/topics/g2", headers=H).json["endpoints"] == [{"url": "https://d.example/"}]
    r = client.delete("/v2/topics/g2", headers=H)
    assert r.status == 200 and r.json == {"deleted": "g2"}
    assert client.get("/v2/topics/g2", headers=H).status == 404
    assert client.delete("/v2/topics/g2", headers=H).status == 404


def test_remove_by_name_or_url_and_the_group_goes_when_empty(client: Client) -> None:
    _add(client, "g", {"url": "https://a.example/", "name": "a"}, {"url": "https://b.example/"})
    r = client.delete("/v2/topics/g/endpoints", json_body={"endpoints": [{"name": "a"}, {"name": "nobody"}]}, headers=H)
    assert r.status == 200 and r.json["endpoints"] == [{"url": "https://b.example/"}]
    r = client.delete("/v2/topics/g/endpoints", json_body={"endpoints": [{"url": "https://b.example/"}]}, headers=H)
    assert r.status == 200 and r.json["endpoints"] == []
    assert client.get("/v2/topics/g", headers=H).status == 404
    r = client.delete("/v2/topics/g/endpoints", json_body={"endpoints": [{"name": "a"}]}, headers=H)
    assert r.status == 404 and "url group g not found" in r.error


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"endpoints": [{"url": "ftp://a"}]}, "body /endpoints/0/url"),
        ({"endpoints": [{"url": "https://a.example/", "name": "a b"}]}, "name"),
        ({"endpoints": []}, "body /endpoints"),
        ({"endpoints": [{"name": "only-a-name"}]}, "url"),
        ({"urls": ["https://a.example/"]}, "body"),
    ],
)
def test_bad_endpoint_lists_are_400s(client: Client, body: object, message: str) -> None:
    r = client.post("/v2/topics/g/endpoints", json_body=body, headers=H)
    assert r.status == 400 and message in r.error, r.error
    assert client.get("/v2/topics/g", headers=H).status == 404


def test_bad_group_names_are_400s(client: Client) -> None:
    r = client.get("/v2/topics/a%20b", headers=H)
    assert r.status == 400 and "path urlGroupName" in r.error


def test_the_stores_are_capped_with_412(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(topics, "MAX_ENDPOINTS", 2)
    monkeypatch.setattr(topics, "MAX_URL_GROUPS", 1)
    _add(client, "g", {"url": "https://a.example/"}, {"url": "https://b.example/"})
    r = client.post("/v2/topics/g/endpoints", json_body={"endpoints": [{"url": "https://c.example/"}]}, headers=H)
    assert r.status == 412 and "at most 2 endpoints" in r.error
    assert len(client.get("/v2/topics/g", headers=H).json["endpoints"]) == 2
    r = client.post("/v2/topics/h/endpoints", json_body={"endpoints": [{"url": "https://c.example/"}]}, headers=H)
    assert r.status == 412 and "at most 1 URL groups" in r.error


def test_groups_are_per_account(client: Client) -> None:
    _add(client, "mine", {"url": "https://a.example/"})
    other = {"Authorization": "Bearer another-account"}
    assert client.get("/v2/topics", headers=other).json == []
    assert client.post("/v2/publish/mine", body=b"x", headers=other).status == 404
