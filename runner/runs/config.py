"""The run config: everything `train.py` needs for one candidate run, rendered from the specs."""

from __future__ import annotations

import json

from runner.data.publish import PushedDataset
from runner.runs.location import candidate_location
from runner.runs.run_id import generation_settings, parallel_of
from runner.specs.bundle import AdapterBundle
from runner.train.train import (
    DatasetRef,
    GenerationSettings,
    ModelRef,
    OutputRef,
    RunConfig,
    TrainingSettings,
    parse,
    to_json,
)


def render_run_config(
    bundle: AdapterBundle,
    *,
    run_id: str,
    dataset: PushedDataset,
    incumbent: ModelRef | None,
) -> RunConfig:
    """The run config `train.py` reads."""
    files = bundle.dataset.files
    location = candidate_location(bundle, run_id)
    return RunConfig(
        run_id=run_id,
        adapter=bundle.dirname,
        task=bundle.adapter.task,
        base_model=ModelRef(bundle.adapter.base_model.id, bundle.adapter.base_model.revision),
        dataset=DatasetRef(
            repo_id=dataset.repo_id,
            revision=dataset.commit,
            train_file=dataset.path_of(files.train.path),
            eval_file=dataset.path_of(files.eval.path),
        ),
        training=training_settings(bundle),
        generation=run_generation_settings(bundle),
        incumbent=incumbent,
        output=OutputRef(location.repo_id, "model", location.path),
        parallel=parallel_of(bundle),
    )


def training_settings(bundle: AdapterBundle) -> TrainingSettings:
    """The resolved qlora.yaml, as train.py's functions take it."""
    return parse(TrainingSettings, bundle.training.model_dump(mode="json"))


def run_generation_settings(bundle: AdapterBundle) -> GenerationSettings:
    """The generation settings of the run id, as train.py's functions take them."""
    return parse(GenerationSettings, generation_settings(bundle))


def dumps(config: RunConfig) -> str:
    """Canonical JSON text of a run config (what the Space gets as `RUN_CONFIG`)."""
    return json.dumps(to_json(config), sort_keys=True, separators=(",", ":"))
