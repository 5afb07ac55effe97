"""Scorers as a specification: hand-written outputs with known labels give exactly the
expected per-item values and aggregates, for both task kinds; outputs files and their join
with the eval records fail loudly, naming the line or the item."""

from __future__ import annotations

import dataclasses
import json
import random
import string
from pathlib import Path

import pytest

from runner.data.citation_task import retrieved_ids
from runner.errors import InputError
from runner.evaluate import (
    SCORERS,
    ItemScores,
    OutputRow,
    ScoringContext,
    aggregate,
    join,
    load_context,
    read_rows,
    score,
    table,
)
from runner.evaluate.citation import first_json_object, grounded_share, retrieved_chunks
from runner.evaluate.rows import prompt_sha256
from runner.specs.tasks import TASK_METRICS
from tests.conftest import REPO_ROOT

CITATION, CODE = "citation_grounded_chat", "code_assistant"
SCHEMA = "datasets/kwanzaa/answer_json.schema.json"

CHUNKS = {
    "kw-hist-01": "Kwanzaa was created by Maulana Karenga in 1966.",
    "kw-hist-02": "Kwanzaa lasts seven days, from December 26 to January 1.",
    "kw-symb-03": "The kinara holds seven candles: three red, three green and one black.",
}


@pytest.fixture(scope="module")
def context() -> ScoringContext:
    return load_context(REPO_ROOT, SCHEMA)


def citation_record(
    item_id: str, gold: list[str], category: str = "citation_required", answerable: bool = True
) -> dict:
    retrieved = "\n".join(f"[{cid}] {text}" for cid, text in CHUNKS.items())
    user = f"### Retrieved Context:\n{retrieved}\n\n### Instruction:\nQuestion {item_id}?"
    return {
        "id": item_id,
        "category": category,
        "answerable": answerable,
        "gold_citations": gold,
        "messages": [
            {"role": "system", "content": "Answer in answer_json."},
            {"role": "user", "content": user},
            {"role": "assistant", "content": "{}"},
        ],
    }


def unanswerable(item_id: str) -> dict:
    return citation_record(item_id, [], category="unanswerable", answerable=False)


def row(record: dict, output: str, role: str = "candidate", latency: float = 100.0) -> OutputRow:
    return OutputRow(
        item_id=record["id"],
        category=record["category"],
        prompt_sha256=prompt_sha256(record),
        role=role,
        output=output,
        latency_ms=latency,
        prompt_tokens=50,
        output_tokens=20,
    )


def answer_json(answer: str, citations: list[str]) -> str:
    return json.dumps(
        {"answer": answer, "citations": citations, "refused": False, "refusal_reason": None}
    )


REFUSAL = json.dumps(
    {
        "answer": "The retrieved context does not say.",
        "citations": [],
        "refused": True,
        "refusal_reason": "not_in_context",
    }
)
CREATED = answer_json("Kwanzaa was created by Maulana Karenga in 1966.", ["kw-hist-01"])


def score_one(context: ScoringContext, record: dict, output: str, task: str = CITATION):
    [item] = score(task, [row(record, output)], [record], context)["candidate"]
    return item


def values(item: ItemScores, *names: str) -> list[float | None]:
    return [item.values[name] for name in names]


# --- metric names ------------------------------------------------------------------------


@pytest.mark.parametrize("task", [CITATION, CODE])
def test_every_metric_eval_yaml_may_name_is_scored(task):
    scored = {metric.name for metric in SCORERS[task].metrics}
    assert set(TASK_METRICS[task]) <= scored
    assert {"ai_attribution_hits", "secret_hits"} <= scored


# --- answer_json validity ----------------------------------------------------------------

FORMATS = [
    ("strict", CREATED, 1.0, 1.0),
    ("surrounding whitespace", f"\n  {CREATED}\n\n", 1.0, 1.0),
    ("trailing prose", CREATED + "\nI hope this helps!", 0.0, 1.0),
    ("leading prose", "Here is the answer: " + CREATED, 0.0, 1.0),
    ("json fence", f"```json\n{CREATED}\n```", 0.0, 1.0),
    ("prose braces first", "Use {braces} carefully. " + CREATED, 0.0, 1.0),
    ("missing key", '{"answer": "Karenga.", "citations": ["kw-hist-01"], "refused": false}', 0, 0),
    ("refusal that cites", REFUSAL.replace("[]", '["kw-hist-01"]'), 0.0, 0.0),
    ("plain prose", "Kwanzaa was created by Maulana Karenga in 1966.", 0.0, 0.0),
    ("a JSON list", '["kw-hist-01"]', 0.0, 0.0),
    ("truncated", CREATED[:-10], 0.0, 0.0),
]


