"""The run config: everything `train.py` needs for one candidate run, rendered from the specs,
and where that candidate lives on the Hub.

Candidates go to a private model repo next to the publish repo, `<publish repo>-candidates`,
under `runs/<run id>/`: never to the publish repo itself, whose content only promotion
writes. A run id names exactly one candidate, so re-running the same inputs finds it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from runner.data.publish import PushedDataset
from runner.hub.client import HubClient, NotFoundError, RepoRef
from runner.specs.bundle import AdapterBundle

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
_VERSION_TAG = re.compile(r"v(\d+)")


@dataclass(frozen=True)
class CandidateLocation:
    repo_id: str
    run_id: str

    @property
    def repo(self) -> RepoRef:
        return RepoRef(self.repo_id, "model")

    @property
    def path(self) -> str:
        return f"runs/{self.run_id}"

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def __str__(self) -> str:
        return f"{self.repo_id}/{self.path}"


def candidate_location(bundle: AdapterBundle, run_id: str) -> CandidateLocation:
    return CandidateLocation(bundle.adapter.publish.candidates_repo_id, run_id)


def generation_settings(bundle: AdapterBundle) -> dict[str, Any]:
    """Greedy settings and the number of eval items: part of the run id and the run config."""
    return {
        **bundle.evaluation.generation.model_dump(mode="json"),
        "max_items": bundle.evaluation.max_items,
    }


def find_incumbent(bundle: AdapterBundle, client: HubClient) -> dict[str, str] | None:
    """The promoted version this one must not fall behind: the highest `v<N>` tag below this
    version on the publish repo, or None when nothing is promoted yet."""
    repo = RepoRef(bundle.adapter.publish.repo_id)
    try:
        tags = client.tags(repo)
    except NotFoundError:
        return None
    promoted = {
        int(match.group(1)): commit
        for tag, commit in tags.items()
        if (match := _VERSION_TAG.fullmatch(tag)) and int(match.group(1)) < bundle.adapter.version
    }
    if not promoted:
        return None
    return {"repo_id": repo.repo_id, "revision": promoted[max(promoted)]}


def render_run_config(
    bundle: AdapterBundle,
    *,
    run_id: str,
    dataset: PushedDataset,
    incumbent: dict[str, str] | None,
) -> dict[str, Any]:
    """The JSON object `train.py` reads (see its CONFIG_KEYS)."""
    files = bundle.dataset.files
    location = candidate_location(bundle, run_id)
    return {
        "run_id": run_id,
        "adapter": bundle.dirname,
        "task": bundle.adapter.task,
        "base_model": {
            "repo_id": bundle.adapter.base_model.id,
            "revision": bundle.adapter.base_model.revision,
        },
        "dataset": {
            "repo_id": dataset.repo_id,
            "revision": dataset.commit,
            "train_file": dataset.path_of(files.train.path),
            "eval_file": dataset.path_of(files.eval.path),
        },
        "training": bundle.training.model_dump(mode="json"),
        "generation": generation_settings(bundle),
        "incumbent": incumbent,
        "output": {
            "repo_id": location.repo_id,
            "repo_type": "model",
            "path_in_repo": location.path,
        },
    }


def dumps(config: dict[str, Any]) -> str:
    """Canonical JSON text of a run config (what the Space gets as `RUN_CONFIG`)."""
    return json.dumps(config, sort_keys=True, separators=(",", ":"))
