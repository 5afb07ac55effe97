"""Cost of loading specs with positions, cross-file rules and findings, against a plain
baseline measured in the same run: ruamel safe-load + pydantic validation of the same files.

Target: position tracking costs at most 3x the baseline, and loading every example adapter
stays well under 100 ms, so `runner validate` on a PR is dominated by the data, not the specs.
"""

from __future__ import annotations

import time
from pathlib import Path

from ruamel.yaml import YAML

from runner.specs import SPEC_FILES, load_adapter
from runner.workspace import Workspace

ROOT = Path(__file__).resolve().parent.parent
ROUNDS = 30


def runner_load(workspace: Workspace, directories: list[Path]) -> None:
    for directory in directories:
        load_adapter(workspace, directory)


def baseline_load(directories: list[Path]) -> None:
    yaml = YAML(typ="safe", pure=True)
    for directory in directories:
        for spec_file in SPEC_FILES:
            data = yaml.load((directory / spec_file.filename).read_text())
            spec_file.model.model_validate(data)


def best_of(fn, rounds: int) -> float:
    timings = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    workspace = Workspace(ROOT)
    directories = workspace.list_adapter_dirs()
    files = len(directories) * len(SPEC_FILES)
    ours = best_of(lambda: runner_load(workspace, directories), ROUNDS)
    base = best_of(lambda: baseline_load(directories), ROUNDS)
    print(f"adapters: {len(directories)} ({files} spec files), best of {ROUNDS} rounds")
    print(f"runner load_adapter : {ours * 1000:7.2f} ms  ({files / ours:8.0f} files/s)")
    print(f"baseline safe+model : {base * 1000:7.2f} ms  ({files / base:8.0f} files/s)")
    print(f"ratio runner/baseline: {ours / base:.2f}x (target <= 3x)")


if __name__ == "__main__":
    main()
