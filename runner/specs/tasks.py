"""Task kinds and the metrics each one is scored on. The evaluation stage implements these
metrics; the specs only need their names to check `eval.yaml`."""

from __future__ import annotations

from typing import Literal

TaskKind = Literal["citation_grounded_chat", "code_assistant"]

TASK_METRICS: dict[str, tuple[str, ...]] = {
    "citation_grounded_chat": (
        "json_valid_rate",
        "json_lenient_valid_rate",
        "citation_coverage_rate",
        "citation_precision",
        "citation_recall",
        "refusal_correctness_rate",
        "answer_rate_on_answerable",
        "refusal_rate_on_unanswerable",
        "retrieval_groundedness_rate",
    ),
    "code_assistant": (
        "python_parse_rate",
        "tests_present_rate",
        "type_hints_rate",
        "error_handling_rate",
    ),
}

ZeroToleranceRule = Literal["ai_attribution", "secret_leak"]
