"""What a reviewer sees of a candidate against the incumbent: the eval comment lists the items
whose primary metric flipped each way (prompt and both outputs collapsed, hostile text kept
inert) and states the smallest regression the non-inferiority test can detect; `runner plan`
and `runner validate` warn, at the margin, when the eval set is too small for it."""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest

from runner.evaluate.code import METRICS as CODE_METRICS
from runner.evaluate.metrics import ItemScores
from runner.evaluate.report import EvalReport, observed_power
from runner.power import planned_power, power_findings
from runner.report.eval_comment import eval_comment
from runner.specs import require_adapter
from runner.specs.evaluation import EvalSpec
from runner.workspace import Workspace
from tests.conftest import ADAPTER, REPO_ROOT, RunCli, copy_repo, without_serving_engine
from tests.test_gate_decisions import FAST, Record, outputs, prose, reference, truncated
from tests.test_parser_limits import RUN_ID, plant_candidate

HOSTILE = "```\n</details>\n<img src=x onerror=alert(1)>\n| a | b |\n# heading"
"""An incumbent output that is not answer_json and tries to break out of its fence."""


def eval_records(root: Path) -> list[Record]:
    path = root / "datasets/kwanzaa/v0/eval.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def plant_against_incumbent(
    env: Any, root: Path, records: list[Record], broken: set[str], fixed: str
) -> None:
    """Candidate run RUN_ID: truncated JSON on the `broken` items, the reference answers
    elsewhere; the incumbent answers everything but `fixed`, where it writes HOSTILE."""

    def candidate(record: Record) -> str:
        return truncated(record) if record["id"] in broken else reference(record)

    def incumbent(record: Record) -> str:
        return HOSTILE if record["id"] == fixed else reference(record)

    rows = outputs(records, candidate=candidate, base=prose, incumbent=incumbent)
    lines = [
        json.dumps({k: v for k, v in dataclasses.asdict(r).items() if k != "line"}) for r in rows
    ]
    memory = {"generation": {"peak_memory": {"bytes": int(FAST.peak_memory_mb * 2**20)}}}
    plant_candidate(env, root, f"adapters/{ADAPTER}", lines, RUN_ID, metrics=memory)


def section(markdown: str, title: str) -> str:
    """A section's markdown, fenced text left out (a prompt may hold headings of its own)."""
    shown = "\n".join(outside_fences(markdown))
    return shown.split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def outside_fences(markdown: str) -> list[str]:
    """The comment's lines that GitHub reads as markdown: not inside a fenced code block."""
    shown, fence = [], None
    for line in markdown.splitlines():
        opening = re.match(r"(`{3,})", line)
        if fence is None and opening:
            fence = opening.group(1)
        elif fence is not None and line == fence:
            fence = None
        elif fence is None:
            shown.append(line)
    return shown


def items_in(markdown: str) -> set[str]:
    """The item ids of the `#### `id` (category)` headings."""
    return set(re.findall(r"^#### `([^`]+)`", markdown, flags=re.MULTILINE))


@pytest.fixture
def evaluated(env: Any, run_cli: RunCli, tmp_path: Path) -> tuple[str, EvalReport, set[str], str]:
    root = copy_repo(tmp_path / "repo")
    without_serving_engine(root / "adapters" / ADAPTER / "eval.yaml")  # planted adapter files
    records = eval_records(root)
    answerable = sorted(r["id"] for r in records if r["category"] == "citation_required")
    broken, fixed = set(answerable[:3]), answerable[3]
    plant_against_incumbent(env, root, records, broken, fixed)
    out = tmp_path / "eval"
    _, printed, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--run", RUN_ID, "--out", out, "--repo", root
    )
    assert "Traceback" not in printed + err
    comment = (out / "eval_report.md").read_text(encoding="utf-8")
    return comment, EvalReport.read(out / "eval_report.json"), broken, fixed


def test_the_eval_comment_lists_the_items_that_flipped_each_way_against_the_incumbent(
    evaluated: tuple[str, EvalReport, set[str], str],
) -> None:
    comment, _, broken, fixed = evaluated

    flips = section(comment, "Flips against the incumbent")
    assert "3 item(s) went from pass to fail on `json_valid_rate` ★ and 1 from fail to pass" in (
        flips
    )
    pass_to_fail, fail_to_pass = flips.split("✅ Fail → pass", 1)
    fail_to_pass = fail_to_pass.split("</details>", 1)[0]  # the worst items follow
    assert "❌ Pass → fail: 3 item(s)" in pass_to_fail
    assert items_in(pass_to_fail) == broken
    assert items_in(fail_to_pass) == {fixed}
    for title in ("Prompt:", "Candidate:", "Incumbent:"):
        assert title in fail_to_pass


def test_hostile_text_in_a_flipped_output_stays_inside_its_fence(
    evaluated: tuple[str, EvalReport, set[str], str],
) -> None:
    comment, *_ = evaluated

    assert "<img src=x onerror=alert(1)>" in comment  # shown, as code
    markdown = outside_fences(comment)
    assert not any("<img" in line for line in markdown)
    assert markdown.count("</details>") == sum(line.startswith("<details>") for line in markdown)


def test_the_eval_report_keeps_the_flips_and_the_power_figure_through_its_json(
    evaluated: tuple[str, EvalReport, set[str], str],
) -> None:
    _, report, broken, fixed = evaluated

    assert report.flips is not None
    assert report.power is not None
    assert {flip.item_id for flip in report.flips.broken} == broken
    assert [flip.item_id for flip in report.flips.fixed] == [fixed]
    assert report.flips.fixed[0].other == HOSTILE
    assert EvalReport.from_json(report.to_json()) == report


