"""`runner smoke ADAPTER`: a few CPU training steps that prove, within the PR check, that an
adapter's data, its base model's chat template and its qlora.yaml work together.

Only the base model's tokenizer files are fetched (at the pinned revision); the weights are a
seeded random Llama (`runner.hub.tiny_llama.MODEL_SHAPE`) sized to that tokenizer's vocabulary.
Loading, training and generation are the real `runner/train/train.py` functions with the
adapter's own settings, overridden only where a smoke must (steps, batch, sequence length).

torch, transformers and the training script are imported inside the functions that need them,
so importing this module (for `SmokeReport` and `print_smoke`) stays cheap and works without
the `train` extra.
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

from rich.console import Console
from rich.text import Text

from runner.errors import InputError, RunnerError
from runner.findings import Finding, Severity, has_errors, quote, sort_findings
from runner.hub.client import DEFAULT_ENDPOINT, HubClient, NotFoundError, Refs, RepoRef, cached_file
from runner.hub.seed import BUILDERS, SMOLLM2_REPO_ID, SMOLLM2_REVISION
from runner.hub.tiny_llama import MODEL_SHAPE, SEED

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedTokenizerBase, TrainerCallback

    from runner.specs.bundle import AdapterBundle
    from runner.specs.training import TrainingSpec

LOG = logging.getLogger(__name__)

# At least one of these makes a tokenizer; the others refine it when the repo has them.
VOCAB_FILES = ("tokenizer.json", "tokenizer.model")
OPTIONAL_FILES = ("tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")
NEEDED_FILES = (
    f"{' or '.join(VOCAB_FILES)}, with {', '.join(OPTIONAL_FILES)} where the repo has them "
    "(the chat template and special tokens live there); never config.json or the weights"
)
# With `--stand-in-tokenizer`, a base whose tokenizer cannot be fetched is smoked with this
# one: a real instruct tokenizer and chat template that the emulator seeds offline.
STAND_IN = f"{SMOLLM2_REPO_ID}@{SMOLLM2_REVISION}"
REAL_HUB = DEFAULT_ENDPOINT

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


# -- the base model's tokenizer -----------------------------------------------------------------


class BaseModelUnavailable(InputError):
    """The base model's repo or revision is not on the Hub at `HF_ENDPOINT`: an environment
    matter (what that Hub holds) that the spec may or may not be behind."""


def fetch_base_tokenizer(
    client: HubClient, repo_id: str, revision: str, *, dest: Path | None = None
) -> Path:
    """A folder (`dest`, else a new temp folder) with the tokenizer files of
    `repo_id@revision`: from the local Hugging Face cache when it has them, else from the Hub.
    Never the weights. BaseModelUnavailable when the Hub has no such repo or revision."""
    names = (*VOCAB_FILES, *OPTIONAL_FILES)
    found = {name: Path(path) for name in names if (path := cached_file(repo_id, name, revision))}
    if len(found) < len(names):
        # One look at the revision first: "not on this Hub" is a different error (and fix)
        # from "this revision ships no tokenizer", and five 404s would hide which.
        _require_revision(client, repo_id, revision)
        for name in names:
            path = found.get(name) or _tokenizer_file(client, repo_id, name, revision)
            if path is not None:
                found[name] = path
    if not any(name in found for name in VOCAB_FILES):
        raise InputError(
            f"base model {repo_id}@{revision}: no tokenizer ({' or '.join(VOCAB_FILES)}) in the "
            f"local cache or on the Hub at {client.endpoint}; check base_model.id and "
            "base_model.revision in adapter.yaml: a smoke renders the chats with the base "
            "model's own tokenizer and chat template"
        )
    folder = dest or Path(tempfile.mkdtemp(prefix="runner-smoke-tokenizer-"))
    folder.mkdir(parents=True, exist_ok=True)
    for filename, path in found.items():
        shutil.copyfile(path, folder / filename)  # the cache holds symlinks into blobs/
    return folder


def _tokenizer_file(client: HubClient, repo_id: str, filename: str, revision: str) -> Path | None:
    try:
        return client.download(RepoRef(repo_id), filename, revision)
    except NotFoundError:
        return None  # most repos lack some of the files; only "none at all" is an error


def _require_revision(client: HubClient, repo_id: str, revision: str) -> None:
    repo = RepoRef(repo_id)
    try:
        client.head(repo, revision)
        return
    except NotFoundError:
        pass
    try:
        refs: Refs | None = client.refs(repo)
    except NotFoundError:
        refs = None
    raise BaseModelUnavailable(_unavailable_message(client.endpoint, repo_id, revision, refs))


def _unavailable_message(endpoint: str, repo_id: str, revision: str, refs: Refs | None) -> str:
    """What is missing where, what a smoke needs of it, and every way to provide it."""
    real_hub = endpoint.rstrip("/") == REAL_HUB
    if refs is None:
        missing = f"the Hub at {endpoint} has no repo {repo_id} (or it is private or gated "
        missing += "and HF_TOKEN is unset or may not read it)"
    else:
        heads = ", ".join(f"{name} at {sha}" for name, sha in sorted(refs.branches.items()))
        missing = f"the Hub at {endpoint} has {repo_id} ({heads or 'no branches'}) but not "
        missing += f"revision {revision}"
    lines = [
        f"base model {repo_id}@{revision}: {missing}.",
        f"`runner smoke` needs only its tokenizer files at that revision: {NEEDED_FILES}.",
        _is_the_spec_wrong(real_hub),
        "To provide them:",
        *(f"  - {way}" for way in _ways_to_provide(repo_id, revision, real_hub)),
    ]
    return "\n".join(lines)


def _is_the_spec_wrong(real_hub: bool) -> str:
    check = "check base_model.id and base_model.revision in adapter.yaml"
    if real_hub:
        return f"The spec may name a repo or revision that does not exist: {check}."
    return (
        "That is what this Hub holds, not necessarily a mistake in the spec: if the real Hub "
        f"lacks this repo or revision too, the spec is wrong ({check}); offline, the runner "
        "cannot tell which."
    )


def _ways_to_provide(repo_id: str, revision: str, real_hub: bool) -> list[str]:
    stand_in = (
        "or smoke with a stand-in: `runner smoke ADAPTER --stand-in-tokenizer` uses "
        f"{STAND_IN}'s tokenizer and template, and says that the base's own were not checked"
    )
    if real_hub:
        return [
            "a private or gated base: set HF_TOKEN to a token that may read it (accept a "
            "gated model's terms on its page first)",
            stand_in,
        ]
    if repo_id in BUILDERS:
        seed = f"seed it into the emulator: `runner hub seed --model {repo_id}`"
    else:
        seed = (
            f"seed a local copy into the emulator: `runner hub seed --from-folder FOLDER "
            f"--repo-id {repo_id} --revision {revision}`, where FOLDER holds the files (from "
            f"`hf download {repo_id} --revision {revision} --local-dir FOLDER` on a "
            "connected machine)"
        )
    return [
        f"{seed}; stop `runner hub serve` first and serve again after",
        f"or use the real Hub: unset HF_ENDPOINT (or set it to {REAL_HUB}) and set HF_TOKEN",
        stand_in,
    ]


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


# -- template check -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TemplateCheck:
    """The records that render cleanly (usable for training) and the findings of the rest."""

    train: list[dict[str, Any]]
    eval: list[dict[str, Any]]
    findings: list[Finding]
    checked: int


@dataclass(frozen=True)
class LineRecord:
    """One decoded JSONL record and where it came from."""

    path: str  # as in the manifest, relative to the repository root
    line: int
    record: dict[str, Any]


def check_templates(
    tokenizer: PreTrainedTokenizerBase,
    bundle: AdapterBundle,
    repo_root: Path,
    max_records: int,
) -> TemplateCheck:
    """Render the first `max_records` records of the train and eval files with the base
    template; the generation prompt must be a token prefix of the whole chat."""
    findings: list[Finding] = []
    usable: dict[str, list[dict[str, Any]]] = {"train": [], "eval": []}
    checked = 0
    limit = bundle.training.max_seq_length
    for split in usable:
        rel = getattr(bundle.dataset.files, split).path
        records, read_findings = _read_records(repo_root, rel, max_records)
        findings += read_findings
        lengths: list[tuple[int, int]] = []
        for item in records:
            problem, length = check_record(tokenizer, item)
            checked += 1
            if problem is not None:
                findings.append(problem)
                continue
            usable[split].append(item.record)
            lengths.append((item.line, length))
        findings += _too_long(rel, lengths, limit, len(records))
    return TemplateCheck(usable["train"], usable["eval"], findings, checked)


def _read_records(repo_root: Path, rel: str, limit: int) -> tuple[list[LineRecord], list[Finding]]:
    from runner.data.jsonl import ByteRange, decode_record, iter_lines

    path = repo_root / rel
    if not path.is_file():
        hint = "fix files in dataset.yaml, then run `runner validate`"
        return [], [Finding("smoke.data", Severity.ERROR, rel, None, "file not found", hint)]
    records: list[LineRecord] = []
    findings: list[Finding] = []
    for line, raw in iter_lines(path, ByteRange(0, path.stat().st_size, 1)):
        if len(records) + len(findings) >= limit:
            break
        record, finding = decode_record(raw, line, rel)
        if finding is not None:
            findings.append(finding)
        elif record is not None:
            records.append(LineRecord(rel, line, record))
    return records, findings


def check_record(
    tokenizer: PreTrainedTokenizerBase, item: LineRecord
) -> tuple[Finding | None, int]:
    """The finding for one record (None when it is fine) and its length in tokens."""
    from jinja2 import TemplateError

    from runner.train.train import prompt_messages

    def finding(rule: str, message: str, hint: str) -> Finding:
        return Finding(rule, Severity.ERROR, item.path, item.line, message, hint)

    messages = _chat(item.record)
    if messages is None:
        return finding(
            "smoke.record",
            "not a chat that ends with an assistant turn",
            "run `runner validate` for the details",
        ), 0
    try:
        full = _token_ids(tokenizer, messages, generation_prompt=False)
        prompt = _token_ids(tokenizer, prompt_messages(item.record), generation_prompt=True)
    except (TemplateError, ValueError, TypeError, KeyError, IndexError) as error:
        return finding(
            "smoke.template",
            f"the base model's chat template cannot render this chat: {error}",
            "change the chat to what the template accepts (roles, their order), or pick a "
            "base model whose template supports it",
        ), 0
    if full[: len(prompt)] != prompt:
        return _prefix_finding(tokenizer, item, messages, prompt, full), len(full)
    return None, len(full)


def _chat(record: dict[str, Any]) -> list[dict[str, str]] | None:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        return None
    if not all(isinstance(m, dict) and {"role", "content"} <= set(m) for m in messages):
        return None
    if messages[-1]["role"] != "assistant":
        return None
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _token_ids(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], *, generation_prompt: bool
) -> list[int]:
    # The same call TRL makes for prompt/completion rows (transformers 5 needs return_dict).
    encoded = tokenizer.apply_chat_template(
        messages, tokenize=True, return_dict=True, add_generation_prompt=generation_prompt
    )
    return list(encoded["input_ids"])


def _prefix_finding(
    tokenizer: PreTrainedTokenizerBase,
    item: LineRecord,
    messages: list[dict[str, str]],
    prompt: list[int],
    full: list[int],
) -> Finding:
    """Two causes, two fixes: the template renders the prompt differently on its own, or the
    answer's first characters merge with the end of the prompt into other tokens."""
    pairs = enumerate(zip(prompt, full, strict=False))
    at = next((i for i, (a, b) in pairs if a != b), min(len(prompt), len(full)))
    seen = f"prompt has {quote(tokenizer.decode(prompt[at:]))}, chat has "
    seen += quote(tokenizer.decode(full[at : len(prompt) + 4]))
    why = "training would mask the wrong tokens and the model would be trained on a prompt it "
    why += "never sees at inference"
    prompt_text = tokenizer.decode(prompt)
    if tokenizer.decode(full).startswith(prompt_text):
        start = quote(messages[-1]["content"][:12])
        return Finding(
            "smoke.prompt-prefix",
            Severity.ERROR,
            item.path,
            item.line,
            f"the answer's start {start} merges with the end of the generation prompt into "
            f"other tokens (token {at + 1}: {seen}); {why}",
            "strip leading whitespace from the assistant turn, or start it differently",
        )
    return Finding(
        "smoke.prompt-prefix",
        Severity.ERROR,
        item.path,
        item.line,
        f"the base model's chat template renders the generation prompt differently from the "
        f"same turns in the whole chat (token {at + 1}: {seen}); {why}",
        "pick a base model (or revision) whose template renders the prompt the same way "
        "with and without the answer",
    )


