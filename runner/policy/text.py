"""The text policy engine: one scan for dataset fields, spec files, rendered Space files and
model outputs, fast enough to run on every message of a large dataset (see `prefilter`)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from runner.findings import Finding
from runner.policy.normalize import normalize_for_matching
from runner.policy.prefilter import Matcher, TargetPlan
from runner.policy.text_format import TARGETS
from runner.policy.text_rules import CompiledRule


@dataclass(frozen=True, slots=True)
class _Place:
    path: str
    line: int | None
    where: str
    multiline: bool

    def finding(self, rule: CompiledRule, shown: str, text: str, offset: int) -> Finding:
        line = self.line
        if line is not None and self.multiline:
            line += text.count("\n", 0, offset)
        return Finding(
            rule.id, rule.severity, self.path, line, rule.message(shown, self.where), rule.hint
        )


class TextPolicies:
    """Compiled text rules. Build with `load_text_policies`; immutable, and picklable for
    worker processes."""

    def __init__(self, rules: Iterable[CompiledRule] = ()) -> None:
        self.rules = tuple(rules)
        patterns = [(rule, pattern) for rule in self.rules for pattern in rule.patterns]
        matchers = [Matcher(order, *pair) for order, pair in enumerate(patterns)]
        self._plans = {
            target: TargetPlan([m for m in matchers if target in m.rule.targets])
            for target in TARGETS
        }

    def __reduce__(self) -> tuple[type[TextPolicies], tuple[tuple[CompiledRule, ...]]]:
        # Worker processes get the rules and rebuild the plans, not a copy of every probe.
        return TextPolicies, (self.rules,)

    def scan(
        self,
        text: str,
        *,
        path: str,
        target: str,
        line: int | None = None,
        where: str = "",
        multiline: bool = False,
    ) -> list[Finding]:
        """Findings for `text`, in the order they occur. `line` is where `text` starts in
        `path`; with `multiline`, each finding is on the line of its hit within `text`."""
        plan = self._plans.get(target)
        if plan is None:
            raise ValueError(f"unknown target {target!r}; expected one of {', '.join(TARGETS)}")
        is_ascii = text.isascii()
        matchable = text if is_ascii else normalize_for_matching(text)
        lowered = matchable.lower()
        matchers, found = plan.candidates(lowered, is_ascii)
        if not matchers:
            return []
        # Offsets in the lowercased text are offsets in the text unless lowercasing
        # lengthened a character (it never shortens one).
        aligned = len(lowered) == len(matchable)
        hits = _hits((m.rule, m.matches(matchable, found, aligned)) for m in matchers)
        place = _Place(path, line, where, multiline)
        return [place.finding(rule, shown, matchable, start) for start, rule, shown in hits]


def _hits(
    matches: Iterable[tuple[CompiledRule, Iterator[re.Match[str]]]],
) -> list[tuple[int, CompiledRule, str]]:
    """(offset, rule, what to show) for each hit, in the order of the text."""
    # Where rules overlap ("🤖 Generated with Claude Code" is an emoji signature and a tool
    # signature; `HF_TOKEN=hf_...` a token and a secret assignment), the rule listed first
    # reports it, once.
    taken: list[tuple[int, int]] = []
    hits: list[tuple[int, CompiledRule, str]] = []
    for rule, found in matches:
        for match in found:
            start, end = match.span()
            shown = rule.shown(match) if end > start else None
            if shown is None or any(start < e and s < end for s, e in taken):
                continue
            taken.append((start, end))
            hits.append((start, rule, shown))
    return sorted(hits, key=lambda hit: hit[0])
