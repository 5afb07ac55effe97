"""The memory planner: the memory a LoRA/QLoRA run needs, against what its hardware has.

Validate runs offline and never downloads a base model (not even its config.json), so the
architectures of the bases the policies allow, and of the common Llama sizes, live in a table
copied from each model's config.json on the Hub. A base missing from it gets no estimate.

The arithmetic follows what the trl engine runs (transformers + peft + bitsandbytes, SDPA
attention): frozen weights in bf16, or NF4 with its quantization constants for QLoRA (embeddings
and lm_head stay bf16: bitsandbytes quantizes the decoder's linear layers only); LoRA weights
in fp32 (peft upcasts adapters) with their gradients and optimizer state; activations per token
per layer, only each layer's input when gradient checkpointing recomputes the rest; fp32 logits
and their gradient for the loss; a fixed CUDA overhead. Sizes are decimal GB, as flavors are sold.

On a multi-GPU flavor the figure is per GPU and follows `training.distributed`: unset, one
process on one GPU; `ddp`, a whole copy on each; `fsdp2`/`zero3`, weights and optimizer state
sharded over the GPUs, activations per GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import get_args

from huggingface_hub import JobHardware

from runner.findings import Finding, Severity, quote
from runner.specs.adapter import Distributed, SpaceHardware
from runner.specs.bundle import AdapterBundle
from runner.specs.training import TrainingSpec

GB = 1e9
BF16_BYTES = 2
FP32_BYTES = 4
NF4_BYTES = 0.5
NF4_BLOCK = 64
"""bitsandbytes' 4-bit block size: one absmax constant per 64 weights."""
DOUBLE_QUANT_BLOCK = 256
"""Double quantization stores those constants in 8 bit, with one fp32 constant per 256."""
OVERHEAD_GB = 1.0
"""CUDA context, cuBLAS workspace and the caching allocator's slack: outside any tensor."""
LOGIT_BYTES = 2 * FP32_BYTES
"""The loss upcasts the logits to fp32 and backpropagates an fp32 gradient of the same size."""
OPTIMIZER_BYTES = {
    "adamw_torch": 8,
    "paged_adamw_32bit": 8,
    "adamw_8bit": 2,
    "paged_adamw_8bit": 2,
    "adafactor": 4,
}
"""State per trainable parameter: AdamW's two moments in fp32 or 8 bit; Adafactor's factored
second moment, rounded up to one fp32 value (it keeps full rows for the small LoRA matrices)."""


@dataclass(frozen=True)
class Architecture:
    """The config.json fields the estimate needs (Llama-style decoder)."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied_embeddings: bool

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    def module_shape(self, module: str) -> tuple[int, int]:
        """(in, out) features of one projection in a decoder layer."""
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        return {
            "q_proj": (h, h),
            "k_proj": (h, kv),
            "v_proj": (h, kv),
            "o_proj": (h, h),
            "gate_proj": (h, i),
            "up_proj": (h, i),
            "down_proj": (i, h),
        }[module]

    @property
    def linear_parameters(self) -> int:
        """The decoder's linear weights: what bitsandbytes quantizes."""
        shapes = [self.module_shape(m) for m in ("q_proj", "k_proj", "v_proj", "o_proj")]
        shapes += [self.module_shape(m) for m in ("gate_proj", "up_proj", "down_proj")]
        return self.layers * sum(i * o for i, o in shapes)

    @property
    def embedding_parameters(self) -> int:
        """Input embeddings and lm_head (one matrix when tied), plus the norms: kept in bf16."""
        matrices = 1 if self.tied_embeddings else 2
        return matrices * self.vocab * self.hidden + (2 * self.layers + 1) * self.hidden

    @property
    def parameters(self) -> int:
        return self.linear_parameters + self.embedding_parameters