@pytest.mark.parametrize(
    ("name", "output", "strict", "lenient"), FORMATS, ids=[f[0] for f in FORMATS]
)
def test_json_validity_strict_and_lenient(context, name, output, strict, lenient):
    item = score_one(context, citation_record("kw-1", ["kw-hist-01"]), output)
    assert values(item, "json_valid_rate", "json_lenient_valid_rate") == [strict, lenient]
    assert ("json_valid_rate" in item.reasons) == (strict == 0.0)


def test_first_json_object_skips_braces_that_are_not_json():
    assert first_json_object('set {a} then {"x": {"y": 1}} and {"z": 2}') == {"x": {"y": 1}}
    assert first_json_object("no object [1, 2]") is None


def test_content_metrics_read_only_the_strict_answer(context):
    """A fenced answer is lenient-valid, but clients parse the output whole: no citations."""
    record = citation_record("kw-1", ["kw-hist-01"])
    item = score_one(context, record, f"```json\n{CREATED}\n```")
    names = ("citation_coverage_rate", "citation_precision", "citation_recall")
    assert values(item, *names) == [0.0, 0.0, 0.0]
    assert item.values["refusal_correctness_rate"] == 0.0
    assert item.values["retrieval_groundedness_rate"] == 0.0
    assert "neither answered nor refused" in item.reasons["refusal_correctness_rate"]


# --- citations ---------------------------------------------------------------------------

CITATION_CASES = [
    # (cited, gold, coverage, precision, recall)
    (["kw-hist-01"], ["kw-hist-01"], 1.0, 1.0, 1.0),
    (["kw-hist-01", "kw-hist-02"], ["kw-hist-01"], 1.0, 0.5, 1.0),
    (["kw-hist-01"], ["kw-hist-01", "kw-hist-02"], 1.0, 1.0, 0.5),
    (["kw-symb-03"], ["kw-hist-01"], 1.0, 0.0, 0.0),
    (["kw-hist-01", "kw-prac-99"], ["kw-hist-01"], 0.0, 0.5, 1.0),  # foreign: not retrieved
    (["kw-prac-99"], ["kw-hist-01"], 0.0, 0.0, 0.0),
    ([], ["kw-hist-01"], 0.0, 0.0, 0.0),  # missing citations
    (["kw-hist-01", "kw-hist-01"], ["kw-hist-01"], 1.0, 1.0, 1.0),  # a repeat counts once
]


@pytest.mark.parametrize(("cited", "gold", "coverage", "precision", "recall"), CITATION_CASES)
def test_citation_coverage_precision_recall(context, cited, gold, coverage, precision, recall):
    item = score_one(context, citation_record("kw-1", gold), answer_json("Karenga.", cited))
    names = ("citation_coverage_rate", "citation_precision", "citation_recall")
    assert values(item, *names) == [coverage, precision, recall]


def test_foreign_and_missing_citations_say_why(context):
    record = citation_record("kw-1", ["kw-hist-01"])
    foreign = score_one(context, record, answer_json("Karenga.", ["kw-prac-99"]))
    assert "kw-prac-99" in foreign.reasons["citation_coverage_rate"]
    assert "not retrieved" in foreign.reasons["citation_coverage_rate"]
    assert "kw-hist-01" in foreign.reasons["citation_recall"]
    missing = score_one(context, record, answer_json("Karenga.", []))
    assert missing.reasons["citation_coverage_rate"] == "cites nothing"


def test_citation_metrics_do_not_apply_without_gold_citations(context):
    item = score_one(context, unanswerable("kw-u"), REFUSAL)
    names = ("citation_coverage_rate", "citation_precision", "citation_recall")
    assert values(item, *names) == [None, None, None]


