"""citation_grounded_chat records: the answer is one strict answer_json object, it cites
only retrieved chunks, refusals cite nothing, and eval items carry their gold labels."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from runner.findings import Finding, Severity, quote

_CHUNK_ID = re.compile(r"^\[([^\]\s]+)\]", re.MULTILINE)
_INSTRUCTION = "### Instruction:"


def retrieved_ids(user_content: str) -> set[str]:
    """Ids of the chunks in the `### Retrieved Context:` part of a user message."""
    context = user_content.partition(_INSTRUCTION)[0]
    return set(_CHUNK_ID.findall(context))


@cache
def _validator(schema_text: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_text))


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
        parsed = json.loads(answer)
    except json.JSONDecodeError as err:
        return [
            *found,
            finding("data.answer-json", f"assistant answer is not one JSON object: {err.msg}"),
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
        error = next(iter(_validator(json.dumps(schema, sort_keys=True)).iter_errors(parsed)), None)
        if error is not None:
            where = "/".join(map(str, error.absolute_path)) or "(object)"
            return [
                *found,
                finding("data.answer-json", f"answer_json {where}: {error.message[:160]}"),
            ]
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
