"""How often `runner reconcile --apply` of a new adapter succeeds at the first attempt when a
share of every Hub request fails, runner and train.py alike, and what the Hub holds at the end.

Each run builds a fresh world in a temporary directory: a Hub emulator (serving from a thread
of this process) seeded with the tiny random Llama of the tests, and a copy of the embedded
default `adapters/kwanzaa-mini-v1` on it, shortened (1 training step, 2 eval items of 16
tokens) and with gates a random model passes (only the zero-tolerance rules), as the
reconcile tests do. Then one random fault rule on every request (`mode: random` through the
emulator's control API, seeded with the run's number): a `--share` of requests, chosen by the
seeded RNG, get one of a 503, a 429 with `Retry-After: 1`, a reset connection, or a stall
(held `--stall` seconds, then dropped). `RUNNER_HUB_TIMEOUT` is set to `--timeout`, below
the stall, so a stall is met by the client's timeout, as a Hub that never answers would be.

`runner reconcile --apply` then runs as a subprocess (the installed command; train.py is its
own subprocess, the `local` backend) with a fresh HF_HOME. Its exit code is the first
attempt. A failed attempt is followed by more (faults still on, as the next scheduled
reconcile would meet them), up to `--attempts`, and the side that failed is named: train.py
(the training subprocess made no candidate) or the runner (anything else). Then, faults off,
the end state: promotion commits on the publish repo, its tags, lock files left beside the
candidates, and training commits (a training redone after a failure would show as two).
Each attempt's whole output is in `run-NN/attempt-K.log` (with `--keep`).

Wall time is the reconcile's; CPU time is the reconcile's and train.py's (children of this
process) and, apart, the emulator's (this process).

Target (issue 13): at least 9 of 10 first attempts succeed under 20% faults, and every run
ends with one promotion commit, one tag, no lock and one training.

    python benchmarks/fault_bench.py [--runs N] [--share F] [--stall S] [--timeout S]
        [--attempts N] [--seed N] [--keep]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_HUB_OFFLINE", None)

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = "kwanzaa-mini-v1"
PUBLISH = "ainative/kwanzaa-mini-lora"
CANDIDATES = f"{PUBLISH}-candidates"
COPIED = ("policies", "schemas", f"adapters/{ADAPTER}", "datasets/kwanzaa")
TOKEN = "hf_faultBenchToken12345"
RUNNER = str(Path(sys.executable).with_name("runner"))  # the installed command

DEFAULT_RUNS = 10
DEFAULT_SHARE = 0.2
DEFAULT_STALL_S = 5.0
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_ATTEMPTS = 3
TARGET_FIRST_ATTEMPTS = 0.9
TAIL_LINES = 8


# --- the repository and the Hub --------------------------------------------------------


def replace(path: Path, pattern: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    changed, found = re.subn(pattern, new, text, count=1, flags=re.MULTILINE)
    if found != 1:
        raise SystemExit(f"{path.relative_to(path.parents[2])}: nothing matches {pattern!r}")
    path.write_text(changed, encoding="utf-8")


def build_repo(root: Path, base_repo: str, base_commit: str) -> None:
    """The embedded default on the tiny model, trained and evaluated only a little, with
    gates a random model can pass (as tests/conftest.py `tiny_repo` and test_reconcile's
    `lenient`)."""
    for part in COPIED:
        shutil.copytree(ROOT / part, root / part)
    directory = root / "adapters" / ADAPTER
    replace(directory / "adapter.yaml", r"^  id: .*$", f"  id: {base_repo}")
    replace(directory / "adapter.yaml", r"^  revision: .*$", f"  revision: {base_commit}")
    replace(directory / "qlora.yaml", r"^per_device_train_batch_size: .*$", "")
    with (directory / "qlora.yaml").open("a", encoding="utf-8") as spec:
        spec.write("per_device_train_batch_size: 1\nmax_steps: 1\n")
    spec = directory / "eval.yaml"
    replace(spec, r"^  max_new_tokens: .*$", "  max_new_tokens: 16")
    head = spec.read_text(encoding="utf-8").partition("thresholds:")[0]
    spec.write_text(
        head + "max_items: 2\nzero_tolerance:\n  - ai_attribution\n  - secret_leak\n"
        "comparisons:\n  base_model:\n    must_beat: false\n",
        encoding="utf-8",
    )


def add_random_faults(hub: Any, share: float, stall_s: float, seed: int) -> None:
    """One rule, through the control API as another process would set it."""
    import httpx

    rule = {
        "path": ".*",
        "mode": "random",
        "share": share,
        "seed": seed,
        "times": None,
        "delay": stall_s,
    }
    response = httpx.post(f"{hub.endpoint}/_emulator/faults", json=rule, timeout=10)
    if response.status_code != 200:
        raise SystemExit(f"the emulator refused the fault rule: {response.text}")


# --- one run ---------------------------------------------------------------------------


@dataclass
class Attempt:
    code: int
    wall_s: float
    cpu_s: float
    tail: list[str]

    @property
    def side(self) -> str:
        """Which side ended a failed attempt: train.py when the training made no candidate."""
        text = "\n".join(self.tail)
        return "train.py" if "made no candidate" in text or "train.py exited" in text else "runner"


@dataclass
class Run:
    seed: int
    attempts: list[Attempt] = field(default_factory=list)
    requests: int = 0
    faults: int = 0
    emulator_cpu_s: float = 0.0
    promotions: int = 0
    tags: list[str] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)
    trainings: int = 0

    @property
    def first_ok(self) -> bool:
        return self.attempts[0].code == 0

    @property
    def end_ok(self) -> bool:
        return (
            self.promotions == 1 and self.tags == ["v1"] and not self.locks and self.trainings == 1
        )


def reconcile(root: Path, env: dict[str, str], log: Path) -> Attempt:
    """One `runner reconcile --apply`; its whole output goes to `log`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(
        [RUNNER, "reconcile", "--apply", "--repo", str(root)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    log.write_text(result.stdout + result.stderr, encoding="utf-8")
    # Progress bars and blank lines say nothing about why it failed.
    lines = [
        line
        for line in (result.stdout + result.stderr).splitlines()
        if line.strip() and not re.search(r"(it/s|s/it)\]$", line)
    ]
    return Attempt(result.returncode, wall, cpu, lines[-TAIL_LINES:])


def end_state(hub: Any, run: Run) -> None:
    from huggingface_hub import HfApi

    hub.clear_faults()
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    if api.repo_exists(PUBLISH):
        commits = api.list_repo_commits(PUBLISH)
        run.promotions = sum(c.title.startswith("Promote ") for c in commits)
        run.tags = sorted(t.name for t in api.list_repo_refs(PUBLISH).tags)
    if api.repo_exists(CANDIDATES):
        run.locks = [f for f in api.list_repo_files(CANDIDATES) if f.startswith("locks/")]
        titles = [c.title for c in api.list_repo_commits(CANDIDATES)]
        # One training: one "Trained adapter" commit, or a run that uploaded everything at once.
        trained = sum(t.startswith("Trained ") for t in titles)
        run.trainings = trained or sum(t.startswith("Candidate ") for t in titles)


def one_run(
    work: Path, models: Path, args: argparse.Namespace, seed: int, *, share: float | None = None
) -> Run:
    """One fresh world under `share` (default `--share`) of faulted requests; 0 is the
    baseline: the same reconcile on a Hub that never fails."""
    from runner.hub.emulator import EmulatorServer
    from runner.hub.seed import seed_emulator
    from runner.hub.tiny_llama import TINY_REPO_ID

    run = Run(seed)
    with EmulatorServer(work / "hub") as hub:
        commit = seed_emulator(hub, models, [TINY_REPO_ID])[TINY_REPO_ID]
        build_repo(work / "repo", TINY_REPO_ID, commit)
        env = {
            **os.environ,
            "HF_ENDPOINT": hub.endpoint,
            "HF_TOKEN": TOKEN,
            "HF_HOME": str(work / "hf-home"),
            "RUNNER_HUB_TIMEOUT": f"{args.timeout:g}",
        }
        hub.clear_requests()
        share = args.share if share is None else share
        if share > 0:
            add_random_faults(hub, share, args.stall, seed)
        cpu_before = time.process_time()
        while len(run.attempts) < args.attempts:
            log = work / f"attempt-{len(run.attempts) + 1}.log"
            run.attempts.append(reconcile(work / "repo", env, log))
            if run.attempts[-1].code == 0:
                break
        run.emulator_cpu_s = time.process_time() - cpu_before
        log = hub.requests()
        run.requests, run.faults = len(log), sum(entry["fault"] is not None for entry in log)
        end_state(hub, run)
    return run


# --- report ----------------------------------------------------------------------------


def report_run(index: int, run: Run) -> None:
    first = run.attempts[0]
    outcome = "ok" if first.code == 0 else f"FAILED ({first.side})"
    later = [f"{a.code}" for a in run.attempts[1:]]
    print(
        f"run {index:2} seed {run.seed:3}: first attempt {outcome:18}"
        f" wall {first.wall_s:6.1f} s  cpu {first.cpu_s:6.1f} s"
        f"  requests {run.requests:4} faulted {run.faults:3}"
        + (f"  later attempts exit {', '.join(later)}" if later else "")
    )
    print(
        f"        end: {run.promotions} promotion commit(s), tags {run.tags or 'none'},"
        f" {len(run.locks)} lock(s), {run.trainings} training(s)"
        + ("" if run.end_ok else "  <- NOT the expected end state")
    )
    for attempt in run.attempts:
        if attempt.code != 0:
            print(f"        exit {attempt.code} ({attempt.side}):")
            for line in attempt.tail:
                print(f"          | {line[:160]}")


def report(runs: list[Run], args: argparse.Namespace, baseline: Run) -> None:
    count = len(runs)
    firsts = sum(run.first_ok for run in runs)
    ends = sum(run.end_ok for run in runs)
    walls = [run.attempts[0].wall_s for run in runs]
    cpus = [run.attempts[0].cpu_s for run in runs]
    print()
    print(
        f"{count} runs, {args.share:.0%} of requests faulted (503, 429 + Retry-After, reset,"
        f" {args.stall:g} s stall against a {args.timeout:g} s timeout)"
    )
    sides = [run.attempts[0].side for run in runs if not run.first_ok]
    failed = ", ".join(f"{sides.count(side)} {side}" for side in sorted(set(sides))) or "none"
    print(f"first attempts succeeded: {firsts}/{count} (failures by side: {failed})")
    print(f"expected end state (1 promotion, tag v1, no lock, 1 training): {ends}/{count}")
    print(
        f"first attempt wall s: min {min(walls):.1f}, mean {sum(walls) / count:.1f},"
        f" max {max(walls):.1f}; cpu s (runner + train.py): mean {sum(cpus) / count:.1f};"
        f" emulator cpu s: mean {sum(r.emulator_cpu_s for r in runs) / count:.1f}"
    )
    base = baseline.attempts[0]
    print(
        f"vs the fault-free baseline ({base.wall_s:.1f} s wall, {base.cpu_s:.1f} s cpu,"
        f" {baseline.requests} requests): mean wall x{sum(walls) / count / base.wall_s:.2f},"
        f" cpu x{sum(cpus) / count / base.cpu_s:.2f}"
    )
    print(
        f"requests per run: mean {sum(r.requests for r in runs) / count:.0f},"
        f" faulted mean {sum(r.faults for r in runs) / count:.0f}"
    )
    met = "met" if firsts >= TARGET_FIRST_ATTEMPTS * count and ends == count else "NOT met"
    print(f"target: at least {TARGET_FIRST_ATTEMPTS:.0%} first attempts, every end state: {met}")


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="fresh worlds")
    parser.add_argument("--share", type=float, default=DEFAULT_SHARE, help="of requests")
    parser.add_argument("--stall", type=float, default=DEFAULT_STALL_S, help="seconds held")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="of silence")
    parser.add_argument("--attempts", type=int, default=DEFAULT_ATTEMPTS, help="per run, at most")
    parser.add_argument("--seed", type=int, default=0, help="of the first run (then +1 each)")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.attempts < 1 or not 0 < args.share <= 1:
        parser.error("--runs and --attempts must be at least 1, --share in (0, 1]")
    if args.stall <= 0 or args.timeout <= 0:
        parser.error("--stall and --timeout must be above 0")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if importlib.util.find_spec("runner") is None or not Path(RUNNER).exists():
        raise SystemExit("runner is not installed: run with the venv's python (make bench)")
    from runner.hub.seed import build_tiny_llama

    work = Path(tempfile.mkdtemp(prefix="fault-bench-"))
    try:
        models = work / "models"
        build_tiny_llama(models)  # once, outside the runs
        baseline = one_run(work / "baseline", models, args, args.seed, share=0.0)
        print("baseline (no faults):")
        report_run(-1, baseline)
        runs = []
        for index in range(args.runs):
            run = one_run(work / f"run-{index:02}", models, args, args.seed + index)
            report_run(index, run)
            runs.append(run)
        report(runs, args, baseline)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
