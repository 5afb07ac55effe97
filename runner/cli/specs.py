"""CLI verbs on the specs in git, no Hub needed: `validate`, `plan`, `show`, `diff`, `new`,
`schema` and `dataset lock` (`plan` asks a Hub it is given for a Jobs flavor's price)."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated

import typer

from runner.changes import affected_adapters
from runner.cli.shared import AdapterArg, RepoOption, err, out, workspace_for
from runner.gitutil import changed_paths
from runner.hub.client import HubClient
from runner.plan import make_plan
from runner.policy.loading import load_policies
from runner.report.console import print_diff, print_plain
from runner.report.plan import plan_markdown, print_plan
from runner.report.validation import OutputFormat, print_validation
from runner.specs import require_adapter
from runner.specs.diff import diff_bundles
from runner.specs.scaffold import scaffold_version
from runner.specs.schema import stale_schemas, write_schemas
from runner.specs.yamlio import dump_yaml
from runner.validation import exit_code, orphan_channels, validate_adapter


class PlanFormat(StrEnum):
    """What `runner plan` prints: a plan has no findings to annotate, so no `github`."""

    text = "text"
    markdown = "markdown"
    json = "json"


def validate(
    adapters: Annotated[
        list[str] | None,
        typer.Argument(
            help="Adapter directories (default: all, or with --changed-since those it touches)."
        ),
    ] = None,
    changed_since: Annotated[
        str | None,
        typer.Option(
            "--changed-since",
            help="Enforce that versions existing at REF are not edited; with no ADAPTERS, "
            "validate only the adapters a change since REF touches.",
            metavar="REF",
        ),
    ] = None,
    output: Annotated[OutputFormat, typer.Option("--format", help="Output format.")] = (
        OutputFormat.text
    ),
    repo: RepoOption = None,
) -> None:
    """Check specs, channels, policies and data; exit 0 clean, 1 on error findings, 2 on
    unusable input (a channels file of no adapter in git included).

    Example: runner validate adapters/kwanzaa-mini-v2 --changed-since origin/main
    """
    workspace = workspace_for(repo)
    # Computed even with explicit adapters: a REF git cannot find is an error, not a pass.
    changed = changed_paths(workspace.root, changed_since) if changed_since else None
    if adapters:  # only these: a per-adapter PR comment shows no other adapter's findings
        directories = [workspace.adapter_dir(ref) for ref in adapters]
    elif changed is not None:
        directories = affected_adapters(workspace, changed)
    else:
        directories = workspace.list_adapter_dirs()
    policies = load_policies(workspace)
    results = [] if adapters else orphan_channels(workspace, changed)
    for directory in directories:
        with err.status(f"validating {workspace.rel(directory)}"):
            results.append(validate_adapter(workspace, directory, policies, changed_since))
    print_validation(out, results, policies, output)
    raise typer.Exit(exit_code(results, policies))


def plan(
    adapter: AdapterArg,
    output: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = (
        PlanFormat.text
    ),
    repo: RepoOption = None,
) -> None:
    """What merging would do: changes against the previous version, estimated GPU hours and cost.

    A Jobs adapter is priced from the Hub's hardware list when HF_TOKEN or HF_ENDPOINT is set,
    else from policies/training.yaml; the plan says which.

    Example: runner plan adapters/kwanzaa-mini-v2 --format markdown
    """
    workspace = workspace_for(repo)
    with err.status(f"planning {adapter}"):
        result = make_plan(
            workspace,
            workspace.adapter_dir(adapter),
            load_policies(workspace),
            HubClient(),
            with_channels=True,
        )
    if output is PlanFormat.json:
        out.print_json(json.dumps(result.to_dict()))
    elif output is PlanFormat.markdown:
        print_plain(out, plan_markdown(result))
    else:
        print_plan(out, result)


def show(adapter: AdapterArg, repo: RepoOption = None) -> None:
    """Print the resolved spec (defaults filled in) as YAML.

    Example: runner show adapters/kwanzaa-mini-v2
    """
    bundle = require_adapter(workspace_for(repo), adapter)
    print_plain(out, dump_yaml(bundle.resolved()), end="")


def diff(
    old: Annotated[str, typer.Argument(help="Earlier version, e.g. ainative-v1.")],
    new: Annotated[str, typer.Argument(help="Later version, e.g. ainative-v2.")],
    repo: RepoOption = None,
) -> None:
    """What changed between two versions: spec fields and dataset counts per category.

    Example: runner diff kwanzaa-mini-v1 kwanzaa-mini-v2
    """
    workspace = workspace_for(repo)
    result = diff_bundles(require_adapter(workspace, old), require_adapter(workspace, new))
    print_diff(out, result)


def new(
    target: Annotated[str, typer.Argument(help="New directory name, e.g. ainative-v2.")],
    source: Annotated[str, typer.Option("--from", help="Version to start from, e.g. ainative-v1.")],
    dataset_version: Annotated[
        str | None,
        typer.Option("--dataset", help="Point the manifest at datasets/<name>/<VERSION>/."),
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Scaffold the next version from the previous one (comments and key order kept).

    Example: runner new kwanzaa-mini-v3 --from kwanzaa-mini-v2 --dataset v3
    """
    workspace = workspace_for(repo)
    directory = scaffold_version(
        workspace, target, require_adapter(workspace, source), dataset_version
    )
    out.print(f"created {workspace.rel(directory)} from {source}")
    if dataset_version:
        out.print(f"next: add the data, then `runner dataset lock {workspace.rel(directory)}`")


def schema(
    check: Annotated[
        bool, typer.Option("--check", help="Only report stale schemas; exit 1 if any.")
    ] = False,
    repo: RepoOption = None,
) -> None:
    """Write the JSON Schemas of the spec files to schemas/.

    Example: runner schema --check
    """
    directory = workspace_for(repo).schemas_dir
    if check:
        stale = stale_schemas(directory)
        for name in stale:
            out.print(f"schemas/{name} is stale; run `runner schema`")
        raise typer.Exit(1 if stale else 0)
    written = write_schemas(directory)
    out.print(
        f"{len(written)} schema file(s) written to schemas/"
        if written
        else "schemas/ is up to date"
    )


def dataset_lock(adapter: AdapterArg, repo: RepoOption = None) -> None:
    """Record sha256 and example counts of the dataset files in dataset.yaml.

    Example: runner dataset lock adapters/kwanzaa-mini-v2
    """
    from runner.data.lock import lock_dataset

    workspace = workspace_for(repo)
    result = lock_dataset(require_adapter(workspace, adapter), workspace.root)
    for split, found in result.fingerprints.items():
        out.print(f"{split}: {found.examples} examples, sha256 {found.sha256[:12]}…")
    state = "updated" if result.changed else "already up to date"
    out.print(f"{workspace.rel(result.manifest)} {state}")