def _too_long(rel: str, lengths: list[tuple[int, int]], limit: int, total: int) -> list[Finding]:
    over = [(line, length) for line, length in lengths if length > limit]
    if not over:
        return []
    line, longest = max(over, key=lambda pair: pair[1])
    return [
        Finding(
            "smoke.too-long",
            Severity.WARNING,
            rel,
            line,
            f"{len(over)} of the {total} records checked are longer than max_seq_length "
            f"({limit} tokens), the longest {longest}: training cuts their ends, where the "
            "answers are",
            "raise max_seq_length in qlora.yaml, or shorten these records",
        )
    ]


# -- training settings --------------------------------------------------------------------------


def smoke_training(spec: TrainingSpec, steps: int) -> tuple[dict[str, Any], list[str]]:
    """qlora.yaml as train.py reads it, overridden only where a smoke on a CPU must;
    the notes say what changed."""
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
    return training, notes


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
    `stand_in_tokenizer` lets `STAND_IN`'s tokenizer take its place (the report says so)."""
    if steps < 1 or max_records < 1:
        # max_steps 0 would mean "all epochs" to the trainer: never what a smoke wants.
        raise InputError(f"steps and max_records must be at least 1 (got {steps}, {max_records})")
    start = time.perf_counter()
    base = bundle.adapter.base_model
    _require_training_libraries()
    with _work_folder(work_dir) as work, _quiet():
        # The Hub first: a base it lacks (or no Hub at all) is said before torch loads (~5 s).
        tokenizer_dir, stand_in = _smoke_tokenizer(
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
        method=training["method"],
        steps=len(outcome.losses),
        losses=outcome.losses,
        seconds=round(time.perf_counter() - start, 1),
        records_checked=outcome.checked,
        findings=sort_findings(outcome.findings),
        samples=outcome.samples,
        notes=notes + outcome.notes,
        stand_in=stand_in,
    )


