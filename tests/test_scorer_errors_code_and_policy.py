"""Scorer errors of issue 18 in the code scorer and the text policies, through the public
scorers: code blocks as CommonMark reads them, decided code definitions, attribution and
secrets hidden by an output's own encoding, look-alike letters from any script."""

# Look-alike letters are the point of some cases here.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import time

import pytest

from runner.data.code_task import check_code_answer
from runner.evaluate import ScoringContext, load_context
from tests.conftest import REPO_ROOT
from tests.test_scorers import (
    CODE,
    CODE_NAMES,
    GOOD_CODE,
    SCHEMA,
    answer_json,
    citation_record,
    code_record,
    fake_hf_token,
    score_one,
    values,
)

TYPED_TESTED = "def double(x: int) -> int:\n    return 2 * x\n\n\ndef test_double() -> None:\n"
TYPED_TESTED += "    assert double(1) == 2\n"


@pytest.fixture(scope="module")
def context() -> ScoringContext:
    return load_context(REPO_ROOT, SCHEMA)


def score_code(context: ScoringContext, output: str) -> list[float | None]:
    return values(score_one(context, code_record("c1", "tdd_bdd"), output, CODE), *CODE_NAMES)


def hits(context: ScoringContext, output: str) -> list[float | None]:
    item = score_one(context, citation_record("kw-1", ["kw-hist-01"]), output)
    return values(item, "ai_attribution_hits", "secret_hits")


# --- code blocks -------------------------------------------------------------------------

FENCES = [
    ("capitalised label", f"```Python\n{TYPED_TESTED}```"),
    ("python3", f"```python3\n{TYPED_TESTED}```"),
    ("py in capitals", f"```PY\n{TYPED_TESTED}```"),
    ("tilde fence", f"~~~py\n{TYPED_TESTED}~~~"),
    ("indented 3 spaces", "   ```python\n" + TYPED_TESTED + "   ```"),
    (
        "under a list item",
        "1. Write the function:\n\n   ```python\n"
        + "".join(f"   {line}\n" if line else "\n" for line in TYPED_TESTED.splitlines())
        + "   ```\n",
    ),
]


@pytest.mark.parametrize(("name", "output"), FENCES, ids=[f[0] for f in FENCES])
def test_python_fences_spelled_any_way_commonmark_allows_are_scored(context, name, output):
    assert score_code(context, output)[:3] == [1.0, 1.0, 1.0]


def test_a_fence_inside_a_string_does_not_end_the_block(context):
    output = '```python\nFENCE = "```"\n\n' + TYPED_TESTED + "```\n"
    assert score_code(context, output)[:3] == [1.0, 1.0, 1.0]


def test_a_truncated_last_block_does_not_parse(context):
    cut_off = GOOD_CODE.rsplit("```", 1)[0]  # the answer stops before the last fence closes
    item = score_one(context, code_record("c1", "tdd_bdd"), cut_off, CODE)
    assert item.values["python_parse_rate"] == 0.0
    assert "python block 2" in item.reasons["python_parse_rate"]
    assert "no closing fence" in item.reasons["python_parse_rate"]


def test_the_data_checks_read_blocks_as_the_scorer_does():
    findings, traits = check_code_answer(f"```Python3\n{TYPED_TESTED}", path="d.jsonl", line=4)
    assert [(f.rule_id, f.line) for f in findings] == [("data.python-syntax", 4)]
    assert "no closing fence" in findings[0].message
    findings, traits = check_code_answer(FENCES[-1][1], path="d.jsonl", line=4)
    assert (findings, traits.blocks, traits.tests) == ([], 1, True)


def test_an_unlabelled_fence_is_not_python(context):
    assert score_code(context, f"```\n{TYPED_TESTED}```") == [0.0, 0.0, 0.0, 0.0]


def test_a_long_output_is_read_in_linear_time(context):
    output = "```python\n" + 'x = "```"\n' * 10_000 + "```\n" + "text ``` " * 10_000
    started = time.perf_counter()
    score_code(context, output)
    assert time.perf_counter() - started < 2.0


# --- decided code definitions ------------------------------------------------------------

COLLECTED = [
    ("testfoo at module level", "def testdouble() -> None:\n    assert True\n"),
    (
        "method of a Test class",
        "class TestDouble:\n    def test_one(self) -> None:\n        assert True\n",
    ),
]
NOT_COLLECTED = [
    (
        "Test class with __init__",
        "class TestDouble:\n    def __init__(self, n: int) -> None:\n        self.n = n\n\n"
        "    def test_one(self) -> None:\n        assert True\n",
    ),
    (
        "test_ method of a class not named Test*",
        "class Checks:\n    def test_one(self) -> None:\n        assert True\n",
    ),
    (
        "test_ function nested in another",
        "def suite() -> None:\n    def test_one() -> None:\n        assert True\n",
    ),
]


