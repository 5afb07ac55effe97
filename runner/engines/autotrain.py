"""The `autotrain` engine: the AutoTrain Advanced 0.8.36 `llm-sft` config for one run.

AutoTrain is never imported here, nor installed with the runner: its exact pins
(transformers 4.48, trl 0.13, peft 0.14, huggingface-hub 0.27, pydantic 2.10) would freeze
our stack. The models below mirror the part of `autotrain.trainers.clm.params.
LLMTrainingParams` and of the YAML layout read by `autotrain.parser.AutoTrainConfigParser`
that we emit, strictly, so that a typo is our error rather than one of AutoTrain's ignored
warnings; `make autotrain-check` feeds rendered configs to AutoTrain's own parser.

Settings of qlora.yaml that AutoTrain 0.8.36 cannot honour are spec errors naming the key
(see `RULES`): a run must train what its spec says, or not run.

Inputs are pinned by the Space app, not by AutoTrain: AutoTrain loads the base model and the
dataset by id with no revision, so the config names local folders
(`inputs/models/<repo>/<revision>`, `inputs/datasets/<repo>/<revision>`) that the app fills
from the pinned revisions before it starts AutoTrain, and the token is the reference
`${HF_TOKEN}`, which AutoTrain's parser resolves from the Space's environment.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from runner.errors import SpecError
from runner.findings import Finding, Severity
from runner.space import image
from runner.space.image import AUTOTRAIN_VERSION
from runner.space.render import SpaceApp, dockerfile
from runner.specs.bundle import AdapterBundle
from runner.specs.load import require_adapter
from runner.specs.training import TrainingSpec
from runner.train.train import ADAPTER_FILES, RunConfig
from runner.workspace import Workspace

TOKEN_REFERENCE = "${HF_TOKEN}"
TEXT_COLUMN = "messages"  # the chat column of our JSONL records
TRAIN_SPLIT = "train"  # the app writes the pinned train file as `<data path>/train.jsonl`
PROJECT_NAME_MAX = 50  # AutoTrainParams.__init__ rejects longer names
RULE_ID = "autotrain.unsupported"
_RUN_ID = re.compile(r"[0-9a-f]{16}")
_BF16_LESS_HARDWARE = {"t4-small", "t4-medium"}  # Turing GPUs: no bf16
_CPU_HARDWARE = {"cpu-basic", "cpu-upgrade"}


def base_model_dir(repo_id: str, revision: str) -> str:
    """Where the Space app puts the pinned base model, relative to AutoTrain's work dir."""
    return f"inputs/models/{repo_id}/{revision}"


def dataset_dir(repo_id: str, revision: str) -> str:
    """Where the Space app puts the pinned train file, relative to AutoTrain's work dir."""
    return f"inputs/datasets/{repo_id}/{revision}"


# -- the config AutoTrain reads ---------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


Optimizer = Literal[
    "paged_adamw_8bit", "paged_adamw_32bit", "adamw_8bit", "adamw_torch", "adafactor"
]
Scheduler = Literal["cosine", "linear", "constant", "constant_with_warmup", "cosine_with_restarts"]


