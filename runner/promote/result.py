"""What one `runner reconcile` found and did, per adapter: the job summary and the comment on
the merged PR are written from it. `runner reconcile --result FILE` saves it as JSON, so the
job that comments (another job, with another token) reads data, not logs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import InputError
from runner.promote.channels import MOVING, ChannelState
from runner.promote.reconcile import Action, AdapterState, State
from runner.workspace import split_adapter_dirname

if TYPE_CHECKING:  # apply pulls in training and evaluation; a comment job reads results only
    from runner.promote.apply import Outcome
    from runner.promote.channels import ChannelMove, ChannelPlan

SCHEMA_VERSION = 2


class Verdict(StrEnum):
    """What a reader of the merged PR wants to know first."""

    PROMOTED = "promoted"
    NOT_PROMOTED = "not promoted"  # its candidate failed the gate
    FAILED = "failed"  # reconcile could not finish this adapter
    PLANNED = "planned"  # a plan (no --apply) with something to do
    OTHER = "other"  # withdrawn, drift left alone or repaired


@dataclass(frozen=True)
class AdapterResult:
    adapter: str
    run_id: str | None
    state: State  # as observed before acting
    action: Action
    detail: str
    verdict: Verdict
    result: str = ""  # what reconcile did, when it acted
    promoted_as: str | None = None  # "<publish repo>@v<N>" once this version is on the Hub
    link: str | None = None  # that tag's page on the Hub


@dataclass(frozen=True)
class ChannelResult:
    """One release channel: where it pointed, where git wants it, and what reconcile did.
    `moved` rows are what deployments and the webhook announce."""

    adapter: str  # the adapter's name: `kwanzaa-mini`
    channel: str
    repo_id: str
    declared: str  # as git writes it: `2` or `latest`
    state: str  # as observed before acting (ChannelState's value)
    from_version: int | None
    to_version: int | None
    ok: bool
    moved: bool
    result: str
    commit: str | None = None  # the channel branch's commit after this run
    link: str | None = None  # the channel's page on the Hub
    eval: dict[str, Any] | None = None  # the eval summary of `to_version`, when it moved

    @property
    def environment(self) -> str:
        """The GitHub deployment environment of this channel."""
        return f"{self.adapter}-{self.channel}"

    @property
    def planned(self) -> bool:
        return not self.moved and ChannelState(self.state) in MOVING


@dataclass(frozen=True)
class ReconcileResult:
    applied: bool
    commit: str | None
    adapters: tuple[AdapterResult, ...]
    channels: tuple[ChannelResult, ...] = ()

    @property
    def ok(self) -> bool:
        return all(a.verdict is not Verdict.FAILED for a in self.adapters) and all(
            c.ok for c in self.channels
        )

    def moves(self) -> tuple[ChannelResult, ...]:
        return tuple(c for c in self.channels if c.moved)

    def channels_of(self, adapter: str) -> tuple[ChannelResult, ...]:
        """The channels of an adapter, by its name or a version's directory name."""
        parsed = split_adapter_dirname(adapter)
        name = parsed[0] if parsed is not None else adapter
        return tuple(c for c in self.channels if c.adapter == name)

    def of(self, adapter: str) -> AdapterResult | None:
        return next((a for a in self.adapters if a.adapter == adapter), None)

    def write(self, path: Path) -> None:
        payload = {"schema_version": SCHEMA_VERSION, **asdict(self)}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> ReconcileResult:
        try:
            payload = json.loads(path.read_text(encoding="utf-8"))
            if payload.pop("schema_version", None) != SCHEMA_VERSION:
                raise ValueError(f"expected schema_version {SCHEMA_VERSION}")
            rows = tuple(_row(row) for row in payload.pop("adapters"))
            channels = tuple(ChannelResult(**row) for row in payload.pop("channels"))
            return cls(adapters=rows, channels=channels, **payload)
        except OSError as error:
            raise InputError(f"{path}: {error.strerror}; did `runner reconcile` run?") from None
        except (ValueError, KeyError, TypeError, AttributeError) as error:
            raise InputError(
                f"{path}: not a result of `runner reconcile --result` ({error})"
            ) from None


def _row(row: dict[str, object]) -> AdapterResult:
    enums = {
        "state": State(row["state"]),
        "action": Action(row["action"]),
        "verdict": Verdict(row["verdict"]),
    }
    return AdapterResult(**{**row, **enums})  # type: ignore[arg-type]


def channel_results(
    plans: list[ChannelPlan], moves: list[ChannelMove] | None, hub_url: str
) -> tuple[ChannelResult, ...]:
    """`moves` is None for a plan (no --apply)."""
    done = {(m.plan.adapter, m.plan.channel): m for m in moves or []}
    rows = []
    for plan in plans:
        move = done.get((plan.adapter, plan.channel))
        moved = move is not None and move.moved
        rows.append(
            ChannelResult(
                plan.adapter,
                plan.channel,
                plan.repo_id,
                plan.declared,
                plan.state.value,
                plan.current,
                plan.target,
                ok=move.ok if move is not None else not plan.failed,
                moved=moved,
                result=move.result if move is not None else plan.detail,
                commit=(move.commit if move is not None else None) or plan.branch_commit,
                link=f"{hub_url.rstrip('/')}/{plan.repo_id}/tree/{plan.channel}",
                eval=move.eval if move is not None else None,
            )
        )
    return tuple(rows)


def reconcile_result(
    states: list[AdapterState],
    outcomes: list[Outcome] | None,
    commit: str | None,
    hub_url: str,
    channels: tuple[ChannelResult, ...] = (),
) -> ReconcileResult:
    """`outcomes` is None for a plan (no --apply)."""
    done = {o.adapter: o for o in outcomes or []}
    rows = []
    for state in states:
        outcome = done.get(state.adapter)
        promoted_as = outcome.promoted_as if outcome else None
        if state.state is State.PROMOTED:
            promoted_as = state.detail
        rows.append(
            AdapterResult(
                state.adapter,
                state.run_id,
                state.state,
                state.action,
                state.detail,
                _verdict(state, outcome, promoted_as, applied=outcomes is not None),
                result=outcome.result if outcome else "",
                promoted_as=promoted_as,
                link=tag_url(hub_url, promoted_as) if promoted_as else None,
            )
        )
    return ReconcileResult(outcomes is not None, commit, tuple(rows), channels)


def _verdict(
    state: AdapterState, outcome: Outcome | None, promoted_as: str | None, *, applied: bool
) -> Verdict:
    if outcome is not None and not outcome.ok:
        return Verdict.FAILED
    if promoted_as is not None:
        return Verdict.PROMOTED
    if state.state is State.CANDIDATE_FAILED or (outcome and outcome.gate_passed is False):
        return Verdict.NOT_PROMOTED
    if not applied and state.action is not Action.NONE:
        return Verdict.PLANNED
    return Verdict.OTHER


def tag_url(hub_url: str, promoted_as: str) -> str:
    repo_id, _, tag = promoted_as.partition("@")
    return f"{hub_url.rstrip('/')}/{repo_id}/tree/{tag}"
