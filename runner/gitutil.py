"""The little the runner asks of git: which paths a change touches, and whether a path
exists at a ref. Git failures are user-facing errors (a wrong ref, a shallow clone)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from runner.errors import InputError


def _git(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError as err:
        raise InputError("git is not installed; it is needed to compare against a ref") from err


def changed_paths(root: Path, ref: str) -> list[str]:
    """Paths that differ between `ref` (its merge base with HEAD) and the working tree,
    untracked files included."""
    base = _git(root, "merge-base", ref, "HEAD")
    if base.returncode != 0:
        raise InputError(
            f"git cannot find {ref!r} here: {base.stderr.strip() or 'unknown ref'}; "
            "fetch it (in CI: actions/checkout with fetch-depth: 0)"
        )
    diff = _git(root, "diff", "--name-only", base.stdout.strip())
    untracked = _git(root, "ls-files", "--others", "--exclude-standard")
    return sorted({*diff.stdout.split("\n"), *untracked.stdout.split("\n")} - {""})


def exists_at(root: Path, ref: str, path: str) -> bool:
    return _git(root, "cat-file", "-e", f"{ref}:{path}").returncode == 0


def differs_from(root: Path, ref: str, path: str) -> bool:
    """True when `path` in the working tree differs from `ref` (untracked files included)."""
    diff = _git(root, "diff", "--quiet", ref, "--", path)
    untracked = _git(root, "ls-files", "--others", "--exclude-standard", "--", path)
    return diff.returncode != 0 or bool(untracked.stdout.strip())


def head_commit(root: Path) -> str:
    """The commit the working tree is at, or `unknown` outside a git checkout."""
    found = _git(root, "rev-parse", "HEAD")
    return found.stdout.strip() if found.returncode == 0 else "unknown"


def removed_files(root: Path, pattern: str) -> dict[str, str]:
    """Files matching `pattern` that some commit deleted and HEAD does not have: path ->
    their last content. Empty outside a git checkout."""
    log = _git(root, "log", "--diff-filter=D", "--format=%H", "--name-only", "--", pattern)
    if log.returncode != 0:
        return {}
    removed: dict[str, str] = {}
    commit = ""
    for line in log.stdout.splitlines():
        if len(line) == 40 and " " not in line and "/" not in line:
            commit = line
        elif line and line not in removed and not exists_at(root, "HEAD", line):
            shown = _git(root, "show", f"{commit}^:{line}")
            if shown.returncode == 0:
                removed[line] = shown.stdout
    return removed
