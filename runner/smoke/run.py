"""`runner smoke ADAPTER`: a few CPU training steps that prove, within the PR check, that an
adapter's data, its base model's chat template and its qlora.yaml work together.

Only the base model's tokenizer files are fetched (at the pinned revision); the weights are a
seeded random Llama (`runner.hub.tiny_llama.MODEL_SHAPE`) sized to that tokenizer's vocabulary.
Loading, training and generation are the real `runner/train/train.py` functions with the
adapter's own settings, overridden only where a smoke must (steps, batch, sequence length).

The tokenizer comes from `runner.smoke.tokenizer`, the template check from
`runner.data.chat_template`; the terminal output is `runner.report.smoke`'s. torch,
transformers and the training script are imported inside the functions that need them, so
importing this module (for `SmokeReport`) stays cheap and works without the `train` extra.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from runner.data.chat_template import check_templates
from runner.errors import InputError, RunnerError
from runner.findings import Finding, Severity, has_errors, sort_findings
from runner.hub.client import HubClient
from runner.hub.tiny_llama import MODEL_SHAPE, SEED
from runner.serving.lint import tokenizer_findings
from runner.smoke.tokenizer import smoke_tokenizer

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase, TrainerCallback

    from runner.specs.bundle import AdapterBundle
    from runner.specs.training import TrainingSpec
    from runner.train.train import TrainingSettings

LOG = logging.getLogger(__name__)

MAX_SEQ_LENGTH = 512
"""Cap on qlora.yaml's max_seq_length: the logits of a full-vocabulary head dominate CPU time."""
BATCH_SIZE = 2
EVAL_ITEMS = 2
MAX_NEW_TOKENS = 24
"""Enough to show that generation runs through the template; a random model says nothing."""

StepCallback = Callable[[int, float], None]
T = TypeVar("T")


@dataclass(frozen=True)
class SmokeReport:
    """What a smoke run found, in the words a PR comment or a terminal shows."""

    adapter: str
    base_model: str  # repo@revision
    method: str  # what actually trained: qlora only when bitsandbytes could load 4-bit
    steps: int
    losses: list[float]
    seconds: float
    records_checked: int
    findings: list[Finding]
    samples: list[str]
    notes: list[str] = field(default_factory=list)
    stand_in: str | None = None  # repo@revision whose tokenizer stood in for the base's

    @property
    def ok(self) -> bool:
        return not has_errors(self.findings)


# -- the tiny model -----------------------------------------------------------------------------


