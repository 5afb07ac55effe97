"""A `backend: jobs` adapter through the whole flow on the emulator: the PR trains it on a
Hugging Face Job and comments its eval, the merge's `reconcile --apply` promotes it, and the PR
comment and the model card both show the plan's estimated cost against the job's actual cost."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.hub.client import HubClient
from tests.conftest import ADAPTER, TOKEN, RunCli, candidate_of, edit
from tests.github_standin import FakeGitHub, event, push
from tests.test_reconcile import PUBLISH, git, lenient, writes

FLAVOR = "a10g-small"
PR = 12  # the PR the GitHub stand-in says the merge commit came from


def usd(amount: float) -> str:
    """An amount as the comment and the card show it: a short run's cents are not rounded away."""
    return f"${amount:.2f}" if amount >= 0.01 else f"${amount:.4f}"


def estimated(run_cli: RunCli, root: Path) -> dict[str, Any]:
    code, out, err = run_cli("plan", f"adapters/{ADAPTER}", "--format", "json", "--repo", root)
    assert code == 0, err
    return json.loads(out)["estimate"]


def hub_usd_per_hour() -> float:
    (found,) = [f for f in HubClient().job_flavors() if f.name == FLAVOR]
    return found.usd_per_minute * 60


def open_pr(root: Path, run_cli: RunCli, comments: Path) -> None:
    """The PR workflow: train where adapter.yaml says (a Job), evaluate, upload the report."""
    assert run_cli("ci", "pr-info", comments)[0] == 0
    code, _, err = run_cli("train", f"adapters/{ADAPTER}", "--remote", "--repo", root)
    assert code == 0, err[-3000:]
    out = comments / f"{ADAPTER}.eval"
    code, printed, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--upload", "--out", out, "--repo", root
    )
    assert code == 0, printed + err[-3000:]


def post_comments(
    run_cli: RunCli, root: Path, comments: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The comment workflow, run after the PR's checks on the PR's head."""
    run = {"workflow_run": {"id": 5, "pull_requests": [], "head_sha": "c" * 40}}
    event(monkeypatch, tmp_path, "workflow_run", run)
    code, _, err = run_cli("ci", "post-comments", comments, "--repo", root)
    assert code == 0, err


def test_reconcile_promotes_a_jobs_adapter_and_its_comment_and_card_show_the_cost(
    tiny_repo: Path,
    env: Any,
    run_cli: RunCli,
    tmp_path: Path,
    github: type[FakeGitHub],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lenient(tiny_repo)
    edit(
        tiny_repo / f"adapters/{ADAPTER}/adapter.yaml",
        "backend: local",
        f"backend: jobs\n  flavor: {FLAVOR}",
    )
    git(tiny_repo, "init", "-q", "-b", "main")
    git(tiny_repo, "add", "datasets", "policies", "schemas")
    git(tiny_repo, "commit", "-qm", "before the PR")

    # The PR adds the adapter: its checks train it on a Job and comment the eval.
    github.pr_files = [f"adapters/{ADAPTER}/adapter.yaml"]
    event(monkeypatch, tmp_path, "pull_request", {"pull_request": {"number": PR}})
    comments = tmp_path / "comments"
    open_pr(tiny_repo, run_cli, comments)
    post_comments(run_cli, tiny_repo, comments, tmp_path, monkeypatch)

    # The merge, and the promote workflow.
    git(tiny_repo, "add", "adapters")
    git(tiny_repo, "commit", "-qm", f"Merge pull request #{PR}: {ADAPTER}")
    event(monkeypatch, tmp_path, "push", push(tiny_repo, "HEAD~1"))
    code, out, err = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert code == 0, out + err[-3000:]
    assert f"promoted: {PUBLISH}@v1" in out

    run = candidate_of(tiny_repo)
    launches = [j for j in env.job_launches() if j["labels"]["run-id"] == run.location.run_id]
    assert len(launches) == len(env.job_launches()) == 1  # trained once, on the PR
    plan = estimated(run_cli, tiny_repo)
    job = run.record.job
    assert (job.job_id, job.flavor) == (launches[0]["id"], FLAVOR)
    assert launches[0]["labels"]["pr"] == str(PR)  # the job names the PR it trained for
    assert job.running_s > 0
    assert plan["hardware"] == FLAVOR
    assert plan["usd"] == pytest.approx(plan["gpu_hours"] * hub_usd_per_hour())
    estimate = f"{usd(plan['usd'])} (the Hub's Jobs hardware list)"
    actual = f"{usd(job.running_s / 3600 * hub_usd_per_hour())} (the Hub's Jobs hardware list)"
    [comment] = [c["body"] for c in github.comments.values()]
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    card = Path(api.hf_hub_download(PUBLISH, "README.md", revision="v1")).read_text()
    assert comment.startswith(f"<!-- adapter-gitops:eval adapter={ADAPTER} -->")
    assert all(f"/issues/{PR}/" in path for _, path in github.calls if "comments" in path)
    assert f"### Cost on Hugging Face Jobs (`{FLAVOR}`)" in comment
    assert f"## Training cost\n\nOn Hugging Face Jobs, flavor `{FLAVOR}`." in card
    for shown in (comment, card):
        assert f"| Cost (USD) | {estimate} | {actual} |" in shown

    before = (writes(env), len(env.job_launches()))
    code, out, _ = run_cli("reconcile", "--apply", "--repo", tiny_repo)
    assert code == 0
    assert "nothing to do" in out
    assert (writes(env), len(env.job_launches())) == before  # no job launched, nothing written
