"""citation_grounded_chat records: the answer is one strict answer_json object, it cites
only retrieved chunks, refusals cite nothing, and eval items carry their gold labels."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from runner.data.jsonl import JsonLimitError, parse_json
from runner.errors import InputError
from runner.findings import Finding, Severity, quote
from runner.repofiles import read_declared_bytes
from runner.specs.bundle import AdapterBundle

_CHUNK_ID = re.compile(r"^\[([^\]\s]+)\]", re.MULTILINE)
_INSTRUCTION = "### Instruction:"

TASK = "citation_grounded_chat"
ANSWERED, REFUSED = "answer_rate_on_answerable", "refusal_rate_on_unanswerable"
REFUSAL_CORRECTNESS = "refusal_correctness_rate"
REFUSAL_SIDES = (ANSWERED, REFUSED)
"""Refusal correctness is the mean of these rates, one per gold label (balanced accuracy)."""
ALWAYS_REFUSING = 1 / len(REFUSAL_SIDES)
"""Refusal correctness of a candidate refusing every item: the refusal side's rate is 1,
every other side's 0, whatever the share of answerable items."""


def retrieved_ids(user_content: str) -> set[str]:
    """Ids of the chunks in the `### Retrieved Context:` part of a user message."""
    context = user_content.partition(_INSTRUCTION)[0]
    return set(_CHUNK_ID.findall(context))


class AnswerSchemaError(InputError):
    """An answer_schema that cannot be used: unreadable, not JSON, not a JSON Schema, or one
    that refers outside itself."""


# No `retrieve`: a $ref outside the schema is unresolvable, never fetched. jsonschema's own
# default registry fetches http(s) and file URLs with urlopen.
_OFFLINE: Registry[Any] = Registry()
_REFERENCES = ("$ref", "$dynamicRef")


