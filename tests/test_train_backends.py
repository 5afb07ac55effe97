"""`runner train` through both backends against the local Hub emulator: the dataset push,
the Space sync and watch, candidates found by run id, and every way a Space run can fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.cli import main
from runner.hub.seed import SMOLLM2_REPO_ID, seed_emulator
from tests.conftest import ADAPTER, TOKEN, RunCli, candidate_of, copy_repo, edit, shorten

SPACE = "ainative/adapter-trainer"
FIVE_FILES = [".gitattributes", "Dockerfile", "README.md", "app.py", "train.py"]


def space_files(hub: Any) -> list[str]:
    return sorted(
        HfApi(endpoint=hub.endpoint, token=TOKEN).list_repo_files(SPACE, repo_type="space")
    )


def starts(hub: Any) -> int:
    """Space starts requested by anyone (hardware requests and restarts)."""
    return sum(
        r["method"] == "POST" and r["path"].endswith(("/hardware", "/restart"))
        for r in hub.requests()
    )


def test_the_embedded_default_trains_in_the_emulated_space_once(
    env: Any, model_cache: Path, tmp_path: Path, run_cli: RunCli
) -> None:
    seed_emulator(env, model_cache, [SMOLLM2_REPO_ID])
    root = copy_repo(tmp_path / "repo")
    shorten(root)

    code, out, err = run_cli("train", f"adapters/{ADAPTER}", "--backend", "space", "--repo", root)
    assert code == 0, err[-3000:]
    assert "trained" in out
    run = candidate_of(root)
    assert run.is_candidate, run.error
    assert run.record.config.base_model.revision == "12fd25f77366fa6b3b4b768ec3050bf629380bac"
    assert env.runtime(SPACE)["stage"] == "PAUSED"
    assert space_files(env) == FIVE_FILES

    before = starts(env)
    code, out, err = run_cli("train", f"adapters/{ADAPTER}", "--backend", "space", "--repo", root)
    assert code == 0, err[-3000:]
    assert "reused" in out
    assert starts(env) == before  # no second training


def test_the_local_backend_makes_the_same_kind_of_candidate(
    tiny_repo: Path, run_cli: RunCli
) -> None:
    code, out, err = run_cli(
        "train", f"adapters/{ADAPTER}", "--backend", "local", "--repo", tiny_repo
    )
    assert code == 0, err[-3000:]
    run = candidate_of(tiny_repo)
    assert run.is_candidate, run.error
    outputs = next((tiny_repo / ".runs").glob("*/output/eval_outputs.jsonl"))
    rows = [json.loads(line) for line in outputs.open()]
    assert {row["role"] for row in rows} == {"candidate", "base"}
    assert TOKEN not in (next((tiny_repo / ".runs").glob("*/train.log"))).read_text()

    code, out, _ = run_cli(
        "train", f"adapters/{ADAPTER}", "--backend", "local", "--repo", tiny_repo
    )
    assert code == 0
    assert "reused" in out

    code, out, err = run_cli(
        "train", f"adapters/{ADAPTER}", "--backend", "local", "--force", "--repo", tiny_repo
    )
    assert code == 0, err[-3000:]
    assert "trained" in out
    assert candidate_of(tiny_repo).is_candidate


@pytest.mark.parametrize(
    ("outcome", "stage", "expected", "log_line"),
    [
        ("BUILD_ERROR", "BUILDING", "BUILD_ERROR: Build failed", "ERROR: build failed"),
        ("RUNTIME_ERROR", "BUILDING", "RUNTIME_ERROR: Exit code: 1", "Traceback: RuntimeError"),
        ("hang", "APP_STARTING", "past the 0.1 min timeout", "Application is starting"),
    ],
)
def test_a_space_that_fails_or_hangs_ends_paused_with_its_log_and_no_candidate(
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
    outcome: str,
    stage: str,
    expected: str,
    log_line: str,
) -> None:
    env.script_space(SPACE, outcome, stage=stage, times=1)
    code, _, err = run_cli(
        "train",
        f"adapters/{ADAPTER}",
        "--backend",
        "space",
        "--timeout-minutes",
        "0.1",
        "--repo",
        tiny_repo,
    )
    assert code == 1
    assert expected in err
    assert log_line in err
    assert "made no candidate" in err
    assert env.runtime(SPACE)["stage"] == "PAUSED"
    run = candidate_of(tiny_repo)
    assert run is None or not run.is_candidate
    assert "Traceback (most recent call last)" not in err


def test_a_hand_added_requirements_txt_is_removed_by_the_sync(
    tiny_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    from runner.engines.trl import TRL
    from runner.space.render import render_space

    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.create_repo(SPACE, repo_type="space", space_sdk="docker")
    api.upload_file(  # a Space the runner rendered before: its README carries the runner's tag
        path_or_fileobj=render_space(ADAPTER, TRL.space_app)["README.md"].encode(),
        path_in_repo="README.md",
        repo_id=SPACE,
        repo_type="space",
    )
    api.upload_file(
        path_or_fileobj=b"torch==1.0.0\n",
        path_in_repo="requirements.txt",
        repo_id=SPACE,
        repo_type="space",
    )
    api.pause_space(SPACE)
    code, _, err = run_cli("space", "sync", f"adapters/{ADAPTER}", "--repo", tiny_repo)
    assert code == 0, err[-3000:]
    assert "removed files nobody rendered from the Space: requirements.txt" in err
    assert space_files(env) == FIVE_FILES
    assert env.runtime(SPACE)["stage"] == "PAUSED"


def test_a_render_that_breaks_the_space_policy_is_never_synced(
    tiny_repo: Path, env: Any, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runner.space import sync

    def with_requirements(*args: Any) -> dict[str, str]:
        return {**real(*args), "requirements.txt": "torch\n"}

    real = sync.render_space
    monkeypatch.setattr(sync, "render_space", with_requirements)
    code, _, err = run_cli(
        "train", f"adapters/{ADAPTER}", "--backend", "space", "--repo", tiny_repo
    )
    assert code == 2
    assert "requirements.txt" in err
    assert "space.file-set" in err
    assert not any("/spaces/" in r["path"] and r["method"] == "POST" for r in env.requests())
    assert candidate_of(tiny_repo) is None


def test_the_dataset_version_is_pushed_once_tagged_and_immutable(
    env: Any, tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")
    code, out, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0, err
    assert "pushed and tagged" in out
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    repo = "ainative/kwanzaa-grounded-chat"
    files = set(api.list_repo_files(repo, repo_type="dataset", revision="v0"))
    assert {"v0/train.jsonl", "v0/eval.jsonl", "answer_json.schema.json"} <= files
    commits = len(api.list_repo_commits(repo, repo_type="dataset"))

    code, out, _ = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0
    assert "already on the Hub" in out
    assert len(api.list_repo_commits(repo, repo_type="dataset")) == commits

    schema = root / "datasets" / "kwanzaa" / "answer_json.schema.json"
    schema.write_text(schema.read_text().replace("{", "{ ", 1))
    code, _, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 2
    assert "immutable" in err
    assert "new version" in err


def test_data_that_no_longer_matches_its_lock_is_not_pushed(
    env: Any, tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")
    with (root / "datasets/kwanzaa/v0/train.jsonl").open("a") as data:
        data.write("\n")
    code, _, err = run_cli("dataset", "push", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 2
    assert "datasets/kwanzaa/v0/train.jsonl" in err
    assert "runner dataset lock" in err


def test_the_runner_reads_the_progress_lines_train_py_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from runner.runs.progress import parse_progress
    from runner.train import train as script

    script.emit_progress(stage="train", step=3, total=10, loss=0.5)
    line = capsys.readouterr().out
    assert parse_progress(line) == {"stage": "train", "step": 3, "total": 10, "loss": 0.5}
    assert parse_progress("stage train: start") is None


def test_the_autotrain_engine_trains_in_the_space_and_is_judged_by_its_artifacts(
    tiny_repo: Path, env: Any, run_cli: RunCli, fake_autotrain: None, monkeypatch: Any
) -> None:
    directory = tiny_repo / "adapters" / ADAPTER
    edit(
        directory / "adapter.yaml",
        "backend: local\n  engine: trl",
        "backend: space\n  engine: autotrain",
    )
    edit(directory / "qlora.yaml", "max_steps: 1\n", "")
    edit(directory / "qlora.yaml", "packing: false", "packing: true\nassistant_only_loss: false")
    code, out, _ = run_cli("validate", f"adapters/{ADAPTER}", "--repo", tiny_repo)
    assert "autotrain." not in out  # every setting is one AutoTrain honours

    monkeypatch.setenv("FAKE_AUTOTRAIN_PUSH", "0")  # AutoTrain "succeeds" (exit 0), pushes nothing
    code, _, err = run_cli("train", f"adapters/{ADAPTER}", "--repo", tiny_repo)
    assert code == 1
    assert "made no candidate" in err
    assert env.runtime(SPACE)["stage"] == "PAUSED"

    HfApi(endpoint=env.endpoint, token=TOKEN).add_space_variable(SPACE, "FAKE_AUTOTRAIN_PUSH", "1")
    code, out, err = run_cli("train", f"adapters/{ADAPTER}", "--repo", tiny_repo)
    assert code == 0, err[-3000:]
    run = candidate_of(tiny_repo)
    assert run.is_candidate, run.error
    assert run.record.engine == "autotrain"


def test_settings_autotrain_cannot_honour_fail_validation_at_their_key(
    tmp_path: Path, run_cli: RunCli
) -> None:
    root = copy_repo(tmp_path / "repo")
    spec = root / "adapters" / ADAPTER / "adapter.yaml"
    edit(spec, "backend: local\n  engine: trl", "backend: space\n  engine: autotrain")
    code, out, _ = run_cli("validate", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 1
    qlora = (root / "adapters" / ADAPTER / "qlora.yaml").read_text().splitlines()
    line = qlora.index("packing: false") + 1
    assert f"adapters/{ADAPTER}/qlora.yaml:{line}:1" in out
    assert "packing: false" in out
    assert "autotrain.unsupported" in out

    edit(spec, "backend: space", "backend: local")
    code, out, _ = run_cli("validate", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 2
    assert "engine autotrain runs AutoTrain's own image inside a Space" in out


def test_remote_and_backend_together_are_refused_before_anything_runs(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["train", "kwanzaa-mini-v1", "--backend", "local", "--remote"])
    assert code == 2
    assert "give only one" in capsys.readouterr().err
