"""Jobs: a job's command run as a local process of the emulator host, through the Hub's stages
SCHEDULING -> RUNNING -> COMPLETED (exit 0), ERROR (any other exit, or past its timeout) or
CANCELED (cancelled: its process group is killed).

Where a job here departs from the Hub's container, and the one place it must: the docker
image (or Space) is recorded, never pulled, and the command runs on this machine, a leading
`python` or `python3` as the emulator's own interpreter. On the job's PATH, this interpreter's
folder stands for the image's commands (`python`, `accelerate` ...), behind a `pip` that
installs nothing (image_pip.py). Volumes (model, dataset and Space
repos at a revision) are materialised read-only into a folder of the job, and each mount
path is rewritten to that folder wherever it appears in the command's arguments and in the
environment's values (nothing here can mount a folder at `/data`). The job's environment is
its `environment` and `secrets` with HF_ENDPOINT of the emulator, a fresh HOME and TMPDIR.

The Hub documents no stage or message for a job past its `timeoutSeconds`; here it ends in
ERROR with a message that names the timeout. A job with no timeout gets the Hub's default
(30 minutes). Jobs live in memory: they end with the emulator.

Tests script outcomes (`/_emulator/jobs/script`): the next jobs of a namespace, or those with
a given label, stay in SCHEDULING, fail with ERROR at start, or have their first log stream
closed after some lines while the job goes on. Every job ever created is in the launch log."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from runner.hub.emulator.space_apps import (
    container_environment,
    inherited_environment,
    pump_run_log,
    start_process,
    terminate,
)
from runner.hub.emulator.space_logs import LogBook, RunLog

ScriptedOutcome = Literal["scheduling", "error", "drop_logs"]
TERMINAL = ("COMPLETED", "CANCELED", "ERROR", "DELETED")
DEFAULT_TIMEOUT_S = 30 * 60
_INTERPRETERS = ("python", "python3")
_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _hardware(
    name: str,
    pretty_name: str,
    vcpus: int,
    ram_gb: int,
    storage_gb: int,
    usd_per_hour: float,
    gpu: str | None = None,
    gpus: int = 0,
    vram_gb: int = 0,
) -> dict[str, Any]:
    """One entry of `GET /api/jobs/hardware`; `vram_gb` is the flavor's GPU memory in all."""
    micro_usd_per_minute = round(usd_per_hour * 1_000_000 / 60)
    accelerator = None
    if gpu is not None:
        accelerator = {
            "type": "gpu",
            "model": gpu,
            "quantity": str(gpus),
            "vram": f"{vram_gb} GB",
            "manufacturer": "Nvidia",
        }
    return {
        "name": name,
        "prettyName": pretty_name,
        "cpu": f"{vcpus} vCPU",
        "ram": f"{ram_gb} GB",
        "ephemeralStorage": f"{storage_gb} GB",
        "accelerator": accelerator,
        "unitCostMicroUSD": micro_usd_per_minute,
        "unitCostUSD": micro_usd_per_minute / 1_000_000,
        "unitLabel": "minute",
    }


