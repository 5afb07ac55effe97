"""CLI verbs for GitHub Actions steps: `runner ci changed`, `ci comment`, `ci post-comments`,
`ci comment-promotion`, `ci announce-channels`.
Each workflow step is one runner call; the logic lives here, tested."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from runner.changes import affected_adapters
from runner.cli.shared import AdapterArg, RepoOption, err, out, workspace_for
from runner.errors import InputError, RunnerError
from runner.github.comments import (
    BOT_LOGIN_ENV,
    DEFAULT_BOT_LOGIN,
    KINDS,
    GitHubComments,
    PullFiles,
    sticky_text,
)
from runner.github.context import GitHubContext, positive_number, write_output
from runner.github.deployments import GitHubDeployments, Move, moves
from runner.github.rest import DEFAULT_API_URL
from runner.github.untrusted import neutralized, own_code_areas, trusted_hosts
from runner.github.webhook import Webhook
from runner.gitutil import changed_paths
from runner.promote.result import ReconcileResult
from runner.repofiles import declared_file, read_regular_bytes
from runner.report.console import print_plain
from runner.report.markdown import pr_code_banner
from runner.report.reconcile import promotion_comment
from runner.workspace import Workspace

# What the PR checks upload; eval reports come as `<adapter>.eval/eval_report.md` only, so
# an artifact holds at most one file per adapter and kind.
_COMMENT_FILE = re.compile(r"(?P<adapter>.+)\.(?P<kind>validation|plan)\.md")
# A report this large is not one the runner wrote; under it, a body is cut to fit a comment.
COMMENT_FILE_BYTES = 16 << 20
# The comment kinds as choices, so `--help` lists them once and click refuses any other.
CommentKind = StrEnum("CommentKind", [(kind, kind) for kind in KINDS])


def ci_changed(repo: RepoOption = None) -> None:
    """The adapters a PR or push touches (all of them when there is no base to compare
    with); written to GITHUB_OUTPUT as `adapters` (a JSON list) and `any`.

    Example: runner ci changed
    """
    workspace = workspace_for(repo)
    names = _touched_adapters(workspace, _changes(workspace, GitHubContext.from_env()))
    write_output("adapters", json.dumps(names))
    write_output("any", "true" if names else "false")
    out.print(json.dumps(names))


def _changes(workspace: Workspace, context: GitHubContext) -> list[str] | None:
    """The paths the PR or push changed; None when there is no base to compare with."""
    base = context.base_commit() or (f"origin/{context.base_ref}" if context.base_ref else None)
    return None if base is None else changed_paths(workspace.root, base)


def _touched_adapters(workspace: Workspace, changed: list[str] | None) -> list[str]:
    if changed is None:
        return [d.name for d in workspace.list_adapter_dirs()]
    return [d.name for d in affected_adapters(workspace, changed)]


def _removed_adapters(workspace: Workspace, changed: list[str] | None) -> list[str]:
    """Adapter directories the change deleted (versions withdrawn from git)."""
    names = _adapters_named(changed or [])
    return sorted(n for n in names if not (workspace.root / "adapters" / n).is_dir())


def _adapters_named(paths: Iterable[str]) -> set[str]:
    """The adapter directories that paths lie in (present or not)."""
    return {p.split("/")[1] for p in paths if p.startswith("adapters/") and p.count("/") >= 2}


def ci_comment_promotion(
    result: Annotated[Path, typer.Argument(help="What `runner reconcile --result` wrote.")],
    repo: RepoOption = None,
) -> None:
    """On a push to main: tell each merged PR what became of the adapters it changed or
    removed (promoted and where, or why not and what to do; withdrawn). A missing RESULT
    (the promote run stopped early) is reported on the PR too, rather than leaving it
    silent.

    Example: runner ci comment-promotion "$RUNNER_TEMP/reconcile/result.json"
    """
    context = GitHubContext.from_env()
    commit = context.pushed_commit()
    if commit is None:
        raise InputError("comment-promotion runs on a push event (GITHUB_EVENT_PATH)")
    workspace = workspace_for(repo)
    changed = _changes(workspace, context)
    done = ReconcileResult.read(result) if result.exists() else None
    removed = [  # a removed version never promoted has nothing to report
        name for name in _removed_adapters(workspace, changed) if done is None or done.of(name)
    ]
    adapters = _touched_adapters(workspace, changed) + removed
    comments = _comments()
    pulls = comments.merged_pulls(commit) if adapters else []
    if not pulls:
        out.print(f"no merged PR changed an adapter in {commit[:12]}: nothing to comment")
        return
    for number in pulls:
        for adapter in adapters:
            row = done.of(adapter) if done else None
            channels = done.channels_of(adapter) if done else ()
            body = promotion_comment(row, adapter, commit, context.run_url, channels)
            text = sticky_text("promotion", adapter, body)
            action = comments.upsert(number, "promotion", adapter, text)
            out.print(f"promotion comment for {adapter} on #{number}: {action}")


def ci_announce_channels(
    result: Annotated[Path, typer.Argument(help="What `runner reconcile --result` wrote.")],
) -> None:
    """Announce every channel that reconcile moved: a GitHub deployment per move (environment
    `<adapter>-<channel>`, so GitHub's deployments view is each channel's release history)
    and, when CHANNEL_WEBHOOK_URL is set, the move's JSON payload to that webhook (signed
    with CHANNEL_WEBHOOK_SECRET when set). A rerun creates no second deployment; the webhook
    hears every run and tells a repeated move by its `id`. Exit 1 if any announcement
    failed, after trying all of them.

    Example: runner ci announce-channels "$RUNNER_TEMP/reconcile/result.json"
    """
    if not result.exists():
        out.print(f"{result} is missing (reconcile stopped before writing it): no known move")
        return
    done = ReconcileResult.read(result)
    found = moves(done, GitHubContext.from_env().run_url)
    if not found:
        out.print("no channel moved: nothing to announce")
        return
    if done.commit is None:
        raise InputError(f"{result} names no git commit to deploy; reconcile ran outside git")
    deployments, webhook = _deployments(), Webhook.from_env()
    failed = [move for move in found if not _announce(move, deployments, webhook)]
    if failed:
        raise typer.Exit(1)


def _announce(move: Move, deployments: GitHubDeployments, webhook: Webhook | None) -> bool:
    """Announce `move` everywhere it goes, printing what each did; False if any failed."""
    steps = [("deployment", partial(deployments.announce, move))]
    if webhook is not None:
        steps.append(("webhook", partial(webhook.send, move.payload)))
    ok = True
    for what, step in steps:
        try:
            print_plain(out, f"{move.title}: {step()}")
        except RunnerError as error:
            print_plain(err, f"{move.title}: {what} failed: {error}")
            ok = False
    return ok


def _deployments() -> GitHubDeployments:
    token, repository, api = _github_access("announcing a channel move")
    return GitHubDeployments(repository, token, api)


def _comments() -> GitHubComments:
    token, repository, api = _github_access("posting a comment")
    return GitHubComments(
        repository, token, api, os.environ.get(BOT_LOGIN_ENV) or DEFAULT_BOT_LOGIN
    )


def _github_access(doing: str) -> tuple[str, str, str]:
    """The token, repository and API address the workflow gives a step."""
    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise InputError(f"{doing} needs GITHUB_TOKEN and GITHUB_REPOSITORY")
    return token, repository, os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL


def _pr(number: int | None) -> int:
    if number is not None and positive_number(number) is None:
        raise InputError(f"--pr {number}: a pull request number is a positive whole number")
    found = number or GitHubContext.from_env().pr_number()
    if found is None:
        raise InputError("no pull request number: pass --pr or run on a pull_request event")
    return found


def ci_comment(
    adapter: AdapterArg,
    kind: Annotated[CommentKind, typer.Option(help="Which of the adapter's comments.")],
    body_file: Annotated[Path, typer.Option(help="Markdown of the comment.")],
    pr: Annotated[int | None, typer.Option(help="PR number (default: from the event).")] = None,
) -> None:
    """Create or update this adapter's sticky comment of this kind on the PR. The body is
    posted as the bot's, so mentions and links to outside hosts in it are neutralized.

    Example: runner ci comment kwanzaa-mini-v2 --kind plan --body-file plan.md --pr 12
    """
    name = Path(adapter).name
    text = sticky_text(kind.value, name, _read_markdown(body_file), _cleaner())
    done = _comments().upsert(_pr(pr), kind.value, name, text)
    out.print(f"{kind.value} comment for {name}: {done}")


def ci_post_comments(
    folder: Annotated[Path, typer.Argument(help="Folder of <adapter>.<kind>.md and pr.json.")],
    repo: RepoOption = None,
) -> None:
    """Post every `<adapter>.<kind>.md` (and `<adapter>.eval/eval_report.md`) in FOLDER to
    the PR named by FOLDER/pr.json: the `workflow_run` job's one step, which never checks out
    the PR's code. The folder is the PR's word: the PR's head must be the commit its run
    built, only adapters the PR changes (as GitHub lists its files) get a comment, and each
    body is neutralized, cut to fit, and flagged when the PR changed the code that wrote it.

    Example: runner ci post-comments "$RUNNER_TEMP/comments"
    """
    head = GitHubContext.from_env().built_commit()
    number = _pr_json(folder / "pr.json")
    workspace = workspace_for(repo)
    bodies = [(*found, _read_markdown(folder / found[2])) for found in comment_files(folder)]
    comments = _comments()
    files = comments.pr_files(number)  # before the head check: files of that very head
    if comments.pr_head(number) != head:
        raise InputError(
            f"pr.json names PR #{number}, whose head is not {head}, the commit this run built; "
            "nothing was posted"
        )
    changed = set(_touched_adapters(workspace, list(files.paths))) | _adapters_named(files.paths)
    clean, banner = _cleaner(), _banner(files)
    for adapter, kind, name, body in bodies:
        if adapter not in changed:
            out.print(f"{name}: PR #{number} does not change adapters/{adapter}; not posted")
            continue
        done = comments.upsert(
            number, kind, adapter, sticky_text(kind, adapter, body, clean, banner)
        )
        out.print(f"{kind} comment for {adapter}: {done}")


def _cleaner() -> Callable[[str], str]:
    return partial(neutralized, hosts=trusted_hosts(os.environ))


def _banner(files: PullFiles) -> str:
    areas = own_code_areas(files.paths)
    return pr_code_banner(areas, files.complete) if areas or not files.complete else ""


def _pr_json(path: Path) -> int:
    """The PR number in pr.json, which the PR's own run wrote: a positive whole number."""
    try:
        data = json.loads(_read_markdown(path), parse_float=Decimal, parse_constant=_no_constant)
    except (ValueError, RecursionError) as error:
        raise InputError(
            f'{path}: not JSON ({error}); expected {{"number": N}}, so nothing was posted'
        ) from None
    value = data.get("number") if isinstance(data, dict) else None
    number = positive_number(value)
    if number is None:
        shown = "missing" if value is None else _json_text(value)
        raise InputError(
            f'{path}: "number" is {shown}, not a PR number (a positive whole number, as '
            "`runner ci pr-info` writes it); nothing was posted"
        )
    return number


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _json_text(value: object) -> str:
    text = str(value) if isinstance(value, Decimal) else json.dumps(value)
    return text if len(text) <= 40 else text[:40] + "…"


