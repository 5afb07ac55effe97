"""The machine a serving figure was measured on, named so that it can be matched against the
hardware `eval.yaml` declares its limits for (`cpu`, or a Hugging Face Jobs flavor such as
`a10g-small` or `h200x2`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Jobs flavor prefixes; `l40s` before `l4` and `a100` before `a10g` so that the longer name wins.
GPU_CLASSES = ("a10g", "a100", "h100", "h200", "l40s", "l4", "t4")
NVIDIA_SMI_TIMEOUT_S = 20.0
_GIB = 1024**3


@dataclass(frozen=True)
class Hardware:
    kind: str
    """`cpu` or `gpu`."""
    name: str
    """The CPU model, or the GPU's name as the driver reports it."""
    count: int
    """Cores on a CPU, devices on a GPU machine."""
    memory_gib: float
    """The machine's memory on a CPU, one device's memory on a GPU."""

    @property
    def hardware_class(self) -> str:
        return "cpu" if self.kind == "cpu" else gpu_class(self.name)

    @property
    def described(self) -> str:
        if self.kind == "cpu":
            return f"cpu: {self.name} ({self.count} cores, {self.memory_gib:.0f} GiB)"
        return f"{self.hardware_class}: {self.count} x {self.name} ({self.memory_gib:.0f} GiB each)"


def gpu_class(name: str) -> str:
    """A GPU's short lowercase name as Jobs flavors spell it ("NVIDIA A10G" -> `a10g`); a GPU
    no flavor names keeps its model name, lowercased, without the vendor."""
    lowered = name.lower()
    for known in GPU_CLASSES:
        if re.search(rf"\b{known}\b", lowered):
            return known
    model = re.sub(r"\b(nvidia|tesla|geforce)\b", "", lowered)
    return re.sub(r"[^a-z0-9]", "", model) or "gpu"


def flavor_class(declared: str) -> str:
    """The hardware class a declared flavor names: `cpu-upgrade` -> `cpu`, `h200x2` -> `h200`,
    `a10g-small` -> `a10g`."""
    prefix = declared.strip().lower().split("-", 1)[0]
    return re.sub(r"x\d+$", "", prefix)


def matches(declared: str, hardware: Hardware) -> bool:
    """Whether limits declared for `declared` (`cpu`, a Jobs flavor) hold on `hardware`."""
    return flavor_class(declared) == hardware.hardware_class


def parse_cpuinfo(text: str) -> str:
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "model name" and value.strip():
            return value.strip()
    return "unknown CPU"


def parse_meminfo_gib(text: str) -> float:
    match = re.search(r"^MemTotal:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 / _GIB if match else 0.0


def parse_nvidia_smi(text: str) -> list[tuple[str, float]]:
    """`nvidia-smi --query-gpu=name,memory.total --format=csv,noheader` -> (name, GiB) each."""
    gpus = []
    for line in text.strip().splitlines():
        name, _, memory = line.rpartition(",")
        mib = re.match(r"\s*(\d+)", memory)
        if name.strip() and mib:
            gpus.append((name.strip(), int(mib.group(1)) / 1024))
    return gpus


def _gpus() -> list[tuple[str, float]]:
    answer = nvidia_smi("--query-gpu=name,memory.total", "--format=csv,noheader")
    return parse_nvidia_smi(answer or "")


def parse_compute_apps(text: str) -> dict[int, int]:
    """`nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits` ->
    bytes of GPU memory per process id."""
    used: dict[int, int] = {}
    for line in text.splitlines():
        pid, _, mib = (part.strip() for part in line.partition(","))
        if pid.isdigit() and mib.isdigit():
            used[int(pid)] = used.get(int(pid), 0) + int(mib) * 2**20
    return used


def gpu_memory_by_pid() -> dict[int, int]:
    """The GPU memory each process holds now; empty without a GPU (or a driver that answers)."""
    answer = nvidia_smi("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
    return parse_compute_apps(answer or "")


def nvidia_smi(*arguments: str) -> str | None:
    """What nvidia-smi prints for `arguments`; None without it, or when it fails or hangs."""
    command = shutil.which("nvidia-smi")
    if command is None:
        return None
    try:
        result = subprocess.run(
            [command, *arguments],
            capture_output=True,
            text=True,
            timeout=NVIDIA_SMI_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # a driver that does not answer leaves no GPU to serve on
    return result.stdout if result.returncode == 0 else None


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def this_machine() -> Hardware:
    gpus = _gpus()
    if gpus:
        name, memory_gib = gpus[0]
        return Hardware("gpu", name, len(gpus), memory_gib)
    return Hardware(
        "cpu",
        parse_cpuinfo(_read("/proc/cpuinfo")),
        os.cpu_count() or 1,
        parse_meminfo_gib(_read("/proc/meminfo")),
    )
