"""Progress events printed by `train.py` (`@@progress {json}` lines on stdout), read back
from the local subprocess or from the Space's run log."""

from __future__ import annotations

import json
from typing import Any

# The same marker as train.py's PROGRESS_MARKER (train.py cannot import the runner; a test
# keeps the two equal).
PROGRESS_MARKER = "@@progress "


def parse_progress(line: str) -> dict[str, Any] | None:
    """The event on a progress line, or None for any other line."""
    _, marker, payload = line.partition(PROGRESS_MARKER)
    if not marker:
        return None
    try:
        event = json.loads(payload)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None
