"""CLI verbs for GitHub Actions steps: `runner ci changed`, `ci comment`, `ci post-comments`,
`ci comment-promotion`.
Each workflow step is one runner call; the logic lives here, tested."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated

import typer

from runner.changes import affected_adapters
from runner.cli_shared import AdapterArg, RepoOption, app, out, workspace_for
from runner.errors import InputError
from runner.github.comments import KINDS, GitHubComments
from runner.github.context import GitHubContext, write_output
from runner.gitutil import changed_paths
from runner.promote.result import ReconcileResult
from runner.report.reconcile import promotion_comment
from runner.workspace import Workspace

ci_app = typer.Typer(help="Steps of the GitHub workflows.", no_args_is_help=True)
app.add_typer(ci_app, name="ci")

_COMMENT_FILE = re.compile(r"(?P<adapter>.+)\.(?P<kind>validation|plan|eval)\.md")


@ci_app.command("changed")
def ci_changed(repo: RepoOption = None) -> None:
    """The adapters a PR or push touches (all of them when there is no base to compare
    with); written to GITHUB_OUTPUT as `adapters` (a JSON list) and `any`."""
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
    names = {
        p.split("/")[1] for p in changed or [] if p.startswith("adapters/") and p.count("/") >= 2
    }
    return sorted(n for n in names if not (workspace.root / "adapters" / n).is_dir())


@ci_app.command("comment-promotion")
def ci_comment_promotion(
    result: Annotated[Path, typer.Argument(help="What `runner reconcile --result` wrote.")],
    repo: RepoOption = None,
) -> None:
    """On a push to main: tell each merged PR what became of the adapters it changed or
    removed (promoted and where, or why not and what to do; withdrawn). A missing RESULT
    (the promote run stopped early) is reported on the PR too, rather than leaving it
    silent."""
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
            body = promotion_comment(row, adapter, commit, context.run_url)
            action = comments.upsert(number, "promotion", adapter, body)
            out.print(f"promotion comment for {adapter} on #{number}: {action}")


def _comments() -> GitHubComments:
    token, repository = os.environ.get("GITHUB_TOKEN"), os.environ.get("GITHUB_REPOSITORY")
    if not token or not repository:
        raise InputError("posting a comment needs GITHUB_TOKEN and GITHUB_REPOSITORY")
    api = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
    return GitHubComments(repository, token, api)


def _pr(number: int | None) -> int:
    found = number or GitHubContext.from_env().pr_number()
    if found is None:
        raise InputError("no pull request number: pass --pr or run on a pull_request event")
    return found


@ci_app.command("comment")
def ci_comment(
    adapter: AdapterArg,
    kind: Annotated[str, typer.Option(help=f"One of {', '.join(KINDS)}.")],
    body_file: Annotated[Path, typer.Option(help="Markdown of the comment.")],
    pr: Annotated[int | None, typer.Option(help="PR number (default: from the event).")] = None,
) -> None:
    """Create or update this adapter's sticky comment of this kind on the PR."""
    if kind not in KINDS:
        raise InputError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    body = _read(body_file)
    done = _comments().upsert(_pr(pr), kind, Path(adapter).name, body)
    out.print(f"{kind} comment for {Path(adapter).name}: {done}")


@ci_app.command("post-comments")
def ci_post_comments(
    folder: Annotated[Path, typer.Argument(help="Folder of <adapter>.<kind>.md and pr.json.")],
) -> None:
    """Post every `<adapter>.<kind>.md` (and `<adapter>.eval/eval_report.md`) in FOLDER to
    the PR named by FOLDER/pr.json: the `workflow_run` job's one step, which never checks out
    the PR's code. pr.json comes from the PR's own run, so the PR's head must be the commit
    that run built."""
    try:
        number = int(json.loads(_read(folder / "pr.json"))["number"])
    except (ValueError, KeyError, TypeError) as error:
        raise InputError(f'{folder / "pr.json"}: expected {{"number": N}}: {error}') from None
    comments = _comments()
    head = (GitHubContext.from_env().event.get("workflow_run") or {}).get("head_sha")
    if head and comments.pr_head(number) != head:
        raise InputError(
            f"pr.json names PR #{number}, whose head is not {head}, the commit this run built; "
            "nothing was posted"
        )
    for adapter, kind, path in comment_files(folder):
        done = comments.upsert(number, kind, adapter, _read(path))
        out.print(f"{kind} comment for {adapter}: {done}")


def comment_files(folder: Path) -> list[tuple[str, str, Path]]:
    found = []
    for path in sorted(folder.glob("*.md")):
        match = _COMMENT_FILE.fullmatch(path.name)
        if match is not None:
            found.append((match["adapter"], match["kind"], path))
    for path in sorted(folder.glob("*.eval/eval_report.md")):
        found.append((path.parent.name.removesuffix(".eval"), "eval", path))
    return found


@ci_app.command("pr-info")
def ci_pr_info(
    folder: Annotated[Path, typer.Argument(help="Where pr.json goes.")],
) -> None:
    """Write FOLDER/pr.json with the PR number, for the comment job to read."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "pr.json").write_text(json.dumps({"number": _pr(None)}) + "\n", encoding="utf-8")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as error:
        raise InputError(f"{path}: {error.strerror}") from None