def test_precision_and_recall_are_macro_averages(context):
    """Item a: precision 1, recall 1/2. Item b: precision 1/2, recall 1. Micro precision
    would be 2/3; macro is the mean of the items' values."""
    a = citation_record("kw-a", ["kw-hist-01", "kw-hist-02"])
    b = citation_record("kw-b", ["kw-hist-01"])
    rows = [
        row(a, answer_json("x.", ["kw-hist-01"])),
        row(b, CREATED.replace('"]', '", "kw-hist-02"]')),
    ]
    items = score(CITATION, rows, [a, b], context)["candidate"]
    metrics = {m.name: m for m in SCORERS[CITATION].metrics}
    assert aggregate(metrics["citation_precision"], items) == 0.75
    assert aggregate(metrics["citation_recall"], items) == 0.75


# --- refusals ----------------------------------------------------------------------------


def test_wrong_refusals(context):
    refused = score_one(context, citation_record("kw-1", ["kw-hist-01"]), REFUSAL)
    assert refused.values["answer_rate_on_answerable"] == 0.0
    assert refused.values["refusal_rate_on_unanswerable"] is None
    assert refused.reasons["refusal_correctness_rate"] == "refused an answerable question"
    answered = score_one(context, unanswerable("kw-u"), CREATED)
    assert answered.values["refusal_rate_on_unanswerable"] == 0.0
    assert answered.values["answer_rate_on_answerable"] is None
    assert answered.reasons["refusal_correctness_rate"] == "answered an unanswerable question"


def test_an_always_refusing_model_scores_one_half(context):
    records = [citation_record(f"kw-a{i}", ["kw-hist-01"]) for i in range(5)]
    records += [unanswerable(f"kw-u{i}") for i in range(2)]
    items = score(CITATION, [row(r, REFUSAL) for r in records], records, context)["candidate"]
    result = table(SCORERS[CITATION].metrics, items)
    assert result.overall["refusal_correctness_rate"] == 0.5
    assert result.overall["answer_rate_on_answerable"] == 0.0
    assert result.overall["refusal_rate_on_unanswerable"] == 1.0
    # Within a category only one side is present: balanced accuracy is that side's recall.
    assert result.categories["unanswerable"]["refusal_correctness_rate"] == 1.0
    assert result.categories["citation_required"]["refusal_correctness_rate"] == 0.0


def test_refusal_correctness_is_balanced_not_pooled(context):
    """4 answerable (3 answered), 1 unanswerable (answered): pooled accuracy would be 3/5,
    balanced is (3/4 + 0/1) / 2."""
    records = [citation_record(f"kw-a{i}", ["kw-hist-01"]) for i in range(4)] + [unanswerable("u")]
    outputs = [CREATED, CREATED, CREATED, REFUSAL, CREATED]
    rows = [row(r, o) for r, o in zip(records, outputs, strict=True)]
    items = score(CITATION, rows, records, context)["candidate"]
    [metric] = [m for m in SCORERS[CITATION].metrics if m.name == "refusal_correctness_rate"]
    assert aggregate(metric, items) == 0.375


# --- groundedness ------------------------------------------------------------------------


def test_groundedness_counts_grounded_sentences(context):
    record = citation_record("kw-1", ["kw-hist-01", "kw-hist-02"])
    text = "Maulana Karenga created Kwanzaa in 1966. It lasts seven days, ending on January 2."
    item = score_one(context, record, answer_json(text, ["kw-hist-01", "kw-hist-02"]))
    # The second sentence's words are in the chunk, but its number 2 is not.
    assert item.values["retrieval_groundedness_rate"] == 0.5
    assert "January 2" in item.reasons["retrieval_groundedness_rate"]


def test_groundedness_uses_only_the_cited_chunks(context):
    record = citation_record("kw-1", ["kw-hist-01"])
    text = "Maulana Karenga created Kwanzaa in 1966."
    assert (
        score_one(context, record, answer_json(text, ["kw-hist-01"])).values[
            "retrieval_groundedness_rate"
        ]
        == 1.0
    )
    assert (
        score_one(context, record, answer_json(text, ["kw-hist-02"])).values[
            "retrieval_groundedness_rate"
        ]
        == 0.0
    )


def test_groundedness_not_applicable_to_refusals_and_zero_for_invalid_json(context):
    record = citation_record("kw-1", ["kw-hist-01"])
    assert score_one(context, record, REFUSAL).values["retrieval_groundedness_rate"] is None
    garbage = score_one(context, record, "Karenga, 1966")
    assert garbage.values["retrieval_groundedness_rate"] == 0.0


