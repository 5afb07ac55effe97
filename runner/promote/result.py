"""What one `runner reconcile` found and did, per adapter: the job summary and the comment on
the merged PR are written from it. `runner reconcile --result FILE` saves it as JSON, so the
job that comments (another job, with another token) reads data, not logs."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from runner.errors import InputError
from runner.promote.reconcile import Action, AdapterState, State

if TYPE_CHECKING:  # apply pulls in training and evaluation; a comment job reads results only
    from runner.promote.apply import Outcome

SCHEMA_VERSION = 1


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
class ReconcileResult:
    applied: bool
    commit: str | None
    adapters: tuple[AdapterResult, ...]

    @property
    def ok(self) -> bool:
        return all(a.verdict is not Verdict.FAILED for a in self.adapters)

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
            return cls(adapters=rows, **payload)
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


def reconcile_result(
    states: list[AdapterState],
    outcomes: list[Outcome] | None,
    commit: str | None,
    hub_url: str,
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
    return ReconcileResult(outcomes is not None, commit, tuple(rows))


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
