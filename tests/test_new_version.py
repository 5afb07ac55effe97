"""`runner new` scaffolds the next version by round-tripping the previous one: comments and
key order survive, and only the fields that must change do."""

from __future__ import annotations

import difflib
from pathlib import Path

from runner.specs import load_adapter
from runner.workspace import Workspace
from tests.conftest import edit

SOURCE = "adapters/demo-v1"
TARGET = "adapters/demo-v2"


def changed_lines(before: Path, after: Path) -> list[str]:
    diff = difflib.unified_diff(
        before.read_text().splitlines(), after.read_text().splitlines(), n=0, lineterm=""
    )
    return [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")]


def test_new_version_differs_only_in_identity_fields(demo_repo, run_cli):
    edit(demo_repo / SOURCE / "qlora.yaml", "r: 16", "r: 16  # rank: keep small for 135M")

    code, out, _ = run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")

    assert code == 0
    assert f"created {TARGET} from demo-v1" in out
    src, dst = demo_repo / SOURCE, demo_repo / TARGET
    assert changed_lines(src / "adapter.yaml", dst / "adapter.yaml") == [
        "-version: 1",
        "+version: 2",
        "+lineage:",
        "+  parent: demo-v1",
    ]
    for unchanged in ("qlora.yaml", "dataset.yaml", "eval.yaml"):
        assert (dst / unchanged).read_text() == (src / unchanged).read_text()
    assert "# rank: keep small for 135M" in (dst / "qlora.yaml").read_text()
    assert load_adapter(Workspace(demo_repo), dst).ok


def test_new_version_keeps_explicit_nulls(demo_repo, run_cli):
    edit(
        demo_repo / SOURCE / "adapter.yaml",
        "  repo_id: demo-org/demo-lora",
        "  repo_id: demo-org/demo-lora\ntraining:\n  space_id: null",
    )
    assert run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")[0] == 0
    assert "  space_id: null\n" in (demo_repo / TARGET / "adapter.yaml").read_text()


def test_new_version_with_a_new_dataset_version_repoints_the_manifest(demo_repo, run_cli):
    code, out, _ = run_cli(
        "new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1", "--dataset", "v2"
    )

    assert code == 0
    assert f"runner dataset lock {TARGET}" in out
    changed = changed_lines(
        demo_repo / SOURCE / "dataset.yaml", demo_repo / TARGET / "dataset.yaml"
    )
    assert "-version: v1" in changed
    assert "+version: v2" in changed
    assert "+    path: datasets/demo/v2/train.jsonl" in changed
    assert "+    path: datasets/demo/v2/eval.jsonl" in changed
    assert not [line for line in changed if line.startswith("+") and "sha256" in line]
    assert all(line.startswith("-") for line in changed if "sha256" in line)


def test_new_refuses_to_overwrite_or_to_go_backwards(demo_repo, run_cli):
    assert run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")[0] == 0

    code, _, err = run_cli("new", "--repo", demo_repo, "demo-v2", "--from", "demo-v1")
    assert code == 2
    assert f"{TARGET} already exists" in err

    code, _, err = run_cli("new", "--repo", demo_repo, "demo-v1", "--from", "demo-v2")
    assert code == 2
    assert "version 1 is not newer than demo-v2; use demo-v3" in err

    code, _, err = run_cli("new", "--repo", demo_repo, "Demo_2", "--from", "demo-v1")
    assert code == 2
    assert "is not an adapter directory name" in err
