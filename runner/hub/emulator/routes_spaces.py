"""Space settings and lifecycle: secrets, variables, hardware, runtime, restart, pause, logs.

Secrets and variables reach the app's environment at its next start, not immediately; new
hardware restarts a live Space onto it, and only `restart` starts a paused one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from runner.hub.emulator.context import Caller, Context, Ctx, readable, writable
from runner.hub.emulator.errors import BadRequest, EntryNotFound
from runner.hub.emulator.space_logs import KINDS, LogKind
from runner.hub.emulator.space_settings import HARDWARE, Key, KeyValue, SleepTime
from runner.hub.emulator.storage import Repo

router = APIRouter()
SPACE = "/api/spaces/{namespace}/{name}"


def _space(ctx: Context, namespace: str, name: str, identity: Caller, *, write: bool) -> Repo:
    check = writable if write else readable
    repo = check(ctx, "space", f"{namespace}/{name}", identity)
    if repo.space is None:
        raise BadRequest(f"{repo.id} has no Space settings")
    return repo


def _set_key(ctx: Context, repo: Repo, kind: str, item: KeyValue) -> None:
    with ctx.store.lock:
        assert repo.space is not None
        repo.space.setdefault(kind, {})[item.key] = item.stored()
        ctx.store.save(repo)


def _delete_key(ctx: Context, repo: Repo, kind: str, key: str) -> None:
    with ctx.store.lock:
        assert repo.space is not None
        repo.space.setdefault(kind, {}).pop(key, None)
        ctx.store.save(repo)


def _variables(repo: Repo) -> dict[str, Any]:
    return dict((repo.space or {}).get("variables", {}))


@router.get(SPACE + "/secrets")
def get_secrets(namespace: str, name: str, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    repo = _space(ctx, namespace, name, identity, write=True)
    secrets = (repo.space or {}).get("secrets", {})
    # Values never leave the Hub once set.
    return {
        k: {"description": v.get("description"), "updatedAt": v.get("updatedAt")}
        for k, v in secrets.items()
    }


@router.post(SPACE + "/secrets")
def add_secret(
    namespace: str, name: str, body: KeyValue, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    _set_key(ctx, _space(ctx, namespace, name, identity, write=True), "secrets", body)
    return {}


@router.delete(SPACE + "/secrets")
def delete_secret(
    namespace: str, name: str, body: Key, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    _delete_key(ctx, _space(ctx, namespace, name, identity, write=True), "secrets", body.key)
    return {}


@router.get(SPACE + "/variables")
def get_variables(namespace: str, name: str, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    return _variables(_space(ctx, namespace, name, identity, write=False))


@router.post(SPACE + "/variables")
def add_variable(
    namespace: str, name: str, body: KeyValue, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = _space(ctx, namespace, name, identity, write=True)
    _set_key(ctx, repo, "variables", body)
    return _variables(repo)


@router.delete(SPACE + "/variables")
def delete_variable(
    namespace: str, name: str, body: Key, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    repo = _space(ctx, namespace, name, identity, write=True)
    _delete_key(ctx, repo, "variables", body.key)
    return _variables(repo)


@router.get(SPACE + "/runtime")
def get_runtime(namespace: str, name: str, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    return ctx.spaces.runtime(_space(ctx, namespace, name, identity, write=False))


class HardwareBody(BaseModel):
    flavor: str
    sleepTimeSeconds: SleepTime | None = None


@router.post(SPACE + "/hardware")
def request_hardware(
    namespace: str, name: str, body: HardwareBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    if body.flavor not in HARDWARE:
        raise BadRequest(f"Unknown hardware {body.flavor!r}; expected one of {', '.join(HARDWARE)}")
    repo = _space(ctx, namespace, name, identity, write=True)
    with ctx.store.lock:
        assert repo.space is not None
        repo.space["hardware"] = body.flavor
        if body.sleepTimeSeconds is not None:
            repo.space["sleepTime"] = body.sleepTimeSeconds
        ctx.store.save(repo)
    ctx.spaces.on_hardware(repo)
    return ctx.spaces.runtime(repo)


def _set_setting(
    ctx: Context, namespace: str, name: str, identity: Caller, key: str, value: Any
) -> dict[str, Any]:
    """Store one Space setting that needs no restart, and answer with the runtime."""
    repo = _space(ctx, namespace, name, identity, write=True)
    with ctx.store.lock:
        assert repo.space is not None
        repo.space[key] = value
        ctx.store.save(repo)
    return ctx.spaces.runtime(repo)


class SleepBody(BaseModel):
    seconds: SleepTime


@router.post(SPACE + "/sleeptime")
def set_sleep_time(
    namespace: str, name: str, body: SleepBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    return _set_setting(ctx, namespace, name, identity, "sleepTime", body.seconds)


class DevModeBody(BaseModel):
    enabled: bool


@router.post(SPACE + "/dev-mode")
def set_dev_mode(
    namespace: str, name: str, body: DevModeBody, ctx: Ctx, identity: Caller
) -> dict[str, Any]:
    return _set_setting(ctx, namespace, name, identity, "devMode", body.enabled)


@router.post(SPACE + "/restart")
def restart(namespace: str, name: str, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    repo = _space(ctx, namespace, name, identity, write=True)
    ctx.spaces.start(repo)
    return ctx.spaces.runtime(repo)


@router.post(SPACE + "/pause")
def pause(namespace: str, name: str, ctx: Ctx, identity: Caller) -> dict[str, Any]:
    repo = _space(ctx, namespace, name, identity, write=True)
    ctx.spaces.pause(repo)
    return ctx.spaces.runtime(repo)


@router.get(SPACE + "/logs/{kind}")
async def logs(
    namespace: str, name: str, kind: str, ctx: Ctx, identity: Caller
) -> StreamingResponse:
    """Server-sent events, `data: {"data": line, "timestamp": ...}`, as the client parses them.
    The stream ends when that log is finished (build done, app exited or paused); while the
    app runs it follows new lines. As on the Hub, a paused Space has no run log: it went with
    the app's container (a stream that was following it still gets its last lines)."""
    if kind not in KINDS:
        raise EntryNotFound(f"logs/{kind}")
    repo = _space(ctx, namespace, name, identity, write=False)
    book = ctx.spaces.logs(repo.id)
    log_kind: LogKind = "build" if kind == "build" else "run"

    async def events() -> AsyncIterator[str]:
        index, epoch = 0, None
        while True:
            new, finished, epoch = book.read(log_kind, index, epoch)
            for event in new:
                yield f"data: {json.dumps(event)}\n\n"
            index += len(new)
            if finished:
                return
            await asyncio.sleep(0.2)

    return StreamingResponse(events(), media_type="text/event-stream")
