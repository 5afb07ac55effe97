"""`eval.yaml`: how a candidate is measured and what it must reach to be promoted."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from runner.specs.base import Fraction, PositiveInt, SpecModel
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


class ServingLimits(SpecModel):
    """Measured while generating the eval outputs."""

    p95_latency_ms: float | None = Field(default=None, gt=0)
    peak_memory_mb: float | None = Field(default=None, gt=0)


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
