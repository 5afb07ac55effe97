"""The runner inside GitHub Actions: real-shaped `pull_request`, `push` and `workflow_run`
payloads, outputs written to GITHUB_OUTPUT, and sticky comments against a small stand-in
for GitHub's comments API (the real one cannot be reached from here)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from runner.github.context import GitHubContext
from runner.promote.reconcile import Action, State
from runner.promote.result import AdapterResult, ReconcileResult, Verdict
from tests.conftest import RunCli
from tests.github_standin import REPO, TOKEN, FakeGitHub, event, push


def git(root: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip()


def pull_request(base_sha: str, *, head_repo: str = REPO, number: int = 12) -> dict[str, Any]:
    return {
        "action": "synchronize",
        "number": number,
        "pull_request": {
            "number": number,
            "base": {"ref": "main", "sha": base_sha, "repo": {"full_name": REPO}},
            "head": {"ref": "feature", "sha": "f" * 40, "repo": {"full_name": head_repo}},
        },
        "repository": {"full_name": REPO},
    }


@pytest.fixture
def repo_with_history(demo_repo: Path) -> tuple[Path, str]:
    git(demo_repo, "init", "-q", "-b", "main")
    git(demo_repo, "add", ".")
    git(demo_repo, "commit", "-qm", "base")
    base = git(demo_repo, "rev-parse", "HEAD")
    readme = demo_repo / "adapters" / "demo-v1" / "README.md"
    readme.write_text(readme.read_text() + "\nMore words.\n")
    git(demo_repo, "commit", "-qam", "change demo-v1")
    return demo_repo, base


def test_a_pull_request_lists_the_adapters_it_changes_in_the_step_outputs(
    repo_with_history: tuple[Path, str],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, base = repo_with_history
    outputs = event(monkeypatch, tmp_path, "pull_request", pull_request(base))
    code, _, err = run_cli("ci", "changed", "--repo", root)
    assert code == 0, err
    assert outputs.read_text() == 'adapters=["demo-v1"]\nany=true\n'


def test_a_push_that_creates_a_branch_checks_every_adapter(
    repo_with_history: tuple[Path, str],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, _ = repo_with_history
    outputs = event(monkeypatch, tmp_path, "push", {"before": "0" * 40, "after": "a" * 40})
    assert run_cli("ci", "changed", "--repo", root)[0] == 0
    assert 'adapters=["demo-v1"]' in outputs.read_text()


def test_a_pull_request_from_a_fork_is_recognised_and_workflow_runs_know_their_pr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    event(monkeypatch, tmp_path, "pull_request", pull_request("b" * 40, head_repo="evil/fork"))
    assert GitHubContext.from_env().from_fork()
    event(monkeypatch, tmp_path, "pull_request", pull_request("b" * 40))
    assert not GitHubContext.from_env().from_fork()
    run = {"workflow_run": {"id": 5, "pull_requests": [{"number": 31}], "head_sha": "c" * 40}}
    event(monkeypatch, tmp_path, "workflow_run", run)
    assert GitHubContext.from_env().pr_number() == 31


def test_an_unreadable_event_payload_is_a_clear_error(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, demo_repo: Path, tmp_path: Path
) -> None:
    monkeypatch.setenv("GITHUB_EVENT_PATH", str(tmp_path / "missing.json"))
    code, _, err = run_cli("ci", "changed", "--repo", demo_repo)
    assert code == 2
    assert "GITHUB_EVENT_PATH" in err
    assert "Traceback" not in err


def test_each_adapter_keeps_one_sticky_comment_per_kind(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path
) -> None:
    body = tmp_path / "plan.md"
    for text, expected in (("first plan", "created"), ("second plan", "updated")):
        body.write_text(text)
        code, out, err = run_cli(
            "ci", "comment", "adapters/kwanzaa-mini-v2", "--kind", "plan", "--body-file", body,
            "--pr", "12",
        )  # fmt: skip
        assert code == 0, err
        assert expected in out
    body.write_text("validation report")
    run_cli("ci", "comment", "kwanzaa-mini-v2", "--kind", "validation", "--body-file", body,
            "--pr", "12")  # fmt: skip
    bodies = sorted(c["body"] for c in github.comments.values())
    assert bodies == [
        "<!-- adapter-gitops:plan adapter=kwanzaa-mini-v2 -->\nsecond plan",
        "<!-- adapter-gitops:validation adapter=kwanzaa-mini-v2 -->\nvalidation report",
    ]


def test_the_comment_job_posts_a_folder_of_comments_to_the_pr_it_names(
    github: type[FakeGitHub],
    run_cli: RunCli,
    demo_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.pr_files = ["adapters/kwanzaa-mini-v2/adapter.yaml"]
    folder = tmp_path / "comments"
    (folder / "kwanzaa-mini-v2.eval").mkdir(parents=True)
    (folder / "pr.json").write_text('{"number": 31}')
    (folder / "kwanzaa-mini-v2.plan.md").write_text("the plan")
    (folder / "kwanzaa-mini-v2.eval" / "eval_report.md").write_text("the eval")
    (folder / "notes.md").write_text("not a comment")
    run = {"workflow_run": {"id": 5, "pull_requests": [], "head_sha": "c" * 40}}
    event(monkeypatch, tmp_path, "workflow_run", run)
    code, out, err = run_cli("ci", "post-comments", folder, "--repo", demo_repo)
    assert code == 0, err
    assert sorted(c["body"].split("\n")[0] for c in github.comments.values()) == [
        "<!-- adapter-gitops:eval adapter=kwanzaa-mini-v2 -->",
        "<!-- adapter-gitops:plan adapter=kwanzaa-mini-v2 -->",
    ]
    assert all("/issues/31/" in path for _, path in github.calls if "comments?" in path)
    assert TOKEN not in out + err


def test_a_pr_json_that_names_another_pr_posts_nothing(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "comments"
    folder.mkdir()
    (folder / "pr.json").write_text('{"number": 7}')
    (folder / "kwanzaa-mini-v2.plan.md").write_text("the plan")
    run = {"workflow_run": {"id": 5, "pull_requests": [], "head_sha": "d" * 40}}
    event(monkeypatch, tmp_path, "workflow_run", run)
    code, _, err = run_cli("ci", "post-comments", folder)
    assert code == 2
    assert "nothing was posted" in err
    assert github.comments == {}


def test_a_rejected_token_is_reported_without_the_token(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_wrongTokenValue98765")
    body = tmp_path / "plan.md"
    body.write_text("x")
    code, _, err = run_cli(
        "ci", "comment", "kwanzaa-mini-v2", "--kind", "plan", "--body-file", body, "--pr", "1"
    )
    assert code == 1
    assert "GitHub answered 401" in err
    assert "ghs_wrongTokenValue98765" not in err


def test_a_merged_pr_hears_when_the_promote_run_stopped_before_reporting(
    github: type[FakeGitHub],
    repo_with_history: tuple[Path, str],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, base = repo_with_history
    event(monkeypatch, tmp_path, "push", push(root, base))
    monkeypatch.setenv("GITHUB_RUN_ID", "99")
    code, out, err = run_cli("ci", "comment-promotion", tmp_path / "absent.json", "--repo", root)
    assert code == 0, err
    assert "promotion comment for demo-v1 on #12: created" in out
    [comment] = github.comments.values()
    assert comment["body"].startswith("<!-- adapter-gitops:promotion adapter=demo-v1 -->")
    assert "stopped before it reported" in comment["body"]
    assert f"https://github.com/{REPO}/actions/runs/99" in comment["body"]


def test_the_promotion_comment_names_only_adapters_the_push_changed(
    github: type[FakeGitHub],
    repo_with_history: tuple[Path, str],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, _ = repo_with_history
    assert run_cli("new", "demo-v2", "--from", "demo-v1", "--repo", root)[0] == 0
    git(root, "add", ".")
    git(root, "commit", "-qm", "add demo-v2")
    event(monkeypatch, tmp_path, "push", push(root, "HEAD~1"))
    result = ReconcileResult(
        True,
        "e" * 40,
        (
            AdapterResult("demo-v1", "r1", State.PROMOTED, Action.NONE, "o/demo@v1",
                          Verdict.PROMOTED, promoted_as="o/demo@v1"),
            AdapterResult("demo-v2", "r2", State.CANDIDATE_FAILED, Action.NONE,
                          "failed its gate: json_valid_rate: 0.40 < 0.85", Verdict.NOT_PROMOTED),
        ),
    )  # fmt: skip
    result.write(tmp_path / "result.json")
    code, _, err = run_cli("ci", "comment-promotion", tmp_path / "result.json", "--repo", root)
    assert code == 0, err
    [comment] = github.comments.values()
    assert comment["body"].startswith("<!-- adapter-gitops:promotion adapter=demo-v2 -->")
    assert "🚫 not promoted" in comment["body"]
    assert "json_valid_rate: 0.40 < 0.85" in comment["body"]
    assert "`runner new`" in comment["body"]

    github.pulls_of_commit = [{"number": 13, "merged_at": None}]  # open, not merged
    code, out, _ = run_cli("ci", "comment-promotion", tmp_path / "result.json", "--repo", root)
    assert code == 0
    assert "nothing to comment" in out
    assert len(github.comments) == 1


def test_comment_promotion_outside_a_push_is_a_clear_error(
    github: type[FakeGitHub], run_cli: RunCli, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    event(monkeypatch, tmp_path, "pull_request", pull_request("b" * 40))
    code, _, err = run_cli("ci", "comment-promotion", tmp_path / "result.json")
    assert code == 2
    assert "push event" in err
    assert github.comments == {}


@pytest.fixture
def two_versions_in_git(demo_repo: Path, run_cli: RunCli) -> tuple[Path, str]:
    assert run_cli("new", "demo-v2", "--from", "demo-v1", "--repo", demo_repo)[0] == 0
    git(demo_repo, "init", "-q", "-b", "main")
    git(demo_repo, "add", ".")
    git(demo_repo, "commit", "-qm", "base")
    return demo_repo, git(demo_repo, "rev-parse", "HEAD")


def test_a_pull_request_that_only_moves_a_channel_checks_the_newest_version(
    two_versions_in_git: tuple[Path, str],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, base = two_versions_in_git
    assert run_cli("rollback", "demo", "--repo", root)[0] == 0
    git(root, "add", ".")
    git(root, "commit", "-qm", "roll back demo stable to v1")
    outputs = event(monkeypatch, tmp_path, "pull_request", pull_request(base))
    code, _, err = run_cli("ci", "changed", "--repo", root)
    assert code == 0, err
    assert outputs.read_text() == 'adapters=["demo-v2"]\nany=true\n'


def test_a_pull_request_that_removes_a_version_checks_the_newest_one_left(
    two_versions_in_git: tuple[Path, str],
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    root, base = two_versions_in_git
    git(root, "rm", "-rq", "adapters/demo-v2")
    git(root, "commit", "-qm", "withdraw demo-v2")
    outputs = event(monkeypatch, tmp_path, "pull_request", pull_request(base))
    code, _, err = run_cli("ci", "changed", "--repo", root)
    assert code == 0, err
    assert outputs.read_text() == 'adapters=["demo-v1"]\nany=true\n'
