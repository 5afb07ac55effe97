"""Serveability lint: settings vLLM refuses or serves wrongly are findings before any GPU
minute: in qlora.yaml (`runner validate`), in the base's chat template (`runner smoke`), and
in a trained adapter's files (what `runner eval` checks before serving the candidate)."""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path

import pytest

from runner.errors import InputError
from runner.findings import Severity
from runner.serving.lint import VLLM_MAX_LORA_RANK, adapter_findings, engine_lora_rank
from tests import test_smoke
from tests.conftest import edit
from tests.test_smoke import ADAPTER, seed_base

# The smoke tests' fixtures: the base's tokenizer files, a fresh HF cache, the adapter's repo.
smollm2_tokenizer = test_smoke.smollm2_tokenizer
empty_hf_cache = test_smoke.empty_hf_cache
kwanzaa_repo = test_smoke.kwanzaa_repo

QLORA = "adapters/demo-v1/qlora.yaml"
TURN_END = "'<|im_end|>' + '\n'"


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# -- runner validate ----------------------------------------------------------------------------


def test_validate_says_at_its_line_that_the_engine_refuses_modules_to_save(demo_repo, run_cli):
    qlora = demo_repo / QLORA
    edit(qlora, "learning_rate:", "modules_to_save:\n  - lm_head\nlearning_rate:")
    code, out, _ = run_cli("validate", "adapters/demo-v1", "--repo", demo_repo)
    assert code == 1, out
    assert f"{QLORA}:{line_of(qlora, '- lm_head')}:" in out
    assert 'modules_to_save "lm_head": vLLM 0.32 refuses to load an adapter' in out
    assert "[serving.modules-to-save]" in out


def test_validate_says_a_rank_above_the_engines_largest_is_refused(demo_repo, run_cli):
    qlora = demo_repo / QLORA
    edit(qlora, "r: 16", "r: 1024")
    code, out, _ = run_cli("validate", "adapters/demo-v1", "--repo", demo_repo)
    assert code == 1, out
    assert f"{QLORA}:{line_of(qlora, 'r: 1024')}:" in out
    assert "LoRA rank 1024 is above vLLM 0.32's largest --max-lora-rank (512)" in out


def test_validate_of_the_fixture_adapter_says_nothing_about_serving(demo_repo, run_cli):
    _, out, _ = run_cli("validate", "adapters/demo-v1", "--repo", demo_repo)
    assert "serving." not in out


def test_the_server_rank_is_the_smallest_the_engine_accepts_that_holds_r():
    assert [engine_lora_rank(r) for r in (1, 2, 8, 16, 17, 300, 321, 512)] == [
        1,
        8,
        8,
        16,
        32,
        320,
        512,
        512,
    ]
    with pytest.raises(InputError, match="r at most 512"):
        engine_lora_rank(VLLM_MAX_LORA_RANK + 1)


# -- runner smoke -------------------------------------------------------------------------------


def test_smoke_warns_when_the_chat_template_ends_a_turn_without_the_eos_token(
    hub, smollm2_tokenizer, kwanzaa_repo, monkeypatch, run_cli
):
    template = smollm2_tokenizer["chat_template.jinja"].decode()
    assert TURN_END in template
    no_eos = template.replace(TURN_END, "'\n'")
    seed_base(hub, smollm2_tokenizer | {"chat_template.jinja": no_eos.encode()})
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    code, out, _ = run_cli("smoke", ADAPTER, "--steps", "1", "--repo", kwanzaa_repo)
    adapter_yaml = kwanzaa_repo / f"adapters/{ADAPTER}/adapter.yaml"
    assert code == 0, out  # a warning: generation_config.json may add the stop token
    assert f"adapters/{ADAPTER}/adapter.yaml:{line_of(adapter_yaml, 'id:')}" in out
    assert 'ends an assistant turn with "\\n", without the eos_token "<|im_end|>"' in out
    assert "served answers run on to max_tokens  [serving.chat-template-eos]" in out


# -- a trained adapter --------------------------------------------------------------------------


