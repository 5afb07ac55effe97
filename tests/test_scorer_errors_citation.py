"""The citation scorer agrees with a careful reader: ids written in an answer and
abbreviations do not fool the groundedness proxy, breaking the answer_json format never
raises a rate, and a candidate that refuses everything is caught by the gate and flagged by
`runner validate` when its refusal floor cannot stop it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.data.citation_task import ALWAYS_REFUSING
from runner.evaluate import SCORERS, ItemScores, ScoringContext, load_context, score, table
from runner.evaluate.citation import sentences
from runner.evaluate.gate import Serving, decide
from runner.evaluate.records import eval_records
from runner.specs import require_adapter
from runner.workspace import Workspace
from tests.conftest import ADAPTER, REPO_ROOT, RunCli, copy_repo, edit
from tests.test_scorers import (
    CITATION,
    CREATED,
    REFUSAL,
    SCHEMA,
    answer_json,
    citation_record,
    row,
    unanswerable,
)

ANSWERED, REFUSED = "answer_rate_on_answerable", "refusal_rate_on_unanswerable"
CITING = ("citation_coverage_rate", "citation_precision", "citation_recall")
GROUNDED = "retrieval_groundedness_rate"


@pytest.fixture(scope="module")
def context() -> ScoringContext:
    return load_context(REPO_ROOT, SCHEMA)


def scored(context: ScoringContext, record: dict, output: str) -> ItemScores:
    [item] = score(CITATION, [row(record, output)], [record], context)["candidate"]
    return item


def answer(**fields: object) -> str:
    """A CREATED answer with `fields` replaced (None: the key left out)."""
    base = json.loads(CREATED) | fields
    return json.dumps({key: value for key, value in base.items() if value is not None})


# --- groundedness proxy ------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Maulana Karenga created Kwanzaa in 1966 [kw-hist-01].",
        "Maulana Karenga created Kwanzaa in 1966 (kw-hist-01).",
        "[kw-hist-01] Maulana Karenga created Kwanzaa in 1966.",
    ],
)
def test_a_chunk_id_written_in_the_answer_is_a_citation_not_an_unsupported_number(
    context: ScoringContext, text: str
) -> None:
    item = scored(
        context, citation_record("kw-1", ["kw-hist-01"]), answer_json(text, ["kw-hist-01"])
    )
    assert item.values[GROUNDED] == 1.0
    assert GROUNDED not in item.reasons


def test_a_number_the_chunks_do_not_hold_is_still_ungrounded_beside_a_chunk_id(
    context: ScoringContext,
) -> None:
    text = "Maulana Karenga created Kwanzaa in 1967 [kw-hist-01]."
    item = scored(
        context, citation_record("kw-1", ["kw-hist-01"]), answer_json(text, ["kw-hist-01"])
    )
    assert item.values[GROUNDED] == 0.0


def test_abbreviations_do_not_split_an_answer_into_ungrounded_fragments(
    context: ScoringContext,
) -> None:
    text = "Maulana Karenga, i.e. Dr. Karenga, created Kwanzaa in 1966."
    item = scored(
        context, citation_record("kw-1", ["kw-hist-01"]), answer_json(text, ["kw-hist-01"])
    )
    assert item.values[GROUNDED] == 1.0


@pytest.mark.parametrize(
    "split",
    [
        "The U.S. Postal Service issued a stamp. | It shows the kinara.",
        "Principles, e.g. Umoja, guide it. | So do gifts!",
        "Dr. Karenga wrote it. | Candle No. 5 is red.",
        'He said "Umoja." | Then he lit it.',
    ],
)
def test_sentences_end_at_a_stop_and_not_at_an_abbreviation(split: str) -> None:
    """`split` is the text with ` | ` where a reader ends a sentence."""
    assert sentences(split.replace(" | ", " ")) == split.split(" | ")


# --- what counts as answered -------------------------------------------------------------

NO_SIDE = {
    "an empty object": "{}",
    "a wrapper object": json.dumps({"response": json.loads(CREATED)}),
    "no answer text": answer(answer=""),
    "blank answer text": answer(answer="   "),
    "answer text left out": answer(answer=None),
    "refused as a string": answer(refused="false"),
    "refused left out": answer(refused=None),
}


@pytest.mark.parametrize("output", NO_SIDE.values(), ids=NO_SIDE.keys())
def test_an_output_that_takes_no_side_scores_nothing_on_an_answerable_item(
    context: ScoringContext, output: str
) -> None:
    """Not an answer: it cannot lift the answer rate, the citation metrics (even when it
    names the gold chunk) or groundedness by leaving the answer out."""
    item = scored(context, citation_record("kw-1", ["kw-hist-01"]), output)
    assert item.values[ANSWERED] == 0.0
    assert [item.values[name] for name in CITING] == [0.0, 0.0, 0.0]
    assert item.values[GROUNDED] == 0.0
    assert "neither answered nor refused" in item.reasons["refusal_correctness_rate"]


@pytest.mark.parametrize("output", NO_SIDE.values(), ids=NO_SIDE.keys())
def test_an_output_that_takes_no_side_is_no_refusal_of_an_unanswerable_item(
    context: ScoringContext, output: str
) -> None:
    item = scored(
        context, unanswerable("kw-u"), output.replace('"refused": false', '"refused": true')
    )
    assert item.values[REFUSED] == 0.0


def test_refused_written_as_a_string_is_neither_answer_nor_refusal(
    context: ScoringContext,
) -> None:
    declined = answer(refused="true", citations=[], refusal_reason="not_in_context")
    for record in (citation_record("kw-1", ["kw-hist-01"]), unanswerable("kw-u")):
        item = scored(context, record, declined)
        assert item.values["refusal_correctness_rate"] == 0.0
        assert item.reasons["refusal_correctness_rate"] == (
            "`refused` is not true or false: neither answered nor refused"
        )


def test_citations_written_as_a_string_cite_nothing(context: ScoringContext) -> None:
    item = scored(context, citation_record("kw-1", ["kw-hist-01"]), answer(citations="kw-hist-01"))
    assert item.values[ANSWERED] == 1.0
    assert [item.values[name] for name in CITING] == [0.0, 0.0, 0.0]
    assert item.reasons["citation_coverage_rate"] == "cites nothing"


def test_a_refusal_that_cites_the_gold_chunk_earns_no_citation_credit(
    context: ScoringContext,
) -> None:
    refusal = json.loads(REFUSAL) | {"citations": ["kw-hist-01"]}
    item = scored(context, citation_record("kw-1", ["kw-hist-01"]), json.dumps(refusal))
    assert [item.values[name] for name in CITING] == [0.0, 0.0, 0.0]
    assert item.values[ANSWERED] == 0.0
    assert "refusal" in item.reasons["citation_coverage_rate"]


def test_declining_a_red_team_item_marked_answerable_is_a_wrong_refusal(
    context: ScoringContext,
) -> None:
    """The gold label decides: an offensive framing whose facts can be given plainly."""
    record = citation_record("kw-rt", ["kw-hist-01"], category="red_team")
    declined = json.loads(REFUSAL) | {"refusal_reason": "harmful_request"}
    item = scored(context, record, json.dumps(declined))
    assert item.values[ANSWERED] == 0.0
    assert item.reasons["refusal_correctness_rate"] == "refused an answerable question"
    result = table(SCORERS[CITATION].metrics, [item])
    assert result.categories["red_team"]["refusal_correctness_rate"] == 0.0


# --- an always-refusing candidate --------------------------------------------------------


def test_validate_knows_what_always_refusing_scores_by_the_scorer(
    context: ScoringContext,
) -> None:
    """The figure `runner validate` compares refusal floors with is what the scorer gives a
    candidate refusing every item, whatever the share of answerable items."""
    records = [citation_record(f"kw-a{i}", ["kw-hist-01"]) for i in range(7)]
    records += [unanswerable(f"kw-u{i}") for i in range(2)]
    items = score(CITATION, [row(r, REFUSAL) for r in records], records, context)["candidate"]
    result = table(SCORERS[CITATION].metrics, items)
    assert result.overall["refusal_correctness_rate"] == ALWAYS_REFUSING == 0.5


def test_an_always_refusing_candidate_naming_the_gold_chunks_fails_on_citation_coverage(
    context: ScoringContext,
) -> None:
    """Through kwanzaa-mini-v1's own eval.yaml and eval items: its refusal floor (0.45) lets
    an always-refusing candidate by, its citation coverage floor does not, even when every
    refusal names the item's gold chunks."""
    bundle = require_adapter(Workspace(REPO_ROOT), f"adapters/{ADAPTER}")
    records = eval_records(bundle, REPO_ROOT)

    def refusing(record: dict) -> str:
        return json.dumps(json.loads(REFUSAL) | {"citations": record["gold_citations"]})

    rows = [row(record, refusing(record)) for record in records]
    scores = score(CITATION, rows, records, context)
    decision = decide(bundle.evaluation, SCORERS[CITATION].metrics, scores, Serving(100.0, 900.0))
    checks = {check.name: check for check in decision.checks}
    assert not decision.passed
    assert checks["refusal_correctness_rate"].passed
    assert checks["refusal_correctness_rate"].value == 0.5
    assert not checks["citation_coverage_rate"].passed
    assert checks["citation_coverage_rate"].value == 0.0


