"""The `runner` command: its command tree, assembled in one place from the verb modules, and
the entry point. Each verb is a thin shell over a stage module; user mistakes end as a message
and exit code 2, never a traceback."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from runner import __version__
from runner.cli import channels, github, hub, promote, specs, train
from runner.cli.shared import err, out, unwrap_help
from runner.errors import RunnerError
from runner.report.console import print_error

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


def _root(
    version: Annotated[bool, typer.Option("--version", help="Print the version.")] = False,
) -> None:
    if version:
        out.print(f"runner {__version__}")
        raise typer.Exit()


def assemble() -> typer.Typer:
    """Every verb and group of verbs. `runner --help` lists them in the order added here: the
    verbs first, then the groups."""
    root = typer.Typer(
        name="runner",
        help="GitOps for LoRA/QLoRA adapters: validate, train, evaluate and promote.",
        epilog=ENVIRONMENT_HELP,
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    root.callback(invoke_without_command=True)(_root)
    for verb in (specs.validate, specs.plan, specs.show, specs.diff, specs.new, specs.schema):
        root.command()(verb)
    for verb in (promote.doctor, promote.status, promote.reconcile, promote.demo):
        root.command()(verb)
    root.command()(channels.rollback)
    root.command()(train.train)
    root.command()(train.smoke)
    root.command("eval")(train.evaluate)

    dataset = _group(root, "dataset", "Dataset files of an adapter.")
    dataset.command("lock")(specs.dataset_lock)
    dataset.command("push")(train.dataset_push)
    emulator = _group(root, "hub", "The local Hub emulator and its base models.")
    emulator.command("serve")(hub.hub_serve)
    emulator.command("seed")(hub.hub_seed)
    ci = _group(root, "ci", "Steps of the GitHub workflows.")
    ci.command("changed")(github.ci_changed)
    ci.command("comment-promotion")(github.ci_comment_promotion)
    ci.command("announce-channels")(github.ci_announce_channels)
    ci.command("comment")(github.ci_comment)
    ci.command("post-comments")(github.ci_post_comments)
    ci.command("pr-info")(github.ci_pr_info)
    space = _group(root, "space", "The training Space of an adapter.")
    space.command("sync")(train.space_sync)

    unwrap_help(root)
    return root


def _group(root: typer.Typer, name: str, description: str) -> typer.Typer:
    group = typer.Typer(help=description, no_args_is_help=True)
    root.add_typer(group, name=name)
    return group


app = assemble()


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
    except RunnerError as error:
        print_error(err, error)
        return error.exit_code
    return 0
