"""The training + generation script (`runner/train/train.py`), on the tiny random Llama:
what it learns, QLoRA gradients on a CPU, reloading its adapter, packing, and whole runs as a
subprocess against the local Hub emulator, succeeded and failed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import HfApi, hf_hub_download
from peft import LoraConfig, PeftModel, get_peft_model, get_peft_model_state_dict
from peft import set_peft_model_state_dict as load_lora_weights
from transformers import AutoModelForCausalLM

from runner.hub.seed import seed_emulator
from runner.hub.tiny_llama import TINY_REPO_ID
from runner.train import train as script

SCRIPT = Path(script.__file__)
SYSTEM = "Reply with one JSON object with the keys answer and citations."
TOPICS = ["history", "principles", "symbols", "food", "colors", "gifts", "music", "dance"]
ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
TOKEN = "hf_emulatorSecretToken1234"
OUTPUT_REPO = "ainative/kwanzaa-mini-lora"
ROLES = ("candidate", "base", "incumbent")


def chat_record(index: int) -> dict[str, Any]:
    """A chat whose answer is always `{"answer": ..., "citations": [...]}`."""
    topic = TOPICS[index % len(TOPICS)]
    answer = {"answer": f"It is about {topic}.", "citations": [f"kw-{index % 7:02d}"]}
    return {
        "id": f"item-{index:03d}",
        "category": "strict_format" if index % 2 else "citation_required",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"Question {index}: tell me about {topic}."},
            {"role": "assistant", "content": json.dumps(answer)},
        ],
    }


TRAIN = [chat_record(i) for i in range(40)]
HELD_OUT = [chat_record(i) for i in range(100, 108)]


def training_config(**overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "method": "lora",
        "r": 8,
        "lora_alpha": 16,
        "lora_dropout": 0.0,
        "target_modules": ATTENTION,
        "modules_to_save": ["lm_head"],  # a random base needs it (DESIGN: known traps)
        "quantization": None,
        "num_train_epochs": 1,
        "max_steps": 150,
        "learning_rate": 5e-3,
        "lr_scheduler_type": "constant",
        "warmup_ratio": 0.0,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
        "optim": "adamw_torch",
        "weight_decay": 0.0,
        "max_grad_norm": 1.0,
        "max_seq_length": 256,
        "packing": False,
        "assistant_only_loss": True,
        "gradient_checkpointing": False,
        "seed": 42,
    }
    return config | overrides


def training_settings(**overrides: Any) -> script.TrainingSettings:
    """`training_config` as the script's functions take it."""
    return script.parse(script.TrainingSettings, training_config(**overrides))


QLORA = {
    "load_in_4bit": True,
    "bnb_4bit_quant_type": "nf4",
    "bnb_4bit_use_double_quant": True,
    "bnb_4bit_compute_dtype": "bfloat16",
}
GENERATION = script.GenerationSettings(max_new_tokens=40, batch_size=4, max_items=None)


