"""With no Hub to talk to (nothing listens at HF_ENDPOINT, or its host name does not resolve),
every verb that needs the Hub ends at once with one line naming the endpoint and what to do,
and exit 2: the environment is unusable, which is not a gate that failed (exit 1)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADAPTER, REPO_ROOT, TOKEN, RunCli, copy_repo

UNRESOLVABLE = "http://nonexistent.invalid"  # .invalid never resolves (RFC 2606)
RUNNER = "from runner.cli import main; main()"  # the `runner` command, in this interpreter
HANG_GUARD_S = 120  # a run that retried as before took minutes; a pass takes about a second


def closed_port_endpoint() -> str:
    """An address nothing listens on: a port taken from the OS, then given back."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return copy_repo(tmp_path / "repo")


def no_hub_at(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)


def verbs(repo: Path, out: Path) -> dict[str, list[str | Path]]:
    adapter = f"adapters/{ADAPTER}"
    return {
        "eval": ["eval", adapter, "--out", out, "--repo", repo],
        "status": ["status", "--repo", repo],
        "reconcile --apply": ["reconcile", "--apply", "--repo", repo],
        "train": ["train", adapter, "--backend", "local", "--repo", repo],
        "dataset push": ["dataset", "push", adapter, "--repo", repo],
        "space sync": ["space", "sync", adapter, "--repo", repo],
    }


def assert_one_line_about(err: str, endpoint: str, why: str) -> None:
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    assert f"cannot reach the Hub at {endpoint}: {why}" in lines[0], err
    assert "`runner hub serve`" in lines[0], err
    assert "set HF_ENDPOINT" in lines[0], err


@pytest.mark.parametrize(
    "verb", ["eval", "status", "reconcile --apply", "train", "dataset push", "space sync"]
)
def test_every_hub_verb_with_nothing_listening_says_so_in_one_line_and_exits_2(
    verb: str, repo: Path, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    endpoint = closed_port_endpoint()
    no_hub_at(endpoint, monkeypatch)
    code, _, err = run_cli(*verbs(repo, tmp_path / "out")[verb])
    assert code == 2, err
    assert_one_line_about(err, endpoint, "connection refused")


@pytest.mark.parametrize("verb", ["eval", "status"])
def test_a_hub_host_that_does_not_resolve_is_named_and_exits_2(
    verb: str, repo: Path, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_hub_at(UNRESOLVABLE, monkeypatch)
    code, _, err = run_cli(*verbs(repo, tmp_path / "out")[verb])
    assert code == 2, err
    assert_one_line_about(err, UNRESOLVABLE, "the host name nonexistent.invalid does not resolve")


def test_runner_eval_as_a_command_prints_only_the_one_line_on_stderr(
    repo: Path, tmp_path: Path
) -> None:
    """In a process of its own, where huggingface_hub's retry warnings would reach stderr too."""
    endpoint = closed_port_endpoint()
    environment = {**os.environ, "HF_ENDPOINT": endpoint, "HF_TOKEN": TOKEN, "NO_COLOR": "1"}
    arguments = ["eval", f"adapters/{ADAPTER}", "--out", tmp_path, "--repo", repo]
    done = subprocess.run(
        [sys.executable, "-c", RUNNER, *arguments],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.splitlines()) == 1, done.stderr
    assert_one_line_about(done.stderr, endpoint, "connection refused")
