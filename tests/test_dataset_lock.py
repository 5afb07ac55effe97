"""`runner dataset lock` records each data file's sha256, record count and records per
category in dataset.yaml, and keeps the rest of the file as written."""

from __future__ import annotations

import hashlib
import json

from ruamel.yaml import YAML

from tests.conftest import edit

A = "adapters/demo-v1"


def test_lock_records_hash_and_counts_and_keeps_comments(demo_repo, run_cli):
    manifest = demo_repo / A / "dataset.yaml"
    edit(manifest, "license: apache-2.0", "license: apache-2.0  # same as the code")
    with manifest.open("a") as handle:
        handle.write("  other:\n    min_train: 1\n    min_eval: 1\n")
    train = demo_repo / "datasets/demo/v1/train.jsonl"
    extra = json.loads(train.read_text().splitlines()[0]) | {"id": "demo-3", "category": "other"}
    with train.open("a") as handle:
        handle.write(json.dumps(extra) + "\n\n")

    code, out, _ = run_cli("dataset", "lock", "--repo", demo_repo, A)

    assert code == 0
    assert "train: 3 examples" in out
    data = YAML(typ="safe").load(manifest.read_text())
    assert data["files"]["train"]["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    assert data["files"]["train"]["examples"] == 3
    assert data["files"]["train"]["category_counts"] == {"python": 2, "other": 1}
    assert "# same as the code" in manifest.read_text()


def test_lock_twice_changes_nothing(demo_repo, run_cli):
    run_cli("dataset", "lock", "--repo", demo_repo, A)
    before = (demo_repo / A / "dataset.yaml").read_text()

    code, out, _ = run_cli("dataset", "lock", "--repo", demo_repo, A)

    assert code == 0
    assert "already up to date" in out
    assert (demo_repo / A / "dataset.yaml").read_text() == before


def test_lock_refuses_lines_it_could_not_read(demo_repo, run_cli):
    with (demo_repo / "datasets/demo/v1/eval.jsonl").open("a") as handle:
        handle.write("{not json\n")
    before = (demo_repo / A / "dataset.yaml").read_text()

    code, _, err = run_cli("dataset", "lock", "--repo", demo_repo, A)

    assert code == 2
    assert "datasets/demo/v1/eval.jsonl:2 not JSON" in err
    assert (demo_repo / A / "dataset.yaml").read_text() == before


def test_a_comment_above_the_next_key_stays_above_it_when_lock_adds_fields(demo_repo, run_cli):
    manifest = demo_repo / A / "dataset.yaml"
    text = manifest.read_text()
    eval_entry = text[text.index("  eval:\n") : text.index("categories:")]
    comment = "# Categories are behaviours, not topics: the gate scores each one separately.\n"
    unlocked = "  eval:\n    path: datasets/demo/v1/eval.jsonl\n" + comment
    manifest.write_text(text.replace(eval_entry, unlocked))

    code, _, err = run_cli("dataset", "lock", "--repo", demo_repo, A)

    assert code == 0, err
    locked = manifest.read_text()
    assert comment + "categories:\n" in locked
    assert YAML(typ="safe").load(locked)["files"]["eval"]["examples"] == 1
