"""The promoted model card: `README.md` in the publish repo.

The card is the version's own `README.md` (its front matter dropped) followed by generated
sections: base model, dataset and its hashes, training config, evaluation, training cost (a
Hugging Face Jobs run's estimate against actual), provenance, usage and serving (vLLM, with
what the serving check measured and on which hardware). Its YAML metadata is built with
huggingface_hub's own `ModelCardData` and `EvalResult`, so the `model-index` reads back through
`ModelCard` to the same numbers.
Output is deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from runner.evaluate.report import EvalReport, MetricRow
from runner.repofiles import read_regular_bytes
from runner.runs.cost import CostLedger, ledger_rows
from runner.runs.versions import version_tag
from runner.serving.figures import LoadFigures, Parity, ServingMeasurement
from runner.serving.lint import engine_lora_rank
from runner.specs.bundle import AdapterBundle
from runner.specs.dataset import DatasetFile, DatasetManifest
from runner.specs.training import TrainingSpec

TASK_TYPE = "text-generation"
DECIMALS = 4
"""Eval results are written to the `model-index` rounded to this many decimals."""
DASH = "\u2014"
WITHDRAWN_TAG = "withdrawn"
WITHDRAWN_MARKER = "<!-- adapter-gitops:withdrawn -->"
CHANNELS_MARKER = "<!-- adapter-gitops:channels -->"
_FRONT_MATTER = re.compile(r"\A\s*---[ \t]*\r?\n.*?\r?\n---[ \t]*(?:\r?\n|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Provenance:
    """Where a promoted version came from."""

    git_commit: str
    pr_number: int | None
    run_id: str
    runner_version: str


def render_model_card(
    bundle: AdapterBundle,
    report: EvalReport,
    provenance: Provenance,
    *,
    dataset_commit: str | None = None,
    license: str | None = None,
) -> str:
    """The model card (`README.md`) of a promoted adapter version."""
    data = card_data(bundle, report, dataset_commit=dataset_commit, license=license)
    sections = [
        own_readme(bundle),
        base_model_section(bundle),
        dataset_section(bundle, dataset_commit),
        training_section(bundle.training),
        evaluation_section(report),
        cost_section(report.cost),
        provenance_section(provenance),
        usage_section(bundle),
        serving_section(bundle, report.serving.measured),
    ]
    body = "\n\n".join(section.strip("\n") for section in sections if section.strip())
    return f"---\n{data.to_yaml()}\n---\n\n{body}\n"


def withdrawn_card(card_text: str, reason: str) -> str:
    """The same card marked withdrawn: a notice on top of the body and the `withdrawn` tag.
    Every other piece of metadata, eval results included, is kept. Withdrawing again
    replaces the notice instead of stacking a second one."""
    card = ModelCard(card_text)
    tags = list(card.data.tags or [])
    if WITHDRAWN_TAG not in tags:
        tags.append(WITHDRAWN_TAG)
    card.data.tags = tags
    body = _without_notice(card.text).lstrip("\n")
    card.text = f"\n{withdrawn_notice(reason)}\n\n{body}"
    return str(card)


def withdrawn_notice(reason: str) -> str:
    lines = [line.strip() for line in reason.strip().splitlines()] or [""]
    quoted = "\n".join(f"> {line}".rstrip() for line in lines)
    return (
        f"{WITHDRAWN_MARKER}\n> [!CAUTION]\n> **Withdrawn.** Do not use this version.\n>\n"
        f"{quoted}\n{WITHDRAWN_MARKER}"
    )


def _without_notice(body: str, marker: str = WITHDRAWN_MARKER) -> str:
    start = body.find(marker)
    end = body.find(marker, start + 1)
    if start == -1 or end == -1:
        return body
    return body[:start] + body[end + len(marker) :]


def with_channels_section(
    card_text: str, channels: Mapping[str, int | None], version: int | None
) -> str:
    """The card with its release channels section (channel -> version, `version` being the
    one this card describes) at the end, replacing the one it had; the rest is unchanged."""
    body = without_channels_section(card_text).rstrip("\n")
    return f"{body}\n\n{channels_section(channels, version)}\n"


def without_channels_section(card_text: str) -> str:
    """The card as promoted: what drift is judged on, since channels move after promotion."""
    stripped = _without_notice(card_text, CHANNELS_MARKER)
    return stripped if stripped == card_text else stripped.rstrip("\n") + "\n"


def channels_section(channels: Mapping[str, int | None], version: int | None) -> str:
    rows = [
        [
            _code(channel),
            DASH if target is None else f"v{target}" + (" (this card)" * (target == version)),
            _code(f'revision="{channel}"'),
        ]
        for channel, target in sorted(channels.items())
    ]
    here = [c for c, target in sorted(channels.items()) if target == version and version]
    on = ", ".join(_code(c) for c in here) if here else "no channel"
    return (
        f"{CHANNELS_MARKER}\n## Release channels\n\n"
        f"This card is v{version}'s; {on} points at it. Each channel is a branch of this repo "
        "holding exactly its version's promoted files, moved by a change to the adapters "
        "repository's `channels/` file (a rollback is a pull request).\n\n"
        + table(["channel", "version", "load it with"], rows)
        + f"\n{CHANNELS_MARKER}"
    )


# -- metadata -------------------------------------------------------------------------------


def card_data(
    bundle: AdapterBundle,
    report: EvalReport,
    *,
    dataset_commit: str | None = None,
    license: str | None = None,
) -> ModelCardData:
    adapter, dataset = bundle.adapter, bundle.dataset
    return ModelCardData(
        base_model=adapter.base_model.id,
        base_model_revision=adapter.base_model.revision,
        library_name="peft",
        pipeline_tag=TASK_TYPE,
        license=license,
        tags=["peft", bundle.training.method, adapter.task],
        datasets=[dataset.hub_repo],
        model_name=bundle.dirname,
        eval_results=eval_results(bundle, report.overall, dataset_commit) or None,
    )


def eval_results(
    bundle: AdapterBundle, rows: Sequence[MetricRow], dataset_commit: str | None
) -> list[EvalResult]:
    """One `EvalResult` per overall metric the candidate has a value for."""
    dataset = bundle.dataset
    return [
        EvalResult(
            task_type=TASK_TYPE,
            dataset_type=dataset.hub_repo,
            dataset_name=f"{dataset.name} {dataset.version}",
            dataset_split="eval",
            dataset_revision=dataset_commit,
            metric_type=row.metric,
            metric_value=round(row.candidate, DECIMALS),
            verified=False,
        )
        for row in rows
        if row.candidate is not None
    ]


# -- body -----------------------------------------------------------------------------------


def own_readme(bundle: AdapterBundle) -> str:
    """The version's own README.md, without any front matter of its own."""
    path = bundle.directory / "README.md"
    if not os.path.lexists(path):
        return f"# {bundle.dirname}\n\n{bundle.adapter.description}"
    # Published as the model card: a link (to /proc/self/environ, say) is refused, not followed.
    raw = read_regular_bytes(path, shown=f"adapters/{bundle.dirname}/README.md")
    return _FRONT_MATTER.sub("", raw.decode("utf-8", errors="replace"), count=1).strip()


