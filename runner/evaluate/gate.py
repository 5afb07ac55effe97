"""The promotion gate declared in `eval.yaml`, applied to scored outputs. Every check is
kept with the numbers behind it, pass or fail; the decision passes only if all pass.

Order, as the design says: zero-tolerance rules, floors (overall and per category; the point
estimate decides, the Wilson interval is shown and warns when it dips under the floor),
non-inferiority against the promoted incumbent (paired bootstrap), the primary metric
beating the base model, then serving limits measured while generating.

How an always-refusing candidate is caught: refusal correctness is balanced accuracy, so
refusing every item scores 0.5 (every unanswerable item right, every answerable one wrong)
and a refusal-correctness floor at or below that does not stop it (`runner validate` warns,
rule eval.refusal-floor). The floors that do are on what a refusal fails on answerable
items: a refusal's citations are not read, so `citation_coverage_rate`, precision and
recall score 0 on every answerable item with gold citations, and `answer_rate_on_answerable`
is 0. kwanzaa-mini-v1 (refusal floor 0.45) relies on its `citation_coverage_rate` floor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from runner.evaluate.metrics import (
    ZERO_TOLERANCE_METRICS,
    BalancedMean,
    ItemScores,
    Mean,
    Metric,
    Sum,
    by_category,
)
from runner.evaluate.rows import Role
from runner.evaluate.stats import p95, paired_bootstrap, wilson_interval
from runner.serving.figures import Parity, ServingMeasurement
from runner.serving.hardware import flavor_class
from runner.specs.evaluation import EvalSpec, ParitySettings

CheckKind = Literal["zero_tolerance", "floor", "non_inferiority", "beats_base", "serving"]


@dataclass(frozen=True)
class Check:
    kind: CheckKind
    name: str
    passed: bool
    detail: str
    """The numbers behind the outcome, in one line."""
    metric: str | None = None
    category: str | None = None
    threshold: float | None = None
    value: float | None = None
    interval: tuple[float, float] | None = None
    warning: str | None = None


@dataclass(frozen=True)
class Serving:
    """What serving the candidate costs. Without a serving engine (no `serving.hardware` in
    eval.yaml), p95 latency and peak memory of the run's own generation; with one, the same
    two figures as the engine measured them under the declared concurrency, and everything
    else it measured in `measured`."""

    p95_latency_ms: float | None
    peak_memory_mb: float | None
    measured: ServingMeasurement | None = None
    findings: list[str] = field(default_factory=list)
    """Serveability lint of the candidate's adapter files (errors fail the gate)."""


@dataclass(frozen=True)
class Decision:
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [check for check in self.checks if not check.passed]


def decide(
    spec: EvalSpec,
    metrics: Sequence[Metric],
    scores: Mapping[Role, list[ItemScores]],
    serving: Serving,
) -> Decision:
    by_name = {metric.name: metric for metric in metrics}
    candidate = scores["candidate"]
    checks = zero_tolerance_checks(spec, by_name, candidate)
    checks += floor_checks(spec, by_name, candidate)
    primary = by_name[spec.primary_metric]
    if "incumbent" in scores and spec.comparisons.incumbent.enabled:
        checks.append(non_inferiority_check(spec, primary, candidate, scores["incumbent"]))
    if "base" in scores and spec.comparisons.base_model.must_beat:
        checks.append(beats_base_check(spec, primary, candidate, scores["base"]))
    checks += serving_checks(spec, serving)
    return Decision(checks)


def zero_tolerance_checks(
    spec: EvalSpec, metrics: Mapping[str, Metric], items: Sequence[ItemScores]
) -> list[Check]:
    checks = []
    for rule in spec.zero_tolerance:
        key = ZERO_TOLERANCE_METRICS[rule]
        hits = Sum(key)(items) or 0.0
        offenders = [i.item_id for i in items if (i.values.get(key) or 0) > 0]
        detail = f"{hits:g} hit(s)" + (f" in {', '.join(offenders[:5])}" if offenders else "")
        checks.append(Check("zero_tolerance", rule, hits == 0, detail, key, None, 0.0, hits))
    return checks


