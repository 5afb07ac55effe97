"""Git LFS as the Hub serves it: which files go through LFS, their pointers, and the
objects uploaded through the LFS batch API (stored in the blob store by sha256).

The real client picks Xet over LFS whenever `hf_xet` is installed, without asking the server;
the emulator has no Xet storage, so the runner turns Xet off for it (`HubClient`) and the
Spaces it runs, and the client takes the LFS batch path with the basic transfer."""

from __future__ import annotations

import base64
import binascii
import fnmatch

from runner.hub.emulator.blobs import FileEntry, git_blob_oid
from runner.hub.emulator.errors import HubError

# Above this size the Hub sends a file through LFS whatever its content.
LFS_SIZE_THRESHOLD = 10 * 1024 * 1024


class LfsObjectNotFound(HubError):
    status = 404

    def __init__(self, sha256: str) -> None:
        super().__init__(
            f"LFS object not found: {sha256[:64]!r} was not uploaded (or has another size)"
        )


def pointer(sha256: str, size: int) -> bytes:
    """The git LFS pointer that git stores in place of the file: its sha1 is the file's
    blob id in tree listings, not the sha1 of the content."""
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    ).encode()


def lfs_entry(sha256: str, size: int) -> FileEntry:
    return FileEntry(sha256=sha256, size=size, oid=git_blob_oid(pointer(sha256, size)), lfs=True)


def lfs_patterns(gitattributes: bytes) -> list[str]:
    """The patterns of `.gitattributes` lines that set `filter=lfs`."""
    patterns = []
    for line in gitattributes.decode("utf-8", "replace").splitlines():
        fields = line.split()
        if len(fields) > 1 and not fields[0].startswith("#") and "filter=lfs" in fields[1:]:
            patterns.append(fields[0])
    return patterns


def matches(path: str, pattern: str) -> bool:
    """git's rule, simplified: a pattern without a slash matches the file name at any depth."""
    target = path if "/" in pattern.strip("/") else path.rsplit("/", 1)[-1]
    return fnmatch.fnmatchcase(target, pattern.strip("/"))


def is_binary(sample: str) -> bool:
    """The client sends the first 512 bytes, base64; a NUL byte among them marks a binary."""
    try:
        return b"\0" in base64.b64decode(sample, validate=True)
    except (binascii.Error, ValueError):
        return False


def wants_lfs(path: str, size: int, sample: str, patterns: list[str]) -> bool:
    return (
        size > LFS_SIZE_THRESHOLD
        or is_binary(sample)
        or any(matches(path, pattern) for pattern in patterns)
    )
