"""The merged form: the adapter folded into the weights of the base it was trained on
(`merge_and_unload`), generated with train.py's own greedy path, for the parity check.

A QLoRA adapter was trained against the 4-bit base: its base is loaded 4-bit as training
loaded it, then dequantized to the compute dtype before merging. Merging into the 4-bit
weights themselves re-quantizes the sum, and merging into the base reloaded in full precision
adds the adapter to weights it never saw: either way the merged model is not the one PEFT
computed with, which is how a QLoRA adapter that scores in PEFT answers differently once
merged and served. Needs the `train` extra (torch, peft); both load only when called."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.train.train import (
    GenerationSettings,
    TrainingSettings,
    compute_dtype,
    generate_rows,
    load_base_model,
    load_tokenizer,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel

MERGED_ROLE = "merged"


def merged_outputs(
    model_dir: Path,
    adapter_dir: Path,
    training: TrainingSettings,
    items: list[dict[str, Any]],
    generation: GenerationSettings,
) -> dict[str, str]:
    """item_id -> the merged model's greedy output, same batches and settings as the eval."""
    tokenizer = load_tokenizer(model_dir)
    model = merged_model(model_dir, adapter_dir, training)
    rows = generate_rows(model, tokenizer, items, generation, MERGED_ROLE)
    release(model)
    return {row["item_id"]: row["output"] for row in rows}


def release(model: PreTrainedModel) -> None:
    """Give the merged model's memory back before the engine starts beside this process: on a
    GPU, torch's allocator keeps freed blocks for itself until asked."""
    import torch

    model.to("meta")
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def merged_model(model_dir: Path, adapter_dir: Path, training: TrainingSettings) -> PreTrainedModel:
    """The base as training loaded it (dequantized for QLoRA) with the adapter merged in."""
    from peft import PeftModel

    base = load_base_model(model_dir, training)
    if training.method == "qlora":
        base = base.dequantize(dtype=compute_dtype(training))
    return PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
