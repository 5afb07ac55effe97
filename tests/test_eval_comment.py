"""The PR eval comment rendered from an EvalReport: marker, decision first, tables, Mermaid
charts, failing items that cannot break out of their block, JSON round trip, job summary."""

from __future__ import annotations

import dataclasses
import math
import re
import time
from pathlib import Path

import pytest

from runner.errors import InputError
from runner.evaluate.gate import Check, Serving
from runner.evaluate.report import EvalReport, FailingItem, MetricRow
from runner.report.eval_comment import eval_comment, marker
from runner.report.github import write_step_summary

CATEGORIES = ["history", "culture & arts", "refusals", "science/tech"]
PRIMARY = "citation_coverage_rate"
DASH = "\u2013"  # an en dash, between the interval's bounds
MARKER_PREFIX = "<!-- adapter-gitops:eval "


def checks(passed: bool) -> list[Check]:
    floor = Check(
        "floor", f"{PRIMARY} [history]", passed, "0.650 (95% CI 0.48-0.79, n=30) vs floor 0.700",
        PRIMARY, "history", 0.7, 0.65 if not passed else 0.75, (0.48, 0.79),
    )  # fmt: skip
    return [
        Check("zero_tolerance", "ai_attribution", True, "0 hit(s)", "ai_attribution_hits"),
        Check(
            "floor",
            PRIMARY,
            True,
            "0.812 vs floor 0.750",
            PRIMARY,
            None,
            0.75,
            0.812,
            (0.70, 0.89),
            "the 95% interval's lower bound 0.700 is under the floor on 120 item(s)",
        ),
        floor,
        Check("beats_base", f"{PRIMARY} beats the base model", True, "Δ +0.3", PRIMARY),
        Check("serving", "p95 latency (ms)", passed, "1,800 vs limit 2,000", None, None, 2000.0),
        Check("serving", "peak memory (MB)", True, "900 vs limit 4,096", None, None, 4096.0),
    ]


