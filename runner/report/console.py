"""Terminal output. User text goes through `Text`, never markup, so a key like
`target_modules[2]` prints as written."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from runner.errors import RunnerError, SpecError
from runner.findings import Finding, Severity
from runner.report.reconcile import dry_run_line, nothing_to_do
from runner.report.values import show_count, show_value
from runner.specs.diff import SpecDiff

if TYPE_CHECKING:  # types only: promote.apply imports training and evaluation
    from runner.evaluate.report import EvalReport
    from runner.policy.training import CostEstimate
    from runner.promote.apply import Outcome
    from runner.promote.channels import ChannelMove, ChannelPlan
    from runner.promote.reconcile import AdapterState

_STYLE = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}


def print_plain(console: Console, text: str, end: str = "\n") -> None:
    """Print `text` as written: no markup read into it, and each long line kept whole (ids,
    times, links and markdown stay intact in a CI log)."""
    console.print(Text(text), end=end, soft_wrap=True)


def print_error(console: Console, error: RunnerError) -> None:
    """A user's mistake: every finding behind it (for specs that did not load), then what
    went wrong."""
    if isinstance(error, SpecError):
        print_findings(console, error.findings)
    console.print(Text(f"error: {error}", style="bold red"), soft_wrap=True)


def finding_text(finding: Finding) -> Text:
    text = Text(finding.location + " ", style="bold")
    if finding.severity is not Severity.ERROR:
        text.append(f"{finding.severity}: ", style=_STYLE[finding.severity])
    text.append(finding.message)
    text.append(f"  [{finding.rule_id}]", style="dim")
    if finding.hint:
        text.append(f"\n    hint: {finding.hint}", style="dim")
    return text


def print_findings(console: Console, findings: Iterable[Finding]) -> None:
    for finding in findings:
        console.print(finding_text(finding), soft_wrap=True)


def summary_line(findings: list[Finding]) -> Text:
    errors = sum(f.severity is Severity.ERROR for f in findings)
    warnings = sum(f.severity is Severity.WARNING for f in findings)
    style = "bold red" if errors else ("yellow" if warnings else "green")
    return Text(f"{errors} error(s), {warnings} warning(s)", style=style)


def _delta(old: int | None, new: int | None) -> str:
    if old is None or new is None:
        return ""
    return f"{new - old:+d}" if new != old else "="


def print_diff(console: Console, diff: SpecDiff) -> None:
    """Changed fields one per line (`key: old → new`), then records per category."""
    console.print(Text(f"spec fields: {diff.old} → {diff.new}", style="bold"))
    for change in diff.fields:
        line = Text(f"  {change.key}: ")
        line.append(show_value(change.old), style="red")
        line.append(" → ")
        line.append(show_value(change.new), style="green")
        console.print(line, soft_wrap=True)
    if not diff.fields:
        console.print("  (no changes)")

    counts = Table(title="dataset records per category", title_justify="left")
    for column in ("category", "train", "", "eval", ""):
        counts.add_column(column, no_wrap=True)
    for row in diff.categories:
        counts.add_row(
            row.category,
            f"{show_count(row.old_train)} → {show_count(row.new_train)}",
            _delta(row.old_train, row.new_train),
            f"{show_count(row.old_eval)} → {show_count(row.new_eval)}",
            _delta(row.old_eval, row.new_eval),
        )
    console.print(counts)


def print_decision(console: Console, report: EvalReport) -> None:
    """The gate's decision first, then every check with the numbers behind it."""
    verdict = ("PASSES", "bold green") if report.passed else ("FAILS", "bold red")
    console.print(
        Text.assemble(f"{report.adapter} run {report.run_id} ", verdict, " the gate"),
        soft_wrap=True,
    )
    for check in report.checks:
        mark = Text("pass ", style="green") if check.passed else Text("FAIL ", style="bold red")
        console.print(Text.assemble("  ", mark, (check.name, "bold"), f": {check.detail}"))
        if check.warning:
            console.print(Text(f"       warning: {check.warning}", style="yellow"))


def print_candidate(console: Console, run_id: str, trained: bool, location: str) -> None:
    verb = "trained" if trained else "reused (already on the Hub; --force retrains)"
    console.print(
        Text.assemble(("candidate ", "bold"), (run_id, "bold green"), f" {verb}: {location}"),
        soft_wrap=True,
    )


def print_states(console: Console, states: list[AdapterState]) -> None:
    """A table of adapter, run id, state and action; the details (reasons, locations) after
    it, one line each, so a narrow terminal or CI log keeps them whole."""
    table = Table(show_lines=False)
    for column in ("adapter", "run id", "state", "action"):
        table.add_column(column, overflow="fold")  # never cut an id short
    for state in states:
        table.add_row(state.adapter, state.run_id or "—", state.state.value, state.action.value)
    console.print(table)
    for state in states:
        if state.detail:
            console.print(
                Text.assemble((state.adapter, "bold"), f": {state.detail}"), soft_wrap=True
            )


def print_outcomes(
    console: Console,
    outcomes: list[Outcome],
    states: list[AdapterState],
    moves: Sequence[ChannelMove] = (),
) -> None:
    acted = [m for m in moves if m.moved or not m.ok or m.plan.moves]
    for name, ok, result in [
        *((o.adapter, o.ok, o.result) for o in outcomes),
        *((f"{m.plan.adapter} {m.plan.channel}", m.ok, m.result) for m in acted),
    ]:
        mark = Text("ok   ", style="green") if ok else Text("FAIL ", style="bold red")
        console.print(Text.assemble(mark, (name, "bold"), f": {result}"), soft_wrap=True)
    if not outcomes and not acted:
        print_plain(console, nothing_to_do(states))


def print_channels(console: Console, plans: Sequence[ChannelPlan]) -> None:
    """Release channels: what git declares, the version each branch holds, and the state;
    the details after the table, one line each."""
    if not plans:
        return
    table = Table(show_lines=False)
    for column in ("adapter", "channel", "git", "on the Hub", "state"):
        table.add_column(column, overflow="fold")
    for plan in plans:
        holds = f"v{plan.current}" if plan.current is not None else "—"
        table.add_row(plan.adapter, plan.channel, plan.declared, holds, plan.state.value)
    console.print(table)
    for plan in plans:
        if plan.detail:
            name = f"{plan.adapter} {plan.channel}"
            console.print(Text.assemble((name, "bold"), f": {plan.detail}"), soft_wrap=True)


def print_dry_run(
    console: Console,
    states: list[AdapterState],
    estimates: list[CostEstimate | None],
    channels: Sequence[ChannelPlan] = (),
) -> None:
    """What --apply would do, with the GPU time and cost `runner plan` estimates for each
    adapter it would train."""
    print_plain(console, dry_run_line(states, estimates, channels))
