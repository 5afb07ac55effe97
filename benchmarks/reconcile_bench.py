"""Cost of a no-op `runner reconcile --apply` and of `runner status` with many promoted
adapters, against the Hub emulator, with the floor any reconcile must pay measured in the same
run: one `HfApi.list_repo_refs` per publish repo, done directly with huggingface_hub.

The benchmark builds a throwaway adapters repository in a temporary directory: N adapter
directories (`bench-00-v1` ...) copied from `adapters/kwanzaa-mini-v1`, each with its own
name and publish repo (`ainative/bench-NN-lora`), all sharing `datasets/kwanzaa`. An emulator
in the same temp directory holds every adapter "promoted": its publish repo seeded (no HTTP,
not measured) with adapter files (dummy bytes), a README.md and the `promotion.json` a
promotion writes (with the adapter's real run id), tagged `v1`, main at the tag.

Measuring: the commands run in-process (`runner.cli.main`, output silenced) against the
emulator, which serves from a thread of this process. Each round clears the emulator's
request log first and counts the requests after: in total, and per adapter (requests whose
path names its publish repo). Wall time covers the whole command (specs, run ids, Hub
reads, the table); imports are done before the first round. Rounds alternate reconcile,
status and the baseline; the verdicts use the slowest round and the most requests seen.

Targets (issue 7): at most 3 Hub requests per adapter, and under 10 s, for a no-op
reconcile with 50 adapters all promoted.

    python benchmarks/reconcile_bench.py [--adapters N] [--rounds N] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import importlib.util
import io
import json
import os
import pstats
import re
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.pop("HF_HUB_OFFLINE", None)

ROOT = Path(__file__).resolve().parent.parent
SOURCE_ADAPTER = "kwanzaa-mini-v1"
COPIED = ("policies", "schemas", "datasets/kwanzaa")
TOKEN = "hf_reconcileBenchToken12345"

DEFAULT_ADAPTERS = 50
DEFAULT_ROUNDS = 3
TARGET_REQUESTS_PER_ADAPTER = 3
TARGET_WALL_S = 10.0
PROFILE_LINES = 20


def publish_repo(index: int) -> str:
    return f"ainative/bench-{index:02d}-lora"


# --- the repository and the Hub --------------------------------------------------------


def build_repo(root: Path, count: int) -> list[str]:
    """The repository with `count` copies of the source adapter; their directory names."""
    for part in COPIED:
        shutil.copytree(ROOT / part, root / part)
    source = ROOT / "adapters" / SOURCE_ADAPTER
    spec = (source / "adapter.yaml").read_text(encoding="utf-8")
    names = []
    for index in range(count):
        dirname = f"bench-{index:02d}-v1"
        target = root / "adapters" / dirname
        shutil.copytree(source, target)
        text = replace_line(spec, r"name: .*", f"name: bench-{index:02d}")
        text = replace_line(text, r"  repo_id: .*", f"  repo_id: {publish_repo(index)}")
        (target / "adapter.yaml").write_text(text, encoding="utf-8")
        names.append(dirname)
    return names


def replace_line(text: str, pattern: str, line: str) -> str:
    new, found = re.subn(rf"^{pattern}$", line, text, count=1, flags=re.MULTILINE)
    if found != 1:
        raise SystemExit(f"{SOURCE_ADAPTER}/adapter.yaml has no line matching {pattern!r}")
    return new


def seed_promotions(hub: Any, root: Path) -> None:
    """Every adapter's publish repo as a promotion leaves it: files, card, record, tag."""
    from runner.promote.promote import RECORD
    from runner.runs.run_id import run_id
    from runner.specs import require_adapter
    from runner.train.train import ADAPTER_FILES
    from runner.workspace import Workspace

    workspace = Workspace.at(root)
    for directory in workspace.list_adapter_dirs():
        bundle = require_adapter(workspace, directory)
        rid = run_id(bundle, root)
        record = {
            "adapter": bundle.dirname,
            "version": bundle.adapter.version,
            "run_id": rid,
            "git_commit": "unknown",
            "pr_number": None,
            "runner_version": "bench",
        }
        files: dict[str, bytes | Path] = {name: b"dummy " + name.encode() for name in ADAPTER_FILES}
        files["README.md"] = f"# {bundle.adapter.name}\n\nBenchmark adapter.\n".encode()
        files[RECORD] = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
        hub.seed(
            bundle.adapter.publish.repo_id,
            files,
            message=f"Promote {bundle.dirname} (run {rid})",
            tag=f"v{bundle.adapter.version}",
        )


