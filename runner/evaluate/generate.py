"""Eval outputs generated on this machine, with train.py's own generation code (the same
greedy, batched, left-padded path a run uses): for `runner eval --generate-locally` and for
candidates whose engine generated none (AutoTrain). Needs the `train` extra (torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.evaluate.records import eval_records
from runner.hub.client import HubClient, RepoRef
from runner.runs.config import run_generation_settings, training_settings
from runner.runs.incumbent import find_incumbent
from runner.specs.bundle import AdapterBundle
from runner.train.train import ADAPTER_FILES


@dataclass(frozen=True)
class Generated:
    outputs: Path
    peak_memory_bytes: int | None


def generate_outputs(
    bundle: AdapterBundle,
    repo_root: Path,
    client: HubClient,
    adapter_folder: Path,
    out_dir: Path,
) -> Generated:
    """Candidate, base and (when promoted) incumbent outputs into `out_dir`."""
    from peft import PeftModel

    from runner.train import train as script

    base = bundle.adapter.base_model
    model_dir = client.snapshot(
        RepoRef(base.id), revision=base.revision, allow_patterns=script.MODEL_FILES
    )
    training = training_settings(bundle)
    tokenizer = script.load_tokenizer(model_dir)
    model = PeftModel.from_pretrained(script.load_base_model(model_dir, training), adapter_folder)
    incumbent = find_incumbent(bundle, client)
    incumbent_dir = None
    if incumbent is not None:
        incumbent_dir = client.snapshot(
            RepoRef(incumbent.repo_id),
            revision=incumbent.revision,
            allow_patterns=list(ADAPTER_FILES),
        )
    items = script.eval_items(eval_records(bundle, repo_root), None)
    with script.PeakMemory() as memory:
        rows = script.generate_all_roles(
            model, tokenizer, items, run_generation_settings(bundle), incumbent_dir
        )
    outputs = out_dir / "eval_outputs.jsonl"
    script.write_jsonl(outputs, rows)
    return Generated(outputs, memory.peak["bytes"])
