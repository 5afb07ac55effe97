"""Markdown of a reconcile: the promote job's summary (every adapter), and the comment on the
merged PR (one per adapter it changed: was it promoted, where, and if not, what to do); and
the closing line of a reconcile that did nothing, or of a dry run."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from runner.policy.training import CostEstimate
from runner.promote.channels import ChannelPlan, ChannelState
from runner.promote.reconcile import Action, AdapterState, State
from runner.promote.result import AdapterResult, ChannelResult, ReconcileResult, Verdict
from runner.report.markdown import cell

_ICON = {
    Verdict.PROMOTED: "✅",
    Verdict.NOT_PROMOTED: "🚫",
    Verdict.FAILED: "❌",
    Verdict.PLANNED: "📋",
    Verdict.OTHER: "🔹",
}


def reconcile_summary(result: ReconcileResult, run_url: str | None = None) -> str:
    what = "applied" if result.applied else "plan only (dry run): nothing was changed"
    at = f" at `{result.commit[:12]}`" if result.commit else ""
    lines = ["## Reconcile", "", f"{what}{at}" + (f" · [run]({run_url})" if run_url else ""), ""]
    if not result.adapters:
        return "\n".join([*lines, "No adapters in git and none promoted: nothing to do.", ""])
    lines += ["| adapter | state | action | result |", "|---|---|---|---|"]
    for row in result.adapters:
        lines.append(
            f"| `{cell(row.adapter)}` | {row.state.value} | {row.action.value} "
            f"| {_ICON[row.verdict]} {_outcome(row)} |"
        )
    failed = [row.adapter for row in result.adapters if row.verdict is Verdict.FAILED]
    if failed:
        lines += ["", f"**{len(failed)} adapter(s) did not finish**: {_rerun_hint()}"]
    lines += channels_table(result.channels)
    return "\n".join(lines) + "\n"


def channels_table(rows: Sequence[ChannelResult]) -> list[str]:
    """Markdown lines: every release channel, what git says, where it was and where it is."""
    if not rows:
        return []
    lines = [
        "",
        "### Release channels",
        "",
        "| adapter | channel | git | was | now | result |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        now = row.to_version if row.moved else row.from_version
        link = f"[{_version(now)}]({row.link})" if row.link and now is not None else _version(now)
        lines.append(
            f"| `{cell(row.adapter)}` | `{cell(row.channel)}` | `{cell(row.declared)}` "
            f"| {_version(row.from_version)} | {link} | {_channel_icon(row)} {cell(row.result)} |"
        )
    return lines


def _version(version: int | None) -> str:
    return "—" if version is None else f"v{version}"


def _channel_icon(row: ChannelResult) -> str:
    if not row.ok:
        return "❌"
    if row.moved:
        return "🚀"
    return "📋" if row.planned else "🔹"


def promotion_comment(
    row: AdapterResult | None,
    adapter: str,
    commit: str | None,
    run_url: str | None,
    channels: Sequence[ChannelResult] = (),
) -> str:
    """The merged PR's comment for one adapter, with its name's release channels; `row` is
    None when the promote run wrote no result (it stopped before reaching this adapter)."""
    run = f"[the promote run]({run_url})" if run_url else "the promote run"
    merged = f" of `{commit[:12]}`" if commit else ""
    if row is None:
        return (
            f"## Promotion: `{adapter}` ❌ unknown\n\n{run}{merged} stopped before it reported "
            f"on this adapter; its log says why. {_rerun_hint()}\n"
        )
    headline = {
        Verdict.PROMOTED: f"promoted as `{row.promoted_as}`",
        Verdict.NOT_PROMOTED: "not promoted",
        Verdict.FAILED: "promotion did not finish",
        Verdict.PLANNED: f"planned: {row.action.value}",
        Verdict.OTHER: row.state.value,
    }[row.verdict]
    lines = [f"## Promotion: `{adapter}` {_ICON[row.verdict]} {headline}", ""]
    if explanation := _explain(row):
        lines += [explanation, ""]
    if moved := [c for c in channels if c.moved]:
        shown = ", ".join(
            f"`{cell(c.channel)}` "
            + (f"v{c.from_version} → " if c.from_version is not None else "created at ")
            + _version(c.to_version)
            for c in moved
        )
        lines += [f"🚀 **Release channels moved:** {shown}.", ""]
    lines += [
        "| state before | action | result |",
        "|---|---|---|",
        f"| {row.state.value} | {row.action.value} | {cell(row.result or row.detail or '—')} |",
        "",
        f"Run id `{row.run_id or '—'}` · {run}{merged}",
        *channels_table(channels),
    ]
    return "\n".join(lines) + "\n"


def _explain(row: AdapterResult) -> str:
    if row.verdict is Verdict.PROMOTED:
        where = f"[{row.promoted_as}]({row.link})" if row.link else f"`{row.promoted_as}`"
        return f"{where} holds this version; its model card carries the eval report."
    if row.verdict is Verdict.NOT_PROMOTED:
        why = row.result.removeprefix("not promoted: ") or row.detail
        return (
            f"The candidate {cell(why)}. The Hub keeps the version it had. To ship a fix, "
            "open a PR with a new version (`runner new`); a merged version is never retrained."
        )
    if row.verdict is Verdict.FAILED:
        return f"Reconcile stopped on this adapter: {cell(row.result)}. {_rerun_hint()}"
    if row.state is State.SUPERSEDED:
        return (
            f"Not promoted: {cell(row.detail)} (`main` of the publish repo never moves "
            "backwards). To ship this change, open a PR with a version above the promoted one "
            "(`runner new`)."
        )
    return _STATE_NOTES.get(row.state, "")


_STATE_NOTES = {
    State.WITHDRAWN: "This version is gone from git. Nothing on the Hub is deleted: the tag "
    "stays, and the model card says withdrawn while `main` still holds this version.",
    State.DRIFTED: "`main` of the publish repo no longer holds what was promoted (a change "
    "by hand). `runner reconcile --apply --repair-drift` restores it.",
}


def _rerun_hint() -> str:
    return (
        "Reconcile is safe to repeat (nothing is trained or promoted twice): run the Promote "
        "workflow again (Actions → Promote → Run workflow), or `runner reconcile --apply`."
    )


def _outcome(row: AdapterResult) -> str:
    text = cell(row.result or row.detail or "—")
    if row.link and row.promoted_as:
        linked = f"[{row.promoted_as}]({row.link})"
        return text.replace(row.promoted_as, linked, 1) if row.promoted_as in text else linked
    return text


def nothing_to_do(states: Sequence[AdapterState]) -> str:
    """Why a reconcile acts on nothing. "The Hub matches git" only when it does: a failed or
    superseded version stays off the Hub, and saying so keeps the claim true."""
    left = [s for s in states if s.action is Action.NONE and s.state is not State.PROMOTED]
    if not left:
        return "nothing to do: the Hub matches git"
    shown = ", ".join(f"{s.adapter} ({s.state.value})" for s in left)
    return (
        f"nothing to do: the Hub matches git except {shown}, which no reconcile promotes "
        "(the details above say why)"
    )


def dry_run_line(
    states: Sequence[AdapterState],
    training: Sequence[CostEstimate | None],
    channels: Sequence[ChannelPlan] = (),
) -> str:
    """The closing line of `runner reconcile` without --apply: nothing changed, and what
    --apply would do; `training` holds the plan's estimate of each adapter it would train."""
    steps = _adapter_steps(states, training)
    moving = Counter(plan.state for plan in channels)
    if moves := moving[ChannelState.CREATE] + moving[ChannelState.MOVE]:
        steps.append(f"move {moves} release channel(s)")
    if moving[ChannelState.DRIFTED]:
        steps.append(f"with --repair-drift, restore {moving[ChannelState.DRIFTED]} channel(s)")
    if moving[ChannelState.REFUSED]:
        steps.append(f"refuse {moving[ChannelState.REFUSED]} channel(s) (see above)")
    if not steps:
        return f"dry run: nothing changed, and `--apply` has {nothing_to_do(states)}"
    return f"dry run: nothing changed. `--apply` would {_and(steps)}"


