"""Training steps on a busy machine: why train.py sets `OMP_WAIT_POLICY=PASSIVE`.

torch's OpenMP threads spin while they wait for each other. On an idle machine that is
harmless; with one other CPU-bound process on a 2-core machine, a thread spins for a core
the other process holds, and every barrier of every small op waits a scheduler slice. `make
demo` beside a busy loop took about 55 s a training step; passive, about 14 s (issue 13).

Workload: forward + backward + SGD steps of MLP blocks at SmolLM2-135M's sizes (a sequence
of 256 tokens through 30 layers of hidden 576 and 1536), on 2 threads (what torch picks
here), each configuration in a fresh subprocess because OpenMP reads its wait policy once,
when it loads. Four runs, the first is the baseline:

- idle, OpenMP's default wait policy (baseline)
- idle, passive
- beside a busy process (a Python loop on one core), default
- beside a busy process, passive

Printed: wall and CPU seconds and the wall ratio to the baseline. Target: passive costs
nothing idle (ratio ~1.0) and is clearly faster than the default beside a busy process.

    python benchmarks/busy_bench.py [--steps N] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager

WORKER = """
import json, sys, time, torch
steps, threads = int(sys.argv[1]), int(sys.argv[2])
torch.manual_seed(0)
torch.set_num_threads(threads)
x = torch.randn(256, 576)
block = torch.nn.Sequential(*[
    layer
    for _ in range(30)
    for layer in (torch.nn.Linear(576, 1536), torch.nn.SiLU(), torch.nn.Linear(1536, 576))
])
optimizer = torch.optim.SGD(block.parameters(), lr=1e-3)
for _ in range(3):  # warm up
    block(x).pow(2).mean().backward()
wall, cpu = time.perf_counter(), time.process_time()
for _ in range(steps):
    optimizer.zero_grad()
    block(x).pow(2).mean().backward()
    optimizer.step()
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}))
"""


@contextmanager
def busy(on: bool) -> Iterator[None]:
    """A Python loop on one core for as long as the block runs."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        yield
    finally:
        if process is not None:
            process.kill()
            process.wait()


def measure(steps: int, threads: int, policy: str | None) -> dict[str, float]:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if policy is not None:
        env["OMP_WAIT_POLICY"] = policy
    done = subprocess.run(
        [sys.executable, "-c", WORKER, str(steps), str(threads)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    rows = []
    for label, loaded, policy in (
        ("idle, default wait (baseline)", False, None),
        ("idle, passive wait", False, "PASSIVE"),
        ("busy, default wait", True, None),
        ("busy, passive wait", True, "PASSIVE"),
    ):
        with busy(loaded):
            rows.append((label, measure(args.steps, args.threads, policy)))
    base = rows[0][1]["wall"]
    print(f"{args.steps} training steps, {args.threads} torch threads, {os.cpu_count()} cores")
    for label, found in rows:
        print(
            f"{label:32} wall {found['wall']:6.2f} s  cpu {found['cpu']:6.2f} s"
            f"  x{found['wall'] / base:.2f} of the baseline"
        )
    speedup = rows[2][1]["wall"] / rows[3][1]["wall"]
    print(f"beside a busy process, passive wait is {speedup:.1f}x faster than the default")


if __name__ == "__main__":
    main()
