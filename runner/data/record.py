"""Checks of one chat record: its shape, its text against the policies, its task rules and
its length. Runs inside worker processes; everything it returns is small."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runner.data.citation_task import check_citation_record
from runner.data.code_task import CodeTraits, check_code_answer
from runner.data.context import ROLES, SplitContext
from runner.data.tokens import count_tokens
from runner.findings import Finding, Severity, quote


@dataclass(frozen=True, slots=True)
class RecordOutcome:
    category: str | None
    tokens: int | None
    traits: CodeTraits | None
    user: str | None
    """The user message, for duplicate and leakage keys; None when the shape is broken."""


def check_record(
    record: dict[str, Any], line: int, ctx: SplitContext
) -> tuple[list[Finding], RecordOutcome]:
    def finding(rule: str, message: str, hint: str = "") -> Finding:
        return Finding(rule, Severity.ERROR, ctx.path, line, message, hint)

    found = _check_keys(record, ctx, finding)
    category = record.get("category")
    if not isinstance(category, str):
        category = None
    elif category not in ctx.categories:
        found.append(
            finding(
                "data.unknown-category",
                f"category {quote(category)} is not declared in dataset.yaml",
                f"declared: {', '.join(sorted(ctx.categories))}",
            )
        )
    contents = _chat_contents(record.get("messages"), finding, found)
    if contents is None:
        return found, RecordOutcome(category, None, None, None)
    if ctx.policies is not None:
        for index, text in enumerate(contents):
            where = f"messages[{index}].content"
            found += ctx.policies.scan(text, path=ctx.path, line=line, target="data", where=where)
    _, user, answer = contents
    traits = None
    if ctx.task == "code_assistant":
        code_findings, traits = check_code_answer(answer, path=ctx.path, line=line)
        found += code_findings
    else:
        found += check_citation_record(
            record, user, answer, ctx.answer_schema, path=ctx.path, line=line
        )
    tokens = count_tokens(contents, ctx.tokenizer_file)
    if tokens > ctx.max_seq_length:
        estimate = "" if ctx.tokenizer_file else " (estimate)"
        found.append(
            finding(
                "data.too-long",
                f"{tokens} tokens{estimate} is over max_seq_length {ctx.max_seq_length}",
                "shorten the example or raise max_seq_length in qlora.yaml",
            )
        )
    return found, RecordOutcome(category, tokens, traits, user)


def _check_keys(record: dict[str, Any], ctx: SplitContext, finding: Any) -> list[Finding]:
    found = [
        finding("data.missing-key", f"missing key {quote(key)}")
        for key in ctx.required_keys
        if key not in record
    ]
    undeclared = sorted(set(record) - ctx.allowed_keys)
    if undeclared:
        found.append(
            finding(
                "data.undeclared-key",
                f"undeclared key(s) {', '.join(map(quote, undeclared))}",
                "declare extra record keys under `extra_fields:` in dataset.yaml, or drop them",
            )
        )
    if "id" in record and not (isinstance(record["id"], str) and record["id"]):
        found.append(finding("data.key-type", "id: expected a non-empty string"))
    if "category" in record and not isinstance(record["category"], str):
        found.append(finding("data.key-type", "category: expected a string"))
    return found


def _chat_contents(messages: Any, finding: Any, found: list[Finding]) -> list[str] | None:
    """The three message texts, or None (with findings) when the chat shape is wrong."""
    if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
        found.append(finding("data.chat-shape", "messages: expected a list of objects"))
        return None
    roles = tuple(m.get("role") for m in messages)
    if roles != ROLES:
        shown = ", ".join(str(r) for r in roles) or "none"
        found.append(
            finding(
                "data.roles",
                f"roles are {shown}; expected system, user, assistant in that order",
            )
        )
        return None
    contents: list[str] = []
    for index, message in enumerate(messages):
        extra = sorted(set(message) - {"role", "content"})
        if extra:
            found.append(
                finding(
                    "data.undeclared-key",
                    f"messages[{index}] has undeclared key(s) {', '.join(map(quote, extra))}",
                )
            )
        content = message.get("content")
        if not isinstance(content, str) or not content.strip():
            found.append(finding("data.empty-content", f"messages[{index}].content is empty"))
            return None
        contents.append(content)
    return contents
