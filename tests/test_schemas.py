"""The JSON Schemas in schemas/ are generated from the spec models and kept current; every
spec file names its schema on its first line, and the schemas accept every example."""

from __future__ import annotations

import json

import jsonschema
import pytest
from ruamel.yaml import YAML

from runner.specs import SPEC_FILES
from runner.specs.schema import render_schemas
from tests.conftest import REPO_ROOT

EXAMPLE_SPEC_FILES = sorted(
    path for spec in SPEC_FILES for path in (REPO_ROOT / "adapters").glob(f"*/{spec.filename}")
)


def test_committed_schemas_are_current(run_cli):
    code, out, _ = run_cli("schema", "--check", "--repo", REPO_ROOT)
    assert code == 0, out


def test_schema_check_notices_a_stale_schema(demo_repo, run_cli):
    (demo_repo / "schemas/qlora.schema.json").write_text("{}\n")
    code, out, _ = run_cli("schema", "--check", "--repo", demo_repo)
    assert code == 1
    assert "schemas/qlora.schema.json is stale; run `runner schema`" in out
    assert run_cli("schema", "--repo", demo_repo)[0] == 0
    assert run_cli("schema", "--check", "--repo", demo_repo)[0] == 0


def test_schemas_forbid_unknown_keys_and_document_fields():
    qlora = json.loads(render_schemas()["qlora.schema.json"])
    assert qlora["additionalProperties"] is False
    assert "scaling" in qlora["properties"]["lora_alpha"]["description"]


@pytest.mark.parametrize("path", EXAMPLE_SPEC_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_example_spec_names_and_satisfies_its_schema(path):
    text = path.read_text()
    header = text.splitlines()[0]
    schema_name = f"{path.stem}.schema.json"
    assert header == f"# yaml-language-server: $schema=../../schemas/{schema_name}"
    schema = json.loads((REPO_ROOT / "schemas" / schema_name).read_text())
    jsonschema.validate(YAML(typ="safe").load(text), schema)