@pytest.fixture(scope="module")
def trained(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One in-process LoRA run of the script's own functions, shared by the tests below."""
    work = tmp_path_factory.mktemp("lora-run")
    training = training_settings()
    tokenizer = script.load_tokenizer(tiny_folder)
    model = script.attach_lora(script.load_base_model(tiny_folder, training), training)
    metrics = script.train_adapter(
        model, tokenizer, TRAIN, training, work / "trainer", save_to=work / "trainer" / "saved"
    )
    adapter_dir = work / "adapter"
    base = script.ModelRef(TINY_REPO_ID, "main")
    saved = script.save_adapter(work / "trainer" / "saved", adapter_dir, base)
    items = script.eval_items(HELD_OUT, None)
    rows = script.generate_all_roles(model, tokenizer, items, GENERATION, None)
    return {"metrics": metrics, "adapter_dir": adapter_dir, "saved": saved, "rows": rows}


def by_role(rows: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["role"] == role]


def parses_as_answer(text: str) -> bool:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return False
    return (
        isinstance(value, dict)
        and set(value) == {"answer", "citations"}
        and isinstance(value["citations"], list)
    )


def test_lora_run_learns_a_fixed_json_shape(trained: dict[str, Any]) -> None:
    candidate = by_role(trained["rows"], "candidate")
    assert [row["item_id"] for row in candidate] == [r["id"] for r in HELD_OUT]
    assert all(parses_as_answer(row["output"]) for row in candidate), candidate
    # The random base model does not produce the shape: the adapter learned it.
    assert not any(parses_as_answer(row["output"]) for row in by_role(trained["rows"], "base"))
    losses = [step["loss"] for step in trained["metrics"]["loss_history"]]
    assert len(losses) == 150
    assert losses[-1] < losses[0] / 10
    assert trained["metrics"]["train_tokens_per_s"] > 0


def test_eval_rows_have_the_documented_fields(trained: dict[str, Any]) -> None:
    rows = trained["rows"]
    assert len(rows) == 2 * len(HELD_OUT)
    keys = {"item_id", "category", "prompt_sha256", "role", "output"}
    keys |= {"latency_ms", "prompt_tokens", "output_tokens"}
    assert all(set(row) == keys for row in rows)
    # The same prompt hash for the same item in every role; the answer is not part of it.
    hashes = {(row["item_id"], row["prompt_sha256"]) for row in rows}
    assert len(hashes) == len(HELD_OUT)
    assert all(0 < row["output_tokens"] <= GENERATION.max_new_tokens for row in rows)
    assert all(row["prompt_tokens"] > 10 and row["latency_ms"] > 0 for row in rows)


def without_latency(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k != "latency_ms"} for row in rows]


def test_reloaded_adapter_reproduces_the_candidate_outputs(
    trained: dict[str, Any], tiny_folder: Path
) -> None:
    names = {path.name for path in trained["saved"]}
    assert names == {"adapter_config.json", "adapter_model.safetensors"}
    saved_config = json.loads((trained["adapter_dir"] / "adapter_config.json").read_text())
    assert saved_config["base_model_name_or_path"] == TINY_REPO_ID
    base = script.load_base_model(tiny_folder, training_settings())
    model = PeftModel.from_pretrained(base, trained["adapter_dir"])
    tokenizer = script.load_tokenizer(tiny_folder)
    items = script.eval_items(HELD_OUT, None)
    rows = script.generate_rows(model, tokenizer, items, GENERATION, "candidate")
    assert without_latency(rows) == without_latency(by_role(trained["rows"], "candidate"))


def test_base_rows_are_the_base_model_without_the_adapter(
    trained: dict[str, Any], tiny_folder: Path
) -> None:
    base = script.load_base_model(tiny_folder, training_settings())
    tokenizer = script.load_tokenizer(tiny_folder)
    items = script.eval_items(HELD_OUT, None)
    rows = script.generate_rows(base, tokenizer, items, GENERATION, "base")
    assert without_latency(rows) == without_latency(by_role(trained["rows"], "base"))


def test_a_config_with_missing_or_unknown_keys_is_rejected_by_name() -> None:
    config = {
        "run_id": "0123456789abcdef",
        "adapter": "kwanzaa-mini-v1",
        "task": "citation_grounded_chat",
        "base_model": {"repo_id": TINY_REPO_ID, "revision": "main"},
        "dataset": {"repo_id": "d", "revision": "r", "train_file": "t", "eval_file": "e"},
        "training": training_config(),
        "generation": script.to_json(GENERATION),
        "incumbent": None,
        "parallel": None,
        "output": {"repo_id": OUTPUT_REPO, "repo_type": "model", "path_in_repo": "c/x"},
    }
    assert script.to_json(script.parse_run_config(config)) == config
    config["training"] = training_config(lora_dropuot=0.1)
    del config["generation"]
    with pytest.raises(ValueError, match="lora_dropuot: unknown key") as raised:
        script.parse_run_config(config)
    assert "generation: missing" in str(raised.value)


