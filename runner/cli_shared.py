"""What every group of CLI verbs shares: the typer apps, the consoles, common arguments."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from runner.workspace import Workspace

app = typer.Typer(
    name="runner",
    help="GitOps for LoRA/QLoRA adapters: validate, train, evaluate and promote.",
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

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

RepoOption = Annotated[
    Path | None,
    typer.Option("--repo", help="Repository root (default: the nearest directory with adapters/)."),
]
AdapterArg = Annotated[str, typer.Argument(help="Adapter directory, e.g. adapters/ainative-v2.")]


def workspace_for(repo: Path | None) -> Workspace:
    return Workspace.at(repo) if repo else Workspace.discover()
