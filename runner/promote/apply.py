"""`runner reconcile --apply`: carry out each adapter's action. Every step first looks at
what the Hub already has, so a run killed anywhere and started again finishes the job
without a second training or a second promotion; promotion holds a lock recorded on the Hub.
A reconcile that finds the lock held waits for it, then reports what the holder did; a lock
left behind once its promotion is on the Hub blocks nobody and is cleared (one request per
promoted adapter looks for one). One adapter's failure is reported and the others still
converge."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner import __version__
from runner.backends import training_repos
from runner.backends.base import EventSink
from runner.backends.launch import train_candidate
from runner.engines import engine_for
from runner.errors import RunnerError
from runner.evaluate.pipeline import evaluate_and_publish, fetch_candidate, read_report
from runner.evaluate.report import EvalReport
from runner.gitutil import head_commit
from runner.hub.client import HubClient, HubSetupError, NotFoundError, RepoRef
from runner.policy.access import require_writable
from runner.policy.loading import Policies
from runner.promote.card import Provenance, withdrawn_card
from runner.promote.channels import withdrawal_refusal
from runner.promote.lock import HubLock, LockRecord, default_owner
from runner.promote.promote import Promotion, promote, read_record
from runner.promote.reconcile import Action, AdapterState, State, version_order
from runner.runs.location import candidate_location
from runner.runs.versions import tag_version, version_tag
from runner.specs.bundle import AdapterBundle
from runner.specs.channels import ChannelsFile


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
    notify: Callable[[str], None]  # a line for the log: waiting for a lock, and whose
    render: Callable[[EvalReport], str]  # the eval report's markdown, published beside it
    channels: Mapping[str, ChannelsFile] = field(default_factory=dict)  # by adapter name


LOCK_TTL_S = 600.0
# Within one TTL a live holder finishes or its lock goes stale: waiting that long always ends.
LOCK_WAIT_S = LOCK_TTL_S


def converge(states: list[AdapterState], ctx: Context) -> list[Outcome]:
    outcomes = []
    for state in sorted(states, key=_acting_order):
        try:
            outcome = _carry_out(state, ctx)
        except HubSetupError:
            raise  # no Hub, or a token it refuses: every adapter would fail the same way
        except RunnerError as error:
            outcome = Outcome(state.adapter, state.action, False, str(error))
        if outcome is not None:
            outcomes.append(outcome)
    return outcomes


def _acting_order(state: AdapterState) -> tuple[int, str, int]:
    """Each adapter's versions in ascending order, so that when several are promoted in one
    run `main` ends on the newest; rows git no longer has (withdrawn) after them."""
    if state.bundle is None:
        return 1, "", 0
    return 0, *version_order(state.bundle)


def _carry_out(state: AdapterState, ctx: Context) -> Outcome | None:
    def done(result: str, promoted_as: str | None = None, passed: bool | None = None) -> Outcome:
        return Outcome(state.adapter, state.action, True, result, promoted_as, passed)

    if state.state is State.PROMOTED:
        return clear_leftover_lock(state, ctx)
    if state.action is Action.NONE:
        return None
    if state.action is Action.WITHDRAW:
        refused = withdrawal_refusal(state, ctx.channels)
        if refused is not None:
            return Outcome(state.adapter, state.action, False, refused)
        return done(withdraw(state, ctx.client))
    bundle = state.bundle
    assert bundle is not None
    assert state.run_id is not None
    # a spec that skipped validate too
    require_writable(ctx.policies.repos, ctx.client, bundle, training_repos(bundle))
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
    report, _ = evaluate_and_publish(
        bundle,
        ctx.repo_root,
        ctx.client,
        ctx.render,
        run_id=rid,
        out_dir=ctx.repo_root / ".runs" / rid,
    )
    failed = [f"{c.name}: {c.detail}" for c in report.checks if not c.passed]
    return report.passed, "failed its gate: " + "; ".join(failed)


def promote_candidate(bundle: AdapterBundle, rid: str, ctx: Context) -> tuple[str, str]:
    """What happened, and the promoted "<publish repo>@v<N>"."""
    ctx.on_event({"stage": f"promoting {bundle.dirname}"})
    location = candidate_location(bundle, rid)
    report = read_report(ctx.client, location)
    if report is None:
        raise RunnerError(f"run {rid} has no eval report at {location}; run reconcile again")
    files = fetch_candidate(ctx.client, location, engine_for(bundle).required_files)
    provenance = Provenance(head_commit(ctx.repo_root), ctx.pr_number, rid, __version__)
    lock = promotion_lock(bundle, rid, ctx.client)

    def waiting(holder: LockRecord) -> None:
        ctx.notify(
            f"{bundle.dirname}: {lock.describe(holder)}; waiting for that reconcile "
            f"(at most {LOCK_WAIT_S:.0f} s), then reporting what it did"
        )

    run_config = files.record.config
    try:
        with lock.held(LOCK_WAIT_S, waiting):
            done = promote(
                ctx.client,
                bundle,
                files.folder,
                report,
                provenance,
                dataset_commit=run_config.dataset.revision if run_config else None,
            )
    except RunnerError:
        # A lock whose promotion commit had landed was taken over, so its holder and we may
        # both have tagged: the one refused reports what the Hub holds, not the refusal.
        found = _promoted_already(ctx.client, bundle, rid)
        if found is None:
            raise
        done = found
    state = "promoted" if done.created else "already promoted"
    promoted_as = f"{done.repo_id}@{done.tag}"
    return f"{state}: {promoted_as} ({done.commit[:12]})", promoted_as


def promotion_lock(bundle: AdapterBundle, rid: str, client: HubClient) -> HubLock:
    """The lock promoting this version holds, beside its candidates. Once the promotion is on
    the Hub it guards nothing, so a holder killed after its work (while releasing) blocks
    nobody."""
    return HubLock(
        client,
        candidate_location(bundle, rid).repo,
        bundle.dirname,
        owner=default_owner(),
        ttl_s=LOCK_TTL_S,
        work_done=lambda: promotion_landed(client, bundle, rid),
    )


def promotion_landed(client: HubClient, bundle: AdapterBundle, rid: str) -> bool:
    """The version's tag is there (promote() then writes nothing, whichever run it holds), or
    main's promotion record names this run (its holder died before tagging)."""
    repo = RepoRef(bundle.adapter.publish.repo_id)
    try:
        refs = client.refs(repo)
    except NotFoundError:
        return False
    if version_tag(bundle.adapter.version) in refs.tags:
        return True
    main = refs.branches.get("main")
    record = (read_record(client, repo, main) if main else None) or {}
    return record.get("run_id") == rid and record.get("version") == bundle.adapter.version


