"""The literal text a regular expression cannot match without: the key to scanning fast.

Running a few dozen regexes over every field of a large dataset is slow, and Python's `re`
is no faster with them joined into one alternation. A substring search is ten to a hundred
times cheaper. So each pattern is reduced to a few sets of lowercase strings such that every
match contains at least one string of each set; a text that lacks them cannot match and the
regex never runs. Deriving the sets from the pattern, rather than asking policy authors to
list keywords, means a new pattern can never be skipped by a keyword list someone forgot.

This reads the parse tree of Python's own regex parser (`re._parser`, stable since 3.11):
the one way to see a pattern exactly as `re` will run it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from re import _constants as op  # type: ignore[attr-defined]
from re import _parser  # type: ignore[attr-defined]
from typing import Any

Alternatives = frozenset[str]

_MAX_ALTERNATIVES = 32  # beyond this a set is too costly to test on every text
_MAX_CLASS = 8  # a character class up to this size becomes alternatives: gh[pousr]_
_MAX_FIXED_REPEAT = 4  # x{2,3} of a literal is spelled out
_MIN_BYTES = 3  # shorter strings ("a", "by") are in almost every text: no use as a filter
_REPEATS = (op.MAX_REPEAT, op.MIN_REPEAT, op.POSSESSIVE_REPEAT)
_ZERO_WIDTH = (op.AT, op.ASSERT, op.ASSERT_NOT)
_NOTHING: Alternatives = frozenset({""})


@dataclass(frozen=True)
class Literals:
    required: tuple[Alternatives, ...]
    """Every match contains a string of each set. Best filter first; empty when the
    pattern has no useful literal text."""
    anchored: bool
    """Every match starts with a string of the first set, so the regex need only be tried
    where one occurs."""


@dataclass(frozen=True)
class _Info:
    """What a piece of a pattern needs. `exact`: the piece always matches one of these
    strings, so it glues to its neighbours into longer ones; `required`: sets, each of
    which has a string that every match contains; `head` and `tail`: every match starts
    (ends) with one of these, so a piece like `[ \\t]+` still glues at its edges."""

    exact: Alternatives | None
    required: tuple[Alternatives, ...] = ()
    head: Alternatives = _NOTHING
    tail: Alternatives = _NOTHING


_OPAQUE = _Info(None)


def required_literals(pattern: str, flags: int) -> Literals:
    info = _sequence(_parser.parse(pattern, flags))
    sets = {_clean(s.strip() for s in strings) for strings in info.required}
    ranked = sorted((s for s in sets if _strength(s) >= _MIN_BYTES), key=_score, reverse=True)
    prefix = _clean((s.rstrip() for s in info.head), at_start=True)
    # Anchoring saves running the regex over the whole text, but a rarer string elsewhere
    # in the pattern ("language model" rather than "as a") keeps more texts out entirely.
    usable = _strength(prefix) >= _MIN_BYTES and not any(s[:1].isspace() for s in prefix)
    if usable and (not ranked or _score(prefix)[:2] >= _score(ranked[0])[:2]):
        return Literals((prefix, *(s for s in ranked if s != prefix)), anchored=True)
    return Literals(tuple(ranked), anchored=False)


def _clean(strings: Iterable[str], at_start: bool = False) -> Alternatives:
    # Whitespace at the ends makes a poor filter (" by " is really "by"), and "ai language
    # model" contains "language model": where it occurs so does the shorter one, which is
    # enough to look for. For a prefix the shorter one must also start at the same place.
    unique = set(strings)

    def covered(s: str, t: str) -> bool:
        return t != s and (s.startswith(t) if at_start else t in s)

    return frozenset(s for s in unique if not any(covered(s, t) for t in unique))


def _strength(alternatives: Alternatives) -> int:
    return min((len(s.encode()) for s in alternatives), default=0)


def _score(alternatives: Alternatives) -> tuple[bool, int, int, tuple[str, ...]]:
    # Non-ASCII strings (an emoji) are the rarest in the English text scanned, and rule a
    # pattern out of every ASCII text at once; then longer strings are rarer, and fewer are
    # cheaper to test. The last key only makes the order deterministic.
    foreign = not any(s.isascii() for s in alternatives)
    return foreign, _strength(alternatives), -len(alternatives), tuple(sorted(alternatives))


def _exact(strings: Iterable[str]) -> _Info:
    exact = frozenset(strings)
    return _Info(exact, () if "" in exact else (exact,), exact, exact)


def _glue(left: Alternatives, right: Alternatives) -> Alternatives | None:
    if len(left) * len(right) > _MAX_ALTERNATIVES:
        return None
    return frozenset(a + b for a in left for b in right)


def _sequence(items: Iterable[tuple[Any, Any]]) -> _Info:
    """A concatenation: adjacent exact pieces glue into longer strings."""
    required: list[Alternatives] = []
    run = _NOTHING
    head: Alternatives | None = None  # how every match starts, once a piece is not exact
    for code, value in items:
        info = _node(code, value)
        glued = _glue(run, info.exact) if info.exact is not None else None
        if glued is not None:
            run = glued
            continue
        start = _glue(run, info.head) or run
        head = start if head is None else head
        required.append(start)
        required.extend(info.required)
        run = info.exact if info.exact is not None else info.tail
    if head is None:
        return _exact(run)
    required.append(run)
    return _Info(None, tuple(s for s in required if "" not in s), head, run)


def _node(code: Any, value: Any) -> _Info:
    if code is op.LITERAL:
        return _exact([chr(value).lower()])
    if code is op.IN:
        chars = _class_chars(value)
        return _exact(chars) if chars else _OPAQUE
    if code in _ZERO_WIDTH:
        return _exact([""])  # consumes nothing, so the text on both sides is adjacent
    if code is op.SUBPATTERN:
        return _sequence(value[-1])
    if code is op.ATOMIC_GROUP:
        return _sequence(value)
    if code is op.BRANCH:
        return _branch([_sequence(branch) for branch in value[1]])
    if code in _REPEATS:
        return _repeat(*value)
    return _OPAQUE


def _class_chars(items: list[tuple[Any, Any]]) -> set[str] | None:
    chars: set[str] = set()
    for code, value in items:
        if code is op.LITERAL:
            chars.add(chr(value).lower())
        elif code is op.RANGE and value[1] - value[0] < _MAX_CLASS:
            chars.update(chr(c).lower() for c in range(value[0], value[1] + 1))
        else:
            return None
    return chars if len(chars) <= _MAX_CLASS else None


def _branch(branches: list[_Info]) -> _Info:
    if all(b.exact is not None for b in branches):
        union = frozenset().union(*(b.exact for b in branches if b.exact is not None))
        if len(union) <= _MAX_ALTERNATIVES:
            return _exact(union)
    head = _union(b.head for b in branches)
    tail = _union(b.tail for b in branches)
    # Any one branch may match, so only "one of each branch's best strings" is required.
    best = [max(b.required, key=_score) for b in branches if b.required]
    if len(best) < len(branches):
        return _Info(None, (), head, tail)
    return _Info(None, (frozenset().union(*best),), head, tail)


def _union(sets: Iterable[Alternatives]) -> Alternatives:
    union = frozenset().union(*sets)
    return union if len(union) <= _MAX_ALTERNATIVES else _NOTHING


def _repeat(low: int, high: int, item: Any) -> _Info:
    inner = _sequence(item)
    if inner.exact is not None and high <= _MAX_FIXED_REPEAT:
        spelled = _spell(inner.exact, low, high)
        if spelled is not None:
            return _exact(spelled)
    if low == 0:
        return _OPAQUE
    return _Info(None, inner.required, inner.head, inner.tail)


def _spell(unit: Alternatives, low: int, high: int) -> Alternatives | None:
    """`unit` repeated `low` to `high` times; None when that makes too many strings."""
    spelled: set[str] = set()
    current: Alternatives | None = _NOTHING
    for count in range(high + 1):
        if current is None:
            return None
        if count >= low:
            spelled |= current
        current = _glue(current, unit)
    return frozenset(spelled) if len(spelled) <= _MAX_ALTERNATIVES else None