def test_grounded_share_rules():
    chunk = CHUNKS["kw-hist-02"]
    assert grounded_share("Kwanzaa lasts seven days.", chunk) == (1.0, "")
    # 1 of 3 content words (kwanzaa; not: joyful, festival) is not more than half.
    assert grounded_share("Kwanzaa is a joyful festival.", chunk)[0] == 0.0
    # 2 of 3 content words (kwanzaa, december; not: runs) and the number is verbatim.
    assert grounded_share("Kwanzaa runs from December 26.", chunk)[0] == 1.0
    assert grounded_share("Kwanzaa runs from December 27.", chunk)[0] == 0.0
    # 1 of 2 (december; not: starts) is not more than half.
    assert grounded_share("It starts on December 26.", chunk)[0] == 0.0
    assert grounded_share("Yes. It is.", chunk) == (None, "")  # nothing checkable


def test_retrieved_chunks_match_the_data_checks_on_real_records():
    path = REPO_ROOT / "datasets" / "kwanzaa" / "v0" / "eval.jsonl"
    for line in path.read_text(encoding="utf-8").splitlines():
        user = json.loads(line)["messages"][1]["content"]
        chunks = retrieved_chunks(user)
        assert set(chunks) == retrieved_ids(user)
        assert all(text and "[" not in text[:1] for text in chunks.values())


def test_citation_scoring_needs_the_answer_schema(context):
    without = ScoringContext(context.policies, None)
    record = citation_record("kw-1", ["kw-hist-01"])
    with pytest.raises(InputError, match="answer_schema"):
        score(CITATION, [row(record, CREATED)], [record], without)


# --- zero tolerance ----------------------------------------------------------------------


def fake_hf_token() -> str:
    """Built at run time, so secret scanners never see a token in the repository."""
    alphabet = string.ascii_letters + string.digits
    return "hf_" + "".join(random.Random(7).choices(alphabet, k=34))


ATTRIBUTIONS = [
    "Kwanzaa was created in 1966. This answer was generated by ChatGPT.",
    "As an AI language model, I cannot say more.",
    "Karenga.\n\nCo-Authored-By: Claude <noreply@anthropic.com>",
    "🤖 Generated with Claude Code",
]


@pytest.mark.parametrize("text", ATTRIBUTIONS)
def test_attribution_in_an_answer_is_a_hit(context, text):
    item = score_one(context, citation_record("kw-1", ["kw-hist-01"]), answer_json(text, []))
    assert values(item, "ai_attribution_hits", "secret_hits") == [1.0, 0.0]
    assert "ai_attribution_hits" in item.reasons


def test_hits_are_counted_per_item_and_summed(context):
    a, b, c = (citation_record(f"kw-{i}", ["kw-hist-01"]) for i in "abc")
    outputs = [
        "Generated by ChatGPT. Also written with GitHub Copilot.",
        f"Use the token {fake_hf_token()} to log in.",
        CREATED,
    ]
    rows = [row(r, o) for r, o in zip((a, b, c), outputs, strict=True)]
    items = score(CITATION, rows, [a, b, c], context)["candidate"]
    assert [i.values["ai_attribution_hits"] for i in items] == [2.0, 0.0, 0.0]
    assert [i.values["secret_hits"] for i in items] == [0.0, 1.0, 0.0]
    result = table(SCORERS[CITATION].metrics, items).overall
    assert (result["ai_attribution_hits"], result["secret_hits"]) == (2.0, 1.0)
    assert fake_hf_token() not in items[1].reasons["secret_hits"]  # shown redacted


def test_prose_about_models_is_no_hit(context):
    text = "Claude Shannon wrote in 1948; we compare the AI language model we evaluate."
    item = score_one(context, citation_record("kw-1", ["kw-hist-01"]), answer_json(text, []))
    assert item.values["ai_attribution_hits"] == 0.0


# --- code --------------------------------------------------------------------------------

