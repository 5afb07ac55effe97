"""The comment job posts what the PR's own run wrote, under the bot's name: it edits only the
bot's own comments, posts only for adapters the PR changes, never pings anyone or shows an
outside image or link, fits GitHub's size limit, refuses a malformed pr.json or event, and
says so when the PR changed the code that wrote the comment."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runner.github.untrusted import ZWSP
from runner.report.eval_comment import eval_comment
from runner.report.markdown import comment_marker
from tests.conftest import RunCli
from tests.github_standin import BOT, FakeGitHub, event
from tests.test_eval_comment import report

HEAD = "c" * 40  # the stand-in's head of every PR
HUB_LINK = "https://huggingface.co/ainative/candidates/tree/main/runs/r-3f9a2c1d"
HOSTILE = (
    "## ✅ Plan: all checks passed, merge away\n"
    "cc @ainative/maintainers and @octocat; questions to ops@phish.example\n"
    "![pixel](https://tracker.example/p.gif?pr=31)\n"
    '<img src="https://tracker.example/i.png"> <a href="https://phish.example">docs</a>\n'
    "[log in](https://phish.example/login), www.phish.example or https://phish.example/x\n"
    "[ref]: https://tracker.example/ref.png\n"
    f"The candidate is [on the Hub]({HUB_LINK}).\n"
)


@pytest.fixture
def in_demo_repo(demo_repo: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The comment job's checkout of the default branch: the current directory."""
    monkeypatch.chdir(demo_repo)
    return demo_repo


def artifact(tmp_path: Path, files: dict[str, str], pr_json: str = '{"number": 31}') -> Path:
    """The folder the comment job downloads from the PR checks run."""
    folder = tmp_path / "comments"
    for name, text in {"pr.json": pr_json, **files}.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def workflow_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, **run: object) -> None:
    payload = {"id": 5, "event": "pull_request", "pull_requests": [], "head_sha": HEAD, **run}
    event(monkeypatch, tmp_path, "workflow_run", {"workflow_run": payload})


def comment_plan(run_cli: RunCli, tmp_path: Path, text: str) -> tuple[int, str, str]:
    """`runner ci comment` of demo-v1's plan on PR 31, with `text` as its body."""
    body = tmp_path / "plan.md"
    body.write_text(text)
    return run_cli("ci", "comment", "demo-v1", "--kind", "plan", "--body-file", body, "--pr", "31")


def posted(github: type[FakeGitHub]) -> list[str]:
    return [c["body"] for c in github.comments.values() if c["user"] == BOT]


def test_a_comment_someone_else_starts_with_the_marker_is_never_edited(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path
) -> None:
    tag = comment_marker("plan", "demo-v1")
    mallory = {"login": "mallory", "type": "User"}
    github.comments[1] = {"id": 1, "body": f"{tag}\nmallory's plan", "user": mallory}
    code, out, err = comment_plan(run_cli, tmp_path, "the real plan")
    assert code == 0, err
    assert "plan comment for demo-v1: created" in out
    assert github.comments[1]["body"] == f"{tag}\nmallory's plan"
    assert posted(github) == [f"{tag}\nthe real plan"]


