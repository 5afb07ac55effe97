"""Promotion: one atomic commit to the publish repo (adapter files, the model card and a
promotion record), then the tag `v<N>`. Safe to run again at any point:

- `promotion.json` on `main` written for another adapter name: a conflict, nothing written
  (one publish repo belongs to one adapter name; the other's card stays);
- the tag already there for this run: nothing to do;
- the tag there for another run: a conflict, reported, never moved;
- a newer version's tag there: refused, so `main` never moves back to an older version;
- the commit made but the tag missing (a crash between the two): the commit is tagged, not
  made again, because `promotion.json` on `main` names this run;
- otherwise the commit goes in with `parent_commit`, so a concurrent change fails it
  instead of being overwritten.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.errors import RunnerError
from runner.evaluate.report import EvalReport
from runner.hub.client import HubClient, NotFoundError, RepoRef
from runner.promote.card import Provenance, render_model_card
from runner.runs.versions import newest_version_tag, version_tag
from runner.specs.bundle import AdapterBundle
from runner.train.train import ADAPTER_FILES
from runner.workspace import split_adapter_dirname

RECORD = "promotion.json"


class PromotionConflict(RunnerError):
    """The version's tag exists with other content (tags are never moved), or the publish
    repo holds another adapter's promotion."""


class PromotionSuperseded(RunnerError):
    """A newer version is promoted: promoting this one would move `main` backwards."""


@dataclass(frozen=True)
class Promotion:
    repo_id: str
    tag: str
    commit: str
    created: bool
    """False when the version was already promoted (nothing was written)."""


def superseded_message(tag: str) -> str:
    return f"{tag} is promoted; an older version is never promoted over it"


def promotion_record(bundle: AdapterBundle, provenance: Provenance) -> dict[str, Any]:
    return {
        "adapter": bundle.dirname,
        "version": bundle.adapter.version,
        "run_id": provenance.run_id,
        "git_commit": provenance.git_commit,
        "pr_number": provenance.pr_number,
        "runner_version": provenance.runner_version,
    }


def read_record(client: HubClient, repo: RepoRef, revision: str) -> dict[str, Any] | None:
    """The promotion record at `revision`, or None when there is none."""
    try:
        path = client.download(repo, RECORD, revision=revision)
    except NotFoundError:
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def promote(
    client: HubClient,
    bundle: AdapterBundle,
    adapter_folder: Path,
    report: EvalReport,
    provenance: Provenance,
    *,
    dataset_commit: str | None = None,
) -> Promotion:
    if not report.passed:
        raise RunnerError(
            f"{bundle.dirname}: run {report.run_id} failed its gate; it is never promoted "
            "(change the spec or the data, and train a new candidate)"
        )
    repo = RepoRef(bundle.adapter.publish.repo_id)
    tag = version_tag(bundle.adapter.version)
    client.ensure_repo(repo, private=bundle.adapter.publish.private)
    head = client.head(repo)
    found = read_record(client, repo, head)
    _refuse_another_adapters_repo(repo, found, bundle)
    tags = client.tags(repo)
    if tag in tags:
        return _already_tagged(client, repo, tag, tags[tag], provenance)
    _refuse_moving_main_back(repo, tags, bundle)
    if (
        found is not None
        and found.get("run_id") == provenance.run_id
        and (found.get("version") == bundle.adapter.version)
    ):
        commit = head  # committed by a run that died before tagging
    else:
        commit = client.commit(
            repo,
            promotion_files(bundle, adapter_folder, report, provenance, dataset_commit),
            f"Promote {bundle.dirname} (run {provenance.run_id})",
            parent_commit=head,
        )
    client.tag_if_absent(repo, tag, commit)
    return Promotion(repo.repo_id, tag, commit, created=True)


def _refuse_another_adapters_repo(
    repo: RepoRef, record: dict[str, Any] | None, bundle: AdapterBundle
) -> None:
    """The record on `main` says which adapter the repo belongs to: promoting another name
    over it would replace that adapter's card and weights."""
    promoted = record.get("adapter") if record is not None else None
    parsed = split_adapter_dirname(promoted) if isinstance(promoted, str) else None
    if parsed is None or parsed[0] == bundle.adapter.name:
        return
    raise PromotionConflict(
        f"{repo.repo_id} holds adapter {parsed[0]!r} ({promoted} is promoted there), not "
        f"{bundle.adapter.name!r}; one publish repo belongs to one adapter name, so nothing was "
        f"committed or tagged. Give {bundle.dirname} its own publish.repo_id, or make it the "
        f"next version of {parsed[0]}."
    )


def _refuse_moving_main_back(repo: RepoRef, tags: dict[str, str], bundle: AdapterBundle) -> None:
    """Reconcile never plans it, but the Hub may have changed since it looked (another run
    promoted a newer version meanwhile): checked again right before the commit."""
    newer = newest_version_tag(tags, above=bundle.adapter.version)
    if newer is None:
        return
    raise PromotionSuperseded(
        f"{bundle.dirname}: {repo.repo_id}@{superseded_message(newer)} (main would move "
        "backwards), so nothing was committed or tagged; this version stays superseded"
    )


def promotion_files(
    bundle: AdapterBundle,
    adapter_folder: Path,
    report: EvalReport,
    provenance: Provenance,
    dataset_commit: str | None,
) -> dict[str, bytes | Path]:
    card = render_model_card(bundle, report, provenance, dataset_commit=dataset_commit)
    record = promotion_record(bundle, provenance)
    files: dict[str, bytes | Path] = {name: adapter_folder / name for name in ADAPTER_FILES}
    files["README.md"] = card.encode("utf-8")
    files[RECORD] = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")
    return files


def _already_tagged(
    client: HubClient, repo: RepoRef, tag: str, commit: str, provenance: Provenance
) -> Promotion:
    record = read_record(client, repo, commit) or {}
    if record.get("run_id") != provenance.run_id:
        raise PromotionConflict(
            f"{repo.repo_id}@{tag} already holds run {record.get('run_id', 'unknown')}, not "
            f"{provenance.run_id}; a promoted version is never overwritten and tags are never "
            "moved: bump the version in a new adapter directory"
        )
    return Promotion(repo.repo_id, tag, commit, created=False)
