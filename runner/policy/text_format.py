"""The format of a text policy file (`kind: text`), as strict models: a typo in a policy is
reported with its file, line and column like any spec error."""

from __future__ import annotations

from typing import Annotated, Literal, get_args

from pydantic import Field

# _matches is the spec models' own "value must look like this" check; reused so policy
# errors read like spec errors.
from runner.specs.base import PositiveInt, SpecModel, _matches

Target = Literal["data", "spec", "space", "output"]
TARGETS: tuple[Target, ...] = get_args(Target)

SCHEMA_HINT = "runner/policy/text_format.py"


RuleId = Annotated[
    str,
    _matches(
        r"[a-z0-9]+(?:[.-][a-z0-9]+)*",
        "rule_id",
        "a rule id such as `secrets.hf-token` (lowercase letters, digits, '.' and '-')",
    ),
]
TermName = Annotated[
    str,
    _matches(
        r"[a-z_][a-z0-9_]*", "term_name", "a term name such as `ai_tool` (lowercase, digits, '_')"
    ),
]


class EntropyCheck(SpecModel):
    """Keep a match only when its value looks random, as generated secrets do."""

    min_length: PositiveInt = 20
    """Shorter values are never reported."""
    min_bits_per_char: float = Field(ge=0.0, le=8.0)
    """Shannon entropy threshold: about 3.3 for English words, 4 and more for random
    letters and digits."""


class TextRule(SpecModel):
    id: RuleId
    """Reported as the finding's rule id."""
    severity: Literal["error", "warning"]
    label: str = Field(min_length=1)
    """What a finding calls the matched text: `AI attribution "generated with claude"`."""
    description: str = Field(min_length=1)
    """Why the rule exists, for the people who read the policy."""
    hint: str = ""
    """How to fix a finding; shown under it."""
    targets: list[Target] = Field(min_length=1)
    """Where the rule applies: data (dataset records), spec (spec files), space (rendered
    Space files), output (model outputs)."""
    patterns: list[str] = Field(min_length=1)
    """Python regular expressions, searched in normalised text with MULTILINE. `{term}`
    inserts a term of this file; `(?P<value>...)` marks the part that is checked for
    entropy and shown (otherwise the whole match)."""
    allow: list[str] = Field(default_factory=list)
    """Regexes for values that look like hits but are not: a hit whose value (see
    `patterns`) contains a match of one is dropped. For placeholders and documented
    examples."""
    case_sensitive: bool = False
    redact: bool = False
    """Show only the first 4 and last 2 characters of the value: for secrets."""
    entropy: EntropyCheck | None = None


class TextPolicyFile(SpecModel):
    kind: Literal["text"]
    """Marks a text policy file; other files in policies/ belong to other checks."""
    description: str = ""
    terms: dict[TermName, list[str]] = Field(default_factory=dict)
    """Named lists of regex alternatives shared by patterns: `{ai_tool}` in a pattern
    stands for `(?:claude|chat\\s*gpt|...)`. Adding a tool name here covers every rule."""
    rules: list[TextRule] = Field(min_length=1)
