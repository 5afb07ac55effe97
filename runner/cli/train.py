"""CLI verbs that reach the Hub to train: `dataset push`, `space sync`, `train`, `smoke`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from runner.backends import BACKENDS, backend_for, training_repos
from runner.cli.shared import AdapterArg, RepoOption, err, out, workspace_for
from runner.errors import InputError, RunnerError
from runner.github.context import GitHubContext
from runner.hub.client import HubClient
from runner.policy.access import require_base_access, require_writable
from runner.policy.loading import load_policies
from runner.report.console import print_candidate, print_decision
from runner.report.progress import TrainProgress
from runner.specs import require_adapter

TimeoutOption = Annotated[
    float | None,
    typer.Option(
        "--timeout-minutes",
        help="Past this long a run (local or Space) goes on only while it progresses, up to "
        "the cost ceiling (default: training.timeout_minutes, or the plan's estimate if longer).",
        min=0.01,
    ),
]


# One choice per backend module: a new backend needs no edit here.
BackendChoice = StrEnum("BackendChoice", {name: name for name in BACKENDS})
# Where `--remote` trains a spec whose backend trains on this machine: the seeds' Space.
REMOTE_FALLBACK = "space"


def dataset_push(adapter: AdapterArg, repo: RepoOption = None) -> None:
    """Upload the adapter's dataset version to its Hub dataset repo and tag it (once).

    Example: runner dataset push adapters/kwanzaa-mini-v2
    """
    from runner.data.publish import push_dataset

    workspace = workspace_for(repo)
    bundle = require_adapter(workspace, adapter)
    client = HubClient().require_token("dataset push")
    require_writable(load_policies(workspace).repos, client, bundle, training_repos(bundle))
    with err.status(f"pushing {bundle.dataset.name} {bundle.dataset.version}"):
        pushed = push_dataset(bundle.dataset, workspace.root, client)
    state = "pushed and tagged" if pushed.created else "already on the Hub"
    out.print(f"{pushed.repo_id}@{pushed.version} {state}: commit {pushed.commit}", soft_wrap=True)


def space_sync(adapter: AdapterArg, timeout: TimeoutOption = None, repo: RepoOption = None) -> None:
    """Render the training Space, sync it (stray files deleted), set its secret and run
    config, request the hardware, and watch the run to its end; the Space ends paused.

    Example: runner space sync adapters/kwanzaa-mini-v2 --timeout-minutes 90
    """
    from runner.backends.launch import run_config, watch_limits, what_was_kept
    from runner.backends.space import run_in_space
    from runner.engines import engine_for
    from runner.runs.location import candidate_location
    from runner.runs.record import read_run
    from runner.runs.run_id import run_id
    from runner.space.sync import describe_failure

    workspace = workspace_for(repo)
    bundle = require_adapter(workspace, adapter)
    client = HubClient().require_token("space sync")
    policies = load_policies(workspace)
    # before the dataset push, the first write
    require_writable(policies.repos, client, bundle, training_repos(bundle))
    require_base_access(client, bundle)
    rid = run_id(bundle, workspace.root)
    config = run_config(bundle, workspace.root, client, rid)
    limits = watch_limits(bundle, workspace.root, policies, timeout * 60 if timeout else None)
    with TrainProgress(err, bundle.dirname) as progress:
        result = run_in_space(bundle, policies, client, config, limits, progress.update)
    if not result.finished:
        required = engine_for(bundle).required_files
        kept = what_was_kept(read_run(client, candidate_location(bundle, rid), required=required))
        raise RunnerError(f"{describe_failure(result)}\n{kept}")
    out.print(f"Space {result.space_id}: {result.message}", soft_wrap=True)


def train(
    adapter: AdapterArg,
    backend: Annotated[
        BackendChoice | None,
        typer.Option(help="Where to train (default: adapter.yaml's training.backend)."),
    ] = None,
    remote: Annotated[
        bool,
        typer.Option(
            "--remote",
            help="Never train on this machine: adapter.yaml's backend, or `space` when it is "
            "`local` (what CI asks for).",
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Train even if this run id has a candidate.")
    ] = False,
    timeout: TimeoutOption = None,
    repo: RepoOption = None,
) -> None:
    """Train the candidate for the adapter's run id, unless the Hub already has it.

    Example: runner train adapters/kwanzaa-mini-v2 --backend local --timeout-minutes 60
    """
    from runner.backends.launch import train_candidate

    if backend and remote:
        raise InputError("--backend names the backend and --remote picks one: give only one")
    workspace = workspace_for(repo)
    bundle = require_adapter(workspace, adapter)
    chosen = backend.value if backend else bundle.adapter.training.backend
    if remote and backend_for(chosen).on_this_machine:
        chosen = REMOTE_FALLBACK
    with TrainProgress(err, f"{bundle.dirname} ({chosen})") as progress:
        outcome = train_candidate(
            bundle,
            workspace.root,
            HubClient().require_token("train"),
            load_policies(workspace),
            backend=chosen,
            force=force,
            timeout_s=timeout * 60 if timeout else None,
            on_event=progress.update,
            pr=GitHubContext.from_env().pr_number(),
        )
    print_candidate(out, outcome.run_id, outcome.trained, str(outcome.location))


def smoke(
    adapter: AdapterArg,
    steps: Annotated[int, typer.Option(help="Training steps.", min=1)] = 8,
    stand_in_tokenizer: Annotated[
        bool,
        typer.Option(
            "--stand-in-tokenizer",
            help="When the Hub lacks the base model, use SmolLM2-135M-Instruct's tokenizer "
            "instead; the base's own chat template is then not checked, and the output says so.",
        ),
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Train a tiny random model with the base model's tokenizer and chat template for a few
    steps on this CPU: proves data, template and config work together (exit 1 if not).

    Example: runner smoke adapters/kwanzaa-mini-v2 --steps 8
    """
    from runner.report.smoke import print_smoke
    from runner.smoke.run import run_smoke

    workspace = workspace_for(repo)
    bundle = require_adapter(workspace, adapter)
    with TrainProgress(err, f"smoke {bundle.dirname}") as progress:
        report = run_smoke(
            bundle,
            workspace.root,
            HubClient(),
            steps=steps,
            on_step=lambda step, loss: progress.update(
                {"stage": "train", "step": step, "total": steps, "loss": loss}
            ),
            stand_in_tokenizer=stand_in_tokenizer,
        )
    print_smoke(report, out)
    raise typer.Exit(0 if report.ok else 1)


