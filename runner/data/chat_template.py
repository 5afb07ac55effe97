"""Does the base model's chat template render an adapter's chats the way training needs?

A data check that needs the tokenizer: every record must render, the generation prompt must
be a token prefix of the whole chat (or training masks the wrong tokens), and records longer
than max_seq_length lose their answers. `runner smoke` runs it on the records it trains on.
The transformers tokenizer is only a type here: the caller loads it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.data.jsonl import ByteRange, decode_record, iter_lines
from runner.findings import Finding, Severity, quote

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from runner.specs.bundle import AdapterBundle


@dataclass(frozen=True)
class TemplateCheck:
    """The records that render cleanly (usable for training) and the findings of the rest."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    findings: list[Finding]
    checked: int


@dataclass(frozen=True)
class LineRecord:
    """One decoded JSONL record and where it came from."""

    path: str  # as in the manifest, relative to the repository root
    line: int
    record: dict[str, Any]


def check_templates(
    tokenizer: PreTrainedTokenizerBase,
    bundle: AdapterBundle,
    repo_root: Path,
    max_records: int,
) -> TemplateCheck:
    """Render the first `max_records` records of the train and eval files with the base
    template; the generation prompt must be a token prefix of the whole chat."""
    findings: list[Finding] = []
    usable: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    checked = 0
    limit = bundle.training.max_seq_length
    for split in usable:
        rel = getattr(bundle.dataset.files, split).path
        records, read_findings = _read_records(repo_root, rel, max_records)
        findings += read_findings
        lengths: list[tuple[int, int]] = []
        for item in records:
            problem, length = check_record(tokenizer, item)
            checked += 1
            if problem is not None:
                findings.append(problem)
                continue
            usable[split].append(item.record)
            lengths.append((item.line, length))
        findings += _too_long(rel, lengths, limit, len(records))
    return TemplateCheck(usable["train"], usable["eval"], findings, checked)


def _read_records(repo_root: Path, rel: str, limit: int) -> tuple[list[LineRecord], list[Finding]]:
    path = repo_root / rel
    if not path.is_file():
        hint = "fix files in dataset.yaml, then run `runner validate`"
        return [], [Finding("smoke.data", Severity.ERROR, rel, None, "file not found", hint)]
    records: list[LineRecord] = []
    findings: list[Finding] = []
    for line, raw in iter_lines(path, ByteRange(0, path.stat().st_size, 1)):
        if len(records) + len(findings) >= limit:
            break
        record, finding = decode_record(raw, line, rel)
        if finding is not None:
            findings.append(finding)
        elif record is not None:
            records.append(LineRecord(rel, line, record))
    return records, findings


def check_record(
    tokenizer: PreTrainedTokenizerBase, item: LineRecord
) -> tuple[Finding | None, int]:
    """The finding for one record (None when it is fine) and its length in tokens."""
    from jinja2 import TemplateError

    def finding(rule: str, message: str, hint: str) -> Finding:
        return Finding(rule, Severity.ERROR, item.path, item.line, message, hint)

    messages = _chat(item.record)
    if messages is None:
        return finding(
            "smoke.record",
            "not a chat that ends with an assistant turn",
            "run `runner validate` for the details",
        ), 0
    try:
        full = _token_ids(tokenizer, messages, generation_prompt=False)
        # The prompt train.py masks and generates from: the chat without its final answer.
        prompt = _token_ids(tokenizer, messages[:-1], generation_prompt=True)
    except (TemplateError, ValueError, TypeError, KeyError, IndexError) as error:
        return finding(
            "smoke.template",
            f"the base model's chat template cannot render this chat: {error}",
            "change the chat to what the template accepts (roles, their order), or pick a "
            "base model whose template supports it",
        ), 0
    if full[: len(prompt)] != prompt:
        return _prefix_finding(tokenizer, item, messages, prompt, full), len(full)
    return None, len(full)


def _chat(record: dict[str, Any]) -> list[dict[str, str]] | None:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    if not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages):
        return None
    if messages[-1]["role"] != "assistant":
        return None
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _token_ids(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], *, generation_prompt: bool
) -> list[int]:
    # The same call TRL makes for prompt/completion rows (transformers 5 needs return_dict).
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
    )
    return list(encoded["input_ids"])


def _prefix_finding(
    tokenizer: PreTrainedTokenizerBase,
    item: LineRecord,
    messages: list[dict[str, str]],
    prompt: list[int],
    full: list[int],
) -> Finding:
    """Two causes, two fixes: the template renders the prompt differently on its own, or the
    answer's first characters merge with the end of the prompt into other tokens."""
    pairs = enumerate(zip(prompt, full, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(prompt), len(full)))
    seen = f"prompt has {quote(tokenizer.decode(prompt[at:]))}, chat has "
    seen += quote(tokenizer.decode(full[at : len(prompt) + 4]))
    why = "training would mask the wrong tokens and the model would be trained on a prompt it "
    why += "never sees at inference"
    prompt_text = tokenizer.decode(prompt)
    if tokenizer.decode(full).startswith(prompt_text):
        start = quote(messages[-1]["content"][:12])
        return Finding(
            "smoke.prompt-prefix",
            Severity.ERROR,
            item.path,
            item.line,
            f"the answer's start {start} merges with the end of the generation prompt into "
            f"other tokens (token {at + 1}: {seen}); {why}",
            "strip leading whitespace from the assistant turn, or start it differently",
        )
    return Finding(
        "smoke.prompt-prefix",
        Severity.ERROR,
        item.path,
        item.line,
        f"the base model's chat template renders the generation prompt differently from the "
        f"same turns in the whole chat (token {at + 1}: {seen}); {why}",
        "pick a base model (or revision) whose template renders the prompt the same way "
        "with and without the answer",
    )


def _too_long(rel: str, lengths: list[tuple[int, int]], limit: int, total: int) -> list[Finding]:
    over = [(line, length) for line, length in lengths if length > limit]
    if not over:
        return []
    line, longest = max(over, key=lambda pair: pair[1])
    return [
        Finding(
            "smoke.too-long",
            Severity.WARNING,
            rel,
            line,
            f"{len(over)} of the {total} records checked are longer than max_seq_length "
            f"({limit} tokens), the longest {longest}: training cuts their ends, where the "
            "answers are",
            "raise max_seq_length in qlora.yaml, or shorten these records",
        )
    ]
