"""The `trl` engine (default): train.py, TRL SFTTrainer + peft, which trains and then
generates the eval outputs in the same run."""

from __future__ import annotations

from runner.findings import Finding
from runner.space import image
from runner.space.render import SpaceApp, dockerfile
from runner.specs.bundle import AdapterBundle
from runner.train.train import ADAPTER_FILES, RunConfig


class TrlEngine:
    name = "trl"
    space_app = SpaceApp(
        template="app_template.py",
        dockerfile=dockerfile(image.BASE_IMAGE, *image.TRAINING_INSTALLS),
    )
    required_files = (
        *ADAPTER_FILES,
        "eval_outputs.jsonl",
        "metrics.json",
        "run.json",
    )
    makes_eval_outputs = True

    def space_variables(
        self, bundle: AdapterBundle, config: RunConfig, space_id: str
    ) -> dict[str, str]:
        return {}  # train.py reads the run config alone

    def spec_findings(self, bundle: AdapterBundle) -> list[Finding]:
        return []  # the specs' own schema is train.py's


TRL = TrlEngine()
