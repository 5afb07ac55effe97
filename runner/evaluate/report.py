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
from runner.evaluate.metrics import ItemScores, Metric, by_category
from runner.evaluate.rows import Role
from runner.evaluate.stats import wilson_interval
from runner.runs.cost import CostLedger

WORST_ITEMS = 5


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
