"""Content hashes of files, read in blocks so any file size fits in memory."""

from __future__ import annotations

import hashlib
from pathlib import Path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def git_blob_id(path: Path) -> str:
    """The git blob id of a file: what the Hub lists as its `oid`, so a local file can be
    compared with the Hub's copy without downloading it."""
    blob = hashlib.sha1(b"blob %d\0" % path.stat().st_size, usedforsecurity=False)
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            blob.update(chunk)
    return blob.hexdigest()