def save_adapter(tiny_folder: Path, dest: Path, **lora: object) -> Path:
    """A real PEFT adapter of the tiny Llama, as train.py saves one."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_folder)
    get_peft_model(model, LoraConfig(r=8, **lora)).save_pretrained(dest)
    return dest


def base_config(tiny_folder: Path, **changes: object) -> dict[str, object]:
    return json.loads((tiny_folder / "config.json").read_text()) | changes


def test_a_saved_adapter_with_lora_weights_only_is_serveable(tiny_folder, tmp_path):
    adapter = save_adapter(tiny_folder, tmp_path / "plain", target_modules=["q_proj", "v_proj"])
    assert adapter_findings(adapter, base_config(tiny_folder)) == []


def test_a_saved_adapter_with_modules_to_save_is_refused(tiny_folder, tmp_path):
    adapter = save_adapter(
        tiny_folder, tmp_path / "saved", target_modules=["q_proj"], modules_to_save=["lm_head"]
    )
    [finding] = adapter_findings(adapter)
    assert (finding.rule_id, finding.severity) == ("serving.modules-to-save", Severity.ERROR)
    assert finding.path == (adapter / "adapter_config.json").as_posix()
    assert 'modules_to_save "lm_head": vLLM 0.32 refuses to load' in finding.message


def test_embedding_weights_the_config_does_not_declare_are_found_in_the_safetensors(
    tiny_folder, tmp_path
):
    adapter = save_adapter(
        tiny_folder, tmp_path / "saved", target_modules=["q_proj"], modules_to_save=["lm_head"]
    )
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["modules_to_save"] = None
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    [finding] = adapter_findings(adapter)
    assert finding.path == (adapter / "adapter_model.safetensors").as_posix()
    assert 'full embedding weights for "lm_head"' in finding.message


def test_a_lora_on_the_lm_head_of_a_tied_base_is_refused_with_the_reason(tiny_folder, tmp_path):
    adapter = save_adapter(tiny_folder, tmp_path / "head", target_modules=["q_proj", "lm_head"])
    # peft saves the base's lm_head next to a LoRA on it; the engine skips it: no finding.
    assert adapter_findings(adapter, base_config(tiny_folder)) == []  # the tiny base is untied
    [finding] = adapter_findings(adapter, base_config(tiny_folder, tie_word_embeddings=True))
    assert finding.rule_id == "serving.embedding-lora"
    assert "ties it to embed_tokens" in finding.message


def test_lora_weights_for_modules_the_engines_llama_lacks_are_refused(tmp_path):
    from safetensors.torch import save_file
    from torch import zeros

    adapter = tmp_path / "gpt2-adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "target_modules": []}))
    name = "base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"
    save_file({name: zeros(8, 4)}, adapter / "adapter_model.safetensors")
    [finding] = adapter_findings(adapter, {"architectures": ["LlamaForCausalLM"]})
    assert finding.rule_id == "serving.target-modules"
    assert 'LoRA weights for "c_attn"' in finding.message


def test_a_rank_above_the_engines_largest_is_refused_in_the_adapter_config(tmp_path):
    adapter = tmp_path / "wide"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8, "rank_pattern": {"q": 640}}))
    header = b"{}"
    (adapter / "adapter_model.safetensors").write_bytes(struct.pack("<Q", 2) + header)
    [finding] = adapter_findings(adapter)
    assert finding.rule_id == "serving.max-lora-rank"
    assert "LoRA rank 640" in finding.message


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (struct.pack("<Q", 2**63) + b"{}", "header claims 9223372036854775808 bytes"),
        (struct.pack("<Q", 12) + b"not json at all", "is not JSON"),
        (struct.pack("<Q", 4) + b"[1] ", "holds no JSON object"),
        (struct.pack("<Q", 20_001) + b"[" * 20_000 + b" ", "is not JSON"),
        (b"\x01\x02", "too short for a safetensors header"),
    ],
    ids=["huge-length", "not-json", "not-an-object", "nested-deep", "truncated"],
)
def test_a_hostile_safetensors_header_is_a_clear_finding_in_bounded_time(tmp_path, content, says):
    adapter = tmp_path / "hostile"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"r": 8}))
    (adapter / "adapter_model.safetensors").write_bytes(content)
    start = time.perf_counter()
    [finding] = adapter_findings(adapter)
    assert time.perf_counter() - start < 1.0
    assert (finding.rule_id, finding.severity) == ("serving.adapter-files", Severity.ERROR)
    assert says in finding.message
    assert finding.message.startswith("the adapter cannot be checked: adapter_model.safetensors")


def test_saved_embeddings_of_a_resized_vocabulary_are_refused(tiny_folder, tmp_path):
    adapter = save_adapter(tiny_folder, tmp_path / "head", target_modules=["lm_head"])
    vocab = base_config(tiny_folder)["vocab_size"]
    [finding] = adapter_findings(adapter, base_config(tiny_folder, vocab_size=vocab - 1))
    assert finding.rule_id == "serving.embedding-lora"
    assert (
        f'embeddings for "lm_head" with {vocab} rows, the base has {vocab - 1}' in finding.message
    )