def read_answer_schema(repo_root: Path, relative: str) -> dict[str, Any]:
    """The answer_schema a dataset manifest declares, read as a declared regular file and
    checked to be a self-contained JSON Schema; AnswerSchemaError (or UnsafePathError)."""
    try:
        raw = read_declared_bytes(repo_root, relative, what="answer schema")
    except OSError as err:
        raise AnswerSchemaError(f"{relative}: cannot read it ({err.strerror})") from None
    try:
        schema = parse_json(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise AnswerSchemaError(f"{relative}: not UTF-8 (byte 0x{raw[err.start]:02x})") from None
    except json.JSONDecodeError as err:
        raise AnswerSchemaError(
            f"{relative}:{err.lineno}:{err.colno}: not JSON: {err.msg}"
        ) from None
    except JsonLimitError as err:
        raise AnswerSchemaError(f"{relative}: not read: {err}") from None
    if not isinstance(schema, dict):
        raise AnswerSchemaError(f"{relative}: a JSON Schema is a JSON object")
    _check_schema(schema, relative)
    return schema


def _check_schema(schema: dict[str, Any], shown: str) -> None:
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        where = "/".join(map(str, err.absolute_path)) or "(top level)"
        raise AnswerSchemaError(
            f"{shown}: not a valid JSON Schema at {where}: {_first_line(err.message)}"
        ) from None
    resolver = _OFFLINE.resolver_with_root(DRAFT202012.create_resource(schema))
    for where, reference, nested in _references(schema):
        if not reference.startswith("#"):
            raise AnswerSchemaError(
                f"{shown}: {where} refers to {quote(reference)}, outside the schema; nothing is "
                "fetched: copy the definition under $defs and refer to it as '#/$defs/NAME'"
            )
        try:  # inside a nested $id, '#' means that subschema: the validator resolves it
            if not nested:
                resolver.lookup(reference)
        except Unresolvable:
            raise AnswerSchemaError(
                f"{shown}: {where} refers to {quote(reference)}, which is not in the schema"
            ) from None
    try:  # every value meets the top-level keywords: a $ref loop shows here, not on a record
        first_answer_error(answer_validator(schema), {})
    except AnswerSchemaError as err:
        raise AnswerSchemaError(f"{shown}: {err}") from None


def _references(schema: dict[str, Any]) -> Iterator[tuple[str, str, bool]]:
    """(JSON pointer, target, under a nested $id) of every $ref and $dynamicRef."""
    stack: list[tuple[str, Any, bool]] = [("", schema, False)]
    while stack:
        pointer, node, nested = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in children:
            inner = f"{pointer}/{key}"
            if key in _REFERENCES and isinstance(child, str):
                yield inner, child, nested
            elif isinstance(child, dict | list):
                stack.append((inner, child, nested or (isinstance(child, dict) and "$id" in child)))


def answer_validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The validator of an answer schema: one per schema, resolving nothing outside it."""
    return _validator(json.dumps(schema, sort_keys=True))


@cache
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text), registry=_OFFLINE)


def first_answer_error(validator: Draft202012Validator, value: Any) -> str | None:
    """Why `value` does not meet the answer schema, in one line, or None when it does.
    AnswerSchemaError when the schema itself cannot be applied."""
    try:
        error = next(iter(validator.iter_errors(value)), None)
    except Unresolvable as err:
        raise AnswerSchemaError(
            f"the answer schema cannot be applied: a $ref does not resolve ({str(err)[:160]})"
        ) from None
    except RecursionError:
        raise AnswerSchemaError(
            "the answer schema cannot be applied: a $ref refers to itself without end"
        ) from None
    if error is None:
        return None
    where = "/".join(map(str, error.absolute_path)) or "(object)"
    return f"answer_json {where}: {_first_line(error.message)[:160]}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def check_citation_record(
    record: dict[str, Any],
    user: str,
    answer: str,
    schema: dict[str, Any] | None,
    *,
    path: str,
    line: int,
) -> list[Finding]:
    def finding(rule: str, message: str, hint: str = "") -> Finding:
        return Finding(rule, Severity.ERROR, path, line, message, hint)

    retrieved = retrieved_ids(user)
    found = _check_labels(record, retrieved, finding)
    try:
        parsed = parse_json(answer)
    except (json.JSONDecodeError, JsonLimitError) as err:
        problem = err.msg if isinstance(err, json.JSONDecodeError) else str(err)
        return [
            *found,
            finding("data.answer-json", f"assistant answer is not one JSON object: {problem}"),
        ]
    if not isinstance(parsed, dict):
        return [*found, finding("data.answer-json", "assistant answer is not a JSON object")]
    citations = parsed.get("citations")
    if parsed.get("refused") is True and citations:
        return [
            *found,
            finding("data.refusal-cites", "a refusal cites chunks; refusals cite nothing"),
        ]
    if schema is not None:
        try:
            problem = first_answer_error(answer_validator(schema), parsed)
        except AnswerSchemaError as err:
            return [*found, finding("data.answer-schema", str(err))]
        if problem is not None:
            return [*found, finding("data.answer-json", problem)]
    if isinstance(citations, list):
        stray = sorted({c for c in citations if isinstance(c, str)} - retrieved)
        if stray:
            found.append(
                finding(
                    "data.citation-not-retrieved",
                    f"cites {', '.join(map(quote, stray))}, not in the retrieved context",
                    "cite only ids that appear as [id] in the user message",
                )
            )
    return found


def _check_labels(record: dict[str, Any], retrieved: set[str], finding: Any) -> list[Finding]:
    """Gold labels, when present (required on eval items: the loader checks presence)."""
    found: list[Finding] = []
    answerable, gold = record.get("answerable"), record.get("gold_citations")
    if "answerable" in record and not isinstance(answerable, bool):
        found.append(finding("data.gold-labels", "answerable: expected true or false"))
    if "gold_citations" in record:
        if not isinstance(gold, list) or not all(isinstance(g, str) for g in gold):
            found.append(finding("data.gold-labels", "gold_citations: expected a list of ids"))
        elif answerable is True and not gold:
            found.append(finding("data.gold-labels", "an answerable item needs gold_citations"))
        elif stray := sorted(set(gold) - retrieved):
            found.append(
                finding(
                    "data.gold-labels",
                    f"gold_citations {', '.join(map(quote, stray))} not in the retrieved context",
                )
            )
    return found


def refusal_floor_findings(bundle: AdapterBundle) -> list[Finding]:
    """A warning at an overall refusal-correctness floor that a candidate refusing every
    item meets: that floor cannot stop it, only floors on what a refusal fails can (see
    `runner.evaluate.gate`). Category floors are left out: there, what refusing scores
    depends on which items the category holds."""
    floor = bundle.evaluation.thresholds.overall.get(REFUSAL_CORRECTNESS)
    if bundle.adapter.task != TASK or floor is None or floor > ALWAYS_REFUSING:
        return []
    return [
        bundle.docs["eval.yaml"].finding(
            ["thresholds", "overall", REFUSAL_CORRECTNESS],
            "eval.refusal-floor",
            f"thresholds.overall.{REFUSAL_CORRECTNESS}: {floor:g} is at or below the "
            f"{ALWAYS_REFUSING:g} a candidate refusing every item scores, so it does not stop one",
            hint=f"raise it above {ALWAYS_REFUSING:g} once a measured run reaches that; until "
            "then floors on answerable items (citation_coverage_rate) are what fail a refuser",
            severity=Severity.WARNING,
            at_key=True,
        )
    ]
