"""`runner demo` from any checkout, at any speed: its simulated PR starts at the commit the
user has checked out (whatever the branch, or none), and in a log a long stage keeps saying
that it is alive. Nothing here trains; `make demo` runs the whole lifecycle."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import runner.demo
from runner.demo import Stages, open_pull_request, run_logged
from tests.conftest import copy_repo


def git(cwd: Path, *args: str) -> str:
    identity = ["-c", "user.name=user", "-c", "user.email=user@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A user's clone of the embedded default: `main`, a tag, a remote, and a feature branch
    checked out one commit ahead of `main`."""
    root = copy_repo(tmp_path / "user")
    git(root, "init", "-q", "-b", "main")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "The embedded default")
    git(root, "tag", "v1.0")
    git(root, "remote", "add", "origin", "https://example.com/team/adapters.git")
    git(root, "checkout", "-q", "-b", "feature/notes")
    (root / "NOTES.md").write_text("work in progress\n", encoding="utf-8")
    git(root, "add", "NOTES.md")
    git(root, "commit", "-q", "-m", "Notes on a feature")
    return root


def branches(repo: Path) -> list[str]:
    return sorted(git(repo, "branch", "--format=%(refname:short)").split())


def test_from_a_feature_branch_the_simulated_pr_targets_the_commit_checked_out(
    checkout, tmp_path, run_cli
):
    said: list[str] = []
    clone = open_pull_request(checkout, tmp_path / "demo" / "repo", said.append)

    assert git(clone, "rev-parse", "main") == git(checkout, "rev-parse", "HEAD")
    assert branches(clone) == ["add-kwanzaa-mini-v2", "main"]
    assert git(clone, "remote") == ""
    assert git(clone, "tag") == ""
    short = git(checkout, "rev-parse", "--short", "HEAD")
    assert said[0] == f"the demo uses commit {short}, the one checked out in {checkout}"
    code, out, err = run_cli("validate", "--changed-since", "main", "--repo", clone)
    assert code == 0, out + err
    assert "adapters/kwanzaa-mini-v2" in out


def test_from_a_detached_head_main_is_that_commit_without_uncommitted_changes(checkout, tmp_path):
    git(checkout, "checkout", "-q", "--detach")  # at the feature branch, ahead of main
    readme = checkout / "adapters" / "kwanzaa-mini-v1" / "README.md"
    readme.write_text("edited, not committed\n", encoding="utf-8")
    said: list[str] = []

    clone = open_pull_request(checkout, tmp_path / "demo" / "repo", said.append)

    assert git(clone, "rev-parse", "main") == git(checkout, "rev-parse", "HEAD")
    assert git(clone, "merge-base", "main", "HEAD") == git(checkout, "rev-parse", "HEAD")
    assert branches(clone) == ["add-kwanzaa-mini-v2", "main"]
    assert "edited" not in (clone / "adapters" / "kwanzaa-mini-v1" / "README.md").read_text()
    short = git(checkout, "rev-parse", "--short", "HEAD")
    assert said[0] == (
        f"the demo uses commit {short}, the one checked out in {checkout}; "
        "uncommitted changes are not included"
    )


def test_a_checkout_that_already_has_the_demos_version_fails_at_once(checkout, tmp_path, run_cli):
    assert (
        run_cli("new", "--repo", checkout, "kwanzaa-mini-v2", "--from", "kwanzaa-mini-v1")[0] == 0
    )
    git(checkout, "add", "adapters")
    git(checkout, "commit", "-q", "-m", "Add kwanzaa-mini-v2")
    folder = tmp_path / "demo"

    code, out, err = run_cli("demo", "--folder", folder, "--repo", checkout)

    assert code == 2, out + err
    assert re.match(r"\[1/\d+ \+0m\d\ds\] simulated PR", out)
    message = " ".join(err.split())
    assert f"{checkout / 'adapters' / 'kwanzaa-mini-v2'} exists at commit" in message
    assert "check out a commit without it" in message
    assert "Traceback" not in out + err
    assert not (folder / "hub").exists()  # stopped before starting and seeding the Hub


def test_a_silent_slow_stage_prints_heartbeats_between_whole_lines(monkeypatch, tmp_path):
    monkeypatch.setattr(runner.demo, "HEARTBEAT_S", 0.05)
    heard = tmp_path / "heartbeat-heard"
    # Half a line, then silence until a heartbeat was printed (a minute at most: then the
    # test fails), then the rest of the line.
    step = (
        "import pathlib, sys, time\n"
        "sys.stdout.write('started: '); sys.stdout.flush()\n"
        f"for _ in range(600):\n    if pathlib.Path({str(heard)!r}).exists(): break\n"
        "    time.sleep(0.1)\n"
        "print('done')\n"
    )
    lines: list[str] = []

    def say(line: str) -> None:
        lines.append(line)
        if "still running" in line:
            heard.touch()

    stages = Stages(3, say)
    with stages.stage("a slow step"):
        code = run_logged([sys.executable, "-c", step], tmp_path, os.environ, stages.say)

    assert code == 0
    assert re.fullmatch(r"\[1/3 \+0m\d\ds\] a slow step", lines[0])
    heartbeat = next(i for i, line in enumerate(lines) if "still running" in line)
    assert re.fullmatch(r"… \[1/3\] a slow step still running \(\+0m\d\ds\)", lines[heartbeat])
    assert heartbeat < lines.index("started: done")  # the half line was not cut
    assert not [t for t in threading.enumerate() if t.name == "demo-heartbeat"]


def test_a_stage_that_keeps_printing_gets_no_heartbeat_of_the_demos_own(monkeypatch):
    """A training step prints its own progress lines: the demo adds none between them."""
    monkeypatch.setattr(runner.demo, "HEARTBEAT_S", 2.0)
    lines: list[str] = []
    stages = Stages(1, lines.append)
    with stages.stage("a chatty step"):
        for step in range(60):  # a line every 0.05 s for 3 s: longer than one heartbeat
            stages.say(f"step {step}")
            time.sleep(0.05)
    assert not [line for line in lines if "still running" in line], lines
    assert lines[-1] == "step 59"
