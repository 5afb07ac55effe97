"""`runner smoke` on the terminal: what ran, the template check, the loss, the samples, then
the findings, and a loud warning when a stand-in tokenizer took the base model's place."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from runner.findings import quote
from runner.report.console import print_findings, summary_line

if TYPE_CHECKING:
    from runner.smoke.run import SmokeReport


def print_smoke(report: SmokeReport, console: Console) -> None:
    """A few lines: what ran, the template check, the loss, the samples, then findings."""
    title = Text(f"smoke {report.adapter}", style="bold")
    tokenizer = report.base_model
    if report.stand_in is not None:
        tokenizer = f"{report.stand_in} (standing in for {report.base_model})"
    title.append(f"  {tokenizer} tokenizer, tiny random weights, {report.method}")
    console.print(title, soft_wrap=True)
    for label, value in _summary_rows(report):
        console.print(Text(f"  {label:<10}") + value, soft_wrap=True)
    print_findings(console, report.findings)
    verdict = Text("passed" if report.ok else "failed", style="green" if report.ok else "bold red")
    if report.stand_in is not None:
        verdict.append(" with a stand-in tokenizer", style="bold yellow")
    console.print(Text("smoke ") + verdict + Text(": ") + summary_line(report.findings))
    if report.stand_in is not None:
        console.print(Text(_stand_in_warning(report), style="bold yellow"), soft_wrap=True)


def _stand_in_warning(report: SmokeReport) -> str:
    return (
        f"NOT CHECKED: the base model's own tokenizer ({report.base_model}: its chat template, "
        f"special tokens and token counts). {report.stand_in}'s stood in: the data and "
        "qlora.yaml were checked, and any template finding is about its template. Run "
        "`runner smoke` without --stand-in-tokenizer where the Hub has the base before you "
        "rely on this result."
    )


def _summary_rows(report: SmokeReport) -> list[tuple[str, Text]]:
    template_rules = {"smoke.template", "smoke.prompt-prefix", "smoke.record"}
    broken = sum(f.rule_id in template_rules for f in report.findings)
    template = Text(f"{report.records_checked - broken} of {report.records_checked} records ")
    whose = "the base" if report.stand_in is None else "the stand-in's"
    template.append(f"render with {whose} template, prompts are token prefixes")
    rows = [("template", template)]
    if report.losses:
        first, last = report.losses[0], report.losses[-1]
        rows.append(("training", Text(f"{report.steps} steps, loss {first:.3f} -> {last:.3f}")))
    else:
        rows.append(("training", Text("did not run", style="bold red")))
    for sample in report.samples:
        rows.append(("sample", Text(quote(sample))))
    rows += [("note", Text(note)) for note in report.notes]
    rows.append(("time", Text(f"{report.seconds:.1f} s")))
    return rows
