"""How long `runner eval` and `runner status` take to fail with no Hub to talk to, against the
same commands answered by a live (empty) Hub emulator, measured in the same run.

Three Hubs, one after the other, each command `--runs` times as a subprocess (the installed
command, a fresh HF_HOME): the baseline, an emulator on a thread of this process that holds
no repo (status: every adapter needs training; eval: no run to evaluate); a port nothing
listens on (taken from the OS, then given back); and a host name that never resolves
(`nonexistent.invalid`). Each line gives the median wall time, its exit codes and the first
line of stderr. Before issue 14 a refused connection was tried twice, with huggingface_hub's
retry warnings on stderr, and ended with exit 1, the code of a failed gate.

Target (issue 14): with no Hub, exit 2 with one line on stderr, in under 5 s (the time to
start the command and ask once: within a second of the baseline).

    python benchmarks/offline_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADAPTER = "kwanzaa-mini-v1"
COPIED = ("policies", "schemas", f"adapters/{ADAPTER}", "datasets/kwanzaa")
TOKEN = "hf_offlineBenchToken12345"
RUNNER = str(Path(sys.executable).with_name("runner"))  # the installed command
# The Hubs that are not there; None: a port nothing listens on, taken when measured.
NO_HUB = {"nothing listening": None, "unresolvable": "http://nonexistent.invalid"}
TARGET_S = 5.0
DEFAULT_RUNS = 3


@dataclass(frozen=True)
class Timing:
    seconds: float
    codes: list[int]
    stderr_lines: int
    first_line: str


def closed_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


def timed(arguments: list[str], endpoint: str, work: Path, runs: int) -> Timing:
    seconds, codes, err = [], [], ""
    for index in range(runs):
        env = {
            **os.environ,
            "HF_ENDPOINT": endpoint,
            "HF_TOKEN": TOKEN,
            "HF_HOME": str(work / f"hf-home-{index}"),
            "NO_COLOR": "1",
        }
        started = time.perf_counter()
        done = subprocess.run(
            [RUNNER, *arguments], env=env, capture_output=True, text=True, timeout=600, check=False
        )
        seconds.append(time.perf_counter() - started)
        codes.append(done.returncode)
        err = done.stderr
    lines = err.splitlines()
    return Timing(statistics.median(seconds), codes, len(lines), lines[0] if lines else "")


def meets_target(timing: Timing) -> bool:
    return set(timing.codes) == {2} and timing.stderr_lines == 1 and timing.seconds < TARGET_S


def commands(repo: Path, out: Path) -> dict[str, list[str]]:
    return {
        "eval": ["eval", f"adapters/{ADAPTER}", "--out", str(out), "--repo", str(repo)],
        "status": ["status", "--repo", str(repo)],
    }


def report(verb: str, hub: str, timing: Timing, baseline: Timing) -> None:
    extra = timing.seconds - baseline.seconds
    print(
        f"  {verb:<7} {hub:<20} {timing.seconds:6.2f} s ({extra:+.2f} s vs live)  "
        f"exit {timing.codes}  {timing.stderr_lines} stderr line(s): {timing.first_line[:90]}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS)
    args = parser.parse_args(argv)
    if not Path(RUNNER).exists():
        raise SystemExit("runner is not installed: run with the venv's python (make bench)")
    from runner.hub.emulator import EmulatorServer

    work = Path(tempfile.mkdtemp(prefix="offline-bench-"))
    try:
        repo = work / "repo"
        for part in COPIED:
            shutil.copytree(ROOT / part, repo / part)
        verbs = commands(repo, work / "out")
        with EmulatorServer(work / "hub-data") as hub:
            live = {
                verb: timed(line, hub.endpoint, work, args.runs) for verb, line in verbs.items()
            }
        print(f"median of {args.runs} run(s) each; with no Hub: exit 2, one line, < {TARGET_S:g} s")
        failures = []
        for verb, arguments in verbs.items():
            report(verb, "live emulator", live[verb], live[verb])
            for hub_name, endpoint in NO_HUB.items():
                timing = timed(arguments, endpoint or closed_port(), work, args.runs)
                report(verb, hub_name, timing, live[verb])
                failures += [f"{verb}, {hub_name}"] if not meets_target(timing) else []
        print(f"target {'MISSED by ' + '; '.join(failures) if failures else 'met'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