# The flavors of huggingface_hub's JobHardware, with the hourly prices of the Hub's pricing
# pages (huggingface.co/docs/hub/jobs-pricing for the CPUs, the Spaces GPU list for the GPUs;
# the RTX PRO 6000 rows are estimates: no published price was found). Billed per minute.
_RTX = "RTX PRO 6000"
HARDWARE: dict[str, dict[str, Any]] = {
    entry["name"]: entry
    for entry in (
        _hardware("cpu-basic", "CPU Basic", 2, 16, 50, 0.01),
        _hardware("cpu-upgrade", "CPU Upgrade", 8, 32, 50, 0.03),
        _hardware("cpu-performance", "CPU Performance", 32, 256, 1024, 1.90),
        _hardware("cpu-xl", "CPU XL", 16, 124, 1000, 1.00),
        _hardware("t4-small", "Nvidia T4 - small", 4, 15, 50, 0.40, "T4", 1, 16),
        _hardware("t4-medium", "Nvidia T4 - medium", 8, 30, 100, 0.60, "T4", 1, 16),
        _hardware("l4x1", "1x Nvidia L4", 8, 30, 400, 0.80, "L4", 1, 24),
        _hardware("l4x4", "4x Nvidia L4", 48, 186, 3200, 3.80, "L4", 4, 96),
        _hardware("l40sx1", "1x Nvidia L40S", 8, 62, 380, 1.80, "L40S", 1, 48),
        _hardware("l40sx4", "4x Nvidia L40S", 48, 382, 3200, 8.30, "L40S", 4, 192),
        _hardware("l40sx8", "8x Nvidia L40S", 192, 1534, 6500, 23.50, "L40S", 8, 384),
        _hardware("a10g-small", "Nvidia A10G - small", 4, 15, 110, 1.00, "A10G", 1, 24),
        _hardware("a10g-large", "Nvidia A10G - large", 12, 46, 200, 1.50, "A10G", 1, 24),
        _hardware("a10g-largex2", "2x Nvidia A10G - large", 24, 92, 1000, 3.00, "A10G", 2, 48),
        _hardware("a10g-largex4", "4x Nvidia A10G - large", 48, 184, 2000, 5.00, "A10G", 4, 96),
        _hardware("a100-large", "Nvidia A100 - large", 12, 142, 1000, 2.50, "A100", 1, 80),
        _hardware("a100x4", "4x Nvidia A100", 48, 568, 4000, 10.00, "A100", 4, 320),
        _hardware("a100x8", "8x Nvidia A100", 96, 1136, 8000, 20.00, "A100", 8, 640),
        _hardware("h200", "Nvidia H200", 23, 256, 3000, 5.00, "H200", 1, 141),
        _hardware("h200x2", "2x Nvidia H200", 46, 512, 6000, 10.00, "H200", 2, 282),
        _hardware("h200x4", "4x Nvidia H200", 92, 1024, 12000, 20.00, "H200", 4, 564),
        _hardware("h200x8", "8x Nvidia H200", 184, 2048, 24000, 40.00, "H200", 8, 1128),
        _hardware("rtx-pro-6000", f"Nvidia {_RTX}", 24, 192, 1000, 2.50, _RTX, 1, 96),
        _hardware("rtx-pro-6000x2", f"2x Nvidia {_RTX}", 48, 384, 2000, 5.00, _RTX, 2, 192),
        _hardware("rtx-pro-6000x4", f"4x Nvidia {_RTX}", 96, 768, 4000, 10.00, _RTX, 4, 384),
        _hardware("rtx-pro-6000x8", f"8x Nvidia {_RTX}", 192, 1536, 8000, 20.00, _RTX, 8, 768),
    )
}  # fmt: skip


@dataclass(frozen=True)
class Mount:
    """A repo at a revision, as the job sees it at `path`."""

    spec: dict[str, Any]  # as the client sent it (type, source, mountPath, revision, path)
    path: str
    files: dict[str, Path]  # path in the volume -> the blob holding it


@dataclass
class JobScript:
    outcome: ScriptedOutcome
    namespace: str
    label: tuple[str, str] | None
    remaining: int | None
    lines: int

    def matches(self, namespace: str, labels: dict[str, str]) -> bool:
        if self.label is not None:
            key, value = self.label
            return labels.get(key) == value
        return namespace.lower() == self.namespace.lower()


