"""Metrics: a value per item (None where the metric does not apply) and an aggregate over
items. One aggregate serves the overall figure, each category and every bootstrap resample,
so a confidence interval is always about the exact number the gate compares."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runner.data.context import TextScanner
from runner.evaluate.rows import OutputRow
from runner.policy.text_escapes import decoded_literals

ItemValue = float | None


@dataclass(frozen=True)
class ItemScores:
    """The scores of one role's output for one eval item."""

    item_id: str
    category: str
    values: Mapping[str, ItemValue]
    reasons: Mapping[str, str] = field(default_factory=dict)
    """Metric name → why this item failed it, for the report's worst failing items."""


def columns(items: Sequence[ItemScores], keys: Sequence[str]) -> np.ndarray:
    """Item values as a (keys, items) float array; NaN where a value is not applicable."""
    table = np.full((len(keys), len(items)), np.nan)
    for column, item in enumerate(items):
        for row, key in enumerate(keys):
            value = item.values.get(key)
            if value is not None:
                table[row, column] = value
    return table


def _means(values: np.ndarray) -> np.ndarray:
    """Mean of the non-NaN entries along the last axis; NaN where there are none. Written
    out with sums and counts because np.nanmean warns on every all-NaN resample."""
    present = ~np.isnan(values)
    counts = present.sum(axis=-1)
    totals = np.where(present, values, 0.0).sum(axis=-1)
    return np.where(counts > 0, totals / np.maximum(counts, 1), np.nan)


@dataclass(frozen=True)
class Mean:
    """Mean of the applicable item values of `key`: the default aggregate."""

    key: str

    def resampled(self, items: Sequence[ItemScores], indices: np.ndarray) -> np.ndarray:
        """The aggregate on each row of `indices` (resamples x items); NaN: not applicable."""
        return _means(columns(items, [self.key])[0][indices])

    def __call__(self, items: Sequence[ItemScores]) -> float | None:
        return _point(self, items)


@dataclass(frozen=True)
class Sum:
    """Total of the item values of `key`, e.g. policy hits: any hit at all is the news."""

    key: str

    def resampled(self, items: Sequence[ItemScores], indices: np.ndarray) -> np.ndarray:
        values = columns(items, [self.key])[0][indices]
        present = ~np.isnan(values)
        totals = np.where(present, values, 0.0).sum(axis=-1)
        return np.where(present.any(axis=-1), totals, np.nan)

    def __call__(self, items: Sequence[ItemScores]) -> float | None:
        return _point(self, items)


@dataclass(frozen=True)
class BalancedMean:
    """Mean over `keys` of each key's mean, leaving out keys with no applicable item.

    Balanced accuracy is this over per-class recalls: each class weighs the same however
    many items it has, and within one category (only one class present) it is that
    class's recall."""

    keys: tuple[str, ...]

    def resampled(self, items: Sequence[ItemScores], indices: np.ndarray) -> np.ndarray:
        table = columns(items, self.keys)
        per_key = np.stack([_means(row[indices]) for row in table], axis=-1)
        return _means(per_key)

    def __call__(self, items: Sequence[ItemScores]) -> float | None:
        return _point(self, items)


Aggregate = Mean | Sum | BalancedMean


def _point(aggregate: Aggregate, items: Sequence[ItemScores]) -> float | None:
    # The point estimate is the identity resample, so it and the bootstrap share one code path.
    value = float(aggregate.resampled(items, np.arange(len(items))[None, :])[0])
    return None if np.isnan(value) else value


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    combine: Aggregate | None = None
    """How item values combine; None: the mean of the applicable values of `name`."""

    @property
    def aggregate(self) -> Aggregate:
        return self.combine if self.combine is not None else Mean(self.name)


def aggregate(metric: Metric, items: Sequence[ItemScores]) -> float | None:
    """The metric over `items`; None when it applies to none of them."""
    return metric.aggregate(items)


