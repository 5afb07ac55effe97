"""CLI verbs on release channels in git: `rollback` (writes `channels/<name>.yaml`; the PR that
commits it is the rollback, and its merge moves the channel on the Hub)."""

from __future__ import annotations

from typing import Annotated

import typer

from runner.cli.shared import RepoOption, out, workspace_for
from runner.report.console import print_plain
from runner.specs.channels import DEFAULT_CHANNEL
from runner.specs.rollback import ChannelEdit, set_channel


def rollback(
    adapter: Annotated[
        str,
        typer.Argument(help="Adapter name or one of its versions, e.g. kwanzaa-mini-v2."),
    ],
    to: Annotated[
        int | None,
        typer.Option(
            "--to",
            help="Version to point the channel at (default: the newest in git below its "
            "current one).",
            metavar="N",
        ),
    ] = None,
    channel: Annotated[str, typer.Option("--channel", help="Channel to move.")] = DEFAULT_CHANNEL,
    repo: RepoOption = None,
) -> None:
    """Point a channel at an earlier version by editing channels/<name>.yaml (comments and the
    other channels kept). Touches neither the Hub nor git: commit the file on a branch and open
    a PR; its plan comment compares the two versions, and merging it moves the channel.

    Example: runner rollback kwanzaa-mini --to 1
    """
    edit = set_channel(workspace_for(repo), adapter, channel, to)
    if not edit.changed:
        print_plain(
            out, f"{edit.channel} already names {edit.after} in {edit.path}; nothing changed"
        )
        return
    print_plain(out, "\n".join([_change_line(edit), *_next_steps(edit)]))


def _change_line(edit: ChannelEdit) -> str:
    where = f"{edit.path} (new file)" if edit.created else edit.path
    if not edit.before:
        return f"{edit.channel}: {edit.after} (new channel) in {where}"
    return f"{edit.channel}: {edit.before} → {edit.after} in {where}"


def _next_steps(edit: ChannelEdit) -> list[str]:
    branch = f"{edit.adapter}-{edit.channel}-v{edit.after}"
    return [
        "next: commit it on a branch and open a pull request:",
        f"  git switch -c {branch}",
        f"  git add {edit.path}",
        f'  git commit -m "Point {edit.adapter} {edit.channel} at v{edit.after}"',
        f"  git push -u origin {branch}",
        f"the PR's plan comment compares the versions; merging it moves `{edit.channel}` on "
        "the Hub (reconcile), and nothing moves before then",
    ]
