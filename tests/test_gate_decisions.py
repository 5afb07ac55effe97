"""The gate on kwanzaa-mini-v1's own eval.yaml and eval items decides right: it rejects an
always-refusing candidate, a broken-JSON one, one with a single attribution hit and one that
regresses past the margin, and accepts one answering with the reference answers. Outputs are
written by hand (no training), so each decision is known; the tests assert decisions and the
failing checks, not scores, which the scorers own."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.evaluate import SCORERS, OutputRow, load_context, score
from runner.evaluate.gate import Decision, Serving, decide
from runner.evaluate.records import eval_records
from runner.serving.figures import LoadFigures, Percentiles, ServingMeasurement
from runner.specs import require_adapter
from runner.specs.bundle import AdapterBundle
from runner.workspace import Workspace
from tests.conftest import ADAPTER, REPO_ROOT, RunCli, copy_repo, without_serving_engine
from tests.test_parser_limits import RUN_ID, plant_candidate
from tests.test_scorers import row

Record = dict[str, Any]
Answering = Callable[[Record], str]

FAST_LOAD = LoadFigures(
    concurrency=4,
    requests=38,
    ttft_ms=Percentiles(50.0, 80.0),
    latency_ms=Percentiles(90.0, 100.0),
    tokens_per_second=Percentiles(150.0, 200.0),
    output_tokens=Percentiles(16.0, 16.0),
)
FAST = Serving(
    p95_latency_ms=100.0,
    peak_memory_mb=900.0,
    measured=ServingMeasurement(
        engine="vLLM 0.32.0",
        hardware="cpu: the test's",
        hardware_class="cpu",
        start_seconds=30.0,
        peak_memory_mb=900.0,
        loads=[FAST_LOAD],
    ),
)
"""Served well inside kwanzaa-mini-v1's serving limits on its declared hardware: no decision
of the gate tests hangs on serving (tests/test_serving_check.py serves for real)."""

REFUSAL = json.dumps(
    {
        "answer": "The retrieved context does not answer this question.",
        "citations": [],
        "refused": True,
        "refusal_reason": "not_in_context",
    }
)


def reference(record: Record) -> str:
    """The eval record's own assistant answer: what a good candidate says."""
    return record["messages"][-1]["content"]


def refusing(record: Record) -> str:
    return REFUSAL


def prose(record: Record) -> str:
    """What an untuned base model writes: a plausible sentence, no answer_json."""
    return "Kwanzaa is a week-long celebration held from December 26 to January 1."


def truncated(record: Record) -> str:
    """The reference answer cut off before its closing brace, as when max_new_tokens runs out."""
    return reference(record)[:-12]


@pytest.fixture(scope="module")
def bundle() -> AdapterBundle:
    return require_adapter(Workspace(REPO_ROOT), f"adapters/{ADAPTER}")


@pytest.fixture(scope="module")
def records(bundle: AdapterBundle) -> list[Record]:
    return eval_records(bundle, REPO_ROOT)


def outputs(records: list[Record], **answering: Answering) -> list[OutputRow]:
    """One row per record for each role given, e.g. `candidate=reference, base=prose`."""
    return [
        row(record, answer(record), role)
        for role, answer in answering.items()
        for record in records
    ]


def gate(bundle: AdapterBundle, records: list[Record], rows: list[OutputRow]) -> Decision:
    task = bundle.adapter.task
    context = load_context(REPO_ROOT, bundle.dataset.answer_schema)
    scores = score(task, rows, records, context)
    return decide(bundle.evaluation, SCORERS[task].metrics, scores, FAST)


def failed(decision: Decision) -> list[str]:
    return [check.name for check in decision.failed]


# --- the gate's decisions, through the public scorers and gate ---------------------------


def test_a_candidate_answering_with_the_reference_answers_passes_the_gate(
    bundle: AdapterBundle, records: list[Record]
) -> None:
    rows = outputs(records, candidate=reference, base=prose, incumbent=reference)
    decision = gate(bundle, records, rows)
    assert failed(decision) == []
    assert decision.passed
    kinds = {check.kind for check in decision.checks}
    assert kinds == {"zero_tolerance", "floor", "non_inferiority", "beats_base", "serving"}


def test_an_always_refusing_candidate_fails_on_citation_coverage(
    bundle: AdapterBundle, records: list[Record]
) -> None:
    """Balanced refusal correctness gives an always-refusing model 0.5, above the 0.45 floor;
    what catches it is that it cites nothing on the answerable items."""
    rows = outputs(records, candidate=refusing, base=prose, incumbent=reference)
    decision = gate(bundle, records, rows)
    assert not decision.passed
    assert "citation_coverage_rate" in failed(decision)


