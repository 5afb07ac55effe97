"""`runner demo`: the whole lifecycle offline, on the embedded default.

A Hub emulator with SmolLM2-135M-Instruct seeded; a scratch clone where a branch adds
`adapters/kwanzaa-mini-v2` (a simulated PR); the PR job's commands (validate, smoke, plan,
candidate training on the emulated Space, eval); the PR comment; the merge; the promote job's
command (reconcile) and its comment on the merged PR; the promoted model card and
`runner status`. Each step is the same `runner` command a workflow runs, in a subprocess.
Everything stays in one folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from runner.errors import RunnerError

ADAPTER = "kwanzaa-mini-v2"
SOURCE = "kwanzaa-mini-v1"
BRANCH = "add-kwanzaa-mini-v2"
DEMO_TOKEN = "hf_demoToken0123456789"

Say = Callable[[str], None]


def run_demo(repo_root: Path, folder: Path, model_cache: Path, say: Say) -> None:
    from runner.hub.emulator import EmulatorServer
    from runner.hub.seed import SMOLLM2_REPO_ID, seed_emulator

    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    with EmulatorServer(folder / "hub") as hub:
        env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_TOKEN": DEMO_TOKEN}
        say(f"Hub emulator on {hub.endpoint}; seeding {SMOLLM2_REPO_ID} (converted once, cached)")
        seed_emulator(hub, model_cache, [SMOLLM2_REPO_ID])
        clone = open_pull_request(repo_root, folder / "repo", say)
        step = _stepper(clone, env, say)
        say("== the PR job ==")
        step("validate", "--changed-since", "main")
        step("smoke", ADAPTER)
        step("plan", ADAPTER)
        step("train", ADAPTER, "--backend", "space")
        passed = step("eval", ADAPTER, "--upload", "--out", str(folder / "pr"), allow=(0, 1))
        say("== the PR comment ==")
        say((folder / "pr" / "eval_report.md").read_text(encoding="utf-8"))
        if not passed:
            raise RunnerError(
                f"the candidate failed its gate (the comment above says why); nothing to merge. "
                f"Artifacts: {folder}"
            )
        say("== merge ==")
        _git(clone, "checkout", "-q", "main")
        _git(clone, "merge", "-q", "--no-ff", BRANCH, "-m", f"Merge {BRANCH}")
        say("== the promote job ==")
        result = folder / "promote" / "result.json"
        step("reconcile", "--apply", "--adapter", ADAPTER, "--result", str(result))
        say("== its comment on the merged PR ==")
        say(_merged_pr_comment(result))
        card = _promoted_card(hub.endpoint, folder)
        say("== the promoted model card (v2) ==")
        say(card)
        step("status")
    say(f"every artifact of this demo is in {folder}")


def open_pull_request(repo_root: Path, clone: Path, say: Say) -> Path:
    """A scratch clone with a branch that adds the next version of the embedded default."""
    _git(repo_root.parent, "clone", "-q", str(repo_root), str(clone))
    _git(clone, "checkout", "-q", "-b", BRANCH)
    _runner(clone, os.environ, "new", ADAPTER, "--from", SOURCE)
    readme = clone / "adapters" / ADAPTER / "README.md"
    readme.write_text(
        "# kwanzaa-mini v2\n\nThe demo's version: the same data and settings as v1, "
        "trained and promoted through the whole pipeline.\n",
        encoding="utf-8",
    )
    _git(clone, "add", "adapters")
    _git(clone, "commit", "-q", "-m", f"Add {ADAPTER}")
    say(f"simulated PR: branch {BRANCH} in {clone} adds adapters/{ADAPTER}")
    return clone


def _stepper(clone: Path, env: dict[str, str], say: Say) -> Callable[..., bool]:
    def step(*args: str, allow: tuple[int, ...] = (0,)) -> bool:
        """Run one command; True when it exited 0."""
        say(f"$ runner {' '.join(args)}")
        code = _runner(clone, env, *args, check=False)
        if code not in allow:
            raise RunnerError(f"`runner {' '.join(args)}` exited {code}; the demo stops here")
        return code == 0

    return step


def _runner(cwd: Path, env: Mapping[str, str], *args: str, check: bool = True) -> int:
    command = [str(Path(sys.executable).with_name("runner")), *args]
    # In a log (`make demo | tee`, CI) a step's progress, written to stderr as heartbeat lines
    # when stderr is not a terminal either, belongs in the same stream as the step itself.
    stderr = None if sys.stdout.isatty() else subprocess.STDOUT
    code = subprocess.call(command, cwd=cwd, env=env, stderr=stderr)
    if check and code != 0:
        raise RunnerError(f"`runner {' '.join(args)}` exited {code}")
    return code


def _git(cwd: Path, *args: str) -> None:
    identity = ["-c", "user.name=demo", "-c", "user.email=demo@example.com"]
    done = subprocess.run(["git", *identity, *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RunnerError(f"git {' '.join(args)}: {done.stderr.strip()}")


def _merged_pr_comment(result: Path) -> str:
    from runner.promote.result import ReconcileResult
    from runner.report.reconcile import promotion_comment

    done = ReconcileResult.read(result)
    return promotion_comment(done.of(ADAPTER), ADAPTER, done.commit, run_url=None)


def _promoted_card(endpoint: str, folder: Path) -> str:
    from runner.hub.client import HubClient, RepoRef

    client = HubClient(endpoint, cache_dir=folder / "hf-cache")
    card = client.download(RepoRef("ainative/kwanzaa-mini-lora"), "README.md", revision="v2")
    return card.read_text(encoding="utf-8")
