"""Repos, refs and commits, persisted under the data dir.

Layout:
    blobs/<sha256[:2]>/<sha256>                 file bodies, stored once by content hash
    repos/<type>/<namespace>/<name>/repo.json   visibility, branches, tags, Space settings
    repos/<type>/<namespace>/<name>/commits/<id>.json
                                                immutable: a full tree (path -> blob) and parents

A commit stores its whole flat tree rather than a diff: the repos the emulator serves are
small, and a full tree makes every read a single lookup."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from runner.hub.emulator.blobs import BlobStore, FileEntry, now_iso, write_json_atomic
from runner.hub.emulator.errors import (
    BadRequest,
    Conflict,
    EntryNotFound,
    InvalidPath,
    RevisionNotFound,
    StaleParent,
)

REPO_TYPES = ("model", "dataset", "space")
COMMIT_ID = re.compile(r"[0-9a-f]{40}")
# As git's: seven hex digits or more name the one commit they begin.
SHORT_COMMIT_ID = re.compile(r"[0-9a-f]{7,39}")
# huggingface_hub's rule: word characters, '-' and '.', neither first nor last, 96 at most
# (the staging Hub's test user is `__DUMMY_HUB_USER__`); '--' and '..' are refused too.
REPO_NAME = re.compile(r"(?!.*(--|\.\.))[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9_])?")
REF_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")
# A clone writes each part of a path as a file name and opens the whole path: 255 bytes is
# the name limit of every common file system (NAME_MAX) and 4096 Linux's PATH_MAX, so a longer
# path could be committed but never checked out.
MAX_SEGMENT_BYTES = 255
MAX_PATH_BYTES = 4096
# C0 and C1 controls (NUL ends a C string, a newline forges lines in logs and listings) and
# lone surrogates (from JSON `\ud800` escapes; they cannot be encoded back to UTF-8).
UNSAFE_PATH_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")

# What a repo created on the Hub starts with: git-lfs rules for the usual binary formats.
GITATTRIBUTES = b"""*.bin filter=lfs diff=lfs merge=lfs -text
*.gguf filter=lfs diff=lfs merge=lfs -text
*.h5 filter=lfs diff=lfs merge=lfs -text
*.onnx filter=lfs diff=lfs merge=lfs -text
*.parquet filter=lfs diff=lfs merge=lfs -text
*.pt filter=lfs diff=lfs merge=lfs -text
*.pth filter=lfs diff=lfs merge=lfs -text
*.safetensors filter=lfs diff=lfs merge=lfs -text
*.zip filter=lfs diff=lfs merge=lfs -text
"""


@dataclass(frozen=True, slots=True)
class Commit:
    id: str
    parents: tuple[str, ...]
    tree: Mapping[str, FileEntry]
    title: str
    message: str
    date: str
    author: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "parents": list(self.parents),
            "tree": {path: entry.to_json() for path, entry in sorted(self.tree.items())},
            "title": self.title,
            "message": self.message,
            "date": self.date,
            "author": self.author,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Commit:
        return cls(
            id=data["id"],
            parents=tuple(data["parents"]),
            tree={path: FileEntry.from_json(e) for path, e in data["tree"].items()},
            title=data["title"],
            message=data["message"],
            date=data["date"],
            author=data["author"],
        )


@dataclass
class Repo:
    type: str
    id: str
    private: bool
    created_at: str
    branches: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    # Space settings and last known runtime state; None for models and datasets.
    space: dict[str, Any] | None = None
    # Gating: False, "auto" or "manual"; and the access requests, by user name (access.py).
    gated: str | bool = False
    access_requests: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Pull request heads, by their ref (`refs/pr/<num>`): commits land there, never on a branch.
    pull_requests: dict[str, str] = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.id.split("/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "private": self.private,
            "createdAt": self.created_at,
            "branches": self.branches,
            "tags": self.tags,
            "space": self.space,
            "gated": self.gated,
            "accessRequests": self.access_requests,
            "pullRequests": self.pull_requests,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Repo:
        return cls(
            type=data["type"],
            id=data["id"],
            private=bool(data["private"]),
            created_at=data["createdAt"],
            branches=dict(data["branches"]),
            tags=dict(data["tags"]),
            space=data.get("space"),
            gated=data.get("gated", False),
            access_requests=dict(data.get("accessRequests") or {}),
            pull_requests=dict(data.get("pullRequests") or {}),
        )


# One step of a commit, applied in the order the client sent them (as the Hub does).
Operation = (
    tuple[Literal["add"], str, FileEntry]
    | tuple[Literal["delete"], str, None]
    | tuple[Literal["delete_folder"], str, None]
)


def shown_path(path: str, limit: int = 80) -> str:
    """A path for a message: quoted with escapes, and cut short when long."""
    return repr(path[:limit]) + ("..." if len(path) > limit else "")


def check_path_form(path: str) -> str:
    """A well-formed repo path: relative, POSIX, no empty, `.` or `..` segment, no control
    character, and short enough to check out."""
    parts = path.split("/")
    # A path that begins `..\` climbs out of the repo on a Windows checkout: the Hub refuses
    # it. A `..\` further in is stored as sent (the Hub does; clients refuse to download it).
    windows_parts = path.replace("\\", "/").split("/")
    if (
        not path
        or path.startswith("/")
        or any(p in ("", ".", "..") for p in parts)
        or windows_parts[0] == ".."
    ):
        raise InvalidPath(
            f"Invalid path in repo: {shown_path(path)}; expected a relative path like "
            "'folder/file.txt' with no empty, '.' or '..' part"
        )
    if UNSAFE_PATH_CHARACTER.search(path):
        raise InvalidPath(
            f"Invalid path in repo: {shown_path(path)} contains a control character or a lone "
            "surrogate"
        )
    size, longest = len(path.encode()), max(len(p.encode()) for p in parts)
    if size > MAX_PATH_BYTES or longest > MAX_SEGMENT_BYTES:
        raise InvalidPath(
            f"Path too long in repo: {shown_path(path)} ({size} bytes, longest part {longest}); "
            f"the limits are {MAX_PATH_BYTES} bytes and {MAX_SEGMENT_BYTES} per part"
        )
    return path


def check_path(path: str) -> str:
    """A path a commit may write: well-formed and not inside `.git`."""
    if check_path_form(path).split("/")[0] == ".git":
        raise InvalidPath(f"Cannot write inside .git: {shown_path(path)}")
    return path


def repo_key(repo_type: str, repo_id: str) -> tuple[str, str]:
    """Repo ids are case-insensitive on the Hub: `AINative/Kwanzaa-Mini-Lora` is the repo
    created as `ainative/kwanzaa-mini-lora`, which keeps the case it was created with."""
    return repo_type, repo_id.lower()


def split_repo_id(repo_id: str) -> tuple[str, str]:
    namespace, _, name = repo_id.partition("/")
    if not namespace or not REPO_NAME.fullmatch(namespace) or not REPO_NAME.fullmatch(name):
        raise BadRequest(
            f"Invalid repo id {repo_id!r}: expected 'namespace/name' with letters, digits, '-', "
            "'_' or '.'"
        )
    return namespace, name


class Store:
    """Every repo of every type. All mutations hold one lock, so refs move atomically."""

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir
        self.root.mkdir(parents=True, exist_ok=True)
        self.blobs = BlobStore(self.root / "blobs")
        self._lock = threading.RLock()
        self._repos: dict[tuple[str, str], Repo] = {}
        self._commits: dict[tuple[str, str, str], Commit] = {}
        # Old ids of moved repos, to their new id: the Hub sends old URLs on (kept in memory).
        self._moved: dict[tuple[str, str], str] = {}
        for path in sorted((self.root / "repos").glob("*/*/*/repo.json")):
            repo = Repo.from_json(json.loads(path.read_text(encoding="utf-8")))
            self._repos[repo_key(repo.type, repo.id)] = repo

    @property
    def lock(self) -> threading.RLock:
        return self._lock

    # -- repos ------------------------------------------------------------------------------

    def _repo_dir(self, repo_type: str, repo_id: str) -> Path:
        namespace, name = split_repo_id(repo_id)
        return self.root / "repos" / repo_type / namespace / name

    def repo_dir(self, repo: Repo) -> Path:
        """Where a repo's own records live; removed with the repo."""
        return self._repo_dir(repo.type, repo.id)

    def get(self, repo_type: str, repo_id: str) -> Repo | None:
        with self._lock:
            return self._repos.get(repo_key(repo_type, repo_id))

    def moved_to(self, repo_type: str, repo_id: str) -> Repo | None:
        """The repo a move took `repo_id` to, if it still exists."""
        with self._lock:
            new_id = self._moved.get(repo_key(repo_type, repo_id))
            return None if new_id is None else self.get(repo_type, new_id)

    def repos(self, repo_type: str | None = None) -> list[Repo]:
        with self._lock:
            return [r for r in self._repos.values() if repo_type in (None, r.type)]

    def save(self, repo: Repo) -> None:
        with self._lock:
            write_json_atomic(self._repo_dir(repo.type, repo.id) / "repo.json", repo.to_json())

    def create(
        self,
        repo_type: str,
        repo_id: str,
        *,
        private: bool,
        initial_files: Mapping[str, bytes] | None = None,
        space: dict[str, Any] | None = None,
        author: str = "system",
    ) -> Repo:
        """`author`: who made the initial commit; on the Hub, whoever created the repo."""
        if repo_type not in REPO_TYPES:
            raise BadRequest(f"Invalid repo type {repo_type!r}; expected one of {REPO_TYPES}")
        split_repo_id(repo_id)
        files = {".gitattributes": GITATTRIBUTES, **(initial_files or {})}
        entries = {path: self.blobs.put(data) for path, data in files.items()}
        with self._lock:
            if repo_key(repo_type, repo_id) in self._repos:
                raise Conflict(f"You already created this {repo_type} repo: {repo_id}")
            repo_dir = self._repo_dir(repo_type, repo_id)
            # Leftovers of a repo deleted while the emulator was down are not this repo.
            shutil.rmtree(repo_dir, ignore_errors=True)
            repo = Repo(
                type=repo_type, id=repo_id, private=private, created_at=now_iso(), space=space
            )
            first = self._write_commit(repo, (), entries, "initial commit", "", author=author)
            repo.branches["main"] = first.id
            self._repos[repo_key(repo_type, repo_id)] = repo
            self.save(repo)
            return repo

    def delete(self, repo: Repo) -> None:
        with self._lock:
            self._repos.pop(repo_key(repo.type, repo.id), None)
            self._commits = {
                k: v for k, v in self._commits.items() if k[:2] != (repo.type, repo.id)
            }
            shutil.rmtree(self._repo_dir(repo.type, repo.id), ignore_errors=True)

    def move(self, repo: Repo, new_id: str) -> None:
        """Rename a repo (the Hub's move): its history, refs and settings go with it."""
        with self._lock:
            target = self._repo_dir(repo.type, new_id)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._repo_dir(repo.type, repo.id).rename(target)
            self._repos.pop(repo_key(repo.type, repo.id), None)
            self._commits = {
                k: v for k, v in self._commits.items() if k[:2] != (repo.type, repo.id)
            }
            self._moved[repo_key(repo.type, repo.id)] = new_id
            repo.id = new_id
            self._repos[repo_key(repo.type, new_id)] = repo
            self.save(repo)

    # -- commits ----------------------------------------------------------------------------

    def _write_commit(
        self,
        repo: Repo,
        parents: tuple[str, ...],
        tree: Mapping[str, FileEntry],
        title: str,
        message: str,
        *,
        author: str,
        commit_id: str | None = None,
    ) -> Commit:
        date = now_iso()
        if commit_id is None:
            seed = json.dumps(
                [repo.type, repo.id, parents, sorted(tree), title, date, uuid.uuid4().hex]
            )
            commit_id = hashlib.sha1(seed.encode(), usedforsecurity=False).hexdigest()
        elif not COMMIT_ID.fullmatch(commit_id) or self.get_commit(repo, commit_id):
            raise BadRequest(f"commit id {commit_id!r} is not 40 hex or is already taken")
        commit = Commit(commit_id, parents, dict(tree), title, message, date, author)
        path = self._repo_dir(repo.type, repo.id) / "commits" / f"{commit_id}.json"
        write_json_atomic(path, commit.to_json())
        self._commits[(repo.type, repo.id, commit_id)] = commit
        return commit

    def get_commit(self, repo: Repo, commit_id: str) -> Commit | None:
        key = (repo.type, repo.id, commit_id)
        with self._lock:
            if key in self._commits:
                return self._commits[key]
            if not COMMIT_ID.fullmatch(commit_id):
                return None
            path = self._repo_dir(repo.type, repo.id) / "commits" / f"{commit_id}.json"
            if not path.is_file():
                return None
            commit = Commit.from_json(json.loads(path.read_text(encoding="utf-8")))
            self._commits[key] = commit
            return commit

    def _find_commit(self, repo: Repo, revision: str) -> Commit | None:
        """A branch, a tag, a full commit id or a unique prefix of one, to its commit."""
        with self._lock:
            commit_id = (
                repo.branches.get(revision)
                or repo.pull_requests.get(revision)
                or repo.tags.get(revision)
                or revision
            )
            commit = self.get_commit(repo, commit_id)
            if commit is None and SHORT_COMMIT_ID.fullmatch(revision):
                commit = self._commit_by_prefix(repo, revision)
        return commit

    def _commit_by_prefix(self, repo: Repo, prefix: str) -> Commit | None:
        """The one commit whose id begins with `prefix`; None when none or several do."""
        commits = self._repo_dir(repo.type, repo.id) / "commits"
        matches = [path.stem for path in commits.glob(f"{prefix}*.json")]
        return self.get_commit(repo, matches[0]) if len(matches) == 1 else None

    def is_revision(self, repo: Repo, revision: str) -> bool:
        return self._find_commit(repo, revision) is not None

    def resolve(self, repo: Repo, revision: str) -> Commit:
        commit = self._find_commit(repo, revision)
        if commit is None:
            raise RevisionNotFound(revision)
        return commit

    def split_revision(self, repo: Repo, rest: str) -> tuple[str, str]:
        """Split `<revision>/<path>` where the revision may itself contain slashes (the client
        URL-quotes it, but the server sees the decoded path): the longest known ref wins,
        the whole of `rest` included (a tree listing's root: `tree/refs/pr/1`)."""
        parts = rest.split("/")
        for cut in range(len(parts), 0, -1):
            candidate = "/".join(parts[:cut])
            if self.is_revision(repo, candidate):
                return candidate, "/".join(parts[cut:])
        return parts[0], "/".join(parts[1:])

    def history(self, repo: Repo, commit: Commit) -> Iterator[Commit]:
        """First-parent history, newest first."""
        current: Commit | None = commit
        while current is not None:
            yield current
            current = self.get_commit(repo, current.parents[0]) if current.parents else None

    def commit(
        self,
        repo: Repo,
        branch: str,
        operations: Sequence[Operation],
        *,
        title: str,
        message: str = "",
        parent: str | None = None,
        author: str = "ainative",
        commit_id: str | None = None,
    ) -> Commit:
        """`commit_id` forces the new commit's id: for mirroring a public repo at the commit
        it has on the real Hub, so specs pinned to that commit work unchanged."""
        with self._lock:
            heads = _heads_holding(repo, branch)
            if heads is None:
                if branch in repo.tags or self.get_commit(repo, branch) is not None:
                    raise BadRequest(f"Can only commit to a branch; {branch!r} is not one")
                raise RevisionNotFound(branch)
            head = heads[branch]
            if parent is not None and parent != head:
                # The first sentence is the Hub's own, which clients match.
                raise StaleParent(
                    "The branch was updated since you opened this page. Please refresh and try "
                    f"again. A commit has happened since {parent} on branch {branch!r} (head is "
                    f"now {head}); nothing was written."
                )
            tree = dict(self.resolve(repo, head).tree)
            for kind, path, entry in operations:
                if kind == "add":
                    assert entry is not None
                    tree[check_path(path)] = entry
                elif kind == "delete" and path in tree:
                    del tree[path]
                else:
                    # A `deletedFile` naming a folder deletes the folder, as on the Hub.
                    prefix = path.strip("/") + "/"
                    doomed = [p for p in tree if p.startswith(prefix)]
                    if not doomed:
                        raise EntryNotFound(path, commit=head)
                    for p in doomed:
                        del tree[p]
            _check_no_file_folder_clash(tree)
            commit = self._write_commit(
                repo, (head,), tree, title, message, author=author, commit_id=commit_id
            )
            heads[branch] = commit.id
            self.save(repo)
            return commit

    def squash(self, repo: Repo, ref: str, title: str, *, author: str) -> Commit:
        """Replace a branch's (or PR's) history by one root commit holding its current tree."""
        with self._lock:
            heads = _heads_holding(repo, ref)
            if heads is None:
                raise RevisionNotFound(ref)
            tree = self.resolve(repo, heads[ref]).tree
            commit = self._write_commit(repo, (), tree, title, "", author=author)
            heads[ref] = commit.id
            self.save(repo)
            return commit

    def drop_files(self, repo: Repo, file_oids: set[str]) -> None:
        """Rewrite the history of every ref without the files whose git oid is listed, as the
        Hub's permanent deletion of LFS files does: commits that held none keep their id."""
        with self._lock:
            rewritten: dict[str, str] = {}
            for heads in (repo.branches, repo.pull_requests, repo.tags):
                for ref, head in heads.items():
                    heads[ref] = self._rewrite_without(repo, head, file_oids, rewritten)
            self.save(repo)

    def _rewrite_without(
        self, repo: Repo, head: str, file_oids: set[str], rewritten: dict[str, str]
    ) -> str:
        """`head`'s new id once its history is rewritten; `rewritten` maps old ids to new ones
        across refs, so shared history is rewritten once."""
        chain: list[Commit] = []
        current: str | None = head
        while current is not None and current not in rewritten:
            commit = self.resolve(repo, current)
            chain.append(commit)
            current = commit.parents[0] if commit.parents else None
        for commit in reversed(chain):  # oldest first: a parent's new id is known before use
            parents = tuple(rewritten.get(p, p) for p in commit.parents)
            tree = {p: e for p, e in commit.tree.items() if e.oid not in file_oids}
            if parents == commit.parents and len(tree) == len(commit.tree):
                rewritten[commit.id] = commit.id
                continue
            new = self._write_commit(
                repo, parents, tree, commit.title, commit.message, author=commit.author
            )
            rewritten[commit.id] = new.id
        return rewritten[head]

    # -- refs -------------------------------------------------------------------------------

    def create_branch(self, repo: Repo, branch: str, starting_point: str | None) -> None:
        _check_ref(branch)
        with self._lock:
            if branch in repo.branches:
                # The Hub's wording, which clients match.
                raise Conflict(f"Reference refs/heads/{branch} already exists")
            repo.branches[branch] = self.resolve(repo, starting_point or "main").id
            self.save(repo)

    def delete_branch(self, repo: Repo, branch: str) -> None:
        with self._lock:
            if branch == "main":
                raise BadRequest("Cannot delete refs/heads/main: it is the default branch")
            if repo.branches.pop(branch, None) is None:
                raise RevisionNotFound(branch)
            self.save(repo)

    def create_tag(self, repo: Repo, tag: str, revision: str) -> None:
        with self._lock:
            # As on the Hub, a missing revision is reported before a bad tag name.
            target = self.resolve(repo, revision).id
            _check_ref(tag)
            if tag in repo.tags:
                raise Conflict(f"Reference refs/tags/{tag} already exists")
            repo.tags[tag] = target
            self.save(repo)

    def delete_tag(self, repo: Repo, tag: str) -> None:
        with self._lock:
            if repo.tags.pop(tag, None) is None:
                raise RevisionNotFound(tag)
            self.save(repo)


def _heads_holding(repo: Repo, ref: str) -> dict[str, str] | None:
    """The table of movable heads (branches, pull requests) that holds `ref`, if any."""
    for heads in (repo.branches, repo.pull_requests):
        if ref in heads:
            return heads
    return None


def _check_ref(name: str) -> None:
    if not REF_NAME.fullmatch(name) or ".." in name or name.endswith(("/", ".lock")):
        raise BadRequest(f"Invalid ref name {name!r}")
    if COMMIT_ID.fullmatch(name):
        raise BadRequest(f"A ref name cannot look like a commit id: {name!r}")


def _check_no_file_folder_clash(tree: Mapping[str, FileEntry]) -> None:
    """Git cannot hold `a` as a file and `a/b` at once; refuse such a tree as the Hub does."""
    for path in tree:
        for parent in PurePosixPath(path).parents:
            if str(parent) != "." and str(parent) in tree:
                raise BadRequest(f"{path!r} would be inside {str(parent)!r}, which is a file")
