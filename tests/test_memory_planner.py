"""The memory planner: `runner validate` and `runner plan` say how much memory a run needs,
and validate refuses hardware that cannot hold it, naming one that can.

The estimates are compared with published figures. Each source gives one number per model
size for an unstated (small) batch and sequence, so the reference run here is the smallest
sensible one: batch 1, 1024 tokens, gradient checkpointing, r 16 on the attention projections,
paged 8-bit AdamW (the qlora.yaml defaults otherwise). The bands are wide on purpose (0.5x to
1.5x): the sources disagree with each other by that much.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from runner.policy.memory import ARCHITECTURES, FLAVORS, estimate_memory
from runner.specs.training import QuantizationSettings, TrainingSpec
from tests.conftest import RunCli, edit

# LLaMA-Factory README, "Hardware Requirement" (estimated; github.com/hiyouga/LLaMA-Factory):
# LoRA (16 bit) 7B 16 GB, 70B 160 GB, `x`B 2x GB; QLoRA (4 bit) 7B 6 GB, 70B 48 GB, `x`B x/2 GB.
LLAMA_FACTORY_LORA_GB = {"7B": 16, "70B": 160}
LLAMA_FACTORY_QLORA_GB = {"7B": 6, "70B": 48}
# Unsloth docs, "Unsloth Requirements", fine-tuning VRAM table ("absolute minimum";
# unsloth.ai/docs/get-started/fine-tuning-for-beginners/unsloth-requirements):
# QLoRA (4 bit) 3B 3.5 GB, 8B 6 GB, 70B 41 GB; LoRA (16 bit) 3B 8 GB, 8B 22 GB, 70B 164 GB.
UNSLOTH_QLORA_GB = {"3B": 3.5, "8B": 6, "70B": 41}
UNSLOTH_LORA_GB = {"3B": 8, "8B": 22, "70B": 164}
# Dettmers et al. 2023, "QLoRA: Efficient Finetuning of Quantized LLMs" (arXiv 2305.14314),
# abstract: QLoRA "reduces memory usage enough to finetune a 65B parameter model on a single
# 48GB GPU".
QLORA_PAPER_65B_GPU_GB = 48


def reference_run(method: str) -> TrainingSpec:
    quantization = QuantizationSettings() if method == "qlora" else None
    return TrainingSpec(
        method=method,
        quantization=quantization,
        per_device_train_batch_size=1,
        max_seq_length=1024,
        gradient_checkpointing=True,
    )


def estimate_gb(base: str, method: str) -> float:
    return estimate_memory(ARCHITECTURES[base], reference_run(method), base).total_gb


def within(estimate: float, published: float, low: float = 0.5, high: float = 1.5) -> bool:
    return low * published <= estimate <= high * published


def test_llama_3_1_8b_estimates_are_within_the_published_figures():
    lora, qlora = estimate_gb("Llama-3.1-8B", "lora"), estimate_gb("Llama-3.1-8B", "qlora")

    assert within(lora, UNSLOTH_LORA_GB["8B"]), lora
    assert within(lora, LLAMA_FACTORY_LORA_GB["7B"] * 8 / 7), lora  # the table's 2x GB rule
    assert within(qlora, UNSLOTH_QLORA_GB["8B"]), qlora
    assert within(qlora, LLAMA_FACTORY_QLORA_GB["7B"]), qlora


def test_llama_3_1_70b_estimates_are_within_the_published_figures():
    lora, qlora = estimate_gb("Llama-3.1-70B", "lora"), estimate_gb("Llama-3.1-70B", "qlora")

    assert within(lora, LLAMA_FACTORY_LORA_GB["70B"]), lora
    assert within(lora, UNSLOTH_LORA_GB["70B"]), lora
    assert within(qlora, LLAMA_FACTORY_QLORA_GB["70B"]), qlora
    assert within(qlora, UNSLOTH_QLORA_GB["70B"]), qlora


def test_qlora_of_a_70b_fits_one_48_gb_gpu_as_the_qlora_paper_did_with_65b():
    # Llama-3.1-70B is larger than LLaMA-65B (and its 128k vocabulary stays in bf16), so this
    # only bounds the estimate from above.
    assert estimate_gb("Llama-3.1-70B", "qlora") <= QLORA_PAPER_65B_GPU_GB


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_small_bases_sit_between_their_weights_and_the_published_3b_figure(method):
    # No source above lists a model under 3B. The `x`B rule of LLaMA-Factory (LoRA 2x GB,
    # QLoRA x/2 GB) counts weights alone: a floor. Unsloth's 3B row is a ceiling for any
    # smaller base. Fixed costs (the CUDA context, fp32 logits) dominate these bases.
    ceiling = (UNSLOTH_LORA_GB if method == "lora" else UNSLOTH_QLORA_GB)["3B"]
    for base, billions in (("SmolLM2-135M", 0.135), ("Llama-3.2-1B", 1.24)):
        floor = 2 * billions if method == "lora" else billions / 2
        assert floor <= estimate_gb(base, method) <= ceiling, base


def test_qlora_needs_less_than_lora_and_checkpointing_less_than_none():
    base = ARCHITECTURES["Llama-3.1-8B"]
    lora = estimate_memory(base, reference_run("lora"), "8B")
    qlora = estimate_memory(base, reference_run("qlora"), "8B")
    unchecked = reference_run("lora").model_copy(update={"gradient_checkpointing": False})

    assert qlora.weights_gb < lora.weights_gb / 2.5
    assert estimate_memory(base, unchecked, "8B").activations_gb > 2 * lora.activations_gb


def use_base(repo: Path, base: str, method: str, training: str) -> None:
    """Point the fixture adapter (SmolLM2, QLoRA, no training block) at another base."""
    adapter = repo / "adapters/demo-v1/adapter.yaml"
    edit(adapter, "HuggingFaceTB/SmolLM2-135M-Instruct", base)
    adapter.write_text(adapter.read_text() + f"training:\n  {training}\n")
    if method == "lora":
        edit(repo / "adapters/demo-v1/qlora.yaml", "method: qlora", "method: lora")
        edit(repo / "adapters/demo-v1/qlora.yaml", "quantization:\n  load_in_4bit: true\n", "")


def test_validate_refuses_70b_lora_on_a_24_gb_gpu_and_names_a_flavor_that_holds_it(
    demo_repo: Path, run_cli: RunCli
):
    use_base(demo_repo, "meta-llama/Llama-3.1-70B-Instruct", "lora", "hardware: a10g-large")

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1
    finding = next(line for line in out.splitlines() if "needs about" in line)
    assert "adapters/demo-v1/adapter.yaml" in finding
    needed = float(re.search(r"needs about ([\d.]+) GB", finding).group(1))
    assert needed > 140  # the bf16 weights alone are 141 GB
    assert "a10g-large (24 GB)" in finding
    named = re.search(r"smallest flavor that holds it: ([\w-]+) \((\d+) x (\d+) GB\)", out)
    assert named, out
    flavor = FLAVORS[named.group(1)]
    assert flavor.devices > 1
    assert needed / flavor.devices < flavor.gb_per_device  # weights sharded over its GPUs


def test_validate_names_a_single_80_gb_gpu_for_70b_qlora_on_a_24_gb_gpu(
    demo_repo: Path, run_cli: RunCli
):
    use_base(demo_repo, "meta-llama/Llama-3.1-70B-Instruct", "qlora", "hardware: a10g-small")

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1
    assert "more than a10g-small (24 GB) has" in out
    assert "smallest flavor that holds it: a100-large (80 GB)" in out


def test_a_jobs_flavor_too_small_is_named_at_its_line_with_a_jobs_flavor_that_holds_it(
    demo_repo: Path, run_cli: RunCli
):
    jobs = "backend: jobs\n  flavor: l4x1"
    use_base(demo_repo, "meta-llama/Llama-3.1-70B-Instruct", "qlora", jobs)

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1
    flavor_line = (
        (demo_repo / "adapters/demo-v1/adapter.yaml")
        .read_text()
        .splitlines()
        .index("  flavor: l4x1")
    )
    finding = next(line for line in out.splitlines() if "[training.memory]" in line)
    assert finding.startswith(f"adapters/demo-v1/adapter.yaml:{flavor_line + 1}:")
    assert "more than l4x1 (24 GB) has" in finding
    assert "smallest flavor that holds it: a100-large (80 GB)\n" in out + "\n"


def test_the_embedded_default_gets_no_memory_finding_and_a_plan_line(
    demo_repo: Path, run_cli: RunCli
):
    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")
    assert code == 0, out
    assert "needs about" not in out

    code, out, err = run_cli("plan", "--repo", demo_repo, "demo-v1")

    assert code == 0, err
    line = next(line for line in out.splitlines() if "GPU memory: about" in line)
    assert "of 24 GB on a10g-small" in line
    for part in ("weights", "LoRA + gradients + optimizer", "activations", "overhead"):
        assert part in line


def test_plan_json_carries_the_memory_estimate_and_its_parts(demo_repo: Path, run_cli: RunCli):
    use_base(demo_repo, "unsloth/Llama-3.2-1B-Instruct", "qlora", "hardware: t4-small")

    code, out, err = run_cli("plan", "--repo", demo_repo, "demo-v1", "--format", "json")

    assert code == 0, err
    memory = json.loads(out)["memory"]
    assert (memory["flavor"], memory["gpus"], memory["gb_per_gpu"], memory["fits"]) == (
        "t4-small",
        1,
        16,
        True,
    )
    needed = memory["needed"]
    parts = ("weights_gb", "trainable_gb", "activations_gb", "overhead_gb")
    assert needed["total_gb"] == pytest.approx(sum(needed[part] for part in parts))


def on_a_job(flavor: str, distributed: str | None = None) -> str:
    """The `training:` lines of a Jobs adapter on `flavor` (for `use_base`)."""
    lines = ["backend: jobs", f"flavor: {flavor}"]
    if distributed is not None:
        lines.append(f"distributed: {distributed}")
    return "\n  ".join(lines)


def line_of(repo: Path, text: str) -> int:
    lines = (repo / "adapters/demo-v1/adapter.yaml").read_text().splitlines()
    return lines.index(text) + 1


def finding_of(out: str, rule: str) -> str:
    return next(line for line in out.splitlines() if f"[{rule}]" in line)


def test_validate_refuses_distributed_on_a_one_gpu_flavor_and_lists_the_multi_gpu_ones(
    demo_repo: Path, run_cli: RunCli
):
    use_base(demo_repo, "HuggingFaceTB/SmolLM2-135M-Instruct", "qlora", on_a_job("l4x1", "ddp"))

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1, out
    finding = finding_of(out, "training.distributed")
    at = line_of(demo_repo, "  distributed: ddp")
    assert finding.startswith(f"adapters/demo-v1/adapter.yaml:{at}:"), finding
    assert "l4x1 (24 GB) has one GPU" in finding
    hint = out[out.index(finding) + len(finding) :].splitlines()[1]
    assert "remove `distributed`" in hint
    assert "l4x4" in hint
    assert "h200x8" in hint
    assert "l4x1" not in hint


def test_validate_warns_that_a_multi_gpu_flavor_without_distributed_bills_idle_gpus(
    demo_repo: Path, run_cli: RunCli
):
    use_base(demo_repo, "HuggingFaceTB/SmolLM2-135M-Instruct", "qlora", on_a_job("l4x4"))

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 0, out
    finding = finding_of(out, "training.distributed")
    assert finding.startswith(
        f"adapters/demo-v1/adapter.yaml:{line_of(demo_repo, '  flavor: l4x4')}:"
    )
    assert "uses 1 of the 4 GPUs of l4x4 (4 x 24 GB), and all 4 are billed" in finding
    assert "set `distributed: ddp`: the model fits one GPU" in out


def test_a_multi_gpu_flavor_without_distributed_holds_only_what_one_gpu_holds(
    demo_repo: Path, run_cli: RunCli
):
    use_base(demo_repo, "meta-llama/Llama-3.1-70B-Instruct", "lora", on_a_job("a100x8"))

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1, out
    memory = finding_of(out, "training.memory")
    needed = float(re.search(r"needs about ([\d.]+) GB of memory per GPU", memory).group(1))
    assert needed > 140  # the whole bf16 model on the one GPU used
    assert "one process on 1 GPU of 8, the others idle but billed" in memory
    assert "more than each GPU of a100x8 (8 x 80 GB) has" in memory
    assert "set `distributed: fsdp2`: the model does not fit one GPU" in out


def test_ddp_puts_the_whole_model_on_each_gpu_and_fsdp2_shards_it(demo_repo: Path, run_cli: RunCli):
    use_base(demo_repo, "meta-llama/Llama-3.1-70B-Instruct", "lora", on_a_job("h200x2", "ddp"))

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1, out
    memory = finding_of(out, "training.memory")
    assert "ddp: 2 processes, the whole model on each GPU" in memory
    assert "with `training.distributed: fsdp2` to shard the model over its 2 GPUs" in out

    edit(demo_repo / "adapters/demo-v1/adapter.yaml", "distributed: ddp", "distributed: fsdp2")
    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert "[training.memory]" not in out  # 70B is off the fixture's allowlist: an error
    assert "[training.distributed]" not in out


def test_a_hint_naming_a_multi_gpu_flavor_says_to_shard_with_fsdp2(
    demo_repo: Path, run_cli: RunCli
):
    use_base(demo_repo, "meta-llama/Llama-3.1-70B-Instruct", "lora", "hardware: a10g-large")

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1, out
    named = re.search(r"smallest flavor that holds it: ([\w-]+) \(\d+ x \d+ GB\)(.*)", out)
    assert named, out
    assert (
        f"set `training.backend: jobs` and `training.flavor: {named.group(1)}`, with "
        f"`training.distributed: fsdp2` to shard the model over its "
        f"{FLAVORS[named.group(1)].devices} GPUs"
    ) in named.group(2)


def test_a_hint_naming_a_one_gpu_flavor_says_to_drop_distributed(demo_repo: Path, run_cli: RunCli):
    use_base(demo_repo, "meta-llama/Llama-3.1-70B-Instruct", "qlora", on_a_job("l4x4", "ddp"))

    code, out, _ = run_cli("validate", "--repo", demo_repo, "demo-v1")

    assert code == 1, out
    assert "ddp: 4 processes, the whole model on each GPU" in finding_of(out, "training.memory")
    hint = re.search(r"smallest flavor that holds it: ([\w-]+) \(\d+ GB\)(.*)", out)
    assert hint, out
    assert hint.group(2) == ", without `training.distributed`"


@pytest.mark.parametrize(
    ("distributed", "layout"),
    [
        (None, "one process on 1 GPU of 2, the others idle but billed"),
        ("ddp", "ddp: 2 processes, the whole model on each GPU"),
        ("zero3", "zero3: 2 processes, weights and optimizer sharded over 2 GPUs"),
    ],
)
def test_plan_states_the_strategy_and_its_processes(
    demo_repo: Path, run_cli: RunCli, distributed: str | None, layout: str
):
    use_base(
        demo_repo, "unsloth/Llama-3.2-1B-Instruct", "qlora", on_a_job("a10g-largex2", distributed)
    )

    code, out, err = run_cli("plan", "--repo", demo_repo, "demo-v1")

    assert code == 0, err
    line = next(line for line in out.splitlines() if "GPU memory: about" in line)
    assert "GB per GPU of 24 GB per GPU on a10g-largex2" in line
    assert line.endswith(f"; {layout}"), line

    code, out, err = run_cli("plan", "--repo", demo_repo, "demo-v1", "--format", "json")

    memory = json.loads(out)["memory"]
    assert (memory["distributed"], memory["processes"]) == (
        distributed,
        1 if distributed is None else 2,
    )
