"""The eval report: what `runner eval` writes (`eval_report.json`) and what the PR comment
and the model card are rendered from. Plain data, written and read back by one pydantic
`TypeAdapter`, so the JSON round-trips it exactly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ConfigDict, TypeAdapter, ValidationError

from runner.errors import InputError
from runner.evaluate.gate import Check, Serving, applicable
from runner.evaluate.metrics import BalancedMean, ItemScores, Metric, Sum, by_category
from runner.evaluate.rows import OutputRow, Role
from runner.evaluate.stats import paired_standard_error, wilson_interval
from runner.power import detectable_regression
from runner.runs.cost import CostLedger
from runner.specs.evaluation import EvalSpec
from runner.train.train import prompt_messages

WORST_ITEMS = 5
FLIPS_KEPT = 5
"""Flipped items kept per direction (first in item order); the rest are only counted."""
FLIP_TEXT_CHARS = 2000
"""Each prompt and output of a flip is kept to this many characters."""


@dataclass(frozen=True)
class MetricRow:
    metric: str
    category: str | None
    threshold: float | None
    candidate: float | None
    interval: tuple[float, float] | None
    incumbent: float | None
    base: float | None

    @property
    def delta_vs_base(self) -> float | None:
        if self.candidate is None or self.base is None:
            return None
        return self.candidate - self.base


@dataclass(frozen=True)
class FailingItem:
    item_id: str
    category: str
    failed: dict[str, str]
    """Metric -> why."""
    output: str


@dataclass(frozen=True)
class Flip:
    """An item whose primary metric changed between the other model and the candidate."""

    item_id: str
    category: str
    prompt: str
    candidate: str
    other: str
    """The output of the model compared against (incumbent, else base)."""


@dataclass(frozen=True)
class FlipList:
    """The items the candidate broke and fixed on the primary metric, against `against`."""

    against: Role
    metric: str
    broken: list[Flip]
    """Passed with `against`, fail with the candidate: the first FLIPS_KEPT in item order."""
    fixed: list[Flip]
    """Failed with `against`, pass with the candidate: the first FLIPS_KEPT in item order."""
    broken_total: int
    fixed_total: int


@dataclass(frozen=True)
class Power:
    """The smallest regression the non-inferiority test can detect on this eval set, from
    the candidate's paired differences against `against` (see runner/power.py)."""

    against: Role
    metric: str
    items: int
    standard_error: float
    detectable: float
    margin: float
    confidence: float


@dataclass(frozen=True)
class EvalReport:
    # A diverged run logs a NaN or infinite loss: written as NaN/Infinity (as Python's json
    # writes them), not pydantic's default null, so that reading it back gives the same value.
    __pydantic_config__ = ConfigDict(ser_json_inf_nan="constants")

    adapter: str
    run_id: str
    task: str
    primary_metric: str
    passed: bool
    checks: list[Check]
    overall: list[MetricRow]
    categories: list[MetricRow]
    serving: Serving
    loss_history: list[tuple[float, float]]
    worst_items: list[FailingItem]
    links: dict[str, str] = field(default_factory=dict)
    verification: list[str] = field(default_factory=list)
    """What was verified about the adapter files (hashes, config against the spec)."""
    items: int = 0
    cost: CostLedger | None = None
    """Estimated against actual cost, for a run on Hugging Face Jobs."""
    flips: FlipList | None = None
    """None when there was neither an incumbent nor a base model to compare with."""
    power: Power | None = None

    def to_json(self) -> str:
        return _JSON.dump_json(self, indent=2).decode("utf-8") + "\n"

    @classmethod
    def from_json(cls, text: str | bytes) -> EvalReport:
        """The report `to_json` wrote. Strict: no value is coerced to a field's type, and a
        ValidationError says what is wrong; the parser bounds depth and number length, so a
        hostile file is refused quickly too."""
        return _JSON.validate_json(text, strict=True)

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> EvalReport:
        """The report `write` wrote to `path`; an InputError naming the file otherwise."""
        try:
            text = path.read_bytes()
        except OSError as error:
            raise InputError(f"{path}: cannot read an eval report: {error}") from None
        try:
            return cls.from_json(text)
        except ValidationError as error:
            raise InputError(f"{path}: not an eval report: {_first_problem(error)}") from None


_JSON = TypeAdapter(EvalReport)


def _first_problem(error: ValidationError) -> str:
    """One line for a terminal: where and what the first problem is, and how many follow."""
    first = error.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    more = error.error_count() - 1
    return (f"{where}: " if where else "") + first["msg"] + (f" (and {more} more)" if more else "")