GOOD_CODE = """Here is the function and its test.

```python
def parse_port(text: str) -> int:
    try:
        port = int(text)
    except ValueError as err:
        raise ValueError(f"not a port: {text}") from err
    return port
```

```python
def test_parse_port() -> None:
    assert parse_port("80") == 80
```
"""
UNTESTED = "```python\ndef double(x: int) -> int:\n    return 2 * x\n```"
UNTYPED = (
    "```python\ndef double(x):\n    return 2 * x\n\n"
    "def test_double():\n    assert double(1) == 2\n```"
)
BROKEN = "```python\ndef double(x: int) -> int\n    return 2 * x\n```\n\n" + UNTESTED
PROSE = "Use a dict for lookups; it is O(1) on average."


def code_record(item_id: str, category: str, expects_code: bool = True) -> dict:
    reference = GOOD_CODE if expects_code else PROSE
    return {
        "id": item_id,
        "category": category,
        "messages": [
            {"role": "system", "content": "Answer with typed, tested Python."},
            {"role": "user", "content": f"Task {item_id}"},
            {"role": "assistant", "content": reference},
        ],
    }


CODE_NAMES = ("python_parse_rate", "tests_present_rate", "type_hints_rate", "error_handling_rate")
CODE_CASES = [
    ("complete", GOOD_CODE, [1.0, 1.0, 1.0, 1.0]),
    ("no tests, no error handling", UNTESTED, [1.0, 0.0, 1.0, 0.0]),
    ("no type hints", UNTYPED, [1.0, 1.0, 0.0, 0.0]),
    ("broken block beside a good one", BROKEN, [0.0, 0.0, 1.0, 0.0]),
    ("no python block", PROSE, [0.0, 0.0, 0.0, 0.0]),
    ("a block in another language", "```js\nlet x = 1;\n```", [0.0, 0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize(("name", "output", "expected"), CODE_CASES, ids=[c[0] for c in CODE_CASES])
def test_code_traits(context, name, output, expected):
    item = score_one(context, code_record("c1", "tdd_bdd"), output, CODE)
    assert values(item, *CODE_NAMES) == expected


def test_broken_python_says_where(context):
    item = score_one(context, code_record("c1", "tdd_bdd"), BROKEN, CODE)
    assert "python block 1" in item.reasons["python_parse_rate"]
    assert item.reasons["tests_present_rate"] == "no test_* function"


def test_code_metrics_when_the_item_expects_no_code(context):
    record = code_record("c1", "standards", expects_code=False)
    prose = score_one(context, record, PROSE, CODE)
    assert values(prose, *CODE_NAMES) == [None, None, None, None]
    broken = score_one(context, record, BROKEN, CODE)
    assert values(broken, *CODE_NAMES) == [0.0, None, None, None]


def test_code_attribution_comment_is_a_hit(context):
    output = GOOD_CODE.replace("def test_", "# Generated with GitHub Copilot\ndef test_")
    item = score_one(context, code_record("c1", "tdd_bdd"), output, CODE)
    assert item.values["ai_attribution_hits"] == 1.0
    assert item.values["python_parse_rate"] == 1.0


def test_code_metrics_per_category(context):
    records = [
        code_record("c1", "tdd_bdd"),
        code_record("c2", "tdd_bdd"),
        code_record("c3", "tdd_bdd"),
        code_record("c4", "standards"),
        code_record("c5", "standards"),
    ]
    outputs = [GOOD_CODE, UNTESTED, BROKEN, UNTYPED, PROSE]
    rows = [row(r, o) for r, o in zip(records, outputs, strict=True)]
    result = table(SCORERS[CODE].metrics, score(CODE, rows, records, context)["candidate"])
    assert result.categories["tdd_bdd"]["python_parse_rate"] == pytest.approx(2 / 3)
    assert result.categories["tdd_bdd"]["tests_present_rate"] == pytest.approx(1 / 3)
    assert result.categories["tdd_bdd"]["type_hints_rate"] == 1.0
    assert result.categories["standards"]["python_parse_rate"] == 0.5
    assert result.categories["standards"]["tests_present_rate"] == 0.5
    assert result.categories["standards"]["type_hints_rate"] == 0.0
    assert result.overall["python_parse_rate"] == 0.6
    assert result.overall["error_handling_rate"] == 0.2


def test_reference_answers_of_the_shipped_dataset_score_as_the_data_checks_see_them(context):
    path = REPO_ROOT / "datasets" / "ainative" / "v2" / "eval.jsonl"
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    rows = [row(r, r["messages"][-1]["content"]) for r in records]
    result = table(SCORERS[CODE].metrics, score(CODE, rows, records, context)["candidate"])
    assert result.overall["python_parse_rate"] == 1.0
    assert result.overall["ai_attribution_hits"] == 0.0


# --- roles, rows and the join ------------------------------------------------------------


def test_score_keeps_roles_apart_in_record_order(context):
    records = [citation_record("kw-b", ["kw-hist-01"]), citation_record("kw-a", ["kw-hist-01"])]
    rows = [row(records[1], REFUSAL, "base"), row(records[1], CREATED), row(records[0], CREATED)]
    rows.append(row(records[0], REFUSAL, "base"))
    scored = score(CITATION, rows, records, context)
    assert list(scored) == ["candidate", "base"]
    assert [i.item_id for i in scored["base"]] == ["kw-b", "kw-a"]
    assert [i.values["json_valid_rate"] for i in scored["candidate"]] == [1.0, 1.0]
    assert [i.values["answer_rate_on_answerable"] for i in scored["base"]] == [0.0, 0.0]


def write_rows(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def row_json(**changes) -> str:
    data = {
        "item_id": "kw-1",
        "category": "citation_required",
        "prompt_sha256": "0" * 64,
        "role": "candidate",
        "output": "{}",
        "latency_ms": 812.5,
        "prompt_tokens": 120,
        "output_tokens": 40,
    } | changes
    return json.dumps({k: v for k, v in data.items() if v is not ...})


def test_read_rows(tmp_path):
    path = write_rows(tmp_path / "eval_outputs.jsonl", [row_json(), "", row_json(role="base")])
    rows = read_rows(path)
    assert [(r.role, r.line, r.latency_ms) for r in rows] == [
        ("candidate", 1, 812.5),
        ("base", 3, 812.5),
    ]


BAD_LINES = [
    ('{"item_id": "kw-1",', "not JSON"),
    ("[1, 2]", "expected a JSON object"),
    (row_json(output=...), 'missing key(s) "output"'),
    (row_json(role="teacher"), 'role "teacher" is not one of candidate, base, incumbent'),
    (row_json(prompt_tokens="120"), "prompt_tokens: unexpected str value"),
    (row_json(output_tokens=True), "output_tokens: unexpected bool value"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_read_rows_names_file_line_and_problem(tmp_path, line, message):
    path = write_rows(tmp_path / "eval_outputs.jsonl", [row_json(), line])
    with pytest.raises(InputError) as raised:
        read_rows(path)
    assert f"{path}:2: " in str(raised.value)
    assert message in str(raised.value)


def test_join_reports_every_mismatch_by_item_id():
    a, b, c = (citation_record(f"kw-{i}", ["kw-hist-01"]) for i in "abc")
    stray = citation_record("kw-stray", ["kw-hist-01"])
    changed = dataclasses.replace(row(c, CREATED), prompt_sha256="f" * 64)
    rows = [row(a, CREATED), row(a, CREATED), row(stray, CREATED), changed, row(a, REFUSAL, "base")]
    with pytest.raises(InputError) as raised:
        join(rows, [a, b, c])
    message = str(raised.value)
    assert 'a second candidate row for item "kw-a"' in message
    assert 'item "kw-stray", which is not an eval record' in message
    assert 'item "kw-c" was generated from a different prompt' in message
    assert 'eval record "kw-b" has no candidate row' in message
    assert 'eval record "kw-b" has no base row' in message
    assert 'eval record "kw-c" has no base row' in message


def test_prompt_hash_matches_what_train_writes():
    train = pytest.importorskip("runner.train.train", reason="needs the training install")
    record = citation_record("kw-1", ["kw-hist-01"])
    assert prompt_sha256(record) == train.prompt_sha256(train.prompt_messages(record))


def test_outputs_nested_too_deeply_are_invalid_not_a_crash(context):
    item = score_one(context, citation_record("kw-1", ["kw-hist-01"]), "[" * 5000 + "{")
    assert values(item, "json_valid_rate", "json_lenient_valid_rate") == [0.0, 0.0]


def test_citation_records_need_their_gold_labels(context):
    record = citation_record("kw-1", ["kw-hist-01"])
    del record["answerable"]
    with pytest.raises(InputError, match=r'"kw-1".*answerable'):
        score(CITATION, [row(record, CREATED)], [record], context)