def comment_files(folder: Path) -> list[tuple[str, str, str]]:
    """(adapter, kind, path inside FOLDER) of every comment the artifact holds."""
    found = []
    for path in sorted(folder.glob("*.md")):
        match = _COMMENT_FILE.fullmatch(path.name)
        if match is not None:
            found.append((match["adapter"], match["kind"], path.name))
    for path in sorted(folder.glob("*.eval/eval_report.md")):
        relative = f"{path.parent.name}/{path.name}"
        declared_file(folder, relative, what="eval report")  # no linked folder on the way
        found.append((path.parent.name.removesuffix(".eval"), "eval", relative))
    return found


def ci_pr_info(
    folder: Annotated[Path, typer.Argument(help="Where pr.json goes.")],
) -> None:
    """Write FOLDER/pr.json with the PR number, for the comment job to read.

    Example: runner ci pr-info "$RUNNER_TEMP/comments"
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pr.json").write_text(json.dumps({"number": _pr(None)}) + "\n", encoding="utf-8")


def _read_markdown(path: Path) -> str:
    """A comment body or pr.json: a regular file, not a link to one (the folder comes from
    an artifact), of at most COMMENT_FILE_BYTES."""
    try:
        data = read_regular_bytes(path, limit=COMMENT_FILE_BYTES, shown=str(path))
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
    return data.decode("utf-8", errors="replace")
