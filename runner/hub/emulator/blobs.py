"""Content-addressed file storage: every file body is stored once, named by its sha256."""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def git_blob_oid(data: bytes) -> str:
    """The git blob id (sha1 of a `blob <size>\\0` header and the bytes). The client compares it
    with the same hash of its local file to skip files that have not changed."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def now_iso() -> str:
    """A timestamp in the one format `huggingface_hub.utils.parse_datetime` accepts."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write a JSON file so that a crash leaves either the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=1, sort_keys=True)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class FileEntry:
    """One file in a commit's tree."""

    sha256: str
    size: int
    oid: str
    # Stored through LFS: `oid` is then the blob id of the LFS pointer, not of the content.
    lfs: bool = False

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"sha256": self.sha256, "size": self.size, "oid": self.oid}
        return data | {"lfs": True} if self.lfs else data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileEntry:
        return cls(
            sha256=data["sha256"],
            size=int(data["size"]),
            oid=data["oid"],
            lfs=bool(data.get("lfs", False)),
        )


class BlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256

    def put(self, data: bytes) -> FileEntry:
        sha256 = hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            # Same content, same name: a concurrent writer of the same blob is harmless.
            os.replace(tmp, target)
        return FileEntry(sha256=sha256, size=len(data), oid=git_blob_oid(data))

    def has(self, sha256: str) -> bool:
        return SHA256_HEX.fullmatch(sha256) is not None and self.path(sha256).is_file()

    def size(self, sha256: str) -> int:
        return self.path(sha256).stat().st_size

    def read(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def count(self) -> int:
        return sum(1 for p in self.root.glob("*/*") if not p.name.startswith("."))
