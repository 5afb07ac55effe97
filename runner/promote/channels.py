"""Release channels on the Hub: each channel git declares (`channels/<name>.yaml`, else
`stable: latest`) is a branch of the adapter's publish repo holding exactly the promoted files
of its version, so a backend loads `revision="stable"` and never changes its config.

Observe (where each branch points and whether it still holds its version's files), plan (the
version git names, or a refusal saying why it cannot be), converge (create the branch at the
version's tag, or move it with one commit whose tree is the tag's; a concurrent move fails on
its parent instead of being overwritten), then list the channels on the model card on `main`.
Every step looks at the Hub first, so a run killed anywhere ends, on the next run, with each
channel at its declared version and nothing else changed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from huggingface_hub import ModelCard

from runner.errors import RunnerError
from runner.evaluate.pipeline import read_report
from runner.hub.client import HubClient, NotFoundError, Refs, RepoRef, StaleParentError
from runner.promote.card import with_channels_section
from runner.promote.promote import read_record
from runner.promote.reconcile import Action, AdapterState, observe, publish_refs
from runner.runs.location import candidate_location
from runner.runs.versions import tag_version, version_tag
from runner.specs.bundle import AdapterBundle
from runner.specs.channels import LATEST, ChannelsFile
from runner.workspace import split_adapter_dirname

# What an adapter's versions will be once reconcile --apply has acted: promoted, if they pass.
_PROMOTING = {Action.TRAIN, Action.EVALUATE, Action.PROMOTE}


class ChannelState(StrEnum):
    IN_SYNC = "in sync"
    CREATE = "to create"  # no branch yet
    MOVE = "to move"  # the branch holds another version
    DRIFTED = "drifted"  # the branch no longer holds its version's files
    PENDING = "pending"  # its version is not promoted yet; this reconcile may promote it
    REFUSED = "refused"  # its version cannot be served: not promoted, or withdrawn
    EMPTY = "no version yet"  # `latest`, with nothing promoted


# What --apply changes on the Hub.
MOVING = frozenset({ChannelState.CREATE, ChannelState.MOVE, ChannelState.DRIFTED})


@dataclass(frozen=True)
class ChannelPlan:
    adapter: str  # the adapter's name (`kwanzaa-mini`)
    channel: str
    repo_id: str
    declared: str  # as git writes it: `2` or `latest`
    current: int | None  # the version the branch holds now; None: no branch, or unknown files
    target: int | None  # the version it should hold
    state: ChannelState
    detail: str = ""
    branch_commit: str | None = None
    target_commit: str | None = None  # the target version's tag, as observed

    @property
    def moves(self) -> bool:
        return self.state in MOVING

    @property
    def was(self) -> str:
        """What the branch holds now, in words."""
        return f"v{self.current}" if self.current is not None else "files of no promoted version"

    @property
    def failed(self) -> bool:
        return self.state is ChannelState.REFUSED


@dataclass(frozen=True)
class ChannelMove:
    """What converging one channel did."""

    plan: ChannelPlan
    ok: bool
    moved: bool
    result: str
    commit: str | None = None  # the branch's commit afterwards
    eval: dict[str, Any] | None = None  # the eval summary of the version it moved to


@dataclass(frozen=True)
class Versions:
    """One adapter name's versions: in git (with their bundles), and on its publish repo."""

    adapter: str
    repo_id: str
    in_git: Mapping[int, AdapterBundle]
    states: Mapping[int, AdapterState]
    refs: Refs | None

    @property
    def promoted(self) -> dict[int, str]:
        """Version -> its tag's commit."""
        tags = self.refs.tags if self.refs is not None else {}
        return {n: commit for tag, commit in tags.items() if (n := tag_version(tag)) is not None}


def adapter_versions(states: Iterable[AdapterState]) -> dict[str, dict[int, AdapterState]]:
    """Adapter name -> version -> its observed state, for the versions in git."""
    found: dict[str, dict[int, AdapterState]] = {}
    for state in states:
        if state.bundle is not None:
            adapter = state.bundle.adapter
            found.setdefault(adapter.name, {})[adapter.version] = state
    return found


def publish_repo(versions: Mapping[int, AdapterState]) -> str:
    """The repo an adapter's channels live on: its newest version's publish repo."""
    newest = versions[max(versions)].bundle
    assert newest is not None
    return newest.adapter.publish.repo_id