def _promoted_already(client: HubClient, bundle: AdapterBundle, rid: str) -> Promotion | None:
    """The version's tag when it holds run `rid`; None otherwise or when the Hub can't say."""
    repo = RepoRef(bundle.adapter.publish.repo_id)
    tag = version_tag(bundle.adapter.version)
    try:
        commit = client.tags(repo).get(tag)
        record = (read_record(client, repo, commit) if commit else None) or {}
    except RunnerError:
        return None
    if commit is None or record.get("run_id") != rid:
        return None
    return Promotion(repo.repo_id, tag, commit, created=False)


def clear_leftover_lock(state: AdapterState, ctx: Context) -> Outcome | None:
    """A promoted version's lock, left by a reconcile killed while releasing it: deleted, so
    no lock outlives its promotion. One request when there is none (the usual case)."""
    assert state.bundle is not None
    assert state.run_id is not None
    lock = promotion_lock(state.bundle, state.run_id, ctx.client)
    if lock.current() is None:
        return None
    cleared = lock.clear_abandoned()
    if cleared is None:
        return None
    return Outcome(
        state.adapter,
        state.action,
        True,
        f"removed {lock.path} left by {cleared.owner}: {state.detail} was already promoted",
        promoted_as=state.detail,
    )


def repair(bundle: AdapterBundle, client: HubClient) -> str:
    """Make main hold exactly what the latest tag promoted, in one commit."""
    repo = RepoRef(bundle.adapter.publish.repo_id)
    tag = version_tag(bundle.adapter.version)
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
    if record.get("version") != tag_version(tag):
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