# From each model's config.json on the Hub (hidden_size, intermediate_size, num_hidden_layers,
# num_attention_heads, num_key_value_heads, vocab_size, tie_word_embeddings).
_SMOLLM2_135M = Architecture(576, 1536, 30, 9, 3, 49152, True)
_SMOLLM2_360M = Architecture(960, 2560, 32, 15, 5, 49152, True)
_SMOLLM2_1_7B = Architecture(2048, 8192, 24, 32, 32, 49152, True)
_LLAMA_3_2_1B = Architecture(2048, 8192, 16, 32, 8, 128256, True)
_LLAMA_3_2_3B = Architecture(3072, 8192, 28, 24, 8, 128256, True)
_LLAMA_3_8B = Architecture(4096, 14336, 32, 32, 8, 128256, False)
_LLAMA_3_70B = Architecture(8192, 28672, 80, 64, 8, 128256, False)
ARCHITECTURES = {
    "SmolLM2-135M": _SMOLLM2_135M,
    "SmolLM2-360M": _SMOLLM2_360M,
    "SmolLM2-1.7B": _SMOLLM2_1_7B,
    "Llama-3.2-1B": _LLAMA_3_2_1B,
    "Llama-3.2-3B": _LLAMA_3_2_3B,
    "Meta-Llama-3-8B": _LLAMA_3_8B,
    "Llama-3.1-8B": _LLAMA_3_8B,
    "Meta-Llama-3.1-8B": _LLAMA_3_8B,
    "Meta-Llama-3-70B": _LLAMA_3_70B,
    "Llama-3.1-70B": _LLAMA_3_70B,
    "Meta-Llama-3.1-70B": _LLAMA_3_70B,
    "Llama-3.3-70B": _LLAMA_3_70B,
}
"""Keyed by the model name without owner or `-Instruct`: mirrors (unsloth/...) share it."""


@dataclass(frozen=True)
class Flavor:
    name: str
    devices: int
    gb_per_device: float
    gpu: bool = True
    """False for CPU flavors, whose figure is the machine's RAM."""

    @property
    def total_gb(self) -> float:
        return self.devices * self.gb_per_device

    def describe(self) -> str:
        size = f"{self.gb_per_device:g} GB"
        memory = size if self.devices == 1 else f"{self.devices} x {size}"
        return f"{self.name} ({memory}{'' if self.gpu else ' RAM'})"


def _flavors(*rows: tuple[str, int, float]) -> dict[str, Flavor]:
    return {name: Flavor(name, devices, gb) for name, devices, gb in rows}


# Hugging Face's hardware names (huggingface_hub's SpaceHardware and JobHardware) and the
# memory of their GPUs: T4 16 GB, L4 and A10G 24 GB, L40S 48 GB, A100 and H100 80 GB,
# RTX PRO 6000 96 GB, H200 141 GB.
FLAVORS = {
    "cpu-basic": Flavor("cpu-basic", 1, 16, gpu=False),
    "cpu-upgrade": Flavor("cpu-upgrade", 1, 32, gpu=False),
    **_flavors(
        ("t4-small", 1, 16),
        ("t4-medium", 1, 16),
        ("l4x1", 1, 24),
        ("l4x4", 4, 24),
        ("a10g-small", 1, 24),
        ("a10g-large", 1, 24),
        ("a10g-largex2", 2, 24),
        ("a10g-largex4", 4, 24),
        ("l40sx1", 1, 48),
        ("l40sx4", 4, 48),
        ("l40sx8", 8, 48),
        ("a100-large", 1, 80),
        ("a100x4", 4, 80),
        ("a100x8", 8, 80),
        ("h100", 1, 80),
        ("rtx-pro-6000", 1, 96),
        ("rtx-pro-6000x2", 2, 96),
        ("rtx-pro-6000x4", 4, 96),
        ("rtx-pro-6000x8", 8, 96),
        ("h200", 1, 141),
        ("h200x2", 2, 141),
        ("h200x4", 4, 141),
        ("h200x8", 8, 141),
    ),
}


SHARDING: frozenset[str] = frozenset({"fsdp2", "zero3"})
"""The presets that split weights and optimizer state over the GPUs; `ddp` copies the model."""