def states_of(root: Path) -> Counter[str]:
    """What `observe` says of each adapter (the benchmark is only valid when all are
    promoted)."""
    from runner.hub.client import HubClient
    from runner.promote.reconcile import observe
    from runner.specs import require_adapter
    from runner.workspace import Workspace

    workspace = Workspace.at(root)
    bundles = [require_adapter(workspace, d) for d in workspace.list_adapter_dirs()]
    return Counter(state.state.value for state in observe(bundles, root, HubClient()))


# --- measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    wall_s: float
    requests: int
    per_repo: dict[str, int]
    """Requests whose path names a publish repo, by repo (every repo present, 0 if none)."""
    unattributed: int
    exit_code: int

    def max_per_adapter(self) -> int:
        return max(self.per_repo.values(), default=0)


def measure(hub: Any, repos: list[str], call: Callable[[], int]) -> Round:
    hub.clear_requests()
    sink = io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        code = call()
    wall = time.perf_counter() - start
    log = hub.requests()
    per_repo = dict.fromkeys(repos, 0)
    unattributed = 0
    for entry in log:
        owner = next((repo for repo in repos if f"/{repo}/" in entry["path"] + "/"), None)
        if owner is None:
            unattributed += 1
        else:
            per_repo[owner] += 1
    if code != 0:
        print(sink.getvalue())
    return Round(wall, len(log), per_repo, unattributed, code)


def cli(*args: str) -> Callable[[], int]:
    from runner.cli import main

    return lambda: main(list(args))


def baseline(endpoint: str, repos: list[str]) -> Callable[[], int]:
    """The floor: one refs request per publish repo, straight from huggingface_hub."""
    from huggingface_hub import HfApi

    def run() -> int:
        api = HfApi(endpoint=endpoint, token=TOKEN)
        for repo in repos:
            api.list_repo_refs(repo)
        return 0

    return run


def breakdown(root: Path) -> dict[str, float]:
    """Where a reconcile's time goes, step by step, outside the CLI: loading the specs,
    the run ids (hashing the data files), the refs requests."""
    from runner.hub.client import HubClient, RepoRef
    from runner.runs.run_id import run_id
    from runner.specs import require_adapter
    from runner.workspace import Workspace

    timings: dict[str, float] = {}
    start = time.perf_counter()
    workspace = Workspace.at(root)
    bundles = [require_adapter(workspace, d) for d in workspace.list_adapter_dirs()]
    timings["load specs (require_adapter)"] = time.perf_counter() - start
    start = time.perf_counter()
    for bundle in bundles:
        run_id(bundle, root)
    timings["run ids (hash data files)"] = time.perf_counter() - start
    client = HubClient()
    start = time.perf_counter()
    for bundle in bundles:
        client.refs(RepoRef(bundle.adapter.publish.repo_id))
    timings["refs requests (HubClient)"] = time.perf_counter() - start
    return timings


def profile(call: Callable[[], int]) -> str:
    profiler = cProfile.Profile()
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        profiler.runcall(call)
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    stats.sort_stats("cumulative").print_stats(PROFILE_LINES)
    return text.getvalue()


# --- report ----------------------------------------------------------------------------


