"""`runner eval` end to end on the emulator: a candidate trained by `runner train` is fetched,
verified against its spec, scored and gated; the report and the PR comment are written."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi

from tests.conftest import ADAPTER, TOKEN, RunCli, candidate_of


def train(root: Path, run_cli: RunCli) -> Any:
    code, _, err = run_cli("train", f"adapters/{ADAPTER}", "--backend", "local", "--repo", root)
    assert code == 0, err[-3000:]
    return candidate_of(root)


def test_a_random_model_candidate_is_scored_and_rejected_with_its_reasons(
    tiny_repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    run = train(tiny_repo, run_cli)
    out = tmp_path / "eval"
    code, printed, err = run_cli("eval", f"adapters/{ADAPTER}", "--out", out, "--repo", tiny_repo)
    assert code == 1, err[-3000:]
    assert f"{ADAPTER} run {run.location.run_id} FAILS the gate" in printed
    report = json.loads((out / "eval_report.json").read_text())
    checks = {check["name"]: check for check in report["checks"]}
    assert not checks["json_valid_rate"]["passed"]  # random weights write no JSON
    assert checks["ai_attribution"]["passed"]
    assert report["items"] == 2
    assert any("sha256" in line for line in report["verification"])
    comment = (out / "eval_report.md").read_text()
    assert comment.startswith(f"<!-- adapter-gitops:eval adapter={ADAPTER}")
    assert "xychart-beta" in comment


def test_outputs_generated_locally_match_the_ones_the_run_generated(
    tiny_repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    run = train(tiny_repo, run_cli)
    code, _, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--generate-locally", "--out", tmp_path / "local",
        "--repo", tiny_repo,
    )  # fmt: skip
    assert code in (0, 1), err[-3000:]
    ours = [json.loads(line) for line in (tmp_path / "local/eval_outputs.jsonl").open()]
    theirs = [
        json.loads(line)
        for line in next(
            (tiny_repo / ".runs").glob(f"{run.location.run_id}/output/eval_outputs.jsonl")
        ).open()
    ]
    assert [(r["role"], r["item_id"], r["output"]) for r in ours] == [
        (r["role"], r["item_id"], r["output"]) for r in theirs
    ]


def test_an_adapter_altered_on_the_hub_is_refused(
    tiny_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    run = train(tiny_repo, run_cli)
    HfApi(endpoint=env.endpoint, token=TOKEN).upload_file(
        path_or_fileobj=b"not the trained weights",
        path_in_repo=run.location.file("adapter_model.safetensors"),
        repo_id=run.location.repo_id,
    )
    code, _, err = run_cli("eval", f"adapters/{ADAPTER}", "--out", tmp_path, "--repo", tiny_repo)
    assert code == 1
    assert "adapter_model.safetensors: sha256 differs from the run's record" in err
    assert "Traceback" not in err


def test_evaluating_a_run_that_does_not_exist_says_how_to_make_one(
    tiny_repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    code, _, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--run", "0" * 16, "--out", tmp_path, "--repo", tiny_repo
    )
    assert code == 1
    assert "no run 0000000000000000" in err
    assert "runner train" in err