def test_the_eval_comment_states_the_smallest_regression_the_test_can_detect(
    evaluated: tuple[str, EvalReport, set[str], str],
) -> None:
    comment, report, *_ = evaluated
    assert report.power is not None

    power = " ".join(section(comment, "Power").split())
    assert (
        f"With 38 eval items, the non-inferiority test (95% paired bootstrap) detects a "
        f"regression of **{report.power.detectable:.3f}** or more in `json_valid_rate` with "
        "80% power; the declared margin is 0.05."
    ) in power
    assert "against the incumbent" in power


def scores(n: int, failing_every: int) -> list[ItemScores]:
    return [
        ItemScores(f"item-{i:04d}", "code", {"tests_present_rate": float(i % failing_every != 0)})
        for i in range(n)
    ]


def test_the_detectable_regression_shrinks_as_the_eval_set_grows() -> None:
    """4 flips in 20 items, then the same pattern over 20 times as many items: the standard
    error, and with it the detectable regression, falls by about sqrt(20)."""
    spec = EvalSpec.model_validate({"primary_metric": "tests_present_rate"})
    metric = next(m for m in CODE_METRICS if m.name == "tests_present_rate")
    figures = []
    for n in (20, 400):
        roles = {"candidate": scores(n, 5), "incumbent": scores(n, 3)}
        power = observed_power(spec, metric, roles)
        assert power is not None
        figures.append(power.detectable)
        shown = eval_comment(_report_with(power))
        assert f"detects a regression of **{power.detectable:.3f}** or more" in shown
    small, large = figures
    assert large < small / 3
    assert "⚠️ The margin 0.02 is finer than this eval set can resolve" in eval_comment(
        _report_with(observed_power(spec, metric, {"candidate": scores(20, 5),
                                                  "incumbent": scores(20, 3)}))
    )  # fmt: skip


def _report_with(power: Any) -> EvalReport:
    return EvalReport(
        adapter="ainative-v3",
        run_id="0123456789abcdef",
        task="code_assistant",
        primary_metric="tests_present_rate",
        passed=True,
        checks=[],
        overall=[],
        categories=[],
        serving=FAST,
        loss_history=[],
        worst_items=[],
        power=power,
    )


SECOND = "ainative-v2"
"""A second version (23 eval items, margin 0.02): the gate compares it with ainative-v1."""


def copy_ainative(root: Path) -> Path:
    for part in ("policies", "schemas", "adapters/ainative-v1", f"adapters/{SECOND}",
                 "datasets/ainative"):  # fmt: skip
        shutil.copytree(REPO_ROOT / part, root / part)
    return root


def set_eval(root: Path, adapter: str, margin: float, max_items: int | None = None) -> None:
    path = root / f"adapters/{adapter}/eval.yaml"
    text = re.sub(r"margin: [0-9.]+", f"margin: {margin}", path.read_text(encoding="utf-8"))
    if max_items is not None:
        text = text.replace("generation:", f"max_items: {max_items}\ngeneration:")
    path.write_text(text, encoding="utf-8")


def margin_line(root: Path, adapter: str) -> int:
    lines = (root / f"adapters/{adapter}/eval.yaml").read_text(encoding="utf-8").splitlines()
    return next(i for i, line in enumerate(lines, start=1) if "margin:" in line)


def power_warnings(printed: str) -> list[str]:
    return [line for line in printed.splitlines() if "[eval.power]" in line]


def test_validate_and_plan_warn_at_the_margin_when_20_items_cannot_detect_0_02(
    run_cli: RunCli, tmp_path: Path
) -> None:
    root = copy_ainative(tmp_path / "repo")
    set_eval(root, SECOND, 0.02, max_items=20)

    code, printed, _ = run_cli("validate", "--repo", root, f"adapters/{SECOND}")
    assert code == 0
    [warning] = power_warnings(printed)
    assert warning.startswith(f"adapters/{SECOND}/eval.yaml:{margin_line(root, SECOND)}:")
    assert "20 eval items can only detect a regression of" in warning

    code, printed, _ = run_cli("plan", "--repo", root, SECOND)
    assert code == 0
    assert "- eval power: 20 eval items detect a regression of" in printed
    assert "the margin is 0.02 ⚠️ too small for the margin" in printed


def test_a_wide_enough_margin_for_the_eval_set_gets_no_warning(
    run_cli: RunCli, tmp_path: Path
) -> None:
    root = copy_ainative(tmp_path / "repo")
    set_eval(root, SECOND, 0.4)

    code, printed, _ = run_cli("validate", "--repo", root, f"adapters/{SECOND}")
    assert code == 0
    assert power_warnings(printed) == []

    code, printed, _ = run_cli("plan", "--repo", root, SECOND, "--format", "json")
    power = json.loads(printed)["power"]
    assert (power["items"], power["margin"], power["too_small"]) == (23, 0.4, False)


def test_a_first_version_has_no_incumbent_so_its_margin_is_not_warned_about(
    run_cli: RunCli, tmp_path: Path
) -> None:
    root = copy_ainative(tmp_path / "repo")

    code, printed, _ = run_cli("validate", "--repo", root, "adapters/ainative-v1")
    assert code == 0
    assert power_warnings(printed) == []


def test_a_large_eval_set_detects_a_small_margin_before_any_run(tmp_path: Path) -> None:
    root = copy_ainative(tmp_path / "repo")
    set_eval(root, SECOND, 0.1)
    workspace = Workspace(root)
    bundle = require_adapter(workspace, f"adapters/{SECOND}")

    assert power_findings(bundle, planned_power(bundle, workspace, 2000)) == []
    [finding] = power_findings(bundle, planned_power(bundle, workspace, 20))
    assert (finding.rule_id, finding.line) == ("eval.power", margin_line(root, SECOND))