def metric_rows(
    metrics: Sequence[Metric],
    scores: Mapping[Role, list[ItemScores]],
    thresholds: Mapping[str, float],
    category: str | None = None,
) -> list[MetricRow]:
    def pick(role: Role) -> list[ItemScores] | None:
        items = scores.get(role)
        if items is None:
            return None
        return by_category(items).get(category, []) if category else items

    rows = []
    candidate = pick("candidate") or []
    for metric in metrics:
        value = metric.aggregate(candidate)
        n = applicable(metric, candidate)
        interval = wilson_interval(value * n, n) if value is not None and n else None
        others = {role: pick(role) for role in ("incumbent", "base")}
        rows.append(
            MetricRow(
                metric.name,
                category,
                thresholds.get(metric.name),
                value,
                interval,
                *(metric.aggregate(items) if items else None for items in others.values()),
            )
        )
    return rows


def worst_items(
    candidate: Sequence[ItemScores], outputs: Mapping[str, str], limit: int = WORST_ITEMS
) -> list[FailingItem]:
    """The candidate's items that failed the most metrics, most first (stable by item id)."""
    failing = sorted(
        (item for item in candidate if item.reasons), key=lambda i: (-len(i.reasons), i.item_id)
    )
    return [
        FailingItem(i.item_id, i.category, dict(i.reasons), outputs.get(i.item_id, "")[:600])
        for i in failing[:limit]
    ]


def loss_points(metrics_json: Mapping[str, Any]) -> list[tuple[float, float]]:
    history = (metrics_json.get("training") or {}).get("loss_history") or []
    return [(float(step["step"]), float(step["loss"])) for step in history if "loss" in step]


def compared_role(scores: Mapping[Role, list[ItemScores]]) -> Role | None:
    """Whom the candidate is compared with item by item: the incumbent, else the base."""
    return next((role for role in ("incumbent", "base") if role in scores), None)


def item_passes(metric: Metric, item: ItemScores) -> bool | None:
    """Whether the item has full marks on `metric` (1.0 on each applicable value; a partial
    score such as a recall of 0.5 fails); None where the metric does not apply to it or is a
    count, which no item passes or fails."""
    aggregate = metric.aggregate
    if isinstance(aggregate, Sum):
        return None
    keys = aggregate.keys if isinstance(aggregate, BalancedMean) else (aggregate.key,)
    values = [value for key in keys if (value := item.values.get(key)) is not None]
    return min(values) >= 1.0 if values else None


def flip_list(
    metric: Metric,
    scores: Mapping[Role, list[ItemScores]],
    rows: Sequence[OutputRow],
    records: Sequence[dict[str, Any]],
    limit: int = FLIPS_KEPT,
) -> FlipList | None:
    """The items whose `metric` went from pass to fail and from fail to pass against the
    incumbent (else the base), with their prompt and both outputs; None with neither."""
    against = compared_role(scores)
    if against is None:
        return None
    broken: list[ItemScores] = []
    fixed: list[ItemScores] = []
    for ours, theirs in zip(scores["candidate"], scores[against], strict=True):
        now, before = item_passes(metric, ours), item_passes(metric, theirs)
        if now is not None and before is not None and now != before:
            (fixed if now else broken).append(ours)
    texts = {(row.role, row.item_id): row.output for row in rows}
    prompts = {str(record["id"]): _prompt_text(record) for record in records}

    def flip(item: ItemScores) -> Flip:
        shown = (
            prompts.get(item.item_id, ""),
            *(texts.get((role, item.item_id), "") for role in ("candidate", against)),
        )
        return Flip(item.item_id, item.category, *(text[:FLIP_TEXT_CHARS] for text in shown))

    return FlipList(
        against,
        metric.name,
        [flip(item) for item in broken[:limit]],
        [flip(item) for item in fixed[:limit]],
        len(broken),
        len(fixed),
    )


def _prompt_text(record: dict[str, Any]) -> str:
    """The turns a reader needs: the system prompt is the same for every item."""
    turns = prompt_messages(record)
    return "\n\n".join(f"{t['role']}: {t['content']}" for t in turns if t["role"] != "system")


def observed_power(
    spec: EvalSpec, metric: Metric, scores: Mapping[Role, list[ItemScores]]
) -> Power | None:
    """The regression the non-inferiority test detects with the candidate's observed variance:
    the standard error of its paired differences against the incumbent (else the base, the
    variance a later version will meet), from the gate's own resamples and seed."""
    settings = spec.comparisons.incumbent
    against = compared_role(scores)
    if against is None or not settings.enabled:
        return None
    candidate = scores["candidate"]
    error = paired_standard_error(
        candidate,
        scores[against],
        metric.aggregate,
        resamples=settings.bootstrap_samples,
        seed=settings.seed,
    )
    if error is None:
        return None
    detectable = detectable_regression(error, settings.confidence)
    items = applicable(metric, candidate)
    return Power(
        against, metric.name, items, error, detectable, settings.margin, settings.confidence
    )
