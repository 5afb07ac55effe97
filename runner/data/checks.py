"""The data checks of one adapter: every record of both splits, then what only the whole
dataset can show (duplicates, leakage, manifest integrity, minimum counts and shares)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from runner.data.citation_task import read_answer_schema
from runner.data.context import BASE_KEYS, CITATION_KEYS, Split, SplitContext, TextScanner
from runner.data.dedup import near_duplicate_pairs
from runner.data.jsonl import ByteRange, decode_record, iter_lines
from runner.data.pipeline import SplitResult, SplitStats, check_file
from runner.data.tokens import cached_tokenizer_file
from runner.errors import InputError
from runner.findings import Finding, Severity, quote
from runner.hashing import sha256_of
from runner.specs.bundle import AdapterBundle
from runner.specs.dataset import DatasetFile
from runner.workspace import Workspace

SPLITS: tuple[Split, Split] = ("train", "eval")


@dataclass(frozen=True)
class DatasetReport:
    findings: list[Finding]
    stats: dict[str, SplitStats]
    tokens_exact: bool


def check_dataset(
    bundle: AdapterBundle, workspace: Workspace, policies: TextScanner | None
) -> DatasetReport:
    manifest = bundle.dataset
    base = bundle.adapter.base_model
    tokenizer = cached_tokenizer_file(base.id, base.revision)
    schema, findings = _answer_schema(bundle, workspace)
    allowed = {*BASE_KEYS, *manifest.extra_fields}
    if bundle.adapter.task == "citation_grounded_chat":
        allowed.update(CITATION_KEYS)
    results: dict[str, SplitResult] = {}
    for split in SPLITS:
        entry = getattr(manifest.files, split)
        context = SplitContext(
            path=entry.path,
            split=split,
            task=bundle.adapter.task,
            categories=frozenset(manifest.categories),
            allowed_keys=frozenset(allowed),
            answer_schema=schema,
            max_seq_length=bundle.training.max_seq_length,
            tokenizer_file=tokenizer,
            policies=policies,
        )
        results[split] = check_file(workspace.root / entry.path, context)
        findings += results[split].findings
    findings += _duplicates_and_leakage(bundle, results)
    findings += _manifest_integrity(bundle, workspace, results)
    findings += _category_minimums(bundle, results)
    findings += _thresholds_without_items(bundle, workspace, results["eval"].stats)
    findings += _code_quality(bundle, results)
    if tokenizer is None:
        findings.append(
            bundle.docs["adapter.yaml"].finding(
                ["base_model", "id"],
                "data.token-estimate",
                f"token lengths are estimates: no tokenizer for {base.id} in the local cache",
                hint="lengths err long (3.5 characters a token)",
                severity=Severity.INFO,
            )
        )
    stats = {split: result.stats for split, result in results.items()}
    return DatasetReport(findings, stats, tokenizer is not None)


def _answer_schema(bundle: AdapterBundle, workspace: Workspace) -> tuple[dict | None, list]:
    relative = bundle.dataset.answer_schema
    if relative is None:
        return None, []
    try:
        return read_answer_schema(workspace.root, relative), []
    except InputError as err:
        return None, [
            bundle.docs["dataset.yaml"].finding(
                ["answer_schema"],
                "data.answer-schema",
                f"answer_schema cannot be used: {err}",
                hint="point answer_schema at a JSON Schema file of the repository whose $refs "
                "stay inside it ('#/...'); answers are checked against it then",
            )
        ]


def _duplicates_and_leakage(
    bundle: AdapterBundle, results: dict[str, SplitResult]
) -> list[Finding]:
    """Within each split: the same prompt twice. Across: an eval prompt also in train."""
    threshold = bundle.dataset.near_duplicate_similarity
    train, evaluation = results["train"].keys, results["eval"].keys
    paths = {split: getattr(bundle.dataset.files, split).path for split in SPLITS}
    rows = [("train", line) for line in train.lines] + [("eval", line) for line in evaluation.lines]
    exact = train.exact + evaluation.exact
    signatures = np.vstack([train.signatures, evaluation.signatures])
    first_seen: dict[bytes, int] = {}
    matches: dict[int, tuple[int, str]] = {}
    for row, key in enumerate(exact):
        if key in first_seen:
            matches[row] = (first_seen[key], "the same prompt")
        else:
            first_seen[key] = row
    repeated = np.zeros(len(exact), bool)
    repeated[list(matches)] = True
    for row, other, similarity in near_duplicate_pairs(signatures, threshold, skip=repeated):
        matches[row] = (other, f"a prompt {similarity:.0%} similar to")
    findings = []
    for row, (other, how) in sorted(matches.items()):
        (split, line), (other_split, other_line) = rows[row], rows[other]
        if split == other_split:
            rule = "data.duplicate" if how == "the same prompt" else "data.near-duplicate"
            message = (
                f"{how} as line {other_line}"
                if rule == "data.duplicate"
                else (f"{how} line {other_line}")
            )
            hint = "drop one; duplicates over-weight an example"
        else:
            rule = "data.leakage" if how == "the same prompt" else "data.near-leakage"
            where = f"{paths[other_split]} line {other_line}"
            message = f"{how} as {where}" if rule == "data.leakage" else f"{how} {where}"
            hint = "an eval prompt seen in training inflates the scores; drop or rewrite it"
        findings.append(Finding(rule, Severity.ERROR, paths[split], line, message, hint))
    return findings


def _manifest_integrity(
    bundle: AdapterBundle, workspace: Workspace, results: dict[str, SplitResult]
) -> list[Finding]:
    """What `runner dataset lock` recorded against what the files hold now: a changed hash
    per file, and every count that differs in one table (a record added to a category
    changes two counts; a list of findings would hide that they are one change)."""
    doc = bundle.docs["dataset.yaml"]
    lock = f"if the change is intended, run `runner dataset lock {bundle.path}`"
    findings = []
    rows: list[tuple[str, str, str, str]] = []
    first: list[str | int] | None = None
    for split in SPLITS:
        entry = getattr(bundle.dataset.files, split)
        if entry.sha256 is not None and entry.sha256 != sha256_of(workspace.root / entry.path):
            findings.append(
                doc.finding(
                    ["files", split, "sha256"],
                    "data.sha256-mismatch",
                    f"{entry.path} does not match its recorded sha256",
                    hint=lock,
                )
            )
        for key, recorded, found in _count_pairs(entry, results[split].stats):
            rows.append((split, key, _shown(recorded), _shown(found)))
            if first is None:
                first = ["files", split, key if key == "examples" else "category_counts"]
    if first is not None:
        findings.append(
            doc.finding(
                first,
                "data.count-mismatch",
                "the counts recorded here differ from the data files:\n"
                + _table(("split", "count", "recorded", "found"), rows),
                hint=lock,
                at_key=first[-1] == "category_counts",
            )
        )
    return findings


def _count_pairs(entry: DatasetFile, stats: SplitStats) -> list[tuple[str, int | None, int]]:
    """(count, recorded, found) for each count of one file that differs from its record."""
    pairs: list[tuple[str, int | None, int]] = []
    if entry.examples is not None and entry.examples != stats.records:
        pairs.append(("examples", entry.examples, stats.records))
    recorded = entry.category_counts
    if recorded is not None and recorded != dict(stats.categories):
        for category in [*recorded, *sorted(set(stats.categories) - set(recorded))]:
            before, now = recorded.get(category), stats.categories.get(category, 0)
            if before != now:
                pairs.append((category, before, now))
    return pairs


def _shown(count: int | None) -> str:
    return "-" if count is None else str(count)


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    """Rows in aligned columns, text left and numbers right, for a terminal."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = [
            cell.rjust(width) if i >= 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        return "  " + "  ".join(cells).rstrip()

    return "\n".join(line(row) for row in [header, *rows])