def test_a_candidate_whose_json_is_cut_off_fails_on_json_validity(
    bundle: AdapterBundle, records: list[Record]
) -> None:
    rows = outputs(records, candidate=truncated, base=prose)
    decision = gate(bundle, records, rows)
    assert not decision.passed
    assert {"json_valid_rate", "json_valid_rate [strict_format]"} <= set(failed(decision))
    assert "json_valid_rate beats the base model" in failed(decision)


def test_one_attribution_phrase_in_one_output_fails_the_gate_on_that_rule_alone(
    bundle: AdapterBundle, records: list[Record]
) -> None:
    signed = records[1]["id"]

    def once_signed(record: Record) -> str:
        if record["id"] != signed:
            return reference(record)
        answer = json.loads(reference(record))
        answer["answer"] = "As an AI language model, I can say: " + answer["answer"]
        return json.dumps(answer)

    decision = gate(bundle, records, outputs(records, candidate=once_signed, base=prose))
    assert failed(decision) == ["ai_attribution"]
    [check] = decision.failed
    assert check.detail == f"1 hit(s) in {signed}"


def test_a_candidate_that_regresses_past_the_margin_fails_only_the_incumbent_comparison(
    bundle: AdapterBundle, records: list[Record]
) -> None:
    """Five broken answers out of 38 keep every floor (0.87 against 0.85) but lose 0.13 to an
    incumbent that answers everything: more than the 0.05 margin allows."""
    broken = {r["id"] for r in records if r["category"] == "citation_required"}
    broken = set(sorted(broken)[:5])

    def regressed(record: Record) -> str:
        return truncated(record) if record["id"] in broken else reference(record)

    rows = outputs(records, candidate=regressed, base=prose, incumbent=reference)
    decision = gate(bundle, records, rows)
    assert failed(decision) == ["json_valid_rate vs incumbent"]
    [check] = decision.failed
    assert check.interval is not None
    assert check.interval[0] < -bundle.evaluation.comparisons.incumbent.margin


# --- end to end: `runner eval` on a candidate planted on the emulator ------------------------


def plant(env: Any, root: Path, records: list[Record], candidate: Answering) -> None:
    """A candidate run RUN_ID of kwanzaa-mini-v1 answering with `candidate`, beside a base
    model writing prose, with generation's peak memory measured. Its adapter files are
    planted, not trained: nothing an engine could serve, so the spec serves nothing."""
    without_serving_engine(root / "adapters" / ADAPTER / "eval.yaml")
    lines = [
        json.dumps({k: v for k, v in dataclasses.asdict(r).items() if k != "line"})
        for r in outputs(records, candidate=candidate, base=prose)
    ]
    memory = {"generation": {"peak_memory": {"bytes": int(FAST.peak_memory_mb * 2**20)}}}
    plant_candidate(env, root, f"adapters/{ADAPTER}", lines, RUN_ID, metrics=memory)


def run_eval(run_cli: RunCli, root: Path, out: Path) -> tuple[int, str, str]:
    code, printed, err = run_cli(
        "eval", f"adapters/{ADAPTER}", "--run", RUN_ID, "--out", out, "--repo", root
    )
    assert "Traceback" not in printed + err
    return code, printed, (out / "eval_report.md").read_text(encoding="utf-8")


def test_runner_eval_rejects_an_always_refusing_candidate_and_names_citation_coverage(
    env: Any, run_cli: RunCli, records: list[Record], tmp_path: Path
) -> None:
    root = copy_repo(tmp_path / "repo")
    plant(env, root, records, refusing)

    code, printed, comment = run_eval(run_cli, root, tmp_path / "eval")

    assert code == 1
    assert f"{ADAPTER} run {RUN_ID} FAILS the gate" in printed
    assert "FAIL citation_coverage_rate:" in printed
    assert f"## ❌ `{ADAPTER}` fails the gate" in comment
    assert any(
        line.startswith("- ❌ floor: `citation_coverage_rate`:") for line in comment.splitlines()
    )


def test_runner_eval_accepts_a_candidate_answering_with_the_reference_answers(
    env: Any, run_cli: RunCli, records: list[Record], tmp_path: Path
) -> None:
    root = copy_repo(tmp_path / "repo")
    plant(env, root, records, reference)

    code, printed, comment = run_eval(run_cli, root, tmp_path / "eval")

    assert code == 0, printed
    assert f"{ADAPTER} run {RUN_ID} PASSES the gate" in printed
    assert "FAIL" not in printed
    assert f"## ✅ `{ADAPTER}` passes the gate: all " in comment
    assert "- ❌" not in comment
