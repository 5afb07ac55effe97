"""The `jobs` backend: a Hugging Face Job runs train.py in our pinned image on a GPU flavor,
billed only while it runs and stopped by the Hub at its timeout.

Exactly once per run id: every job carries its run id as a label, and a live job with it is
attached to and watched (a runner killed mid-watch and run again) instead of launching a
second one. train.py travels as a file of the candidates repo (`code/<script version>/`),
mounted read-only at the commit that holds it; the run config pins the base model and dataset
commits. Success is COMPLETED and a verified candidate (launch.py reads the run back), never
the job's end alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import shlex
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from runner.backends.base import Ended, EventSink, Launch
from runner.engines import engine_for
from runner.errors import InputError, RunnerError
from runner.hub.client import HubClient, HubError, RepoRef
from runner.hub.jobs import Job, JobStage
from runner.policy.access import namespace_of
from runner.runs.config import dumps
from runner.runs.location import candidate_location
from runner.runs.progress import parse_progress
from runner.runs.record import read_run
from runner.runs.run_id import TRAIN_SCRIPT, script_version
from runner.space import image
from runner.space.sync import LOG_TAIL_LINES, Limits, RunProgress, why_stop
from runner.specs.bundle import AdapterBundle
from runner.train.train import JobUsage, Parallel, to_json

# TRL's accelerate preset (a file of the installed `trl` package) for each strategy.
ACCELERATE_PRESETS = {"ddp": "multi_gpu", "fsdp2": "fsdp2", "zero3": "zero3"}
# Where the job sees the candidates repo (the training code) read-only.
CODE_MOUNT = "/adapter-gitops"
RUN_ID_LABEL = "run-id"
POLL_S = 2.0
# A dropped log or metrics stream is opened again after this pause, while the job lives.
RECONNECT_S = 1.0
# After the job ends, how long its log and metrics may take to drain.
DRAIN_S = 10.0


class JobsBackend:
    name = "jobs"
    on_this_machine = False

    def written_repos(self, bundle: AdapterBundle) -> list[tuple[str, str]]:
        # The training code goes to the candidates repo, whose namespace the job runs in.
        return [("training code in", bundle.adapter.publish.candidates_repo_id)]

    def check(self, bundle: AdapterBundle) -> None:
        flavor_of(bundle)

    def launch(self, run: Launch) -> Ended:
        flavor = flavor_of(run.bundle)
        job = live_job(run.client, job_namespace(run.bundle), run.config.run_id)
        if job is None:
            for stale in cancel_superseded(run.client, run.bundle, run.config.run_id, run.pr):
                superseded = stale.labels.get(RUN_ID_LABEL)
                run.on_event({"stage": f"job {stale.id} of superseded run {superseded} cancelled"})
            job = start_job(run, flavor)
            run.on_event({"stage": f"job {job.id} launched on {flavor}"})
        else:
            run.on_event({"stage": f"job {job.id} attached ({job.stage})"})
        deadline = run.bundle.adapter.training.scheduling_deadline_minutes
        watched = watch_job(run.client, job, run.limits, deadline, run.on_event)
        if watched.failure is None:
            record_usage(run.client, run.bundle, run.config.run_id, watched.usage)
        detail = "\n".join([watched.failure or f"job {job.id} COMPLETED", *watched.tail])
        return Ended(watched.failure, detail)


JOBS = JobsBackend()


def flavor_of(bundle: AdapterBundle) -> str:
    flavor = bundle.adapter.training.flavor
    if flavor is None:
        spec = bundle.docs["adapter.yaml"]
        line, _ = spec.position(["training"], at_key=True)
        raise InputError(
            f"{spec.path}:{line}: the jobs backend needs `training.flavor`: set "
            "`training.backend: jobs` and `training.flavor` (e.g. `a10g-small`) there"
        )
    return flavor


def job_namespace(bundle: AdapterBundle) -> str:
    return namespace_of(bundle.adapter.publish.candidates_repo_id)


def live_job(client: HubClient, namespace: str, rid: str) -> Job | None:
    """The job of this run id that has not ended: a previous runner launched it."""
    live = [j for j in client.find_jobs(namespace, {RUN_ID_LABEL: rid}) if not j.stage.is_terminal]
    return live[0] if live else None


def job_labels(bundle: AdapterBundle, rid: str, pr: int | None) -> dict[str, str]:
    """What finds the job again (its run id) and what a person looks it up by."""
    labels = {RUN_ID_LABEL: rid, "adapter": bundle.dirname}
    return labels | ({"pr": str(pr)} if pr else {})


def cancel_superseded(
    client: HubClient, bundle: AdapterBundle, rid: str, pr: int | None
) -> list[Job]:
    """Cancel the live jobs of this adapter and PR under another run id: a new push changed
    the run id, so they train what nobody will evaluate, and bill until they end. Without a
    PR, another run id may be another branch's run: it is left alone."""
    if pr is None:
        return []
    labels = {"adapter": bundle.dirname, "pr": str(pr)}
    stale = [
        job
        for job in client.find_jobs(job_namespace(bundle), labels)
        if not job.stage.is_terminal and job.labels.get(RUN_ID_LABEL) != rid
    ]
    for job in stale:
        client.cancel_job(job.namespace, job.id)
    return stale


