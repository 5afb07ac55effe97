"""Tokens never reach logs, messages or files: every string the hub layer lets out passes
through `redact`."""

from __future__ import annotations

import logging
import re

# Hub tokens: `hf_` (a user access token; 34 letters and digits on the real Hub) or the
# retired `api_org_`. Shorter bodies count too, so that test tokens are redacted as well.
_TOKEN_BODY = "[A-Za-z0-9]{8,}"
_TOKEN = re.compile(rf"\b(hf_|api_org_){_TOKEN_BODY}")
_USER_TOKEN = re.compile(rf"hf_{_TOKEN_BODY}")
# The value ends at a space, quote, bracket, comma or semicolon, none of which a token holds:
# what follows it (the rest of a sentence, a placeholder such as `<token>`) stays readable.
_BEARER = re.compile(r"""(?i)(bearer\s+)[^\s`'"<>()\[\]{},;]+""")
_known: set[str] = set()


def is_user_token(text: str) -> bool:
    """Shaped as a Hub user access token, which `redact` hides wherever it appears."""
    return _USER_TOKEN.fullmatch(text) is not None


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