def base_model_section(bundle: AdapterBundle) -> str:
    base = bundle.adapter.base_model
    link = f"https://huggingface.co/{base.id}/tree/{base.revision}"
    return (
        "## Base model\n\n"
        f"[`{base.id}`](https://huggingface.co/{base.id}) at revision "
        f"[`{base.revision}`]({link})."
    )


def dataset_section(bundle: AdapterBundle, dataset_commit: str | None) -> str:
    dataset = bundle.dataset
    rows = [
        ["Repo", f"[`{dataset.hub_repo}`](https://huggingface.co/datasets/{dataset.hub_repo})"],
        ["Version", f"`{dataset.version}`"],
        ["Commit", f"`{dataset_commit}`" if dataset_commit else DASH],
        ["License", _license_cell(dataset)],
    ]
    files = [
        _file_row(split, file)
        for split, file in (("train", dataset.files.train), ("eval", dataset.files.eval))
    ]
    return (
        f"## Dataset\n\n{table(['Field', 'Value'], rows)}\n\n"
        f"{table(['Split', 'File', 'Examples', 'sha256'], files)}"
    )


def _license_cell(dataset: DatasetManifest) -> str:
    """The Hub's id, or for `other` the license the manifest names, linked to its text."""
    if dataset.license_name and dataset.license_link:
        return f"[`{dataset.license_name}`]({dataset.license_link})"
    return f"`{dataset.license}`"


def _file_row(split: str, file: DatasetFile) -> list[str]:
    examples = str(file.examples) if file.examples is not None else DASH
    sha = f"`{file.sha256}`" if file.sha256 else DASH
    return [split, f"`{file.path}`", examples, sha]


