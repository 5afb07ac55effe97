"""The Jobs API (`/api/jobs/...`): run, list, inspect, cancel, logs and metrics as server-sent
events, and the hardware list with prices; plus the emulator's own job controls under
`/_emulator/jobs/` (scripted outcomes, the launch log). How a job runs: `jobs.py`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from runner.hub.emulator.auth import check_namespace, object_id, require_user
from runner.hub.emulator.context import Caller, Context, Ctx, readable
from runner.hub.emulator.errors import BadRequest, Forbidden, HubError
from runner.hub.emulator.faults import CONTROL_PREFIX
from runner.hub.emulator.jobs import HARDWARE, EmulatedJob, Mount, ScriptedOutcome, metrics_sample
from runner.hub.emulator.storage import Repo

router = APIRouter()
JOBS = "/api/jobs/{namespace}"
JOB = JOBS + "/{job_id}"
# The Hub's keep-alive on a job's streams; the stream polls the job this often for news.
KEEP_ALIVE_S = 30.0
_POLL_S = 0.2
_METRICS_EVERY_S = 1.0


class JobNotFound(HubError):
    status = 404

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} not found")


class JobOver(HubError):
    """The Hub's answer to a metrics stream of a job that has finished."""

    status = 406

    def __init__(self, job_id: str) -> None:
        super().__init__(f"Job {job_id} is not running")


class VolumeBody(BaseModel):
    type: Literal["bucket", "model", "dataset", "space"] = "model"
    source: str
    mountPath: Annotated[str, Field(pattern=r"^/")]
    revision: str | None = None
    readOnly: bool | None = None
    path: str | None = None


class JobBody(BaseModel):
    # Fields the emulator does not act on (expose, ssh, network, attempts...) are accepted.
    model_config = ConfigDict(extra="allow")

    dockerImage: str | None = None
    spaceId: str | None = None
    command: Annotated[list[str], Field(min_length=1)]
    arguments: list[str] = []
    environment: dict[str, Any] = {}
    secrets: dict[str, Any] | None = None
    flavor: str = "cpu-basic"
    timeoutSeconds: Annotated[int, Field(gt=0)] | None = None
    labels: dict[str, str] | None = None
    volumes: list[VolumeBody] | None = None


@router.get("/api/jobs/hardware")
def hardware() -> list[dict[str, Any]]:
    return list(HARDWARE.values())


