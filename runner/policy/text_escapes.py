"""Text that an output hides in its own encoding: JSON string escapes.

A model that answers in JSON writes "Claude" as `\\u0043laude` or a trailer's line break as
`\\n` as freely as it writes them plain, and a truncated answer is no JSON document that a
parser would decode. So escapes are decoded wherever a string literal is found, whether or
not the text around it parses, and whatever field it is in.
"""

from __future__ import annotations

import re

# A double-quoted literal: up to its closing quote, or to the end of the line where a
# truncated output cut it off (JSON strings hold no raw line break).
_LITERAL = re.compile(r'"((?:[^"\\\n]|\\.)*)')
_ESCAPE = re.compile(r'\\(u[0-9a-fA-F]{4}|["\\/bfnrt])')
_SIMPLE = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}

SEPARATOR = "\n\n"
"""Between decoded literals: a blank line, which no pattern that allows a wrapped line
crosses, so two literals never make up one hit."""


def decoded_literals(text: str) -> str:
    """The string literals of `text` that hold an escape, decoded, joined by SEPARATOR;
    empty when there is none. One pass over the text, so linear in its length."""
    if "\\" not in text:
        return ""  # no escape, nothing hidden: the raw text shows it all
    decoded = [
        _decode(match.group(1)) for match in _LITERAL.finditer(text) if "\\" in match.group(1)
    ]
    return SEPARATOR.join(decoded)


def _decode(body: str) -> str:
    # Escapes JSON does not know (`\x41`, `\'`) are left as written; a truncated `\u00`
    # too. Surrogate pairs (`\ud83e\udd16`, an emoji) are joined; a lone half becomes U+FFFD.
    text = _ESCAPE.sub(_unescape, body)
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _unescape(match: re.Match[str]) -> str:
    code = match.group(1)
    return chr(int(code[1:], 16)) if code[0] == "u" else _SIMPLE[code]