def floor_checks(
    spec: EvalSpec, metrics: Mapping[str, Metric], items: Sequence[ItemScores]
) -> list[Check]:
    floors = [(None, name, floor) for name, floor in spec.thresholds.overall.items()]
    floors += [
        (category, name, floor)
        for category, table in spec.thresholds.categories.items()
        for name, floor in table.items()
    ]
    groups = by_category(items)
    return [
        floor_check(metrics[name], groups.get(category, []) if category else items, floor, category)
        for category, name, floor in floors
    ]


def floor_check(
    metric: Metric, items: Sequence[ItemScores], floor: float, category: str | None
) -> Check:
    where = f"{metric.name}" + (f" [{category}]" if category else "")
    value = metric.aggregate(items)
    n = applicable(metric, items)
    if value is None:
        detail = "no item it applies to"
        return Check("floor", where, False, detail, metric.name, category, floor)
    low, high = wilson_interval(value * n, n)
    warning = None
    if low < floor <= value:
        warning = (
            f"the 95% interval's lower bound {low:.3f} is under the floor: "
            f"{n} items are too few to be sure it holds"
        )
    interval = f"95% CI {low:.3f}-{high:.3f}"
    detail = f"{value:.3f} ({counted(metric, items, n)}; {interval}) vs floor {floor:.3f}"
    return Check(
        "floor", where, value >= floor, detail, metric.name, category, floor, value, (low, high),
        warning,
    )  # fmt: skip


def counted(metric: Metric, items: Sequence[ItemScores], n: int) -> str:
    """The items behind a rate, as a reader counts them: `8 of 38 items` for a metric each
    item passes or fails (a mean of 0s and 1s), `mean over 38 items` for any other."""
    aggregate = metric.aggregate
    if isinstance(aggregate, Mean):
        values = [v for item in items if (v := item.values.get(aggregate.key)) is not None]
        if all(v in (0.0, 1.0) for v in values):
            return f"{round(sum(values))} of {n} items"
    return f"mean over {n} items"


def non_inferiority_check(
    spec: EvalSpec,
    metric: Metric,
    candidate: Sequence[ItemScores],
    incumbent: Sequence[ItemScores],
) -> Check:
    settings = spec.comparisons.incumbent
    result = paired_bootstrap(
        candidate,
        incumbent,
        metric.aggregate,
        resamples=settings.bootstrap_samples,
        seed=settings.seed,
        confidence=settings.confidence,
    )
    name = f"{metric.name} vs incumbent"
    if result is None:
        return Check("non_inferiority", name, False, "no item it applies to", metric.name)
    delta, low, high = result
    passed = low > -settings.margin
    detail = (
        f"Δ {delta:+.3f} ({settings.confidence:.0%} CI {low:+.3f} to {high:+.3f}, "
        f"{settings.bootstrap_samples} paired resamples); lower bound must stay above "
        f"-{settings.margin:g}"
    )
    return Check(
        "non_inferiority", name, passed, detail, metric.name, None, -settings.margin, delta,
        (low, high),
    )  # fmt: skip


def beats_base_check(
    spec: EvalSpec,
    metric: Metric,
    candidate: Sequence[ItemScores],
    base: Sequence[ItemScores],
) -> Check:
    ours, theirs = metric.aggregate(candidate), metric.aggregate(base)
    name = f"{metric.name} beats the base model"
    if ours is None or theirs is None:
        return Check("beats_base", name, False, "no item it applies to", metric.name)
    settings = spec.comparisons.incumbent
    result = paired_bootstrap(
        candidate, base, metric.aggregate, resamples=settings.bootstrap_samples, seed=settings.seed
    )
    interval = (result[1], result[2]) if result else None
    shown = f" (95% CI of Δ {interval[0]:+.3f} to {interval[1]:+.3f})" if interval else ""
    detail = f"candidate {ours:.3f} vs base {theirs:.3f}: Δ {ours - theirs:+.3f}{shown}"
    return Check(
        "beats_base", name, ours > theirs, detail, metric.name, None, theirs, ours, interval
    )


