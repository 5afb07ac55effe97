"""Make text that is dressed up to dodge a pattern look like what the pattern expects.

People (and models) defeat naive filters with Unicode: "Generated" in fullwidth letters, a
zero-width space inside "Claude", a Cyrillic capital Es for the "C". Patterns are written
in plain Latin text, so every text is brought to that form before matching. All of this
only matters for non-ASCII text, which is why ASCII text is returned untouched, at no cost.
"""

# The look-alike table below is made of confusable characters on purpose.
# ruff: noqa: RUF001, RUF003

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

# Letters from other scripts that look like a Latin letter. NFKC runs first and already
# folds fullwidth and mathematical letters, so only what survives NFKC is listed. Not
# Unicode's whole confusables list: the letters that spell what the policies look for.
_LOOKALIKES = {
    "a": "аαɑ",
    "c": "с",
    "d": "ԁ",
    "e": "еҽ",
    "g": "ɡ",
    "h": "һ",
    "i": "іıιɩ",
    "j": "ј",
    "k": "κ",
    "l": "ӏ",
    "o": "оοօ",
    "p": "рρ",
    "q": "ԛ",
    "s": "ѕ",
    "u": "υս",
    "v": "νѵ",
    "w": "ԝ",
    "x": "хχ",
    "y": "уү",
    "A": "АΑ",
    "B": "ВΒ",
    "C": "С",
    "E": "ЕΕ",
    "H": "НΗ",
    "I": "ІΙӀ",
    "J": "Ј",
    "K": "КΚ",
    "M": "МΜ",
    "N": "Ν",
    "O": "ОΟ",
    "P": "РΡ",
    "S": "Ѕ",
    "T": "ТΤ",
    "X": "ХΧ",
    "Y": "ҮΥ",
    "Z": "Ζ",
}

# Typographic punctuation that stands in for what patterns spell in ASCII ("I’m",
# "Co‐Authored‐By"). Curly quotes and dashes are in much English text, so these are
# replaced with str.replace, which is quick, before the general (slower) folding.
_PUNCTUATION = {"‘": "'", "’": "'", "ʼ": "'", "′": "'", "“": '"', "”": '"'}
_PUNCTUATION.update(dict.fromkeys("‐‒–−", "-"))

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
    for latin, lookalikes in _LOOKALIKES.items():
        table.update(dict.fromkeys(map(ord, lookalikes), latin))
    return table


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