def start_job(run: Launch, flavor: str) -> Job:
    token = run.client.environment().get("HF_TOKEN")
    if not token:
        raise RunnerError(
            "the job needs a token to push its results: set HF_TOKEN to a token with write "
            f"access to {job_namespace(run.bundle)}"
        )
    code_repo = run.bundle.adapter.publish.candidates_repo_id
    code_commit = upload_code(run.client, code_repo)
    return run.client.run_job(
        job_namespace(run.bundle),
        image=image.JOB_IMAGE,
        command=job_command(run.config.parallel),
        env={"RUN_CONFIG": dumps(run.config), "PYTHONUNBUFFERED": "1"},
        secrets={"HF_TOKEN": token},
        flavor=flavor,
        # The Hub's own stop at the cost ceiling holds even when no runner watches (killed, or
        # CI cancelled); a watching runner applies the timeout and stall limits before it.
        timeout_s=math.ceil(run.limits.ceiling_s),
        labels=job_labels(run.bundle, run.config.run_id, run.pr),
        volumes=[("model", code_repo, code_commit, CODE_MOUNT)],
    )


def job_command(parallel: Parallel | None) -> list[str]:
    """Install the training image's pins into JOB_IMAGE, then start train.py: as one process,
    or one per GPU through `accelerate launch` with TRL's preset for the strategy."""
    installs = list(image.TRAINING_INSTALLS)
    if parallel is not None and parallel.strategy == "zero3":
        installs.append(image.DEEPSPEED)
    steps = [f"{image.PIP_INSTALL} {packages}" for packages in installs]
    script = shlex.quote(f"{CODE_MOUNT}/{code_path()}")
    if parallel is None:
        steps.append(f"exec python {script}")
    else:
        preset = ACCELERATE_PRESETS[parallel.strategy]
        find_preset = (
            "import importlib.resources as r; "
            f'print(r.files("trl.accelerate_configs") / "{preset}.yaml")'
        )
        steps.append(
            f'exec accelerate launch --config_file "$(python -c {shlex.quote(find_preset)})" '
            f"--num_processes {parallel.processes} {script}"
        )
    return ["sh", "-c", " && ".join(steps)]


def code_path() -> str:
    return f"code/{script_version()}/train.py"


def upload_code(client: HubClient, repo_id: str) -> str:
    """The commit of `repo_id` that holds this train.py, uploading it once per version."""
    repo, files = RepoRef(repo_id), {code_path(): TRAIN_SCRIPT}
    held = client.commit_holding(repo, files)
    if held is not None:
        return held
    client.ensure_repo(repo, private=True)
    return client.commit(repo, files, f"Training code {script_version()}")


@dataclass
class GpuUsage:
    """Peak memory and mean utilisation over the metrics samples read."""

    peak_bytes: int | None = None
    utilization_sum: float = 0.0
    samples: int = 0

    def add(self, sample: Mapping[str, Any]) -> None:
        gpus = sample.get("gpus")
        for gpu in gpus.values() if isinstance(gpus, dict) else ():
            used, busy = gpu.get("memory_used_bytes"), gpu.get("utilization")
            if isinstance(used, int):
                self.peak_bytes = max(used, self.peak_bytes or 0)
            if isinstance(busy, int | float):
                self.utilization_sum += busy
                self.samples += 1

    @property
    def utilization(self) -> float | None:
        return self.utilization_sum / self.samples if self.samples else None


@dataclass
class JobWatch:
    failure: str | None
    tail: list[str]
    usage: JobUsage | None