def serving_checks(spec: EvalSpec, serving: Serving) -> list[Check]:
    limits = spec.serving
    if not limits.engine_check:
        return _limit_checks(
            [
                ("p95 latency (ms)", limits.p95_latency_ms, serving.p95_latency_ms, True),
                ("peak memory (MB)", limits.peak_memory_mb, serving.peak_memory_mb, True),
            ]
        )
    if serving.findings:
        detail = "; ".join(serving.findings) + " (not served: fix the adapter's settings)"
        return [Check("serving", "serveability", False, detail)]
    measured = serving.measured
    if measured is None:
        return [Check("serving", "served in vLLM", False, "the serving check did not run")]
    checks = [_hardware_check(limits.hardware or "", measured)]
    loaded = measured.loads[-1]
    checks += _limit_checks(
        [
            (
                f"TTFT p95 (ms) at {loaded.concurrency}",
                limits.ttft_p95_ms,
                loaded.ttft_ms.p95,
                True,
            ),
            (
                f"latency p95 (ms) at {loaded.concurrency}",
                limits.p95_latency_ms,
                loaded.latency_ms.p95,
                True,
            ),
            (
                f"tokens/s p50 at {loaded.concurrency}",
                limits.min_tokens_per_second,
                loaded.tokens_per_second.p50,
                False,
            ),
            ("server peak memory (MB)", limits.peak_memory_mb, measured.peak_memory_mb, True),
        ]
    )
    if not checks[0].passed:  # figures from other hardware say nothing about these limits
        checks[1:] = [dataclasses.replace(c, passed=False) for c in checks[1:]]
    for parity in measured.parity:
        checks += _parity_checks(limits.parity, parity)
    return checks


def _hardware_check(declared: str, measured: ServingMeasurement) -> Check:
    passed = flavor_class(declared) == measured.hardware_class
    detail = f"measured on {measured.hardware} with {measured.engine}"
    if not passed:
        detail += f"; the limits hold on {declared}: run `runner eval` there"
    return Check("serving", f"hardware ({declared})", passed, detail)


def _limit_checks(limits: Sequence[tuple[str, float | None, float | None, bool]]) -> list[Check]:
    """One check per declared limit; `at_most` False for a floor (tokens/s)."""
    checks = []
    for name, limit, measured, at_most in limits:
        if limit is None:
            continue
        if measured is None:
            checks.append(Check("serving", name, False, "not measured by the run", None))
            continue
        passed = measured <= limit if at_most else measured >= limit
        word = "limit" if at_most else "floor"
        detail = f"{measured:,.0f} vs {word} {limit:,.0f}"
        checks.append(Check("serving", name, passed, detail, None, None, limit, measured))
    return checks


def _parity_checks(settings: ParitySettings, parity: Parity) -> list[Check]:
    diverging = ", ".join(item.item_id for item in parity.diverging)
    shown = f"; diverging: {diverging}" if diverging else ""
    agreement = Check(
        "serving",
        f"parity: token agreement, {parity.form}",
        parity.token_agreement >= settings.min_token_agreement,
        f"{parity.token_agreement:.3f} of the first {parity.tokens} tokens agree with PEFT "
        f"over {parity.items} items (floor {settings.min_token_agreement:.2f}){shown}",
        None,
        None,
        settings.min_token_agreement,
        parity.token_agreement,
    )
    drop = Check(
        "serving",
        f"parity: {parity.metric}, {parity.form}",
        parity.metric_drop <= settings.max_metric_drop,
        f"PEFT {parity.reference_score:.3f}, served {parity.served_score:.3f}: drop "
        f"{parity.metric_drop:+.3f} (at most {settings.max_metric_drop:.2f})",
        parity.metric,
        None,
        settings.max_metric_drop,
        parity.metric_drop,
    )
    return [agreement, drop]


def applicable(metric: Metric, items: Sequence[ItemScores]) -> int:
    """How many items the metric has a value for (the n of its interval)."""
    aggregate = metric.aggregate
    keys = aggregate.keys if isinstance(aggregate, BalancedMean) else (aggregate.key,)
    return sum(any(item.values.get(key) is not None for key in keys) for item in items)


def serving_from(latencies_ms: Sequence[float], peak_memory_bytes: int | None) -> Serving:
    memory = peak_memory_bytes / 2**20 if peak_memory_bytes else None
    return Serving(p95(list(latencies_ms)), memory)
