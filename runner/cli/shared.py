"""What every group of CLI verbs shares: the consoles, common arguments, help formatting."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from runner.workspace import Workspace

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