class LLMSftParams(_Strict):
    """`params:` — names and types of `LLMTrainingParams` 0.8.36. Keys the parser fills from
    elsewhere in the file (model, project_name, data_path, splits, text_column, chat_template,
    trainer, log, username, token, push_to_hub) are not allowed here: a `params` entry would
    silently override them."""

    block_size: int = Field(gt=0)
    """Packed sequence length (SFTConfig.max_seq_length); capped by the tokenizer's limit."""
    model_max_length: int = Field(gt=0)
    """Replaces the tokenizer's model_max_length when that exceeds 2048."""
    padding: Literal["left", "right"] = "right"
    use_flash_attention_2: bool = False
    disable_gradient_checkpointing: bool
    logging_steps: int = -1
    """-1: AutoTrain picks 1-25 from the data size."""
    save_total_limit: int = 1
    auto_find_batch_size: bool = False
    mixed_precision: Literal["fp16", "bf16"] | None
    lr: float = Field(gt=0)
    epochs: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    warmup_ratio: float = Field(ge=0, lt=1)
    gradient_accumulation: int = Field(ge=1)
    optimizer: Optimizer
    scheduler: Scheduler
    weight_decay: float = Field(ge=0)
    max_grad_norm: float = Field(gt=0)
    seed: int
    quantization: Literal["int4"] | None
    """int4 is NF4 with fp16 compute and no double quantization, hard-coded in get_model."""
    target_modules: str = Field(pattern=r"^[A-Za-z0-9_.]+(,[A-Za-z0-9_.]+)*$")
    """Comma-separated, no spaces: AutoTrain splits on "," and does not strip."""
    merge_adapter: Literal[False] = False
    """False: AutoTrain pushes the adapter files, which are what the app copies."""
    peft: Literal[True] = True
    lora_r: int = Field(ge=1)
    lora_alpha: int = Field(ge=1)
    lora_dropout: float = Field(ge=0, lt=1)
    unsloth: Literal[False] = False


class ColumnMapping(_Strict):
    text_column: str = Field(min_length=1)


class AutoTrainData(_Strict):
    path: str = Field(min_length=1)
    train_split: str = Field(min_length=1)
    valid_split: None = None
    """Always null: with a valid split, 0.8.36's process_data_with_chat_template resets
    valid_data to None and then calls .map on it, and llm_munge_data drops the split of a
    local dataset anyway."""
    chat_template: Literal["tokenizer", "chatml", "zephyr"] | None
    column_mapping: ColumnMapping


class AutoTrainHub(_Strict):
    username: str = Field(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,94}[A-Za-z0-9])?$")
    token: str = Field(pattern=r"^\$\{[A-Z_][A-Z0-9_]*\}$")
    """An environment reference (`${HF_TOKEN}`), never a token: the parser resolves it."""
    push_to_hub: Literal[True] = True
    """AutoTrain's only way out of the Space: it pushes to `<username>/<project_name>`."""


class AutoTrainConfig(_Strict):
    """The file given to `autotrain --config`."""

    task: Literal["llm-sft"] = "llm-sft"
    base_model: str = Field(min_length=1)
    project_name: str = Field(
        max_length=PROJECT_NAME_MAX, pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?$"
    )
    log: Literal["none", "tensorboard"] = "none"
    backend: Literal["local"] = "local"
    """`local`: train in this process tree and wait; `spaces-*` would start another Space."""
    data: AutoTrainData
    params: LLMSftParams
    hub: AutoTrainHub


# -- what AutoTrain 0.8.36 cannot honour ------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A qlora.yaml key whose value AutoTrain 0.8.36 cannot honour unless `accepts` it."""

    loc: tuple[str, ...]
    accepts: Callable[[Any], bool]
    why: str
    compatible: Callable[[Any], Any]
    """The nearest value AutoTrain can honour, for `autotrain_compatible`."""


def _is(expected: Any) -> Callable[[Any], bool]:
    return lambda value: value == expected


def _const(value: Any) -> Callable[[Any], Any]:
    return lambda _: value


