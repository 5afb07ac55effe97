"""CLI verbs that converge the Hub to git: `doctor`, `status` and `reconcile`; and `demo`, the
whole lifecycle offline."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from runner.cli.shared import RepoOption, err, out, workspace_for
from runner.errors import InputError
from runner.findings import quote
from runner.github.context import GitHubContext
from runner.gitutil import head_commit
from runner.hub.client import HubClient
from runner.policy.loading import load_policies
from runner.policy.training import CostEstimate
from runner.promote.channels import (
    ChannelContext,
    adapter_versions,
    converge_channels,
    observe_channels,
)
from runner.promote.reconcile import Action, AdapterState, observe, publish_refs
from runner.promote.result import channel_results, reconcile_result
from runner.report.console import (
    print_channels,
    print_dry_run,
    print_outcomes,
    print_plain,
    print_states,
)
from runner.report.cost import print_spend
from runner.report.github import write_step_summary
from runner.report.progress import TrainProgress
from runner.report.reconcile import reconcile_summary
from runner.runs.cost import read_prices, spend_by_adapter
from runner.specs import require_adapter
from runner.specs.bundle import AdapterBundle
from runner.specs.channels import ChannelsFile, require_channels
from runner.workspace import Workspace


def _bundles(workspace: Workspace) -> list[AdapterBundle]:
    return [require_adapter(workspace, d) for d in workspace.list_adapter_dirs()]


def _channel_files(workspace: Workspace, states: list[AdapterState]) -> dict[str, ChannelsFile]:
    """The release channels of every adapter name in git (a file that does not load stops
    the verb with its findings, as a broken spec does)."""
    return {name: require_channels(workspace, name) for name in adapter_versions(states)}


def acted_on(states: list[AdapterState], adapter: str | None) -> list[AdapterState]:
    """The rows `--adapter` picks (by name, or by a path ending in it). The others were still
    observed: without them, sibling versions in git would look removed from it."""
    if adapter is None:
        return states
    name = Path(adapter.rstrip("/\\")).name
    chosen = [state for state in states if state.adapter == name]
    if not chosen:
        known = ", ".join(state.adapter for state in states) or "none"
        raise InputError(
            f"--adapter {quote(adapter)}: no such adapter in git or on the Hub; "
            f"known adapters: {known}"
        )
    others = [f"{state.adapter} ({state.state.value})" for state in states if state not in chosen]
    if others:
        out.print(f"only {name} (--adapter); left alone: {', '.join(others)}", soft_wrap=True)
    return chosen


def training_estimates(
    states: list[AdapterState], workspace: Workspace, client: HubClient
) -> list[CostEstimate | None]:
    """`runner plan`'s estimate of each adapter --apply would train; no work when none."""
    from runner.plan import make_plan

    training = [s.bundle for s in states if s.action is Action.TRAIN and s.bundle is not None]
    if not training:
        return []
    policies = load_policies(workspace)
    return [
        make_plan(workspace, bundle.directory, policies, client).estimate for bundle in training
    ]


def _chosen_bundles(workspace: Workspace, adapters: list[str] | None) -> list[AdapterBundle]:
    """Every adapter in git, or those `--adapter` names (by name, or a path ending in it)."""
    bundles = _bundles(workspace)
    if not adapters:
        return bundles
    names = {Path(adapter.rstrip("/\\")).name for adapter in adapters}
    unknown = sorted(names - {bundle.dirname for bundle in bundles})
    if unknown:
        known = ", ".join(bundle.dirname for bundle in bundles) or "none"
        raise InputError(f"--adapter {', '.join(unknown)}: no such adapter; known: {known}")
    return [bundle for bundle in bundles if bundle.dirname in names]


