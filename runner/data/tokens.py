"""Token counts: the base model's own tokenizer when the local cache has it, otherwise an
estimate that says it is one."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

CHARS_PER_TOKEN = 3.5
"""Conservative for English and code on Llama-class tokenizers: estimates err long."""
MESSAGE_OVERHEAD = 4
"""Role header and end-of-turn tokens each message adds in a chat template."""


def cached_tokenizer_file(repo_id: str, revision: str) -> str | None:
    """tokenizer.json of `repo_id@revision` if the Hugging Face cache already holds it."""
    try:
        import tokenizers  # noqa: F401  (only installed with the `train` extra)
    except ImportError:
        return None
    from runner.hub.client import cached_file

    return cached_file(repo_id, "tokenizer.json", revision)


@cache
def _load(tokenizer_file: str) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(tokenizer_file)


def count_tokens(contents: list[str], tokenizer_file: str | None) -> int:
    overhead = MESSAGE_OVERHEAD * len(contents)
    if tokenizer_file is None:
        return overhead + sum(math.ceil(len(text) / CHARS_PER_TOKEN) for text in contents)
    encodings = _load(tokenizer_file).encode_batch(contents, add_special_tokens=False)
    return overhead + sum(len(e.ids) for e in encodings)
