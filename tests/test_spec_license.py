"""A dataset's license is an id the Hub accepts, spelled as the Hub spells it, or `other`
named by `license_name` and `license_link`, as the Hub's cards name it. `runner validate`
refuses anything else at its line with the fix, and the schema offers the Hub's list."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import ModelCard, constants

from runner.promote.card import render_model_card
from runner.specs.load import require_adapter
from runner.workspace import Workspace
from tests.conftest import RunCli, edit
from tests.test_eval_comment import report
from tests.test_model_card import PROVENANCE

MANIFEST = "adapters/demo-v1/dataset.yaml"
LICENSE_LINE = 4  # `license: apache-2.0` in the fixture's dataset.yaml
CUSTOM_LICENSE = (
    "license: other\n"
    "license_name: acme-data-1.0\n"
    "license_link: https://example.com/acme-data-license\n"
)


def set_license(repo: Path, lines: str) -> None:
    edit(repo / MANIFEST, "license: apache-2.0\n", lines)


def validate(run_cli: RunCli, repo: Path) -> tuple[int, list[dict[str, Any]]]:
    code, out, _ = run_cli("validate", "--repo", repo, "--format", "json")
    found = json.loads(out)["findings"]
    return code, [f for f in found if f["severity"] == "error"]


@pytest.mark.parametrize(
    ("written", "suggested"),
    [
        ("Apache-2.0", "apache-2.0"),
        ("MIT", "mit"),
        ("GPL-3.0-only", "gpl-3.0"),
        ("cc0", "cc0-1.0"),
        ("cc-by-4", "cc-by-4.0"),
    ],
)
def test_a_license_spelled_unlike_the_hub_is_refused_with_the_hubs_id(
    demo_repo: Path, run_cli: RunCli, written: str, suggested: str
) -> None:
    set_license(demo_repo, f"license: {written}\n")
    code, errors = validate(run_cli, demo_repo)
    assert code == 2  # a spec the runner cannot use
    [error] = errors
    assert (error["path"], error["line"], error["rule_id"]) == (
        MANIFEST,
        LICENSE_LINE,
        "spec.license",
    )
    assert f'"{written}" is not a license id the Hub accepts' in error["message"]
    assert f"did you mean `{suggested}`?" in error["message"]


def test_a_license_not_on_the_hubs_list_is_pointed_to_other(
    demo_repo: Path, run_cli: RunCli
) -> None:
    set_license(demo_repo, "license: my-license\n")
    code, errors = validate(run_cli, demo_repo)
    assert code == 2  # a spec the runner cannot use
    [error] = errors
    assert (error["path"], error["line"]) == (MANIFEST, LICENSE_LINE)
    assert "did you mean" not in error["message"]
    assert "`other`, named by `license_name` and `license_link`" in error["message"]
    assert "https://huggingface.co/docs/hub/repositories-licenses" in error["message"]


def test_a_named_other_license_validates(demo_repo: Path, run_cli: RunCli) -> None:
    set_license(demo_repo, CUSTOM_LICENSE)
    assert validate(run_cli, demo_repo) == (0, [])


@pytest.mark.parametrize("missing", ["license_name", "license_link"])
def test_other_without_its_name_or_link_is_refused(
    demo_repo: Path, run_cli: RunCli, missing: str
) -> None:
    lines = "".join(line + "\n" for line in CUSTOM_LICENSE.splitlines() if missing not in line)
    set_license(demo_repo, lines)
    code, errors = validate(run_cli, demo_repo)
    assert code == 2  # a spec the runner cannot use
    [error] = errors
    assert (error["path"], error["line"]) == (MANIFEST, LICENSE_LINE)
    assert "`license: other` needs `license_name`" in error["message"]
    assert f"add `{missing}`" in error["message"]


def test_a_license_name_beside_a_listed_id_is_refused(demo_repo: Path, run_cli: RunCli) -> None:
    set_license(demo_repo, "license: mit\nlicense_name: acme-data-1.0\n")
    code, errors = validate(run_cli, demo_repo)
    assert code == 2  # a spec the runner cannot use
    [error] = errors
    assert (error["path"], error["line"]) == (MANIFEST, LICENSE_LINE + 1)
    assert "`license_name` is only for `license: other`; remove it" in error["message"]


def test_a_license_link_that_is_not_a_url_is_refused(demo_repo: Path, run_cli: RunCli) -> None:
    set_license(demo_repo, CUSTOM_LICENSE.replace("https://example.com/", "LICENSE "))
    code, errors = validate(run_cli, demo_repo)
    assert code == 2  # a spec the runner cannot use
    [error] = errors
    assert (error["path"], error["line"]) == (MANIFEST, LICENSE_LINE + 2)
    assert "the license's http(s) URL" in error["message"]


def test_the_model_card_names_and_links_an_other_license(demo_repo: Path) -> None:
    set_license(demo_repo, CUSTOM_LICENSE)
    bundle = require_adapter(Workspace(demo_repo), "adapters/demo-v1")
    body = ModelCard(render_model_card(bundle, report(), PROVENANCE)).text
    assert "| License | [`acme-data-1.0`](https://example.com/acme-data-license) |" in body


def test_the_schema_offers_exactly_the_ids_the_hub_accepts(
    demo_repo: Path, run_cli: RunCli, hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Editors complete the license from the schema; every id it offers passes the (emulated)
    Hub's card check, and the same id in capitals passes neither."""
    assert run_cli("schema", "--repo", demo_repo)[0] == 0
    schema = json.loads((demo_repo / "schemas/dataset.schema.json").read_text(encoding="utf-8"))
    offered = schema["properties"]["license"]["enum"]
    assert {"apache-2.0", "cc-by-4.0", "mit", "other"} <= set(offered)
    monkeypatch.setattr(constants, "ENDPOINT", hub.endpoint)  # RepoCard.validate posts there
    ModelCard(f"---\nlicense: {json.dumps(offered)}\n---\n# An adapter\n").validate()
    with pytest.raises(ValueError, match='"license" must be one of'):
        ModelCard("---\nlicense: Apache-2.0\n---\n# An adapter\n").validate()
    assert "Apache-2.0" not in offered
