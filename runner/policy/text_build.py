"""A policy file's rules, compiled: terms expanded, regexes built, the literal text each
pattern needs worked out. Everything that can be wrong in a pattern is found here, once,
with its place in the policy file."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from runner.findings import Finding, Severity, quote
from runner.policy.literals import required_literals
from runner.policy.text_format import TextPolicyFile, TextRule
from runner.policy.text_rules import CompiledPattern, CompiledRule
from runner.specs.translate import dotted
from runner.specs.yamlio import YamlDoc

_TERM = re.compile(r"(?<!\\)\{([A-Za-z_]\w*)\}")  # {ai_tool}; never a quantifier like {2,3}


def compile_rules(policy: TextPolicyFile, doc: YamlDoc) -> tuple[list[CompiledRule], list[Finding]]:
    """The rules of one validated policy file. A rule with a broken pattern is left out and
    reported; the others still work."""
    terms, problems = _compile_terms(policy, doc)
    rules: list[CompiledRule] = []
    for index, rule in enumerate(policy.rules):
        compiled, found = _compile_rule(rule, terms, _At(doc, ["rules", index]))
        problems += found
        if compiled:
            rules.append(compiled)
    return rules, problems


@dataclass(frozen=True)
class _At:
    """Where in the policy file something is, for its findings."""

    doc: YamlDoc
    loc: list[str | int]

    def child(self, *parts: str | int) -> _At:
        return _At(self.doc, [*self.loc, *parts])

    def finding(self, rule_id: str, message: str, hint: str = "", **kwargs: Any) -> Finding:
        message = f"{dotted(self.loc)}: {message}"
        return self.doc.finding(self.loc, rule_id, message, hint=hint, **kwargs)


def _compile_terms(
    policy: TextPolicyFile, doc: YamlDoc
) -> tuple[dict[str, str | None], list[Finding]]:
    """Each term as one group of alternatives; None for a term with a broken alternative
    (reported here, so the patterns that use it need not report it again)."""
    terms: dict[str, str | None] = {}
    problems: list[Finding] = []
    for name, alternatives in policy.terms.items():
        found = [
            _At(doc, ["terms", name, number]).finding("spec.regex", error)
            for number, alternative in enumerate(alternatives)
            if (error := _regex_error(alternative, 0))
        ]
        problems += found
        terms[name] = None if found else "(?:" + "|".join(alternatives) + ")"
    return terms, problems


def _compile_rule(
    rule: TextRule, terms: dict[str, str | None], at: _At
) -> tuple[CompiledRule | None, list[Finding]]:
    flags = re.MULTILINE | (0 if rule.case_sensitive else re.IGNORECASE)
    problems: list[Finding] = []
    patterns: list[CompiledPattern] = []
    for number, pattern in enumerate(rule.patterns):
        compiled, found = _compile_pattern(pattern, flags, terms, at.child("patterns", number))
        problems += found
        patterns += [compiled] if compiled else []
    allow: list[re.Pattern[str]] = []
    for number, pattern in enumerate(rule.allow):
        regex, found = _regex(pattern, flags, terms, at.child("allow", number))
        problems += found
        allow += [regex] if regex else []
    if len(patterns) < len(rule.patterns) or len(allow) < len(rule.allow):
        return None, problems
    return _rule(rule, patterns, allow), problems


def _rule(
    rule: TextRule, patterns: list[CompiledPattern], allow: list[re.Pattern[str]]
) -> CompiledRule:
    return CompiledRule(
        id=rule.id,
        severity=Severity(rule.severity),
        label=rule.label,
        hint=rule.hint,
        targets=frozenset(rule.targets),
        patterns=tuple(patterns),
        allow=tuple(allow),
        case_sensitive=rule.case_sensitive,
        redact=rule.redact,
        entropy=rule.entropy,
    )


def _compile_pattern(
    pattern: str, flags: int, terms: dict[str, str | None], at: _At
) -> tuple[CompiledPattern | None, list[Finding]]:
    regex, problems = _regex(pattern, flags, terms, at)
    if regex is None:
        return None, problems
    if regex.search(""):
        return None, [at.finding("spec.regex", "matches empty text, so it would report every text")]
    literals = required_literals(regex.pattern, flags)
    return CompiledPattern(regex, literals), [] if literals.required else [_slow(at)]


def _regex(
    pattern: str, flags: int, terms: dict[str, str | None], at: _At
) -> tuple[re.Pattern[str] | None, list[Finding]]:
    """`pattern` with its terms filled in, compiled; or the findings that say why not."""
    used = set(_TERM.findall(pattern))
    unknown = sorted(used - terms.keys())
    if unknown:
        known = ", ".join(terms) or "none"
        message = f"unknown term {{{unknown[0]}}}; terms in this file: {known}"
        hint = "define it under `terms:`, or write \\{ for a literal brace"
        return None, [at.finding("spec.unknown-term", message, hint)]
    if any(terms[name] is None for name in used):
        return None, []
    expanded = _TERM.sub(lambda m: terms[m.group(1)] or "", pattern)
    error = _regex_error(expanded, flags)
    if error:
        return None, [at.finding("spec.regex", error, quote(pattern))]
    return re.compile(expanded, flags), []


def _regex_error(pattern: str, flags: int) -> str | None:
    try:
        re.compile(pattern, flags)
    except re.error as error:
        return f"not a valid regular expression: {error}"
    return None


def _slow(at: _At) -> Finding:
    return at.finding(
        "spec.slow-pattern",
        "no literal text of 3 or more characters that every match contains, "
        "so this pattern runs on every text",
        "include a fixed word or prefix, e.g. `hf_` or `generated`",
        severity=Severity.WARNING,
    )
