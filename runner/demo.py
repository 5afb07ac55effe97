"""`runner demo`: the whole lifecycle offline, on the embedded default.

A scratch repository whose `main` is the commit the user has checked out, with a branch that
adds `adapters/kwanzaa-mini-v2` (a simulated PR); a Hub emulator with SmolLM2-135M-Instruct
seeded; the PR job's commands (validate, smoke, plan, candidate training on the emulated
Space, eval) and their comments; the merge; the promote job's command (reconcile) and its
comment on the merged PR; the promoted model card and `runner status`. Each step is the same
`runner` command a workflow runs, in a subprocess. Everything stays in one folder, the
comments under its `comments/`.

In a log (CI, `make demo | tee`) nothing redraws, so each stage prints a numbered line with
the time since the start, and a heartbeat line while it runs: a long stage never looks hung.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from runner.errors import InputError, RunnerError

ADAPTER = "kwanzaa-mini-v2"
SOURCE = "kwanzaa-mini-v1"
BRANCH = "add-kwanzaa-mini-v2"
DEMO_TOKEN = "hf_demoToken0123456789"
# Seconds between two "still running" lines of a stage; as often as a training run's own.
HEARTBEAT_S = 60.0
STAGE_COUNT = 11  # one per `stages.stage(...)` a successful demo goes through
COMMENTS = "comments"
# What the demo leaves beside its comments, for the list it ends with.
ARTIFACTS = {
    "repo": "the simulated repository: main and the PR's branch",
    "pr": "the eval report, markdown and JSON",
    "promote": "the reconcile result and the promoted model card",
    "hub": "the emulated Hub's repositories",
}
# The user's git configuration must not change the demo's commits (signing, hooks) nor its
# first branch's name.
GIT_SETTINGS = (
    "user.name=demo",
    "user.email=demo@example.com",
    "commit.gpgsign=false",
    "init.defaultBranch=main",
)

Say = Callable[[str], None]


class Stages:
    """Numbered stages, each announced with the time since the first, and a heartbeat line
    whenever one has been silent for HEARTBEAT_S (a step's own progress lines count). Everything
    goes through `say` here, under one lock, so a heartbeat never lands inside another line."""

    def __init__(self, total: int, say: Say) -> None:
        self._total = total
        self._print = say
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._last_line = self._started
        self._number = 0

    def say(self, text: str) -> None:
        with self._lock:
            self._print(text)
            self._last_line = time.monotonic()

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self._number += 1
        position = f"[{self._number}/{self._total}"
        self.say(f"{position} +{self._elapsed()}] {title}")
        stop = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(f"{position}] {title}", stop), name="demo-heartbeat"
        )
        beat.start()
        try:
            yield
        finally:
            stop.set()
            beat.join()

    def _beat(self, label: str, stop: threading.Event) -> None:
        # Only says that the stage is alive: the work itself is never timed out from here.
        while not stop.wait(self._until_silent_for(HEARTBEAT_S)):
            with self._lock:
                if not stop.is_set() and self._until_silent_for(HEARTBEAT_S) == 0:
                    self._print(f"… {label} still running (+{self._elapsed()})")
                    self._last_line = time.monotonic()

    def _until_silent_for(self, seconds: float) -> float:
        """Seconds until nothing will have been printed for `seconds`; 0 once that is so."""
        return max(0.0, self._last_line + seconds - time.monotonic())

    def _elapsed(self) -> str:
        return clock(time.monotonic() - self._started)


def clock(seconds: float) -> str:
    """`2m05s`, or `1h02m05s` past an hour."""
    whole = int(seconds)
    hours, minutes, rest = whole // 3600, whole // 60 % 60, whole % 60
    return (f"{hours}h{minutes:02d}m" if hours else f"{minutes}m") + f"{rest:02d}s"


def run_demo(repo_root: Path, folder: Path, model_cache: Path, say: Say) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stages = Stages(STAGE_COUNT, say)
    try:
        _run_stages(repo_root, folder, model_cache, stages)
    finally:
        if (folder / COMMENTS).is_dir():
            _list_artifacts(folder, stages.say)


def _run_stages(repo_root: Path, folder: Path, model_cache: Path, stages: Stages) -> None:
    from runner.hub.emulator import EmulatorServer
    from runner.hub.seed import SMOLLM2_REPO_ID, seed_emulator

    # Before the emulator: a checkout the demo cannot use fails in seconds, not minutes.
    with stages.stage(f"simulated PR: branch {BRANCH} adds adapters/{ADAPTER}"):
        clone = open_pull_request(repo_root, folder / "repo", stages.say)
    with EmulatorServer(folder / "hub") as hub:
        seeding = f"seed the Hub emulator on {hub.endpoint} with {SMOLLM2_REPO_ID}"
        with stages.stage(f"{seeding} (converted the first time, then cached)"):
            seed_emulator(hub, model_cache, [SMOLLM2_REPO_ID])
        demo = _Demo(clone, folder, stages, _demo_env(hub.endpoint))
        demo.pull_request()
        demo.merge()
        demo.promote(hub.endpoint)


def _demo_env(endpoint: str) -> dict[str, str]:
    # Unbuffered, so a step's lines reach the log as it writes them, not when it ends.
    return {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_TOKEN": DEMO_TOKEN,
        "PYTHONUNBUFFERED": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    }


class _Demo:
    """The workflow jobs of the simulated PR, each command a numbered stage."""

    def __init__(self, clone: Path, folder: Path, stages: Stages, env: dict[str, str]) -> None:
        self.clone, self.folder, self.stages, self.env = clone, folder, stages, env

    def pull_request(self) -> None:
        """The PR checks and, for the `train-candidate` label, the candidate (pr.yml)."""
        adapter = f"adapters/{ADAPTER}"
        self._comment("1-validation.md", "validate", adapter, "--changed-since", "main")
        self._step("smoke", adapter)
        self._comment("2-plan.md", "plan", adapter)
        self._step("train", adapter, "--remote")  # as the PR workflow does
        reports = self.folder / "pr"
        passed = self._step("eval", adapter, "--upload", "--out", str(reports), allow=(0, 1))
        report = reports / "eval_report.md"
        if not report.is_file():
            raise RunnerError(f"`runner eval` wrote no {report}; the demo stops here")
        self._show("3-eval.md", report.read_text(encoding="utf-8"))
        if not passed:
            raise RunnerError(
                f"the candidate failed its gate ({self.folder / COMMENTS / '3-eval.md'} says "
                "why); nothing to merge"
            )

    def merge(self) -> None:
        with self.stages.stage(f"merge {BRANCH} into main"):
            _git(self.clone, "checkout", "-q", "main")
            _git(
                self.clone, "merge", "-q", "--no-verify", "--no-ff", BRANCH, "-m", f"Merge {BRANCH}"
            )

    def promote(self, endpoint: str) -> None:
        """The promote job on the push to main (promote.yml), then what it left on the Hub."""
        result = self.folder / "promote" / "result.json"
        self._step("reconcile", "--apply", "--adapter", ADAPTER, "--result", str(result))
        self._show("4-promotion.md", _merged_pr_comment(result))
        with self.stages.stage("the promoted model card (v2), from the Hub"):
            card = _promoted_card(endpoint, self.folder)
        (self.folder / "promote" / "model-card-v2.md").write_text(card, encoding="utf-8")
        self.stages.say(card)
        self._step("status")

    def _step(self, *args: str, allow: tuple[int, ...] = (0,)) -> bool:
        """Run `runner ARGS` as a stage; True when it exited 0."""
        with self.stages.stage(f"runner {' '.join(args)}"):
            code = _runner(self.clone, self.env, self.stages.say, *args)
        _check(args, code, allow)
        return code == 0

    def _comment(self, name: str, *args: str) -> None:
        """Run `runner ARGS --format markdown` as the PR job does for its comment files."""
        args = (*args, "--format", "markdown")
        with self.stages.stage(f"runner {' '.join(args)}"):
            code, markdown = _runner_markdown(self.clone, self.env, self.stages.say, *args)
        self._show(name, markdown)
        _check(args, code, (0,))

    def _show(self, name: str, markdown: str) -> None:
        """Save a comment under comments/ and print it as the PR would show it."""
        path = self.folder / COMMENTS / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(markdown, encoding="utf-8")
        self.stages.say(f"== the comment on the PR ({path}) ==")
        self.stages.say(markdown.rstrip("\n") + "\n")


def _check(args: Sequence[str], code: int, allow: tuple[int, ...]) -> None:
    if code not in allow:
        raise RunnerError(f"`runner {' '.join(args)}` exited {code}; the demo stops here")


def _list_artifacts(folder: Path, say: Say) -> None:
    say(f"== what the demo left in {folder} ==")
    for comment in sorted((folder / COMMENTS).iterdir()):
        say(f"{COMMENTS}/{comment.name}")
    for name, meaning in ARTIFACTS.items():
        if (folder / name).exists():
            say(f"{name}/: {meaning}")


def open_pull_request(repo_root: Path, clone: Path, say: Say) -> Path:
    """A scratch repository whose one branch `main` is the commit checked out in repo_root
    (on whatever branch, or detached), and a branch on top of it that adds the next version
    of the embedded default: the PR as CI sees it. Returns the clone's repository root."""
    root = _main_at_checked_out_commit(repo_root, clone, say)
    _git(clone, "checkout", "-q", "-b", BRANCH)
    _runner(root, os.environ, say, "new", ADAPTER, "--from", SOURCE, check=True)
    readme = root / "adapters" / ADAPTER / "README.md"
    readme.write_text(
        "# kwanzaa-mini v2\n\nThe demo's version: the same data and settings as v1, "
        "trained and promoted through the whole pipeline.\n",
        encoding="utf-8",
    )
    _git(root, "add", "adapters")
    _git(root, "commit", "-q", "--no-verify", "-m", f"Add {ADAPTER}")
    say(f"simulated PR: branch {BRANCH} in {clone} adds adapters/{ADAPTER} on top of main")
    return root


def _main_at_checked_out_commit(repo_root: Path, clone: Path, say: Say) -> Path:
    """A new repository at `clone` with one branch, `main`, at repo_root's HEAD; returns the
    folder in it that matches repo_root."""
    toplevel, prefix = _checkout_of(repo_root)
    uncommitted = _has_uncommitted_changes(repo_root)  # before the clone, which may be inside
    clone.mkdir(parents=True)
    _git(clone, "init", "-q")
    # Only HEAD's history: none of the user's other branches, tags or remotes.
    _git(clone, "fetch", "-q", "--no-tags", str(toplevel), "HEAD")
    _git(clone, "checkout", "-q", "-B", "main", "FETCH_HEAD")
    commit = _git(clone, "rev-parse", "--short", "HEAD")
    line = f"the demo uses commit {commit}, the one checked out in {repo_root}"
    say(f"{line}; uncommitted changes are not included" if uncommitted else line)
    if (clone / prefix / "adapters" / ADAPTER).exists():
        raise InputError(
            f"{repo_root / 'adapters' / ADAPTER} exists at commit {commit}, and the demo's "
            "simulated PR adds it: check out a commit without it (`git switch --detach "
            "COMMIT`) and run the demo again"
        )
    return clone / prefix


def _checkout_of(repo_root: Path) -> tuple[Path, str]:
    """The git checkout holding repo_root (its top folder) and repo_root's path inside it."""
    found = _git_run(repo_root, "rev-parse", "--show-toplevel", "--show-prefix", "HEAD")
    if found.returncode != 0:
        raise InputError(
            f"{repo_root}: the demo opens its simulated PR on the commit checked out here, and "
            f"git finds none ({found.stderr.strip()}); run it in a git clone of this repository"
        )
    toplevel, prefix = found.stdout.split("\n")[:2]
    return Path(toplevel), prefix


def _has_uncommitted_changes(repo_root: Path) -> bool:
    return bool(_git_run(repo_root, "status", "--porcelain").stdout.strip())


def _runner(cwd: Path, env: Mapping[str, str], say: Say, *args: str, check: bool = False) -> int:
    code = run_logged([_runner_path(), *args], cwd, env, say)
    if check:
        _check(args, code, (0,))
    return code


def run_logged(command: Sequence[str], cwd: Path, env: Mapping[str, str], say: Say) -> int:
    """Run a command with its output and errors passed to `say` line by line, whole, as it
    writes them; returns its exit code."""
    with subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
    ) as process:
        assert process.stdout is not None  # piped above
        for line in process.stdout:
            say(line.rstrip("\n"))
    return process.returncode


