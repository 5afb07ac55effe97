"""What every group of CLI verbs shares: the typer apps, the consoles, common arguments."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from runner.workspace import Workspace

# One paragraph a string: typer prints a help text's line breaks as they are.
ENVIRONMENT_HELP = "\n\n".join(
    [
        "Environment:",
        "HF_ENDPOINT is the address of the Hub every verb talks to. Without HF_ENDPOINT the "
        "real Hub, https://huggingface.co, is used. For the local Hub emulator, start "
        "`runner hub serve` and set HF_ENDPOINT=http://127.0.0.1:8765.",
        "HF_TOKEN is the Hub access token the runner sends (unset: the one `hf auth login` "
        "saved); it never appears in its output. "
        "validate, plan, smoke and reading public repos need none; status, reconcile, train, "
        "eval, space sync and dataset push stop at once without one (candidate repos are "
        "private), and writing needs write access to the repos adapter.yaml names.",
    ]
)

app = typer.Typer(
    name="runner",
    help="GitOps for LoRA/QLoRA adapters: validate, train, evaluate and promote.",
    epilog=ENVIRONMENT_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
dataset_app = typer.Typer(help="Dataset files of an adapter.", no_args_is_help=True)
app.add_typer(dataset_app, name="dataset")
hub_app = typer.Typer(help="The local Hub emulator and its base models.", no_args_is_help=True)
app.add_typer(hub_app, name="hub")

DEFAULT_HUB_DIR = Path(".hub")
DEFAULT_MODEL_CACHE = Path.home() / ".cache" / "adapter-gitops" / "models"

# soft_wrap: a long line stays one line (a terminal wraps it; a log keeps it whole) rather than
# being broken at rich's 80 columns mid-sentence when output is not a terminal.
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

RepoOption = Annotated[
    Path | None,
    typer.Option("--repo", help="Repository root (default: the nearest directory with adapters/)."),
]
AdapterArg = Annotated[str, typer.Argument(help="Adapter directory, e.g. adapters/ainative-v2.")]


def workspace_for(repo: Path | None) -> Workspace:
    return Workspace.at(repo) if repo else Workspace.discover()


def unwrap_help(group: typer.Typer) -> None:
    """Give every verb under `group` its docstring with each paragraph on one line. Typer
    prints a help text's line breaks as they are, and docstrings wrap at 100 columns: left
    alone, `--help` would break sentences mid-line. Called once all verbs are registered."""
    for command in group.registered_commands:
        text = command.help or inspect.getdoc(command.callback) or ""
        command.help = "\n\n".join(" ".join(paragraph.split()) for paragraph in text.split("\n\n"))
    for subgroup in group.registered_groups:
        if subgroup.typer_instance is not None:
            unwrap_help(subgroup.typer_instance)
