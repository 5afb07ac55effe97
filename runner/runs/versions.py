"""Version tags: a promoted version N is the tag `v<N>` on its publish repo."""

from __future__ import annotations

import re
from collections.abc import Iterable

_VERSION_TAG = re.compile(r"v(\d+)")


def version_tag(version: int) -> str:
    return f"v{version}"


def tag_version(tag: str) -> int | None:
    """N of a version tag `v<N>`; None for any other tag."""
    match = _VERSION_TAG.fullmatch(tag)
    return int(match.group(1)) if match else None


def newest_version_tag(tags: Iterable[str], *, above: int = -1) -> str | None:
    """The newest `v<N>` tag with N > `above`: with `above` set to a version not promoted yet,
    the one that supersedes it."""
    versions = [(n, tag) for tag in tags if (n := tag_version(tag)) is not None and n > above]
    return max(versions)[1] if versions else None


def newest_below(tags: dict[str, str], version: int) -> str | None:
    """The commit of the newest `v<N>` tag with N < `version`, or None."""
    promoted = {n: commit for tag, commit in tags.items() if (n := tag_version(tag)) is not None}
    older = [n for n in promoted if n < version]
    return promoted[max(older)] if older else None
