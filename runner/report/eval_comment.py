"""The PR eval comment: one sticky comment per adapter, found by a hidden marker.

Decision first, then the checks, the metric tables (overall and per category) and the
smallest regression the non-inferiority test can detect, Mermaid `xychart-beta` charts
(GitHub renders them), serving limits, a Jobs run's cost (estimated against actual), the
items whose primary metric flipped against the incumbent (else the base) and the worst
failing items, both collapsed, and links. The same markdown goes to
`$GITHUB_STEP_SUMMARY` when it is set.

Model outputs and anything derived from them are untrusted: outside code they are escaped
(no HTML, no table breaks); inside code they sit in a fence longer than any backtick run
they hold, so nothing they contain can close the fence or the `<details>` around it.
Everything is deterministic: the same report gives the same bytes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Literal

from runner.evaluate.gate import Check
from runner.evaluate.report import EvalReport, FailingItem, Flip, FlipList, MetricRow, Power
from runner.power import POWER, items_for
from runner.report.markdown import cell, comment_marker
from runner.runs.cost import CostLedger, ledger_rows
from runner.serving.figures import Parity, Percentiles, ServingMeasurement

MISSING = "—"
LOSS_CHART_POINTS = 60
"""The loss curve is thinned to at most this many points (evenly spaced, last kept)."""
LOSS_AXIS = "training loss (cross-entropy per token)"
OUTPUT_CHARS = 1200
OUTPUT_LINES = 40
FLIP_CHARS = 500
FLIP_LINES = 20
"""Each prompt and output of a flip is cut to this: three texts per item, two directions."""

_KIND = {
    "zero_tolerance": "zero tolerance",
    "floor": "floor",
    "non_inferiority": "non-inferiority",
    "beats_base": "beats base",
    "serving": "serving",
}
_SERVING = (("p95 latency", "p95 latency (ms)", "ms"), ("peak memory", "peak memory (MB)", "MB"))


# -- the marker ---------------------------------------------------------------------------


def marker(adapter: str) -> str:
    """The hidden first line of `adapter`'s eval comment: the sticky comment's key."""
    return comment_marker("eval", adapter)


# -- escaping and formatting --------------------------------------------------------------


def _text(value: object) -> str:
    """Untrusted text outside code: no HTML, no table or line breaks."""
    text = str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return cell(text)


def _code(value: object) -> str:
    """Inline code that no backtick in `value` can close; safe in a table cell."""
    text = " ".join(str(value).split()) or " "
    ticks = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return cell(f"{ticks}{pad}{text}{pad}{ticks}")


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(f"{re.escape(char)}+", text)
    return max((len(run) for run in runs), default=0)


def _fenced(text: str, info: str = "text") -> list[str]:
    """A fenced code block longer than any backtick run in `text`, so nothing closes it."""
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    return [f"{fence}{info}", *text.split("\n"), fence]


def _is_count(metric: str) -> bool:
    return metric.endswith("_hits")


def _value(value: float | None, metric: str = "") -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:,.0f}" if _is_count(metric) else f"{value:.3f}"


def _delta(value: float | None, metric: str = "") -> str:
    if value is None or not math.isfinite(value):
        return MISSING
    return f"{value:+,.0f}" if _is_count(metric) else f"{value:+.3f}"


def _under(row: MetricRow) -> bool:
    return row.threshold is not None and row.candidate is not None and row.candidate < row.threshold


# -- the comment --------------------------------------------------------------------------


def eval_comment(report: EvalReport) -> str:
    """The PR comment (and job summary) for one adapter's eval report."""
    lines = [marker(report.adapter), *_heading(report), *_section(_next_steps(report))]
    lines += ["", *_checks(report)]
    lines += ["", *_overall(report)]
    lines += _section(_power(report.power))
    lines += _section(_categories(report))
    lines += _section(_charts(report))
    lines += _section(_serving(report))
    lines += _section(_cost(report.cost))
    lines += _section(_flips(report.flips))
    lines += _section(_worst(report.worst_items, report.items))
    lines += _section(_verification(report.verification))
    lines += _section(_links(report.links))
    return "\n".join(lines).rstrip("\n") + "\n"


def _section(lines: list[str]) -> list[str]:
    return ["", *lines] if lines else []


