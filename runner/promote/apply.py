"""`runner reconcile --apply`: carry out each adapter's action. Every step first looks at
what the Hub already has, so a run killed anywhere and started again finishes the job
without a second training or a second promotion; promotion holds a lock recorded on the Hub.
One adapter's failure is reported and the others still converge."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from runner import __version__
from runner.errors import RunnerError
from runner.evaluate.pipeline import (
    evaluate_candidate,
    fetch_candidate,
    publish_report,
    read_report,
)
from runner.gitutil import head_commit
from runner.hub.client import HubClient, RepoRef
from runner.policy.loading import Policies
from runner.promote.card import Provenance, withdrawn_card
from runner.promote.lock import HubLock, default_owner
from runner.promote.promote import promote, read_record
from runner.promote.reconcile import Action, AdapterState
from runner.report.eval_comment import eval_comment
from runner.specs.bundle import AdapterBundle
from runner.train.launch import EventSink, train_candidate
from runner.train.run_config import candidate_location


@dataclass(frozen=True)
class Outcome:
    adapter: str
    action: Action
    ok: bool
    result: str
    promoted_as: str | None = None  # "<publish repo>@v<N>" when this run promoted it
    gate_passed: bool | None = None  # when this run evaluated the candidate


@dataclass(frozen=True)
class Context:
    repo_root: Path
    client: HubClient
    policies: Policies
    pr_number: int | None
    repair_drift: bool
    on_event: EventSink


def converge(states: list[AdapterState], ctx: Context) -> list[Outcome]:
    outcomes = []
    for state in states:
        if state.action is Action.NONE:
            continue
        try:
            outcomes.append(_carry_out(state, ctx))
        except RunnerError as error:
            outcomes.append(Outcome(state.adapter, state.action, False, str(error)))
    return outcomes


def _carry_out(state: AdapterState, ctx: Context) -> Outcome:
    def done(result: str, promoted_as: str | None = None, passed: bool | None = None) -> Outcome:
        return Outcome(state.adapter, state.action, True, result, promoted_as, passed)

    if state.action is Action.WITHDRAW:
        return done(withdraw(state, ctx.client))
    bundle = state.bundle
    assert bundle is not None
    assert state.run_id is not None
    if state.action is Action.REPAIR:
        if not ctx.repair_drift:
            return done("left alone: --repair-drift restores what was promoted")
        return done(repair(bundle, ctx.client))
    if state.action is Action.TRAIN:
        train_candidate(
            bundle,
            ctx.repo_root,
            ctx.client,
            ctx.policies,
            backend=bundle.adapter.training.backend,
            on_event=ctx.on_event,
        )
    if state.action in (Action.TRAIN, Action.EVALUATE):
        passed, detail = evaluate(bundle, state.run_id, ctx)
        if not passed:
            return done(f"not promoted: {detail}", passed=False)
    result, promoted_as = promote_candidate(bundle, state.run_id, ctx)
    return done(result, promoted_as)


def evaluate(bundle: AdapterBundle, rid: str, ctx: Context) -> tuple[bool, str]:
    ctx.on_event({"stage": f"evaluating {bundle.dirname}"})
    report = evaluate_candidate(
        bundle, ctx.repo_root, ctx.client, run_id=rid, out_dir=ctx.repo_root / ".runs" / rid
    )
    publish_report(ctx.client, candidate_location(bundle, rid), report, eval_comment(report))
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.passed]
    return report.passed, "failed its gate: " + "; ".join(failed)


def promote_candidate(bundle: AdapterBundle, rid: str, ctx: Context) -> tuple[str, str]:
    """What happened, and the promoted "<publish repo>@v<N>"."""
    ctx.on_event({"stage": f"promoting {bundle.dirname}"})
    location = candidate_location(bundle, rid)
    report = read_report(ctx.client, location)
    if report is None:
        raise RunnerError(f"run {rid} has no eval report at {location}; run reconcile again")
    files = fetch_candidate(ctx.client, location)
    provenance = Provenance(head_commit(ctx.repo_root), ctx.pr_number, rid, __version__)
    lock = HubLock(ctx.client, location.repo, bundle.dirname, owner=default_owner(), ttl_s=600)
    with lock.held():
        done = promote(
            ctx.client,
            bundle,
            files.folder,
            report,
            provenance,
            dataset_commit=files.record.get("config", {}).get("dataset", {}).get("revision"),
        )
    state = "promoted" if done.created else "already promoted"
    promoted_as = f"{done.repo_id}@{done.tag}"
    return f"{state}: {promoted_as} ({done.commit[:12]})", promoted_as


def repair(bundle: AdapterBundle, client: HubClient) -> str:
    """Make main hold exactly what the latest tag promoted, in one commit."""
    repo = RepoRef(bundle.adapter.publish.repo_id)
    tag = f"v{bundle.adapter.version}"
    refs = client.refs(repo)
    promoted = client.snapshot(repo, revision=refs.tags[tag])
    commit = client.sync_folder(
        repo, promoted, f"Restore {tag} (drift repair)", parent_commit=refs.branches["main"]
    )
    return f"restored main to {tag} ({commit[:12]})"


def withdraw(state: AdapterState, client: HubClient) -> str:
    """Nothing on the Hub is deleted: when main still holds the withdrawn version, its card
    says so; the tag stays as it is."""
    repo_id, tag = state.detail.split("@")
    repo = RepoRef(repo_id)
    refs = client.refs(repo)
    record = read_record(client, repo, refs.branches["main"]) or {}
    if f"v{record.get('version')}" != tag:
        return f"{repo_id}@{tag} kept; main holds another version, nothing to mark"
    card = client.download(repo, "README.md", revision="main").read_text(encoding="utf-8")
    marked = withdrawn_card(card, f"{state.adapter} was removed from the adapters repository.")
    if marked == card:
        return "already marked withdrawn"
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "README.md"
        path.write_text(marked, encoding="utf-8")
        client.commit(
            repo, {"README.md": path}, f"Withdraw {tag}", parent_commit=refs.branches["main"]
        )
    return f"marked {repo_id}@{tag} withdrawn (nothing deleted)"