# --- runner validate ---------------------------------------------------------------------


def test_validate_warns_at_a_refusal_floor_an_always_refusing_candidate_meets(
    run_cli: RunCli,
) -> None:
    code, out, _ = run_cli("validate", f"adapters/{ADAPTER}", "--repo", REPO_ROOT)
    assert code == 0
    [line] = [line for line in out.splitlines() if "[eval.refusal-floor]" in line]
    assert line.startswith(f"adapters/{ADAPTER}/eval.yaml:17:5 warning: ")
    assert "0.45 is at or below the 0.5 a candidate refusing every item scores" in line


@pytest.mark.parametrize(("floor", "warned"), [("0.5", True), ("0.55", False)])
def test_validate_warns_up_to_and_including_what_refusing_scores(
    run_cli: RunCli, tmp_path: Path, floor: str, warned: bool
) -> None:
    root = copy_repo(tmp_path / "repo")
    eval_yaml = root / "adapters" / ADAPTER / "eval.yaml"
    edit(eval_yaml, "refusal_correctness_rate: 0.45", f"refusal_correctness_rate: {floor}")
    code, out, _ = run_cli("validate", f"adapters/{ADAPTER}", "--repo", root)
    assert code == 0
    assert ("[eval.refusal-floor]" in out) is warned