def _heading(report: EvalReport) -> list[str]:
    failed = sum(not check.passed for check in report.checks)
    total = len(report.checks)
    if report.passed:
        passed = f"all {total} checks passed" if total else "no checks declared"
        decision = f"✅ {_code(report.adapter)} passes the gate: {passed}"
    else:
        decision = f"❌ {_code(report.adapter)} fails the gate: {failed} of {total} checks failed"
    facts = [
        f"run {_code(report.run_id)}",
        f"task {_code(report.task)}",
        _eval_items(report.items) if report.items else None,
        f"primary metric {_code(report.primary_metric)}",
    ]
    return [f"## {decision}", "", "Eval of " + " · ".join(f for f in facts if f) + "."]


def _eval_items(count: int) -> str:
    return f"{count} eval item{'' if count == 1 else 's'}"


def _next_steps(report: EvalReport) -> list[str]:
    """What the author can do about a failed gate, and what will not happen by itself."""
    if report.passed:
        return []
    return [
        "### What next",
        "",
        "- To try again, change the spec or the data in a new commit: new inputs are a new "
        "run id, trained and evaluated afresh.",
        f"- Pushing again without such a change changes nothing: run {_code(report.run_id)} "
        "will not be trained again as it is (its candidate is reused; `runner train --force` "
        "retrains it on purpose).",
        f"- Merging this PR will not promote {_code(report.adapter)}: only a candidate that "
        "passes the gate is promoted.",
    ]


def _check_line(check: Check) -> list[str]:
    icon = "✅" if check.passed else "❌"
    kind = _KIND.get(check.kind, check.kind)
    lines = [f"- {icon} {kind}: {_code(check.name)}: {_text(check.detail)}"]
    if check.warning:
        lines.append(f"  - ⚠️ {_text(check.warning)}")
    return lines


def _checks(report: EvalReport) -> list[str]:
    """Failing and warned checks in the open, every check (gate order) collapsed."""
    if not report.checks:
        return ["No gate checks were declared."]
    shown = [c for c in report.checks if not c.passed or c.warning]
    lines = []
    if shown:
        failing = any(not c.passed for c in shown)
        warned = any(c.warning for c in shown)
        title = " and ".join(
            t for t, wanted in (("Failed checks", failing), ("warnings", warned)) if wanted
        ).capitalize()
        lines += [f"### {title}", ""]
        for check in shown:
            lines += _check_line(check)
        lines.append("")
    lines += [f"<details><summary>All {len(report.checks)} checks, in gate order</summary>", ""]
    for check in report.checks:
        lines += _check_line(check)
    return [*lines, "", "</details>"]


def _overall(report: EvalReport) -> list[str]:
    lines = [
        "### Metrics",
        "",
        "| metric | threshold | candidate (95% CI) | incumbent | base | Δ vs base |",
        "|---|---|---|---|---|---|",
    ]
    for row in report.overall:
        name = _code(row.metric) + (" ★" if row.metric == report.primary_metric else "")
        threshold = f"≥ {_value(row.threshold)}" if row.threshold is not None else MISSING
        candidate = _value(row.candidate, row.metric)
        if row.interval is not None and row.candidate is not None:
            low, high = row.interval
            candidate += f" ({low:.2f}\u2013{high:.2f})"  # an en dash
        if _under(row):
            candidate = f"❌ **{candidate}**"
        lines.append(
            f"| {name} | {threshold} | {candidate} | {_value(row.incumbent, row.metric)} "
            f"| {_value(row.base, row.metric)} | {_delta(row.delta_vs_base, row.metric)} |"
        )
    if not report.overall:
        lines.append(f"| {MISSING} | | | | | |")
    lines += [
        "",
        "★ primary metric. ❌ **bold**: under its threshold. The interval is Wilson's 95% "
        "interval; incumbent and base are the promoted version and the base model on the "
        "same items.",
    ]
    return lines


def _categories(report: EvalReport) -> list[str]:
    """One row per metric, one column per category; each cell: candidate (base NNN)."""
    names = list(dict.fromkeys(row.category for row in report.categories if row.category))
    if not names:
        return []
    cells: dict[tuple[str, str], MetricRow] = {
        (row.metric, row.category): row for row in report.categories if row.category
    }
    metrics = list(dict.fromkeys(row.metric for row in report.categories))
    lines = [
        "### Per category",
        "",
        "| metric | " + " | ".join(_text(name) for name in names) + " |",
        "|---|" + "---|" * len(names),
    ]
    for metric in metrics:
        rows = [cells.get((metric, name)) for name in names]
        if all(r is None or (r.candidate is None and r.base is None) for r in rows):
            continue  # the metric applies to no category: a row of dashes says nothing
        shown = [_category_cell(r) for r in rows]
        lines.append(f"| {_code(metric)} | " + " | ".join(shown) + " |")
    lines += [
        "",
        "Each cell: the candidate's score, then the base model's on the same items. "
        "❌ **bold**: under the category's floor, shown after it.",
    ]
    return lines