def evaluate(
    adapter: AdapterArg,
    run: Annotated[
        str | None, typer.Option("--run", help="Run id (default: the specs' current run id).")
    ] = None,
    generate_locally: Annotated[
        bool,
        typer.Option("--generate-locally", help="Generate the eval outputs on this machine."),
    ] = False,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where eval_report.json/.md go (default: .runs/<run id>)."),
    ] = None,
    upload: Annotated[
        bool,
        typer.Option("--upload", help="Also put the report next to the candidate on the Hub."),
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Fetch the candidate, verify its adapter, score its outputs and apply the gate; writes
    eval_report.json and eval_report.md. Exit 0 when it passes the gate, 1 when not.

    Example: runner eval adapters/kwanzaa-mini-v2 --out .runs/eval
    """
    from runner.evaluate.pipeline import evaluate_and_publish
    from runner.report.eval_comment import eval_comment
    from runner.report.github import write_step_summary
    from runner.runs.run_id import run_id

    workspace = workspace_for(repo)
    bundle = require_adapter(workspace, adapter)
    client = HubClient().require_token("eval")
    if upload:  # it writes to the candidates repo: only one the allowlist gives this spec
        require_writable(load_policies(workspace).repos, client, bundle, training_repos(bundle))
    rid = run or run_id(bundle, workspace.root)
    folder = out_dir or workspace.root / ".runs" / rid
    with err.status(f"evaluating {bundle.dirname} run {rid}"):
        report, markdown = evaluate_and_publish(
            bundle,
            workspace.root,
            client,
            eval_comment,
            run_id=rid,
            out_dir=folder,
            generate_locally=generate_locally,
            publish=upload,
        )
    write_step_summary(markdown)
    print_decision(out, report)
    out.print(f"report: {folder / 'eval_report.md'}", soft_wrap=True)
    raise typer.Exit(0 if report.passed else 1)