def doctor(
    adapter: Annotated[
        list[str] | None,
        typer.Option(help="Check only what this adapter needs (repeatable; default: all)."),
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Check, read-only, that the Hub account can do what the specs ask, before anything is
    spent: the token and its role, write access to every namespace the specs name, each base
    model at its pinned revision, each training Space. Exit 1 if any check fails.

    Run it first against your own account (HF_ENDPOINT unset, HF_TOKEN set); the promote
    workflow runs it before reconcile.

    Example: runner doctor --repo . --adapter kwanzaa-mini-v2
    """
    from runner.doctor import run_doctor
    from runner.report.doctor import doctor_markdown, print_checks

    workspace = workspace_for(repo)
    bundles = _chosen_bundles(workspace, adapter)
    with err.status("checking the Hub account"):
        checks = run_doctor(bundles, load_policies(workspace), HubClient())
    print_checks(out, checks)
    write_step_summary(doctor_markdown(checks))
    raise typer.Exit(0 if all(check.passed for check in checks) else 1)


def status(
    spend: Annotated[
        bool,
        typer.Option(
            "--spend",
            help="Also sum what each adapter's Hugging Face Jobs runs cost, from their run.json.",
        ),
    ] = False,
    repo: RepoOption = None,
) -> None:
    """The state of every adapter on the Hub and what reconcile would do about it: fast, no
    training, no weight downloads.

    States: promoted, superseded (a newer version is promoted), candidate passed or failed, not
    evaluated, needs training, training failed, drifted, withdrawn.

    Example: runner status --spend
    """
    workspace = workspace_for(repo)
    bundles = _bundles(workspace)
    with err.status("reading the Hub"):
        client = HubClient().require_token("status")
        refs = publish_refs(bundles, workspace.root, client)
        states = observe(bundles, workspace.root, client, refs)
        files = _channel_files(workspace, states)
        channels = observe_channels(states, files, client, refs=refs)
    print_states(out, states)
    print_channels(out, channels)
    if spend:
        with err.status("reading run records"):
            prices, policy = read_prices(client), load_policies(workspace).training
            spends = spend_by_adapter(client, bundles, prices, policy)
        print_spend(out, spends)


def reconcile(
    apply: Annotated[
        bool, typer.Option("--apply", help="Converge: train, evaluate, promote.")
    ] = False,
    adapter: Annotated[
        str | None,
        typer.Option(help="Act on this adapter only (every adapter is still observed)."),
    ] = None,
    repair_drift: Annotated[
        bool, typer.Option("--repair-drift", help="With --apply: restore drifted publish repos.")
    ] = False,
    pr: Annotated[int | None, typer.Option(help="PR number for the provenance.")] = None,
    result: Annotated[
        Path | None,
        typer.Option(help="Also write what was found and done as JSON here (for `ci`)."),
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Plan (and with --apply, carry out) what makes the Hub match the adapters in git.

    Without --apply it is a dry run that ends with what --apply would do and cost. The outcome
    also goes to the job summary ($GITHUB_STEP_SUMMARY) when that is set.

    Example: runner reconcile --apply --adapter kwanzaa-mini-v2
    """
    from runner.promote.apply import Context, converge
    from runner.report.eval_comment import eval_comment

    workspace = workspace_for(repo)
    client = HubClient().require_token("reconcile")
    commit = head_commit(workspace.root)
    with err.status("reading the Hub"):
        bundles = _bundles(workspace)
        refs = publish_refs(bundles, workspace.root, client)
        observed = observe(bundles, workspace.root, client, refs)
        states = acted_on(observed, adapter)
        files = _channel_files(workspace, observed)
        only = None if adapter is None else set(adapter_versions(states))
        plans = observe_channels(observed, files, client, only=only, refs=refs)
    print_states(out, states)
    print_channels(out, plans)
    outcomes, moves = None, None
    if apply:
        with TrainProgress(err, "reconcile") as progress:
            context = Context(
                workspace.root,
                client,
                load_policies(workspace),
                pr,
                repair_drift,
                progress.update,
                partial(print_plain, err),  # ids and times stay whole
                eval_comment,
                files,
            )
            outcomes = converge(states, context)
            progress.update({"stage": "moving release channels"})
            moving = ChannelContext(client, f"git {commit[:12]}", repair_drift)
            plans, moves = converge_channels(observed, files, moving, only=only)
        print_outcomes(out, outcomes, states, moves)
    else:
        print_dry_run(out, states, training_estimates(states, workspace, client), plans)
    done = reconcile_result(
        states,
        outcomes,
        None if commit == "unknown" else commit,
        client.endpoint,
        channel_results(plans, moves, client.endpoint),
    )
    if result is not None:
        done.write(result)
    write_step_summary(reconcile_summary(done, GitHubContext.from_env().run_url))
    raise typer.Exit(0 if done.ok else 1)


def demo(
    folder: Annotated[Path, typer.Option(help="Where every artifact goes.")] = Path(".demo"),
    repo: RepoOption = None,
) -> None:
    """The whole lifecycle offline: emulated Hub and Space, a simulated PR adding
    kwanzaa-mini-v2 to the commit you have checked out (uncommitted changes are not in it),
    its checks and candidate, the merge, the promotion. Its comments are saved under
    FOLDER/comments.

    Example: runner demo --folder .demo > demo.log"""
    from runner.cli.shared import DEFAULT_MODEL_CACHE
    from runner.demo import run_demo

    workspace = workspace_for(repo)
    run_demo(
        workspace.root,
        folder.resolve(),
        DEFAULT_MODEL_CACHE,
        partial(print_plain, out),  # markdown and links stay whole
    )
