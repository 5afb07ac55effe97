"""`runner eval`: fetch a candidate from the Hub, verify its adapter against the spec, score
its eval outputs, apply the gate and build the report.

The candidate's outputs were generated where the GPU was (inside the run); with
`generate_locally` (or for an engine whose runs bring none, such as AutoTrain) they are
generated here instead, with train.py's own generation code.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.engines import engine_for
from runner.errors import RunnerError
from runner.evaluate import SCORERS, load_context, read_rows, score
from runner.evaluate.cost import run_ledger
from runner.evaluate.gate import decide, serving_from
from runner.evaluate.metrics import ItemScores
from runner.evaluate.records import eval_records
from runner.evaluate.report import (
    EvalReport,
    flip_list,
    loss_points,
    metric_rows,
    observed_power,
    worst_items,
)
from runner.evaluate.rows import OutputRow
from runner.evaluate.serving import metric_of, serve_candidate, served_figures
from runner.hashing import sha256_of
from runner.hub.client import HubClient, NotFoundError
from runner.runs.location import CandidateLocation, candidate_location
from runner.runs.record import read_run
from runner.runs.run_id import run_id as current_run_id
from runner.specs.bundle import AdapterBundle
from runner.train.train import ADAPTER_FILES, RunResult, eval_items


@dataclass(frozen=True)
class CandidateFiles:
    location: CandidateLocation
    folder: Path
    """A local folder holding the run's files (adapter, outputs, records)."""
    record: RunResult
    metrics: dict[str, Any]


def fetch_candidate(
    client: HubClient, location: CandidateLocation, required: Sequence[str]
) -> CandidateFiles:
    """The candidate at `location`, holding at least `required` (its engine's files)."""
    run = read_run(client, location, required=required)
    if run is None:
        raise RunnerError(
            f"no run {location.run_id} at {location}: train it first "
            "(`runner train ADAPTER`), or pass the run id of an existing one with --run"
        )
    if not run.is_candidate:
        raise RunnerError(f"run {location.run_id} at {location} is not a candidate: {run.error}")
    snapshot = client.snapshot(location.repo, allow_patterns=[f"{location.path}/*"])
    folder = snapshot / location.path
    metrics_file = folder / "metrics.json"
    metrics = json.loads(metrics_file.read_text(encoding="utf-8")) if metrics_file.is_file() else {}
    return CandidateFiles(location, folder, run.record, metrics)


def verify_adapter(bundle: AdapterBundle, files: CandidateFiles) -> list[str]:
    """What was checked, one line each; a RunnerError listing every mismatch otherwise."""
    problems, checked = [], []
    recorded = files.record.sha256
    for name in ADAPTER_FILES:
        path = files.folder / name
        if name in recorded:
            if sha256_of(path) != recorded[name]:
                problems.append(f"{name}: sha256 differs from the run's record (altered upload?)")
            else:
                checked.append(f"{name}: sha256 {recorded[name][:12]}… matches run.json")
    config = json.loads((files.folder / "adapter_config.json").read_text(encoding="utf-8"))
    base, training = bundle.adapter.base_model, bundle.training
    expected = {
        "base_model_name_or_path": base.id,
        "revision": base.revision,
        "r": training.r,
        "lora_alpha": training.lora_alpha,
        "target_modules": sorted(training.target_modules),
    }
    for key, want in expected.items():
        got = config.get(key)
        got = sorted(got) if isinstance(got, list) else got
        if got != want:
            problems.append(f"adapter_config.json {key}: {got!r}, the spec says {want!r}")
    if problems:
        raise RunnerError(
            f"the candidate at {files.location} does not match {bundle.path}:\n"
            + "\n".join(f"  - {p}" for p in problems)
        )
    return [*checked, f"adapter_config.json matches the spec ({', '.join(expected)})"]


def generation_peak_memory(metrics: dict[str, Any]) -> int | None:
    """Peak memory while generating (what serving costs); runs before it was measured
    separately report the whole process's peak."""
    measured = (metrics.get("generation") or {}).get("peak_memory") or metrics.get("peak_memory")
    return (measured or {}).get("bytes")


def evaluate_candidate(
    bundle: AdapterBundle,
    repo_root: Path,
    client: HubClient,
    *,
    run_id: str | None = None,
    generate_locally: bool = False,
    out_dir: Path,
) -> EvalReport:
    rid = run_id or current_run_id(bundle, repo_root)
    engine = engine_for(bundle)
    files = fetch_candidate(client, candidate_location(bundle, rid), engine.required_files)
    verified = verify_adapter(bundle, files)
    outputs = files.folder / "eval_outputs.jsonl"
    serving_memory = generation_peak_memory(files.metrics)
    out_dir.mkdir(parents=True, exist_ok=True)
    if generate_locally or not engine.makes_eval_outputs:
        from runner.evaluate.generate import generate_outputs

        generated = generate_outputs(bundle, repo_root, client, files.folder, out_dir)
        outputs, serving_memory = generated.outputs, generated.peak_memory_bytes
    return build_report(
        bundle, repo_root, rid, outputs, files, verified, serving_memory, client, out_dir
    )