def first_step_loss(tiny_folder: Path, tmp_path: Path, **overrides: Any) -> float:
    training = training_settings(max_steps=1, learning_rate=1e-4, **overrides)
    tokenizer = script.load_tokenizer(tiny_folder)
    model = script.attach_lora(script.load_base_model(tiny_folder, training), training)
    metrics = script.train_adapter(model, tokenizer, TRAIN[:24], training, tmp_path)
    return metrics["loss_history"][0]["loss"]


def test_packing_keeps_examples_apart(tiny_folder: Path, tmp_path: Path) -> None:
    """All 24 examples in one batch, padded or packed into one sequence: the same loss, so no
    example attends to another inside a pack."""
    padded = first_step_loss(tiny_folder, tmp_path / "a", per_device_train_batch_size=24)
    packed = first_step_loss(
        tiny_folder,
        tmp_path / "b",
        packing=True,
        max_seq_length=4096,
        per_device_train_batch_size=8,
    )
    assert packed == pytest.approx(padded, rel=1e-4)


def cpu_four_bit_unavailable() -> str | None:
    """Why this bitsandbytes build cannot quantize to 4 bit on this CPU, or None when it can:
    the probe alone may skip the QLoRA test, so a regression in the script fails it."""
    import bitsandbytes as bnb

    try:
        packed, state = bnb.functional.quantize_4bit(torch.ones(64, 64), quant_type="nf4")
        bnb.functional.dequantize_4bit(packed, state)
    except Exception as error:  # no CPU 4-bit in this bitsandbytes build, however it says so
        return f"{type(error).__name__}: {error}"
    return None


def four_bit_lora(tiny_folder: Path) -> tuple[PeftModel, dict[str, torch.Tensor]]:
    """The tiny model loaded in 4 bit by the script, with LoRA on every projection, and the
    dequantized weights of its 4-bit layers."""
    import bitsandbytes as bnb

    unavailable = cpu_four_bit_unavailable()
    if unavailable:
        pytest.skip(f"bitsandbytes 4-bit on CPU is unavailable: {unavailable}")
    training = training_settings(
        method="qlora",
        quantization=QLORA,
        modules_to_save=[],
        target_modules=[*ATTENTION, "gate_proj", "up_proj", "down_proj"],
    )
    model = script.load_base_model(tiny_folder, training)
    dequantized = {
        name: bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state).float()
        for name, module in model.named_modules()
        if isinstance(module, bnb.nn.Linear4bit)
    }
    assert len(dequantized) == 14
    peft_model = script.attach_lora(model, training)
    generator = torch.Generator().manual_seed(0)
    for name, param in peft_model.named_parameters():
        if "lora_B" in name:  # B starts at zero, which would make every A gradient zero
            param.data = torch.randn(param.shape, generator=generator) * 0.1
    return peft_model, dequantized


def fp32_twin(tiny_folder: Path, quantized: PeftModel, weights: dict[str, torch.Tensor]) -> Any:
    """An fp32 copy whose base weights are the dequantized 4-bit ones, with the same LoRA."""
    model = AutoModelForCausalLM.from_pretrained(tiny_folder, dtype=torch.float32)
    for name, weight in weights.items():
        model.get_submodule(name).weight.data.copy_(weight)
    config = quantized.peft_config["default"]
    twin = get_peft_model(
        model,
        LoraConfig(
            r=config.r,
            lora_alpha=config.lora_alpha,
            lora_dropout=0.0,
            target_modules=config.target_modules,
        ),
    )
    load_lora_weights(twin, get_peft_model_state_dict(quantized))
    return twin


def lora_gradients(model: Any, input_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    model.train()
    model.zero_grad()
    model(input_ids=input_ids, labels=input_ids).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if "lora_" in n}


