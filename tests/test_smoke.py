"""`runner smoke`: kwanzaa-mini-v1 trains a few CPU steps on a tiny random model that uses
SmolLM2's tokenizer and chat template, fetched (tokenizer files only) from the local Hub
emulator at the pinned revision; broken chats are findings at their file and line."""

from __future__ import annotations

import io
import json
import math
import shutil
from pathlib import Path

import huggingface_hub.constants
import pytest
from rich.console import Console

from runner.errors import RunnerError
from runner.findings import Severity
from runner.hashing import sha256_of
from runner.hub.client import HubClient
from runner.hub.seed import (
    SMOLLM2_RECIPE,
    SMOLLM2_REPO_ID,
    SMOLLM2_REVISION,
    _save_smollm2_tokenizer,
    cached_build,
    smollm2_gguf_path,
)
from runner.report.smoke import print_smoke
from runner.smoke.run import SmokeReport, run_smoke
from runner.smoke.tokenizer import fetch_base_tokenizer
from runner.specs.bundle import AdapterBundle
from runner.specs.load import require_adapter
from runner.train import train as script
from runner.workspace import Workspace
from tests.conftest import REPO_ROOT, edit

ADAPTER = "kwanzaa-mini-v1"
TRAIN_FILE = "datasets/kwanzaa/v0/train.jsonl"
EVAL_FILE = "datasets/kwanzaa/v0/eval.jsonl"
BASE = f"{SMOLLM2_REPO_ID}@{SMOLLM2_REVISION}"
# Reasoning templates (Qwen3-style) open an empty thought block after the generation prompt
# that the rendered history does not have: the prompt alone is no prefix of the whole chat.
THINKING_PROMPT = "'<|im_start|>assistant\n<think>\n\n</think>\n\n'"
# Templates of models trained without a system role refuse it (Gemma, early Mistral).
NO_SYSTEM_ROLE = (
    "{% if messages[0]['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
)


@pytest.fixture(scope="session")
def smollm2_tokenizer(model_cache: Path) -> dict[str, bytes]:
    """SmolLM2's tokenizer files as the emulator serves them (no weights: a smoke never
    needs them, and the tokenizer builds in seconds from the packaged GGUF)."""
    gguf = smollm2_gguf_path()
    name = f"smollm2-tokenizer-{sha256_of(gguf)[:16]}-r{SMOLLM2_RECIPE}"
    folder = cached_build(model_cache, name, lambda dest: _save_smollm2_tokenizer(gguf, dest))
    return {path.name: path.read_bytes() for path in folder.iterdir()}


@pytest.fixture(autouse=True)
def empty_hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test downloads into its own Hugging Face cache: the tests seed different files
    under the same repo@revision, and the smoke reads the cache first."""
    cache = tmp_path / "hf-cache"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    return cache


@pytest.fixture
def kwanzaa_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for folder in (f"adapters/{ADAPTER}", "datasets/kwanzaa", "policies", "schemas"):
        shutil.copytree(REPO_ROOT / folder, root / folder)
    return root


def seed_base(hub, files: dict[str, bytes]) -> None:
    hub.seed(SMOLLM2_REPO_ID, files, message="SmolLM2 tokenizer", commit_id=SMOLLM2_REVISION)


def indent_answer(root: Path, line: int) -> None:
    """Start the answer on `line` of the train file with two spaces: GPT-2's byte-level split
    glues them to the prompt's final newline, so the prompt is no longer a token prefix."""
    lines = (root / TRAIN_FILE).read_text(encoding="utf-8").splitlines(keepends=True)
    record = json.loads(lines[line - 1])
    record["messages"][-1]["content"] = "  " + record["messages"][-1]["content"]
    lines[line - 1] = json.dumps(record) + "\n"
    (root / TRAIN_FILE).write_text("".join(lines), encoding="utf-8")


def load(root: Path) -> AdapterBundle:
    return require_adapter(Workspace.at(root), ADAPTER)


def printed(report: SmokeReport) -> str:
    stream = io.StringIO()
    print_smoke(report, Console(file=stream, width=200, color_system=None))
    return stream.getvalue()


