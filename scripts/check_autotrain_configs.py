"""Check the rendered AutoTrain configs against AutoTrain 0.8.36's own parser.

AutoTrain is never installed with the runner, so this runs in two halves (`make
autotrain-check` runs both):

  render OUT  (the runner's venv) renders every example adapter as if its engine were
              `autotrain`. Settings AutoTrain cannot honour are reported, then turned off so
              that the config can still be rendered; writes OUT/<adapter>.yaml and
              OUT/manifest.json.
  parse OUT   (a throwaway venv with autotrain-advanced==0.8.36) feeds each YAML file to
              `autotrain.parser.AutoTrainConfigParser`, builds `LLMTrainingParams` from what
              it parsed (no training, no data munging), and checks that every parameter we
              emit arrives unchanged and none is ignored. It also imports the autotrain
              Space app under AutoTrain's huggingface_hub. It imports nothing from `runner`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import sys
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
CHECK_RUN_ID = "0123456789abcdef"  # any 16-hex id: the parser only sees it in project_name
CHECK_USERNAME = "ainative"
CHECK_REVISION = "0" * 40
CHECK_TOKEN = "token-from-the-environment"
APP_TEMPLATE = REPO_ROOT / "runner" / "space" / "autotrain_app_template.py"


# -- render (runner venv) ---------------------------------------------------------------------


def render(out: Path) -> int:
    from runner.engines.autotrain import (
        autotrain_compatible,
        autotrain_config_yaml,
        render_autotrain_config,
    )
    from runner.errors import SpecError
    from runner.specs.load import require_adapter
    from runner.workspace import Workspace

    def as_autotrain(bundle: Any) -> Any:
        training = bundle.adapter.training.model_copy(update={"engine": "autotrain"})
        adapter = bundle.adapter.model_copy(update={"training": training})
        return dataclasses.replace(bundle, adapter=adapter)

    def config_of(bundle: Any) -> dict[str, Any]:
        return render_autotrain_config(
            bundle,
            run_id=CHECK_RUN_ID,
            username=CHECK_USERNAME,
            dataset_repo=bundle.dataset.hub_repo,
            dataset_revision=CHECK_REVISION,
        )

    out.mkdir(parents=True, exist_ok=True)
    workspace = Workspace.at(REPO_ROOT)
    manifest = []
    for directory in workspace.list_adapter_dirs():
        bundle = as_autotrain(require_adapter(workspace, directory))
        entry: dict[str, Any] = {"adapter": bundle.path, "findings": [], "changes": []}
        try:
            config = config_of(bundle)
        except SpecError as error:
            entry["findings"] = [str(finding) for finding in error.findings]
            training, entry["changes"] = autotrain_compatible(bundle.training)
            config = config_of(dataclasses.replace(bundle, training=training))
        config_file = out / f"{directory.name}.yaml"
        config_file.write_text(autotrain_config_yaml(config), encoding="utf-8")
        entry.update(config_file=config_file.name, params=config["params"])
        manifest.append(entry)
        print(f"rendered {config_file}")
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return 0


# -- parse (throwaway AutoTrain venv) ---------------------------------------------------------


def versions() -> str:
    import autotrain
    import pydantic
    import torch
    import transformers

    cuda = torch.version.cuda
    if cuda is not None:
        raise SystemExit(f"torch {torch.__version__} is a CUDA build ({cuda}); expected CPU-only")
    return (
        f"autotrain-advanced {autotrain.__version__}, pydantic {pydantic.VERSION}, "
        f"transformers {transformers.__version__}, torch {torch.__version__} (no CUDA)"
    )


def parse_one(config_file: Path, expected: dict[str, Any]) -> list[str]:
    """Problems found building LLMTrainingParams from `config_file` the way `autotrain
    --config` does; empty when it is accepted as rendered."""
    from autotrain.parser import AutoTrainConfigParser
    from autotrain.trainers.clm.params import LLMTrainingParams

    parser = AutoTrainConfigParser(str(config_file))
    params = parser.task_param_map[parser.task](**parser.parsed_config)
    problems = []
    if parser.task != "lm_training" or not isinstance(params, LLMTrainingParams):
        problems.append(f"task {parser.task!r} did not build LLMTrainingParams")
    if params.trainer != "sft":
        problems.append(f"trainer is {params.trainer!r}, expected 'sft'")
    if parser.backend != "local":
        problems.append(f"backend is {parser.backend!r}, expected 'local'")
    unused = sorted(set(parser.parsed_config) - set(LLMTrainingParams.model_fields))
    problems += [f"{key}: not a parameter of LLMTrainingParams (ignored)" for key in unused]
    problems += [
        f"params.{key}: sent {value!r}, AutoTrain holds {getattr(params, key)!r}"
        for key, value in expected.items()
        if getattr(params, key, object()) != value
    ]
    if params.token != CHECK_TOKEN:
        problems.append("hub.token did not resolve from $HF_TOKEN")
    if params.valid_split is not None or not params.push_to_hub:
        problems.append("valid_split must be null and push_to_hub true")
    return problems


def check_app_imports() -> str:
    """The autotrain Space app must import under AutoTrain's huggingface_hub (0.27)."""
    import huggingface_hub

    spec = importlib.util.spec_from_file_location("autotrain_app", APP_TEMPLATE)
    assert spec is not None
    assert spec.loader is not None
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return f"app.py template imports under huggingface_hub {huggingface_hub.__version__}"


def report_entry(out: Path, entry: dict[str, Any]) -> bool:
    print(f"\n== {entry['adapter']}")
    if entry["findings"]:
        count = len(entry["findings"])
        print(f"  runner's strict AutoTrain model: REJECTED as written ({count} setting(s)):")
        for finding in entry["findings"]:
            print(f"    {finding}")
        print("  parser input below is rendered with these settings turned off:")
        for change in entry["changes"]:
            print(f"    {change}")
    else:
        print("  runner's strict AutoTrain model: accepted as written")
    problems = parse_one(out / entry["config_file"], entry["params"])
    for problem in problems:
        print(f"  AutoTrainConfigParser: PROBLEM {problem}")
    if not problems:
        print(
            f"  AutoTrainConfigParser({entry['config_file']}): accepted; LLMTrainingParams "
            f"(trainer sft) holds all {len(entry['params'])} params as sent, none ignored"
        )
    return not problems


def parse(out: Path) -> int:
    os.environ["HF_TOKEN"] = CHECK_TOKEN  # what `${HF_TOKEN}` must resolve to
    print(f"AutoTrain parser check: {versions()}")
    print(check_app_imports())
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    results = [report_entry(out, entry) for entry in manifest]
    accepted = sum(results)
    print(f"\n{accepted} of {len(results)} rendered configs accepted by AutoTrain's parser")
    return 0 if all(results) else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", choices=["render", "parse"])
    parser.add_argument("out", type=Path, help="folder for the rendered configs")
    args = parser.parse_args()
    return render(args.out) if args.mode == "render" else parse(args.out)


if __name__ == "__main__":
    sys.exit(main())
