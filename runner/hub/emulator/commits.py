"""The commit payload: NDJSON lines `{"key": ..., "value": ...}` as huggingface_hub's
`_prepare_commit_payload` writes them. Every line is checked (shape, types, paths, base64)
before anything is stored, so a malformed commit is a 400 naming its line and leaves no trace."""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from runner.hub.emulator.blobs import SHA256_HEX
from runner.hub.emulator.errors import BadRequest, describe_problems
from runner.hub.emulator.storage import check_path, check_path_form, shown_path


class _Value(BaseModel):
    # Strict: a nested object where a string belongs is refused, never turned into its repr.
    # Fields the emulator does not read (an lfsFile's size) are ignored, as by the Hub.
    model_config = ConfigDict(strict=True, extra="ignore")


class HeaderValue(_Value):
    summary: str
    description: str | None = None
    parentCommit: str | None = None


class PathValue(_Value):
    path: str


class FileValue(PathValue):
    content: str
    encoding: Literal["base64"] = "base64"


class LfsValue(PathValue):
    algo: Literal["sha256"] = "sha256"
    oid: str


class HeaderLine(_Value):
    key: Literal["header"]
    value: HeaderValue


class FileLine(_Value):
    key: Literal["file"]
    value: FileValue


class DeletedFileLine(_Value):
    key: Literal["deletedFile"]
    value: PathValue


class DeletedFolderLine(_Value):
    key: Literal["deletedFolder"]
    value: PathValue


class LfsFileLine(_Value):
    key: Literal["lfsFile"]
    value: LfsValue


_LINE: TypeAdapter[HeaderLine | FileLine | DeletedFileLine | DeletedFolderLine | LfsFileLine] = (
    TypeAdapter(
        Annotated[
            HeaderLine | FileLine | DeletedFileLine | DeletedFolderLine | LfsFileLine,
            Field(discriminator="key"),
        ]
    )
)

# One step of a commit, with the new file's bytes (or the sha256 of an LFS object uploaded
# before the commit), in the order the client sent them.
Change = (
    tuple[Literal["add"], str, bytes]
    | tuple[Literal["add_lfs"], str, str]
    | tuple[Literal["delete"], str, None]
    | tuple[Literal["delete_folder"], str, None]
)


@dataclass(frozen=True, slots=True)
class CommitRequest:
    summary: str
    description: str
    parent: str | None
    changes: list[Change]


def parse_commit(raw: bytes) -> CommitRequest:
    header: HeaderValue | None = None
    changes: list[Change] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line or line.isspace():  # not strip(): that would copy a whole file's line
            continue
        try:
            item = _LINE.validate_json(line)
            if isinstance(item, HeaderLine):
                if header is not None:
                    raise BadRequest("a second header line; a commit has exactly one")
                header = item.value
            else:
                changes.append(_change(item))
        except ValidationError as exc:
            raise BadRequest(
                f"Commit payload line {number}: {describe_problems(exc.errors(), 'line')}"
            ) from None
        except BadRequest as exc:  # the same error, so an invalid path stays a 422
            exc.message = f"Commit payload line {number}: {exc.message}"
            raise exc from None
    if header is None or not header.summary.strip():
        raise BadRequest("A commit needs a header line with a non-empty summary")
    return CommitRequest(
        summary=header.summary,
        description=header.description or "",
        parent=header.parentCommit,
        changes=changes,
    )


def _change(item: FileLine | DeletedFileLine | DeletedFolderLine | LfsFileLine) -> Change:
    path = item.value.path
    if isinstance(item, FileLine):
        return ("add", check_path(path), _decode(item.value))
    if isinstance(item, DeletedFileLine):
        return ("delete", check_path_form(path), None)
    if isinstance(item, DeletedFolderLine):
        # The client marks a folder with a trailing slash (`CommitOperationDelete.is_folder`).
        return ("delete_folder", check_path_form(path.rstrip("/")), None)
    if not SHA256_HEX.fullmatch(item.value.oid):
        raise BadRequest(f"Invalid LFS oid for {shown_path(path)}: expected 64 hex (sha256)")
    return ("add_lfs", check_path(path), item.value.oid)


def _decode(value: FileValue) -> bytes:
    try:
        return base64.b64decode(value.content, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise BadRequest(f"Invalid base64 content for {shown_path(value.path)}") from exc


# -- .gitignore: which preuploaded files the Hub tells the client to leave out -------------


def _gitignore_rules(text: str) -> list[tuple[bool, bool, bool, str]]:
    """(negated, folders only, anchored, pattern) per rule, in order (the last match wins)."""
    rules = []
    for line in text.splitlines():
        line = line.rstrip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = line.removeprefix("!")
        folders_only = pattern.endswith("/")
        pattern = pattern.rstrip("/")
        # A slash anywhere but at the end ties the pattern to the repo root.
        anchored = "/" in pattern
        rules.append((negated, folders_only, anchored, pattern.lstrip("/")))
    return rules


def _rule_matches(
    path: str, is_file: bool, folders_only: bool, anchored: bool, pattern: str
) -> bool:
    if folders_only and is_file:
        return False
    if anchored:
        return _glob(pattern).fullmatch(path) is not None
    return _glob(pattern).fullmatch(PurePosixPath(path).name) is not None


def _glob(pattern: str) -> re.Pattern[str]:
    """git's glob: `*` and `?` stay within one folder, `**` crosses folders."""
    parts = re.split(r"(\*\*/|\*\*|\*|\?)", pattern)
    mapping = {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}
    return re.compile("".join(mapping.get(p, re.escape(p)) for p in parts))


def is_ignored(path: str, gitignore: str) -> bool:
    """Whether `path` (or a folder it is in) is ignored by the `.gitignore` text given."""
    rules = _gitignore_rules(gitignore)
    candidates = [(str(parent), False) for parent in reversed(PurePosixPath(path).parents)]
    for candidate, is_file in [*candidates[1:], (path, True)]:
        ignored = False
        for negated, folders_only, anchored, pattern in rules:
            if _rule_matches(candidate, is_file, folders_only, anchored, pattern):
                ignored = not negated
        if ignored:
            return True  # git never looks inside an ignored folder
    return False
