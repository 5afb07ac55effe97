"""The merged form of an adapter (`merge_and_unload` on its base, dequantized for QLoRA)
answers as the PEFT model the eval scored, on the tiny random Llama, greedy, fp32 on a CPU;
and a wrong merge shows as different answers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModelForCausalLM

from runner.serving.merged import merged_outputs
from runner.train import train as script
from tests.test_train_script import (
    ATTENTION,
    QLORA,
    chat_record,
    cpu_four_bit_unavailable,
    training_settings,
)

ITEMS = script.eval_items([chat_record(i) for i in range(200, 206)], None)
GENERATION = script.GenerationSettings(max_new_tokens=24, batch_size=4, max_items=None)
LORA = training_settings(modules_to_save=[], target_modules=[*ATTENTION, "up_proj"])
QLORA_TRAINING = training_settings(
    method="qlora", quantization=QLORA, modules_to_save=[], target_modules=LORA.target_modules
)


def save_random_lora(tiny_folder: Path, dest: Path, seed: int) -> Path:
    """A LoRA whose B is not zero (`init_lora_weights=False`), so it changes the outputs."""
    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(tiny_folder, dtype=torch.float32)
    config = LoraConfig(
        r=LORA.r,
        lora_alpha=LORA.lora_alpha,
        target_modules=list(LORA.target_modules),
        init_lora_weights=False,
    )
    get_peft_model(base, config).save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def adapters(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("adapters")
    return [save_random_lora(tiny_folder, folder / f"lora-{seed}", seed) for seed in (1, 2)]


def outputs_of(model: torch.nn.Module, tiny_folder: Path) -> dict[str, str]:
    tokenizer = script.load_tokenizer(tiny_folder)
    rows = script.generate_rows(model, tokenizer, ITEMS, GENERATION, "candidate")
    return {row["item_id"]: row["output"] for row in rows}


def peft_outputs(
    tiny_folder: Path, adapter_dir: Path, training: script.TrainingSettings
) -> dict[str, str]:
    """What the eval scores: train.py's base (4-bit for QLoRA) with the adapter attached."""
    base = script.load_base_model(tiny_folder, training)
    return outputs_of(PeftModel.from_pretrained(base, adapter_dir), tiny_folder)


def test_merged_lora_answers_exactly_as_peft(tiny_folder: Path, adapters: list[Path]) -> None:
    expected = peft_outputs(tiny_folder, adapters[0], LORA)
    merged = merged_outputs(tiny_folder, adapters[0], LORA, ITEMS, GENERATION)
    assert merged == expected
    base = outputs_of(script.load_base_model(tiny_folder, LORA), tiny_folder)
    assert base != expected  # the adapter changes the answers: the comparison has teeth


def test_merging_another_adapter_shows_as_different_answers(
    tiny_folder: Path, adapters: list[Path]
) -> None:
    expected = peft_outputs(tiny_folder, adapters[0], LORA)
    wrong = merged_outputs(tiny_folder, adapters[1], LORA, ITEMS, GENERATION)
    assert wrong.keys() == expected.keys()
    assert [item for item in expected if wrong[item] != expected[item]]


def test_merged_qlora_answers_as_its_4bit_peft_model(
    tiny_folder: Path, adapters: list[Path]
) -> None:
    unavailable = cpu_four_bit_unavailable()
    if unavailable:
        pytest.skip(f"bitsandbytes 4-bit on CPU is unavailable: {unavailable}")
    expected = peft_outputs(tiny_folder, adapters[0], QLORA_TRAINING)
    merged = merged_outputs(tiny_folder, adapters[0], QLORA_TRAINING, ITEMS, GENERATION)
    assert merged == expected
