"""Intervals for the gate: Wilson intervals for rates, a paired bootstrap for differences
between two models on the same items, and p95 latency."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from runner.evaluate.metrics import Aggregate, ItemScores

# Resamples are drawn in blocks so memory stays at block x items floats however many
# resamples are asked for; the random stream, and so the result, does not depend on it.
_BLOCK = 256


def wilson_interval(successes: float, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval for `successes` out of `n`. `successes` may be a rate x n (a
    mean over n items). n == 0: nothing is known, (0, 1)."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} is outside 0..{n}")
    rate = successes / n
    z2 = z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    spread = z / (1 + z2 / n) * math.sqrt(rate * (1 - rate) / n + z2 / (4 * n * n))
    return max(0.0, centre - spread), min(1.0, centre + spread)


def paired_bootstrap(
    candidate_items: Sequence[ItemScores],
    other_items: Sequence[ItemScores],
    aggregate: Aggregate | Callable[[Sequence[ItemScores]], float | None],
    *,
    resamples: int = 2000,
    seed: int = 1234,
    confidence: float = 0.95,
) -> tuple[float, float, float] | None:
    """(delta, low, high): the aggregate on the candidate minus on the other model, and its
    percentile interval at `confidence`, resampling item indices jointly for both sides (the
    same items in each resample, which is what makes it paired). Both lists must hold the
    same items in the same order. Resamples where a side is not applicable are dropped;
    None when the metric does not apply to either full list."""
    paired = _paired_deltas(candidate_items, other_items, aggregate, resamples, seed)
    if paired is None:
        return None
    point, every = paired
    if every.size == 0:
        return point, point, point
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(every, [tail, 100 - tail])
    # Identical sides give exactly 0 everywhere; percentile interpolation keeps that exact.
    return point, float(low), float(high)


def paired_standard_error(
    candidate_items: Sequence[ItemScores],
    other_items: Sequence[ItemScores],
    aggregate: Aggregate | Callable[[Sequence[ItemScores]], float | None],
    *,
    resamples: int = 2000,
    seed: int = 1234,
) -> float | None:
    """The standard error of the paired difference `paired_bootstrap` measures: the standard
    deviation of its resampled differences (the same resamples for the same seed), which is
    sd(d) / sqrt(n) for a mean of per-item differences d and holds for any aggregate, a
    balanced mean included. None when the metric does not apply to either full list."""
    paired = _paired_deltas(candidate_items, other_items, aggregate, resamples, seed)
    if paired is None:
        return None
    _, every = paired
    return float(np.std(every)) if every.size else 0.0


def _paired_deltas(
    candidate_items: Sequence[ItemScores],
    other_items: Sequence[ItemScores],
    aggregate: Aggregate | Callable[[Sequence[ItemScores]], float | None],
    resamples: int,
    seed: int,
) -> tuple[float, np.ndarray] | None:
    """The point difference and the applicable resampled differences; None when the metric
    does not apply to either full list."""
    _check_paired(candidate_items, other_items)
    full = np.arange(len(candidate_items))[None, :]
    point = _evaluate(aggregate, candidate_items, full) - _evaluate(aggregate, other_items, full)
    if np.isnan(point[0]):
        return None
    rng = np.random.default_rng(seed)
    deltas: list[np.ndarray] = []
    for start in range(0, resamples, _BLOCK):
        size = min(_BLOCK, resamples - start)
        indices = rng.integers(0, len(candidate_items), size=(size, len(candidate_items)))
        deltas.append(
            _evaluate(aggregate, candidate_items, indices)
            - _evaluate(aggregate, other_items, indices)
        )
    every = np.concatenate(deltas)
    return float(point[0]), every[~np.isnan(every)]


def _check_paired(candidate: Sequence[ItemScores], other: Sequence[ItemScores]) -> None:
    if [i.item_id for i in candidate] != [i.item_id for i in other]:
        raise ValueError("a paired bootstrap needs the same items in the same order on both sides")
    if not candidate:
        raise ValueError("a paired bootstrap needs at least one item")


def _evaluate(
    aggregate: Aggregate | Callable[[Sequence[ItemScores]], float | None],
    items: Sequence[ItemScores],
    indices: np.ndarray,
) -> np.ndarray:
    """The aggregate on each resample (row of `indices`); NaN where it does not apply."""
    resampled = getattr(aggregate, "resampled", None)
    if resampled is not None:
        return resampled(items, indices)
    # Any other aggregate: one call per resample, slower but the same numbers.
    values = [aggregate([items[i] for i in row]) for row in indices]
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def p95(values: Sequence[float]) -> float | None:
    """95th percentile by nearest rank: a value that was measured, and never below the true
    percentile of the sample, which is the safe side for a serving limit. None when empty."""
    return percentile(values, 0.95)


def percentile(values: Sequence[float], share: float) -> float | None:
    """The `share` percentile by nearest rank (a measured value); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(math.ceil(share * len(ordered)), 1) - 1])