def _adapter_steps(
    states: Sequence[AdapterState], training: Sequence[CostEstimate | None]
) -> list[str]:
    counts = Counter(state.action for state in states)
    evaluated = counts[Action.TRAIN] + counts[Action.EVALUATE]
    steps = []
    if counts[Action.TRAIN]:
        steps.append(f"train {_adapters(counts[Action.TRAIN])} ({_training_cost(training)})")
    if evaluated:  # a gate decides, so the promotions are a bound
        steps.append(f"evaluate {evaluated}")
        steps.append(f"promote up to {evaluated + counts[Action.PROMOTE]} (those that pass)")
    elif counts[Action.PROMOTE]:
        steps.append(f"promote {counts[Action.PROMOTE]}")
    if counts[Action.WITHDRAW]:
        steps.append(f"mark {counts[Action.WITHDRAW]} removed version(s) withdrawn")
    if counts[Action.REPAIR]:
        steps.append(
            f"with --repair-drift, restore {counts[Action.REPAIR]} drifted publish repo(s)"
        )
    return steps


def _training_cost(estimates: Sequence[CostEstimate | None]) -> str:
    """The plans' GPU hours and dollars, summed; an adapter without a rate is named as such."""
    priced = [e for e in estimates if e is not None and e.gpu_hours is not None]
    parts = []
    if priced:
        hours = sum(e.gpu_hours or 0.0 for e in priced)
        usd = sum(e.usd or 0.0 for e in priced)
        hardware = ", ".join(sorted({e.hardware for e in priced}))
        parts.append(f"≈{hours:.2f} GPU-hours, ≈${usd:.2f} on {hardware} per `runner plan`")
    if unpriced := len(estimates) - len(priced):
        parts.append(f"{unpriced} with no rate for its hardware in policies/training.yaml")
    return "; ".join(parts)


def _adapters(count: int) -> str:
    return f"{count} adapter" if count == 1 else f"{count} adapters"


def _and(steps: list[str]) -> str:
    return steps[0] if len(steps) == 1 else ", ".join(steps[:-1]) + " and " + steps[-1]
