"""Hugging Face Jobs as the runner sees them: a job's stage, its identity and timings, and the
hardware flavors with their prices. Built from huggingface_hub's own `JobInfo` and
`JobHardwareInfo`, so the rest of the runner never handles the client's classes."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from huggingface_hub import JobHardwareInfo, JobInfo

VolumeRepoType = Literal["model", "dataset", "space"]
# A repo mounted read-only into a job: (repo type, repo id, revision, mount path).
JobVolume = tuple[VolumeRepoType, str, str, str]

# The Hub prints this line first in every job's log; huggingface_hub leaves it out too.
_JOB_STARTED = "===== Job started"
_MINUTES_PER = {"minute": 1.0, "hour": 60.0}


class JobStage(StrEnum):
    SCHEDULING = "SCHEDULING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    CANCELED = "CANCELED"
    ERROR = "ERROR"
    DELETED = "DELETED"

    @property
    def is_terminal(self) -> bool:
        """The job will not run (again): its hardware is released and its billing stopped."""
        return self not in (JobStage.SCHEDULING, JobStage.RUNNING)


@dataclass(frozen=True)
class Job:
    id: str
    namespace: str
    stage: JobStage
    message: str | None
    labels: dict[str, str]
    flavor: str
    scheduling_s: float | None
    """Seconds spent waiting for hardware; None until the job starts running."""
    running_s: float | None
    """Seconds run so far (or in all, once finished): what is billed. None until it runs."""
    url: str

    @classmethod
    def from_info(cls, info: JobInfo) -> Job:
        durations = info.durations
        return cls(
            id=info.id,
            namespace=info.owner.name,
            stage=JobStage(str(info.status.stage)),
            message=info.status.message,
            labels=dict(info.labels or {}),
            flavor=str(info.flavor or ""),
            scheduling_s=_seconds(durations.scheduling_secs if durations else None),
            running_s=_seconds(durations.running_secs if durations else None),
            url=info.url,
        )

    def has_labels(self, labels: dict[str, str]) -> bool:
        return all(self.labels.get(key) == value for key, value in labels.items())


@dataclass(frozen=True)
class JobFlavor:
    name: str
    pretty_name: str
    gpus: int
    gpu_memory_gb: float | None
    """Memory of each GPU (the Hub lists the flavor's total); None without GPUs."""
    usd_per_minute: float

    @classmethod
    def from_hardware(cls, info: JobHardwareInfo) -> JobFlavor:
        accelerator = info.accelerator
        gpus = int(accelerator.quantity) if accelerator else 0
        total = _gigabytes(accelerator.vram) if accelerator else None
        return cls(
            name=info.name,
            pretty_name=info.pretty_name,
            gpus=gpus,
            gpu_memory_gb=total / gpus if total is not None and gpus else None,
            usd_per_minute=float(info.unit_cost_usd) / _MINUTES_PER[info.unit_label],
        )


def sse_events(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """The JSON payloads of a server-sent event stream, as huggingface_hub reads the Hub's:
    only `data: {...}` lines count (keep-alive comments and `event:` lines do not)."""
    for line in lines:
        if line.startswith("data: {"):
            yield json.loads(line[len("data: ") :])


def log_lines(events: Iterable[dict[str, Any]]) -> Iterator[str]:
    for event in events:
        line = str(event.get("data", ""))
        if not line.startswith(_JOB_STARTED):
            yield line.rstrip("\n")


def _seconds(value: int | float | None) -> float | None:
    return None if value is None else float(value)


def _gigabytes(text: str) -> float | None:
    """`"24 GB"` -> 24.0; None for what the Hub may write instead (`"N/A"`)."""
    number, _, unit = text.strip().partition(" ")
    try:
        return float(number) * (1024.0 if unit.upper() == "TB" else 1.0)
    except ValueError:
        return None
