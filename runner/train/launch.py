"""Train a candidate through a backend: `local` runs train.py in a subprocess here, `space`
runs the same file in our training Space. Either way the candidate lands on the Hub at its
run id's location, and a run id that already has a candidate is never trained again unless
forced. A previous attempt that got as far as a trained adapter (run.json status `trained`)
is kept: the next attempt only generates.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from runner.data.checks import check_dataset
from runner.data.publish import push_dataset
from runner.errors import RunnerError
from runner.hub.client import HubClient
from runner.policy.access import require_base_access, require_writable
from runner.policy.loading import Policies
from runner.policy.training import estimate_cost
from runner.runs.config import dumps, render_run_config
from runner.runs.incumbent import find_incumbent
from runner.runs.location import CandidateLocation, candidate_location
from runner.runs.progress import parse_progress
from runner.runs.record import RunRecord, clear_run, read_run
from runner.runs.run_id import TRAIN_SCRIPT, run_id
from runner.space.sync import (
    SPACE_TOKEN_SECRET,
    Limits,
    RunProgress,
    SpaceRun,
    Watch,
    checked_render,
    describe_failure,
    space_id_for,
    start_space,
    sync_space,
    watch_space,
    why_stop,
)
from runner.specs.bundle import AdapterBundle
from runner.workspace import Workspace

Backend = Literal["local", "space"]
EventSink = Callable[[dict[str, Any]], None]
LOG_TAIL = 20
# Past its timeout a run goes on while it progresses: this long without a new step stops it.
STALL_MINUTES = 10.0
# The plan's GPU-hour estimate times this is a run's expected time, the timeout's floor.
ESTIMATE_MARGIN = 1.5
# Without policies/training.yaml (its max_gpu_hours_per_run), the ceiling is this many timeouts.
CEILING_TIMEOUTS = 3.0
# How often a local run is checked against its limits.
LOCAL_POLL_S = 1.0
# After a local run ends, how long its log may take to drain (a child could hold the pipe).
LOG_DRAIN_S = 10.0


class TrainingFailed(RunnerError):
    """The run ended without a candidate; the message says where and why."""


@dataclass(frozen=True)
class TrainOutcome:
    run_id: str
    location: CandidateLocation
    trained: bool
    """False when an existing candidate was reused."""
    run: RunRecord


def _ignore(event: dict[str, Any]) -> None:
    pass


def train_candidate(
    bundle: AdapterBundle,
    repo_root: Path,
    client: HubClient,
    policies: Policies,
    *,
    backend: Backend,
    force: bool = False,
    timeout_s: float | None = None,
    on_event: EventSink = _ignore,
) -> TrainOutcome:
    require_writable(policies.repos, client, bundle)  # also for a spec that skipped validate
    require_base_access(client, bundle)
    rid = run_id(bundle, repo_root)
    location = candidate_location(bundle, rid)
    previous = read_run(client, location)
    if previous is not None and previous.is_candidate and not force:
        return TrainOutcome(rid, location, trained=False, run=previous)
    if previous is not None and (force or not previous.is_trained):
        reason = "retrain (--force)" if force else "retry a failed run"
        clear_run(client, previous, reason)
    config = run_config(bundle, repo_root, client, rid)
    on_event({"stage": "start", "run_id": rid, "backend": backend})
    limits = watch_limits(bundle, repo_root, policies, timeout_s)
    if backend == "local":
        work_dir = repo_root / ".runs" / rid
        failure = run_locally(config, client, work_dir, on_event, limits=limits, retrain=force)
        detail = failure
    else:
        space = run_in_space(bundle, policies, client, config, limits, on_event)
        failure = None if space.finished else describe_failure(space)
        # A finished Space's run log is gone from the Hub: its tail, as the watch read it.
        detail = describe_failure(space)
    run = read_run(client, location)
    if failure is not None or run is None or not run.is_candidate:
        why = run.error if run is not None else "no run.json was uploaded"
        raise TrainingFailed(
            f"{bundle.dirname}: run {rid} ({backend}) made no candidate: {why}"
            + (f"\n{detail}" if detail else "")
            + f"\n{what_was_kept(run)}"
        )
    return TrainOutcome(rid, location, trained=True, run=run)


def what_was_kept(run: RunRecord | None) -> str:
    """What a failed or stopped attempt leaves for the next one, in one line."""
    if run is not None and run.is_trained:
        return (
            f"kept: the trained adapter in {run.location} (run.json status trained); "
            "the next `runner train` does not train again, it only generates the eval outputs"
        )
    return "kept: nothing (no trained adapter was uploaded); the next `runner train` starts over"


def run_config(
    bundle: AdapterBundle, repo_root: Path, client: HubClient, rid: str
) -> dict[str, Any]:
    """Push the dataset version (once) and render the run config against its commit."""
    dataset = push_dataset(bundle.dataset, repo_root, client)
    incumbent = find_incumbent(bundle, client)
    return render_run_config(bundle, run_id=rid, dataset=dataset, incumbent=incumbent)


def run_locally(
    config: dict[str, Any],
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
    tail: deque[str] = deque(maxlen=LOG_TAIL)
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


def space_variables(bundle: AdapterBundle, config: dict[str, Any], space_id: str) -> dict[str, str]:
    """The run config, and for the autotrain engine the AutoTrain config rendered from it
    (AutoTrain pushes to the Space owner's namespace)."""
    variables = {"RUN_CONFIG": dumps(config)}
    if bundle.adapter.training.engine == "autotrain":
        from runner.train.autotrain import autotrain_config_yaml, render_autotrain_config

        autotrain = render_autotrain_config(
            bundle,
            run_id=config["run_id"],
            username=space_id.split("/")[0],
            dataset_repo=config["dataset"]["repo_id"],
            dataset_revision=config["dataset"]["revision"],
        )
        variables["AUTOTRAIN_CONFIG"] = autotrain_config_yaml(autotrain)
    return variables


def watch_limits(
    bundle: AdapterBundle, repo_root: Path, policies: Policies, timeout_s: float | None
) -> Limits:
    """When the Space watch stops a run. The timeout: `timeout_s` (--timeout-minutes), else
    the larger of training.timeout_minutes and the plan's estimate with a margin; past it the
    run goes on while it progresses. The ceiling: max_gpu_hours_per_run, the cost guard."""
    if timeout_s is not None:
        timeout, timeout_from = timeout_s, "--timeout-minutes"
    else:
        timeout, timeout_from = _spec_or_estimate(bundle, repo_root, policies)
    if policies.training is not None:
        ceiling = policies.training.max_gpu_hours_per_run * 3600.0
        ceiling_from = "max_gpu_hours_per_run in policies/training.yaml"
    else:
        ceiling, ceiling_from = timeout * CEILING_TIMEOUTS, f"{CEILING_TIMEOUTS:g}x the timeout"
    return Limits(
        timeout_s=min(timeout, ceiling),
        stall_s=STALL_MINUTES * 60.0,
        ceiling_s=ceiling,
        timeout_from=timeout_from,
        ceiling_from=ceiling_from,
    )


def _spec_or_estimate(
    bundle: AdapterBundle, repo_root: Path, policies: Policies
) -> tuple[float, str]:
    """training.timeout_minutes, or the plan's GPU-hour estimate with a margin if longer."""
    spec = bundle.adapter.training.timeout_minutes * 60.0
    if policies.training is None:
        return spec, "training.timeout_minutes"
    tokens = check_dataset(bundle, Workspace(repo_root), None).stats["train"].tokens
    hours = estimate_cost(policies.training, bundle, tokens).gpu_hours
    if hours is None or hours * 3600.0 * ESTIMATE_MARGIN <= spec:
        return spec, "training.timeout_minutes"
    return hours * 3600.0 * ESTIMATE_MARGIN, f"the plan's {hours:.2f} h x {ESTIMATE_MARGIN:g}"


def run_in_space(
    bundle: AdapterBundle,
    policies: Policies,
    client: HubClient,
    config: dict[str, Any],
    limits: Limits,
    on_event: EventSink,
) -> SpaceRun:
    """Render (policy-checked), sync, configure, start and watch the training Space."""
    space_id = space_id_for(bundle)
    files = checked_render(bundle, policies, space_id)
    token = client.environment().get("HF_TOKEN")
    if not token:
        raise RunnerError(
            "the Space needs a token to push its results: set HF_TOKEN to a token with write "
            f"access to {bundle.adapter.publish.repo_id.split('/')[0]}"
        )
    removed = sync_space(
        client,
        space_id,
        files,
        secrets={SPACE_TOKEN_SECRET: token},
        variables=space_variables(bundle, config, space_id),
    )
    on_event({"stage": "synced", "space": space_id, "removed": removed})
    start_space(client, space_id, bundle.adapter.training.hardware)
    watch = Watch(
        limits=limits,
        on_stage=lambda stage: on_event({"stage": f"space {stage}"}),
        on_log=lambda line: on_event(parse_progress(line) or {"log": line}),
    )
    return watch_space(client, space_id, watch)
