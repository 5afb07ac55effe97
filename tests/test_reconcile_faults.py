"""Crash safety and concurrency of `runner reconcile --apply`, with real processes: one is
killed with SIGKILL while the emulator holds a request at a chosen point, then a second run
finishes the job with exactly one training and one promotion; two at once promote once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from tests.conftest import ADAPTER, TOKEN, RunCli
from tests.test_reconcile import PUBLISH, lenient

CANDIDATES = f"{PUBLISH}-candidates"
RUNNER = str(Path(sys.executable).with_name("runner"))  # the installed command


def reconcile(hub: Any, root: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN}
    return subprocess.Popen(
        [RUNNER, "reconcile", "--apply", "--repo", str(root)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # the kill takes train.py with it
    )


def held(hub: Any, pattern: str, timeout: float = 180.0) -> None:
    """Wait until the emulator is holding a request whose path matches `pattern`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(r.get("fault") == "timeout" and pattern in r["path"] for r in hub.requests()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no request to {pattern} was held within {timeout} s")


def killed_then_run_again(hub: Any, root: Path, hold: str) -> tuple[int, str]:
    """A reconcile killed (SIGKILL) while the emulator holds its request to `hold`, then a
    second one run to its end: the second's exit code and output."""
    process = reconcile(hub, root)
    try:
        held(hub, hold)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    again = reconcile(hub, root)
    output, _ = again.communicate(timeout=300)
    return again.returncode, output


def trainings(api: HfApi) -> int:
    return sum(c.title.startswith("Candidate ") for c in api.list_repo_commits(CANDIDATES))


def promotions(api: HfApi) -> int:
    return sum(c.title.startswith("Promote ") for c in api.list_repo_commits(PUBLISH))


@pytest.mark.parametrize(
    ("point", "hold"),
    [
        ("after training", "run.json"),  # the first read of the run record follows training
        ("after eval", "eval_report.json"),  # promotion starts by reading the published report
        ("mid-promotion", f"{PUBLISH}/tag/"),  # committed, not yet tagged
    ],
)
def test_a_reconcile_killed_at_any_point_finishes_on_the_next_run(
    tiny_repo: Path, env: Any, point: str, hold: str
) -> None:
    lenient(tiny_repo)
    env.fail(None, hold.replace(".", r"\."), mode="timeout", delay=120.0, times=1)

    code, output = killed_then_run_again(env, tiny_repo, hold)

    assert code == 0, output[-3000:]
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert trainings(api) == 1, point
    assert promotions(api) == 1, point
    assert [t.name for t in api.list_repo_refs(PUBLISH).tags] == ["v1"]


def test_two_reconciles_at_once_promote_once(
    tiny_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    lenient(tiny_repo)
    assert run_cli("train", f"adapters/{ADAPTER}", "--repo", tiny_repo)[0] == 0
    code, _, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--upload", "--out", tmp_path, "--repo", tiny_repo
    )
    assert code == 0, err[-2000:]

    first, second = reconcile(env, tiny_repo), reconcile(env, tiny_repo)
    outputs = [p.communicate(timeout=300)[0] for p in (first, second)]
    api = HfApi(endpoint=env.endpoint, token=TOKEN)
    assert promotions(api) == 1, outputs
    assert trainings(api) == 1
    assert [t.name for t in api.list_repo_refs(PUBLISH).tags] == ["v1"]
    joined = "\n".join(outputs)
    assert "promoted: ainative/kwanzaa-mini-lora@v1" in joined
    assert "Traceback" not in joined
