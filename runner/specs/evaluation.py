"""`eval.yaml`: how a candidate is measured and what it must reach to be promoted."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from runner.specs.base import Fraction, PositiveInt, Slug, SpecModel
from runner.specs.tasks import ZeroToleranceRule


class GenerationSettings(SpecModel):
    """Greedy decoding with a fixed batch size, the same for candidate, base and incumbent."""

    max_new_tokens: int = Field(default=256, ge=1, le=8192)
    batch_size: PositiveInt = 8


Floor = Annotated[float, Field(gt=0.0, le=1.0)]
"""The least a metric may score: above 0, since a floor of 0 passes every candidate."""


class Thresholds(SpecModel):
    overall: dict[str, Floor] = Field(default_factory=dict)
    """Floor per metric over all items, e.g. `json_valid_rate: 0.95`; above 0, since a floor
    of 0 passes every candidate (leave the metric out instead)."""
    categories: dict[str, dict[str, Floor]] = Field(default_factory=dict)
    """Floor per metric within a dataset category, e.g. `unanswerable: {json_valid_rate: 0.9}`;
    above 0, since a floor of 0 passes every candidate (leave the metric out instead)."""


class IncumbentComparison(SpecModel):
    """Non-inferiority against the promoted version: paired bootstrap over items."""

    enabled: bool = True
    margin: Fraction = 0.02
    """δ: the lower bound of (candidate - incumbent) on the primary metric must stay above -δ."""
    bootstrap_samples: int = Field(default=2000, ge=100, le=100_000)
    confidence: float = Field(default=0.95, ge=0.5, lt=1.0)
    seed: int = Field(default=0, ge=0)


class BaseModelComparison(SpecModel):
    must_beat: bool = True
    """The primary metric must be higher than the untuned base model's."""


class Comparisons(SpecModel):
    incumbent: IncumbentComparison = IncumbentComparison()
    base_model: BaseModelComparison = BaseModelComparison()


class ParitySettings(SpecModel):
    """The served answers against the PEFT outputs the eval scored: the same prompts, greedy."""

    tokens: int = Field(default=32, ge=1, le=4096)
    """N: how many leading tokens of each output are compared, position by position."""
    min_token_agreement: Fraction = 0.9
    """The least mean share of the first N tokens that must agree, for each served form."""
    max_metric_drop: Fraction = 0.05
    """How much the primary metric may lose when served (PEFT score minus served score)."""
    merged: bool = True
    """Also compare the merged form: `merge_and_unload` on the base the adapter was trained
    on (dequantized for QLoRA), which is what users export for llama.cpp or Ollama."""


class ServingLimits(SpecModel):
    """How the candidate must serve. With `hardware`, `runner eval` serves it in vLLM (the
    base model with the adapter as a LoRA module), sends the eval prompts one at a time and
    at `concurrency`, and gates on what a backend sees there, plus parity. Without it, the
    limits apply to the training run's own batched generation (a weaker figure: validate
    warns)."""

    hardware: Slug | None = None
    """Where these limits hold: `cpu`, or the Jobs flavor the adapter serves on, e.g.
    `a10g-small`. The report says what measured them; figures from other hardware fail."""
    concurrency: int = Field(default=4, ge=1, le=256)
    """Requests in flight at once for the loaded pass (the limits are checked there)."""
    ttft_p95_ms: float | None = Field(default=None, gt=0)
    """Time to first token, p95, at `concurrency`."""
    p95_latency_ms: float | None = Field(default=None, gt=0)
    """Whole-response latency, p95, at `concurrency`, for the eval set's response lengths."""
    min_tokens_per_second: float | None = Field(default=None, gt=0)
    """Each response's output tokens per second, p50, at `concurrency`."""
    peak_memory_mb: float | None = Field(default=None, gt=0)
    """The server's resident memory at its peak (with the engine: its whole process tree)."""
    parity: ParitySettings = ParitySettings()

    @property
    def engine_check(self) -> bool:
        """Whether `runner eval` serves the candidate in the engine."""
        return self.hardware is not None


class Waiver(SpecModel):
    """A reviewed exception: a threshold allowed below its predecessor's."""

    metric: str
    category: str | None = None
    reason: str = Field(min_length=10)
    """Why the lower threshold is acceptable; shown in the plan and the PR comment."""
    approved_by: str = Field(min_length=1)


class EvalSpec(SpecModel):
    primary_metric: str
    """The metric that decides the base-model and incumbent comparisons."""
    generation: GenerationSettings = GenerationSettings()
    max_items: PositiveInt | None = None
    """Evaluate only the first N eval items (None: all)."""
    thresholds: Thresholds = Thresholds()
    zero_tolerance: list[ZeroToleranceRule] = Field(default_factory=lambda: ["ai_attribution"])
    """Rules where a single hit in any output fails the gate."""
    comparisons: Comparisons = Comparisons()
    serving: ServingLimits = ServingLimits()
    waivers: list[Waiver] = Field(default_factory=list)
