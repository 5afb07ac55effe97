"""The power of the gate's non-inferiority test: the smallest regression it can detect.

One formula serves the eval report (from the standard error the gate's paired bootstrap
measured) and `runner plan`/`validate` (before any run, from the worst case a metric's
variance can have), so the warning before training and the figure after it agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from runner.findings import Finding, Severity
from runner.policy.promotion import predecessor
from runner.specs.bundle import AdapterBundle
from runner.specs.evaluation import IncumbentComparison
from runner.workspace import Workspace

POWER = 0.8
"""The chance of telling a regression of the detectable size from no change."""
MARGIN_LOC = ("comparisons", "incumbent", "margin")


def detectable_regression(standard_error: float, confidence: float, power: float = POWER) -> float:
    """The minimum detectable effect of the non-inferiority test, for paired differences
    Δ = candidate - incumbent whose mean has standard error `standard_error`.

    The gate passes when the lower bound of the two-sided `confidence` interval of Δ stays
    above -margin: a one-sided test at alpha = (1 - confidence) / 2. With the estimate of Δ
    normal around the true Δ, the test tells a true regression of

        MDE = (z[1 - alpha] + z[power]) · SE

    from no change with probability `power` (1.96 + 0.84 = 2.80 standard errors at 95% and
    80%). A margin smaller than the MDE asks for more than the eval set can show: a candidate
    as good as the incumbent then fails the gate more often than 1 - power."""
    alpha = (1 - confidence) / 2
    normal = NormalDist()
    return (normal.inv_cdf(1 - alpha) + normal.inv_cdf(power)) * standard_error


def worst_case_standard_error(items: int, floor: float | None = None) -> float:
    """The standard error of a paired difference of a metric in [0, 1] over `items` items,
    before any output exists. A mean p of values in [0, 1] varies at most p(1 - p) per
    item, most at p = 0.5, or at the metric's floor when that is above 0.5 (a passing
    candidate scores at least it). The two sides are taken as independent, since pairing
    only narrows the difference when they agree: SE = sqrt(2 · p(1 - p) / n)."""
    p = max(0.5, floor or 0.0)
    return math.sqrt(2 * p * (1 - p) / items)


def items_for(margin: float, items: int, detectable: float) -> int:
    """How many items bring the detectable regression down to `margin` (the standard error
    shrinks as 1/sqrt(n))."""
    return math.ceil(items * (detectable / margin) ** 2)


@dataclass(frozen=True)
class PlannedPower:
    """What the declared eval set can detect, before any run."""

    items: int
    detectable: float
    margin: float

    @property
    def too_small(self) -> bool:
        return self.detectable > self.margin

    @property
    def items_needed(self) -> int:
        return items_for(self.margin, self.items, self.detectable)


def planned_power(
    bundle: AdapterBundle, workspace: Workspace, eval_records: int
) -> PlannedPower | None:
    """The worst-case power for the eval file's `eval_records` (the first `max_items` of
    them). None when the gate will run no non-inferiority test: the comparison is off, there
    is no item, or this is the adapter's first version (no predecessor in git, so no
    incumbent to compare with, and its margin is never used)."""
    spec = bundle.evaluation
    comparison: IncumbentComparison = spec.comparisons.incumbent
    limit = spec.max_items
    items = eval_records if limit is None else min(limit, eval_records)
    if not comparison.enabled or items == 0 or predecessor(bundle, workspace) is None:
        return None
    floor = spec.thresholds.overall.get(spec.primary_metric)
    error = worst_case_standard_error(items, floor)
    return PlannedPower(
        items, detectable_regression(error, comparison.confidence), comparison.margin
    )


def power_findings(bundle: AdapterBundle, power: PlannedPower | None) -> list[Finding]:
    """A warning at the margin when the eval set is too small to detect a regression of it."""
    if power is None or not power.too_small:
        return []
    return [
        bundle.docs["eval.yaml"].finding(
            MARGIN_LOC,
            "eval.power",
            f"comparisons.incumbent.margin {power.margin:g}: {power.items} eval items can "
            f"only detect a regression of {power.detectable:.3f} or more in "
            f"{bundle.evaluation.primary_metric} ({POWER:.0%} power, worst-case variance), "
            "so a candidate as good as the incumbent would often fail the gate",
            hint=f"add eval items (about {power.items_needed:,} would detect the margin) or widen "
            f"the margin to at least {power.detectable:.2f}",
            severity=Severity.WARNING,
        )
    ]
