"""The serving check of `runner eval`: the candidate served by vLLM (the base model with the
adapter as a LoRA module) on this machine, measured the way a backend sees it, and its
answers compared with the PEFT outputs the eval scored.

Order: the serveability lint of the adapter files (an adapter the engine would load wrongly
is not served); the merged form's outputs, generated in-process before the server takes the
memory; then one server: every eval prompt one at a time (greedy: parity reads these), then
all of them at the declared concurrency (the limits are checked there), and the tokenizer of
the engine for token-level parity of both forms.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from runner.errors import RunnerError
from runner.evaluate.gate import Serving
from runner.evaluate.metrics import Metric, aggregate
from runner.evaluate.rows import OutputRow
from runner.evaluate.stats import percentile
from runner.findings import Severity
from runner.hub.client import HubClient, RepoRef
from runner.runs.config import run_generation_settings, training_settings
from runner.serving.figures import (
    DivergingItem,
    LoadFigures,
    Parity,
    Percentiles,
    ServingMeasurement,
)
from runner.serving.hardware import this_machine
from runner.serving.lint import adapter_findings, engine_lora_rank
from runner.serving.merged import merged_outputs
from runner.serving.vllm import Completion, ServerSettings, VllmServer
from runner.specs.bundle import AdapterBundle
from runner.specs.evaluation import ParitySettings
from runner.train import train as script

DIVERGING_SHOWN = 5
"""Diverging items kept per form in the report (the least agreeing)."""

ScoreOutputs = Callable[[dict[str, str]], float]
"""The primary metric of the candidate's rows with their outputs replaced (item id → text)."""


@dataclasses.dataclass(frozen=True)
class Served:
    """What the serving check found: the lint, and the measurement when it served."""

    findings: list[str]
    measurement: ServingMeasurement | None


def serve_candidate(
    bundle: AdapterBundle,
    client: HubClient,
    adapter_folder: Path,
    items: Sequence[dict[str, Any]],
    candidate_rows: Sequence[OutputRow],
    score_outputs: ScoreOutputs,
    primary: Metric,
    out_dir: Path,
) -> Served:
    """Lint, then serve and measure. `items` are train.py's eval items (id and prompt
    messages) and `candidate_rows` the PEFT outputs the eval scored for them."""
    base = bundle.adapter.base_model
    model_dir = client.snapshot(
        RepoRef(base.id), revision=base.revision, allow_patterns=script.MODEL_FILES
    )
    # The Hub cache links its files: the engine and the lint read plain copies.
    adapter_dir = _adapter_only(adapter_folder, out_dir / "served-adapter")
    errors = _lint_errors(adapter_dir, model_dir)
    if errors:
        return Served(errors, None)
    reference = {row.item_id: row.output for row in candidate_rows}
    items = [item for item in items if item["item_id"] in reference]
    generation = run_generation_settings(bundle)
    spec = bundle.evaluation.serving
    forms: list[tuple[str, dict[str, str]]] = []
    if spec.parity.merged:  # before the server: both need the memory
        forms.append(("merged weights", _merged_outputs(model_dir, adapter_dir, bundle, items)))
    hardware = this_machine()
    settings = ServerSettings(
        model_dir=model_dir,
        adapter_dir=adapter_dir,
        max_lora_rank=engine_lora_rank(bundle.training.r),
        max_model_len=_context_length(candidate_rows, generation.max_new_tokens),
        dtype="float32" if hardware.kind == "cpu" else "auto",
        max_num_seqs=spec.concurrency,
        log_path=out_dir / "vllm.log",
    )
    with VllmServer(settings) as server:
        one = [server.chat(item["messages"], generation.max_new_tokens) for item in items]
        loaded = _concurrently(server, items, generation.max_new_tokens, spec.concurrency)
        served = {item["item_id"]: c.text for item, c in zip(items, one, strict=True)}
        forms.insert(0, ("vLLM (LoRA module)", served))
        parity = [
            _parity(name, texts, reference, server.tokenize, score_outputs, primary, spec.parity)
            for name, texts in forms
        ]
        measurement = ServingMeasurement(
            engine=server.engine,
            hardware=hardware.described,
            hardware_class=hardware.hardware_class,
            start_seconds=round(server.start_seconds, 1),
            peak_memory_mb=round(server.peak_memory_bytes() / 2**20, 1),
            loads=[_figures(1, one), _figures(spec.concurrency, loaded)],
            parity=parity,
        )
    return Served([], measurement)


def _lint_errors(adapter_dir: Path, model_dir: Path) -> list[str]:
    """What would make the engine load the adapter wrongly (the base's config tells a tied
    lm_head and its vocabulary)."""
    base_config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
    return [
        f"{finding.rule_id}: {finding.message}"
        for finding in adapter_findings(adapter_dir, base_config)
        if finding.severity is Severity.ERROR
    ]


