"""Same inputs, same run id (no second GPU bill); any change to what is trained or how its
eval outputs are generated gives a new one, and nothing else does."""

from __future__ import annotations

import pytest

from runner.runs import run_id as run_id_module
from runner.runs.run_id import run_id
from runner.specs import require_adapter
from runner.workspace import Workspace
from tests.conftest import edit

A = "adapters/demo-v1"


def current(repo) -> str:
    return run_id(require_adapter(Workspace(repo), A), repo)


def test_the_same_specs_give_the_same_run_id(demo_repo):
    assert current(demo_repo) == current(demo_repo)
    assert len(current(demo_repo)) == 16


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("qlora.yaml", "r: 16", "r: 8"),
        ("qlora.yaml", "learning_rate: 2.0e-4", "learning_rate: 1.0e-4"),
        ("adapter.yaml", "12fd25f77366fa6b3b4b768ec3050bf629380bac", "a" * 40),
        ("adapter.yaml", "publish:", "training:\n  engine: autotrain\npublish:"),
        (
            "eval.yaml",
            "primary_metric: python_parse_rate",
            "primary_metric: python_parse_rate\ngeneration:\n  max_new_tokens: 64",
        ),
    ],
    ids=["rank", "learning rate", "base revision", "engine", "generation"],
)
def test_a_change_to_what_is_trained_gives_a_new_run_id(demo_repo, file, old, new):
    before = current(demo_repo)
    edit(demo_repo / A / file, old, new)
    assert current(demo_repo) != before


def test_a_change_to_the_data_gives_a_new_run_id(demo_repo):
    before = current(demo_repo)
    edit(demo_repo / "datasets/demo/v1/train.jsonl", "Add two integers.", "Add two ints.")
    assert current(demo_repo) != before


def test_a_change_to_the_training_script_gives_a_new_run_id(demo_repo, tmp_path, monkeypatch):
    before = current(demo_repo)
    script = tmp_path / "train.py"
    script.write_text("# another version of the training script\n")
    monkeypatch.setattr(run_id_module, "TRAIN_SCRIPT", script)
    assert current(demo_repo) != before


@pytest.mark.parametrize(
    ("file", "old", "new"),
    [
        ("eval.yaml", "python_parse_rate: 0.9", "python_parse_rate: 0.95"),
        ("adapter.yaml", "description: Fixture adapter", "description: The fixture adapter"),
        ("adapter.yaml", "repo_id: demo-org/demo-lora", "repo_id: demo-org/other-lora"),
    ],
    ids=["threshold", "description", "publish target"],
)
def test_gating_and_cosmetic_changes_keep_the_run_id(demo_repo, file, old, new):
    before = current(demo_repo)
    edit(demo_repo / A / file, old, new)
    assert current(demo_repo) == before
