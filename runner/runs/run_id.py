"""Run ids: the same training inputs give the same id, so a candidate is trained once.

Only what changes the trained weights or the eval outputs goes in: the training config,
the task, the base model and its revision, the engine, the data files' bytes, the
generation settings and the training script itself. Thresholds, descriptions and the
publish target are left out: changing them re-gates a candidate, it does not retrain it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from runner.hashing import sha256_of
from runner.policy.memory import FLAVORS, processes_on
from runner.repofiles import declared_file
from runner.specs.bundle import AdapterBundle
from runner.train.train import Parallel

TRAIN_SCRIPT = Path(__file__).parent.parent / "train" / "train.py"


def generation_settings(bundle: AdapterBundle) -> dict[str, Any]:
    """Greedy settings and the number of eval items: part of the run id and the run config."""
    return {
        **bundle.evaluation.generation.model_dump(mode="json"),
        "max_items": bundle.evaluation.max_items,
    }


def parallel_of(bundle: AdapterBundle) -> Parallel | None:
    """One process per GPU of the flavor when the spec asks to spread training over them."""
    training = bundle.adapter.training
    if training.distributed is None or training.flavor is None:
        return None
    processes = processes_on(FLAVORS.get(training.flavor), training.distributed)
    return Parallel(training.distributed, processes)


def script_version() -> str:
    """The training script's own content hash: editing the script retrains."""
    return sha256_of(TRAIN_SCRIPT)[:16] if TRAIN_SCRIPT.is_file() else "missing"


@dataclass(frozen=True)
class RunInputs:
    task: str
    base_model: str
    base_revision: str
    engine: str
    training: dict[str, Any]
    generation: dict[str, Any]
    data_sha256: dict[str, str]
    script_version: str
    parallel: Parallel | None
    """The processes change the global batch, so the trained weights."""

    @property
    def run_id(self) -> str:
        canonical = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def run_inputs(bundle: AdapterBundle, repo_root: Path) -> RunInputs:
    files = bundle.dataset.files
    return RunInputs(
        task=bundle.adapter.task,
        base_model=bundle.adapter.base_model.id,
        base_revision=bundle.adapter.base_model.revision,
        engine=bundle.adapter.training.engine,
        training=bundle.training.model_dump(mode="json"),
        generation=generation_settings(bundle),
        data_sha256={
            split: sha256_of(declared_file(repo_root, getattr(files, split).path))
            for split in ("train", "eval")
        },
        script_version=script_version(),
        parallel=parallel_of(bundle),
    )


def run_id(bundle: AdapterBundle, repo_root: Path) -> str:
    return run_inputs(bundle, repo_root).run_id
