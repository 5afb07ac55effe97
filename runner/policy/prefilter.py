"""The cheap first look at a text: which patterns could match it at all, and where.

Most texts contain nothing a policy forbids, so the work is arranged to prove that cheaply.
A text is lowercased once, and a few probes look for the literal strings that patterns
cannot match without (see `literals`). Only patterns whose strings are all there run their
regex, and a pattern whose matches start with such a string is tried only where one does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from runner.policy.text_rules import CompiledPattern, CompiledRule

# Where each literal string occurs in the lowercased text.
Found = dict[str, list[int]]


@dataclass(frozen=True, slots=True, eq=False)
class Matcher:
    order: int
    rule: CompiledRule
    pattern: CompiledPattern

    @property
    def best(self) -> frozenset[str]:
        required = self.pattern.literals.required
        return required[0] if required else frozenset()

    def rest_present(self, lowered: str) -> bool:
        required = self.pattern.literals.required[1:]
        return all(any(s in lowered for s in strings) for strings in required)

    def matches(self, text: str, found: Found, aligned: bool) -> Iterator[re.Match[str]]:
        if not (aligned and self.pattern.literals.anchored):
            yield from self.pattern.regex.finditer(text)
            return
        # Every match starts where one of the best strings does: try only there, and in
        # order, skipping starts inside the last match, as finditer would.
        end = 0
        for start in sorted({p for s in self.best for p in found.get(s, ())}):
            match = self.pattern.regex.match(text, start) if start >= end else None
            if match:
                end = max(match.end(), start + 1)
                yield match


class Probe:
    """The literal strings of a target that begin with one character: one regex finds them
    all, overlapping ones included (with a literal first character, `re` scans about as
    fast as a substring search)."""

    def __init__(self, strings: Iterable[str]) -> None:
        ordered = sorted(set(strings), key=lambda s: (-len(s), s))
        self.first = ordered[0][0]
        rests = _trie([s[1:] for s in ordered])
        self.regex = re.compile(f"{re.escape(self.first)}(?=({rests}))")
        # The regex reports the longest string at a place; the shorter ones that it starts
        # with are there too.
        self.starting = {s: tuple(t for t in ordered if s.startswith(t)) for s in ordered}

    def collect(self, lowered: str, found: Found) -> None:
        for match in self.regex.finditer(lowered):
            for string in self.starting[self.first + match.group(1)]:
                found.setdefault(string, []).append(match.start())


def _trie(strings: list[str]) -> str:
    """An alternation that matches the longest of `strings` at a place, sharing prefixes
    ("sia|sisted" is "s(?:ia|sisted)"), so `re` tries fewer branches at each place."""
    branches: dict[str, list[str]] = {}
    for string in strings:
        branches.setdefault(string[:1], []).append(string[1:])
    # The empty string, where there is one, goes last: longer matches are tried first.
    parts = [re.escape(head) + _trie(tails) for head, tails in branches.items() if head]
    parts += [""] if "" in branches else []
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


class Needle:
    """A probe for a single string: str.find is quicker than a regex for that."""

    def __init__(self, string: str) -> None:
        self.first = string[0]
        self.string = string

    def collect(self, lowered: str, found: Found) -> None:
        at = lowered.find(self.string)
        while at >= 0:
            found.setdefault(self.string, []).append(at)
            at = lowered.find(self.string, at + 1)


class TargetPlan:
    """The rules of one target, arranged for the cheap first look."""

    def __init__(self, matchers: Sequence[Matcher]) -> None:
        self.always = tuple(m for m in matchers if not m.best)
        self.owners: dict[str, list[Matcher]] = {}
        for matcher in matchers:
            for string in matcher.best:
                self.owners.setdefault(string, []).append(matcher)
        by_first: dict[str, list[str]] = {}
        for string in self.owners:
            by_first.setdefault(string[0], []).append(string)
        self.probes = tuple(
            Probe(strings) if len(strings) > 1 else Needle(strings[0])
            for strings in by_first.values()
        )
        # A non-ASCII string (an emoji) cannot occur in ASCII text: no need to look.
        self.ascii_probes = tuple(p for p in self.probes if p.first.isascii())

    def candidates(self, lowered: str, is_ascii: bool) -> tuple[list[Matcher], Found]:
        found: Found = {}
        for probe in self.ascii_probes if is_ascii else self.probes:
            probe.collect(lowered, found)
        picked = {m for s in found for m in self.owners[s]}.union(self.always)
        ready = [m for m in picked if m.rest_present(lowered)]
        return sorted(ready, key=lambda m: m.order), found