def report(
    count: int, states: Counter[str], runs: dict[str, list[Round]], steps: dict[str, float]
) -> None:
    rounds = len(runs["reconcile --apply"])
    found = ", ".join(f"{n} {state}" for state, n in sorted(states.items()))
    print(f"{count} adapters ({found}), {rounds} rounds, in-process against the emulator")
    print(
        f"{'':22} {'wall s (min..max)':>18} {'requests':>9} {'per adapter':>12}"
        f" {'max/adapter':>12} {'other':>6}"
    )
    for side, found_runs in runs.items():
        fastest = min(r.wall_s for r in found_runs)
        slowest = max(r.wall_s for r in found_runs)
        most = max(found_runs, key=lambda r: r.requests)
        print(
            f"{side:22} {fastest:8.3f}..{slowest:<8.3f} {most.requests:9}"
            f" {most.requests / count:12.2f} {max(r.max_per_adapter() for r in found_runs):12}"
            f" {most.unattributed:6}"
        )
    floor = min(r.wall_s for r in runs["baseline list_repo_refs"])
    print(f"baseline: {floor / count * 1000:.1f} ms per refs request (the emulator's round trip)")
    for side in ("reconcile --apply", "status"):
        best = min(r.wall_s for r in runs[side])
        print(f"{side} / baseline (best rounds): {best / floor:.2f}x")
    print("where the time goes (one pass, outside the CLI):")
    for step, seconds in steps.items():
        print(f"  {step:30} {seconds:7.3f} s  ({seconds / count * 1000:6.2f} ms/adapter)")

    ours = runs["reconcile --apply"]
    codes = sorted({r.exit_code for r in ours + runs["status"]})
    if codes != [0]:
        print(f"exit codes: {codes} (a no-op reconcile should exit 0)")
    per_adapter = max(max(r.max_per_adapter() for r in ours), max(r.requests for r in ours) / count)
    slowest = max(r.wall_s for r in ours)
    valid = states.get("promoted", 0) == count
    met = "met" if per_adapter <= TARGET_REQUESTS_PER_ADAPTER and valid else "NOT met"
    print(
        f"at most {TARGET_REQUESTS_PER_ADAPTER} requests per adapter: {met}"
        f" ({per_adapter:g} at most, {max(r.requests for r in ours)} in all)"
    )
    met = "met" if slowest < TARGET_WALL_S and valid else "NOT met"
    print(f"under {TARGET_WALL_S:g} s: {met} (slowest round {slowest:.3f} s)")
    if not valid:
        print(f"NOT valid: only {states.get('promoted', 0)} of {count} adapters are promoted")


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adapters", type=int, default=DEFAULT_ADAPTERS, help="adapters")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="rounds of each")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    if not 1 <= args.adapters <= 100 or args.rounds < 1:
        parser.error("--adapters must be 1..100, --rounds at least 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if importlib.util.find_spec("runner") is None:
        raise SystemExit("runner is not importable: run with the venv's python (make bench)")
    from runner.hub.emulator import EmulatorServer

    work = Path(tempfile.mkdtemp(prefix="reconcile-bench-"))
    root = work / "repo"
    repos = [publish_repo(i) for i in range(args.adapters)]
    saved = {name: os.environ.get(name) for name in ("HF_ENDPOINT", "HF_TOKEN")}
    try:
        with EmulatorServer(work / "hub") as hub:
            os.environ["HF_ENDPOINT"] = hub.endpoint
            os.environ["HF_TOKEN"] = TOKEN
            build_repo(root, args.adapters)
            seed_promotions(hub, root)
            states = states_of(root)
            sides = {
                "reconcile --apply": cli("reconcile", "--apply", "--repo", str(root)),
                "status": cli("status", "--repo", str(root)),
                "baseline list_repo_refs": baseline(hub.endpoint, repos),
            }
            runs: dict[str, list[Round]] = {side: [] for side in sides}
            for _ in range(args.rounds):
                for side, call in sides.items():
                    runs[side].append(measure(hub, repos, call))
            steps = breakdown(root)
            report(args.adapters, states, runs, steps)
            if max(r.wall_s for r in runs["reconcile --apply"]) >= TARGET_WALL_S:
                print(f"profile of one reconcile --apply (top {PROFILE_LINES}, cumulative):")
                print(profile(sides["reconcile --apply"]))
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