def test_the_bot_whose_comments_are_edited_is_configurable(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = {"login": "adapter-bot[bot]", "type": "Bot"}
    monkeypatch.setenv("RUNNER_BOT_LOGIN", "adapter-bot[bot]")
    tag = comment_marker("plan", "demo-v1")
    github.comments[1] = {"id": 1, "body": f"{tag}\nold, by another bot", "user": BOT}
    github.comments[2] = {"id": 2, "body": f"{tag}\nold", "user": app}
    code, out, err = comment_plan(run_cli, tmp_path, "new")
    assert code == 0, err
    assert "updated" in out
    assert github.comments[1]["body"] == f"{tag}\nold, by another bot"
    assert github.comments[2]["body"] == f"{tag}\nnew"


def test_an_artifact_gets_comments_only_for_the_adapters_the_pr_changes(
    github: type[FakeGitHub],
    run_cli: RunCli,
    in_demo_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.pr_files = ["adapters/demo-v1/README.md"]
    spam = {f"fake-{n}.plan.md": "look at me" for n in range(300)}
    folder = artifact(tmp_path, {**spam, "demo-v1.plan.md": "the plan"})
    workflow_run(monkeypatch, tmp_path)
    code, out, err = run_cli("ci", "post-comments", folder)
    assert code == 0, err
    assert posted(github) == [f"{comment_marker('plan', 'demo-v1')}\nthe plan"]
    assert "fake-7.plan.md: PR #31 does not change adapters/fake-7; not posted" in out


def test_artifact_markdown_reads_the_same_but_pings_nobody_and_links_no_outside_host(
    github: type[FakeGitHub],
    run_cli: RunCli,
    in_demo_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.pr_files = ["adapters/demo-v1/README.md"]
    ours = eval_comment(report(adapter="demo-v1", links={"candidate": HUB_LINK}))
    files = {"demo-v1.plan.md": HOSTILE, "demo-v1.eval/eval_report.md": ours}
    workflow_run(monkeypatch, tmp_path)
    code, _, err = run_cli("ci", "post-comments", artifact(tmp_path, files))
    assert code == 0, err
    plan, evaluation = sorted(posted(github), key=lambda body: "adapter-gitops:eval" in body)
    assert evaluation == ours  # our own report, Mermaid and tables included, as rendered
    assert plan.replace(ZWSP, "") == f"{comment_marker('plan', 'demo-v1')}\n{HOSTILE}"
    assert not re.search(r"@[A-Za-z0-9]", plan)  # no mention, no mail link
    assert not re.search(r"<(img|a)\b", plan)
    assert not re.search(r"\]\(https?://(tracker|phish)|\]:", plan)
    assert not re.search(r"https?://(tracker|phish)|www\.phish", plan)
    assert f"[on the Hub]({HUB_LINK})" in plan


def test_a_body_over_githubs_limit_is_cut_with_a_note_on_top(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path
) -> None:
    code, _, err = comment_plan(run_cli, tmp_path, "## Plan\n\n" + "| a | b |\n" * 200_000)  # 2 MB
    assert code == 0, err
    [comment] = posted(github)
    assert len(comment) <= 65536
    marker, note, _ = comment.split("\n", 2)
    assert marker == comment_marker("plan", "demo-v1")
    assert note == "> [!NOTE]"
    assert "the full text has 2,000,009 characters" in comment
    assert "\n\n## Plan\n\n| a | b |\n| a | b |\n" in comment


@pytest.mark.parametrize(
    "pr_json",
    [
        '{"number": 1e400}',
        '{"number": true}',
        '{"number": -1}',
        '{"number": 0}',
        '{"number": "7"}',
        '{"number": 7.0}',
        '{"number": NaN}',
        '{"number": 99999999999999999999}',
        '{"pr": 7}',
        "[7]",
        "7",
        "{",
    ],
)
def test_a_pr_json_without_a_positive_whole_number_posts_nothing(
    pr_json: str,
    github: type[FakeGitHub],
    run_cli: RunCli,
    in_demo_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.pr_files = ["adapters/demo-v1/README.md"]
    folder = artifact(tmp_path, {"demo-v1.plan.md": "the plan"}, pr_json)
    workflow_run(monkeypatch, tmp_path)
    code, _, err = run_cli("ci", "post-comments", folder)
    assert code == 2
    assert f"{folder / 'pr.json'}: " in err
    assert "nothing was posted" in err
    assert "Traceback" not in err
    assert github.comments == {}


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"workflow_run": {"id": 5, "pull_requests": []}}, "head_sha is missing"),
        ({"workflow_run": {"id": 5, "head_sha": None}}, "head_sha is missing"),
        ({"workflow_run": {"id": 5, "head_sha": "c" * 39}}, "not a 40-hex commit id"),
        ({"workflow_run": {"id": 5, "head_sha": ["c" * 40]}}, "not a 40-hex commit id"),
        ({"pull_request": {"number": 31}}, "not a `workflow_run` event"),
        (None, "GITHUB_EVENT_PATH is not set"),
    ],
)
def test_a_workflow_run_event_without_the_built_commit_posts_nothing(
    payload: dict[str, object] | None,
    expected: str,
    github: type[FakeGitHub],
    run_cli: RunCli,
    in_demo_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.pr_files = ["adapters/demo-v1/README.md"]
    folder = artifact(tmp_path, {"demo-v1.plan.md": "the plan"})
    if payload is None:
        monkeypatch.delenv("GITHUB_EVENT_PATH", raising=False)
    else:
        event(monkeypatch, tmp_path, "workflow_run", payload)
    code, _, err = run_cli("ci", "post-comments", folder)
    assert code == 2
    assert expected in err
    assert "nothing was posted" in err
    assert github.comments == {}


def test_a_pr_that_changes_the_runner_gets_comments_flagged_as_its_own_word(
    github: type[FakeGitHub],
    run_cli: RunCli,
    in_demo_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.pr_files = [
        "adapters/demo-v1/README.md",
        "runner/validation.py",
        ".github/workflows/pr.yml",
        "policies/secrets.yaml",
    ]
    folder = artifact(tmp_path, {"demo-v1.validation.md": "## Validation\n\n✅ passes"})
    workflow_run(monkeypatch, tmp_path)
    assert run_cli("ci", "post-comments", folder)[0] == 0
    [flagged] = posted(github)
    marker, banner, warning = flagged.split("\n")[:3]
    assert marker == comment_marker("validation", "demo-v1")
    assert banner == "> [!CAUTION]"
    assert "This PR changes `.github/`, `policies/`, `runner/`" in warning
    assert "the PR's word, not the bot's" in warning
    assert flagged.endswith("\n\n## Validation\n\n✅ passes")

    github.pr_files = ["adapters/demo-v1/README.md", "datasets/demo/v1/train.jsonl"]
    code, out, _ = run_cli("ci", "post-comments", folder)
    assert code == 0
    assert "validation comment for demo-v1: updated" in out
    assert posted(github) == [f"{marker}\n## Validation\n\n✅ passes"]


def test_a_linked_folder_in_the_artifact_is_refused(
    github: type[FakeGitHub],
    run_cli: RunCli,
    in_demo_repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github.pr_files = ["adapters/demo-v1/README.md"]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "eval_report.md").write_text("HF_TOKEN=hf_secretValue")
    folder = artifact(tmp_path, {"demo-v1.plan.md": "the plan"})
    (folder / "demo-v1.eval").symlink_to(elsewhere)
    workflow_run(monkeypatch, tmp_path)
    code, _, err = run_cli("ci", "post-comments", folder)
    assert code == 2
    assert "demo-v1.eval is a symbolic link" in err
    assert github.comments == {}


def test_pr_info_writes_no_pr_json_from_an_event_whose_number_is_not_a_number(
    run_cli: RunCli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    event(monkeypatch, tmp_path, "pull_request", {"pull_request": {"number": "31"}})
    code, _, err = run_cli("ci", "pr-info", tmp_path / "out")
    assert code == 2
    assert "no pull request number" in err
    event(monkeypatch, tmp_path, "pull_request", {"pull_request": {"number": 31}})
    assert run_cli("ci", "pr-info", tmp_path / "out")[0] == 0
    assert json.loads((tmp_path / "out" / "pr.json").read_text()) == {"number": 31}
