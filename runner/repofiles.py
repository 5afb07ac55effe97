"""Repository files the runner may read, hash or upload: one home for the rule.

A path a spec declares is read only when it names a regular file inside the repository,
reached without a symbolic link anywhere on the way. A symlink in a dataset folder once put
`/proc/self/environ` (HF_TOKEN included) on the Hub; a device file (`/dev/zero`) never ends;
a control character in a path hides `..` from a line-based check. Every caller asks here,
and gets the reason in words when the answer is no.
"""

from __future__ import annotations

import errno
import os
import stat
import unicodedata
from pathlib import Path

from runner.errors import InputError

# Large enough for any spec, schema or policy file a person writes; a YAML or JSON file over
# this is not a spec but an attack or an accident, and is refused before it is parsed.
MAX_TEXT_FILE_BYTES = 1 << 20


class UnsafePathError(InputError):
    """A declared path that may not be read: outside the repo, a link, a device, unprintable."""


class MissingFileError(UnsafePathError):
    """Nothing at the declared path (nothing unsafe either: it is simply not there)."""


def path_problem(relative: str) -> str | None:
    """What is wrong with the text of a declared path, or None. Checks only the string."""
    if not relative:
        return "is empty"
    bad = next((c for c in relative if unicodedata.category(c) in {"Cc", "Cf", "Zl", "Zp"}), None)
    if bad is not None:
        return f"contains the control character U+{ord(bad):04X}; write the path on one line"
    if relative.startswith("/") or "\\" in relative or ":" in relative:
        return "must be relative to the repository root, with '/' separators"
    if any(part in {"", ".", ".."} for part in relative.split("/")):
        return "may not contain '.', '..' or empty components"
    return None


def declared_file(repo_root: Path, relative: str, *, what: str = "file") -> Path:
    """The regular file `relative` names inside `repo_root`, or UnsafePathError saying why.

    Every component from the repository root down is looked at without following links, so
    neither a symlinked folder nor a symlinked file can lead out of the repository."""
    problem = path_problem(relative)
    if problem is not None:
        raise UnsafePathError(f"{relative!r}: the {what} path {problem}")
    root = repo_root.resolve()
    current = root
    parts = relative.split("/")
    for depth, part in enumerate(parts):
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            raise MissingFileError(f"{relative}: no {what} there") from None
        except OSError as error:
            raise UnsafePathError(f"{relative}: cannot read it ({error.strerror})") from None
        shown = "/".join(parts[: depth + 1])
        if stat.S_ISLNK(mode):
            raise UnsafePathError(
                f"{relative}: {shown} is a symbolic link; only regular files inside the "
                "repository are read or uploaded: replace the link with the file itself"
            )
        last = depth == len(parts) - 1
        if not last and not stat.S_ISDIR(mode):
            raise UnsafePathError(f"{relative}: {shown} is not a folder")
        if last and not stat.S_ISREG(mode):
            raise UnsafePathError(
                f"{relative}: not a regular file ({_kind(mode)}); declare a regular file"
            )
    return current


def read_declared_bytes(
    repo_root: Path, relative: str, *, limit: int = MAX_TEXT_FILE_BYTES, what: str = "file"
) -> bytes:
    """The bytes of a declared file, refused (never truncated) when it is over `limit`."""
    path = declared_file(repo_root, relative, what=what)
    return read_regular_bytes(path, limit=limit, shown=relative)


def read_regular_bytes(path: Path, *, limit: int = MAX_TEXT_FILE_BYTES, shown: str = "") -> bytes:
    """Bytes of `path` when it is a regular file (not followed through a final symlink) of at
    most `limit` bytes; otherwise UnsafePathError naming `shown`."""
    shown = shown or path.as_posix()
    try:  # O_NONBLOCK: opening a named pipe must not wait for a writer
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if error.errno != errno.ELOOP:
            raise  # missing or unreadable: the caller words it for its file
        raise UnsafePathError(
            f"{shown}: is a symbolic link; replace the link with the file itself"
        ) from None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafePathError(f"{shown}: not a regular file ({_kind(mode)})")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafePathError(
            f"{shown}: larger than {limit // 1024} KiB; a spec, schema or policy file is small"
        )
    return data


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a named pipe"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    ):
        if test(mode):
            return name
    return "not a regular file"