@dataclass
class EmulatedJob:
    id: str
    namespace: str
    owner: dict[str, str]
    spec: dict[str, Any]
    secrets: dict[str, str]
    mounts: list[Mount]
    logs: LogBook
    timeout_s: int
    created: datetime
    stage: str = "SCHEDULING"
    message: str | None = None
    started: datetime | None = None
    finished: datetime | None = None
    process: subprocess.Popen[str] | None = None
    drop_logs_after: int | None = None
    log_streams: int = 0

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.spec.get("labels") or {})

    def info(self) -> dict[str, Any]:
        """The job as `GET /api/jobs/{namespace}/{id}` answers it; secrets by name only."""
        return {
            "id": self.id,
            "createdAt": _iso(self.created),
            "startedAt": _iso(self.started),
            "finishedAt": _iso(self.finished),
            "dockerImage": self.spec.get("dockerImage"),
            "spaceId": self.spec.get("spaceId"),
            "command": self.spec["command"],
            "arguments": self.spec.get("arguments") or [],
            "environment": self.spec.get("environment") or {},
            "secrets": dict.fromkeys(self.secrets),
            "flavor": self.spec["flavor"],
            "labels": self.spec.get("labels"),
            "volumes": [mount.spec for mount in self.mounts] or None,
            "status": {"stage": self.stage, "message": self.message},
            "durations": self.durations(),
            "owner": self.owner,
            "initiator": {"type": "user", "id": self.owner["id"], "name": self.owner["name"]},
        }

    def durations(self) -> dict[str, int | None]:
        now = datetime.now(UTC)
        end = self.finished or now
        return {
            "schedulingSecs": _secs(self.created, self.started),
            "runningSecs": _secs(self.started, end) if self.started else None,
            "totalSecs": _secs(self.created, end),
        }


