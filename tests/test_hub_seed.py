"""Base models for the Hub emulator: the tiny random Llama, SmolLM2 converted from its GGUF,
and seeding both into the emulator with the real huggingface_hub client."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from huggingface_hub import snapshot_download
from transformers import AutoModelForCausalLM, AutoTokenizer

from runner.hub.emulator import EmulatorServer
from runner.hub.seed import (
    BUILDERS,
    MIRRORED_REVISIONS,
    SMOLLM2_CHAT_TEMPLATE,
    SMOLLM2_REPO_ID,
    SeedError,
    build_smollm2,
    build_tiny_llama,
    seed_emulator,
    seed_hub,
)
from runner.hub.tiny_llama import TINY_REPO_ID

REPO_ROOT = Path(__file__).resolve().parent.parent

FRANCE = [{"role": "user", "content": "What is the capital of France?"}]
SYSTEM = {"role": "system", "content": "Reply with one JSON object."}
# "indented-code" breaks GPT-2's byte-level regex ("\n   " is one pre-token there).
CHATS = [
    [SYSTEM, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}],
    [
        {"role": "user", "content": "Which chunk?"},
        {"role": "assistant", "content": '{"answer": "kw-hist-07", "citations": ["kw-hist-07"]}'},
    ],
    [
        SYSTEM,
        {"role": "user", "content": "Code?"},
        {"role": "assistant", "content": "    return a + b"},
    ],
    [
        SYSTEM,
        {"role": "user", "content": "2 + 2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "And 3 + 3?"},
        {"role": "assistant", "content": "{'sum': 6}\n\n  done."},
    ],
]


@pytest.fixture(scope="session")
def smollm2_folder(model_cache: Path) -> Path:
    return build_smollm2(model_cache)


def folder_hashes(folder: Path) -> dict[str, str]:
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest() for f in folder.iterdir()}


def greedy_reply(folder: Path, messages: list[dict[str, str]], max_new_tokens: int) -> str:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    model.eval()
    inputs: Any = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=max_new_tokens, do_sample=False)
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    assert len(new_tokens) > 0
    return tokenizer.decode(new_tokens, skip_special_tokens=True)


@pytest.mark.parametrize("chat", CHATS, ids=["greeting", "json", "indented-code", "multi-turn"])
def test_tiny_generation_prompt_is_a_token_prefix_of_the_training_chat(
    tiny_folder: Path, chat: list[dict[str, str]]
) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    prompt = tokenizer.apply_chat_template(
        chat[:-1], add_generation_prompt=True, tokenize=True, return_dict=True
    )["input_ids"]
    full = tokenizer.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"]
    assert full[: len(prompt)] == prompt
    assert len(full) > len(prompt)


def test_tiny_tokenizer_has_chatml_special_tokens_and_its_own_pad(tiny_folder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    text = tokenizer.apply_chat_template(FRANCE, add_generation_prompt=True, tokenize=False)
    assert (
        text
        == "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id not in (None, tokenizer.eos_token_id)
    assert tokenizer.decode(tokenizer('{"answer": [1, 2]}')["input_ids"]) == '{"answer": [1, 2]}'


def test_tiny_llama_builds_byte_identical_twice(tmp_path: Path) -> None:
    first = build_tiny_llama(tmp_path / "a")
    second = build_tiny_llama(tmp_path / "b")
    assert first.name == second.name
    assert folder_hashes(first) == folder_hashes(second)
    assert (first / "model.safetensors").is_file()


def test_tiny_llama_is_small_trainable_and_generates(tiny_folder: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_folder)
    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    assert 100_000 < model.num_parameters() < 2_000_000
    assert model.config.vocab_size == len(tokenizer) >= 512
    assert 0.1 <= model.config.initializer_range <= 0.2
    assert isinstance(greedy_reply(tiny_folder, FRANCE, max_new_tokens=6), str)


def test_second_build_reuses_the_cached_folder(tiny_folder: Path, model_cache: Path) -> None:
    before = (tiny_folder / "model.safetensors").stat().st_mtime_ns
    assert build_tiny_llama(model_cache) == tiny_folder
    assert (tiny_folder / "model.safetensors").stat().st_mtime_ns == before


def test_smollm2_from_gguf_answers_paris(smollm2_folder: Path, model_cache: Path) -> None:
    assert build_smollm2(model_cache) == smollm2_folder
    assert "Paris" in greedy_reply(smollm2_folder, FRANCE, max_new_tokens=24)


def test_smollm2_tokenizer_keeps_the_instruct_chat_template(smollm2_folder: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(smollm2_folder)
    assert tokenizer.chat_template == SMOLLM2_CHAT_TEMPLATE  # the GGUF's, which is the official one
    text = tokenizer.apply_chat_template(FRANCE, add_generation_prompt=True, tokenize=False)
    assert text.startswith(
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\n"
    )
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    assert (tokenizer.eos_token, tokenizer.pad_token) == ("<|im_end|>", "<|im_end|>")
    assert tokenizer.tokenize("x 42") == ["x", "Ġ", "4", "2"]  # SmolLM2 splits digits


def test_seeding_an_unknown_model_names_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(SeedError, match="can seed"):
        seed_hub("http://127.0.0.1:9", "token", tmp_path, ["someone/unknown"])


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Any]:
    with EmulatorServer(tmp_path / "hub-data") as server:
        yield server


def load_from_hub(endpoint: str, repo_id: str, cache_dir: Path) -> Any:
    path = snapshot_download(repo_id, endpoint=endpoint, cache_dir=cache_dir, token="hf_reader123")
    return AutoModelForCausalLM.from_pretrained(path)


def test_seeded_base_models_download_from_the_emulator_and_load(
    emulator: Any, model_cache: Path, tmp_path: Path
) -> None:
    commits = seed_emulator(emulator, model_cache, [TINY_REPO_ID])
    assert seed_emulator(emulator, model_cache, [TINY_REPO_ID]) == commits  # no new commit
    assert len(commits[TINY_REPO_ID]) == 40
    model = load_from_hub(emulator.endpoint, TINY_REPO_ID, tmp_path / "hf-cache")
    assert model.config.model_type == "llama"


def test_seed_hub_uploads_over_http_once(
    emulator: Any, model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The emulated user may write to demo-org only, so the tiny model goes there.
    repo_id = "demo-org/tiny-random-llama"
    monkeypatch.setitem(BUILDERS, repo_id, build_tiny_llama)
    commits = seed_hub(emulator.endpoint, "hf_seedToken1234", model_cache, [repo_id])
    assert seed_hub(emulator.endpoint, "hf_seedToken1234", model_cache, [repo_id]) == commits
    model = load_from_hub(emulator.endpoint, repo_id, tmp_path / "hf-cache")
    assert model.config.model_type == "llama"


def test_a_mirrored_base_model_is_served_at_its_real_hub_commit(
    emulator: Any, model_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    upstream = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setitem(MIRRORED_REVISIONS, TINY_REPO_ID, upstream)
    assert seed_emulator(emulator, model_cache, [TINY_REPO_ID]) == {TINY_REPO_ID: upstream}
    assert seed_emulator(emulator, model_cache, [TINY_REPO_ID]) == {TINY_REPO_ID: upstream}
    path = snapshot_download(
        TINY_REPO_ID, revision=upstream, endpoint=emulator.endpoint, cache_dir=tmp_path / "c"
    )
    assert (Path(path) / "config.json").is_file()


def test_the_embedded_default_pins_the_commit_the_emulator_serves_smollm2_at() -> None:
    spec = (REPO_ROOT / "adapters" / "kwanzaa-mini-v1" / "adapter.yaml").read_text()
    assert f"revision: {MIRRORED_REVISIONS[SMOLLM2_REPO_ID]}" in spec
