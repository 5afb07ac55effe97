"""`runner status --spend`: what each adapter version's Hugging Face Jobs runs cost."""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console

from runner.report.console import print_plain
from runner.runs.cost import MAX_RECORDS, Spend


def spend_line(adapter: str, spend: Spend) -> str:
    if not spend.runs:
        return f"{adapter}: no Jobs runs"
    runs = f"{spend.runs} Jobs run{'' if spend.runs == 1 else 's'}"
    notes = [f"{spend.unpriced} without a known price, not counted"] if spend.unpriced else []
    if not spend.complete:
        notes.append(f"only the first {MAX_RECORDS} run records read")
    extra = f" ({'; '.join(notes)})" if notes else ""
    return f"{adapter}: ${spend.usd:.2f} over {runs}{extra}"


def print_spend(console: Console, spends: Mapping[str, Spend]) -> None:
    """One line per adapter version, then the total."""
    print_plain(
        console,
        "Spend on Hugging Face Jobs (running time at today's prices; waiting for a machine "
        "is not billed):",
    )
    for adapter, spend in spends.items():
        print_plain(console, f"  {spend_line(adapter, spend)}")
    total = sum(spend.usd for spend in spends.values())
    print_plain(console, f"  total: ${total:.2f}")