@dataclass(frozen=True)
class MemoryEstimate:
    """GB the run needs on each GPU it uses: sharded parts (FSDP2/ZeRO-3 split weights and
    optimizer state over the GPUs) divided, per-device parts whole."""

    base_model: str
    devices: int
    """The GPUs the run uses, one process each."""
    weights_gb: float
    trainable_gb: float
    """LoRA (and modules_to_save) weights, their gradients and optimizer state."""
    activations_gb: float
    overhead_gb: float
    sharded: bool = False
    """Weights and optimizer state split over `devices`; else each GPU holds them whole."""

    @property
    def total_gb(self) -> float:
        model = self.weights_gb + self.trainable_gb
        per_device = model / self.devices if self.sharded else model
        return per_device + self.activations_gb + self.overhead_gb

    def parts(self) -> str:
        return (
            f"weights {self.weights_gb:.2f}, LoRA + gradients + optimizer "
            f"{self.trainable_gb:.2f}, activations {self.activations_gb:.2f}, overhead "
            f"{self.overhead_gb:.2f}"
        )


@dataclass(frozen=True)
class MemoryPlan:
    flavor: str
    capacity: Flavor | None
    """None when the flavor's memory is not known."""
    needed: MemoryEstimate | None
    """Sized for the GPUs the strategy uses; None when the base is not in the architecture
    table."""
    strategy: Distributed | None
    """`training.distributed`: None runs one process on one GPU, whatever the flavor has."""

    @property
    def fits(self) -> bool:
        if self.needed is None or self.capacity is None:
            return True
        return self.needed.total_gb <= self.capacity.gb_per_device

    @property
    def multi_gpu(self) -> bool:
        return self.capacity is not None and self.capacity.gpu and self.capacity.devices > 1

    @property
    def processes(self) -> int:
        return processes_on(self.capacity, self.strategy)

    def layout(self) -> str:
        """What `accelerate launch` (or the single process) makes of the flavor's GPUs."""
        if self.capacity is None or not self.capacity.gpu:
            return "one process"
        gpus = self.capacity.devices
        if self.processes == 1:
            idle = f" of {gpus}, the others idle but billed" if gpus > 1 else ""
            return f"one process on 1 GPU{idle}"
        if self.strategy in SHARDING:
            return (
                f"{self.strategy}: {gpus} processes, weights and optimizer sharded over {gpus} GPUs"
            )
        return f"{self.strategy}: {gpus} processes, the whole model on each GPU"


def processes_on(capacity: Flavor | None, strategy: Distributed | None) -> int:
    """One process per GPU when a strategy spreads the run over them, else one."""
    if strategy is None or capacity is None or not capacity.gpu:
        return 1
    return capacity.devices


def architecture_of(base_model: str) -> Architecture | None:
    name = base_model.rsplit("/", 1)[-1].removesuffix("-Instruct")
    return ARCHITECTURES.get(name)


def estimate_memory(arch: Architecture, spec: TrainingSpec, base_model: str) -> MemoryEstimate:
    return MemoryEstimate(
        base_model=base_model,
        devices=1,
        weights_gb=_weights_bytes(arch, spec) / GB,
        trainable_gb=_trainable_bytes(arch, spec) / GB,
        activations_gb=_activation_bytes(arch, spec) / GB,
        overhead_gb=OVERHEAD_GB,
    )


def _on(
    estimate: MemoryEstimate, flavor: Flavor | None, strategy: Distributed | None
) -> MemoryEstimate:
    """The estimate per GPU for the processes `strategy` runs on `flavor`."""
    devices = processes_on(flavor, strategy)
    return replace(estimate, devices=devices, sharded=devices > 1 and strategy in SHARDING)


def _weights_bytes(arch: Architecture, spec: TrainingSpec) -> float:
    kept = arch.embedding_parameters * BF16_BYTES
    if spec.method == "lora" or spec.quantization is None:
        return kept + arch.linear_parameters * BF16_BYTES
    if spec.quantization.bnb_4bit_use_double_quant:
        constants = 1 / NF4_BLOCK + FP32_BYTES / (NF4_BLOCK * DOUBLE_QUANT_BLOCK)
    else:
        constants = FP32_BYTES / NF4_BLOCK
    return kept + arch.linear_parameters * (NF4_BYTES + constants)


