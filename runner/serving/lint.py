"""Serveability lint: settings that vLLM (0.32, what the serving check runs) rejects or
converts wrongly, found before any GPU minute: in the specs (`runner validate`), in the base
tokenizer's chat template (`runner smoke`), and in a trained adapter's files (`runner eval`,
before the candidate is served).

What the engine does, as read in vLLM 0.32's source:
- `vllm/lora/peft_helper.py`: an adapter whose `modules_to_save` names anything but a
  classifier head ("classifier", "score") is refused when it loads; its rank (and every
  `rank_pattern` rank) must be at most `--max-lora-rank`.
- `vllm/config/lora.py`: `--max-lora-rank` takes only the values of `VLLM_LORA_RANKS`.
- `vllm/lora/utils.py`: a full weight of another module is "unsupported LoRA weight" (refused),
  except `embed_tokens.base_layer.weight` / `lm_head.base_layer.weight` (what peft saves with
  `save_embedding_layers`), which are skipped without a word: served with the base's.
- `vllm/model_executor/models/llama.py`: LoRA applies to the linear projections (q/k/v and
  gate/up packed) and to `embed_tokens` / `lm_head`; any other module name is refused.
  With `tie_word_embeddings`, `lm_head` shares the embedding matrix: a LoRA on it serves as a
  delta on the logits only, but merging it (the merged form, GGUF export) writes the delta into
  the shared matrix, so the input embeddings change too.
- `vllm/sampling_params.py`: generation stops on the tokenizer's `eos_token_id` and on
  `generation_config.json`'s `eos_token_id`(s), nothing else unless a request says so.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.errors import InputError, RunnerError
from runner.findings import Finding, Severity, quote
from runner.repofiles import read_regular_bytes

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from runner.specs.bundle import AdapterBundle

ENGINE = "vLLM 0.32"
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values `--max-lora-rank` accepts (`MaxLoRARanks` in vllm/config/lora.py)."""
VLLM_MAX_LORA_RANK = VLLM_LORA_RANKS[-1]
CLASSIFIER_HEADS = frozenset({"classifier", "score"})
"""The only modules_to_save vLLM loads, and only for classification models."""
EMBEDDING_MODULES = frozenset({"embed_tokens", "lm_head", "wte", "word_embeddings", "embed_out"})
"""Input and output embeddings, by the names the common decoder families give them."""
LLAMA_ARCHITECTURES = frozenset({"LlamaForCausalLM"})
LLAMA_LORA_MODULES = frozenset(
    {"q_proj", "k_proj", "v_proj", "qkv_proj", "o_proj", "gate_proj", "up_proj", "gate_up_proj"}
    | {"down_proj", "embed_tokens", "lm_head"}
)
"""What vLLM's Llama applies LoRA to: its linear layers, their packed parts, the embeddings."""
MAX_HEADER_BYTES = 100_000_000
"""The safetensors format's own limit on its JSON header."""
LORA_SUFFIXES = ("lora_A.weight", "lora_B.weight", "lora_embedding_A", "lora_embedding_B")
SPEC_HINT = "remove it from qlora.yaml: the adapter must hold LoRA weights only to be served"


