"""One streaming pass over a data file, split into byte ranges checked by worker processes.
Each range returns its findings, its counts and compact duplicate keys; the parent merges
them in file order."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from runner.data.context import SplitContext
from runner.data.dedup import NUM_PERM, prompt_keys
from runner.data.jsonl import ByteRange, decode_record, iter_lines, split_ranges, worker_count
from runner.data.record import check_record
from runner.findings import Finding

PARALLEL_FROM_BYTES = 4 << 20
"""Smaller files are checked in-process: starting workers costs more than it saves."""


@dataclass
class SplitStats:
    records: int = 0
    categories: Counter[str] = field(default_factory=Counter)
    tokens: int = 0
    max_tokens: int = 0
    code_answers: int = 0
    with_tests: int = 0
    with_type_hints: int = 0
    with_error_handling: int = 0

    def merge(self, other: SplitStats) -> None:
        self.records += other.records
        self.categories.update(other.categories)
        self.tokens += other.tokens
        self.max_tokens = max(self.max_tokens, other.max_tokens)
        self.code_answers += other.code_answers
        self.with_tests += other.with_tests
        self.with_type_hints += other.with_type_hints
        self.with_error_handling += other.with_error_handling


@dataclass
class PromptKeys:
    """Per record with a readable prompt: its line, exact digest and MinHash signature."""

    lines: list[int] = field(default_factory=list)
    exact: list[bytes] = field(default_factory=list)
    signatures: np.ndarray = field(default_factory=lambda: np.empty((0, NUM_PERM), np.uint64))


@dataclass
class SplitResult:
    findings: list[Finding]
    stats: SplitStats
    keys: PromptKeys


def check_range(path: Path, span: ByteRange, ctx: SplitContext) -> SplitResult:
    findings: list[Finding] = []
    stats = SplitStats()
    keys = PromptKeys()
    signatures: list[np.ndarray] = []
    for line, raw in iter_lines(path, span):
        stats.records += 1
        record, problem = decode_record(raw, line, ctx.path)
        if record is None:
            findings.append(problem)  # type: ignore[arg-type]
            continue
        found, outcome = check_record(record, line, ctx)
        findings += found
        if outcome.category is not None:
            stats.categories[outcome.category] += 1
        if outcome.tokens is not None:
            stats.tokens += outcome.tokens
            stats.max_tokens = max(stats.max_tokens, outcome.tokens)
        if outcome.traits is not None:
            stats.code_answers += 1
            stats.with_tests += outcome.traits.tests
            stats.with_type_hints += outcome.traits.type_hints
            stats.with_error_handling += outcome.traits.error_handling
        if outcome.user is not None:
            exact, signature = prompt_keys(outcome.user)
            keys.lines.append(line)
            keys.exact.append(exact)
            signatures.append(signature)
    if signatures:
        keys.signatures = np.vstack(signatures)
    return SplitResult(findings, stats, keys)


def check_file(path: Path, ctx: SplitContext) -> SplitResult:
    workers = worker_count() if path.stat().st_size >= PARALLEL_FROM_BYTES else 1
    spans = split_ranges(path, workers * 4 if workers > 1 else 1)
    if workers == 1:
        parts = [check_range(path, span, ctx) for span in spans]
    else:
        with ProcessPoolExecutor(workers, mp_context=get_context("fork")) as pool:
            parts = list(pool.map(check_range, [path] * len(spans), spans, [ctx] * len(spans)))
    return _merge(parts)


def _merge(parts: list[SplitResult]) -> SplitResult:
    merged = SplitResult([], SplitStats(), PromptKeys())
    signatures = []
    for part in parts:
        merged.findings += part.findings
        merged.stats.merge(part.stats)
        merged.keys.lines += part.keys.lines
        merged.keys.exact += part.keys.exact
        signatures.append(part.keys.signatures)
    merged.keys.signatures = np.vstack(signatures)
    return merged
