"""Markdown written by the PR's own run, made safe to post under the bot's name.

The PR checks run the PR's code, so what they leave in their artifacts is the PR's word.
Posted as it is, it could ping a team (`@org/team`), make every reader's browser fetch an
image from any host, or put a link to anywhere under the bot's name. Parsing markdown to
find those would be a second renderer that disagrees with GitHub's somewhere (HTML blocks,
entities, escapes). Instead, every place where such syntax could start gets an invisible
ZERO WIDTH SPACE that breaks it, inside code or not: a reader sees the same characters,
GitHub sees no mention, no tag and no link. Links and images to the hosts of the trusted job
(GitHub, the Hub) are kept, and so are the tables, `<details>` blocks and Mermaid charts of
our own reports: what the runner renders passes through unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Mapping
from urllib.parse import urlsplit

ZWSP = "\u200b"

DEFAULT_HOSTS = ("github.com", "huggingface.co", "hf.co")
# What the PR checks read as data. A change anywhere else (the runner, policies, workflows,
# the Makefile and pyproject.toml that install it) changes what ran and what it concluded.
DATA_ROOTS = ("adapters/", "datasets/")

# The only HTML our reports write; none of them can carry an attribute (no src, no href).
_TAGS = ("details", "/details", "summary", "/summary", "code", "/code", "br")
# Entities that decode to nothing GitHub acts on after rendering (`@`, `:`, `/`, `.`).
_SAFE_ENTITIES = frozenset({"amp", "lt", "gt", "quot"})

_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ESCAPE = re.compile(r"\\([\\:/.@])")
# Where syntax starts. Each pass looks at a bounded stretch after its match, never at the rest
# of the text, so a hostile body costs linear time.
_ENTITY = re.compile(r"&(?=[#A-Za-z])")
_LINK = re.compile(r"\](?=\()")
_DEFINITION = re.compile(r"\](?=:)")
_TAG = re.compile("<(?!(?:" + "|".join(_TAGS) + ")>)(?=[A-Za-z/!?])")
_SCHEME = re.compile(r":(?=//)")
_WWW = re.compile(r"(?i)www(?=\.)")
_MENTION = re.compile(r"@(?=[A-Za-z0-9])")

_SAFE_ENTITY = re.compile("(?:" + "|".join(_SAFE_ENTITIES) + ");")
_NOT_URL = r"\s<>\"'`()\[\]\\"
_HTTP = re.compile(r"(?i)(?<![A-Za-z0-9+.\-])https?\Z")
_AUTHORITY = re.compile(f"[^{_NOT_URL}/?#]{{0,300}}+(?![^{_NOT_URL}/?#])")
_TARGET = re.compile(
    rf"(?i)[ \t]*+\n?[ \t]*+https?://(?P<authority>[^{_NOT_URL}/?#@]*+)[^{_NOT_URL}@]*+(?=[\s)]|\Z)"
)
_HOST = re.compile(r"(?i)(?P<host>[a-z0-9.\-]+)(?::[0-9]{1,5})?")


def trusted_hosts(env: Mapping[str, str]) -> frozenset[str]:
    """GitHub, the Hub, and the hosts this job's own settings name (an Enterprise server, a
    Hub endpoint): links and images there stay links and images."""
    hosts = set(DEFAULT_HOSTS)
    for name in ("GITHUB_SERVER_URL", "HF_ENDPOINT"):
        host = urlsplit(env.get(name) or "").hostname
        if host:
            hosts.add(host.lower())
    return frozenset(hosts)


def own_code_areas(paths: Iterable[str]) -> list[str]:
    """The top-level folders (`runner/`) and files (`Makefile`) outside DATA_ROOTS that
    `paths` change, spelled in plain characters (a file name is the PR's to choose)."""
    areas = {
        re.sub(r"[^A-Za-z0-9._-]", "_", path.split("/", 1)[0]) + ("/" if "/" in path else "")
        for path in paths
        if not path.startswith(DATA_ROOTS)
    }
    return sorted(areas)


def neutralized(markdown: str, hosts: Collection[str]) -> str:
    """`markdown` as a reader sees it, with no mention, no raw HTML beyond our few attribute-
    free tags, and no link or image to a host outside `hosts`. Idempotent."""
    text = _ESCAPE.sub(_plain, _CONTROLS.sub("", markdown))
    text = _broken(_ENTITY, text, lambda t, end: _SAFE_ENTITY.match(t, end) is not None)
    text = _broken(_LINK, text, lambda t, end: _trusted_target(t, end + 1, hosts))
    text = _broken(_DEFINITION, text)
    text = _broken(_TAG, text)
    text = _broken(_SCHEME, text, lambda t, end: _trusted_bare_url(t, end - 1, hosts))
    text = _broken(_WWW, text, lambda t, end: _trusted_authority(t, end - 3, hosts))
    return _broken(_MENTION, text)


def _plain(match: re.Match[str]) -> str:
    """`\\@` renders as `@` (and `\\:` as `:`), which GitHub then reads as a mention or a
    link: such characters are written plainly, so the passes see them."""
    return match[0] if match[1] == "\\" else match[1]


def _broken(
    pattern: re.Pattern[str], text: str, keep: Callable[[str, int], bool] = lambda t, end: False
) -> str:
    """`text` with a ZWSP after each match of `pattern`, unless `keep(text, match end)`."""
    parts: list[str] = []
    last = 0
    for match in pattern.finditer(text):
        if not keep(text, match.end()):
            parts += [text[last : match.end()], ZWSP]
            last = match.end()
    return "".join(parts) + text[last:]


def _trusted_target(text: str, start: int, hosts: Collection[str]) -> bool:
    """Whether the link target at `start` (after `](`) is a plain http(s) URL to a trusted
    host: not the `<...>` form, no user part (`https://github.com@evil.example`)."""
    match = _TARGET.match(text, start)
    return match is not None and _trusted_host_port(match["authority"], hosts)


def _trusted_bare_url(text: str, colon: int, hosts: Collection[str]) -> bool:
    """Whether the `://` at `colon` is part of an http(s) URL to a trusted host."""
    is_http = _HTTP.search(text, max(0, colon - 6), colon) is not None
    return is_http and _trusted_authority(text, colon + 3, hosts)


def _trusted_authority(text: str, start: int, hosts: Collection[str]) -> bool:
    match = _AUTHORITY.match(text, start)
    return match is not None and _trusted_host_port(match[0], hosts)


def _trusted_host_port(authority: str, hosts: Collection[str]) -> bool:
    match = _HOST.fullmatch(authority)
    if match is None:
        return False
    host = match["host"].lower().rstrip(".")
    return any(host == h or host.endswith(f".{h}") for h in hosts)
