"""Whatever lands in a spec or policy file, a data record, an answer schema or a model's
answer, `runner validate` ends with exit 0, 1 or 2 and no traceback, and the scorers score
it. Hypothesis writes each input into a copy of a fixture repository and runs the real CLI
in-process; the examples are few and small so the whole module stays well under a minute."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.data.code_task import check_code_answer
from runner.evaluate import SCORERS, OutputRow, ScoringContext, load_context
from runner.evaluate.rows import prompt_sha256
from tests.conftest import REPO_ROOT, RunCli

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
ANY_CHARACTER = st.characters(exclude_categories=())
"""Lone surrogates included: JSON escapes can produce them, and so can a careless writer."""

A = "adapters/demo-v1"
KWANZAA = "adapters/kwanzaa-mini-v1"
SCHEMA = "datasets/kwanzaa/answer_json.schema.json"


def repeated(pieces: st.SearchStrategy[str], most: int) -> st.SearchStrategy[str]:
    """A piece written once or many times over: how bombs, deep nests and long numbers look."""
    # Drawn evenly, counts stay small; the ends are where the limits are.
    times = st.one_of(st.integers(1, most), st.sampled_from([most // 2, most]))
    return st.tuples(pieces, times).map(lambda pair: pair[0] * pair[1])


def joined(pieces: st.SearchStrategy[str], most: int = 3000) -> st.SearchStrategy[str]:
    chunk = st.one_of(pieces, repeated(pieces, most), st.text(ANY_CHARACTER, max_size=8))
    return st.lists(chunk, max_size=12).map("".join)


@contextmanager
def written(root: Path, relative: str, content: bytes) -> Iterator[None]:
    """`content` in place of the file at `relative` for the duration, then the original."""
    path = root / relative
    original = path.read_bytes()
    path.write_bytes(content)
    try:
        yield
    finally:
        path.write_bytes(original)


def assert_validate_ends_cleanly(run_cli: RunCli, root: Path, *adapters: str) -> None:
    code, out, err = run_cli("validate", "--repo", root, *adapters)
    assert code in (0, 1, 2), out + err
    assert "Traceback" not in out + err


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The demo adapter and a citation adapter with a few records each (quick to validate);
    with the real policies."""
    root = tmp_path / "repo"
    shutil.copytree(REPO_ROOT / "tests" / "fixtures" / "repo", root)
    for part in ("policies", "schemas", KWANZAA, "datasets/kwanzaa"):
        shutil.copytree(REPO_ROOT / part, root / part)
    for split in ("train", "eval"):
        data = root / "datasets" / "kwanzaa" / "v0" / f"{split}.jsonl"
        data.write_text("".join(data.read_text(encoding="utf-8").splitlines(True)[:3]))
    return root


# --- spec and policy YAML ----------------------------------------------------------------

YAML_PIECES = st.sampled_from(
    [
        "&a ",
        "*a",
        "*a, ",
        "<<: *a\n",
        "[",
        "]",
        "{",
        "}",
        "- ",
        ": ",
        "\n",
        "\n  ",
        "key: ",
        "? ",
        "9",
        "0x",
        "!!int ",
        "!!binary ",
        "%TAG ! tag:x,2000:\n",
        "---\n",
        "|\n",
        "'",
        '"',
        "\t",
        "#",
        "\ufeff",
        "\x00",
    ]
)
YAML_FILES = st.sampled_from(
    [
        f"{A}/adapter.yaml",
        f"{A}/dataset.yaml",
        f"{A}/qlora.yaml",
        f"{A}/eval.yaml",
        "policies/training.yaml",
        "policies/attribution.yaml",
    ]
)


YAML_DIRECTIVES = st.sampled_from(["", "%YAML 1.1\n---\n", "%YAML 1.2\n", "%YAML 1.3\n---\n"])
"""Apart, because a directive is only one at the top of the file."""


@FUZZ
@given(directive=YAML_DIRECTIVES, text=joined(YAML_PIECES), relative=YAML_FILES)
def test_any_spec_or_policy_yaml_validates_without_a_traceback(
    repo: Path, run_cli: RunCli, directive: str, text: str, relative: str
) -> None:
    with written(repo, relative, (directive + text).encode("utf-8", "surrogatepass")):
        assert_validate_ends_cleanly(run_cli, repo, A)


# --- JSONL records ------------------------------------------------------------------------

JSON_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(ANY_CHARACTER, max_size=20),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
JSON_PIECES = st.sampled_from(
    ["[", "]", "{", "}", ",", ":", '"', "\\ud800", "\\udc00", "9", "-", "1e999", "null"]
)


