"""Reading the PR eval comment as its author does: after a failure it says what to do next,
counts read "8 of 38", a category cell does not pass the base model's score off as an
interval, and the loss chart names its axes. The report is built the way `runner eval`
builds it: scores through the real gate and metric rows."""

from __future__ import annotations

import re

from runner.evaluate.citation import METRICS
from runner.evaluate.gate import Serving, decide
from runner.evaluate.metrics import ItemScores
from runner.evaluate.report import EvalReport, metric_rows, worst_items
from runner.report.eval_comment import eval_comment
from runner.specs.evaluation import EvalSpec

ITEMS = 38
STRICT = 10  # the first items are strict_format, the rest citation_required
SPEC = EvalSpec.model_validate(
    {
        "primary_metric": "json_valid_rate",
        "thresholds": {
            "overall": {"json_valid_rate": 0.85},
            "categories": {"strict_format": {"json_valid_rate": 0.6}},
        },
        "zero_tolerance": ["ai_attribution"],
    }
)


def scores(valid: int) -> list[ItemScores]:
    """ITEMS items, the first `valid` of them one valid JSON object."""
    return [
        ItemScores(
            item_id=f"kw-eval-{i:03d}",
            category="strict_format" if i < STRICT else "citation_required",
            values={"json_valid_rate": float(i < valid), "ai_attribution_hits": 0.0},
            reasons={} if i < valid else {"json_valid_rate": "not one JSON object"},
        )
        for i in range(ITEMS)
    ]


def failing_report(loss_steps: int = 68) -> EvalReport:
    """8 of 38 outputs valid: under the 0.85 floor; the base model managed 4."""
    roles = {"candidate": scores(8), "base": scores(4)}
    categories = [
        row
        for category in ("citation_required", "strict_format")
        for row in metric_rows(
            METRICS, roles, SPEC.thresholds.categories.get(category, {}), category
        )
    ]
    return EvalReport(
        adapter="kwanzaa-mini-v2",
        run_id="b671ebe67b7bf84c",
        task="citation_grounded_chat",
        primary_metric="json_valid_rate",
        passed=False,
        checks=decide(SPEC, METRICS, roles, Serving(900.0, 1000.0)).checks,
        overall=metric_rows(METRICS, roles, SPEC.thresholds.overall),
        categories=categories,
        serving=Serving(900.0, 1000.0),
        loss_history=[(float(step), 2.0 / step) for step in range(1, loss_steps + 1)],
        worst_items=worst_items(roles["candidate"], {}),
        items=ITEMS,
    )


def section(markdown: str, title: str) -> str:
    return markdown.split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def test_a_failed_eval_says_what_to_do_next() -> None:
    comment = eval_comment(failing_report())

    next_steps = " ".join(section(comment, "What next").split()).lower()
    assert "change the spec or the data in a new commit" in next_steps
    assert "run `b671ebe67b7bf84c` will not be trained again as it is" in next_steps
    assert "merging this pr will not promote `kwanzaa-mini-v2`" in next_steps
    assert comment.index("### What next") < comment.index("### Failed checks")


def test_item_counts_read_as_some_of_all() -> None:
    comment = eval_comment(failing_report())

    failed = section(comment, "Failed checks")
    assert "`json_valid_rate`: 0.211 (8 of 38 items; 95% CI" in failed
    assert "`json_valid_rate [strict_format]`: 0.800 (8 of 10 items; 95% CI" in comment
    assert "38 eval items" in comment.splitlines()[3]
    assert "The 5 worst of the 38 eval items" in comment
    assert not re.search(r"\bn=\d|\d+/\d+ items|item\(s\)", comment)


def test_a_category_cell_names_the_base_model_instead_of_bracketing_it() -> None:
    per_category = section(eval_comment(failing_report()), "Per category")

    row = next(line for line in per_category.splitlines() if line.startswith("| `json_valid_rate`"))
    assert row == "| `json_valid_rate` | 0.000 (base 0.000) | 0.800 (base 0.400) |"
    assert not re.search(r"\d \(\d", per_category)  # no "0.800 (0.400)": that reads as a range


def test_the_loss_chart_titles_its_axes_and_numbers_its_steps() -> None:
    comment = eval_comment(failing_report(loss_steps=68))

    chart = re.search(r"```mermaid\n(xychart-beta\n.*?)```", comment, re.DOTALL)
    assert chart is not None
    lines = [line.strip() for line in chart[1].splitlines()]
    assert 'x-axis "training step" 1 --> 68' in lines  # numbered ticks, not 60 crowded labels
    assert 'y-axis "training loss (cross-entropy per token)" 0 --> 2' in lines
    assert any(line.startswith("line [2, 1, 0.6667") for line in lines)