def build_report(
    bundle: AdapterBundle,
    repo_root: Path,
    rid: str,
    outputs: Path,
    files: CandidateFiles,
    verified: list[str],
    peak_memory_bytes: int | None,
    client: HubClient,
    out_dir: Path,
) -> EvalReport:
    context = load_context(repo_root, bundle.dataset.answer_schema)
    rows = read_rows(outputs)
    records = eval_records(bundle, repo_root)
    scores = score(bundle.adapter.task, rows, records, context)
    metrics = SCORERS[bundle.adapter.task].metrics
    primary = next(metric for metric in metrics if metric.name == bundle.evaluation.primary_metric)
    candidate_rows = [row for row in rows if row.role == "candidate"]
    serving = serving_from([row.latency_ms for row in candidate_rows], peak_memory_bytes)
    if bundle.evaluation.serving.engine_check:

        def score_rows(replaced: list[OutputRow]) -> list[ItemScores]:
            return score(bundle.adapter.task, replaced, records, context)["candidate"]

        served = serve_candidate(
            bundle,
            client,
            files.folder,
            eval_items(records, None),
            candidate_rows,
            metric_of(candidate_rows, primary, score_rows),
            primary,
            out_dir,
        )
        serving = served_figures(served)
    decision = decide(bundle.evaluation, metrics, scores, serving)
    thresholds = bundle.evaluation.thresholds
    categories = [
        row
        for category in sorted({r.get("category") for r in records if r.get("category")})
        for row in metric_rows(metrics, scores, thresholds.categories.get(category, {}), category)
    ]
    texts = {row.item_id: row.output for row in candidate_rows}
    return EvalReport(
        adapter=bundle.dirname,
        run_id=rid,
        task=bundle.adapter.task,
        primary_metric=bundle.evaluation.primary_metric,
        passed=decision.passed,
        checks=decision.checks,
        overall=metric_rows(metrics, scores, thresholds.overall),
        categories=categories,
        serving=serving,
        loss_history=loss_points(files.metrics),
        worst_items=worst_items(scores["candidate"], texts),
        links={"candidate": _tree_url(client, files.location)},
        verification=verified,
        items=len(records),
        cost=run_ledger(bundle, repo_root, files.record, client),
        flips=flip_list(primary, scores, rows, records),
        power=observed_power(bundle.evaluation, primary, scores),
    )


def _tree_url(client: HubClient, location: CandidateLocation) -> str:
    return f"{client.endpoint}/{location.repo_id}/tree/main/{location.path}"


REPORT_JSON, REPORT_MD = "eval_report.json", "eval_report.md"


def evaluate_and_publish(
    bundle: AdapterBundle,
    repo_root: Path,
    client: HubClient,
    render: Callable[[EvalReport], str],
    *,
    run_id: str,
    out_dir: Path,
    generate_locally: bool = False,
    publish: bool = True,
) -> tuple[EvalReport, str]:
    """Evaluate run `run_id`'s candidate and render its report with `render` (the PR comment;
    passed in because the renderers sit above evaluation). Both go into `out_dir`, then with
    `publish` next to the candidate on the Hub. The report and its markdown."""
    report = evaluate_candidate(
        bundle,
        repo_root,
        client,
        run_id=run_id,
        generate_locally=generate_locally,
        out_dir=out_dir,
    )
    markdown = render(report)
    report.write(out_dir / REPORT_JSON)
    (out_dir / REPORT_MD).write_text(markdown, encoding="utf-8")
    if publish:
        publish_report(client, candidate_location(bundle, run_id), report, markdown)
    return report, markdown


def publish_report(
    client: HubClient, location: CandidateLocation, report: EvalReport, markdown: str
) -> None:
    """Put the report next to the candidate: what the PR showed is what merge promotes."""
    outcome = "passed" if report.passed else "failed"
    client.commit(
        location.repo,
        {
            location.file(REPORT_JSON): report.to_json().encode("utf-8"),
            location.file(REPORT_MD): markdown.encode("utf-8"),
        },
        f"Eval report of run {location.run_id}: {outcome}",
    )


def read_report(client: HubClient, location: CandidateLocation) -> EvalReport | None:
    """The report published next to the candidate, or None when it was not evaluated."""
    try:
        return EvalReport.read(client.download(location.repo, location.file(REPORT_JSON)))
    except NotFoundError:
        return None