def by_category(items: Sequence[ItemScores]) -> dict[str, list[ItemScores]]:
    grouped: dict[str, list[ItemScores]] = {}
    for item in items:
        grouped.setdefault(item.category, []).append(item)
    return dict(sorted(grouped.items()))


@dataclass(frozen=True)
class MetricTable:
    overall: dict[str, float | None]
    categories: dict[str, dict[str, float | None]]


def table(metrics: Sequence[Metric], items: Sequence[ItemScores]) -> MetricTable:
    """Every metric over all items and within each category."""
    overall = {metric.name: aggregate(metric, items) for metric in metrics}
    categories = {
        category: {metric.name: aggregate(metric, group) for metric in metrics}
        for category, group in by_category(items).items()
    }
    return MetricTable(overall, categories)


# -- shared by the tasks ------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringContext:
    policies: TextScanner
    """The text policies (attribution, secrets), scanned over every output."""
    answer_schema: dict[str, Any] | None = None
    """The manifest's answer_schema; required by citation_grounded_chat."""
    outputs_path: str = "eval_outputs.jsonl"
    """The outputs file as policy findings name it."""


ZERO_TOLERANCE_METRICS = {"ai_attribution": "ai_attribution_hits", "secret_leak": "secret_hits"}
"""Zero-tolerance rule of eval.yaml → the metric counting its hits (the gate fails on > 0)."""

_RULE_PREFIXES = {"attribution.": "ai_attribution_hits", "secrets.": "secret_hits"}

POLICY_METRICS = (
    Metric(
        "ai_attribution_hits",
        "AI attribution hits of the text policies, summed over items",
        Sum("ai_attribution_hits"),
    ),
    Metric(
        "secret_hits", "secret hits of the text policies, summed over items", Sum("secret_hits")
    ),
)


def policy_hits(
    row: OutputRow, context: ScoringContext, decoded: Sequence[str] = ()
) -> tuple[dict[str, float], dict[str, str]]:
    """Hit counts per zero-tolerance metric in one output, and the first hit of each.

    Every hit counts, whatever shape the output has: the raw text is scanned, and so are
    the texts it encodes. `decoded` are such texts a scorer has read (the answer string of
    a JSON object); beyond them, every JSON string literal with an escape is decoded, in any
    field, even in a truncated document (see `decoded_literals`): `\\u0043laude` is Claude,
    and JSON's `\\n` hides a line-anchored trailer from the raw text. Each metric counts
    the most hits any one text has, so a hit seen both raw and decoded counts once (one
    line may even be two different rules' hit in two views: a robot-emoji signature once
    its escaped emoji is decoded, a tool signature raw)."""
    values = dict.fromkeys(_RULE_PREFIXES.values(), 0.0)
    reasons: dict[str, str] = {}
    for text in filter(None, (row.output, *decoded, decoded_literals(row.output))):
        counts, found = _hits(text, row, context)
        for metric, count in counts.items():
            if count > values[metric]:
                values[metric] = count
                reasons[metric] = found[metric]
    return values, reasons


def _hits(
    text: str, row: OutputRow, context: ScoringContext
) -> tuple[dict[str, float], dict[str, str]]:
    findings = context.policies.scan(
        text, path=context.outputs_path, line=row.line, target="output", where="output"
    )
    counts = dict.fromkeys(_RULE_PREFIXES.values(), 0.0)
    first: dict[str, str] = {}
    for finding in findings:
        metric = next((m for p, m in _RULE_PREFIXES.items() if finding.rule_id.startswith(p)), None)
        if metric is not None:
            counts[metric] += 1
            first.setdefault(metric, finding.message)
    return counts, first


ItemScorer = Callable[[OutputRow, dict[str, Any], ScoringContext], ItemScores]


@dataclass(frozen=True)
class TaskScorer:
    metrics: tuple[Metric, ...]
    score_item: ItemScorer
    prepare: Callable[[ScoringContext], None] = lambda context: None
    """Checks the context once before any item (e.g. that an answer schema is there)."""