def _smoke_tokenizer(
    client: HubClient, repo_id: str, revision: str, dest: Path, stand_in_allowed: bool
) -> tuple[Path, str | None]:
    """The base model's tokenizer folder, else (when allowed) the stand-in's; the second
    value names the stand-in when it was used."""
    try:
        return fetch_base_tokenizer(client, repo_id, revision, dest=dest), None
    except BaseModelUnavailable:
        if not stand_in_allowed:
            raise
    LOG.info("%s@%s is not on %s: %s stands in", repo_id, revision, client.endpoint, STAND_IN)
    try:
        return fetch_base_tokenizer(client, SMOLLM2_REPO_ID, SMOLLM2_REVISION, dest=dest), STAND_IN
    except BaseModelUnavailable:
        raise BaseModelUnavailable(
            f"base model {repo_id}@{revision} is not on the Hub at {client.endpoint}, nor is "
            f"the stand-in tokenizer {STAND_IN}: seed it with `runner hub seed --model "
            f"{SMOLLM2_REPO_ID}` (stop `runner hub serve` first, or start it with --seed), or "
            "run without --stand-in-tokenizer for the ways to provide the base's own"
        ) from None


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
    training: dict[str, Any],
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
    training: dict[str, Any],
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
    generation = {
        "max_new_tokens": min(bundle.evaluation.generation.max_new_tokens, MAX_NEW_TOKENS),
        "batch_size": EVAL_ITEMS,
        "max_items": EVAL_ITEMS,
    }
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


# -- terminal output ----------------------------------------------------------------------------


def print_smoke(report: SmokeReport, console: Console) -> None:
    """A few lines: what ran, the template check, the loss, the samples, then findings."""
    from runner.report.console import print_findings, summary_line

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
