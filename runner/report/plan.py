"""A plan as markdown (the PR comment) or plain lines (the terminal)."""

from __future__ import annotations

from rich.console import Console
from rich.text import Text

from runner.plan import Plan
from runner.power import POWER
from runner.promote.channels import ChannelForecast, ChannelPlan, ChannelState
from runner.report.console import print_diff
from runner.report.markdown import cell
from runner.report.values import show_count, show_value
from runner.runs.versions import version_tag


def cost_lines(plan: Plan) -> list[str]:
    estimate = plan.estimate
    if estimate is None:
        return ["- cost: no estimate (policies/training.yaml did not load)"]
    basis = "tokenizer counts" if plan.tokens_exact else "estimated token counts"
    lines = [
        f"- tokens: {estimate.train_tokens:,} per epoch, {estimate.trained_tokens:,} trained "
        f"({basis})",
    ]
    if estimate.gpu_hours is None:
        lines.append(f"- hardware `{estimate.hardware}` has no rate in policies/training.yaml")
    else:
        lines.append(
            f"- GPU time: about {estimate.gpu_hours:.2f} h on `{estimate.hardware}`, "
            f"about ${estimate.usd:.2f} (price: {estimate.price_source})"
        )
    return lines


def memory_lines(plan: Plan) -> list[str]:
    memory = plan.memory
    if memory is None:
        return []
    if memory.needed is None:
        return ["- memory: no estimate (the base model is not in the memory planner's table)"]
    needed, capacity = memory.needed, memory.capacity
    per_gpu = " per GPU" if memory.multi_gpu else ""
    kind = "memory" if capacity is not None and not capacity.gpu else "GPU memory"
    available = (
        f"of {capacity.gb_per_device:g} GB{per_gpu}" if capacity else "(flavor's memory unknown)"
    )
    verdict = "" if memory.fits else " ❌ does not fit"
    return [
        f"- {kind}: about {needed.total_gb:.1f} GB{per_gpu} {available} on `{memory.flavor}`"
        f"{verdict} ({needed.parts()}); {memory.layout()}"
    ]


def power_lines(plan: Plan) -> list[str]:
    """What the eval set can detect against the incumbent, warned when the margin is finer."""
    power = plan.power
    if power is None:
        return []
    line = (
        f"- eval power: {power.items} eval items detect a regression of {power.detectable:.3f} "
        f"or more ({POWER:.0%} power, worst-case variance); the margin is {power.margin:g}"
    )
    if power.too_small:
        line += (
            f" ⚠️ too small for the margin: about {power.items_needed:,} items would detect it, "
            f"or widen the margin to at least {power.detectable:.2f}"
        )
    return [line]


def plan_heading(plan: Plan) -> str:
    status = "❌" if plan.errors else "✅"
    return (
        f"Merging promotes it as `{version_tag(plan.version)}` of `{plan.publish_repo}` if its "
        f"eval passes the gate. Validation: {status} {plan.errors} error(s), "
        f"{plan.warnings} warning(s)."
    )


def channel_lines(plan: Plan) -> list[str]:
    """Markdown: where each release channel is, where the merge moves it, and the promoted
    eval results of the versions a moving channel leaves and reaches."""
    forecast = plan.channels
    if forecast is None:
        return []
    lines = ["", "### Release channels", ""]
    if forecast.problem:
        return [*lines, f"The Hub could not say where the channels point: {cell(forecast.problem)}"]
    lines += ["| channel | git | on the Hub now | after the merge |", "|---|---|---|---|"]
    for p in forecast.plans:
        now = f"v{p.current}" if p.current is not None else "—"
        lines.append(f"| `{cell(p.channel)}` | `{cell(p.declared)}` | {now} | {_after(p)} |")
    for p in forecast.plans:
        if p.current is not None and p.target is not None and p.current != p.target:
            lines += ["", *comparison_lines(forecast, p.channel, p.current, p.target)]
    return lines