def _category_cell(row: MetricRow | None) -> str:
    if row is None or (row.candidate is None and row.base is None):
        return MISSING
    text = f"{_value(row.candidate, row.metric)} (base {_value(row.base, row.metric)})"
    if _under(row):
        return f"❌ **{text}** floor {_value(row.threshold)}"
    return text


# -- Mermaid charts -----------------------------------------------------------------------


def _label(text: object) -> str:
    """A quoted xychart-beta label: no quotes, backticks, brackets or comment markers."""
    cleaned = re.sub(r"[^\w .,:/()+&'-]", "_", " ".join(str(text).split()))
    return f'"{cleaned or "_"}"'


def _number(value: float) -> str:
    """A number as xychart-beta reads it: plain decimal, never an exponent."""
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _nice_max(value: float) -> float:
    """A round upper bound for an axis: 1, 2, 2.5 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= value)


def xychart(
    title: str,
    x_title: str,
    labels: Sequence[object],
    y_title: str,
    y_range: tuple[float, float],
    series: Sequence[tuple[Literal["bar", "line"], Sequence[float]]],
    *,
    x_range: tuple[float, float] | None = None,
) -> list[str]:
    """A fenced `mermaid` xychart-beta block; every series has one value per label. With
    `x_range` (and no labels) the x-axis is numeric: Mermaid numbers its ticks and spreads
    the values evenly over the range."""
    for _, values in series:
        if x_range is None and len(values) != len(labels):
            raise ValueError(f"{len(values)} values for {len(labels)} x labels")
    if x_range is None:
        x_axis = f"[{', '.join(_label(x) for x in labels)}]"
    else:
        x_axis = f"{_number(x_range[0])} --> {_number(x_range[1])}"
    lines = [
        "xychart-beta",
        f"    title {_label(title)}",
        f"    x-axis {_label(x_title)} {x_axis}",
        f"    y-axis {_label(y_title)} {_number(y_range[0])} --> {_number(y_range[1])}",
    ]
    lines += [f"    {kind} [{', '.join(_number(v) for v in values)}]" for kind, values in series]
    return ["```mermaid", *lines, "```"]


def _thin(points: Sequence[tuple[float, float]], limit: int) -> list[tuple[float, float]]:
    if len(points) <= limit:
        return list(points)
    picks = sorted({round(i * (len(points) - 1) / (limit - 1)) for i in range(limit)})
    return [points[i] for i in picks]


def _charts(report: EvalReport) -> list[str]:
    lines: list[str] = []
    finite = [
        (step, loss)
        for step, loss in report.loss_history
        if math.isfinite(step) and math.isfinite(loss)
    ]
    if finite:
        points = _thin(finite, LOSS_CHART_POINTS)
        low = min(0.0, math.floor(min(loss for _, loss in points)))
        high = _nice_max(max(loss for _, loss in points))
        first, last = points[0][0], points[-1][0]
        lines += xychart(
            "Training loss",
            "training step",
            [],
            LOSS_AXIS,
            (low, high),
            [("line", [loss for _, loss in points])],
            x_range=(first, last if last > first else first + 1),
        )
        notes = []
        if len(points) < len(finite):
            notes.append(f"{len(points)} of {len(finite)} logged steps shown")
        if len(finite) < len(report.loss_history):
            notes.append(f"{len(report.loss_history) - len(finite)} non-finite loss value(s)")
        if notes:
            lines += ["", "Loss curve: " + "; ".join(notes) + "."]
    rows = [
        row
        for row in report.categories
        if row.metric == report.primary_metric and row.category and row.candidate is not None
    ]
    if rows:
        candidate = [row.candidate or 0.0 for row in rows]
        base = [row.base for row in rows]
        series: list[tuple[Literal["bar", "line"], Sequence[float]]] = [("bar", candidate)]
        with_base = all(value is not None for value in base)
        if with_base:
            series.append(("line", [value or 0.0 for value in base]))
        peak = max([*candidate, *(v for v in base if v is not None)])
        top = 1.0 if peak <= 1.0 and not _is_count(report.primary_metric) else _nice_max(peak)
        title = f"{report.primary_metric} by category"
        if lines:
            lines.append("")
        lines += xychart(
            title, "category", [row.category for row in rows], report.primary_metric, (0, top),
            series,
        )  # fmt: skip
        lines += [
            "",
            "Bars: candidate"
            + (
                "; line: base model." if with_base else " (no base model score for every category)."
            ),
        ]
    return ["### Charts", "", *lines] if lines else []


# -- serving, failing items, links --------------------------------------------------------


def _serving(report: EvalReport) -> list[str]:
    if report.serving.measured is not None:
        return _served(report.serving.measured)
    if report.serving.findings:
        return ["### Serving", "", "Not served: the adapter's settings would serve wrongly.", ""]
    measured = {
        "p95 latency (ms)": report.serving.p95_latency_ms,
        "peak memory (MB)": report.serving.peak_memory_mb,
    }
    checks = {c.name: c for c in report.checks if c.kind == "serving"}
    lines = ["### Serving", "", "| | measured | limit | |", "|---|---|---|---|"]
    for shown, name, unit in _SERVING:
        value = measured[name]
        check = checks.get(name)
        limit = f"{check.threshold:,.0f} {unit}" if check and check.threshold is not None else "—"
        result = MISSING if check is None else ("✅" if check.passed else "❌")
        value_text = "not measured" if value is None else f"{value:,.0f} {unit}"
        lines.append(f"| {shown} | {value_text} | {limit} | {result} |")
    return lines


def _served(measured: ServingMeasurement) -> list[str]:
    lines = [
        f"### Serving in {_text(measured.engine)}",
        "",
        f"Measured on {_text(measured.hardware)}: the server started in "
        f"{measured.start_seconds:,.1f} s and its processes peaked at "
        f"{measured.peak_memory_mb:,.0f} MB.",
        "",
        "| load | requests | TTFT p50 / p95 | latency p50 / p95 | tokens/s p50 / p95 | "
        "output tokens p50 |",
        "|---|---|---|---|---|---|",
    ]
    for load in measured.loads:
        shown = "one at a time" if load.concurrency == 1 else f"{load.concurrency} at once"
        lines.append(
            f"| {shown} | {load.requests} | {_pair(load.ttft_ms, 'ms')} | "
            f"{_pair(load.latency_ms, 'ms')} | {_pair(load.tokens_per_second, '')} | "
            f"{load.output_tokens.p50:,.0f} |"
        )
    return lines + _parity(measured.parity)


def _pair(values: Percentiles, unit: str) -> str:
    return f"{values.p50:,.0f} / {values.p95:,.0f}{' ' + unit if unit else ''}"


def _parity(forms: Sequence[Parity]) -> list[str]:
    if not forms:
        return []
    lines = [
        "",
        "#### Parity with the PEFT outputs the eval scored (greedy, same prompts)",
        "",
        "| served as | token agreement | primary metric: PEFT → served | diverging items |",
        "|---|---|---|---|",
    ]
    for form in forms:
        lines.append(
            f"| {_text(form.form)} | {form.token_agreement:.3f} of the first {form.tokens} | "
            f"{_code(form.metric)}: {form.reference_score:.3f} → {form.served_score:.3f} | "
            f"{form.diverged} of {form.items} |"
        )
    for form in forms:
        if form.diverging:
            summary = f"The {len(form.diverging)} least agreeing items, {_text(form.form)}"
            lines += ["", f"<details><summary>{summary}</summary>", ""]
            for item in form.diverging:
                lines += [f"#### {_code(item.item_id)} (agreement {item.agreement:.2f})", ""]
                for title, text in (("PEFT", item.reference), ("Served", item.served)):
                    shown, clipped = _clip(text, FLIP_CHARS, FLIP_LINES)
                    cut = f" (first {FLIP_CHARS} characters)" if clipped else ""
                    lines += [f"{title}{cut}:", "", *_fenced(shown), ""]
            lines.append("</details>")
    return lines


def _cost(ledger: CostLedger | None) -> list[str]:
    """Estimated against actual, for a run on Hugging Face Jobs; nothing for other backends."""
    if ledger is None:
        return []
    lines = [
        f"### Cost on Hugging Face Jobs ({_code(ledger.actual.flavor)})",
        "",
        "| | estimated | actual |",
        "|---|---|---|",
    ]
    return lines + [
        f"| {what} | {_text(est)} | {_text(act)} |" for what, est, act in ledger_rows(ledger)
    ]


def _clip(output: str, chars: int = OUTPUT_CHARS, lines: int = OUTPUT_LINES) -> tuple[str, bool]:
    text = output.replace("\r\n", "\n").replace("\r", "\n")
    clipped = text[:chars]
    kept = clipped.split("\n")[:lines]
    clipped = "\n".join(kept)
    return clipped, clipped != text


def _worst(items: Sequence[FailingItem], evaluated: int) -> list[str]:
    if not items:
        return []
    of = f"of the {_eval_items(evaluated)}" if evaluated else "failing items"
    lines = [
        f"<details><summary>The {len(items)} worst {of}, most failed metrics first</summary>",
        "",
    ]
    for item in items:
        lines += [f"#### {_code(item.item_id)} ({_text(item.category)})", ""]
        lines += [
            f"- {_code(metric)}: {_text(reason)}" for metric, reason in sorted(item.failed.items())
        ]
        text, clipped = _clip(item.output)
        lines += ["", *_fenced(text)]
        if clipped:
            lines += ["", f"*Output truncated (first {OUTPUT_CHARS} characters, at most "
                          f"{OUTPUT_LINES} lines).*"]  # fmt: skip
        lines.append("")
    return [*lines, "</details>"]


def _power(power: Power | None) -> list[str]:
    """The smallest regression the non-inferiority test detects, warned past the margin."""
    if power is None:
        return []
    against = "the incumbent" if power.against == "incumbent" else "the base model"
    lines = [
        "### Power",
        "",
        f"With {_eval_items(power.items)}, the non-inferiority test ({power.confidence:.0%} "
        f"paired bootstrap) detects a regression of **{power.detectable:.3f}** or more in "
        f"{_code(power.metric)} with {POWER:.0%} power; the declared margin is "
        f"{power.margin:g}. From the candidate's paired differences against {against} "
        f"(standard error {power.standard_error:.3f}); the figure shrinks as 1/√n.",
    ]
    if power.against != "incumbent":
        lines += ["", "There is no incumbent yet: the base model's differences stand in."]
    if power.detectable > power.margin:
        needed = items_for(power.margin, power.items, power.detectable)
        lines += [
            "",
            f"⚠️ The margin {power.margin:g} is finer than this eval set can resolve: a "
            "candidate as good as the incumbent often fails the gate. About "
            f"{needed:,} items would detect a regression of the margin, or widen the margin "
            f"to at least {power.detectable:.2f}.",
        ]
    return lines


def _flips(flips: FlipList | None) -> list[str]:
    """The items the candidate broke and fixed on the primary metric, each collapsed."""
    if flips is None:
        return []
    against = "the incumbent" if flips.against == "incumbent" else "the base model"
    metric = _code(flips.metric) + " ★"
    lines = [
        f"### Flips against {against}",
        "",
        f"{flips.broken_total} item(s) went from pass to fail on {metric} and "
        f"{flips.fixed_total} from fail to pass (pass: full marks on the item).",
    ]
    directions = (
        ("❌ Pass → fail", flips.broken, flips.broken_total),
        ("✅ Fail → pass", flips.fixed, flips.fixed_total),
    )
    for title, items, total in directions:
        if not total:
            continue
        lines += ["", f"<details><summary>{title}: {total} item(s)</summary>", ""]
        for item in items:
            lines += _flip(item, flips.against)
        if total > len(items):
            lines += [f"*{total - len(items)} more not shown: the first {len(items)} in item "
                      "order are.*", ""]  # fmt: skip
        lines.append("</details>")
    return lines


def _flip(item: Flip, against: str) -> list[str]:
    lines = [f"#### {_code(item.item_id)} ({_text(item.category)})", ""]
    for title, text in (("Prompt", item.prompt), ("Candidate", item.candidate),
                        (against.capitalize(), item.other)):  # fmt: skip
        shown, clipped = _clip(text, FLIP_CHARS, FLIP_LINES)
        cut = f" (first {FLIP_CHARS} characters, at most {FLIP_LINES} lines)" if clipped else ""
        lines += [f"{title}{cut}:", "", *_fenced(shown), ""]
    return lines


def _verification(checked: Sequence[str]) -> list[str]:
    if not checked:
        return []
    return [
        f"<details><summary>Adapter verified ({len(checked)} check(s))</summary>",
        "",
        *(f"- {_text(line)}" for line in checked),
        "",
        "</details>",
    ]


_SAFE_URL = re.compile(r"https?://[^\s<>()\[\]`\"']+")
_LINK_TITLES = {"candidate": "Candidate on the Hub"}


def _links(links: Mapping[str, str]) -> list[str]:
    if not links:
        return []
    lines = ["### Links", ""]
    for key, url in sorted(links.items()):
        title = _text(_LINK_TITLES.get(key, key))
        target = f"[{url}]({url})" if _SAFE_URL.fullmatch(url) else _code(url)
        lines.append(f"- {title}: {target}")
    return lines
