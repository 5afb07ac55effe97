"""`runner show` prints the resolved spec: what the adapter declares, with the team's safe
defaults filled in for everything it leaves out."""

from __future__ import annotations

from ruamel.yaml import YAML

from runner.specs import load_adapter
from runner.workspace import Workspace

A = "adapters/demo-v1"

SAFE_DEFAULTS = {
    "method": "qlora",
    "r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "quantization": {
        "load_in_4bit": True,
        "bnb_4bit_quant_type": "nf4",
        "bnb_4bit_use_double_quant": True,
        "bnb_4bit_compute_dtype": "bfloat16",
    },
    "lr_scheduler_type": "cosine",
    "warmup_ratio": 0.03,
    "learning_rate": 2e-4,
    "max_seq_length": 2048,
    "packing": True,
    "optim": "paged_adamw_8bit",
    "gradient_checkpointing": True,
    "seed": 42,
}


def shown(run_cli, repo, adapter=A) -> dict:
    code, out, err = run_cli("show", "--repo", repo, adapter)
    assert code == 0, err
    return YAML(typ="safe").load(out)


def test_an_empty_training_config_means_the_team_safe_defaults(demo_repo, run_cli):
    (demo_repo / A / "qlora.yaml").write_text(
        "# yaml-language-server: $schema=../../schemas/qlora.schema.json\n{}\n"
    )
    training = shown(run_cli, demo_repo)["training"]
    assert {key: training[key] for key in SAFE_DEFAULTS} == SAFE_DEFAULTS


def test_qlora_without_a_quantization_block_gets_nf4_double_quant_bf16(demo_repo, run_cli):
    qlora = demo_repo / A / "qlora.yaml"
    qlora.write_text(qlora.read_text().replace("quantization:\n  load_in_4bit: true\n", ""))
    assert shown(run_cli, demo_repo)["training"]["quantization"] == SAFE_DEFAULTS["quantization"]


def test_show_prints_all_four_specs_as_loaded(demo_repo, run_cli):
    resolved = shown(run_cli, demo_repo)
    bundle = load_adapter(Workspace(demo_repo), demo_repo / A).bundle
    assert resolved == bundle.resolved()
    assert list(resolved) == ["adapter", "dataset", "training", "eval"]
    assert resolved["adapter"]["training"]["engine"] == "trl"
    assert resolved["eval"]["comparisons"]["incumbent"]["margin"] == 0.02
