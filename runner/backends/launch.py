"""Train a candidate through a backend (`backend_for`: `local` runs train.py in a subprocess
here, `space` runs the engine's app in our training Space). Either way the candidate lands on
the Hub at its run id's location, and a run id that already has a candidate is never trained
again unless forced. A previous attempt that got as far as a trained adapter (run.json status
`trained`) is kept: the next attempt only generates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.backends import backend_for, training_repos
from runner.backends.base import EventSink, Launch
from runner.data.checks import check_dataset
from runner.data.publish import push_dataset
from runner.engines import engine_for
from runner.errors import RunnerError
from runner.hub.client import HubClient
from runner.policy.access import require_base_access, require_writable
from runner.policy.loading import Policies
from runner.policy.training import estimate_cost
from runner.runs.config import render_run_config
from runner.runs.incumbent import find_incumbent
from runner.runs.location import CandidateLocation, candidate_location
from runner.runs.record import RunRecord, clear_run, read_run
from runner.runs.run_id import run_id
from runner.space.sync import Limits
from runner.specs.bundle import AdapterBundle
from runner.train.train import RunConfig
from runner.workspace import Workspace

# Past its timeout a run goes on while it progresses: this long without a new step stops it.
STALL_MINUTES = 10.0
# The plan's GPU-hour estimate times this is a run's expected time, the timeout's floor.
ESTIMATE_MARGIN = 1.5
# Without policies/training.yaml (its max_gpu_hours_per_run), the ceiling is this many timeouts.
CEILING_TIMEOUTS = 3.0


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
    backend: str,
    force: bool = False,
    timeout_s: float | None = None,
    on_event: EventSink = _ignore,
    pr: int | None = None,
) -> TrainOutcome:
    backend_for(backend).check(bundle)
    # also for a spec that skipped validate
    require_writable(policies.repos, client, bundle, training_repos(bundle))
    require_base_access(client, bundle)
    rid = run_id(bundle, repo_root)
    location = candidate_location(bundle, rid)
    required = engine_for(bundle).required_files
    previous = read_run(client, location, required=required)
    if previous is not None and previous.is_candidate and not force:
        return TrainOutcome(rid, location, trained=False, run=previous)
    if previous is not None and (force or not previous.is_trained):
        reason = "retrain (--force)" if force else "retry a failed run"
        clear_run(client, previous, reason)
    config = run_config(bundle, repo_root, client, rid)
    on_event({"stage": "start", "run_id": rid, "backend": backend})
    limits = watch_limits(bundle, repo_root, policies, timeout_s)
    ended = backend_for(backend).launch(
        Launch(bundle, repo_root, client, policies, config, limits, on_event, retrain=force, pr=pr)
    )
    run = read_run(client, location, required=required)
    if ended.failure is not None or run is None or not run.is_candidate:
        why = run.error if run is not None else "no run.json was uploaded"
        raise TrainingFailed(
            f"{bundle.dirname}: run {rid} ({backend}) made no candidate: {why}"
            + (f"\n{ended.detail}" if ended.detail else "")
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


def run_config(bundle: AdapterBundle, repo_root: Path, client: HubClient, rid: str) -> RunConfig:
    """Push the dataset version (once) and render the run config against its commit."""
    dataset = push_dataset(bundle.dataset, repo_root, client)
    incumbent = find_incumbent(bundle, client)
    return render_run_config(bundle, run_id=rid, dataset=dataset, incumbent=incumbent)


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