def observe_channels(
    states: list[AdapterState],
    files: Mapping[str, ChannelsFile],
    client: HubClient,
    *,
    only: Iterable[str] | None = None,
    settled: bool = False,
    refs: Mapping[str, Refs | None] | None = None,
) -> list[ChannelPlan]:
    """Every declared channel of every adapter in git (or of the adapter names in `only`),
    as it is on the Hub now and what git wants of it. Before --apply acts, a version that
    `states` say reconcile would promote is on its way (`pending`); once it has acted
    (`settled`), a version not promoted is not coming. `refs`: the publish repos' refs as
    `observe` read them (else read here: after --apply acted, they have changed)."""
    plans = []
    chosen = None if only is None else set(only)
    for name, versions in sorted(adapter_versions(states).items()):
        channels = files.get(name)
        if channels is None or (chosen is not None and name not in chosen):
            continue
        repo = publish_repo(versions)
        observed = Versions(
            name,
            repo,
            {n: s.bundle for n, s in versions.items() if s.bundle is not None},
            {} if settled else versions,
            refs[repo] if refs is not None and repo in refs else _refs(client, RepoRef(repo)),
        )
        plans += [
            _plan_one(observed, channels, channel, client) for channel in channels.spec.channels
        ]
    return plans


def _refs(client: HubClient, repo: RepoRef) -> Refs | None:
    try:
        return client.refs(repo)
    except NotFoundError:
        return None


def _plan_one(
    versions: Versions, channels: ChannelsFile, channel: str, client: HubClient
) -> ChannelPlan:
    declared = channels.declared(channel)
    target, state, detail = _target(versions, channels, channel)
    branch = versions.refs.branches.get(channel) if versions.refs is not None else None
    current, drifted = _current(client, versions, branch)
    plan = ChannelPlan(
        versions.adapter,
        channel,
        versions.repo_id,
        declared,
        current,
        target,
        state or ChannelState.IN_SYNC,
        detail,
        branch,
        versions.promoted.get(target) if target is not None else None,
    )
    if state is not None or target is None:
        return plan
    if branch is None:
        return replace(plan, state=ChannelState.CREATE, detail=f"create it at v{target}")
    if current != target:
        return replace(
            plan, state=ChannelState.MOVE, detail=f"move it from {plan.was} to v{target}"
        )
    if drifted:
        return replace(
            plan,
            state=ChannelState.DRIFTED,
            detail=f"it no longer holds v{target}'s files (a change by hand)",
        )
    return replace(plan, detail=f"at v{target}")


def _target(
    versions: Versions, channels: ChannelsFile, channel: str
) -> tuple[int | None, ChannelState | None, str]:
    """The version the channel should hold; a state when it cannot (or cannot yet)."""
    promoted = versions.promoted
    served = sorted(n for n in promoted if n in versions.in_git)
    declared = channels.spec.channels[channel]
    where = f"{channels.path} (`{channel}: {declared}`)"
    if declared == LATEST:
        coming = [n for n, s in versions.states.items() if s.action in _PROMOTING]
        if coming and (not served or max(coming) > served[-1]):
            now = f"; it holds v{served[-1]} until then" if served else ""
            return (
                max(coming),
                ChannelState.PENDING,
                f"follows v{max(coming)} once it is promoted{now}",
            )
        if not served:
            return None, ChannelState.EMPTY, "no version is promoted yet"
        return served[-1], None, ""
    assert isinstance(declared, int)
    if declared in promoted and declared not in versions.in_git:
        return None, ChannelState.REFUSED, _withdrawn_refusal(versions, where, declared)
    if declared not in versions.in_git:
        return (
            None,
            ChannelState.REFUSED,
            (
                f"{where} names v{declared}, which is neither in git nor promoted; point it at "
                "a promoted version"
            ),
        )
    bundle = versions.in_git[declared]
    if bundle.adapter.publish.repo_id != versions.repo_id:
        return (
            None,
            ChannelState.REFUSED,
            (
                f"{where}: v{declared} is published to {bundle.adapter.publish.repo_id}, not "
                f"{versions.repo_id}, where this adapter's channels live; a channel only names "
                "versions of its own publish repo"
            ),
        )
    if declared in promoted:
        return declared, None, ""
    state = versions.states.get(declared)
    if state is not None and state.action in _PROMOTING:
        return declared, ChannelState.PENDING, f"moves to v{declared} once it is promoted"
    why = f" ({state.state.value})" if state is not None else ""
    return (
        None,
        ChannelState.REFUSED,
        (
            f"{where} names v{declared}, which is not promoted{why}; a channel only names a "
            f"promoted version: point `{channel}` at one (`runner rollback {versions.adapter} "
            f"--channel {channel} --to N`)"
        ),
    )


def _withdrawn_refusal(versions: Versions, where: str, version: int) -> str:
    return (
        f"{where} names v{version}, which is withdrawn (adapters/{versions.adapter}-v{version}/ "
        "was removed from git); a channel only names a promoted version still in git: point it "
        "at another version"
    )


