"""code_assistant: the Python blocks of an answer parse, and the answer shows tests, type
hints and error handling, judged by the same AST walk as the data checks.

An item *expects code* when its reference answer (the eval record's assistant turn) has a
Python block (see `python_blocks`: ```python, ```py, ```python3, any case, indented under a
list item too; an unlabelled fence is not Python); every item of the shipped datasets does.
On such an item an output with no block scores 0 on every code metric: the user asked for
code and got none. A block cut off without its closing fence does not parse. The tests
trait is a test pytest would collect with its default settings; an `__init__` counts as
typed without `-> None` when its parameters are (see `code_task._fully_annotated`).
On an item that expects no code, the traits do not apply, and parsing applies only if the
output has blocks. The traits apply whatever the reference shows: the system prompt asks for
all three on every answer, and the floors in eval.yaml leave room for answers that
legitimately lack one."""

from __future__ import annotations

from typing import Any

from runner.data.code_task import CodeTraits, check_code_answer, python_blocks
from runner.evaluate.metrics import (
    POLICY_METRICS,
    ItemScores,
    Metric,
    ScoringContext,
    TaskScorer,
    policy_hits,
)
from runner.evaluate.rows import OutputRow

TASK = "code_assistant"

METRICS = (
    Metric("python_parse_rate", "every Python block of the answer is closed and parses"),
    Metric("tests_present_rate", "a test pytest would collect in the answer's Python"),
    Metric("type_hints_rate", "every function fully annotated (at least one function)"),
    Metric("error_handling_rate", "a try or raise statement in the answer's Python"),
    *POLICY_METRICS,
)

_TRAITS = {
    "tests_present_rate": ("tests", "no test_* function"),
    "type_hints_rate": ("type_hints", "no function, or a function without full type hints"),
    "error_handling_rate": ("error_handling", "no try or raise statement"),
}


def reference_answer(record: dict[str, Any]) -> str:
    messages = record["messages"]
    last = messages[-1] if messages else {}
    return last.get("content", "") if last.get("role") == "assistant" else ""


def score_item(row: OutputRow, record: dict[str, Any], context: ScoringContext) -> ItemScores:
    expects_code = bool(python_blocks(reference_answer(record)))
    findings, traits = check_code_answer(row.output, path=context.outputs_path, line=row.line)
    values: dict[str, float | None] = {}
    reasons: dict[str, str] = {}
    if traits.blocks == 0:
        values["python_parse_rate"] = 0.0 if expects_code else None
        if expects_code:
            reasons["python_parse_rate"] = "no ```python block"
    else:
        values["python_parse_rate"] = float(not findings)
        if findings:
            reasons["python_parse_rate"] = findings[0].message
    _traits(traits, expects_code, values, reasons)
    hits, hit_reasons = policy_hits(row, context)
    values.update(hits)
    reasons.update(hit_reasons)
    return ItemScores(row.item_id, str(record["category"]), values, reasons)


def _traits(
    traits: CodeTraits,
    expects_code: bool,
    values: dict[str, float | None],
    reasons: dict[str, str],
) -> None:
    # Traits come from the blocks that parse: a block that does not parse shows nothing.
    for metric, (trait, missing) in _TRAITS.items():
        if not expects_code:
            values[metric] = None
            continue
        present = bool(getattr(traits, trait))
        values[metric] = float(present)
        if not present:
            reasons[metric] = missing if traits.blocks else "no ```python block"


SCORER = TaskScorer(METRICS, score_item)