class JobManager:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.endpoint = ""  # set once the server has its port: the jobs' HF_ENDPOINT
        self._lock = threading.RLock()
        self._jobs: dict[str, EmulatedJob] = {}
        self._scripts: list[JobScript] = []
        self._launches: list[dict[str, Any]] = []

    # -- queries ----------------------------------------------------------------------------

    def get(self, namespace: str, job_id: str) -> EmulatedJob | None:
        with self._lock:
            job = self._jobs.get(job_id)
        return job if job is not None and job.namespace.lower() == namespace.lower() else None

    def find(self, namespace: str, stages: list[str], labels: dict[str, str]) -> list[EmulatedJob]:
        with self._lock:
            jobs = [
                job for job in self._jobs.values() if job.namespace.lower() == namespace.lower()
            ]
        return [
            job
            for job in jobs
            if (not stages or job.stage in stages)
            and all(job.labels.get(k) == v for k, v in labels.items())
        ]

    def launches(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(entry) for entry in self._launches]

    # -- control ----------------------------------------------------------------------------

    def script(
        self,
        namespace: str,
        outcome: ScriptedOutcome,
        *,
        label: str | None = None,
        times: int | None = 1,
        lines: int = 1,
    ) -> None:
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every job)")
        if lines < 0:
            raise ValueError("lines must be 0 or more")
        pair: tuple[str, str] | None = None
        if label is not None:
            key, sep, value = label.partition("=")
            if not sep or not key:
                raise ValueError(f"label must be key=value, not {label!r}")
            pair = (key, value)
        with self._lock:
            self._scripts.append(JobScript(outcome, namespace, pair, times, lines))

    def clear_scripts(self) -> None:
        with self._lock:
            self._scripts.clear()

    def _take_script(self, namespace: str, labels: dict[str, str]) -> JobScript | None:
        with self._lock:
            script = next((s for s in self._scripts if s.matches(namespace, labels)), None)
            if script is not None and script.remaining is not None:
                script.remaining -= 1
                if script.remaining <= 0:
                    self._scripts.remove(script)
            return script

    def create(
        self,
        namespace: str,
        owner: dict[str, str],
        spec: dict[str, Any],
        secrets: dict[str, str],
        mounts: list[Mount],
    ) -> EmulatedJob:
        job_id = uuid.uuid4().hex[:24]
        job = EmulatedJob(
            id=job_id,
            namespace=namespace,
            owner=owner,
            spec=spec,
            secrets=secrets,
            mounts=mounts,
            logs=LogBook(self.root / job_id / "logs"),
            timeout_s=int(spec.get("timeoutSeconds") or DEFAULT_TIMEOUT_S),
            created=datetime.now(UTC),
        )
        script = self._take_script(namespace, job.labels)
        if script is not None and script.outcome == "drop_logs":
            job.drop_logs_after = script.lines
        # Opened now, so that a cancel that comes before the job starts closes it for good.
        logs = job.logs.reset()
        with self._lock:
            self._jobs[job_id] = job
            self._launches.append(
                {
                    "id": job_id,
                    "namespace": namespace,
                    "labels": job.labels,
                    "flavor": spec["flavor"],
                    "createdAt": _iso(job.created),
                }
            )
        if script is None or script.outcome != "scheduling":  # scripted: never starts
            failed = script is not None and script.outcome == "error"
            threading.Thread(target=self._run, args=(job, logs, failed), daemon=True).start()
        return job

    def cancel(self, job: EmulatedJob) -> None:
        """Cancel a job that has not ended (cancelling an ended one changes nothing)."""
        self._stop(job, "CANCELED", None)

    def stop_all(self) -> None:
        with self._lock:
            jobs = [job for job in self._jobs.values() if job.stage not in TERMINAL]
        for job in jobs:
            self._stop(job, "ERROR", "The Hub emulator stopped")

    def _stop(self, job: EmulatedJob, stage: str, message: str | None) -> None:
        """End a job that has not ended, and kill its process group if it has started."""
        with self._lock:
            if not self._end(job, stage, message):
                return
            process = job.process
        if process is not None:
            terminate(process)

    def open_log_stream(self, job: EmulatedJob) -> int | None:
        """A new connection to the job's log: after how many events it closes (scripted for
        the job's first stream: the start line, then the job's lines), or None for a stream
        that follows to the end."""
        with self._lock:
            job.log_streams += 1
            if job.drop_logs_after is None or job.log_streams > 1:
                return None
            return job.drop_logs_after + 1

    # -- one job ----------------------------------------------------------------------------

    def _end(self, job: EmulatedJob, stage: str, message: str | None) -> bool:
        """Move a job that has not ended to its final stage; whether this call ended it."""
        with self._lock:
            if job.stage in TERMINAL:
                return False
            job.stage, job.message, job.finished = stage, message, datetime.now(UTC)
            job.logs.close()
            return True

    def _run(self, job: EmulatedJob, logs: RunLog, failed: bool) -> None:
        try:
            if failed:
                self._end(job, "ERROR", "Job failed to start (scripted by the Hub emulator)")
                return
            folder = self.root / job.id
            mapping = _materialise(job.mounts, folder / "volumes")
            self._launch(job, logs, folder, mapping)
        except Exception as exc:  # an emulator bug must show as a stage, not a silent thread
            logs.add("run", f"Hub emulator error: {exc!r}")
            self._end(job, "ERROR", f"emulator: {exc!r}")

    def _launch(
        self, job: EmulatedJob, logs: RunLog, folder: Path, mapping: dict[str, str]
    ) -> None:
        argv = [
            _mapped(part, mapping)
            for part in [*job.spec["command"], *job.spec.get("arguments", [])]
        ]
        if argv and argv[0] in _INTERPRETERS:
            argv[0] = sys.executable
        with self._lock:
            if job.stage in TERMINAL:  # cancelled before it started
                return
            try:
                process = start_process(  # a cancel stops its children too
                    argv, _fresh(folder / "work"), self._environment(job, folder, mapping)
                )
            except OSError as exc:  # as a container whose command is not in its image
                self._end(job, "ERROR", f"Cannot run {argv[0]!r}: {exc.strerror}")
                return
            job.process, job.stage, job.started = process, "RUNNING", datetime.now(UTC)
            logs.add("run", f"===== Job started at {_iso(job.started)} =====")
        reader = threading.Thread(target=pump_run_log, args=(process, logs), daemon=True)
        reader.start()
        try:
            code = process.wait(timeout=job.timeout_s)
        except subprocess.TimeoutExpired:
            message = f"Job timed out after {job.timeout_s} seconds (its timeoutSeconds)"
            if self._end(job, "ERROR", message):
                terminate(process)
            return
        reader.join(timeout=5)
        if code == 0:
            self._end(job, "COMPLETED", None)
        else:
            self._end(job, "ERROR", f"Job exited with code {code}")

    def _environment(
        self, job: EmulatedJob, folder: Path, mapping: dict[str, str]
    ) -> dict[str, str]:
        env = inherited_environment()
        given = {**(job.spec.get("environment") or {}), **job.secrets}
        env.update({key: _mapped(str(value), mapping) for key, value in given.items()})
        env.update(container_environment(folder, self.endpoint))
        env["PATH"] = _image_path(folder, env.get("PATH", ""))
        return env


