"""A compiled text rule and how its hits are shown: secrets redacted, random-looking values
told apart from ordinary ones."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from runner.findings import Severity, quote
from runner.policy.literals import Literals
from runner.policy.text_format import EntropyCheck

_SHOWN_HEAD, _SHOWN_TAIL = 4, 2


@dataclass(frozen=True, slots=True)
class CompiledPattern:
    regex: re.Pattern[str]
    literals: Literals


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    severity: Severity
    label: str
    hint: str
    targets: frozenset[str]
    patterns: tuple[CompiledPattern, ...]
    allow: tuple[re.Pattern[str], ...]
    case_sensitive: bool
    redact: bool
    entropy: EntropyCheck | None

    def shown(self, match: re.Match[str]) -> str | None:
        """The matched text as a finding shows it, or None when the match is no hit."""
        value = _value(match)
        if self.entropy and not _random_enough(value, self.entropy):
            return None
        if any(allowed.search(value) for allowed in self.allow):
            return None
        if self.redact:
            return redact(value)
        text = " ".join(match.group().split())
        # Matching ignores case, so the finding names the phrase in one spelling.
        return text if self.case_sensitive else text.lower()

    def message(self, shown: str, where: str) -> str:
        return f"{self.label} {quote(shown)}" + (f" in {where}" if where else "")


def redact(value: str) -> str:
    """Enough of a secret to find it again, never enough to use it."""
    head = min(_SHOWN_HEAD, len(value) // 4)
    tail = min(_SHOWN_TAIL, len(value) // 8)
    return value[:head] + "…" + (value[-tail:] if tail else "")


def bits_per_char(value: str) -> float:
    """Shannon entropy of the characters of `value`."""
    counts = Counter(value).values()
    return -sum(n / len(value) * math.log2(n / len(value)) for n in counts)


def _value(match: re.Match[str]) -> str:
    if "value" in match.re.groupindex and match.group("value") is not None:
        return match.group("value")
    return match.group()


def _random_enough(value: str, entropy: EntropyCheck) -> bool:
    return len(value) >= entropy.min_length and bits_per_char(value) >= entropy.min_bits_per_char
