"""The only code in the runner that calls `huggingface_hub`: a small facade with retries,
idempotent helpers and errors that say which repo, file and operation failed, and what to
do. Tokens are redacted from every message it lets out."""

from __future__ import annotations

import math
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import (
    CommitInfo,
    CommitOperationAdd,
    CommitOperationDelete,
    HfApi,
    SpaceRuntime,
    Volume,
    constants,
    get_session,
    hf_hub_download,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.hf_api import RepoFile
from huggingface_hub.utils import build_hf_headers, filter_repo_objects, hf_raise_for_status

from runner.errors import InputError, RunnerError
from runner.hashing import git_blob_id, sha256_of
from runner.hub import session
from runner.hub.jobs import Job, JobFlavor, JobVolume, log_lines, sse_events
from runner.hub.redact import install_log_redaction, redact, register_secret
from runner.hub.retry import (
    ENV_TIMEOUT,
    Failure,
    GaveUp,
    RetryPolicy,
    Unreachable,
    gave_up,
    independent_requests,
    status_of,
    timed_out,
    unreachable_cause,
    with_retries,
)

RepoType = Literal["model", "dataset", "space"]
T = TypeVar("T")

DEFAULT_ENDPOINT = "https://huggingface.co"

# A trailer in each commit's description, unique to one call: how a retry recognises the
# commit an earlier attempt made when the Hub's answer to it was lost.
COMMIT_MARKER = "Runner-Commit-Id"

# The label by which a retried `run_job` finds the job an earlier attempt started.
LAUNCH_LABEL = "runner-launch"
# The Hub sends a keep-alive every 30 s on a job's streams: a longer silence is a dead stream.
JOB_STREAM_TIMEOUT_S = 120.0
# The Hub's answer to a metrics stream of a job that has finished.
JOB_OVER = 406

_WHAT_TO_DO = {
    403: "the token may not do this; use a token with write access to the repo's owner",
    404: "check the repo id and revision (the runner creates the repos it owns)",
    409: "it already exists; nothing was changed",
    412: "the branch moved since the parent commit; nothing was written, run again",
}


class HubError(RunnerError):
    """A Hub operation that failed: which one, on which repo and file, and what to do."""

    def __init__(
        self,
        operation: str,
        repo: str,
        detail: str,
        *,
        path: str | None = None,
        status: int | None = None,
    ) -> None:
        self.operation, self.repo, self.path, self.status = operation, repo, path, status
        super().__init__(redact(f"{_subject(operation, repo, path)}: {detail}"))


def _subject(operation: str, repo: str, path: str | None) -> str:
    return f"{operation} {repo}" + (f" ({path})" if path else "")


class HubSetupError(InputError):
    """The Hub cannot be used as set up: nothing answers at the endpoint, or it refuses the
    token (or wants one). No operation can succeed until the environment changes, so every
    verb ends here with exit 2, whatever it was doing."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(redact(message))


class NotFoundError(HubError):
    """The repo, revision or file does not exist (or is private and no token was given)."""


class GatedError(HubError):
    """The repo is gated and the token's account has not been granted access to its files."""


class StaleParentError(HubError):
    """The branch head moved after the parent commit was read; nothing was overwritten."""


# Organisation roles that may create and write repos (the Hub's "read" may not).
WRITING_ROLES = frozenset({"admin", "write", "contributor"})


@dataclass(frozen=True)
class Account:
    """Who the token is and what it may write, as the Hub's whoami says it."""

    name: str
    org_roles: dict[str, str]  # organisation -> the user's role in it
    token_role: str | None  # "read", "write" or "fineGrained"
    scoped_writes: frozenset[str]  # with a fine-grained token: namespaces it may write

    def can_write(self, namespace: str) -> bool:
        if self.token_role == "read":
            return False
        if self.token_role == "fineGrained":
            return namespace in self.scoped_writes
        return namespace == self.name or self.org_roles.get(namespace) in WRITING_ROLES


def _account(payload: dict[str, Any]) -> Account:
    token = (payload.get("auth") or {}).get("accessToken") or {}
    scoped = (token.get("fineGrained") or {}).get("scoped") or []
    return Account(
        name=str(payload.get("name")),
        org_roles={str(o.get("name")): str(o.get("roleInOrg")) for o in payload.get("orgs") or []},
        token_role=token.get("role"),
        scoped_writes=frozenset(
            str((scope.get("entity") or {}).get("name"))
            for scope in scoped
            if "repo.write" in (scope.get("permissions") or [])
        ),
    )


@dataclass(frozen=True)
class RepoRef:
    repo_id: str
    repo_type: RepoType = "model"

    def __str__(self) -> str:
        return self.repo_id if self.repo_type == "model" else f"{self.repo_type}s/{self.repo_id}"


# `hf auth login` writes one token line; anything bigger is not that file.
_STORED_TOKEN_LIMIT = 4096


def stored_token() -> str | None:
    """The token `hf auth login` saved, which huggingface_hub itself would send when HF_TOKEN
    is unset; None when there is none. Read here, not through `get_token()`, because that may
    exchange an OIDC token over the network."""
    path = Path(constants.HF_TOKEN_PATH)
    try:
        if not path.is_file() or path.stat().st_size > _STORED_TOKEN_LIMIT:
            return None
        return path.read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


class HubClient:
    def __init__(
        self,
        endpoint: str | None = None,
        token: str | None = None,
        retry: RetryPolicy | None = None,
        cache_dir: Path | None = None,
    ) -> None:
        self.endpoint = endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
        # An empty token means none: an empty Bearer header is not even valid HTTP.
        self._token = token or os.environ.get("HF_TOKEN") or stored_token()
        register_secret(self._token)
        install_log_redaction()
        self.retry = retry or RetryPolicy.from_env()
        session.install()
        self.cache_dir = cache_dir
        if not serves_xet(self.endpoint):
            constants.HF_HUB_DISABLE_XET = True
        self._api = HfApi(endpoint=self.endpoint, token=self._token)
        self._account: Account | None = None

    def __repr__(self) -> str:
        return f"HubClient(endpoint={self.endpoint!r}, token={'set' if self._token else 'unset'})"

    def environment(self) -> dict[str, str]:
        """`HF_ENDPOINT` and `HF_TOKEN` for a process that must reach the same Hub as this
        client (the local training subprocess, a Space's secret)."""
        env = {"HF_ENDPOINT": self.endpoint}
        if self._token:
            env["HF_TOKEN"] = self._token
        if not serves_xet(self.endpoint):
            env["HF_HUB_DISABLE_XET"] = "1"
        return env

    def _run(
        self,
        operation: str,
        repo: RepoRef | str,
        call: Callable[[], T],
        path: str | None = None,
        *,
        transfer: bool = False,
    ) -> T:
        """`call()` as one operation: retried within its budget and deadline (`transfer`:
        the generous one, for uploads and downloads), failing as one clear HubError."""
        try:
            host = urlsplit(self.endpoint).hostname
            return with_retries(call, self.retry, transfer=transfer, host=host)
        except Exception as error:
            raise self._failure(operation, repo, error, path) from None

    def _failure(
        self, operation: str, repo: RepoRef | str, error: Exception, path: str | None = None
    ) -> RunnerError:
        """The one error an operation that failed with `error` ends with."""
        setup = _setup_error(operation, str(repo), error, path, self)
        return setup or _hub_error(operation, str(repo), error, path, self.retry)

    @property
    def has_token(self) -> bool:
        return self._token is not None

    def require_token(self, verb: str) -> HubClient:
        """This client, once it has a token. Candidate repos are private, and the Hub answers
        an anonymous read of a private repo as if it did not exist: without a token a verb
        would report "needs training" or "no run" instead of the truth."""
        if self._token is None:
            raise HubSetupError(
                f"`runner {verb}` reads private repos or writes to the Hub at {self.endpoint} "
                "(the Hub shows a private repo to a request without a token as missing), and "
                "HF_TOKEN is not set: set it to an access token with write access to the repos "
                "adapter.yaml names"
            )
        return self

    def whoami(self) -> str:
        return self._run("whoami", self.endpoint, lambda: self._api.whoami()["name"])

    def account(self) -> Account:
        """Asked once per client: reconcile checks the rights of every adapter it acts on."""
        if self._account is None:
            self._account = _account(self._run("whoami", self.endpoint, self._api.whoami))
        return self._account

    def space_sdk(self, space: str) -> str | None:
        repo = RepoRef(space, "space")
        return self._run("read Space", repo, lambda: self._api.space_info(space).sdk)

    def space_secret_names(self, space: str) -> list[str]:
        """The names of the Space's secrets (the Hub never gives their values back)."""
        repo = RepoRef(space, "space")
        return sorted(
            self._run("read Space secrets", repo, lambda: self._api.get_space_secrets(space))
        )

    def ensure_repo(self, repo: RepoRef, *, private: bool = True) -> bool:
        """Create the repo unless it exists. True when this call created it: only then is a
        repo known to hold nothing of anybody else's."""
        try:
            self._run(
                "create repo",
                repo,
                lambda: self._api.create_repo(
                    repo.repo_id,
                    repo_type=repo.repo_type,
                    private=private,
                    exist_ok=False,
                    **({"space_sdk": "docker"} if repo.repo_type == "space" else {}),
                ),
            )
        except (HubError, HubSetupError) as error:
            if error.status == 409:  # it exists
                return False
            # A token that may write to the repo but not create repos in its namespace is
            # refused (401, 402 or 403) even when the repo is there: look, as `exist_ok` does.
            if error.status not in (401, 402, 403):
                raise
            try:
                self.head(repo)
            except (NotFoundError, HubSetupError):
                raise error from None
            return False
        return True

    def head(self, repo: RepoRef, revision: str = "main") -> str:
        info = self._run(
            "read repo",
            repo,
            lambda: self._api.repo_info(repo.repo_id, repo_type=repo.repo_type, revision=revision),
        )
        return str(info.sha)

    def check_read_access(self, repo: RepoRef, revision: str) -> bool:
        """Whether the repo is gated, once its files are known readable at `revision` with
        this token: NotFoundError, or GatedError for a gated repo whose terms this account has
        not accepted. The repo's info alone is not enough: the Hub shows it to anyone."""
        info = self._run(
            "read repo",
            repo,
            lambda: self._api.repo_info(repo.repo_id, repo_type=repo.repo_type, revision=revision),
        )
        self._run(
            "read files of",
            repo,
            lambda: self._api.auth_check(repo.repo_id, repo_type=repo.repo_type),
        )
        return bool(getattr(info, "gated", False))

    def commit(
        self,
        repo: RepoRef,
        files: Mapping[str, bytes | Path],
        message: str,
        *,
        parent_commit: str | None = None,
        delete: Iterable[str] = (),
        revision: str = "main",
    ) -> str:
        """One atomic commit; with `parent_commit`, it fails (StaleParentError) instead of
        overwriting a change made since."""
        operations: list[CommitOperationAdd | CommitOperationDelete] = [
            CommitOperationAdd(path_in_repo=path, path_or_fileobj=content)
            for path, content in files.items()
        ]
        operations += [CommitOperationDelete(path_in_repo=path) for path in delete]
        return self._commit_once(
            "commit to",
            repo,
            revision,
            lambda marker: self._api.create_commit(
                repo.repo_id,
                operations,
                commit_message=message,
                commit_description=marker,
                repo_type=repo.repo_type,
                revision=revision,
                parent_commit=parent_commit,
            ),
        )

    def _commit_once(
        self,
        operation: str,
        repo: RepoRef,
        revision: str,
        create: Callable[[str], CommitInfo],
    ) -> str:
        """The id of the commit `create(marker)` makes, made once even when the Hub's answer
        is lost (the commit landed, the reply did not): before each retry, and before a
        failure says nothing was written, the branch is searched for this call's marker, and
        a commit found is the result. Without this, a retry doubles the commit, or meets its
        own commit as a moved parent (412)."""
        marker = f"{COMMIT_MARKER}: {uuid.uuid4().hex}"
        attempts = 0

        def attempt() -> str:
            nonlocal attempts
            attempts += 1
            landed = self._find_commit(repo, revision, marker) if attempts > 1 else None
            return landed or str(create(marker).oid)

        try:
            return self._run(operation, repo, attempt, transfer=True)
        except HubError:
            landed = self._landed_commit(repo, revision, marker)
            if landed is None:
                raise
            return landed

    def _find_commit(self, repo: RepoRef, revision: str, marker: str) -> str | None:
        commits = self._api.list_repo_commits(
            repo.repo_id, repo_type=repo.repo_type, revision=revision
        )
        return next((c.commit_id for c in commits if marker in f"{c.title}\n{c.message}"), None)

    def _landed_commit(self, repo: RepoRef, revision: str, marker: str) -> str | None:
        """The commit carrying `marker` on `revision`, as its own operation; None when it is
        not there, or the Hub cannot say."""
        try:
            return self._run(
                "look for the commit on", repo, lambda: self._find_commit(repo, revision, marker)
            )
        except (HubError, HubSetupError):
            return None

    def sync_folder(
        self,
        repo: RepoRef,
        folder: Path,
        message: str,
        *,
        parent_commit: str | None = None,
        revision: str = "main",
    ) -> str:
        """Make the branch `revision` hold exactly `folder`: changed files uploaded, stray
        files deleted, in one commit; unchanged files are not sent again."""
        return self._commit_once(
            "sync folder to",
            repo,
            revision,
            lambda marker: self._api.upload_folder(
                repo_id=repo.repo_id,
                repo_type=repo.repo_type,
                folder_path=folder,
                commit_message=message,
                commit_description=marker,
                delete_patterns="*",
                parent_commit=parent_commit,
                revision=revision,
            ),
        )

    def create_branch(self, repo: RepoRef, branch: str, revision: str) -> str:
        """Create `branch` at the commit id `revision`, which it returns. A branch that exists
        already (another run made it) is left as it is: StaleParentError, so the caller
        looks again rather than trusting either."""
        try:
            self._run(
                "create branch on",
                repo,
                lambda: self._api.create_branch(
                    repo.repo_id, branch=branch, revision=revision, repo_type=repo.repo_type
                ),
            )
        except HubError as error:
            if error.status != 409:
                raise
            raise StaleParentError(
                "create branch on", str(repo), f"branch {branch} exists already"
            ) from None
        return revision

    def files_at(self, repo: RepoRef, revision: str = "main") -> dict[str, RepoFile]:
        """Path -> listing (blob id, size, LFS info) of every file at `revision`."""
        items = self._run(
            "list files of",
            repo,
            lambda: list(
                self._api.list_repo_tree(
                    repo.repo_id, repo_type=repo.repo_type, revision=revision, recursive=True
                )
            ),
        )
        return {item.path: item for item in items if isinstance(item, RepoFile)}

    def file_oids(self, repo: RepoRef, revision: str = "main") -> dict[str, str]:
        """Path -> git blob id of every file at `revision` (for an LFS file, its pointer's)."""
        return {path: item.blob_id for path, item in self.files_at(repo, revision).items()}

    def commit_holding(
        self, repo: RepoRef, files: Mapping[str, Path], revision: str = "main"
    ) -> str | None:
        """The commit at `revision` if it holds every one of `files` (path in repo -> local
        file) with the same content, else None (also when the repo or revision is missing)."""
        try:
            head = self.head(repo, revision)
            remote = self.files_at(repo, revision=head)
        except NotFoundError:
            return None
        same = all(
            path in remote and holds_same_bytes(remote[path], local)
            for path, local in files.items()
        )
        return head if same else None

    def refs(self, repo: RepoRef) -> Refs:
        """Branches and tags, name -> commit id, in one request."""
        refs = self._run(
            "list refs of",
            repo,
            lambda: self._api.list_repo_refs(repo.repo_id, repo_type=repo.repo_type),
        )
        return Refs(
            {ref.name: ref.target_commit for ref in refs.branches},
            {ref.name: ref.target_commit for ref in refs.tags},
        )

    def tags(self, repo: RepoRef) -> dict[str, str]:
        """Tag name -> commit id."""
        return self.refs(repo).tags

    def tag_if_absent(self, repo: RepoRef, tag: str, revision: str) -> bool:
        """Create `tag` at `revision`; False if it already points there. A tag pointing
        elsewhere is never moved: that is an error."""
        existing = self.tags(repo)
        if tag in existing:
            if existing[tag] == revision:
                return False
            raise HubError(
                "tag",
                str(repo),
                f"tag {tag} already points at {existing[tag]}, not "
                f"{revision}; tags are never moved: bump the version instead",
            )
        self._run(
            "tag",
            repo,
            lambda: self._api.create_tag(
                repo.repo_id, tag=tag, revision=revision, repo_type=repo.repo_type
            ),
        )
        return True

    def download(self, repo: RepoRef, filename: str, revision: str = "main") -> Path:
        return Path(
            self._run(
                "download from",
                repo,
                lambda: hf_hub_download(
                    repo.repo_id,
                    filename,
                    repo_type=repo.repo_type,
                    revision=revision,
                    endpoint=self.endpoint,
                    token=self._token,
                    cache_dir=self.cache_dir,
                ),
                path=filename,
                transfer=True,
            )
        )

    def snapshot(
        self, repo: RepoRef, revision: str = "main", allow_patterns: list[str] | None = None
    ) -> Path:
        """The files of `repo@revision` (those matching `allow_patterns`) in the local cache;
        returns the snapshot folder. One listing at the resolved commit, then one download
        per file, each retried within its own budget: a flaky Hub costs a retry of one file,
        never the whole snapshot, and nothing falls back to a partial cached copy."""
        commit = self.head(repo, revision)
        names = sorted(
            filter_repo_objects(self.file_oids(repo, commit), allow_patterns=allow_patterns)
        )
        if not names:
            raise NotFoundError(
                "download",
                str(repo),
                f"no file at {revision} matches {allow_patterns}; check the repo and revision",
            )
        for name in names:
            local = self.download(repo, name, revision=commit)
        # hf_hub_download puts `a/b.txt` at `<snapshot folder>/a/b.txt`.
        return local.parents[len(PurePosixPath(name).parts) - 1]

    # -- Spaces -------------------------------------------------------------------------------

    def set_space_secret(self, space: str, key: str, value: str) -> None:
        register_secret(value)
        self._run(
            "set secret on",
            RepoRef(space, "space"),
            lambda: self._api.add_space_secret(space, key, value),
            path=key,
        )

    def set_space_variable(self, space: str, key: str, value: str) -> None:
        self._run(
            "set variable on",
            RepoRef(space, "space"),
            lambda: self._api.add_space_variable(space, key, value),
            path=key,
        )

    def request_space_hardware(
        self, space: str, hardware: str, *, sleep_time: int | None = None
    ) -> None:
        self._run(
            "request hardware for",
            RepoRef(space, "space"),
            lambda: self._api.request_space_hardware(space, hardware, sleep_time=sleep_time),  # type: ignore[arg-type]
        )

    def space_runtime(self, space: str) -> SpaceState:
        runtime = self._run(
            "read runtime of", RepoRef(space, "space"), lambda: self._api.get_space_runtime(space)
        )
        return _space_state(runtime)

    def restart_space(self, space: str) -> SpaceState:
        runtime = self._run(
            "restart", RepoRef(space, "space"), lambda: self._api.restart_space(space)
        )
        return _space_state(runtime)

    def pause_space(self, space: str) -> SpaceState:
        runtime = self._run("pause", RepoRef(space, "space"), lambda: self._api.pause_space(space))
        return _space_state(runtime)

    def space_log_tail(self, space: str, *, build: bool = False, lines: int = 20) -> list[str]:
        """The last `lines` lines the Space's build or run printed so far, redacted."""
        kind = "build" if build else "run"
        log = self._run(
            f"read {kind} logs of",
            RepoRef(space, "space"),
            lambda: list(self._api.fetch_space_logs(space, build=build)),
        )
        return [redact(line.rstrip("\n")) for line in log[-lines:]]

    def follow_space_log(self, space: str) -> Iterator[str]:
        """Run log lines as the app prints them, until the stream ends (the app exited or
        the Space restarted). Not retried: a dropped stream just ends. It lasts as long as
        the run, so no operation's deadline applies; its silences are still timed."""
        with independent_requests():
            for line in self._api.fetch_space_logs(space, follow=True):
                yield redact(line.rstrip("\n"))

    # -- Jobs ---------------------------------------------------------------------------------

    def run_job(
        self,
        namespace: str,
        *,
        image: str,
        command: list[str],
        env: Mapping[str, str],
        secrets: Mapping[str, str],
        flavor: str,
        timeout_s: int,
        labels: Mapping[str, str],
        volumes: Iterable[JobVolume] = (),
    ) -> Job:
        """Start one job, once even when the Hub's answer is lost: each call labels its job
        with a launch id of its own, and a retry first looks for a job carrying it."""
        for value in secrets.values():
            register_secret(value)
        launch = {LAUNCH_LABEL: uuid.uuid4().hex}
        mounts = [
            Volume(type=kind, source=repo_id, revision=revision, mount_path=mount)
            for kind, repo_id, revision, mount in volumes
        ]
        attempts = 0

        def attempt() -> Job:
            nonlocal attempts
            attempts += 1
            landed = self._jobs_labelled(namespace, launch) if attempts > 1 else []
            if landed:
                return landed[0]
            info = self._api.run_job(
                image=image,
                command=command,
                env=dict(env),
                secrets=dict(secrets) or None,
                flavor=flavor,
                timeout=timeout_s,
                labels={**labels, **launch},
                volumes=mounts or None,
                namespace=namespace,
            )
            return Job.from_info(info)

        try:
            return self._run("run a job in", namespace, attempt)
        except HubError:
            landed = self._landed_job(namespace, launch)
            if landed is None:
                raise
            return landed

    def _jobs_labelled(self, namespace: str, labels: Mapping[str, str]) -> list[Job]:
        jobs = (
            Job.from_info(i) for i in self._api.list_jobs(labels=dict(labels), namespace=namespace)
        )
        # The Hub filters by label; checked again here because a launch depends on it.
        return [job for job in jobs if job.has_labels(dict(labels))]

    def _landed_job(self, namespace: str, launch: Mapping[str, str]) -> Job | None:
        """The job a failed `run_job` started after all; None when there is none, or the Hub
        cannot say."""
        try:
            landed = self._run(
                "look for the job in", namespace, lambda: self._jobs_labelled(namespace, launch)
            )
        except (HubError, HubSetupError):
            return None
        return landed[0] if landed else None

    def find_jobs(self, namespace: str, labels: Mapping[str, str]) -> list[Job]:
        """The namespace's jobs whose labels include all of `labels`, in any stage."""
        return self._run("list jobs in", namespace, lambda: self._jobs_labelled(namespace, labels))

    def job(self, namespace: str, job_id: str) -> Job:
        info = self._run(
            "inspect job",
            f"{namespace}/{job_id}",
            lambda: self._api.inspect_job(job_id=job_id, namespace=namespace),
        )
        return Job.from_info(info)

    def cancel_job(self, namespace: str, job_id: str) -> None:
        self._run(
            "cancel job",
            f"{namespace}/{job_id}",
            lambda: self._api.cancel_job(job_id=job_id, namespace=namespace),
        )

    def job_flavors(self) -> list[JobFlavor]:
        hardware = self._run("list job hardware of", self.endpoint, self._api.list_jobs_hardware)
        return [JobFlavor.from_hardware(info) for info in hardware]

    def job_log_lines(
        self, namespace: str, job_id: str, *, read_timeout_s: float = JOB_STREAM_TIMEOUT_S
    ) -> Iterator[str]:
        """The job's log from its first line, following new lines until the stream ends: the
        job finished, or the stream dropped (long runs drop it) or stayed silent past
        `read_timeout_s`. The caller reconnects while the job runs; lines come back from
        the start, so it skips those it has. Redacted."""
        events = self._job_stream(namespace, job_id, "logs", read_timeout_s)
        for line in log_lines(events):
            yield redact(line)

    def job_metrics(
        self, namespace: str, job_id: str, *, read_timeout_s: float = JOB_STREAM_TIMEOUT_S
    ) -> Iterator[dict[str, Any]]:
        """Samples of the job's CPU, memory and GPU use (one a second while it runs), until
        the stream ends or drops, as `job_log_lines`; nothing once the job has finished."""
        return self._job_stream(namespace, job_id, "metrics", read_timeout_s)

    def _job_stream(
        self, namespace: str, job_id: str, route: str, read_timeout_s: float
    ) -> Iterator[dict[str, Any]]:
        """One connection to a job's event stream. Not retried: it lasts as long as the job,
        so no operation's deadline applies; each of its silences is timed."""
        url = f"{self.endpoint}/api/jobs/{namespace}/{job_id}/{route}"
        headers = build_hf_headers(token=self._token or False)
        with independent_requests():
            try:
                with get_session().stream(
                    "GET", url, headers=headers, timeout=read_timeout_s
                ) as response:
                    if response.status_code == JOB_OVER:
                        return
                    if response.status_code >= 400:
                        response.read()
                        hf_raise_for_status(response)
                    yield from sse_events(response.iter_lines())
            except HfHubHTTPError as error:
                raise self._failure(
                    f"read {route} of job", f"{namespace}/{job_id}", error
                ) from None
            except (httpx2.TransportError, httpx2.DecodingError):
                return  # dropped, or silent too long: the caller decides whether to reconnect


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def serves_xet(endpoint: str) -> bool:
    """huggingface_hub uploads through Xet whenever hf_xet is installed, without asking the
    server. The local Hub emulator (it only listens on a loopback address) has no Xet storage,
    so against it the client is told to take the LFS batch API, which the emulator serves."""
    return urlsplit(endpoint).hostname not in LOOPBACK_HOSTS


def holds_same_bytes(remote: RepoFile, local: Path) -> bool:
    """An LFS file's blob id is the sha1 of its LFS pointer, never of the bytes: such a file
    is compared by the sha256 the listing gives, a regular one by its git blob id."""
    if remote.lfs is not None:
        return remote.lfs.sha256 == sha256_of(local)
    return remote.blob_id == git_blob_id(local)


@dataclass(frozen=True)
class Refs:
    branches: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class SpaceState:
    """A Space's runtime as the runner needs it: stage, error message and hardware."""

    stage: str
    error: str | None
    hardware: str | None


def _space_state(runtime: SpaceRuntime) -> SpaceState:
    raw = runtime.raw or {}
    return SpaceState(str(runtime.stage), raw.get("errorMessage"), runtime.hardware)


def _setup_error(
    operation: str, repo: str, error: Exception, path: str | None, client: HubClient
) -> HubSetupError | None:
    """The error when no operation can work with this endpoint and token; None otherwise."""
    cause = unreachable_cause(error)
    if cause is not None:
        return HubSetupError(_unreachable(client.endpoint, cause))
    # An anonymous read of a private (or missing) repo is a 401 too: that one is not found.
    if status_of(error) != 401 or isinstance(error, RepositoryNotFoundError):
        return None
    server = getattr(error, "server_message", None) or ""
    answer = f"HTTP 401{': ' + server.rstrip('.') if server else ''}"
    if client.has_token:
        problem = f"the Hub at {client.endpoint} rejected the token ({answer})"
        fix = "set HF_TOKEN to a valid access token with write access"
    else:
        problem = f"the Hub at {client.endpoint} needs a token for this ({answer})"
        fix = "no token is set: set HF_TOKEN to an access token with write access"
    return HubSetupError(f"{_subject(operation, repo, path)}: {problem}; {fix}", status=401)


_UNREACHABLE_WHY: dict[Unreachable, str] = {
    "refused": "connection refused (nothing listens there)",
    "unresolvable": "the host name {host} does not resolve",
}


def _unreachable(endpoint: str, cause: Unreachable) -> str:
    why = _UNREACHABLE_WHY[cause].format(host=urlsplit(endpoint).hostname or endpoint)
    local = "start the local Hub (`runner hub serve`) and set HF_ENDPOINT to its address"
    if endpoint.rstrip("/") == DEFAULT_ENDPOINT:
        fix = f"check the network, or offline, {local}"
    else:
        fix = f"{local}, or unset HF_ENDPOINT to use {DEFAULT_ENDPOINT}"
    return f"cannot reach the Hub at {endpoint}: {why}; {fix}"


def _hub_error(
    operation: str, repo: str, error: Exception, path: str | None, policy: RetryPolicy
) -> HubError:
    status = status_of(error)
    server = getattr(error, "server_message", None) or ""
    stopped = gave_up(error)
    if isinstance(error, GatedRepoError):  # a RepositoryNotFoundError too: tested first
        detail = f"gated (HTTP {status}): this account has not been granted access"
        return GatedError(
            operation, repo, _with_request_id(detail, error), path=path, status=status
        )
    # LocalEntryNotFoundError is a download that could not reach the Hub: not a missing file.
    if isinstance(
        error, RepositoryNotFoundError | RevisionNotFoundError | RemoteEntryNotFoundError
    ):
        detail = "not found; check the repo id, revision and path (a private repo needs HF_TOKEN)"
        return NotFoundError(
            operation, repo, _with_request_id(detail, error), path=path, status=status
        )
    if stopped is not None and stopped.reason != "attempts":
        detail = _out_of_time(stopped)
    elif status is None:
        detail = _unanswered(error, stopped, policy)
    elif status in _WHAT_TO_DO:
        detail = f"HTTP {status}{': ' + server if server else ''}; {_WHAT_TO_DO[status]}"
    elif status >= 500 or status == 429:
        detail = (
            f"the Hub kept failing (HTTP {status}) after retries; nothing partial was "
            "written, try again later"
        )
    else:
        detail = f"HTTP {status}: {server or str(error).splitlines()[0]}"
    kind = StaleParentError if status == 412 else HubError
    return kind(operation, repo, _with_request_id(detail, error), path=path, status=status)


def _with_request_id(detail: str, error: Exception) -> str:
    """The Hub's id for the failed request (the last one, after retries), when it sent one:
    what HF support asks for."""
    stopped = gave_up(error)
    last = stopped.last if stopped is not None else None
    request_id = getattr(error, "request_id", None) or (last.request_id if last else None)
    return f"{detail} (request id: {request_id})" if request_id else detail


def _unanswered(error: Exception, stopped: GaveUp | None, policy: RetryPolicy) -> str:
    """No HTTP status came back: the Hub was silent past the timeout, or not there at all."""
    last = stopped.last if stopped is not None else None
    cause = str(last) if last is not None else type(error).__name__
    silent = last.timed_out if last is not None else timed_out(error)
    if silent:
        return (
            f"the Hub did not answer within {policy.timeout:g} s ({cause}), after retries; "
            f"check HF_ENDPOINT and the network, then run again ({ENV_TIMEOUT} sets the wait)"
        )
    return (
        f"the Hub could not be reached ({cause}); check HF_ENDPOINT and the network, then run again"
    )


def _out_of_time(stopped: GaveUp) -> str:
    last = stopped.last
    if stopped.reason == "wait" and last is not None and last.wait is not None:
        return _past_deadline(stopped, last, last.wait)
    knob = stopped.env_var
    tries = (
        f" ({stopped.failures} failed attempts, the last: {stopped.last})" if stopped.last else ""
    )
    return (
        f"no result within {stopped.limit:g} s{tries}; the Hub is slow or not answering: try "
        f"again later ({knob} sets the time allowed)"
    )


def _past_deadline(stopped: GaveUp, last: Failure, wait: float) -> str:
    """A wait the Hub asked for (`last`'s) that ends after the operation's deadline: when it
    ends, and the setting that would let the runner wait it out."""
    ends = time.strftime("%H:%M:%S UTC", time.gmtime(stopped.at + wait))
    if last.window is not None:
        asked = (
            f"the Hub's rate limit for {last.window.resource_type} is spent and resets in "
            f"{last.window.reset_in_seconds} s, at {ends}"
        )
    else:
        asked = f"the Hub asks to wait {wait:g} s, until {ends}"
    return (
        f"rate limited (HTTP {stopped.status}): {asked}, past this operation's deadline "
        f"({stopped.max_wait} s left of {stopped.limit:g} s); try again after {ends}, or set "
        f"{stopped.env_var} above {math.ceil(stopped.limit - stopped.max_wait + wait)} "
        "to wait it out"
    )


def cached_file(repo_id: str, filename: str, revision: str) -> str | None:
    """A file of `repo_id@revision` if the local Hugging Face cache already holds it; never
    touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, filename, revision=revision)
    return found if isinstance(found, str) else None