def _trainable_bytes(arch: Architecture, spec: TrainingSpec) -> float:
    lora = arch.layers * sum(
        spec.r * sum(arch.module_shape(module)) for module in spec.target_modules
    )
    saved = len(set(spec.modules_to_save) & {"lm_head", "embed_tokens"}) * arch.vocab * arch.hidden
    per_parameter = FP32_BYTES + FP32_BYTES + OPTIMIZER_BYTES[spec.optim]  # weight, grad, state
    return (lora + saved) * per_parameter


def _layer_activation_elements(arch: Architecture, spec: TrainingSpec) -> int:
    """Tensors one decoder layer keeps per token for backward: the norms' inputs and outputs,
    q/k/v and the attention output (SDPA keeps no score matrix), the MLP's gate, up, their
    activation and product, and each LoRA dropout's masked input."""
    h = arch.hidden
    attention = 2 * h + (h + 2 * arch.kv_dim) + h
    mlp = 2 * h + 4 * arch.intermediate
    dropout = sum(arch.module_shape(m)[0] for m in spec.target_modules) if spec.lora_dropout else 0
    return attention + mlp + dropout


def _activation_bytes(arch: Architecture, spec: TrainingSpec) -> float:
    tokens = spec.per_device_train_batch_size * spec.max_seq_length
    layer = _layer_activation_elements(arch, spec) * BF16_BYTES
    if spec.gradient_checkpointing:
        # Each layer's input is kept; one layer at a time is recomputed in full.
        stored = arch.layers * arch.hidden * BF16_BYTES + layer
    else:
        stored = arch.layers * layer
    return tokens * (stored + arch.vocab * LOGIT_BYTES)


def flavor_of(bundle: AdapterBundle) -> tuple[str, list[str]]:
    """The hardware the run gets, and where the spec names it: `training.flavor` (a Job's
    machine; only a jobs spec has one), else `training.hardware` (a Space's, or the label of
    the local machine)."""
    training = bundle.adapter.training
    if training.flavor is not None:
        return training.flavor, ["training", "flavor"]
    return training.hardware, ["training", "hardware"]


JOB_FLAVORS = frozenset(hardware.value for hardware in JobHardware)
JOBS_HINT = ", a Jobs flavor: set `training.backend: jobs` and `training.flavor: {}`"
SHARD_HINT = ", with `training.distributed: {}` to shard the model over its {} GPUs"


def _where_to_ask(bundle: AdapterBundle) -> list[tuple[str, set[str], Distributed | None]]:
    """Flavors this adapter's backend can ask for, then, for a Space or local run, the Jobs
    flavors (up to 8 GPUs of 141 GB) and how to ask for them; with the preset that shards a
    model over a Job's GPUs (a Space trains in one process: its extra GPUs hold nothing more)."""
    training = bundle.adapter.training
    sharding = training.distributed if training.distributed in SHARDING else "fsdp2"
    if training.flavor is not None:  # a Job's machine
        return [("", set(JOB_FLAVORS), sharding)]
    return [("", set(get_args(SpaceHardware)), None), (JOBS_HINT, set(JOB_FLAVORS), sharding)]


def plan_memory(bundle: AdapterBundle) -> MemoryPlan:
    base = bundle.adapter.base_model.id
    flavor, _ = flavor_of(bundle)
    capacity = FLAVORS.get(flavor)
    strategy = bundle.adapter.training.distributed
    arch = architecture_of(base)
    if arch is None:
        return MemoryPlan(flavor, capacity, None, strategy)
    estimate = estimate_memory(arch, bundle.training, base)
    return MemoryPlan(flavor, capacity, _on(estimate, capacity, strategy), strategy)