def record_variants(line: str) -> st.SearchStrategy[str]:
    """The fixture's first record with one value replaced, or JSON-shaped garbage."""
    record = json.loads(line)

    def replaced(path: tuple[Any, ...], value: Any) -> str:
        changed = json.loads(line)
        target = changed
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return json.dumps(changed)

    places = st.sampled_from(
        [("id",), ("category",), ("messages",), ("messages", 1, "content"), ("extra",)]
        + [("messages", 2, "content")] * 2
    )
    code = joined(st.sampled_from(["```python\n", "```", "-", "(", "x = ", "1", "\n", "def f"]))
    long_number = repeated(st.sampled_from(["9", "-9"]), 6000)  # json.dumps cannot write one
    return st.one_of(
        st.builds(replaced, places, JSON_VALUES),
        st.builds(replaced, st.just(("messages", 2, "content")), code),
        long_number.map(lambda number: line.replace('"demo-1"', number)),
        joined(JSON_PIECES, 6000),
        st.just(json.dumps(record)),
    )


FIRST_TRAIN_LINE = (
    (REPO_ROOT / "tests/fixtures/repo/datasets/demo/v1/train.jsonl").read_text().splitlines()[0]
)


@FUZZ
@given(line=record_variants(FIRST_TRAIN_LINE))
def test_any_data_record_validates_without_a_traceback(
    repo: Path, run_cli: RunCli, line: str
) -> None:
    content = (line + "\n").encode("utf-8", "surrogatepass")
    with written(repo, "datasets/demo/v1/train.jsonl", content):
        assert_validate_ends_cleanly(run_cli, repo, A)


# --- answer schemas -----------------------------------------------------------------------

SCHEMA_KEYS = st.sampled_from(
    [
        "type",
        "$ref",
        "$dynamicRef",
        "$id",
        "$defs",
        "$schema",
        "properties",
        "items",
        "allOf",
        "anyOf",
        "not",
        "required",
        "enum",
        "const",
        "pattern",
        "minLength",
        "additionalProperties",
        "answer",
        "citations",
    ]
)
SCHEMA_STRINGS = st.sampled_from(
    [
        "#",
        "#/$defs/a",
        "#/properties",
        "#/nope",
        "a.json",
        "http://127.0.0.1:9/schema.json",
        "file:///etc/hostname",
        "https://json-schema.org/draft/2020-12/schema",
        "object",
        "string",
        "array",
        "objekt",
        "^kw-",
        "(",
    ]
)
SCHEMA_VALUES = st.recursive(
    st.one_of(SCHEMA_STRINGS, st.integers(-2, 3), st.booleans(), st.none()),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(SCHEMA_KEYS, inner, max_size=4),
    max_leaves=10,
)


@FUZZ
@given(schema=SCHEMA_VALUES, raw=st.one_of(st.none(), joined(JSON_PIECES, 200)))
def test_any_answer_schema_validates_without_a_traceback_or_a_fetch(
    repo: Path, run_cli: RunCli, schema: Any, raw: str | None
) -> None:
    """A $ref to a URL that nothing listens on would raise if it were ever fetched."""
    text = raw if raw is not None else json.dumps(schema)
    with written(repo, SCHEMA, text.encode("utf-8", "surrogatepass")):
        assert_validate_ends_cleanly(run_cli, repo, KWANZAA)


# --- model answers ------------------------------------------------------------------------

ANSWER_PIECES = st.sampled_from(
    [
        "```python\n",
        "```py\n",
        "```",
        "\n",
        "-",
        "(",
        "[",
        "{",
        '{"answer": "x", "citations": ["kw-hist-01"], "refused": false}',
        "x = ",
        "1",
        "def test_f() -> None:\n    raise ValueError\n",
        "\\",
        "\x00",
        "\ud800",
    ]
)


@pytest.fixture(scope="module")
def scoring() -> ScoringContext:
    return load_context(REPO_ROOT, SCHEMA)


def eval_records() -> dict[str, dict[str, Any]]:
    return {
        "code_assistant": json.loads(
            (REPO_ROOT / "datasets/ainative/v1/eval.jsonl").read_text().splitlines()[0]
        ),
        "citation_grounded_chat": json.loads(
            (REPO_ROOT / "datasets/kwanzaa/v0/eval.jsonl").read_text().splitlines()[0]
        ),
    }


RECORDS = eval_records()


@settings(max_examples=300, deadline=None)
@given(output=joined(ANSWER_PIECES), task=st.sampled_from(sorted(RECORDS)))
def test_the_scorers_score_any_answer(scoring: ScoringContext, output: str, task: str) -> None:
    record = RECORDS[task]
    check_code_answer(output, path="eval_outputs.jsonl", line=1)
    row = OutputRow(
        record["id"], record["category"], prompt_sha256(record), "candidate", output, 1.0, 1, 1, 1
    )
    item = SCORERS[task].score_item(row, record, scoring)
    assert item.item_id == record["id"]
