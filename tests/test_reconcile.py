"""`runner reconcile` and `runner status` on the emulator, with the embedded default on the
tiny random Llama: train, evaluate, promote once; a failing candidate is never promoted;
drift is shown and repaired; a removed version is marked, never deleted."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, ModelCard

from tests.conftest import ADAPTER, TOKEN, RunCli
from tests.github_standin import event, push

PUBLISH = "ainative/kwanzaa-mini-lora"


def lenient(root: Path) -> None:
    """Gates a random model can pass: only the zero-tolerance rules stay."""
    spec = root / "adapters" / ADAPTER / "eval.yaml"
    text = spec.read_text()
    head, _, _ = text.partition("thresholds:")
    spec.write_text(
        head + "zero_tolerance:\n  - ai_attribution\n  - secret_leak\n"
        "comparisons:\n  base_model:\n    must_beat: false\n"
    )


def git(root: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
    )


def commits(api: HfApi, repo_id: str) -> int:
    return len(api.list_repo_commits(repo_id))


def writes(hub: Any) -> int:
    return sum(r["method"] == "POST" and "/commit/" in r["path"] for r in hub.requests())


def test_reconcile_trains_evaluates_and_promotes_once(
    tiny_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    lenient(tiny_repo)
    code, out, _ = run_cli("status", "--repo", tiny_repo)
    assert code == 0
    assert "needs training" in out

    code, out, err = run_cli("reconcile", "--apply", "--pr", "7", "--repo", tiny_repo)
    assert code == 0, out + err[-3000:]
    assert f"promoted: {PUBLISH}@v1" in out
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    refs = api.list_repo_refs(PUBLISH)
    assert [t.name for t in refs.tags] == ["v1"]
    card = ModelCard(Path(api.hf_hub_download(PUBLISH, "README.md", revision="v1")).read_text())
    candidates = f"{PUBLISH}-candidates"
    [name] = [f for f in api.list_repo_files(candidates) if f.endswith("eval_report.json")]
    report = json.loads(Path(api.hf_hub_download(candidates, name)).read_text())
    expected = {
        row["metric"]: round(row["candidate"], 4)
        for row in report["overall"]
        if row["candidate"] is not None
    }
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == expected
    assert card.data.library_name == "peft"
    assert "#7" in card.text

    before = (writes(env), commits(api, PUBLISH), len(list((tiny_repo / ".runs").iterdir())))
    code, out, _ = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert code == 0
    assert "nothing to do" in out
    after = (writes(env), commits(api, PUBLISH), len(list((tiny_repo / ".runs").iterdir())))
    assert after == before  # no training, no commit


def test_a_failing_candidate_is_never_promoted_and_the_plan_says_why(
    tiny_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    _, out, _ = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert "not promoted: failed its gate" in out
    row = f"| `{ADAPTER}` | needs training | train, evaluate, promote | 🚫 not promoted: failed"
    assert row in (tmp_path / "summary.md").read_text()
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert not api.list_repo_refs(PUBLISH).tags if api.repo_exists(PUBLISH) else True

    trained = len(list((tiny_repo / ".runs").iterdir()))
    _, out, _ = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert "candidate failed" in out
    assert "json_valid_rate" in out
    assert len(list((tiny_repo / ".runs").iterdir())) == trained  # not retrained


def test_drift_is_shown_and_repaired_and_a_removed_version_is_marked_not_deleted(
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
    tmp_path: Path,
    github: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lenient(tiny_repo)
    assert run_cli("reconcile", "--apply", "--repo", tiny_repo)[0] == 0
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    api.upload_file(path_or_fileobj=b"by hand", path_in_repo="notes.txt", repo_id=PUBLISH)

    code, out, _ = run_cli("status", "--repo", tiny_repo)
    assert "drifted" in out
    code, out, _ = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert "--repair-drift restores" in out
    code, out, _ = run_cli("reconcile", "--apply", "--repair-drift", "--repo", tiny_repo)
    assert code == 0
    assert "restored main to v1" in out
    assert "notes.txt" not in api.list_repo_files(PUBLISH)
    assert "promoted" in run_cli("status", "--repo", tiny_repo)[1]

    (tiny_repo / "adapters" / ".gitkeep").touch()  # the repository keeps its adapters/ folder
    git(tiny_repo, "init", "-q")
    git(tiny_repo, "add", ".")
    git(tiny_repo, "commit", "-qm", "adapters")
    git(tiny_repo, "rm", "-rq", f"adapters/{ADAPTER}")
    git(tiny_repo, "commit", "-qm", "withdraw the version")
    code, out, _ = run_cli("status", "--repo", tiny_repo)
    assert "withdrawn" in out
    result = tmp_path / "result.json"
    code, out, _ = run_cli("reconcile", "--apply", "--result", result, "--repo", tiny_repo)
    assert "marked ainative/kwanzaa-mini-lora@v1 withdrawn" in out
    event(monkeypatch, tmp_path, "push", push(tiny_repo, "HEAD~1"))
    assert run_cli("ci", "comment-promotion", result, "--repo", tiny_repo)[0] == 0
    [comment] = [c["body"] for c in github.comments.values()]
    assert comment.startswith(f"<!-- adapter-gitops:promotion adapter={ADAPTER} -->")
    assert "withdrawn" in comment.splitlines()[1]
    assert "(nothing deleted)" in comment
    files = api.list_repo_files(PUBLISH)
    assert {"adapter_model.safetensors", "adapter_config.json", "README.md"} <= set(files)
    card = ModelCard(Path(api.hf_hub_download(PUBLISH, "README.md")).read_text())
    assert "withdrawn" in card.data.tags
    assert [t.name for t in api.list_repo_refs(PUBLISH).tags] == ["v1"]


def test_a_merged_pr_adding_v2_promotes_the_reviewed_candidate_and_says_so_on_the_pr(
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
    tmp_path: Path,
    github: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lenient(tiny_repo)
    assert run_cli("reconcile", "--apply", "--repo", tiny_repo)[0] == 0  # v1 promoted
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    git(tiny_repo, "init", "-q", "-b", "main")
    git(tiny_repo, "add", "adapters", "datasets", "policies")
    git(tiny_repo, "commit", "-qm", "v1")

    # The PR: a new version with a changed setting, trained and evaluated as a candidate.
    assert run_cli("new", "kwanzaa-mini-v2", "--from", ADAPTER, "--repo", tiny_repo)[0] == 0
    qlora = tiny_repo / "adapters" / "kwanzaa-mini-v2" / "qlora.yaml"
    qlora.write_text(qlora.read_text().replace("learning_rate: 5.0e-4", "learning_rate: 4.0e-4"))
    v2 = "adapters/kwanzaa-mini-v2"
    assert run_cli("train", v2, "--repo", tiny_repo)[0] == 0
    code, printed, err = run_cli("eval", v2, "--upload", "--out", tmp_path, "--repo", tiny_repo)
    assert code == 0, printed + err[-2000:]
    assert "json_valid_rate vs incumbent" in printed  # compared with the promoted v1
    candidates = f"{PUBLISH}-candidates"
    trained = len(api.list_repo_commits(candidates))

    # The merge, and the promote workflow: reconcile promotes exactly what was reviewed, and
    # tells the job summary and the merged PR.
    git(tiny_repo, "add", "adapters")
    git(tiny_repo, "commit", "-qm", "Merge pull request #12: kwanzaa-mini-v2")
    summary, result = tmp_path / "summary.md", tmp_path / "reconcile" / "result.json"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    code, out, err = run_cli("reconcile", "--apply", "--result", result, "--repo", tiny_repo)
    assert code == 0, out + err[-2000:]
    assert f"promoted: {PUBLISH}@v2" in out
    v2_page = f"[{PUBLISH}@v2]({env.endpoint}/{PUBLISH}/tree/v2)"
    assert f"| `kwanzaa-mini-v2` | candidate passed | promote | ✅ promoted: {v2_page}" in (
        summary.read_text()
    )
    event(monkeypatch, tmp_path, "push", push(tiny_repo, "HEAD~1"))
    code, out, err = run_cli("ci", "comment-promotion", result, "--repo", tiny_repo)
    assert code == 0, err
    [comment] = [c["body"] for c in github.comments.values()]
    assert comment.startswith("<!-- adapter-gitops:promotion adapter=kwanzaa-mini-v2 -->")
    assert f"✅ promoted as `{PUBLISH}@v2`" in comment
    assert v2_page in comment
    assert sorted(t.name for t in api.list_repo_refs(PUBLISH).tags) == ["v1", "v2"]
    assert not any(
        c.title.startswith("Candidate ") for c in api.list_repo_commits(candidates)[:-trained]
    )  # no training after the review
    card = ModelCard(Path(api.hf_hub_download(PUBLISH, "README.md", revision="v2")).read_text())
    report = json.loads((tmp_path / "eval_report.json").read_text())
    expected = {
        row["metric"]: round(row["candidate"], 4)
        for row in report["overall"]
        if row["candidate"] is not None
    }
    assert {r.metric_type: r.metric_value for r in card.data.eval_results} == expected

    before = writes(env)
    code, out, _ = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert "nothing to do" in out
    assert writes(env) == before