def smallest_flavor_that_holds(
    estimate: MemoryEstimate, requestable: set[str], sharding: Distributed | None
) -> Flavor | None:
    """A multi-GPU flavor holds more than one of its GPUs only when `sharding` splits the
    model over them (`ddp` and a single process do not), so without it only one-GPU flavors
    count."""
    holding = [
        flavor
        for flavor in FLAVORS.values()
        if flavor.gpu
        and flavor.name in requestable
        and (flavor.devices == 1 or sharding is not None)
        and _on(estimate, flavor, sharding).total_gb <= flavor.gb_per_device
    ]
    return min(holding, key=lambda f: (f.total_gb, f.devices), default=None)


def check_memory(bundle: AdapterBundle, plan: MemoryPlan) -> list[Finding]:
    return _too_small(bundle, plan) + _distributed_findings(bundle, plan)


def _too_small(bundle: AdapterBundle, plan: MemoryPlan) -> list[Finding]:
    if plan.fits or plan.needed is None or plan.capacity is None:
        return []
    needed, capacity = plan.needed, plan.capacity
    per_gpu = " per GPU" if plan.multi_gpu else ""
    layout = f"; {plan.layout()}" if plan.multi_gpu else ""
    each = "each GPU of " if plan.multi_gpu else ""
    _, loc = flavor_of(bundle)
    return [
        bundle.docs["adapter.yaml"].finding(
            loc,
            "training.memory",
            f"training {quote(needed.base_model)} needs about {needed.total_gb:.1f} GB of memory"
            f"{per_gpu} ({needed.parts()}{layout}), more than {each}{capacity.describe()} has",
            hint=_larger_flavor_hint(bundle, needed, plan.strategy),
        )
    ]


def _larger_flavor_hint(
    bundle: AdapterBundle, needed: MemoryEstimate, strategy: Distributed | None
) -> str:
    for how, names, sharding in _where_to_ask(bundle):
        larger = smallest_flavor_that_holds(needed, names, sharding)
        if larger is None:
            continue
        ask = how.format(larger.name)
        if larger.devices > 1:
            ask += SHARD_HINT.format(sharding, larger.devices)
        elif strategy is not None:  # `distributed` on one GPU is an error
            ask += ", without `training.distributed`"
        return f"the smallest flavor that holds it: {larger.describe()}{ask}"
    return "no flavor holds it: a smaller base, `method: qlora`, or shorter sequences"


def _distributed_findings(bundle: AdapterBundle, plan: MemoryPlan) -> list[Finding]:
    """`distributed` needs several GPUs, and a Job's several GPUs need `distributed`."""
    capacity, doc = plan.capacity, bundle.docs["adapter.yaml"]
    if capacity is None or bundle.adapter.training.flavor is None:
        return []
    if plan.strategy is not None and not plan.multi_gpu:
        gpus = "one GPU" if capacity.gpu else "no GPU"
        return [
            doc.finding(
                ["training", "distributed"],
                "training.distributed",
                f"`distributed: {plan.strategy}` spreads training over the GPUs of a multi-GPU "
                f"flavor, and {capacity.describe()} has {gpus}",
                hint="remove `distributed`, or pick a multi-GPU flavor: "
                + ", ".join(_multi_gpu_job_flavors()),
            )
        ]
    if plan.strategy is None and plan.multi_gpu:
        return [
            doc.finding(
                ["training", "flavor"],
                "training.distributed",
                f"training uses 1 of the {capacity.devices} GPUs of {capacity.describe()}, and "
                f"all {capacity.devices} are billed",
                hint=_strategy_hint(plan),
                severity=Severity.WARNING,
            )
        ]
    return []


def _strategy_hint(plan: MemoryPlan) -> str:
    """`ddp` when the model fits one GPU (each GPU trains a copy: faster), else `fsdp2`."""
    if plan.needed is None:
        return "set `distributed: ddp` when the model fits one GPU, `fsdp2` when it does not"
    if plan.fits:
        return "set `distributed: ddp`: the model fits one GPU (or pick a one-GPU flavor)"
    return "set `distributed: fsdp2`: the model does not fit one GPU, shard it over the GPUs"


def _multi_gpu_job_flavors() -> list[str]:
    return [f.name for f in FLAVORS.values() if f.gpu and f.devices > 1 and f.name in JOB_FLAVORS]
