"""Eval outputs generated on this machine, with train.py's own generation code (the same
greedy, batched, left-padded path a run uses): for `runner eval --generate-locally` and for
candidates whose engine generated none (AutoTrain). Needs the `train` extra (torch)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runner.hub.client import HubClient, RepoRef
from runner.runs.incumbent import find_incumbent
from runner.runs.location import ADAPTER_FILES
from runner.runs.run_id import generation_settings
from runner.specs.bundle import AdapterBundle


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

    from runner.evaluate.pipeline import eval_records
    from runner.train import train as script

    base = bundle.adapter.base_model
    model_dir = client.snapshot(
        RepoRef(base.id), revision=base.revision, allow_patterns=script.MODEL_FILES
    )
    training = bundle.training.model_dump(mode="json")
    tokenizer = script.load_tokenizer(model_dir)
    model = PeftModel.from_pretrained(script.load_base_model(model_dir, training), adapter_folder)
    incumbent = find_incumbent(bundle, client)
    incumbent_dir = None
    if incumbent is not None:
        incumbent_dir = client.snapshot(
            RepoRef(incumbent["repo_id"]),
            revision=incumbent["revision"],
            allow_patterns=list(ADAPTER_FILES),
        )
    items = script.eval_items(eval_records(bundle, repo_root), None)
    with script.PeakMemory() as memory:
        rows = script.generate_all_roles(
            model, tokenizer, items, generation_settings(bundle), incumbent_dir
        )
    outputs = out_dir / "eval_outputs.jsonl"
    script.write_jsonl(outputs, rows)
    return Generated(outputs, memory.peak["bytes"])