@dataclass
class Streams:
    """The job's log and metrics, each followed by a thread that reopens a dropped stream
    until the job has ended (`ended`), then reads it once more to its end."""

    client: HubClient
    job: Job
    on_event: EventSink
    progress: RunProgress = field(default_factory=lambda: RunProgress(time.monotonic))
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=LOG_TAIL_LINES))
    gpu: GpuUsage = field(default_factory=GpuUsage)
    ended: threading.Event = field(default_factory=threading.Event)
    lines_read: int = 0

    def start(self) -> list[threading.Thread]:
        readers = (self._read_log, self._read_metrics)
        threads = [threading.Thread(target=self._follow, args=(r,), daemon=True) for r in readers]
        for thread in threads:
            thread.start()
        return threads

    def _follow(self, read_once: Callable[[], None]) -> None:
        while True:
            last = self.ended.is_set()
            # A stream that fails is one that dropped: the job's stage decides what comes next.
            with contextlib.suppress(HubError):
                read_once()
            if last:
                return
            self.ended.wait(RECONNECT_S)

    def _read_log(self) -> None:
        lines: Iterable[str] = self.client.job_log_lines(self.job.namespace, self.job.id)
        for index, line in enumerate(lines):
            if index < self.lines_read:  # a reopened stream replays the log from its start
                continue
            self.lines_read += 1
            self.tail.append(line)
            self.progress.read(line)
            self.on_event(parse_progress(line) or {"log": line})

    def _read_metrics(self) -> None:
        for sample in self.client.job_metrics(self.job.namespace, self.job.id):
            self.gpu.add(sample)
            if self.ended.is_set():
                return


def watch_job(
    client: HubClient, job: Job, limits: Limits, deadline_minutes: float, on_event: EventSink
) -> JobWatch:
    """Follow the job to its end; cancel it past the scheduling deadline (minutes) or a
    limit."""
    streams = Streams(client, job, on_event)
    threads = streams.start()
    try:
        job, stop = _wait_for_end(client, job, limits, deadline_minutes, streams, on_event)
        if stop is not None:
            client.cancel_job(job.namespace, job.id)
    finally:
        streams.ended.set()
        for thread in threads:
            thread.join(DRAIN_S)
    tail = [f"  | {line}" for line in streams.tail]
    if stop is not None:
        return JobWatch(f"job {job.id} on {job.flavor} {stop}; cancelled it", tail, None)
    if job.stage != JobStage.COMPLETED:
        return JobWatch(
            f"job {job.id} on {job.flavor} ended {job.stage}: {job.message}", tail, None
        )
    return JobWatch(None, tail, usage_of(job, streams.gpu))


def _wait_for_end(
    client: HubClient,
    job: Job,
    limits: Limits,
    deadline_minutes: float,
    streams: Streams,
    on_event: EventSink,
) -> tuple[Job, str | None]:
    """The job once it ended, or as it was when a limit stopped it, with why."""
    started, running_since, stage = time.monotonic(), None, None
    while True:
        job = client.job(job.namespace, job.id)
        if job.stage != stage:
            stage = job.stage
            on_event({"stage": f"job {stage}"})
        if job.stage.is_terminal:
            return job, None
        now = time.monotonic()
        if job.stage == JobStage.SCHEDULING and now - started >= deadline_minutes * 60.0:
            return job, (
                f"found no machine within the {deadline_minutes:g} min scheduling deadline "
                "(training.scheduling_deadline_minutes): pick another flavor or raise the "
                "deadline"
            )
        if job.stage == JobStage.RUNNING:
            running_since = running_since or now
            stop = why_stop(limits, running_since, now, streams.progress.last)
            if stop is not None:
                return job, stop
        time.sleep(POLL_S)


def usage_of(job: Job, gpu: GpuUsage) -> JobUsage:
    return JobUsage(
        job_id=job.id,
        flavor=job.flavor,
        scheduling_s=job.scheduling_s or 0.0,
        running_s=job.running_s or 0.0,
        peak_gpu_memory_bytes=gpu.peak_bytes,
        gpu_utilization_pct=gpu.utilization,
    )


def record_usage(
    client: HubClient, bundle: AdapterBundle, rid: str, usage: JobUsage | None
) -> None:
    """Add the job's usage to the run's run.json (one commit): what the run cost in time."""
    location = candidate_location(bundle, rid)
    run = read_run(client, location, required=engine_for(bundle).required_files)
    if usage is None or run is None or run.record is None:
        return  # no run.json to add to: launch.py reports the missing candidate
    record = dataclasses.replace(run.record, job=usage)
    text = json.dumps(to_json(record), indent=2) + "\n"
    client.commit(
        location.repo,
        {location.file("run.json"): text.encode("utf-8")},
        f"Record job {usage.job_id}'s usage in run {rid}",
    )