def _current(client: HubClient, versions: Versions, branch: str | None) -> tuple[int | None, bool]:
    """The version the channel's branch holds, and whether its files drifted from that
    version's. No request when the branch is at a version's tag (as a created channel is)."""
    if branch is None or versions.refs is None:
        return None, False
    promoted = versions.promoted
    at_tag = [n for n, commit in promoted.items() if commit == branch]
    if at_tag:
        return max(at_tag), False
    repo = RepoRef(versions.repo_id)
    record = read_record(client, repo, branch) or {}
    version = record.get("version")
    if not isinstance(version, int) or version not in promoted:
        return None, True
    same = client.file_oids(repo, branch) == client.file_oids(repo, promoted[version])
    return version, not same


# -- converge --------------------------------------------------------------------------------


def move_channel(
    plan: ChannelPlan, client: HubClient, *, why: str, repair_drift: bool
) -> ChannelMove:
    """Make the channel's branch hold its target version: created at the version's tag, or
    moved by one commit (parent: the branch as observed) whose tree is the tag's."""
    if plan.state is ChannelState.DRIFTED and not repair_drift:
        return ChannelMove(
            plan, True, False, "left alone: --repair-drift restores its version's files"
        )
    if not plan.moves:
        return ChannelMove(plan, not plan.failed, False, plan.detail)
    assert plan.target is not None
    assert plan.target_commit is not None  # a channel only moves to a promoted version
    repo = RepoRef(plan.repo_id)
    tag = version_tag(plan.target)
    try:
        if plan.branch_commit is None:
            commit = client.create_branch(repo, plan.channel, plan.target_commit)
        else:
            folder = client.snapshot(repo, revision=plan.target_commit)
            message = f"Channel {plan.channel}: {plan.was} -> {tag} ({why})"
            commit = client.sync_folder(
                repo, folder, message, parent_commit=plan.branch_commit, revision=plan.channel
            )
    except StaleParentError:
        raise RunnerError(
            f"{plan.repo_id}: branch {plan.channel} changed while it was being moved (another "
            "reconcile?); nothing was overwritten: run reconcile again"
        ) from None
    if plan.branch_commit is None:
        done = f"created: {plan.channel} at {tag}"
    elif plan.state is ChannelState.DRIFTED:
        done = f"restored: {plan.channel} to {tag}'s files"
    else:
        done = f"moved: {plan.channel} {plan.was} → {tag}"
    return ChannelMove(plan, True, True, done, commit)


def list_on_card(
    client: HubClient, repo_id: str, rows: Mapping[str, int | None], *, why: str
) -> bool:
    """The channels section of the model card on `main` says where each channel points
    (channel -> version); one commit when it changed, none otherwise. True when committed."""
    repo = RepoRef(repo_id)
    try:
        head = client.head(repo)
    except NotFoundError:
        return False
    record = read_record(client, repo, head)
    if record is None:
        return False  # nothing promoted: no card of ours to list them on
    version = record.get("version")
    try:
        card = client.download(repo, "README.md", revision=head).read_text(encoding="utf-8")
    except NotFoundError:
        return False
    updated = with_channels_section(card, rows, version if isinstance(version, int) else None)
    if updated == card:
        return False
    client.commit(
        repo,
        {"README.md": updated.encode("utf-8")},
        f"List release channels on the card ({why})",
        parent_commit=head,
    )
    return True


def eval_summary(bundle: AdapterBundle, rid: str, client: HubClient) -> dict[str, Any] | None:
    """The promoted version's eval in a few figures (its report beside its candidate)."""
    report = read_report(client, candidate_location(bundle, rid))
    if report is None:
        return None
    metrics = {r.metric: r.candidate for r in report.overall if r.candidate is not None}
    return {
        "run_id": report.run_id,
        "passed": report.passed,
        "primary_metric": report.primary_metric,
        "primary_value": metrics.get(report.primary_metric),
        "metrics": metrics,
        "items": report.items,
    }


def withdrawal_refusal(state: AdapterState, files: Mapping[str, ChannelsFile]) -> str | None:
    """Why withdrawing this version is refused: a channel git declares names it."""
    parsed = split_adapter_dirname(state.adapter)
    channels = files.get(parsed[0]) if parsed is not None else None
    if parsed is None or channels is None:
        return None
    name, version = parsed
    naming = [c for c, target in channels.spec.channels.items() if target == version]
    if not naming:
        return None
    listed = ", ".join(f"`{c}`" for c in naming)
    return (
        f"not withdrawn: {channels.path} still points {listed} at v{version}; move the channel "
        f"first (`runner rollback {name} --channel {naming[0]} --to N`), then withdraw"
    )