def test_qlora_on_cpu_trains_with_correct_gradients(tiny_folder: Path) -> None:
    quantized, weights = four_bit_lora(tiny_folder)
    reference = fp32_twin(tiny_folder, quantized, weights)
    input_ids = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(1))
    expected = lora_gradients(reference, input_ids)
    assert len(expected) == 28
    assert all(g.abs().sum() > 0 for g in expected.values())

    def assert_matches(actual: dict[str, torch.Tensor]) -> None:
        assert actual.keys() == expected.keys()
        for name, gradient in expected.items():
            torch.testing.assert_close(actual[name], gradient, rtol=1e-4, atol=1e-6, msg=name)

    assert_matches(lora_gradients(quantized, input_ids))
    # An eval forward (as when generating) must not change what training computes after it:
    # bitsandbytes' avx512_bf16 path would repack the 4-bit weights here (DESIGN: traps).
    quantized.eval()
    with torch.no_grad():
        quantized(input_ids=input_ids)
    assert_matches(lora_gradients(quantized, input_ids))


# -- whole runs against the Hub emulator --------------------------------------------------------


def jsonl_bytes(records: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in records).encode()


def save_incumbent(tiny_folder: Path, dest: Path) -> Path:
    """An (untrained) adapter of the tiny model, as a promoted version would hold it."""
    model = AutoModelForCausalLM.from_pretrained(tiny_folder)
    get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj"])).save_pretrained(dest)
    return dest


@pytest.fixture
def seeded(hub: Any, model_cache: Path, tiny_folder: Path, tmp_path: Path) -> dict[str, Any]:
    """The tiny model, a small dataset and an incumbent adapter (tag v1) in the emulator."""
    base = seed_emulator(hub, model_cache, [TINY_REPO_ID])[TINY_REPO_ID]
    data = {"train.jsonl": jsonl_bytes(TRAIN[:16]), "eval.jsonl": jsonl_bytes(HELD_OUT[:5])}
    revision = hub.seed("ainative/kwanzaa-mini-data", data, repo_type="dataset")
    incumbent = save_incumbent(tiny_folder, tmp_path / "incumbent")
    files = {p.name: p for p in incumbent.iterdir() if p.name != "README.md"}
    hub.seed("ainative/kwanzaa-mini", files, tag="v1")
    return {"base_revision": base, "data_revision": revision}


def run_config(seeded: dict[str, Any], run_id: str, **dataset: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "adapter": "kwanzaa-mini-v1",
        "task": "citation_grounded_chat",
        "base_model": {"repo_id": TINY_REPO_ID, "revision": seeded["base_revision"]},
        "dataset": {
            "repo_id": "ainative/kwanzaa-mini-data",
            "revision": seeded["data_revision"],
            "train_file": "train.jsonl",
            "eval_file": "eval.jsonl",
        }
        | dataset,
        "training": training_config(
            max_steps=5,
            packing=True,
            gradient_checkpointing=True,
            optim="paged_adamw_8bit",
            lr_scheduler_type="cosine",
            warmup_ratio=0.1,
        ),
        "generation": {"max_new_tokens": 12, "batch_size": 2, "max_items": 3},
        "incumbent": {"repo_id": "ainative/kwanzaa-mini", "revision": "v1"},
        "parallel": None,
        "output": {
            "repo_id": OUTPUT_REPO,
            "repo_type": "model",
            "path_in_repo": f"candidates/{run_id}",
        },
    }