def build_smoke_model(tokenizer_dir: Path, dest: Path) -> Path:
    """A seeded random Llama whose vocabulary and special tokens are the base tokenizer's,
    saved in `dest` next to byte-for-byte copies of the tokenizer files, so the chat template
    the smoke trains with is exactly the base model's."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    eos = tokenizer.eos_token_id
    ids = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": eos,
        "pad_token_id": eos if tokenizer.pad_token_id is None else tokenizer.pad_token_id,
    }
    config = LlamaConfig(vocab_size=len(tokenizer), **MODEL_SHAPE, **ids)
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    model.generation_config.update(**ids)
    model.save_pretrained(dest)
    for file in tokenizer_dir.iterdir():
        shutil.copyfile(file, dest / file.name)
    return dest


# -- training settings --------------------------------------------------------------------------


def smoke_training(spec: TrainingSpec, steps: int) -> tuple[TrainingSettings, list[str]]:
    """qlora.yaml as train.py reads it, overridden only where a smoke on a CPU must;
    the notes say what changed."""
    from runner.train.train import TrainingSettings, parse

    training = spec.model_dump(mode="json")
    notes = []
    if training["method"] == "qlora" and importlib.util.find_spec("bitsandbytes") is None:
        training["method"], training["quantization"] = "lora", None
        notes.append("bitsandbytes is not installed: trained plain LoRA instead of 4-bit QLoRA")
    if training["max_seq_length"] > MAX_SEQ_LENGTH:
        notes.append(f"max_seq_length {training['max_seq_length']} -> {MAX_SEQ_LENGTH}")
    training |= {
        "max_steps": steps,
        "per_device_train_batch_size": min(training["per_device_train_batch_size"], BATCH_SIZE),
        "gradient_accumulation_steps": 1,
        "max_seq_length": min(training["max_seq_length"], MAX_SEQ_LENGTH),
        "gradient_checkpointing": False,  # trades time for memory: the wrong trade here
    }
    return parse(TrainingSettings, training), notes


# -- the run ------------------------------------------------------------------------------------


def run_smoke(
    bundle: AdapterBundle,
    repo_root: Path,
    client: HubClient,
    *,
    steps: int = 8,
    max_records: int = 32,
    work_dir: Path | None = None,
    on_step: StepCallback | None = None,
    stand_in_tokenizer: bool = False,
) -> SmokeReport:
    """Template check, `steps` training steps and a little generation on a tiny random model
    that uses the base model's tokenizer. Problems with the data, the template or the
    training are findings; a base model that cannot be fetched is an InputError, unless
    `stand_in_tokenizer` lets `tokenizer.STAND_IN`'s tokenizer take its place (the report
    says so)."""
    if steps < 1 or max_records < 1:
        # max_steps 0 would mean "all epochs" to the trainer: never what a smoke wants.
        raise InputError(f"steps and max_records must be at least 1 (got {steps}, {max_records})")
    start = time.perf_counter()
    base = bundle.adapter.base_model
    _require_training_libraries()
    with _work_folder(work_dir) as work, _quiet():
        # The Hub first: a base it lacks (or no Hub at all) is said before torch loads (~5 s).
        tokenizer_dir, stand_in = smoke_tokenizer(
            client, base.id, base.revision, work / "base-tokenizer", stand_in_tokenizer
        )
        from runner.train import train as script

        script.quiet_kernels_notice()  # before anything below imports bitsandbytes
        model_dir = build_smoke_model(tokenizer_dir, work / "model")
        training, notes = smoke_training(bundle.training, steps)
        outcome = _check_train_generate(
            bundle, repo_root, model_dir, training, max_records, on_step
        )
    return SmokeReport(
        adapter=bundle.dirname,
        base_model=f"{base.id}@{base.revision}",
        method=training.method,
        steps=len(outcome.losses),
        losses=outcome.losses,
        seconds=round(time.perf_counter() - start, 1),
        records_checked=outcome.checked,
        findings=sort_findings(outcome.findings),
        samples=outcome.samples,
        notes=notes + outcome.notes,
        stand_in=stand_in,
    )


@dataclass
class _Outcome:
    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _check_train_generate(
    bundle: AdapterBundle,
    repo_root: Path,
    model_dir: Path,
    training: TrainingSettings,
    max_records: int,
    on_step: StepCallback | None,
) -> _Outcome:
    from runner.train import train as script

    tokenizer = script.load_tokenizer(model_dir)
    outcome = _Outcome()
    if tokenizer.chat_template is None:
        outcome.findings.append(_no_template(bundle))
        return outcome
    check = check_templates(tokenizer, bundle, repo_root, max_records)
    outcome.checked, outcome.findings = check.checked, list(check.findings)
    # The smoke model's generation_config stops on the tokenizer's eos_token alone.
    outcome.findings += tokenizer_findings(bundle, tokenizer)
    if not check.train:
        if not has_errors(outcome.findings):  # an empty file: nothing else said so
            outcome.findings.append(_nothing_to_train(bundle))
        return outcome
    model = _stage(
        "training",
        bundle,
        outcome,
        lambda: _load_and_train(model_dir, tokenizer, check.train, training, on_step, outcome),
    )
    if model is not None and check.eval:
        samples = _stage(
            "generation", bundle, outcome, lambda: _generate(model, tokenizer, check.eval, bundle)
        )
        outcome.samples = samples or []
    if outcome.losses:
        outcome.findings += _loss_findings(bundle, outcome.losses)
    return outcome


def _stage(name: str, bundle: AdapterBundle, outcome: _Outcome, work: Callable[[], T]) -> T | None:
    """`work()`, or None after an exception became an error finding: a configuration that
    crashes training is exactly what a smoke exists to report."""
    try:
        return work()
    except Exception as error:
        LOG.debug("smoke %s failed", name, exc_info=True)
        detail = (str(error).strip().splitlines() or [""])[0]
        outcome.findings.append(
            Finding(
                f"smoke.{name}",
                Severity.ERROR,
                f"{bundle.path}/qlora.yaml",
                None,
                f"{name} failed: {type(error).__name__}: {detail}"[:500],
                "fix qlora.yaml or the data it trains on, and run `runner smoke` again",
            )
        )
        return None


def _load_and_train(
    model_dir: Path,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    training: TrainingSettings,
    on_step: StepCallback | None,
    outcome: _Outcome,
) -> PeftModel:
    """The real loading (4-bit through bitsandbytes for qlora) and training of train.py."""
    from runner.train import train as script

    model = script.attach_lora(script.load_base_model(model_dir, training), training)
    metrics = script.train_adapter(
        model,
        tokenizer,
        records,
        training,
        model_dir.parent / "trainer",
        callbacks=[_loss_callback(on_step)],
    )
    outcome.losses = [float(step["loss"]) for step in metrics["loss_history"]]
    if metrics["optimizer"]["note"]:
        outcome.notes.append(metrics["optimizer"]["note"])
    return model


def _loss_findings(bundle: AdapterBundle, losses: list[float]) -> list[Finding]:
    bad = [(step, loss) for step, loss in enumerate(losses, 1) if not math.isfinite(loss)]
    if not bad:
        return []
    step, loss = bad[0]
    return [
        bundle.docs["qlora.yaml"].finding(
            ("learning_rate",),
            "smoke.loss",
            f"the training loss is {loss} from step {step} ({len(bad)} of {len(losses)} steps "
            "not finite)",
            hint="lower learning_rate (or max_grad_norm) in qlora.yaml and run again",
        )
    ]


def _nothing_to_train(bundle: AdapterBundle) -> Finding:
    return Finding(
        "smoke.data",
        Severity.ERROR,
        bundle.dataset.files.train.path,
        None,
        "no training records",
        "add records, then run `runner dataset lock` and `runner validate`",
    )


def _no_template(bundle: AdapterBundle) -> Finding:
    base = bundle.adapter.base_model
    return bundle.docs["adapter.yaml"].finding(
        ("base_model", "id"),
        "smoke.template",
        f"{base.id}@{base.revision} has no chat template, so chat records cannot be rendered",
        hint="use an instruct (chat) model as the base, or a revision that ships its template",
    )


def _generate(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    bundle: AdapterBundle,
) -> list[str]:
    """Batched greedy generation as train.py does it, for the first eval items."""
    from runner.train import train as script

    items = script.eval_items(records, EVAL_ITEMS)
    generation = script.GenerationSettings(
        max_new_tokens=min(bundle.evaluation.generation.max_new_tokens, MAX_NEW_TOKENS),
        batch_size=EVAL_ITEMS,
        max_items=EVAL_ITEMS,
    )
    rows = script.generate_rows(model, tokenizer, items, generation, "smoke")
    return [row["output"] for row in rows]


# -- plumbing -----------------------------------------------------------------------------------


def _require_training_libraries() -> None:
    missing = [
        name
        for name in ("torch", "transformers", "peft", "trl", "datasets")
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise RunnerError(
            f"`runner smoke` trains a model and needs {', '.join(missing)}: install the "
            "runner with its `train` extra (pip install 'adapter-gitops-runner[train]')"
        )


@contextmanager
def _work_folder(work_dir: Path | None) -> Iterator[Path]:
    if work_dir is not None:
        for leftover in ("base-tokenizer", "model", "trainer"):  # of an earlier smoke
            shutil.rmtree(work_dir / leftover, ignore_errors=True)
        work_dir.mkdir(parents=True, exist_ok=True)
        yield work_dir
        return
    with tempfile.TemporaryDirectory(prefix="runner-smoke-") as folder:
        yield Path(folder)


@contextmanager
def _quiet() -> Iterator[None]:
    """No progress bars from transformers (saving, loading) or datasets (TRL tokenizing) and
    no library deprecation notices: the caller owns the terminal, and users cannot act on
    either."""
    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as transformers_logging

    libraries = (datasets_logging, transformers_logging)
    enabled = [library.is_progress_bar_enabled() for library in libraries]
    for library in libraries:
        library.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        for library, was_enabled in zip(libraries, enabled, strict=True):
            if was_enabled:
                library.enable_progress_bar()


def _loss_callback(on_step: StepCallback | None) -> TrainerCallback:
    from transformers import TrainerCallback

    class LossCallback(TrainerCallback):
        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **_: Any) -> None:
            if on_step is not None and logs and "loss" in logs:
                on_step(state.global_step, float(logs["loss"]))

    return LossCallback()
