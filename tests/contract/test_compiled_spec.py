"""The contract's compiled form (``qstash_sim.contract.compiled``): exactly the YAML's content, used only
when it matches the YAML as it is now, and shipped in the wheel."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from qstash_sim.base import resources
from qstash_sim.contract import load
from qstash_sim.contract.compiled import compiled_form, parse_yaml

ROOT = Path(__file__).resolve().parents[2]


def test_the_compiled_form_is_the_yaml_exactly() -> None:
    raw = (ROOT / "openapi.yaml").read_bytes()
    doc = json.loads(compiled_form(raw))
    assert doc["sha256"] == hashlib.sha256(raw).hexdigest()
    assert doc["spec"] == parse_yaml(raw.decode())  # no key or value JSON would change
    assert load.load_spec() == parse_yaml(raw.decode())


def test_a_stale_compiled_form_is_ignored_and_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_file = tmp_path / "openapi.yaml"
    yaml_file.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n")
    compiled = tmp_path / "build" / "qstash-sim" / "openapi.json"
    compiled.parent.mkdir(parents=True)
    compiled.write_text(json.dumps({"sha256": "0" * 64, "spec": {"stale": True}}))
    monkeypatch.setattr(load, "spec_file", lambda: yaml_file)
    monkeypatch.setattr(load, "compiled_spec_files", lambda: (None, compiled))
    assert load.load_spec()["info"]["title"] == "t"  # the stale one is not used
    assert json.loads(compiled.read_text())["spec"]["info"]["title"] == "t"  # and is written anew
    yaml_file.write_text("openapi: 3.1.0\ninfo: {title: edited, version: '1'}\npaths: {}\n")
    assert load.load_spec()["info"]["title"] == "edited"  # an edited YAML counts at once


def test_an_unwritable_place_falls_back_to_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    yaml_file = tmp_path / "openapi.yaml"
    yaml_file.write_text("openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n")
    blocker = tmp_path / "build"
    blocker.write_text("a file where the folder should be")
    monkeypatch.setattr(load, "spec_file", lambda: yaml_file)
    monkeypatch.setattr(load, "compiled_spec_files", lambda: (None, blocker / "qstash-sim" / "openapi.json"))
    assert load.load_spec()["info"]["title"] == "t"


def test_the_checkout_place_is_inside_the_checkout() -> None:
    packaged, checkout = resources.compiled_spec_files()
    assert checkout is not None and checkout.is_relative_to(ROOT / "build")


def test_the_wheel_ships_the_compiled_form(built_wheel: Path) -> None:
    with zipfile.ZipFile(built_wheel) as whl:
        doc = json.loads(whl.read("qstash_sim/openapi.json"))
        raw = whl.read("qstash_sim/openapi.yaml")
    assert doc["sha256"] == hashlib.sha256(raw).hexdigest()