# Each decision is read from the 0.8.36 wheel (trainers/clm/train_clm_sft.py, utils.py,
# params.py) and the trl 0.13.0 it pins. Honoured as written, so no rule: method, r,
# lora_alpha, lora_dropout, target_modules, load_in_4bit (int4), learning_rate, warmup_ratio,
# batch size, gradient accumulation, weight_decay, max_grad_norm, gradient_checkpointing,
# max_seq_length, and every optim and lr_scheduler_type our schema allows (all are
# OptimizerNames / SchedulerType values of transformers 4.48, passed straight through).
# `packing: true` is accepted with a weaker meaning than train.py's: trl 0.13 packs with
# ConstantLengthDataset, so packed examples are EOS-separated but may attend to each other.
RULES: tuple[Rule, ...] = (
    Rule(
        ("quantization", "bnb_4bit_use_double_quant"),
        _is(False),
        "int4 loading is hard-coded to bnb_4bit_use_double_quant=False (clm/utils.get_model) "
        "and no parameter changes it",
        _const(False),
    ),
    Rule(
        ("quantization", "bnb_4bit_quant_type"),
        _is("nf4"),
        'int4 loading is hard-coded to bnb_4bit_quant_type="nf4"',
        _const("nf4"),
    ),
    Rule(
        ("quantization", "bnb_4bit_compute_dtype"),
        _is("float16"),
        "int4 loading is hard-coded to bnb_4bit_compute_dtype=torch.float16",
        _const("float16"),
    ),
    Rule(
        ("max_steps",),
        _is(None),
        "LLMTrainingParams has no max_steps; training runs whole epochs",
        _const(None),
    ),
    Rule(
        ("num_train_epochs",),
        lambda value: float(value).is_integer(),
        "LLMTrainingParams.epochs is an integer",
        lambda value: float(math.ceil(value)),
    ),
    Rule(
        ("packing",),
        _is(True),
        "the SFT trainer always sets packing=True",
        _const(True),
    ),
    Rule(
        ("assistant_only_loss",),
        _is(False),
        "the SFT trainer renders each conversation to one text field and trains on every "
        "token (trl 0.13 packing with the plain language-modelling collator)",
        _const(False),
    ),
    Rule(
        ("modules_to_save",),
        _is([]),
        "the SFT trainer builds its LoraConfig without modules_to_save",
        _const([]),
    ),
    Rule(
        ("seed",),
        _is(42),
        "LLMTrainingParams.seed only reaches unsloth; the Trainer keeps transformers' default "
        "seed 42 (and the LoRA weights are initialised before any seed is set)",
        _const(42),
    ),
)


def _value_at(training: TrainingSpec, loc: tuple[str, ...]) -> Any:
    value: Any = training.model_dump(mode="json")
    for part in loc:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _violations(training: TrainingSpec) -> list[tuple[Rule, Any]]:
    found = []
    for rule in RULES:
        if rule.loc[0] == "quantization" and training.quantization is None:
            continue  # plain LoRA: nothing is quantized, so no 4-bit setting applies
        value = _value_at(training, rule.loc)
        if not rule.accepts(value):
            found.append((rule, value))
    return found


def _written(data: Any, loc: tuple[str, ...]) -> bool:
    for part in loc:
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return True


def _as_yaml(value: Any) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()


def _finding(bundle: AdapterBundle, rule: Rule, value: Any) -> Finding:
    key = ".".join(rule.loc)
    path = f"{bundle.path}/qlora.yaml"
    doc = bundle.docs.get("qlora.yaml")
    written = doc is not None and _written(doc.data, rule.loc)
    message = (
        f"`{key}: {_as_yaml(value)}`{'' if written else ' (the default)'} cannot be honoured "
        f"by AutoTrain {AUTOTRAIN_VERSION}: {rule.why}"
    )
    hint = (
        f"set `{key}: {_as_yaml(rule.compatible(value))}`, or train with `engine: trl` "
        "in adapter.yaml"
    )
    if doc is not None and written:
        return doc.finding(rule.loc, RULE_ID, message, hint=hint, at_key=True)
    return Finding(RULE_ID, Severity.ERROR, path, None, message, hint)


def autotrain_findings(bundle: AdapterBundle) -> list[Finding]:
    """One error per qlora.yaml setting that AutoTrain 0.8.36 cannot honour."""
    return [_finding(bundle, rule, value) for rule, value in _violations(bundle.training)]


