"""The emulator's own control API under `/_emulator/` (not part of the Hub): faults, Space
scripts and the request log, for tests that drive the emulator from another process."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, Field, NonNegativeFloat, NonNegativeInt

from runner.hub.emulator import access
from runner.hub.emulator.accounts import AccountsSpec
from runner.hub.emulator.context import Ctx
from runner.hub.emulator.errors import BadRequest, RepoNotFound
from runner.hub.emulator.faults import CONTROL_PREFIX, FaultMode
from runner.hub.emulator.spaces import Outcome

router = APIRouter(prefix=CONTROL_PREFIX.rstrip("/"))


class FaultBody(BaseModel):
    method: str | None = None
    path: str
    # An injected fault is an error answer; a status outside 100-599 cannot even be sent.
    status: Annotated[int, Field(ge=400, le=599)] = 500
    times: int | None = 1
    retry_after: NonNegativeInt | None = None
    mode: FaultMode = "status"
    delay: NonNegativeFloat = 30.0
    share: float | None = None  # mode "random": the share of matching requests hit
    seed: int | None = None  # mode "random": the RNG's seed


@router.post("/faults")
def add_fault(body: FaultBody, ctx: Ctx) -> dict[str, Any]:
    try:
        return ctx.faults.add(**body.model_dump()).to_json()
    except (ValueError, re.error) as exc:  # re.error: the path is not a regular expression
        raise BadRequest(f"Invalid fault: {exc}") from exc


@router.get("/faults")
def list_faults(ctx: Ctx) -> list[dict[str, Any]]:
    return ctx.faults.rules()


@router.delete("/faults")
def clear_faults(ctx: Ctx) -> dict[str, Any]:
    ctx.faults.clear()
    return {}


@router.post("/accounts")
def add_accounts(body: AccountsSpec, ctx: Ctx) -> dict[str, Any]:
    """Register users (with their org roles) and their tokens."""
    try:
        ctx.accounts.add(body)
    except ValueError as exc:
        raise BadRequest(f"Invalid accounts: {exc}") from exc
    return {}


class AccessBody(BaseModel):
    repo_id: str
    user: str
    repo_type: Literal["model", "dataset", "space"] = "model"


@router.post("/access")
def ask_access(body: AccessBody, ctx: Ctx) -> dict[str, Any]:
    """`user` accepted a gated repo's terms on its web page (the Hub has no API for it)."""
    repo = ctx.store.get(body.repo_type, body.repo_id)
    if repo is None:
        raise RepoNotFound(body.repo_id)
    return {"status": access.ask_access(ctx, repo, body.user)}


class ScriptBody(BaseModel):
    repo_id: str
    outcome: Outcome
    stage: str = "BUILDING"
    times: int | None = None


@router.post("/spaces/script")
def script_space(body: ScriptBody, ctx: Ctx) -> dict[str, Any]:
    try:
        ctx.spaces.script(body.repo_id, body.outcome, body.stage, body.times)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    return {}


@router.get("/requests")
def list_requests(ctx: Ctx) -> list[dict[str, Any]]:
    return ctx.log.entries()


@router.delete("/requests")
def clear_requests(ctx: Ctx) -> dict[str, Any]:
    ctx.log.clear()
    return {}


@router.get("/health")
def health(ctx: Ctx) -> dict[str, Any]:
    return {"ok": True, "repos": len(ctx.store.repos())}