def _after(plan: ChannelPlan) -> str:
    target = f"v{plan.target}" if plan.target is not None else "—"
    return {
        ChannelState.IN_SYNC: f"{target} (unchanged)",
        ChannelState.CREATE: f"🚀 {target} (created)",
        ChannelState.MOVE: f"🚀 {target}",
        ChannelState.DRIFTED: f"{target} (drifted: `--repair-drift` restores it)",
        ChannelState.PENDING: f"🚀 {target} once it is promoted",
        ChannelState.EMPTY: "— (nothing promoted yet)",
        ChannelState.REFUSED: f"❌ refused: {cell(plan.detail)}",
    }[plan.state]


def comparison_lines(forecast: ChannelForecast, channel: str, now: int, after: int) -> list[str]:
    """The two versions' eval results as promoted (each version's model card), side by side."""
    old, new = forecast.evals.get(now), forecast.evals.get(after)
    head = f"**`{cell(channel)}`: v{now} → v{after}.**"
    if old is None or new is None:
        missing = ", ".join(f"v{v}" for v, found in ((now, old), (after, new)) if found is None)
        return [f"{head} No promoted eval results for {missing} to compare."]
    lines = [
        f"{head} Eval results each version was promoted with:",
        "",
        f"| metric | v{now} (now) | v{after} (after the merge) | change |",
        "|---|---|---|---|",
    ]
    for metric in sorted(old.keys() | new.keys(), key=lambda m: (m != forecast.primary_metric, m)):
        name = (
            f"**{cell(metric)}** (primary)" if metric == forecast.primary_metric else cell(metric)
        )
        before, later = old.get(metric), new.get(metric)
        change = f"{later - before:+.4f}" if before is not None and later is not None else "—"
        lines.append(f"| {name} | {_figure(before)} | {_figure(later)} | {change} |")
    return lines


def _figure(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def waiver_lines(plan: Plan) -> list[str]:
    return [
        f"- `{w.metric}`{f' ({w.category})' if w.category else ''}: {w.reason} "
        f"(approved by {w.approved_by})"
        for w in plan.waivers
    ]


def plan_markdown(plan: Plan) -> str:
    lines = [
        f"## Plan: `{plan.adapter}`",
        "",
        plan_heading(plan),
        "",
        "### Estimated cost",
        *cost_lines(plan),
        *memory_lines(plan),
        *power_lines(plan),
        "",
    ]
    if plan.diff is None:
        lines.append("First version of this adapter: no previous version to compare with.")
    else:
        lines += [
            f"### Changes since `{plan.previous}`",
            "",
            "| field | before | after |",
            "|---|---|---|",
            *(
                f"| `{cell(c.key)}` | {cell(show_value(c.old))} | {cell(show_value(c.new))} |"
                for c in plan.diff.fields
            ),
            "",
            "| category | train | eval |",
            "|---|---|---|",
            *(
                f"| {cell(c.category)} | {show_count(c.old_train)} → {show_count(c.new_train)} | "
                f"{show_count(c.old_eval)} → {show_count(c.new_eval)} |"
                for c in plan.diff.categories
            ),
        ]
    if plan.waivers:
        lines += ["", "### Waivers", "", *waiver_lines(plan)]
    lines += channel_lines(plan)
    return "\n".join(lines) + "\n"


def print_plan(console: Console, plan: Plan) -> None:
    """The plan for a terminal: the same content, changes one per line."""
    console.print(Text(f"Plan: {plan.adapter}", style="bold"))
    for line in [plan_heading(plan), *cost_lines(plan), *memory_lines(plan), *power_lines(plan)]:
        console.print(Text(line.replace("`", "")), soft_wrap=True)
    if plan.diff is None:
        console.print("First version of this adapter: no previous version to compare with.")
    else:
        print_diff(console, plan.diff)
    if plan.waivers:
        console.print(Text("Waivers", style="bold"))
        for line in waiver_lines(plan):
            console.print(Text(line.replace("`", "")), soft_wrap=True)
    for line in channel_lines(plan)[1:]:
        console.print(Text(line.replace("`", "")), soft_wrap=True)
