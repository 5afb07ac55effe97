"""`qlora.yaml`: the training configuration. Key names follow peft, bitsandbytes and
transformers, so each maps onto the library argument of the same name."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runner.specs.base import PositiveInt, SpecModel, spec_error

TargetModule = Literal["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class QuantizationSettings(SpecModel):
    load_in_4bit: bool = True
    """Load the frozen base weights in 4 bit (bitsandbytes). Required by `method: qlora`."""
    bnb_4bit_quant_type: Literal["nf4", "fp4"] = "nf4"
    bnb_4bit_use_double_quant: bool = True
    """Quantize the quantization constants too (saves ~0.4 bit per parameter)."""
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"


class TrainingSpec(SpecModel):
    method: Literal["qlora", "lora"] = "qlora"
    """`qlora`: LoRA on a 4-bit base. `lora`: LoRA on a full-precision base."""
    r: int = Field(default=16, ge=1, le=1024)
    """LoRA rank."""
    lora_alpha: int = Field(default=32, ge=1)
    """LoRA scaling numerator; the update is scaled by lora_alpha / r."""
    lora_dropout: float = Field(default=0.05, ge=0.0, lt=1.0)
    target_modules: list[TargetModule] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"], min_length=1
    )
    """Projections that get LoRA weights; attention by default, MLP projections allowed."""
    modules_to_save: list[str] = Field(default_factory=list)
    """Modules trained in full and saved with the adapter, e.g. `lm_head`."""
    quantization: QuantizationSettings | None = None
    """4-bit loading; filled with NF4 + double quantization + bf16 compute for `qlora`."""
    num_train_epochs: float = Field(default=3.0, gt=0.0, le=100.0)
    max_steps: int | None = Field(default=None, ge=1)
    """Stop after this many optimizer steps (overrides epochs)."""
    learning_rate: float = Field(default=2e-4, gt=0.0, lt=1.0)
    lr_scheduler_type: Literal[
        "cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts"
    ] = "cosine"
    warmup_ratio: float = Field(default=0.03, ge=0.0, lt=1.0)
    per_device_train_batch_size: PositiveInt = 4
    gradient_accumulation_steps: PositiveInt = 4
    optim: Literal[
        "paged_adamw_8bit", "paged_adamw_32bit", "adamw_8bit", "adamw_torch", "adafactor"
    ] = "paged_adamw_8bit"
    weight_decay: float = Field(default=0.0, ge=0.0, lt=1.0)
    max_grad_norm: float = Field(default=0.3, gt=0.0)
    max_seq_length: int = Field(default=2048, ge=64, le=131072)
    """Longest training sequence in tokens; longer examples are flagged by the data checks."""
    packing: bool = True
    """Pack several examples into one sequence (no cross-example attention)."""
    assistant_only_loss: bool = True
    """Compute the loss on assistant tokens only."""
    gradient_checkpointing: bool = True
    seed: int = Field(default=42, ge=0)

    @model_validator(mode="after")
    def _quantization_matches_method(self) -> TrainingSpec:
        if self.method == "qlora":
            if self.quantization is None:
                self.quantization = QuantizationSettings()
            elif not self.quantization.load_in_4bit:
                raise spec_error(
                    "qlora_needs_4bit",
                    "method qlora needs `load_in_4bit: true`; set it, or use `method: lora` "
                    "to train on a full-precision base",
                    at="quantization.load_in_4bit",
                )
        elif self.quantization is not None and self.quantization.load_in_4bit:
            raise spec_error(
                "lora_with_4bit",
                "method lora trains on a full-precision base but `load_in_4bit` is true; "
                "use `method: qlora`, or remove the quantization block",
                at="quantization.load_in_4bit",
            )
        return self
