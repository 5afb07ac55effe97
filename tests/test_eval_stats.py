"""Statistics of the gate: Wilson intervals against known values, the paired bootstrap
(deterministic, paired, recomputing the metric's own aggregate), p95 latency, and the
aggregates the bootstrap resamples."""

from __future__ import annotations

import pytest

from runner.evaluate import ItemScores, Metric, aggregate, p95, paired_bootstrap, wilson_interval
from runner.evaluate.metrics import BalancedMean, Mean, Sum


def items(values: list[float | None], key: str = "m", category: str = "c") -> list[ItemScores]:
    return [ItemScores(f"i{n}", category, {key: v}) for n, v in enumerate(values)]


# --- Wilson ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("successes", "n", "expected"),
    [
        (8, 10, (0.4902, 0.9433)),
        (0, 10, (0.0, 0.2775)),
        (10, 10, (0.7225, 1.0)),
        (50, 100, (0.4038, 0.5962)),
        (1, 1, (0.2065, 1.0)),
    ],
)
def test_wilson_known_values(successes, n, expected):
    low, high = wilson_interval(successes, n)
    assert (round(low, 4), round(high, 4)) == expected


def test_wilson_takes_a_rate_times_n_and_other_z():
    assert wilson_interval(0.8 * 10, 10) == pytest.approx(wilson_interval(8, 10))
    narrow, wide = wilson_interval(8, 10, z=1.0), wilson_interval(8, 10, z=2.576)
    assert wide[0] < narrow[0] < 0.8 < narrow[1] < wide[1]


def test_wilson_edge_cases():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="outside"):
        wilson_interval(11, 10)


# --- aggregates --------------------------------------------------------------------------


def test_mean_skips_items_where_the_metric_does_not_apply():
    metric = Metric("m", "test")
    assert aggregate(metric, items([1.0, None, 0.0, 1.0])) == pytest.approx(2 / 3)
    assert aggregate(metric, items([None, None])) is None
    assert aggregate(metric, []) is None


def test_sum_and_balanced_mean():
    assert Sum("m")(items([1.0, 0.0, 2.0])) == 3.0
    assert Sum("m")(items([None])) is None
    two_sides = [
        *[ItemScores(f"a{i}", "c", {"a": v, "b": None}) for i, v in enumerate([1, 1, 1, 0])],
        ItemScores("b0", "c", {"a": None, "b": 0.0}),
    ]
    assert BalancedMean(("a", "b"))(two_sides) == 0.375
    assert BalancedMean(("a", "b"))(two_sides[:4]) == 0.75  # one side present: its mean


# --- paired bootstrap --------------------------------------------------------------------


def constructed(n: int = 200) -> tuple[list[ItemScores], list[ItemScores]]:
    """Candidate right on 80% of items, the other model on 60%, the other's right items a
    subset of the candidate's: the true difference is 0.2 exactly."""
    candidate = items([1.0 if i % 10 < 8 else 0.0 for i in range(n)])
    other = items([1.0 if i % 10 < 6 else 0.0 for i in range(n)])
    return candidate, other


def test_bootstrap_interval_contains_the_true_difference():
    candidate, other = constructed()
    delta, low, high = paired_bootstrap(candidate, other, Mean("m"))
    assert delta == pytest.approx(0.2)
    assert 0.0 < low < 0.2 < high < 0.4


def test_bootstrap_is_deterministic_for_a_seed():
    candidate, other = constructed()
    first = paired_bootstrap(candidate, other, Mean("m"), seed=7)
    assert paired_bootstrap(candidate, other, Mean("m"), seed=7) == first
    assert paired_bootstrap(candidate, other, Mean("m"), seed=8) != first


def test_identical_inputs_give_zero_and_a_zero_interval():
    candidate, _ = constructed()
    assert paired_bootstrap(candidate, list(candidate), Mean("m")) == (0.0, 0.0, 0.0)


def test_pairing_removes_the_shared_item_difficulty():
    """Both models fail the same hard items; the candidate also gets 5 more right. Unpaired
    intervals would be wide; paired, every resample's difference is small and positive."""
    hard = [i % 4 == 0 for i in range(100)]
    other = items([0.0 if h else 1.0 for h in hard])
    candidate = items([1.0 if (h and i < 20) else (0.0 if h else 1.0) for i, h in enumerate(hard)])
    delta, low, high = paired_bootstrap(candidate, other, Mean("m"))
    assert delta == pytest.approx(0.05)
    assert 0.0 < low <= 0.05 <= high < 0.11


@pytest.mark.parametrize(
    "combine", [Mean("a"), Sum("a"), BalancedMean(("a", "b"))], ids=["mean", "sum", "balanced"]
)
def test_vectorized_resamples_equal_the_aggregate_called_on_each_resample(combine):
    def scores(pattern: list[int]) -> list[ItemScores]:
        return [
            ItemScores(f"i{i}", "c", {"a": float(v) if i % 3 else None, "b": float(1 - v)})
            for i, v in enumerate(pattern)
        ]

    candidate = scores([i % 2 for i in range(30)])
    other = scores([(i // 2) % 2 for i in range(30)])
    fast = paired_bootstrap(candidate, other, combine, resamples=300, seed=3)
    slow = paired_bootstrap(candidate, other, lambda group: combine(group), resamples=300, seed=3)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_confidence_widens_the_interval():
    candidate, other = constructed()
    _, low90, high90 = paired_bootstrap(candidate, other, Mean("m"), confidence=0.90)
    _, low99, high99 = paired_bootstrap(candidate, other, Mean("m"), confidence=0.99)
    assert low99 <= low90 < high90 <= high99


def test_bootstrap_needs_the_same_items_on_both_sides():
    candidate, other = constructed(10)
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap(candidate, other[::-1], Mean("m"))
    with pytest.raises(ValueError, match="same items"):
        paired_bootstrap(candidate, other[:5], Mean("m"))


def test_bootstrap_of_a_metric_that_applies_to_no_item_is_none():
    assert paired_bootstrap(items([None, None]), items([1.0, 0.0]), Mean("m")) is None


# --- p95 ---------------------------------------------------------------------------------


def test_p95_is_the_nearest_rank():
    assert p95([float(v) for v in range(1, 101)]) == 95.0
    assert p95([float(v) for v in range(1, 21)]) == 19.0
    assert p95([3.0, 1.0, 2.0]) == 3.0
    assert p95([812.5]) == 812.5
    assert p95([]) is None