def served_figures(served: Served) -> Serving:
    """The engine's figures: latency p95 under the declared concurrency, the server's peak."""
    measured = served.measurement
    if measured is None:
        return Serving(None, None, None, served.findings)
    return Serving(measured.loads[-1].latency_ms.p95, measured.peak_memory_mb, measured)


def _adapter_only(folder: Path, target: Path) -> Path:
    """The adapter's own files in a folder of their own: the engine reads nothing else of
    the run (outputs, records) as part of the adapter."""
    target.mkdir(parents=True, exist_ok=True)
    for name in script.ADAPTER_FILES:
        shutil.copyfile(folder / name, target / name)
    return target


def _context_length(rows: Sequence[OutputRow], max_new_tokens: int) -> int:
    """Room for the longest eval prompt and a full answer (the engine refuses longer)."""
    longest = max((row.prompt_tokens for row in rows), default=0)
    return longest + max_new_tokens + 16


def _merged_outputs(
    model_dir: Path, adapter_dir: Path, bundle: AdapterBundle, items: list[dict[str, Any]]
) -> dict[str, str]:
    generation = run_generation_settings(bundle)
    try:
        return merged_outputs(model_dir, adapter_dir, training_settings(bundle), items, generation)
    except ImportError as err:  # the core install has no torch, transformers or peft
        raise RunnerError(
            "the merged-form parity needs torch, transformers and peft (the `train` extra): "
            f"install them, or set `serving.parity.merged: false` in eval.yaml ({err.name} is "
            "missing)"
        ) from err


def _concurrently(
    server: VllmServer, items: list[dict[str, Any]], max_tokens: int, concurrency: int
) -> list[Completion]:
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        return list(pool.map(lambda item: server.chat(item["messages"], max_tokens), items))


def _percentiles(values: Sequence[float]) -> Percentiles:
    return Percentiles(
        round(percentile(values, 0.5) or 0.0, 1), round(percentile(values, 0.95) or 0.0, 1)
    )


def _figures(concurrency: int, completions: Sequence[Completion]) -> LoadFigures:
    return LoadFigures(
        concurrency=concurrency,
        requests=len(completions),
        ttft_ms=_percentiles([c.ttft_ms for c in completions]),
        latency_ms=_percentiles([c.latency_ms for c in completions]),
        tokens_per_second=_percentiles(
            [c.output_tokens / (c.latency_ms / 1000) for c in completions if c.latency_ms > 0]
        ),
        output_tokens=_percentiles([float(c.output_tokens) for c in completions]),
    )


def agreement(reference: Sequence[int], served: Sequence[int], tokens: int) -> float:
    """The share of the first `tokens` positions where both outputs have the same token;
    a position only one output reaches counts as a disagreement, two empty outputs agree."""
    first, second = list(reference[:tokens]), list(served[:tokens])
    compared = max(len(first), len(second))
    if compared == 0:
        return 1.0
    return sum(a == b for a, b in zip(first, second, strict=False)) / compared


def _parity(
    form: str,
    texts: dict[str, str],
    reference: dict[str, str],
    tokenize: Callable[[str], list[int]],
    score_outputs: ScoreOutputs,
    primary: Metric,
    settings: ParitySettings,
) -> Parity:
    shares = {
        item_id: agreement(tokenize(reference[item_id]), tokenize(text), settings.tokens)
        for item_id, text in texts.items()
    }
    diverging = sorted((share, item_id) for item_id, share in shares.items() if share < 1.0)
    return Parity(
        form=form,
        tokens=settings.tokens,
        token_agreement=sum(shares.values()) / len(shares) if shares else 1.0,
        metric=primary.name,
        reference_score=score_outputs(reference),
        served_score=score_outputs(texts),
        items=len(shares),
        diverged=len(diverging),
        diverging=[
            DivergingItem(item_id, round(share, 3), reference[item_id], texts[item_id])
            for share, item_id in diverging[:DIVERGING_SHOWN]
        ],
    )


def metric_of(
    rows: Sequence[OutputRow], primary: Metric, score_rows: Callable[[list[OutputRow]], Any]
) -> ScoreOutputs:
    """Scores outputs in place of the candidate rows' own, with the eval's scorer."""

    def scored(texts: dict[str, str]) -> float:
        replaced = [
            dataclasses.replace(row, output=texts[row.item_id])
            for row in rows
            if row.item_id in texts
        ]
        return aggregate(primary, score_rows(replaced)) or 0.0

    return scored
