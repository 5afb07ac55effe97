"""Tokens never reach logs, messages or files: every string the hub layer lets out passes
through `redact`."""

from __future__ import annotations

import logging
import re

_TOKEN = re.compile(r"\b(hf_|api_org_)[A-Za-z0-9]{8,}")
_BEARER = re.compile(r"(?i)(bearer\s+)\S+")
_known: set[str] = set()


def register_secret(value: str | None) -> None:
    """Remember a secret so that it is redacted even when it does not look like a token."""
    if value and len(value) >= 6:
        _known.add(value)


def redact(text: str) -> str:
    for secret in _known:
        text = text.replace(secret, "***")
    text = _TOKEN.sub(lambda m: f"{m.group(1)}***", text)
    return _BEARER.sub(r"\1***", text)


class RedactingFilter(logging.Filter):
    """Redacts the formatted message of every record passing through a handler or logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = ()
        return True


def install_log_redaction(*logger_names: str) -> None:
    for name in logger_names or ("runner", "huggingface_hub", "httpx", "httpx2"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(RedactingFilter())