def _category_minimums(bundle: AdapterBundle, results: dict[str, SplitResult]) -> list[Finding]:
    doc = bundle.docs["dataset.yaml"]
    findings = []
    for category, rule in bundle.dataset.categories.items():
        for split, minimum in (("train", rule.min_train), ("eval", rule.min_eval)):
            count = results[split].stats.categories.get(category, 0)
            if count < minimum:
                findings.append(
                    doc.finding(
                        ["categories", category, f"min_{split}"],
                        "data.category-minimum",
                        f"{category}: {count} {split} records, fewer than the minimum {minimum}",
                        hint="add examples, or lower the minimum with a reason in the PR",
                    )
                )
    return findings


def _thresholds_without_items(
    bundle: AdapterBundle, workspace: Workspace, stats: SplitStats
) -> list[Finding]:
    """A category floor with no evaluated item of its category fails every candidate at the
    gate, after the GPU bill: say so before anything is trained."""
    floors = bundle.evaluation.thresholds.categories
    if not floors:
        return []
    limit = bundle.evaluation.max_items
    evaluated = stats.categories
    if limit is not None and limit < stats.records:
        evaluated = _first_categories(workspace.root / bundle.dataset.files.eval.path, limit)
    cut = f" (max_items: {limit} of {stats.records})" if limit is not None else ""
    eval_path = bundle.dataset.files.eval.path
    return [
        bundle.docs["eval.yaml"].finding(
            ["thresholds", "categories", category],
            "data.threshold-without-items",
            f"thresholds.categories.{category}: no evaluated item of category "
            f"{quote(category)}{cut}, so this threshold can never be measured",
            hint=f"add {category} records to {eval_path}"
            + (", raise max_items" if cut else "")
            + ", or remove the threshold",
            at_key=True,
        )
        for category in floors
        if evaluated.get(category, 0) == 0
    ]


def _first_categories(path: Path, limit: int) -> Counter[str]:
    """Categories of the first `limit` records, as the eval picks them (blank lines skipped)."""
    counts: Counter[str] = Counter()
    span = ByteRange(0, path.stat().st_size, 1)
    for taken, (line, raw) in enumerate(iter_lines(path, span)):
        if taken >= limit:
            break
        record, _ = decode_record(raw, line, path.name)
        category = record.get("category") if record else None
        if isinstance(category, str):
            counts[category] += 1
    return counts


def _code_quality(bundle: AdapterBundle, results: dict[str, SplitResult]) -> list[Finding]:
    minimums = bundle.dataset.code_quality
    if minimums is None or bundle.adapter.task != "code_assistant":
        return []
    stats = SplitStats()
    for split in SPLITS:
        stats.merge(results[split].stats)
    if stats.code_answers == 0:
        return []
    shares = {
        "tests": stats.with_tests / stats.code_answers,
        "type_hints": stats.with_type_hints / stats.code_answers,
        "error_handling": stats.with_error_handling / stats.code_answers,
    }
    doc = bundle.docs["dataset.yaml"]
    return [
        doc.finding(
            ["code_quality", trait],
            "data.code-quality",
            f"{share:.1%} of answers show {trait.replace('_', ' ')}; the minimum is "
            f"{getattr(minimums, trait):.0%}",
            hint="improve the answers that lack it, or lower the minimum with a reason",
        )
        for trait, share in shares.items()
        if share < getattr(minimums, trait)
    ]
