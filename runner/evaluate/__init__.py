"""Scoring of generated eval outputs: per-item values per task, their aggregates, and the
statistics the gate uses. Imports without torch: it runs in the light PR-check install."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from runner.data.citation_task import read_answer_schema
from runner.errors import InputError
from runner.evaluate import citation, code
from runner.evaluate.metrics import (
    ZERO_TOLERANCE_METRICS,
    ItemScores,
    Metric,
    MetricTable,
    ScoringContext,
    TaskScorer,
    aggregate,
    by_category,
    table,
)
from runner.evaluate.rows import ROLES, OutputRow, Pair, Role, join, read_rows
from runner.evaluate.stats import p95, paired_bootstrap, wilson_interval
from runner.findings import Severity
from runner.policy import load_text_policies

SCORERS: dict[str, TaskScorer] = {citation.TASK: citation.SCORER, code.TASK: code.SCORER}


def score(
    task: str,
    rows: Iterable[OutputRow],
    records: Sequence[dict[str, Any]],
    context: ScoringContext,
) -> dict[Role, list[ItemScores]]:
    """Every role's item scores, in the order of `records` (the evaluated eval records)."""
    scorer = SCORERS.get(task)
    if scorer is None:
        raise InputError(f"no scorer for task {task!r}; known: {', '.join(SCORERS)}")
    scorer.prepare(context)
    joined = join(rows, records)
    return {
        role: [scorer.score_item(row, record, context) for row, record in pairs]
        for role, pairs in joined.items()
    }


def load_context(
    repo_root: Path, answer_schema: str | None = None, outputs_path: str = "eval_outputs.jsonl"
) -> ScoringContext:
    """The text policies of `repo_root/policies` and the answer schema the dataset manifest
    declares (relative to `repo_root`), ready to score with. Broken policies or a schema that
    cannot be used are an InputError: scoring without them would pass outputs that should
    fail."""
    policies, problems = load_text_policies(repo_root / "policies")
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if errors:
        raise InputError("text policies did not load:\n" + "\n".join(f"  - {e}" for e in errors))
    schema = None if answer_schema is None else read_answer_schema(repo_root, answer_schema)
    return ScoringContext(policies, schema, outputs_path)


__all__ = [
    "ROLES",
    "SCORERS",
    "ZERO_TOLERANCE_METRICS",
    "ItemScores",
    "Metric",
    "MetricTable",
    "OutputRow",
    "Pair",
    "Role",
    "ScoringContext",
    "TaskScorer",
    "aggregate",
    "by_category",
    "join",
    "load_context",
    "p95",
    "paired_bootstrap",
    "read_rows",
    "score",
    "table",
    "wilson_interval",
]