def training_section(spec: TrainingSpec) -> str:
    quant = spec.quantization
    quantization = (
        f"4-bit {quant.bnb_4bit_quant_type}, double quant "
        f"{'on' if quant.bnb_4bit_use_double_quant else 'off'}, "
        f"{quant.bnb_4bit_compute_dtype} compute"
        if quant is not None and quant.load_in_4bit
        else "none (full precision)"
    )
    length = f"{spec.max_steps} steps" if spec.max_steps else f"{spec.num_train_epochs:g} epochs"
    batch, accumulation = spec.per_device_train_batch_size, spec.gradient_accumulation_steps
    schedule = f"{spec.learning_rate:g}, `{spec.lr_scheduler_type}`, warmup {spec.warmup_ratio:g}"
    rows = [
        ["Method", f"`{spec.method}`"],
        ["LoRA", f"r {spec.r}, alpha {spec.lora_alpha}, dropout {spec.lora_dropout:g}"],
        ["Target modules", ", ".join(f"`{m}`" for m in spec.target_modules)],
        ["Modules saved in full", ", ".join(f"`{m}`" for m in spec.modules_to_save) or DASH],
        ["Quantization", quantization],
        ["Length", length],
        ["Learning rate", schedule],
        ["Batch", f"{batch} x {accumulation} accumulation = {batch * accumulation}"],
        ["Optimizer", f"`{spec.optim}`"],
        ["Max sequence length", str(spec.max_seq_length)],
        ["Packing", "yes" if spec.packing else "no"],
        ["Seed", str(spec.seed)],
    ]
    return f"## Training\n\n{table(['Setting', 'Value'], rows)}"


def evaluation_section(report: EvalReport) -> str:
    failed = [check.name for check in report.checks if not check.passed]
    if report.passed:
        decision = f"**Gate: passed** all {len(report.checks)} checks."
    else:
        decision = f"**Gate: failed** {len(failed)} of {len(report.checks)} checks: " + (
            ", ".join(f"`{name}`" for name in failed)
        )
    rows = [
        [f"`{row.metric}`", _number(row.threshold), _value(row), _number(row.base)]
        for row in report.overall
    ]
    items = f"Scored on {report.items} eval items." if report.items else ""
    metrics = table(["Metric", "Threshold", "Value (95% CI)", "Base model"], rows)
    return "\n\n".join(part for part in ("## Evaluation", decision, metrics, items) if part)


def _number(value: float | None) -> str:
    return DASH if value is None else f"{value:.3f}"


def _value(row: MetricRow) -> str:
    if row.candidate is None:
        return DASH
    if row.interval is None:
        return f"{row.candidate:.3f}"
    low, high = row.interval
    return f"{row.candidate:.3f} ({low:.3f}\u2013{high:.3f})"


def cost_section(ledger: CostLedger | None) -> str:
    """What training this version cost on Hugging Face Jobs; nothing for other backends."""
    if ledger is None:
        return ""
    rows = [[what, estimated, actual] for what, estimated, actual in ledger_rows(ledger)]
    return (
        f"## Training cost\n\nOn Hugging Face Jobs, flavor `{ledger.actual.flavor}`.\n\n"
        f"{table(['', 'Estimated', 'Actual'], rows)}"
    )


def provenance_section(provenance: Provenance) -> str:
    pr = f"#{provenance.pr_number}" if provenance.pr_number is not None else DASH
    rows = [
        ["Git commit", f"`{provenance.git_commit}`"],
        ["Pull request", pr],
        ["Run id", f"`{provenance.run_id}`"],
        ["Runner version", f"`{provenance.runner_version}`"],
    ]
    return f"## Provenance\n\n{table(['Field', 'Value'], rows)}"


def usage_section(bundle: AdapterBundle) -> str:
    adapter, base = bundle.adapter, bundle.adapter.base_model
    quantized = bundle.training.method == "qlora"
    imports = "AutoModelForCausalLM, AutoTokenizer" + (", BitsAndBytesConfig" if quantized else "")
    quantization = (
        "    quantization_config=BitsAndBytesConfig(load_in_4bit=True),\n" if quantized else ""
    )
    return (
        "## Usage\n\n```python\n"
        "from peft import PeftModel\n"
        f"from transformers import {imports}\n\n"
        f'base_id, base_revision = "{base.id}", "{base.revision}"\n'
        "base = AutoModelForCausalLM.from_pretrained(\n"
        "    base_id,\n    revision=base_revision,\n"
        f"{quantization})\n"
        f'model = PeftModel.from_pretrained(base, "{adapter.publish.repo_id}", '
        f'revision="{version_tag(adapter.version)}")\n'
        "tokenizer = AutoTokenizer.from_pretrained(base_id, revision=base_revision)\n"
        "```"
    )


