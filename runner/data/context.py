"""What the checks of one data file need to know, in a form worker processes can receive."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from runner.findings import Finding

Split = Literal["train", "eval"]

BASE_KEYS = ("id", "category", "messages")
CITATION_KEYS = ("answerable", "gold_citations")
ROLES = ("system", "user", "assistant")


class TextScanner(Protocol):
    """The policy engine, as the data checks use it."""

    def scan(
        self, text: str, *, path: str, line: int | None, target: str, where: str = ""
    ) -> list[Finding]: ...


@dataclass(frozen=True)
class SplitContext:
    path: str
    """The data file as findings name it (relative to the repository root)."""
    split: Split
    task: str
    categories: frozenset[str]
    allowed_keys: frozenset[str]
    answer_schema: dict[str, Any] | None
    max_seq_length: int
    tokenizer_file: str | None
    """A tokenizer.json of the base model from the local cache; None means estimate."""
    policies: TextScanner | None

    @property
    def required_keys(self) -> tuple[str, ...]:
        if self.task == "citation_grounded_chat" and self.split == "eval":
            return BASE_KEYS + CITATION_KEYS
        return BASE_KEYS
