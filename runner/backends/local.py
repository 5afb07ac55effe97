"""The `local` backend: train.py in a subprocess on this machine, stopped by the same
limits as a Space run."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from runner.backends.base import Ended, EventSink, Launch
from runner.hub.client import HubClient
from runner.runs.config import dumps
from runner.runs.progress import parse_progress
from runner.runs.run_id import TRAIN_SCRIPT
from runner.space.sync import LOG_TAIL_LINES, Limits, RunProgress, why_stop
from runner.specs.bundle import AdapterBundle
from runner.train.train import RunConfig

# How often a local run is checked against its limits.
LOCAL_POLL_S = 1.0
# After a local run ends, how long its log may take to drain (a child could hold the pipe).
LOG_DRAIN_S = 10.0


class LocalBackend:
    name = "local"
    on_this_machine = True

    def written_repos(self, bundle: AdapterBundle) -> list[tuple[str, str]]:
        return []

    def check(self, bundle: AdapterBundle) -> None:
        pass  # any spec the schema accepts trains here

    def launch(self, run: Launch) -> Ended:
        work_dir = run.repo_root / ".runs" / run.config.run_id
        failure = run_locally(
            run.config, run.client, work_dir, run.on_event, limits=run.limits, retrain=run.retrain
        )
        return Ended(failure, failure)


LOCAL = LocalBackend()


def run_locally(
    config: RunConfig,
    client: HubClient,
    work_dir: Path,
    on_event: EventSink,
    *,
    limits: Limits,
    retrain: bool = False,
) -> str | None:
    """train.py in a subprocess; every line goes to `train.log`. Returns None on exit 0,
    else why it ended, with the log tail. `limits` stop it as they stop a Space run (see
    `watch_limits`). `retrain` trains even when a trained adapter is kept in `work_dir`."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config_file = work_dir / "run_config.json"
    config_file.write_text(dumps(config), encoding="utf-8")
    command = [sys.executable, str(TRAIN_SCRIPT), "--config", str(config_file)]
    command += ["--output-dir", str(work_dir / "output")] + (["--retrain"] if retrain else [])
    env = {**os.environ, **client.environment(), "PYTHONUNBUFFERED": "1"}
    tail: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    progress = RunProgress(time.monotonic)

    def pump(lines: Any, log: Any) -> None:
        for line in lines:
            try:
                log.write(line)
                log.flush()  # `tail -f train.log` follows a long run
            except ValueError:  # closed: the run ended LOG_DRAIN_S ago, a child holds the pipe
                return
            tail.append(line.rstrip("\n"))
            progress.read(line)
            on_event(parse_progress(line) or {"log": line.rstrip("\n")})

    with (work_dir / "train.log").open("w", encoding="utf-8") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        reader = threading.Thread(target=pump, args=(process.stdout, log), daemon=True)
        reader.start()
        try:
            stopped = _wait_within(process, limits, progress)
        finally:
            if process.poll() is None:
                process.terminate()
            code = process.wait()
            reader.join(LOG_DRAIN_S)
    lines = "\n".join(f"  | {line}" for line in tail)
    if stopped is not None:
        return f"train.py {stopped}; full log: {work_dir / 'train.log'}\n{lines}"
    if code == 0:
        return None
    return f"train.py exited {code}; full log: {work_dir / 'train.log'}\n{lines}"


def _wait_within(
    process: subprocess.Popen[str], limits: Limits, progress: RunProgress
) -> str | None:
    """None once the process exits by itself; why a limit stopped it otherwise."""
    started = time.monotonic()
    while (stop := why_stop(limits, started, time.monotonic(), progress.last)) is None:
        try:
            process.wait(timeout=LOCAL_POLL_S)
        except subprocess.TimeoutExpired:
            continue
        return None
    return stop
