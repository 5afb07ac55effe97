"""`policies/training.yaml`: what a PR may ask to train, and what a run is estimated to cost."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from pydantic import Field

from runner.findings import Finding, Severity, quote
from runner.specs.base import PositiveInt, SpecModel
from runner.specs.bundle import AdapterBundle


class HardwareRate(SpecModel):
    tokens_per_second: float = Field(gt=0)
    """Training throughput of a 1B-class model with the default config."""
    usd_per_hour: float = Field(ge=0)


class TrainingPolicy(SpecModel):
    kind: Literal["training"]
    allowed_base_models: list[str] = Field(min_length=1)
    allowed_hardware: list[str] = Field(min_length=1)
    max_lora_rank: PositiveInt
    max_gpu_hours_per_run: float = Field(gt=0)
    startup_minutes: float = Field(default=10, ge=0)
    hardware: dict[str, HardwareRate]


POLICY_PRICES = "policies/training.yaml"


@dataclass(frozen=True)
class UnitPrice:
    usd_per_hour: float
    source: str
    """Where the price comes from, said beside every amount computed from it."""


@dataclass(frozen=True)
class CostEstimate:
    hardware: str
    """The hardware billed: the Space hardware, or a Jobs adapter's flavor."""
    train_tokens: int
    """Tokens in one epoch of the training split."""
    trained_tokens: int
    """Tokens the run processes: one epoch times the epochs (or the step budget)."""
    gpu_hours: float | None
    usd: float | None
    price_source: str | None = None


def billed_hardware(bundle: AdapterBundle) -> str:
    """What a run is billed for: a Jobs adapter's flavor, else the Space hardware."""
    target = bundle.adapter.training
    return target.flavor or target.hardware


def estimate_cost(policy: TrainingPolicy, bundle: AdapterBundle, train_tokens: int) -> CostEstimate:
    """GPU hours from the token count and the policy's throughput, at the policy's price (see
    `priced` for another)."""
    spec = bundle.training
    hardware = billed_hardware(bundle)
    trained = math.ceil(train_tokens * spec.num_train_epochs)
    if spec.max_steps is not None and train_tokens:
        per_step = spec.per_device_train_batch_size * spec.gradient_accumulation_steps
        examples = max(bundle.dataset.files.train.examples or 1, 1)
        trained = min(trained, math.ceil(spec.max_steps * per_step * train_tokens / examples))
    rate = policy.hardware.get(hardware)
    if rate is None:
        return CostEstimate(hardware, train_tokens, trained, None, None)
    hours = trained / rate.tokens_per_second / 3600 + policy.startup_minutes / 60
    usd = hours * rate.usd_per_hour
    return CostEstimate(hardware, train_tokens, trained, hours, usd, POLICY_PRICES)


def priced(estimate: CostEstimate, price: UnitPrice) -> CostEstimate:
    """The same GPU time at another price (the Hub's own, when it could be read)."""
    if estimate.gpu_hours is None:
        return estimate
    usd = estimate.gpu_hours * price.usd_per_hour
    return replace(estimate, usd=usd, price_source=price.source)


def check_training_limits(policy: TrainingPolicy, bundle: AdapterBundle) -> list[Finding]:
    adapter, qlora = bundle.docs["adapter.yaml"], bundle.docs["qlora.yaml"]
    base, hardware = bundle.adapter.base_model.id, bundle.adapter.training.hardware
    findings = []
    if base not in policy.allowed_base_models:
        findings.append(
            adapter.finding(
                ["base_model", "id"],
                "training.base-model",
                f"base model {quote(base)} is not on the allowlist in policies/training.yaml",
                hint="pick an allowed base, or add it to the allowlist in its own reviewed PR",
            )
        )
    if hardware not in policy.allowed_hardware:
        findings.append(
            adapter.finding(
                ["training", "hardware"],
                "training.hardware",
                f"hardware {quote(hardware)} is not allowed by policies/training.yaml",
                hint=f"allowed: {', '.join(policy.allowed_hardware)}",
            )
        )
    if bundle.training.r > policy.max_lora_rank:
        findings.append(
            qlora.finding(
                ["r"],
                "training.max-rank",
                f"r {bundle.training.r} is above the maximum LoRA rank {policy.max_lora_rank}",
            )
        )
    return findings


def check_gpu_hours(
    policy: TrainingPolicy, bundle: AdapterBundle, estimate: CostEstimate, *, exact: bool
) -> list[Finding]:
    if estimate.gpu_hours is None or estimate.gpu_hours <= policy.max_gpu_hours_per_run:
        return []
    basis = "" if exact else " (from estimated token counts)"
    return [
        bundle.docs["qlora.yaml"].finding(
            ["num_train_epochs"],
            "training.max-gpu-hours",
            f"about {estimate.gpu_hours:.1f} GPU hours on {estimate.hardware}{basis}, over the "
            f"limit of {policy.max_gpu_hours_per_run:g} per run",
            hint="fewer epochs or examples, shorter sequences, or faster hardware",
            severity=Severity.ERROR,
        )
    ]