def autotrain_compatible(training: TrainingSpec) -> tuple[TrainingSpec, list[str]]:
    """`training` with every setting AutoTrain cannot honour replaced by the nearest one it
    can, and a line per change (`key: old -> new`). For checks and suggestions; never used
    to render a real run behind the author's back."""
    data = training.model_dump()
    changes = []
    for rule, value in _violations(training):
        new = rule.compatible(value)
        *parents, last = rule.loc
        target = data
        for part in parents:
            target = target[part]
        target[last] = new
        changes.append(f"{'.'.join(rule.loc)}: {_as_yaml(value)} -> {_as_yaml(new)}")
    return TrainingSpec.model_validate(data), changes


# -- rendering --------------------------------------------------------------------------------


def project_name(bundle: AdapterBundle, run_id: str) -> str:
    """`<adapter name>-v<version>-<run id>`: unique per run, because AutoTrain creates
    `<username>/<project_name>` without exist_ok (a rerun under an old name gets 409; so a
    retry of the same run id needs that repo deleted first). Only letters, digits and single
    hyphens, at most 50 characters (the name is cut, never the run id)."""
    if not _RUN_ID.fullmatch(run_id):
        raise ValueError(f"run id must be 16 lowercase hex characters, got {run_id!r}")
    suffix = f"-v{bundle.adapter.version}-{run_id}"
    name = re.sub(r"[^A-Za-z0-9]+", "-", bundle.adapter.name).strip("-")
    name = name[: max(PROJECT_NAME_MAX - len(suffix), 0)].rstrip("-")
    return f"{name}{suffix}".lstrip("-")


def _mixed_precision(bundle: AdapterBundle) -> Literal["fp16", "bf16"] | None:
    """fp16 for QLoRA, to match AutoTrain's hard-coded fp16 compute dtype; otherwise bf16,
    as train.py trains plain LoRA, except where the hardware has no bf16 (or no GPU)."""
    hardware = bundle.adapter.training.hardware
    if hardware in _CPU_HARDWARE:
        return None
    if bundle.training.method == "qlora" or hardware in _BF16_LESS_HARDWARE:
        return "fp16"
    return "bf16"


def _params(bundle: AdapterBundle) -> LLMSftParams:
    training = bundle.training
    return LLMSftParams(
        block_size=training.max_seq_length,
        model_max_length=training.max_seq_length,
        padding="right",
        disable_gradient_checkpointing=not training.gradient_checkpointing,
        mixed_precision=_mixed_precision(bundle),
        lr=training.learning_rate,
        epochs=int(training.num_train_epochs),
        batch_size=training.per_device_train_batch_size,
        warmup_ratio=training.warmup_ratio,
        gradient_accumulation=training.gradient_accumulation_steps,
        optimizer=training.optim,
        scheduler=training.lr_scheduler_type,
        weight_decay=training.weight_decay,
        max_grad_norm=training.max_grad_norm,
        seed=training.seed,
        quantization="int4" if training.method == "qlora" else None,
        target_modules=",".join(training.target_modules),
        lora_r=training.r,
        lora_alpha=training.lora_alpha,
        lora_dropout=training.lora_dropout,
    )


def render_autotrain_config(
    bundle: AdapterBundle,
    *,
    run_id: str,
    username: str,
    dataset_repo: str,
    dataset_revision: str,
) -> dict[str, Any]:
    """The AutoTrain config of one run (what the Space gets as `AUTOTRAIN_CONFIG`, dumped
    by `autotrain_config_yaml`). Raises SpecError listing every qlora.yaml setting AutoTrain
    cannot honour; `username` is the namespace AutoTrain pushes its project repo to."""
    findings = autotrain_findings(bundle)
    if findings:
        raise SpecError(
            f"{bundle.path}/qlora.yaml: {len(findings)} setting(s) AutoTrain "
            f"{AUTOTRAIN_VERSION} cannot honour; change them or use `engine: trl`",
            findings,
        )
    base = bundle.adapter.base_model
    config = AutoTrainConfig(
        base_model=base_model_dir(base.id, base.revision),
        project_name=project_name(bundle, run_id),
        data=AutoTrainData(
            path=dataset_dir(dataset_repo, dataset_revision),
            train_split=TRAIN_SPLIT,
            chat_template="tokenizer",  # the base model's own template, as train.py uses
            column_mapping=ColumnMapping(text_column=TEXT_COLUMN),
        ),
        params=_params(bundle),
        hub=AutoTrainHub(username=username, token=TOKEN_REFERENCE),
    )
    return config.model_dump(mode="json")


