"""The run config: everything `train.py` needs for one candidate run, rendered from the specs."""

from __future__ import annotations

import json
from typing import Any

from runner.data.publish import PushedDataset
from runner.runs.location import candidate_location
from runner.runs.run_id import generation_settings
from runner.specs.bundle import AdapterBundle


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