def test_kwanzaa_mini_smoke_passes_with_the_base_template(
    hub, smollm2_tokenizer, kwanzaa_repo, tmp_path
):
    seed_base(hub, smollm2_tokenizer)
    steps: list[tuple[int, float]] = []
    report = run_smoke(
        load(kwanzaa_repo),
        kwanzaa_repo,
        HubClient(hub.endpoint),
        steps=2,
        max_records=8,
        work_dir=tmp_path / "work",
        on_step=lambda step, loss: steps.append((step, loss)),
    )
    assert report.ok, report.findings
    assert report.findings == []
    assert (report.adapter, report.base_model, report.method) == (ADAPTER, BASE, "lora")
    assert [step for step, _ in steps] == [1, 2]
    assert report.losses == [loss for _, loss in steps]
    assert all(math.isfinite(loss) and loss > 0 for loss in report.losses)
    assert report.records_checked == 16
    assert len(report.samples) == 2
    assert all(isinstance(sample, str) for sample in report.samples)
    # The tiny model speaks SmolLM2's vocabulary and trains with its template, unchanged.
    model_dir = tmp_path / "work" / "model"
    config = json.loads((model_dir / "config.json").read_text())
    assert config["vocab_size"] == 49152
    template = (model_dir / "chat_template.jinja").read_bytes()
    assert template == smollm2_tokenizer["chat_template.jinja"]
    text = printed(report)
    assert f"smoke {ADAPTER}  {BASE} tokenizer, tiny random weights, lora" in text
    assert "16 of 16 records render with the base template" in text
    assert "2 steps, loss" in text
    assert "max_seq_length 768 -> 512" in text
    assert "smoke passed: 0 error(s), 0 warning(s)" in text


def test_qlora_trains_on_a_4_bit_base_on_the_cpu(hub, smollm2_tokenizer, kwanzaa_repo, monkeypatch):
    edit(kwanzaa_repo / f"adapters/{ADAPTER}/qlora.yaml", "method: lora", "method: qlora")
    quantized: list[int] = []
    repack = script.disable_cpu_weight_repacking
    monkeypatch.setattr(
        script, "disable_cpu_weight_repacking", lambda model: quantized.append(repack(model))
    )
    seed_base(hub, smollm2_tokenizer)
    report = run_smoke(
        load(kwanzaa_repo), kwanzaa_repo, HubClient(hub.endpoint), steps=2, max_records=4
    )
    assert report.ok, report.findings
    assert report.method == "qlora"
    assert quantized[0] > 0  # the base really loaded as bitsandbytes 4-bit layers
    assert len(report.losses) == 2
    assert all(math.isfinite(loss) for loss in report.losses)
    assert "qlora" in printed(report)


def test_an_answer_that_merges_with_the_generation_prompt_is_reported_at_its_line(
    hub, smollm2_tokenizer, kwanzaa_repo
):
    indent_answer(kwanzaa_repo, line=3)
    seed_base(hub, smollm2_tokenizer)
    report = run_smoke(
        load(kwanzaa_repo), kwanzaa_repo, HubClient(hub.endpoint), steps=1, max_records=6
    )
    assert not report.ok
    [finding] = report.findings
    assert (finding.rule_id, finding.location) == ("smoke.prompt-prefix", f"{TRAIN_FILE}:3")
    assert "merges with the end of the generation prompt" in finding.message
    assert "strip leading whitespace" in finding.hint
    assert len(report.losses) == 1  # the other records still trained
    text = printed(report)
    assert f"{TRAIN_FILE}:3 " in text
    assert "11 of 12 records render" in text
    assert "smoke failed: 1 error(s)" in text