@pytest.mark.parametrize(("name", "code"), COLLECTED, ids=[c[0] for c in COLLECTED])
def test_tests_are_what_pytest_collects(context, name, code):
    assert score_code(context, f"```python\n{code}```")[1] == 1.0


@pytest.mark.parametrize(("name", "code"), NOT_COLLECTED, ids=[c[0] for c in NOT_COLLECTED])
def test_functions_pytest_does_not_collect_are_no_tests(context, name, code):
    assert score_code(context, f"```python\n{code}```")[1] == 0.0


def test_an_init_with_typed_parameters_needs_no_return_annotation(context):
    typed = "class Port:\n    def __init__(self, number: int):\n        self.number = number\n"
    bare = "class Port:\n    def __init__(self):\n        self.number = 0\n"
    assert score_code(context, f"```python\n{typed}```")[2] == 1.0
    assert score_code(context, f"```python\n{bare}```")[2] == 0.0


# --- attribution and secrets hidden by the output's encoding -----------------------------

ENCODED_ATTRIBUTION = [
    ("unicode escape in a truncated document", '{"answer": "Written by \\u0043laude. Kwan'),
    ("escaped line break before a trailer", '{"answer": "Karenga.\\nCo-Authored-By: Claude'),
    (
        "escaped phrase in another key",
        '{"answer": "Karenga.", "note": "Generated with \\u0043laude"}',
    ),
    ("phrase wrapped by an escaped line break", json.dumps({"answer": "Generated with\nClaude"})),
]


@pytest.mark.parametrize(
    ("name", "output"), ENCODED_ATTRIBUTION, ids=[c[0] for c in ENCODED_ATTRIBUTION]
)
def test_attribution_hidden_in_json_escapes_is_a_hit(context, name, output):
    assert hits(context, output) == [1.0, 0.0]


def test_a_secret_hidden_in_json_escapes_is_a_hit(context):
    token = fake_hf_token()
    escaped = "".join(f"\\u{ord(c):04x}" for c in token[:3]) + token[3:]
    assert hits(context, '{"answer": "use ' + escaped + ' to log in", "citat') == [0.0, 1.0]


def test_a_hit_seen_raw_and_decoded_counts_once(context):
    assert hits(context, json.dumps({"answer": "x", "note": "Generated by ChatGPT\n"})) == [
        1.0,
        0.0,
    ]


def test_decoding_a_large_output_is_linear(context):
    output = '{"answer": "' + "a\\u0062c \\n" * 20_000  # 200 KB, truncated
    started = time.perf_counter()
    assert hits(context, output) == [0.0, 0.0]
    assert time.perf_counter() - started < 2.0


# --- look-alike letters and wrapped attribution ------------------------------------------

LOOKALIKES = [
    ("Lisu C", "Generated with ꓚlaude Code"),
    ("Cherokee C", "Generated with Ꮯlaude Code"),
    ("Cherokee and Lisu letters", "Written by ᏟᎻᎪᎢᏀᏢᎢ"),
    ("Cyrillic capital I in AI", "As an АІ language model, I cannot say."),
]


@pytest.mark.parametrize(("name", "text"), LOOKALIKES, ids=[c[0] for c in LOOKALIKES])
def test_lookalike_letters_of_any_script_do_not_hide_attribution(context, name, text):
    assert hits(context, answer_json(text, [])) == [1.0, 0.0]


WRAPPED = ["Karenga.\n\nCo-Authored-\nBy: Claude", "Karenga. Generated with\nClaude Code."]


@pytest.mark.parametrize("text", WRAPPED)
def test_attribution_wrapped_across_a_line_break_is_a_hit(context, text):
    assert hits(context, text) == [1.0, 0.0]


def test_a_blank_line_ends_the_phrase(context):
    assert hits(context, "The rows were generated with\n\nClaude Shannon's formula.") == [0.0, 0.0]


# --- secrets in an Authorization header --------------------------------------------------


def test_a_bearer_token_in_an_authorization_header_is_a_secret(context):
    token = fake_hf_token()[3:] + "Zq81"  # random-looking, no known prefix
    output = f'curl -H "Authorization: Bearer {token}" https://api.example.org'
    item = score_one(context, citation_record("kw-1", ["kw-hist-01"]), output)
    assert values(item, "ai_attribution_hits", "secret_hits") == [0.0, 1.0]
    assert token not in item.reasons["secret_hits"]  # shown redacted


@pytest.mark.parametrize(
    "header",
    ["Authorization: Bearer $HF_TOKEN", 'f"Bearer {token}"', "Authorization: Bearer <your-token>"],
)
def test_a_bearer_placeholder_is_no_secret(context, header):
    assert hits(context, header) == [0.0, 0.0]