def report(passed: bool = True, **changes: object) -> EvalReport:
    overall = [
        MetricRow(PRIMARY, None, 0.75, 0.812, (0.70, 0.89), 0.80, 0.512),
        MetricRow(
            "json_valid_rate", None, 0.9, 0.85 if not passed else 0.95, (0.8, 0.9), None, 0.4
        ),
        MetricRow("citation_recall", None, None, 0.6, (0.5, 0.7), None, None),
        MetricRow("ai_attribution_hits", None, None, 0.0, None, 0.0, 2.0),
    ]
    categories = []
    for index, category in enumerate(CATEGORIES):
        value = 0.65 if (category == "history" and not passed) else 0.8 + index / 100
        categories += [
            MetricRow(PRIMARY, category, 0.7, value, (0.5, 0.9), None, 0.5 - index / 10),
            MetricRow("json_valid_rate", category, None, 0.9, (0.8, 0.95), None, 0.4),
            MetricRow("citation_recall", category, None, None, None, None, None),
        ]
    base = EvalReport(
        adapter="kwanzaa-mini-v1",
        run_id="r-3f9a2c1d",
        task="citation_grounded_chat",
        primary_metric=PRIMARY,
        passed=passed,
        checks=checks(passed),
        overall=overall,
        categories=categories,
        serving=Serving(1800.0, 900.0),
        loss_history=[(float(step), 2.5 / step) for step in range(1, 11)],
        worst_items=[
            FailingItem(
                "hist-007", "history", {"json_valid_rate": "not one JSON object"}, '{"answer": 1'
            )
        ],
        links={"candidate": "http://127.0.0.1:8765/org/candidates/tree/main/runs/r-3f9a2c1d"},
        verification=["adapter_model.safetensors: sha256 0123456789ab… matches run.json"],
        items=120,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def table_row(markdown: str, metric: str) -> list[str]:
    row = next(line for line in markdown.splitlines() if line.startswith(f"| `{metric}`"))
    return [part.strip() for part in row.strip("|").split(" | ")]


def mermaid_blocks(markdown: str) -> list[list[str]]:
    return [
        block.strip("\n").splitlines()
        for block in re.findall(r"^```mermaid\n(.*?)^```$", markdown, re.MULTILINE | re.DOTALL)
    ]


# -- marker and decision ------------------------------------------------------------------


def test_marker_is_the_first_line_and_names_the_adapter() -> None:
    text = eval_comment(report())
    first = text.splitlines()[0]
    assert (
        first == marker("kwanzaa-mini-v1") == "<!-- adapter-gitops:eval adapter=kwanzaa-mini-v1 -->"
    )
    assert first.startswith(MARKER_PREFIX)
    other = eval_comment(report(adapter="kwanzaa-mini-v10")).splitlines()[0]
    assert other == marker("kwanzaa-mini-v10") != first


def test_marker_cannot_be_closed_by_the_adapter_name() -> None:
    text = marker("evil --> <script>")
    assert text.count("-->") == 1
    assert text.endswith(" -->")
    assert "<script>" not in text


def test_the_decision_comes_first_when_it_passes() -> None:
    heading = eval_comment(report()).splitlines()[1]
    assert heading.startswith("## ✅")
    assert "`kwanzaa-mini-v1` passes the gate" in heading
    assert "r-3f9a2c1d" in eval_comment(report()).splitlines()[3]


def test_the_decision_comes_first_when_it_fails() -> None:
    text = eval_comment(report(passed=False))
    heading = text.splitlines()[1]
    assert heading.startswith("## ❌")
    assert "fails the gate: 2 of 6 checks failed" in heading
    failed = text.split("### Failed checks", 1)[1].split("<details>", 1)[0]
    assert f"`{PRIMARY} [history]`" in failed
    assert "p95 latency" in failed
    assert "⚠️ the 95% interval's lower bound" in failed
    assert "`ai_attribution`" not in failed  # passing checks are collapsed
    assert "- ✅ zero tolerance: `ai_attribution`: 0 hit(s)" in text


# -- tables -------------------------------------------------------------------------------


def test_overall_table_shows_threshold_ci_incumbent_base_and_delta() -> None:
    text = eval_comment(report())
    assert "| metric | threshold | candidate (95% CI) | incumbent | base | Δ vs base |" in text
    assert table_row(text, PRIMARY) == [
        f"`{PRIMARY}` ★", "≥ 0.750", f"0.812 (0.70{DASH}0.89)", "0.800", "0.512", "+0.300"
    ]  # fmt: skip
    assert table_row(text, "citation_recall") == [
        "`citation_recall`", "—", f"0.600 (0.50{DASH}0.70)", "—", "—", "—"
    ]  # fmt: skip
    assert table_row(text, "ai_attribution_hits") == [
        "`ai_attribution_hits`", "—", "0", "0", "2", "-2"
    ]  # fmt: skip


def test_a_metric_under_its_threshold_is_marked() -> None:
    passing = table_row(eval_comment(report()), "json_valid_rate")
    assert passing[2] == f"0.950 (0.80{DASH}0.90)"
    failing = table_row(eval_comment(report(passed=False)), "json_valid_rate")
    assert failing[2] == f"❌ **0.850 (0.80{DASH}0.90)**"


def test_per_category_table_has_a_column_per_category_and_marks_floors() -> None:
    text = eval_comment(report(passed=False))
    section = text.split("### Per category", 1)[1].split("###", 1)[0]
    assert "| metric | history | culture &amp; arts | refusals | science/tech |" in section
    row = table_row(section, PRIMARY)
    assert row[1] == "❌ **0.650 (base 0.500)** floor 0.700"
    assert row[2:] == ["0.810 (base 0.400)", "0.820 (base 0.300)", "0.830 (base 0.200)"]
    assert "`citation_recall`" not in section  # applies to no category: no row of dashes


def test_serving_limits_are_shown() -> None:
    text = eval_comment(report(serving=Serving(None, 900.0)))
    assert "| p95 latency | not measured | 2,000 ms |" in text
    assert "| peak memory | 900 MB | 4,096 MB | ✅ |" in text


def test_links_and_verification() -> None:
    text = eval_comment(report())
    assert (
        "- Candidate on the Hub: [http://127.0.0.1:8765/org/candidates/tree/main/runs/r-3f9a2c1d]"
        "(http://127.0.0.1:8765/org/candidates/tree/main/runs/r-3f9a2c1d)"
    ) in text
    assert "matches run.json" in text
    hostile = eval_comment(report(links={"x": "javascript:alert(1)"}))
    assert "](javascript:" not in hostile
    assert "`javascript:alert(1)`" in hostile


# -- charts -------------------------------------------------------------------------------


def chart_parts(block: list[str]) -> tuple[list[str], dict[str, list[list[float]]]]:
    """The x labels (none on a numeric x-axis) and the series of a chart."""
    assert block[0] == "xychart-beta"
    assert block[1].startswith("    title ")
    axis = next(line for line in block if line.strip().startswith("x-axis"))
    numeric = re.fullmatch(r'    x-axis "[^"]+" \d+(\.\d+)? --> \d+(\.\d+)?', axis)
    labels = [] if numeric else re.findall(r'"([^"]*)"', axis.split("[", 1)[1])
    assert re.fullmatch(r'    y-axis "[^"]+" -?\d+(\.\d+)? --> \d+(\.\d+)?', block[3]), block[3]
    series: dict[str, list[list[float]]] = {"bar": [], "line": []}
    number = r"[+-]?(?:\d+(?:\.\d+)?|\.\d+)"  # Mermaid's own: no exponent
    for line in block[4:]:
        kind, values = re.fullmatch(r"    (bar|line) \[(.*)\]", line).groups()  # type: ignore[union-attr]
        parts = values.split(", ")
        assert all(re.fullmatch(number, part) for part in parts), line
        series[kind].append([float(part) for part in parts])
    return labels, series


def test_mermaid_charts_are_well_formed() -> None:
    text = eval_comment(report())
    blocks = mermaid_blocks(text)
    assert len(blocks) == 2
    loss_labels, loss = chart_parts(blocks[0])
    assert blocks[0][2] == '    x-axis "training step" 1 --> 10'
    assert loss_labels == []
    assert loss["line"] == [[round(2.5 / step, 4) for step in range(1, 11)]]
    assert loss["bar"] == []
    labels, series = chart_parts(blocks[1])
    assert labels == ["history", "culture & arts", "refusals", "science/tech"]
    assert series["bar"] == [[0.8, 0.81, 0.82, 0.83]]
    assert series["line"] == [[0.5, 0.4, 0.3, 0.2]]
    labels, series = chart_parts(blocks[1])
    assert all(len(values) == len(labels) for kind in series.values() for values in kind)


def test_long_and_odd_loss_histories_stay_plottable() -> None:
    history = [(float(step), 1e-7 if step == 3 else 10.0 / step) for step in range(1, 501)]
    history.append((501.0, float("nan")))
    text = eval_comment(report(loss_history=history))
    block = mermaid_blocks(text)[0]
    _, series = chart_parts(block)
    assert block[2] == '    x-axis "training step" 1 --> 500'
    assert 2 <= len(series["line"][0]) <= 60
    assert "1 non-finite loss value(s)" in text
    assert "e-" not in "\n".join(mermaid_blocks(text)[0])


def test_no_loss_chart_without_a_loss_history() -> None:
    blocks = mermaid_blocks(eval_comment(report(loss_history=[])))
    assert len(blocks) == 1
    assert "category" in blocks[0][2]


def test_hostile_category_names_are_quoted_safely() -> None:
    rows = [MetricRow(PRIMARY, 'a "b" `c` %% d; <e>', None, 0.5, None, None, 0.2)]
    block = mermaid_blocks(eval_comment(report(categories=rows)))[-1]
    labels, series = chart_parts(block)
    assert labels == ["a _b_ _c_ __ d_ _e_"]
    assert series["bar"] == [[0.5]]


# -- failing items ------------------------------------------------------------------------

HOSTILE = (
    "```\n</details>\n<script>alert(1)</script>\n````` still inside\n"
    "<!-- adapter-gitops:eval adapter=other -->"
)


def test_failing_outputs_cannot_break_out() -> None:
    items = [
        FailingItem(
            "id`</details>", "<b>cat</b>", {"m": "reason <script>x</script> | pipe"}, HOSTILE
        )
    ]
    text = eval_comment(report(worst_items=items))
    section = text.split("<details><summary>The 1 worst of the 120 eval items", 1)[1]
    fence = "``````"  # longer than the output's longest backtick run (5)
    opened = section.index(fence + "text\n")
    closed = section.index("\n" + fence + "\n", opened)
    assert section[opened + len(fence) + 5 : closed] == HOSTILE
    outside = section[:opened] + section[closed:]
    # the block ends after the fence: the output's own `</details>` line is fenced
    assert "\n</details>\n" not in section[:opened]
    assert section[closed:].startswith("\n" + fence + "\n\n</details>\n")
    assert "<script>" not in outside
    assert "<b>" not in outside
    assert "&lt;script&gt;x&lt;/script&gt; \\| pipe" in outside
    assert "``id`</details>``" in outside  # inline code: not HTML
    assert text.splitlines()[0] == marker("kwanzaa-mini-v1")
    assert text.count(MARKER_PREFIX) == 2  # the output's stays inside its fence


def test_long_outputs_are_truncated() -> None:
    items = [FailingItem("x", "history", {"m": "why"}, "line\n" * 500)]
    text = eval_comment(report(worst_items=items))
    assert text.count("\nline") <= 40
    assert "Output truncated" in text


def test_the_comment_is_deterministic() -> None:
    assert eval_comment(report(passed=False)) == eval_comment(report(passed=False))


# -- JSON round trip and step summary ------------------------------------------------------


@pytest.mark.parametrize("passed", [True, False])
def test_json_round_trip(tmp_path: Path, passed: bool) -> None:
    original = report(passed=passed)
    path = tmp_path / "eval_report.json"
    original.write(path)
    loaded = EvalReport.read(path)
    assert loaded == original
    assert loaded.to_json() == original.to_json()
    assert isinstance(loaded.checks[1].interval, tuple)
    assert isinstance(loaded.loss_history[0], tuple)
    assert isinstance(loaded.serving, Serving)
    assert eval_comment(loaded) == eval_comment(original)


def test_a_diverged_loss_round_trips_as_nan_and_infinity() -> None:
    original = report(loss_history=[(1.0, 2.5), (2.0, math.nan), (3.0, math.inf)])
    loaded = EvalReport.from_json(original.to_json())
    assert loaded.loss_history[0] == (1.0, 2.5)
    assert math.isnan(loaded.loss_history[1][1])
    assert loaded.loss_history[2] == (3.0, math.inf)
    assert eval_comment(loaded) == eval_comment(original)


def test_a_key_a_newer_runner_added_is_ignored() -> None:
    text = report().to_json().replace('"adapter":', '"added_later": [1, {"x": 2}],\n  "adapter":')
    assert EvalReport.from_json(text) == report()


HOSTILE_REPORTS = {
    "a missing field": '{"adapter": "x"}',
    "not JSON": "not json",
    "nested 100,000 deep": "[" * 100_000 + "]" * 100_000,
    "a million-digit count": report().to_json().replace('"items": 120', '"items": ' + "9" * 10**6),
    "a lone surrogate": report().to_json().replace('"r-3f9a2c1d"', '"\\ud800"', 1),
    "a count that is a boolean": report().to_json().replace('"items": 120', '"items": true'),
    "a score that is a string": report().to_json().replace('"value": 0.812', '"value": "0.812"'),
    "an interval of three bounds": report().to_json().replace("0.48,", "0.1, 0.48,", 1),
    "an unknown check kind": report().to_json().replace('"floor"', '"lenient"', 1),
}


@pytest.mark.parametrize("text", HOSTILE_REPORTS.values(), ids=HOSTILE_REPORTS.keys())
def test_a_broken_or_hostile_report_is_refused_naming_the_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "eval_report.json"
    path.write_text(text, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(InputError, match=r"eval_report\.json: not an eval report: \S"):
        EvalReport.read(path)
    assert time.monotonic() - started < 1.0


def test_bytes_that_are_not_utf8_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "eval_report.json"
    path.write_bytes(b'{"adapter": "\xff"}')
    with pytest.raises(InputError, match=r"eval_report\.json: not an eval report"):
        EvalReport.read(path)


def test_a_missing_file_cannot_be_read(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"eval_report\.json: cannot read an eval report"):
        EvalReport.read(tmp_path / "eval_report.json")


def test_step_summary_appends(tmp_path: Path) -> None:
    summary = tmp_path / "summary.md"
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    first, second = eval_comment(report()), eval_comment(report(adapter="other-v1"))
    assert write_step_summary(first, env)
    assert write_step_summary(second, env)
    text = summary.read_text(encoding="utf-8")
    assert text.index(marker("kwanzaa-mini-v1")) < text.index(marker("other-v1"))
    assert first in text
    assert second in text


def test_step_summary_is_a_no_op_without_the_variable(tmp_path: Path) -> None:
    assert not write_step_summary("# hi\n", {})
    assert not write_step_summary("# hi\n", {"GITHUB_STEP_SUMMARY": ""})
    assert list(tmp_path.iterdir()) == []