def _image_path(folder: Path, inherited: str) -> str:
    """The image's commands: this Python's folder (`python`, `accelerate` ...) behind a `pip`
    that installs nothing (image_pip)."""
    commands = folder / "image-bin"
    commands.mkdir(parents=True, exist_ok=True)
    pip = commands / "pip"
    pip.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m runner.hub.emulator.image_pip "$@"\n')
    pip.chmod(0o755)
    return os.pathsep.join([str(commands), str(Path(sys.executable).parent), inherited])


def metrics_sample(job: EmulatedJob, previous_cpu_s: float | None) -> tuple[dict[str, Any], float]:
    """One sample shaped as the Hub's metrics events, from /proc for the job's main process;
    its GPUs are the flavor's, with nothing measured on them here. Returns the sample and
    the process's CPU seconds so far, for the next sample's rate."""
    process = job.process
    cpu_s, rss = _proc_usage(process.pid) if process is not None else (0.0, 0)
    accelerator = HARDWARE[job.spec["flavor"]]["accelerator"]
    gpus: dict[str, dict[str, int]] = {}
    if accelerator is not None:
        count = int(accelerator["quantity"])
        each = int(float(accelerator["vram"].split()[0]) * 1e9 / count)
        gpus = {
            f"gpu{index}": {"utilization": 0, "memory_used_bytes": 0, "memory_total_bytes": each}
            for index in range(count)
        }
    sample = {
        "cpu_usage_pct": round(100 * (cpu_s - previous_cpu_s)) if previous_cpu_s is not None else 0,
        "cpu_millicores": 1000 * (os.cpu_count() or 1),
        "memory_used_bytes": rss,
        "memory_total_bytes": os.sysconf("SC_PHYS_PAGES") * _PAGE_SIZE,
        "rx_bps": 0,
        "tx_bps": 0,
        "gpus": gpus,
        "replica": job.id[-5:],
    }
    return sample, cpu_s


def _proc_usage(pid: int) -> tuple[float, int]:
    """CPU seconds and resident bytes of a process; zeros once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0.0, 0
    # utime and stime are fields 14 and 15 of stat; the split starts at field 3 (after the
    # command name, which may hold spaces).
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS, resident * _PAGE_SIZE


def _materialise(mounts: list[Mount], root: Path) -> dict[str, str]:
    """Copy each volume's files into a read-only folder; returns mount path -> folder."""
    mapping: dict[str, str] = {}
    for index, mount in enumerate(mounts):
        folder = root / str(index)
        for name, blob in mount.files.items():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(blob, target)
        folder.mkdir(parents=True, exist_ok=True)
        _make_read_only(folder)
        mapping[mount.path.rstrip("/") or "/"] = str(folder)
    return mapping


def _make_read_only(folder: Path) -> None:
    read_only_file = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    read_only_dir = read_only_file | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        path.chmod(read_only_dir if path.is_dir() else read_only_file)
    folder.chmod(read_only_dir)


def _mapped(text: str, mapping: dict[str, str]) -> str:
    """`text` with each mount path (as a whole path, or the start of one) replaced by its
    folder: `/data` and `/data/x` map, `/database` and `/my/data` do not. Longest first, so a
    mount inside another maps to its own folder."""
    for mount in sorted(mapping, key=len, reverse=True):
        folder = mapping[mount]
        pattern = re.compile(rf"(?<![\w./-]){re.escape(mount)}(?![\w.-])")
        text = pattern.sub(lambda _, folder=folder: folder, text)
    return text


def _fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def _iso(moment: datetime | None) -> str | None:
    """The one timestamp format `huggingface_hub.utils.parse_datetime` accepts."""
    if moment is None:
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _secs(start: datetime, end: datetime | None) -> int | None:
    return None if end is None else int((end - start).total_seconds())