@dataclass(frozen=True)
class ChannelContext:
    client: HubClient
    why: str  # what moved them: the git commit reconcile ran at
    repair_drift: bool


def converge_channels(
    states: list[AdapterState],
    files: Mapping[str, ChannelsFile],
    ctx: ChannelContext,
    *,
    only: Iterable[str] | None = None,
) -> tuple[list[ChannelPlan], list[ChannelMove]]:
    """After the adapters were promoted: observe the channels again (the Hub has changed),
    move those git moved, then list them on each card. One channel's failure is reported
    and the others still converge."""
    plans = observe_channels(states, files, ctx.client, only=only, settled=True)
    bundles = {(s.bundle.adapter.name, s.bundle.adapter.version): s for s in states if s.bundle}
    moves = []
    for plan in plans:
        try:
            move = move_channel(plan, ctx.client, why=ctx.why, repair_drift=ctx.repair_drift)
        except RunnerError as error:
            move = ChannelMove(plan, False, False, str(error))
        if move.moved and plan.target is not None:
            state = bundles[(plan.adapter, plan.target)]
            assert state.bundle is not None
            assert state.run_id is not None
            move = replace(move, eval=eval_summary(state.bundle, state.run_id, ctx.client))
        moves.append(move)
    for repo_id, rows in _card_rows(plans, moves).items():
        try:
            list_on_card(ctx.client, repo_id, rows, why=ctx.why)
        except RunnerError as error:  # the channels moved; the card says so on the next run
            moves = [_card_failed(m, error) if m.plan.repo_id == repo_id else m for m in moves]
    return plans, moves


def _card_failed(move: ChannelMove, error: RunnerError) -> ChannelMove:
    note = f"{move.result}; the card on main does not list the channels yet ({error}): run again"
    return replace(move, ok=False, result=note)


def _card_rows(
    plans: list[ChannelPlan], moves: list[ChannelMove]
) -> dict[str, dict[str, int | None]]:
    """Publish repo -> channel -> the version it holds after this run."""
    rows: dict[str, dict[str, int | None]] = {}
    for plan, move in zip(plans, moves, strict=True):
        holds = plan.target if move.moved or plan.state is ChannelState.IN_SYNC else plan.current
        rows.setdefault(plan.repo_id, {})[plan.channel] = holds
    return rows


# -- the plan of a PR ------------------------------------------------------------------------


@dataclass(frozen=True)
class ChannelForecast:
    """What merging moves, for the plan comment: each channel of the adapter (`plans`), and
    the promoted eval results (metric -> value, from each version's model card) of the
    versions a moving channel leaves and reaches. `problem`: why the Hub could not say."""

    adapter: str
    primary_metric: str
    plans: list[ChannelPlan]
    evals: dict[int, dict[str, float]]
    problem: str | None = None


def forecast_channels(
    bundles: list[AdapterBundle], repo_root: Path, channels: ChannelsFile, client: HubClient
) -> ChannelForecast:
    """The channels of `channels.adapter` once git's change is merged; `bundles`: its
    versions in git."""
    newest = max(bundles, key=lambda b: b.adapter.version)
    primary = newest.evaluation.primary_metric
    repo = RepoRef(newest.adapter.publish.repo_id)
    try:
        refs = publish_refs(bundles, repo_root, client)
        if refs.get(repo.repo_id) is None and not client.has_token:
            raise RunnerError(
                f"{repo.repo_id} is not visible without a token (private, or not created yet), "
                "and this job has no HF_TOKEN; the merge's reconcile moves the channels as "
                f"{channels.path} says"
            )
        states = observe(bundles, repo_root, client, refs)
        plans = observe_channels(states, {channels.adapter: channels}, client, refs=refs)
        evals = {v: promoted_eval(client, repo, v) for v in _compared(plans)}
    except RunnerError as error:
        return ChannelForecast(channels.adapter, primary, [], {}, str(error))
    return ChannelForecast(channels.adapter, primary, plans, {v: e for v, e in evals.items() if e})


def _compared(plans: list[ChannelPlan]) -> set[int]:
    """The versions a moving channel leaves and reaches."""
    moving = [p for p in plans if p.moves or p.state is ChannelState.PENDING]
    return {v for p in moving for v in (p.current, p.target) if v is not None}


def promoted_eval(client: HubClient, repo: RepoRef, version: int) -> dict[str, float]:
    """Metric -> value of the eval results on version's promoted model card (its
    model-index), read at its tag; empty when the card has none."""
    try:
        card = client.download(repo, "README.md", revision=version_tag(version))
    except NotFoundError:
        return {}
    data = ModelCard(card.read_text(encoding="utf-8")).data
    return {r.metric_type: float(r.metric_value) for r in data.eval_results or []}