def engine_lora_rank(r: int) -> int:
    """The smallest `--max-lora-rank` vLLM accepts that holds a LoRA of rank `r`."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= r:
            return allowed
    raise InputError(
        f"LoRA rank {r} is above {ENGINE}'s largest --max-lora-rank ({VLLM_MAX_LORA_RANK}): "
        f"train with r at most {VLLM_MAX_LORA_RANK}"
    )


# -- qlora.yaml ---------------------------------------------------------------------------------


def spec_findings(bundle: AdapterBundle, base_config: dict[str, Any] | None) -> list[Finding]:
    """qlora.yaml settings the engine refuses. `base_config` (the base's config.json, when the
    caller has it) adds what a tied `lm_head` means."""
    doc = bundle.docs["qlora.yaml"]
    training = bundle.training
    findings = [
        doc.finding(
            ("modules_to_save", index),
            "serving.modules-to-save",
            _saved_in_full(module, base_config),
            hint=SPEC_HINT,
        )
        for index, module in enumerate(training.modules_to_save)
    ]
    if training.r > VLLM_MAX_LORA_RANK:
        findings.append(
            doc.finding(("r",), "serving.max-lora-rank", _rank_message(training.r), hint=SPEC_HINT)
        )
    return findings + _unserved_limits(bundle)


def _unserved_limits(bundle: AdapterBundle) -> list[Finding]:
    """Limits without `hardware` apply to the training run's batched generation, which is not
    what a serving backend sees: say so where they are declared."""
    serving = bundle.evaluation.serving
    if serving.engine_check or (serving.p95_latency_ms is None and serving.peak_memory_mb is None):
        return []
    return [
        bundle.docs["eval.yaml"].finding(
            ("serving",),
            "serving.no-engine",
            "serving limits without `hardware` are checked against the training run's own "
            "batched generation (each row's latency is its whole batch's), not a serving engine",
            hint="add `hardware: cpu` (or the Jobs flavor you serve on) so that `runner eval` "
            f"serves the candidate in {ENGINE} and checks the limits there",
            severity=Severity.WARNING,
            at_key=True,
        )
    ]


def _saved_in_full(module: str, base_config: dict[str, Any] | None) -> str:
    message = (
        f"modules_to_save {quote(module)}: {ENGINE} refuses to load an adapter that saves "
        "whole modules (it loads LoRA weights only), so the candidate cannot be served"
    )
    if module == "lm_head" and _tied(base_config):
        message += (
            "; and the base ties lm_head to embed_tokens (tie_word_embeddings), so a merged "
            "or converted copy changes the input embeddings too"
        )
    return message


def _rank_message(rank: int) -> str:
    return (
        f"LoRA rank {rank} is above {ENGINE}'s largest --max-lora-rank "
        f"({VLLM_MAX_LORA_RANK}): the engine refuses the adapter"
    )


def _tied(base_config: dict[str, Any] | None) -> bool:
    # transformers' default for a config that does not say is True.
    return base_config is not None and bool(base_config.get("tie_word_embeddings", True))


# -- the base tokenizer -------------------------------------------------------------------------


def tokenizer_findings(
    bundle: AdapterBundle,
    tokenizer: PreTrainedTokenizerBase,
    stop_token_ids: Iterable[int] = (),
) -> list[Finding]:
    """A WARNING when the chat template ends an assistant turn without a token the engine stops
    on (the tokenizer's eos_token, plus `stop_token_ids`: generation_config.json's
    eos_token_id). The model learns to end its answers with that turn's end, the engine reads
    past it, and every served answer runs on to max_tokens. A warning, not an error: a smoke
    sees the tokenizer's files only, and a base's generation_config.json may add the token
    (Llama 3's does); the serving check's parity measures what the engine really does."""
    marker = "\u2063answer-ends-here\u2063"
    chat = [
        {"role": "system", "content": "system"},
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": marker},
    ]
    try:
        rendered = tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception:
        return []  # a template that cannot render a chat is the template check's finding
    if not isinstance(rendered, str) or marker not in rendered:
        return []
    turn_end = rendered.rsplit(marker, 1)[1]
    stops = {*stop_token_ids, tokenizer.eos_token_id} - {None}
    if stops & set(tokenizer.encode(turn_end, add_special_tokens=False)):
        return []
    base = bundle.adapter.base_model
    return [
        bundle.docs["adapter.yaml"].finding(
            ("base_model", "id"),
            "serving.chat-template-eos",
            f"{base.id}@{base.revision}'s chat template ends an assistant turn with "
            f"{quote(turn_end)}, without the eos_token {quote(tokenizer.eos_token)} the "
            f"engine stops on: served answers run on to max_tokens",
            hint="use a base (or revision) whose template ends each turn with its eos_token, "
            "or set eos_token to the turn's end token in its tokenizer_config.json",
            severity=Severity.WARNING,
        )
    ]


# -- a trained adapter --------------------------------------------------------------------------


def adapter_findings(adapter_dir: Path, base_config: dict[str, Any] | None = None) -> list[Finding]:
    """What in a trained adapter (adapter_config.json + adapter_model.safetensors) the engine
    refuses or serves wrongly. Reads the config and only the safetensors header (bounded), so
    a hostile file is a finding, never a long read. `base_config` (the base's config.json)
    adds the tied lm_head check and, for a Llama base, the modules vLLM applies LoRA to."""
    config_file = adapter_dir / "adapter_config.json"
    weights_file = adapter_dir / "adapter_model.safetensors"
    try:
        config = _json_object(read_regular_bytes(config_file), config_file)
    except RunnerError as error:
        return [_unreadable(config_file, error)]
    try:
        tensors = safetensors_header(weights_file)
    except RunnerError as error:
        return [_unreadable(weights_file, error)]
    saved = _names(config.get("modules_to_save"))
    findings = [
        _adapter_error(config_file, "serving.modules-to-save", _saved_in_full(m, base_config))
        for m in saved
    ]
    findings += _rank_findings(config_file, config)
    full = sorted({_module(name) for name in tensors if _full_weight(name)})
    findings += [
        _adapter_error(weights_file, "serving.modules-to-save", _full_weight_message(module))
        for module in full
        if module not in saved
    ]
    findings += _resized_embeddings(weights_file, tensors, base_config)
    lora = {_module(name) for name in tensors if name.endswith(LORA_SUFFIXES)}
    return findings + _lora_module_findings(weights_file, lora, base_config)


def _names(value: object) -> list[str]:
    """A peft module list: None, one name, or a list of names."""
    if isinstance(value, str):
        return [value]
    return [str(name) for name in value] if isinstance(value, list) else []


def _full_weight(name: str) -> bool:
    """A module's own weights: refused. The base's embeddings that peft saves next to a LoRA
    on them (`base_layer`) are skipped by the engine instead (see `_resized_embeddings`)."""
    return not name.endswith(LORA_SUFFIXES) and not _base_embedding(name)


def _base_embedding(name: str) -> bool:
    return name.endswith(".base_layer.weight") and _module(name) in EMBEDDING_MODULES


def _resized_embeddings(
    weights_file: Path, tensors: dict[str, Any], base_config: dict[str, Any] | None
) -> list[Finding]:
    """The engine skips saved base embeddings and serves the base's own: the same answers
    unless training resized the vocabulary (added tokens)."""
    vocab = (base_config or {}).get("vocab_size")
    if vocab is None:
        return []
    resized = {
        _module(name): rows
        for name, entry in tensors.items()
        if _base_embedding(name) and (rows := _rows(entry)) not in (None, vocab)
    }
    return [
        _adapter_error(
            weights_file,
            "serving.embedding-lora",
            f"embeddings for {quote(module)} with {rows} rows, the base has {vocab}: "
            f"{ENGINE} skips them and serves the base's, without the added tokens",
        )
        for module, rows in sorted(resized.items())
    ]


def _rows(entry: Any) -> int | None:
    shape = entry.get("shape") if isinstance(entry, dict) else None
    return shape[0] if isinstance(shape, list) and shape and isinstance(shape[0], int) else None


def _rank_findings(config_file: Path, config: dict[str, Any]) -> list[Finding]:
    ranks = [config.get("r"), *(config.get("rank_pattern") or {}).values()]
    highest = max((r for r in ranks if isinstance(r, int)), default=0)
    if highest <= VLLM_MAX_LORA_RANK:
        return []
    return [_adapter_error(config_file, "serving.max-lora-rank", _rank_message(highest))]


def _lora_module_findings(
    weights_file: Path, modules: set[str], base_config: dict[str, Any] | None
) -> list[Finding]:
    findings = []
    if "lm_head" in modules and _tied(base_config):
        findings.append(
            _adapter_error(
                weights_file,
                "serving.embedding-lora",
                "a LoRA on lm_head of a base that ties it to embed_tokens "
                "(tie_word_embeddings): the engine applies it to the logits only, but the "
                "merged form writes it into the shared matrix and changes the input "
                "embeddings too, so merged and served answers differ from what the eval scored",
            )
        )
    architectures = set((base_config or {}).get("architectures") or [])
    if architectures & LLAMA_ARCHITECTURES:
        findings += [
            _adapter_error(
                weights_file,
                "serving.target-modules",
                f"LoRA weights for {quote(module)}: {ENGINE}'s Llama applies LoRA only to "
                f"{', '.join(sorted(LLAMA_LORA_MODULES))} and refuses the adapter",
            )
            for module in sorted(modules - LLAMA_LORA_MODULES)
        ]
    return findings


def _full_weight_message(module: str) -> str:
    what = "embedding" if module in EMBEDDING_MODULES else "module"
    return (
        f"full {what} weights for {quote(module)}: {ENGINE} loads LoRA weights only; it "
        "refuses these, or (embed_tokens/lm_head base_layer weights) skips them and serves "
        "the base's, so served answers differ from what the eval scored"
    )


def _module(tensor_name: str) -> str:
    """The module a tensor belongs to: the last name before the LoRA or weight suffix."""
    parts = tensor_name.split(".")
    for suffix in LORA_SUFFIXES:
        if tensor_name.endswith(suffix):
            return parts[-1 - suffix.count(".") - 1]
    parts = parts[:-1] if parts[-1] in ("weight", "bias") else parts
    parts = parts[:-1] if parts and parts[-1] == "base_layer" else parts
    return parts[-1] if parts else tensor_name


def _adapter_error(path: Path, rule_id: str, message: str) -> Finding:
    return Finding(
        rule_id,
        Severity.ERROR,
        path.as_posix(),
        None,
        message,
        "train it again with LoRA weights only (no modules_to_save, no embedding weights)",
    )


def _unreadable(path: Path, error: RunnerError) -> Finding:
    return Finding(
        "serving.adapter-files",
        Severity.ERROR,
        path.as_posix(),
        None,
        f"the adapter cannot be checked: {error}",
        "train it again; an adapter needs adapter_config.json and adapter_model.safetensors",
    )


def _json_object(data: bytes, path: Path) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InputError(f"{path.name} is not JSON ({str(error)[:200]})") from None
    if not isinstance(value, dict):
        raise InputError(f"{path.name} holds no JSON object")
    return value


def safetensors_header(path: Path) -> dict[str, Any]:
    """The tensors of a safetensors file (name -> dtype, shape, offsets), from its header
    alone: an 8-byte little-endian length, then that many bytes of JSON. InputError when the
    header is not one."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        raise InputError(f"{path.name} cannot be opened ({error.strerror})") from None
    with os.fdopen(fd, "rb") as file:
        status = os.fstat(fd)
        if not stat.S_ISREG(status.st_mode):
            raise InputError(f"{path.name} is not a regular file")
        size = status.st_size
        prefix = file.read(8)
        if len(prefix) < 8:
            raise InputError(f"{path.name} is {size} bytes: too short for a safetensors header")
        (length,) = struct.unpack("<Q", prefix)
        if length > min(MAX_HEADER_BYTES, size - 8):
            raise InputError(
                f"{path.name}'s header claims {length} bytes, the file has {size}: "
                "not a safetensors file"
            )
        header = _json_object(file.read(length), path)
    header.pop("__metadata__", None)
    return header
