"""The promotion gate: each way to fail is rejected with its reason, and a candidate that
clears every check passes. Scores are built by hand, so each number is known."""

from __future__ import annotations

from typing import Any

import pytest

from runner.evaluate.citation import METRICS
from runner.evaluate.gate import Serving, decide
from runner.evaluate.metrics import ItemScores
from runner.specs.evaluation import EvalSpec

N = 20
FAST = Serving(p95_latency_ms=800.0, peak_memory_mb=900.0)


def spec(**overrides: Any) -> EvalSpec:
    base: dict[str, Any] = {
        "primary_metric": "json_valid_rate",
        "thresholds": {
            "overall": {"json_valid_rate": 0.8},
            "categories": {"strict_format": {"json_valid_rate": 0.7}},
        },
        "zero_tolerance": ["ai_attribution", "secret_leak"],
        "comparisons": {"incumbent": {"margin": 0.05, "seed": 7}},
        "serving": {"p95_latency_ms": 2000, "peak_memory_mb": 3072},
    }
    return EvalSpec.model_validate(base | overrides)


def items(valid: int, *, hits: int = 0, category: str = "strict_format") -> list[ItemScores]:
    """N items, the first `valid` strictly valid JSON; `hits` attribution hits on item 0."""
    return [
        ItemScores(
            item_id=f"item-{i:02d}",
            category=category,
            values={
                "json_valid_rate": 1.0 if i < valid else 0.0,
                "ai_attribution_hits": float(hits if i == 0 else 0),
                "secret_hits": 0.0,
            },
            reasons={} if i < valid else {"json_valid_rate": "not JSON"},
        )
        for i in range(N)
    ]


def outcome(scores: dict[str, list[ItemScores]], serving: Serving = FAST, **overrides: Any):
    decision = decide(spec(**overrides), METRICS, scores, serving)
    return decision.passed, {check.name: check for check in decision.checks}


def test_a_candidate_that_clears_every_check_passes() -> None:
    passed, checks = outcome({"candidate": items(19), "base": items(4), "incumbent": items(18)})
    assert passed
    assert list(checks) == [
        "ai_attribution",
        "secret_leak",
        "json_valid_rate",
        "json_valid_rate [strict_format]",
        "json_valid_rate vs incumbent",
        "json_valid_rate beats the base model",
        "p95 latency (ms)",
        "peak memory (MB)",
    ]
    assert checks["json_valid_rate"].detail.startswith("0.950 (19 of 20 items; 95% CI 0.764-0.991)")


def test_a_single_attribution_hit_fails_the_gate() -> None:
    passed, checks = outcome({"candidate": items(20, hits=1), "base": items(4)})
    assert not passed
    assert not checks["ai_attribution"].passed
    assert checks["ai_attribution"].detail == "1 hit(s) in item-00"


def test_a_candidate_under_a_floor_fails_and_says_by_how_much() -> None:
    passed, checks = outcome({"candidate": items(15), "base": items(4)})
    assert not passed
    floor = checks["json_valid_rate"]
    assert not floor.passed
    assert "0.750" in floor.detail
    assert "floor 0.800" in floor.detail


def test_a_point_estimate_over_the_floor_with_a_wide_interval_passes_with_a_warning() -> None:
    passed, checks = outcome({"candidate": items(17), "base": items(4)})
    assert passed
    assert "lower bound" in checks["json_valid_rate"].warning


def test_a_candidate_worse_than_the_incumbent_beyond_the_margin_fails() -> None:
    passed, checks = outcome({"candidate": items(17), "base": items(4), "incumbent": items(20)})
    assert not passed
    check = checks["json_valid_rate vs incumbent"]
    assert not check.passed
    assert check.value == pytest.approx(-0.15)
    assert check.interval[0] < -0.05


def test_a_candidate_no_better_than_the_base_model_fails() -> None:
    passed, checks = outcome({"candidate": items(18), "base": items(18)})
    assert not passed
    check = checks["json_valid_rate beats the base model"]
    assert not check.passed
    assert "Δ +0.000" in check.detail


def test_a_latency_over_the_limit_fails() -> None:
    slow = Serving(p95_latency_ms=2500.0, peak_memory_mb=900.0)
    passed, checks = outcome({"candidate": items(19), "base": items(4)}, slow)
    assert not passed
    assert not checks["p95 latency (ms)"].passed
    assert checks["p95 latency (ms)"].detail == "2,500 vs limit 2,000"


def test_an_unmeasured_serving_limit_is_a_failure_not_a_pass() -> None:
    unmeasured = Serving(p95_latency_ms=None, peak_memory_mb=900.0)
    passed, checks = outcome({"candidate": items(19), "base": items(4)}, unmeasured)
    assert not passed
    assert checks["p95 latency (ms)"].detail == "not measured by the run"


def test_the_bootstrap_is_deterministic_for_the_declared_seed() -> None:
    scores = {"candidate": items(17), "base": items(4), "incumbent": items(18)}
    _, first = outcome(scores)
    _, second = outcome(scores)
    assert first["json_valid_rate vs incumbent"] == second["json_valid_rate vs incumbent"]