@router.post(JOBS)
def run_job(namespace: str, body: JobBody, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    user = require_user(identity)
    check_namespace(user, namespace, "run jobs in")
    if (body.dockerImage is None) == (body.spaceId is None):
        raise BadRequest("A job needs exactly one of dockerImage and spaceId")
    if body.flavor not in HARDWARE:
        raise BadRequest(f"Unknown flavor {body.flavor!r}; expected one of {', '.join(HARDWARE)}")
    mounts = [_mount(ctx, volume, identity) for volume in body.volumes or []]
    spec = body.model_dump(exclude={"secrets", "volumes"}, exclude_none=True)
    spec["environment"] = {k: str(v) for k, v in body.environment.items()}
    secrets = {k: str(v) for k, v in (body.secrets or {}).items()}
    job = ctx.jobs.create(namespace, _owner(namespace, user.name), spec, secrets, mounts)
    return job.info()


@router.get(JOBS)
def list_jobs(
    namespace: str,
    ctx: Ctx,
    identity: Caller,
    stage: Annotated[list[str], Query()] = [],  # noqa: B006 (FastAPI copies defaults)
    label: Annotated[list[str], Query()] = [],  # noqa: B006
) -> list[dict[str, Any]]:
    _check_read(namespace, identity)
    wanted = dict(_label_pair(item) for item in label)
    return [job.info() for job in ctx.jobs.find(namespace, [s.upper() for s in stage], wanted)]


@router.get(JOB)
def inspect_job(namespace: str, job_id: str, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    return _job(ctx, namespace, job_id, identity).info()


@router.post(JOB + "/cancel")
def cancel_job(namespace: str, job_id: str, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    user = require_user(identity)
    check_namespace(user, namespace, "cancel jobs in")
    ctx.jobs.cancel(_job(ctx, namespace, job_id, identity))
    return {}


@router.get(JOB + "/logs")
async def job_logs(
    namespace: str,
    job_id: str,
    ctx: Ctx,
    identity: Caller,
    tail: Annotated[int | None, Query(ge=0)] = None,
) -> StreamingResponse:
    """`data: {"data": line, "timestamp": ...}` events from the first line (or the last
    `tail`), following new ones until the job ends (or, when scripted, until the stream is
    dropped); a keep-alive comment every 30 s of silence, as the Hub sends."""
    job = _job(ctx, namespace, job_id, identity)
    drop_after = ctx.jobs.open_log_stream(job)
    start = 0
    if tail is not None:
        start = max(0, len(job.logs.read("run", 0)[0]) - tail)

    async def events() -> AsyncIterator[str]:
        index, silent_s = start, 0.0
        while drop_after is None or index < start + drop_after:
            new, finished, _ = job.logs.read("run", index)
            if drop_after is not None:
                new = new[: start + drop_after - index]
            for event in new:
                yield f"data: {json.dumps(event)}\n\n"
            index += len(new)
            if finished and not new:
                return
            silent_s = 0.0 if new else silent_s + _POLL_S
            if silent_s >= KEEP_ALIVE_S:
                silent_s = 0.0
                yield ": keep-alive\n\n"
            await asyncio.sleep(_POLL_S)

    return StreamingResponse(events(), media_type="text/event-stream")


@router.get(JOB + "/metrics")
async def job_metrics(namespace: str, job_id: str, ctx: Ctx, identity: Caller) -> StreamingResponse:
    """`event: metric` samples once a second while the job runs; the stream ends with it. A
    job that has finished answers 406, as on the Hub."""
    job = _job(ctx, namespace, job_id, identity)
    if job.finished is not None:
        raise JobOver(job_id)

    async def events() -> AsyncIterator[str]:
        cpu_s: float | None = None
        while job.finished is None:
            if job.stage == "RUNNING":
                sample, cpu_s = metrics_sample(job, cpu_s)
                yield f"event: metric\ndata: {json.dumps(sample)}\n\n"
            await asyncio.sleep(_METRICS_EVERY_S)

    return StreamingResponse(events(), media_type="text/event-stream")


# -- the emulator's controls ---------------------------------------------------------------


class JobScriptBody(BaseModel):
    namespace: str = ""
    outcome: ScriptedOutcome
    label: str | None = None  # `key=value`: jobs with that label, in any namespace
    times: int | None = 1
    lines: int = 1  # drop_logs: lines sent before the job's first log stream closes


@router.post(CONTROL_PREFIX + "jobs/script")
def script_jobs(body: JobScriptBody, ctx: Ctx) -> dict[str, Any]:
    """How the next `times` jobs of `namespace` (or with `label`) go: stay in SCHEDULING,
    fail with ERROR at start, or drop their first log stream after `lines` lines."""
    if not body.namespace and body.label is None:
        raise BadRequest("Script jobs by namespace or by label")
    try:
        ctx.jobs.script(
            body.namespace, body.outcome, label=body.label, times=body.times, lines=body.lines
        )
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    return {}


@router.delete(CONTROL_PREFIX + "jobs/script")
def clear_job_scripts(ctx: Ctx) -> dict[str, Any]:
    ctx.jobs.clear_scripts()
    return {}


@router.get(CONTROL_PREFIX + "jobs/launches")
def job_launches(ctx: Ctx) -> list[dict[str, Any]]:
    """Every job ever created here: id, namespace, labels, flavor, createdAt."""
    return ctx.jobs.launches()


# -- helpers ---------------------------------------------------------------------------------


def _check_read(namespace: str, identity: Caller) -> None:
    user = require_user(identity)
    if not user.may_read(namespace):
        raise Forbidden(f"You don't have the rights to read the jobs of {namespace!r}")


def _job(ctx: Context, namespace: str, job_id: str, identity: Caller) -> EmulatedJob:
    _check_read(namespace, identity)
    job = ctx.jobs.get(namespace, job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


def _mount(ctx: Context, volume: VolumeBody, identity: Caller) -> Mount:
    """A repo volume as the job's owner may read it, pinned now to its revision's files."""
    if volume.type == "bucket":
        raise BadRequest("The Hub emulator has no buckets: mount a model, dataset or Space")
    repo: Repo = readable(ctx, volume.type, volume.source, identity)
    commit = ctx.store.resolve(repo, volume.revision or "main")
    prefix = f"{volume.path.strip('/')}/" if volume.path else ""
    files = {
        name[len(prefix) :]: ctx.store.blobs.path(entry.sha256)
        for name, entry in commit.tree.items()
        if name.startswith(prefix)
    }
    return Mount(volume.model_dump(exclude_none=True), volume.mountPath, files)


def _label_pair(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep:
        raise BadRequest(f"A label filter is key=value, not {text!r}")
    return key, value


def _owner(namespace: str, user: str) -> dict[str, str]:
    kind = "user" if namespace.lower() == user.lower() else "org"
    return {
        "id": object_id(namespace),
        "name": namespace,
        "type": kind,
    }
