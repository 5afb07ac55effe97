"""A Space's settings as the Hub keeps them: SDK, hardware, sleep time, secrets and
variables (which become its app's environment), and the sleep time the Hub applies when none
is set."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, Field

from runner.hub.emulator.blobs import now_iso
from runner.hub.emulator.errors import BadRequest

# The Hub puts a Space on the free hardware to sleep after 48 hours without a visit.
FREE_HARDWARE_SLEEP_S = 48 * 3600

HARDWARE = (
    "cpu-basic", "cpu-upgrade", "zero-a10g", "t4-small", "t4-medium", "l4x1", "l4x4",
    "l40sx1", "l40sx4", "l40sx8", "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4",
    "a100-large", "a100x4", "a100x8", "rtx-pro-6000", "rtx-pro-6000x2", "rtx-pro-6000x4",
    "rtx-pro-6000x8",
)  # fmt: skip

# The SDKs the Hub knows (huggingface_hub's SPACES_SDK_TYPES).
Sdk = Literal["gradio", "streamlit", "docker", "static"]
SDKS: tuple[Sdk, ...] = ("gradio", "streamlit", "docker", "static")

# Seconds of inactivity before a Space sleeps; -1: never (as huggingface_hub documents it).
SleepTime = Annotated[int, Field(ge=-1)]
# A secret or variable becomes an environment variable of the app: a shell-safe name, and a
# value with no NUL (which ends a C string) or lone surrogate (which cannot be encoded).
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,255}$"
_NOT_IN_ENV_VALUE = re.compile(r"[\x00\ud800-\udfff]")


def _env_value(value: str) -> str:
    if _NOT_IN_ENV_VALUE.search(value):
        raise ValueError("an environment value cannot hold a NUL or a lone surrogate")
    return value


class Key(BaseModel):
    key: Annotated[str, Field(pattern=ENV_NAME)]


class KeyValue(Key):
    value: Annotated[str, AfterValidator(_env_value)] = ""
    description: str | None = None

    def stored(self) -> dict[str, Any]:
        return {"value": self.value, "description": self.description, "updatedAt": now_iso()}


def default_settings(
    sdk: str | None,
    *,
    hardware: str | None = None,
    sleep_time: int | None = None,
    secrets: Sequence[KeyValue] = (),
    variables: Sequence[KeyValue] = (),
) -> dict[str, Any]:
    """Settings of a new Space, persisted in its repo record."""
    if hardware is not None and hardware not in HARDWARE:
        raise BadRequest(f"Unknown hardware {hardware!r}; expected one of {', '.join(HARDWARE)}")

    def keyed(items: Sequence[KeyValue]) -> dict[str, dict[str, Any]]:
        return {item.key: item.stored() for item in items}

    return {
        "sdk": sdk,
        "hardware": hardware or "cpu-basic",
        "sleepTime": sleep_time,
        "secrets": keyed(secrets),
        "variables": keyed(variables),
        "paused": False,
        "devMode": False,
        "stage": "NO_APP_FILE",
        "errorMessage": None,
    }


def gc_timeout(settings: dict[str, Any]) -> int | None:
    """Seconds of idleness before the Space sleeps: its own sleep time (-1: never), else the
    Hub's default, 48 hours on the free cpu-basic hardware and never (None) on paid hardware."""
    sleep_time = settings.get("sleepTime")
    if sleep_time is not None:
        return int(sleep_time)  # -1: never
    return FREE_HARDWARE_SLEEP_S if settings.get("hardware", "cpu-basic") == "cpu-basic" else None