def run_script(
    hub: Any,
    tmp_path: Path,
    args: list[str],
    extra_env: dict[str, str] | None = None,
    launcher: Sequence[str] = (),
) -> subprocess.CompletedProcess[str]:
    """train.py in a subprocess, under `launcher` (python's arguments before the script)."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(tmp_path),
        "HF_ENDPOINT": hub.endpoint,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf-home"),
        "HF_HUB_DISABLE_TELEMETRY": "1",
        **(extra_env or {}),
    }
    return subprocess.run(
        [sys.executable, *launcher, str(SCRIPT), *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def fetch(hub: Any, path: str, tmp_path: Path) -> Path:
    return Path(
        hf_hub_download(
            OUTPUT_REPO, path, endpoint=hub.endpoint, token=TOKEN, cache_dir=tmp_path / "fetch"
        )
    )


def assert_one_candidate_pushed(hub: Any, prefix: str) -> None:
    """The candidate's five files under `prefix`, pushed by one process in three commits: the
    repo's first, the trained adapter kept at once, then the results."""
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    files = {f for f in api.list_repo_files(OUTPUT_REPO) if f.startswith(f"{prefix}/")}
    expected = {"adapter_model.safetensors", "adapter_config.json", "eval_outputs.jsonl"}
    assert {f"{prefix}/{name}" for name in expected | {"metrics.json", "run.json"}} == files
    assert len(api.list_repo_commits(OUTPUT_REPO)) == 3


def test_end_to_end_run_pushes_the_candidate_to_the_hub(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    config = run_config(seeded, "0123456789abcdef")
    (tmp_path / "run.json").write_text(json.dumps(config))
    result = run_script(hub, tmp_path, ["--config", "run.json", "--output-dir", "out"])
    assert result.returncode == 0, result.stderr[-4000:]

    prefix = "candidates/0123456789abcdef"
    assert_one_candidate_pushed(hub, prefix)

    record = json.loads(fetch(hub, f"{prefix}/run.json", tmp_path).read_text())
    assert (record["status"], record["error"]) == ("succeeded", None)
    assert (record["run_id"], record["config"]) == ("0123456789abcdef", config)
    assert TOKEN not in json.dumps(record)

    rows = [
        json.loads(line) for line in fetch(hub, f"{prefix}/eval_outputs.jsonl", tmp_path).open()
    ]
    items = [r["id"] for r in HELD_OUT[:3]]  # max_items: 3
    outputs = {role: [row["output"] for row in by_role(rows, role)] for role in ROLES}
    for role in ROLES:
        assert [row["item_id"] for row in by_role(rows, role)] == items
    # The incumbent's LoRA is untrained (B = 0): it answers like the base model, and the
    # candidate (which trained lm_head) does not.
    assert outputs["incumbent"] == outputs["base"] != outputs["candidate"]

    metrics = json.loads(fetch(hub, f"{prefix}/metrics.json", tmp_path).read_text())
    assert len(metrics["training"]["loss_history"]) == 5
    assert metrics["training"]["optimizer"]["used"] == "adamw_torch"
    assert "paged_adamw_8bit" in metrics["training"]["optimizer"]["note"]
    assert metrics["peak_memory"]["kind"] == "rss"
    assert metrics["peak_memory"]["bytes"] > 0
    assert {"download", "load", "train", "save", "generate"} <= set(metrics["durations_s"])
    assert all(metrics["versions"][name] for name in ("torch", "transformers", "peft", "trl"))


def test_failed_run_still_uploads_run_json_and_exits_nonzero(
    hub: Any, seeded: dict[str, Any], tmp_path: Path
) -> None:
    config = run_config(seeded, "fedcba9876543210", revision="0" * 40)
    result = run_script(
        hub,
        tmp_path,
        [],  # the config comes from RUN_CONFIG, as in a Space
        {"RUN_CONFIG": json.dumps(config), "RUN_OUTPUT_DIR": str(tmp_path / "out")},
    )
    assert result.returncode == 1, result.stderr[-4000:]

    prefix = "candidates/fedcba9876543210"
    record = json.loads(fetch(hub, f"{prefix}/run.json", tmp_path).read_text())
    assert record["status"] == "failed"
    assert record["error"]["stage"] == "download"
    assert record["error"]["type"]
    assert "0000000000" in record["error"]["message"]
    assert record["finished_at"] >= record["started_at"]
    assert TOKEN not in json.dumps(record)
    assert (tmp_path / "out" / "run.json").is_file()