@pytest.mark.parametrize(
    ("template_edit", "rule_id", "says"),
    [
        (
            ("'<|im_start|>assistant\n'", THINKING_PROMPT),
            "smoke.prompt-prefix",
            "renders the generation prompt differently",
        ),
        (("", NO_SYSTEM_ROLE), "smoke.template", "System role not supported"),
    ],
    ids=["thinking-generation-prompt", "no-system-role"],
)
def test_a_base_template_that_breaks_the_chats_is_reported_for_each_record(
    hub, smollm2_tokenizer, kwanzaa_repo, template_edit, rule_id, says
):
    old, new = template_edit
    template = smollm2_tokenizer["chat_template.jinja"].decode()
    assert old in template
    edited = new + template if not old else template.replace(old, new)
    seed_base(hub, smollm2_tokenizer | {"chat_template.jinja": edited.encode()})
    report = run_smoke(
        load(kwanzaa_repo), kwanzaa_repo, HubClient(hub.endpoint), steps=1, max_records=3
    )
    assert not report.ok
    assert [f.location for f in report.findings] == [
        *(f"{EVAL_FILE}:{line}" for line in (1, 2, 3)),
        *(f"{TRAIN_FILE}:{line}" for line in (1, 2, 3)),
    ]
    assert {f.rule_id for f in report.findings} == {rule_id}
    assert all(f.severity is Severity.ERROR and says in f.message for f in report.findings)
    assert report.losses == []  # no record is fit to train on
    assert report.samples == []
    text = printed(report)
    assert "0 of 6 records render" in text
    assert "did not run" in text
    assert "smoke failed: 6 error(s)" in text


def test_a_max_seq_length_shorter_than_the_chats_is_reported(hub, smollm2_tokenizer, kwanzaa_repo):
    edit(
        kwanzaa_repo / f"adapters/{ADAPTER}/qlora.yaml", "max_seq_length: 768", "max_seq_length: 96"
    )
    seed_base(hub, smollm2_tokenizer)
    report = run_smoke(
        load(kwanzaa_repo), kwanzaa_repo, HubClient(hub.endpoint), steps=1, max_records=4
    )
    too_long = [f for f in report.findings if f.rule_id == "smoke.too-long"]
    assert [f.path for f in too_long] == [EVAL_FILE, TRAIN_FILE]
    assert all(f.severity is Severity.WARNING for f in too_long)
    assert all(
        "4 of the 4 records checked are longer than max_seq_length (96 tokens)" in f.message
        for f in too_long
    )
    # Cut at 96 tokens, no chat keeps any of its answer: nothing is left to train on.
    [failed] = [f for f in report.findings if f.severity is Severity.ERROR]
    assert (failed.rule_id, failed.path) == ("smoke.training", f"adapters/{ADAPTER}/qlora.yaml")
    assert "training failed" in failed.message
    assert not report.ok
    assert "smoke failed: 1 error(s), 2 warning(s)" in printed(report)


def test_a_base_model_the_hub_does_not_have_is_a_clear_error(hub, kwanzaa_repo):
    with pytest.raises(RunnerError) as raised:
        run_smoke(load(kwanzaa_repo), kwanzaa_repo, HubClient(hub.endpoint))
    message = str(raised.value)
    assert BASE in message
    assert "base_model.id and base_model.revision in adapter.yaml" in message
    assert "Traceback" not in message


def test_only_the_tokenizer_files_of_the_base_model_are_fetched(hub, smollm2_tokenizer, tmp_path):
    weights = {"model.safetensors": b"\0" * 1024, "config.json": b"{}"}
    seed_base(hub, smollm2_tokenizer | weights)
    folder = fetch_base_tokenizer(
        HubClient(hub.endpoint), SMOLLM2_REPO_ID, SMOLLM2_REVISION, dest=tmp_path / "tokenizer"
    )
    assert sorted(p.name for p in folder.iterdir()) == sorted(smollm2_tokenizer)
    assert all((folder / name).read_bytes() == data for name, data in smollm2_tokenizer.items())


def test_runner_smoke_passes_on_the_embedded_default_and_fails_on_a_broken_chat(
    hub, smollm2_tokenizer, kwanzaa_repo, monkeypatch, run_cli
):
    seed_base(hub, smollm2_tokenizer)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, out, _ = run_cli("smoke", ADAPTER, "--steps", "2", "--repo", kwanzaa_repo)
    assert code == 0, out
    assert "smoke passed" in out
    assert "2 steps, loss" in out

    indent_answer(kwanzaa_repo, line=1)
    code, out, _ = run_cli("smoke", ADAPTER, "--steps", "1", "--repo", kwanzaa_repo)
    assert code == 1
    assert f"{TRAIN_FILE}:1 " in out
    assert "smoke failed" in out