def serving_section(bundle: AdapterBundle, measured: ServingMeasurement | None) -> str:
    return "\n\n".join(
        [
            "## Serving",
            vllm_usage(bundle),
            serving_figures(measured),
            "No GGUF export of this version yet: llama.cpp and Ollama cannot load it as it is.",
        ]
    )


def vllm_usage(bundle: AdapterBundle) -> str:
    """The base at its pinned revision, this version as a LoRA module. A LoRA given by repo id
    is fetched at its default branch (vllm/lora/utils.py has no revision for it): hence the
    download of the version's tag first."""
    adapter, base = bundle.adapter, bundle.adapter.base_model
    folder = f"./{bundle.dirname}"
    return (
        "With [vLLM](https://docs.vllm.ai)'s OpenAI-compatible server: the base model, with "
        "this version as a LoRA module (downloaded at its tag: vLLM fetches a LoRA repo's "
        "default branch only).\n\n```bash\n"
        f"hf download {adapter.publish.repo_id} --revision {version_tag(adapter.version)} "
        f"--local-dir {folder}\n"
        f"vllm serve {base.id} --revision {base.revision} \\\n"
        f"  --enable-lora --lora-modules {adapter.name}={folder} "
        f"--max-lora-rank {engine_lora_rank(bundle.training.r)}\n"
        "```\n\n```python\n"
        "from openai import OpenAI\n\n"
        'client = OpenAI(base_url="http://localhost:8000/v1", api_key="unused")\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{adapter.name}",\n'
        '    messages=[{"role": "user", "content": "Hello"}],\n'
        "    temperature=0,\n)\n"
        "print(reply.choices[0].message.content)\n```"
    )


def serving_figures(measured: ServingMeasurement | None) -> str:
    """What the serving check measured; without a measurement, that it did not run."""
    if measured is None:
        return "The serving check did not run for this version: no serving figures measured."
    rows = [
        ["Engine", _code(measured.engine)],
        ["Hardware", _code(measured.hardware)],
        ["Server start", f"{measured.start_seconds:,.1f} s"],
        ["Server peak memory", f"{measured.peak_memory_mb:,.0f} MB"],
    ]
    parts = [f"Measured by the serving check:\n\n{table(['Field', 'Value'], rows)}"]
    if measured.loads:
        header = ["Concurrency", "Requests", "TTFT p50 / p95", "Latency p50 / p95", "Tokens/s p50"]
        parts.append(table(header, [_load_row(load) for load in measured.loads]))
    if measured.parity:
        header = ["Form", "Token agreement", "Items differing", "Metric", "PEFT", "Served", "Drop"]
        rows = [_parity_row(parity) for parity in measured.parity]
        parts.append(
            f"Parity with the PEFT outputs the eval scored (same prompts, greedy):\n\n"
            f"{table(header, rows)}"
        )
    return "\n\n".join(parts)


def _load_row(load: LoadFigures) -> list[str]:
    ttft, latency = load.ttft_ms, load.latency_ms
    return [
        str(load.concurrency),
        str(load.requests),
        f"{ttft.p50:,.0f} / {ttft.p95:,.0f} ms",
        f"{latency.p50:,.0f} / {latency.p95:,.0f} ms",
        f"{load.tokens_per_second.p50:,.1f}",
    ]


def _parity_row(parity: Parity) -> list[str]:
    return [
        _code(parity.form),
        f"{parity.token_agreement:.3f} of the first {parity.tokens} tokens",
        f"{parity.diverged} of {parity.items}",
        _code(parity.metric),
        f"{parity.reference_score:.3f}",
        f"{parity.served_score:.3f}",
        f"{parity.metric_drop:+.3f}",
    ]


def _code(value: object) -> str:
    """Measured text as inline code in a table cell: one line, no backtick run in it can close
    the span, no pipe can end the cell (inside code, nothing is read as HTML or a link)."""
    text = " ".join(str(value).split()) or " "
    ticks = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}".replace("|", "\\|")


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines)