def _runner_markdown(cwd: Path, env: Mapping[str, str], say: Say, *args: str) -> tuple[int, str]:
    """Run `runner ARGS`, keeping its output (a comment's markdown, as the workflow step's
    `> file` does) apart from its messages, which go to `say`; returns the code and output."""
    done = subprocess.run(
        [_runner_path(), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        check=False,
    )
    for line in done.stderr.splitlines():
        say(line)
    return done.returncode, done.stdout


def _runner_path() -> str:
    return str(Path(sys.executable).with_name("runner"))


def _git(cwd: Path, *args: str) -> str:
    """Run git; its output, stripped. A failure stops the demo with git's own words."""
    done = _git_run(cwd, *args)
    if done.returncode != 0:
        raise RunnerError(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _git_run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    settings = [part for setting in GIT_SETTINGS for part in ("-c", setting)]
    try:
        return subprocess.run(
            ["git", *settings, *args], cwd=cwd, capture_output=True, text=True, check=False
        )
    except FileNotFoundError as error:
        raise InputError("git is not installed; the demo needs it for its simulated PR") from error


def _merged_pr_comment(result: Path) -> str:
    from runner.promote.result import ReconcileResult
    from runner.report.reconcile import promotion_comment

    done = ReconcileResult.read(result)
    channels = done.channels_of(ADAPTER)
    return promotion_comment(done.of(ADAPTER), ADAPTER, done.commit, None, channels)


def _promoted_card(endpoint: str, folder: Path) -> str:
    from runner.hub.client import HubClient, RepoRef

    client = HubClient(endpoint, cache_dir=folder / "hf-cache")
    card = client.download(RepoRef("ainative/kwanzaa-mini-lora"), "README.md", revision="v2")
    return card.read_text(encoding="utf-8")