def autotrain_config_yaml(config: dict[str, Any]) -> str:
    """The config as YAML text, checked against the strict model first. PyYAML, as AutoTrain
    reads it back with `yaml.safe_load`; it also writes floats YAML 1.1 reads as floats."""
    AutoTrainConfig.model_validate(config)
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


# -- the engine -------------------------------------------------------------------------------


class AutoTrainEngine:
    name = "autotrain"
    # AutoTrain brings its own pinned stack (transformers, trl, peft, bitsandbytes,
    # huggingface_hub); installing ours next to it would break one or the other.
    space_app = SpaceApp(
        template="autotrain_app_template.py",
        dockerfile=dockerfile(image.AUTOTRAIN_BASE_IMAGE, image.AUTOTRAIN_PACKAGE),
        about=f"It trains with AutoTrain Advanced {AUTOTRAIN_VERSION} (`llm-sft`).\n",
    )
    # AutoTrain trains only: its candidates' eval outputs are generated at evaluation time.
    required_files = (*ADAPTER_FILES, "run.json")
    makes_eval_outputs = False

    def space_variables(
        self, bundle: AdapterBundle, config: RunConfig, space_id: str
    ) -> dict[str, str]:
        """The AutoTrain config rendered from the run config (AutoTrain pushes to the Space
        owner's namespace)."""
        autotrain = render_autotrain_config(
            bundle,
            run_id=config.run_id,
            username=space_id.split("/")[0],
            dataset_repo=config.dataset.repo_id,
            dataset_revision=config.dataset.revision,
        )
        return {"AUTOTRAIN_CONFIG": autotrain_config_yaml(autotrain)}

    def spec_findings(self, bundle: AdapterBundle) -> list[Finding]:
        return autotrain_findings(bundle)


AUTOTRAIN = AutoTrainEngine()


# -- `python -m runner.engines.autotrain render ADAPTER` ------------------------------------------


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m runner.engines.autotrain",
        description="Print the AutoTrain config of an adapter as YAML.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    render = commands.add_parser("render", help="render ADAPTER's AutoTrain config")
    render.add_argument("adapter", help="adapter directory or name, e.g. adapters/ainative-v2")
    render.add_argument("--run-id", default="0123456789abcdef")
    render.add_argument("--username", default="ainative")
    render.add_argument("--dataset-repo", help="default: the manifest's hub_repo")
    render.add_argument("--dataset-revision", default="0" * 40)
    render.add_argument(
        "--compatible",
        action="store_true",
        help="turn off what AutoTrain cannot honour (listed on stderr) instead of failing",
    )
    render.add_argument("--repo", type=Path, help="repository root (default: discovered)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parse_args(argv)
    workspace = Workspace.at(args.repo) if args.repo else Workspace.discover()
    bundle = require_adapter(workspace, args.adapter)
    if args.compatible:
        training, changes = autotrain_compatible(bundle.training)
        bundle = dataclasses.replace(bundle, training=training)
        for change in changes:
            print(f"turned off for AutoTrain: {change}", file=sys.stderr)
    try:
        config = render_autotrain_config(
            bundle,
            run_id=args.run_id,
            username=args.username,
            dataset_repo=args.dataset_repo or bundle.dataset.hub_repo,
            dataset_revision=args.dataset_revision,
        )
    except SpecError as error:
        print(error, file=sys.stderr)
        for finding in error.findings:
            print(f"  {finding}", file=sys.stderr)
        return error.exit_code
    sys.stdout.write(autotrain_config_yaml(config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
