"""Make text that is dressed up to dodge a pattern look like what the pattern expects.

People (and models) defeat naive filters with Unicode: "Generated" in fullwidth letters, a
zero-width space inside "Claude", a Cyrillic capital Es or a Lisu letter for the "C".
Patterns are written in plain Latin text, so every text is brought to that form before
matching. Which letters look like which is Unicode's confusables data (UTS #39), as the
confusable-homoglyphs package ships it: every script, kept up to date by Unicode rather
than by hand. All of this
only matters for non-ASCII text, which is why ASCII text is returned untouched, at no cost.
"""

# The punctuation table below is made of confusable characters on purpose.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
import string
import sys
import unicodedata
from collections.abc import Iterator
from functools import cache

# Typographic punctuation that stands in for what patterns spell in ASCII ("I’m",
# "Co‐Authored‐By"). Curly quotes and dashes are in much English text, so these are
# replaced with str.replace, which is quick, before the general (slower) folding.
_PUNCTUATION = {"‘": "'", "’": "'", "ʼ": "'", "′": "'", "“": '"', "”": '"'}
_PUNCTUATION.update(dict.fromkeys("‐‒–−", "-"))

_ASCII_LETTERS = frozenset(string.ascii_letters)

# Invisible characters that are not Unicode format characters (category Cf) but hide
# inside words just as well: variation selectors and the combining grapheme joiner.
_INVISIBLE_EXTRA = "".join(map(chr, range(0xFE00, 0xFE10))) + "\u034f"


def normalize_for_matching(text: str) -> str:
    """NFKC, format characters (Cf) and variation selectors removed, look-alike letters
    folded to Latin. Line breaks are kept, so line numbers in the result are those of
    `text`."""
    if text.isascii():
        return text
    text = unicodedata.normalize("NFKC", text)
    for char, ascii in _PUNCTUATION.items():
        if char in text:
            text = text.replace(char, ascii)
    if any(finder.search(text) for finder in _finders()):
        text = text.translate(_folding_table())
    return text


@cache
def _folding_table() -> dict[int, str]:
    table = dict.fromkeys(map(ord, _format_characters() + _INVISIBLE_EXTRA), "")
    table.update((ord(char), latin) for char, latin in _lookalike_letters())
    return table


def _lookalike_letters() -> Iterator[tuple[str, str]]:
    """(character, the ASCII letter it looks like) for every single character that Unicode's
    confusables data maps to one. NFKC runs first, so fullwidth and mathematical letters
    never get here; the rest (Cyrillic, Greek, Lisu, Cherokee, ...) do."""
    # Imported here: it loads its data (about 1 MB of JSON) when imported, and only
    # non-ASCII text needs it.
    from confusable_homoglyphs.confusables import confusables_data

    for char, entries in confusables_data.items():
        if len(char) != 1 or char.isascii():
            continue
        latin = next((e["c"] for e in entries if e["c"] in _ASCII_LETTERS), None)
        if latin is not None:
            # Unicode's prototype for I-shaped letters is "l", so a capital "І" would spell
            # "Al" for "AI"; a capital letter stands for the capital I.
            yield char, "I" if latin == "l" and char.isupper() else latin


@cache
def _finders() -> tuple[re.Pattern[str], ...]:
    # str.translate costs about 50 ns a character, so it runs only on a text that needs it,
    # which a character class finds much faster. `re` tests a class of BMP characters with
    # a bitmap, but astral ones item by item (the astral format characters as a class are
    # six times slower than one range): so any astral character, an emoji say, is reason
    # enough to translate.
    bmp = sorted(c for c in map(chr, _folding_table()) if c <= "\uffff")
    astral = "[\U00010000-\U0010ffff]"
    return re.compile("[" + "".join(map(re.escape, bmp)) + "]"), re.compile(astral)


def _format_characters() -> str:
    # Computed from the running Python's Unicode database rather than listed, so new format
    # characters are covered as Python updates; cached, so it runs once per process.
    return "".join(
        chr(code) for code in range(sys.maxunicode + 1) if unicodedata.category(chr(code)) == "Cf"
    )
