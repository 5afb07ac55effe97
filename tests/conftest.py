from __future__ import annotations

import os
import shutil
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import constants as hf_constants

from runner.cli import main
from runner.engines import engine_for
from runner.hub.client import HubClient
from runner.hub.seed import SMOLLM2_REPO_ID, seed_emulator
from runner.hub.tiny_llama import TINY_REPO_ID
from runner.runs.location import candidate_location
from runner.runs.record import read_run
from runner.runs.run_id import run_id
from runner.specs import require_adapter
from runner.workspace import Workspace
from tests.github_standin import github  # noqa: F401  (a fixture for every test module)

REPO_ROOT = Path(__file__).resolve().parent.parent

# Tests talk only to the emulator, which serves LFS and not Xet (no Xet storage offline): a
# test's own HfApi upload of a binary or .gitattributes-matched file takes LFS, as the README
# asks of any script that uploads to the local Hub. The runner does the same for itself.
os.environ["HF_HUB_DISABLE_XET"] = "1"
hf_constants.HF_HUB_DISABLE_XET = True
FIXTURE_REPO = Path(__file__).resolve().parent / "fixtures" / "repo"


@pytest.fixture(autouse=True)
def no_stored_token(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own `hf auth login` token never reaches a test (nor the emulator)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_TOKEN_PATH", "/nonexistent/adapter-gitops/hf-token")


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A copy of a tiny, valid adapters repository with one adapter: `adapters/demo-v1`."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE_REPO, root)
    shutil.copytree(REPO_ROOT / "schemas", root / "schemas")
    shutil.copytree(REPO_ROOT / "policies", root / "policies")
    allow_owner(root, "demo-org")  # where the fixture adapter publishes
    return root


def allow_owner(root: Path, owner: str) -> None:
    """Add `owner` to every list of the repository's Hub repo allowlist."""
    allowlist = root / "policies" / "repos.yaml"
    text = allowlist.read_text(encoding="utf-8")
    assert "  - ainative\n" in text, "policies/repos.yaml lists owners one a line"
    allowlist.write_text(text.replace("  - ainative\n", f"  - ainative\n  - {owner}\n"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run `runner ARGS...` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def hub(tmp_path: Path):
    """A local Hub emulator on a free port, state under this test's tmp_path."""
    from runner.hub.emulator import EmulatorServer

    with EmulatorServer(tmp_path / "hub-data") as server:
        yield server


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built base models kept in the pytest cache, so the SmolLM2 conversion runs once."""
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    if cache is None:
        return tmp_path_factory.mktemp("hub-seed-models")
    return Path(cache.mkdir("hub-seed-models"))


@pytest.fixture(scope="session")
def tiny_folder(model_cache: Path) -> Path:
    """The tiny random Llama with its locally trained tokenizer."""
    from runner.hub.seed import build_tiny_llama

    return build_tiny_llama(model_cache)


@pytest.fixture(scope="session")
def vllm_tiny(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama with 32-wide heads, for the serving engine: vLLM's CPU attention has no
    kernel for the tiny Llama's 16 (the server starts, answers /health, and dies on the first
    request)."""
    import torch
    from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

    folder = tmp_path_factory.mktemp("vllm-tiny")
    config = AutoConfig.from_pretrained(tiny_folder)
    config.num_attention_heads = config.num_key_value_heads = 2
    config.head_dim = config.hidden_size // 2
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_folder).save_pretrained(folder)
    shutil.copy(tiny_folder / "generation_config.json", folder)
    return folder


# Stands in for `autotrain --config FILE`: checks what the app prepared, then pushes the two
# adapter files to <username>/<project_name> (when FAKE_AUTOTRAIN_PUSH is 1) creating the repo
# without exist_ok, as AutoTrain does. It prints the token, which the app must redact.
FAKE_AUTOTRAIN = """\
#!{python}
import json, os, pathlib, sys
import yaml
from huggingface_hub import CommitOperationAdd, HfApi

config = yaml.safe_load(pathlib.Path(sys.argv[2]).read_text())
print("fake autotrain, token", os.environ["HF_TOKEN"], flush=True)
problems = []
if "SPACE_ID" in os.environ or os.environ.get("PAUSE_ON_FAILURE") != "0":
    problems.append("AutoTrain could pause the Space itself")
if not pathlib.Path(config["base_model"], "config.json").is_file():
    problems.append("no base model at " + config["base_model"])
data = pathlib.Path(config["data"]["path"], "train.jsonl").read_text().splitlines()
if not data or any(sorted(json.loads(line)) != ["messages"] for line in data):
    problems.append("train.jsonl should hold the records' messages only")
if problems or os.environ.get("FAKE_AUTOTRAIN_PUSH") != "1":
    print("fake autotrain pushes nothing:", problems, flush=True)
    sys.exit(0)
api = HfApi(token=os.environ[config["hub"]["token"][2:-1]])
repo = config["hub"]["username"] + "/" + config["project_name"]
api.create_repo(repo, private=True)
api.create_commit(repo, commit_message="Upload folder", operations=[
    CommitOperationAdd("adapter_config.json", b'{{"r": 16}}'),
    CommitOperationAdd("adapter_model.safetensors", b"fresh weights"),
    CommitOperationAdd("README.md", b"AutoTrain's model card"),
])
print("fake autotrain pushed", repo, flush=True)
"""


@pytest.fixture
def fake_autotrain(tmp_path, monkeypatch):
    """`autotrain` on the PATH the emulator hands to the Space's app."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "autotrain"
    script.write_text(FAKE_AUTOTRAIN.format(python=sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


# The embedded default, trained against the emulator by the training and eval tests.
TOKEN = "hf_backendTestToken12345"
ADAPTER = "kwanzaa-mini-v1"


def copy_repo(root: Path) -> Path:
    for part in ("policies", "schemas", f"adapters/{ADAPTER}", "datasets/kwanzaa"):
        shutil.copytree(REPO_ROOT / part, root / part)
    return root


def shorten(root: Path, steps: int = 1, items: int = 2, new_tokens: int = 16) -> None:
    """Keep the adapter's settings but train and generate only a little: a test, not a run."""
    directory = root / "adapters" / ADAPTER
    edit(
        directory / "qlora.yaml", "per_device_train_batch_size: 4", "per_device_train_batch_size: 1"
    )
    with (directory / "qlora.yaml").open("a", encoding="utf-8") as spec:
        spec.write(f"max_steps: {steps}\n")
    without_serving_engine(directory / "eval.yaml")
    with (directory / "eval.yaml").open("a", encoding="utf-8") as spec:
        spec.write(f"max_items: {items}\n")
    edit(directory / "eval.yaml", "max_new_tokens: 160", f"max_new_tokens: {new_tokens}")


def without_serving_engine(eval_yaml: Path) -> None:
    """Drop `serving:` (its last block): each vLLM start costs ~40 s, so only the serving
    tests (tests/test_serving_check.py) serve a candidate."""
    text = eval_yaml.read_text(encoding="utf-8")
    eval_yaml.write_text(text[: text.index("\nserving:\n") + 1], encoding="utf-8")


@pytest.fixture
def env(hub: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    return hub


@pytest.fixture
def tiny_repo(env: Any, model_cache: Path, tmp_path: Path) -> Path:
    """The embedded default's specs and data on the tiny random Llama: seconds per run."""
    commit = seed_emulator(env, model_cache, [TINY_REPO_ID])[TINY_REPO_ID]
    root = copy_repo(tmp_path / "repo")
    spec = root / "adapters" / ADAPTER / "adapter.yaml"
    edit(spec, f"id: {SMOLLM2_REPO_ID}", f"id: {TINY_REPO_ID}")
    edit(spec, "revision: 12fd25f77366fa6b3b4b768ec3050bf629380bac", f"revision: {commit}")
    shorten(root)
    return root


def candidate_of(root: Path) -> Any:
    workspace = Workspace(root)
    bundle = require_adapter(workspace, f"adapters/{ADAPTER}")
    location = candidate_location(bundle, run_id(bundle, root))
    return read_run(HubClient(), location, required=engine_for(bundle).required_files)
