"""Markdown of a reconcile: the promote job's summary (every adapter), and the comment on the
merged PR (one per adapter it changed: was it promoted, where, and if not, what to do)."""

from __future__ import annotations

from runner.promote.reconcile import State
from runner.promote.result import AdapterResult, ReconcileResult, Verdict
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
    return "\n".join(lines) + "\n"


def promotion_comment(
    row: AdapterResult | None, adapter: str, commit: str | None, run_url: str | None
) -> str:
    """The merged PR's comment for one adapter; `row` is None when the promote run wrote
    no result (it stopped before reaching this adapter)."""
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
    lines += [
        "| state before | action | result |",
        "|---|---|---|",
        f"| {row.state.value} | {row.action.value} | {cell(row.result or row.detail or '—')} |",
        "",
        f"Run id `{row.run_id or '—'}` · {run}{merged}",
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
