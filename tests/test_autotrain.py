"""The `autotrain` engine: AutoTrain 0.8.36 `llm-sft` configs rendered strictly from the specs
(what AutoTrain cannot honour is an error naming the qlora.yaml key), its Space of the same
five files, and its app judged by artifacts on the Hub emulator, never by AutoTrain's exit
code. AutoTrain itself is not installed: `make autotrain-check` runs its real parser."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from pathlib import Path

import pytest
import yaml

from runner.engines import ENGINES
from runner.engines.autotrain import (
    AUTOTRAIN,
    AutoTrainConfig,
    autotrain_compatible,
    autotrain_config_yaml,
    project_name,
    render_autotrain_config,
)
from runner.engines.trl import TRL
from runner.errors import SpecError
from runner.policy.loading import load_policies
from runner.policy.space import check_space
from runner.space import image
from runner.space.render import render_space
from runner.specs import require_adapter
from runner.specs.adapter import BaseModelRef, TrainingTarget
from runner.workspace import Workspace
from tests.conftest import REPO_ROOT

EXAMPLES = ["ainative-v1", "ainative-v2", "kwanzaa-mini-v1", "kwanzaa-v0"]
RUN_ID = "0123456789abcdef"
REVISION = "a" * 40
TOKEN = "hf_" + "x1" * 17
WHERE = "space:ainative/adapter-trainer"


def example(name: str):
    return require_adapter(Workspace(REPO_ROOT), name)


def compatible(bundle):
    training, _ = autotrain_compatible(bundle.training)
    return dataclasses.replace(bundle, training=training)


def render(bundle, **overrides):
    arguments = {
        "run_id": RUN_ID,
        "username": "ainative",
        "dataset_repo": "ainative/chat-data",
        "dataset_revision": REVISION,
    }
    return render_autotrain_config(bundle, **(arguments | overrides))


def findings_of(bundle) -> list[tuple[str, int | None, str]]:
    with pytest.raises(SpecError) as caught:
        render(bundle)
    return [(f.path, f.line, f.message) for f in caught.value.findings]


def line_of(path: Path, text: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if text in line)


# -- the config -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", EXAMPLES)
def test_each_example_adapter_renders_a_strict_config_once_unsupported_settings_are_off(name):
    bundle = compatible(example(name))
    config = render(bundle)
    AutoTrainConfig.model_validate(config)
    training, params = bundle.training, config["params"]
    assert config["task"] == "llm-sft"
    assert config["backend"] == "local"
    assert config["project_name"] == f"{bundle.adapter.name}-v{bundle.adapter.version}-{RUN_ID}"
    assert config["base_model"] == (
        f"inputs/models/{bundle.adapter.base_model.id}/{bundle.adapter.base_model.revision}"
    )
    assert config["data"] == {
        "path": f"inputs/datasets/ainative/chat-data/{REVISION}",
        "train_split": "train",
        "valid_split": None,
        "chat_template": "tokenizer",
        "column_mapping": {"text_column": "messages"},
    }
    assert config["hub"] == {"username": "ainative", "token": "${HF_TOKEN}", "push_to_hub": True}
    assert params["target_modules"] == ",".join(training.target_modules)
    assert (params["lora_r"], params["lora_alpha"], params["lora_dropout"]) == (
        training.r,
        training.lora_alpha,
        training.lora_dropout,
    )
    assert params["block_size"] == params["model_max_length"] == training.max_seq_length
    assert params["quantization"] == ("int4" if training.method == "qlora" else None)
    assert params["peft"] is True
    assert params["merge_adapter"] is False
    assert params["disable_gradient_checkpointing"] is not training.gradient_checkpointing


def test_the_rendered_yaml_reads_back_as_the_same_config_and_holds_no_token():
    config = render(compatible(example("ainative-v2")))
    text = autotrain_config_yaml(config)
    assert yaml.safe_load(text) == config
    assert "${HF_TOKEN}" in text
    assert not re.search(r"hf_[A-Za-z0-9]", text)


def test_double_quantization_the_team_default_is_an_error_naming_the_key_file_and_line():
    found = findings_of(example("ainative-v1"))
    path = "adapters/ainative-v1/qlora.yaml"
    line = line_of(REPO_ROOT / path, "bnb_4bit_use_double_quant: true")
    double_quant = [f for f in found if "bnb_4bit_use_double_quant" in f[2]]
    assert [(p, n) for p, n, _ in double_quant] == [(path, line)]
    assert "AutoTrain 0.8.36" in double_quant[0][2]


def test_a_default_autotrain_cannot_honour_is_an_error_without_a_line_saying_it_is_the_default():
    found = findings_of(example("kwanzaa-mini-v1"))
    assert (
        "adapters/kwanzaa-mini-v1/qlora.yaml",
        None,
        "`assistant_only_loss: true` (the default) cannot be honoured by AutoTrain 0.8.36: "
        "the SFT trainer renders each conversation to one text field and trains on every token "
        "(trl 0.13 packing with the plain language-modelling collator)",
    ) in found


COMPATIBLE_QLORA = """\
method: qlora
target_modules: [q_proj, v_proj]
quantization:
  load_in_4bit: true
  bnb_4bit_use_double_quant: false
  bnb_4bit_compute_dtype: float16
assistant_only_loss: false
"""


def with_setting(setting: str) -> str:
    """COMPATIBLE_QLORA plus one line; an indented line goes into the quantization block."""
    if setting.startswith("  "):
        anchor = "  load_in_4bit: true\n"
        return COMPATIBLE_QLORA.replace(anchor, f"{anchor}{setting}\n")
    return f"{COMPATIBLE_QLORA}{setting}\n"


@pytest.mark.parametrize(
    ("setting", "key"),
    [
        ("  bnb_4bit_quant_type: fp4", "quantization.bnb_4bit_quant_type"),
        ("max_steps: 100", "max_steps"),
        ("num_train_epochs: 2.5", "num_train_epochs"),
        ("packing: false", "packing"),
        ("modules_to_save: [lm_head]", "modules_to_save"),
        ("seed: 7", "seed"),
    ],
)
def test_each_setting_autotrain_cannot_honour_is_an_error_at_its_key(demo_repo, setting, key):
    qlora = demo_repo / "adapters/demo-v1/qlora.yaml"
    qlora.write_text(with_setting(setting))
    bundle = require_adapter(Workspace(demo_repo), "demo-v1")
    [(path, line, message)] = findings_of(bundle)
    assert path == "adapters/demo-v1/qlora.yaml"
    assert line == line_of(qlora, key.rsplit(".", 1)[-1] + ":")
    assert message.startswith(f"`{key}: ")
    assert "cannot be honoured by AutoTrain 0.8.36" in message


def test_a_setting_autotrain_honours_as_written_is_no_error(demo_repo):
    (demo_repo / "adapters/demo-v1/qlora.yaml").write_text(COMPATIBLE_QLORA + "optim: adafactor\n")
    config = render(require_adapter(Workspace(demo_repo), "demo-v1"))
    assert config["params"]["optimizer"] == "adafactor"
    assert config["params"]["mixed_precision"] == "fp16"  # AutoTrain's int4 computes in fp16


def test_the_project_name_is_per_run_and_within_autotrain_limits():
    bundle = compatible(example("kwanzaa-mini-v1"))
    assert project_name(bundle, RUN_ID) == f"kwanzaa-mini-v1-{RUN_ID}"
    long_name = bundle.adapter.model_copy(update={"name": "a_very" + "-long" * 12 + "-name"})
    name = project_name(dataclasses.replace(bundle, adapter=long_name), RUN_ID)
    assert len(name) <= 50
    assert name.endswith(f"-v1-{RUN_ID}")
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", name)
    with pytest.raises(ValueError, match="16 lowercase hex"):
        project_name(bundle, "not-a-run-id")


# -- the Space --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def policies():
    return load_policies(Workspace(REPO_ROOT))


def test_the_autotrain_space_is_the_same_five_files_and_passes_the_space_policy(policies):
    files = render_space("kwanzaa-mini-v1", AUTOTRAIN.space_app)
    assert sorted(files) == [".gitattributes", "Dockerfile", "README.md", "app.py", "train.py"]
    assert check_space(files, policies.space, policies.text, where=WHERE) == []
    trl = render_space("kwanzaa-mini-v1", TRL.space_app)
    assert files["train.py"] == trl["train.py"]
    assert files[".gitattributes"] == trl[".gitattributes"]
    template = REPO_ROOT / "runner/space/autotrain_app_template.py"
    assert files["app.py"] == template.read_text()
    assert not any(re.search(r"hf_[A-Za-z0-9]{8,}", content) for content in files.values())


def test_the_autotrain_dockerfile_builds_from_the_pinned_image_with_only_pinned_installs():
    lines = render_space("kwanzaa-mini-v1", AUTOTRAIN.space_app)["Dockerfile"].splitlines()
    assert lines[0] == f"FROM {image.AUTOTRAIN_BASE_IMAGE}"
    assert ":latest" not in lines[0]
    assert re.fullmatch(r"FROM \S+:\S+", lines[0])
    installs = [line for line in lines if "pip install" in line]
    assert installs == ["RUN pip install --no-cache-dir autotrain-advanced==0.8.36"]
    assert "EXPOSE 7860" in lines
    assert lines[-1] == 'CMD ["python", "app.py"]'


def test_the_trl_space_is_what_it_was_when_no_engine_is_named():
    assert ENGINES[TrainingTarget().engine] is TRL
    trl = render_space("kwanzaa-mini-v1", TRL.space_app)
    assert "autotrain" not in (trl["Dockerfile"] + trl["README.md"] + trl["app.py"]).lower()


def test_autotrain_runs_without_the_space_id_so_it_cannot_pause_the_space_itself(monkeypatch):
    from runner.space import autotrain_app_template as app

    monkeypatch.setenv("SPACE_ID", "ainative/adapter-trainer")
    monkeypatch.setenv("ENDPOINT_ID", "ainative/endpoint")
    env = app.autotrain_env()
    assert "SPACE_ID" not in env
    assert "ENDPOINT_ID" not in env
    assert env["PAUSE_ON_FAILURE"] == "0"


# -- the app on the Hub emulator --------------------------------------------------------------

RECORDS = [
    {"id": f"r{n}", "category": "x", "messages": [{"role": "user", "content": f"q{n}"}]}
    for n in range(2)
]
SPACE = "ainative/adapter-trainer"
OUTPUT = "ainative/kwanzaa-mini-lora-candidates"


@pytest.fixture
def api(hub):
    from huggingface_hub import HfApi

    return HfApi(endpoint=hub.endpoint, token=TOKEN)


def seed_inputs(api) -> tuple[str, str]:
    """A base model and a chat dataset; returns their commits."""
    api.create_repo("ainative/tiny-base")
    base = api.upload_file(
        path_or_fileobj=b'{"model_type": "llama"}', path_in_repo="config.json",
        repo_id="ainative/tiny-base",
    )  # fmt: skip
    api.create_repo("ainative/chat-data", repo_type="dataset")
    lines = "".join(json.dumps(record) + "\n" for record in RECORDS)
    data = api.upload_file(
        path_or_fileobj=lines.encode(), path_in_repo="data/train.jsonl",
        repo_id="ainative/chat-data", repo_type="dataset",
    )  # fmt: skip
    return base.oid, data.oid


def configs(base_revision: str, data_revision: str) -> tuple[dict, str]:
    """The run config and the AutoTrain config text of one kwanzaa-mini run."""
    bundle = compatible(example("kwanzaa-mini-v1"))
    base = BaseModelRef.model_validate({"id": "ainative/tiny-base", "revision": base_revision})
    bundle = dataclasses.replace(
        bundle, adapter=bundle.adapter.model_copy(update={"base_model": base})
    )
    config = render(bundle, dataset_revision=data_revision)
    run_config = {
        "run_id": RUN_ID,
        "adapter": "kwanzaa-mini-v1",
        "base_model": {"repo_id": "ainative/tiny-base", "revision": base_revision},
        "dataset": {
            "repo_id": "ainative/chat-data",
            "revision": data_revision,
            "train_file": "data/train.jsonl",
            "eval_file": "data/eval.jsonl",
        },
        "output": {"repo_id": OUTPUT, "repo_type": "model", "path_in_repo": f"runs/{RUN_ID}"},
    }
    return run_config, autotrain_config_yaml(config)


def run_space(api, run_config: dict, autotrain_config: str, *, push: bool) -> None:
    """Sync the autotrain Space in one commit (which starts it) and wait until it paused."""
    from huggingface_hub import CommitOperationAdd

    api.create_repo(SPACE, repo_type="space", space_sdk="docker")
    api.add_space_secret(SPACE, "HF_TOKEN", TOKEN)
    api.add_space_variable(SPACE, "RUN_CONFIG", json.dumps(run_config))
    api.add_space_variable(SPACE, "AUTOTRAIN_CONFIG", autotrain_config)
    api.add_space_variable(SPACE, "FAKE_AUTOTRAIN_PUSH", "1" if push else "0")
    files = render_space("kwanzaa-mini-v1", AUTOTRAIN.space_app)
    operations = [CommitOperationAdd(name, content.encode()) for name, content in files.items()]
    api.create_commit(SPACE, operations=operations, commit_message="Sync", repo_type="space")
    deadline = time.monotonic() + 90
    while (stage := api.get_space_runtime(SPACE).stage) != "PAUSED":
        assert stage not in ("RUNTIME_ERROR", "BUILD_ERROR", "CONFIG_ERROR", "NO_APP_FILE"), stage
        assert time.monotonic() < deadline, f"still {stage} after 90 s"
        time.sleep(0.5)


def candidate(api, tmp_path: Path) -> dict[str, bytes]:
    """The files of the run's output folder, by name."""
    prefix = f"runs/{RUN_ID}/"
    names = [n for n in api.list_repo_files(OUTPUT) if n.startswith(prefix)]
    return {
        name.removeprefix(prefix): Path(
            api.hf_hub_download(OUTPUT, name, local_dir=tmp_path / "candidate")
        ).read_bytes()
        for name in names
    }


def test_an_autotrain_run_that_pushed_its_adapter_becomes_a_succeeded_candidate(
    api, fake_autotrain, tmp_path
):
    run_config, autotrain_config = configs(*seed_inputs(api))
    run_space(api, run_config, autotrain_config, push=True)
    files = candidate(api, tmp_path)
    assert sorted(files) == ["adapter_config.json", "adapter_model.safetensors", "run.json"]
    assert files["adapter_model.safetensors"] == b"fresh weights"
    record = json.loads(files["run.json"])
    assert record["status"] == "succeeded", record["error"]
    assert record["engine"] == "autotrain"
    assert record["error"] is None
    assert record["config"] == run_config
    assert {"run_id", "adapter", "started_at", "finished_at"} <= set(record)
    commits = api.list_repo_commits(OUTPUT)
    assert len([c for c in commits if "Candidate" in c.title]) == 1  # one commit


def test_an_autotrain_run_that_pushed_nothing_is_a_failed_candidate_with_its_log_tail(
    api, fake_autotrain, tmp_path
):
    run_config, autotrain_config = configs(*seed_inputs(api))
    run_space(api, run_config, autotrain_config, push=False)
    files = candidate(api, tmp_path)
    assert sorted(files) == ["autotrain.log", "run.json"]
    record = json.loads(files["run.json"])
    assert record["status"] == "failed"
    assert record["engine"] == "autotrain"
    assert record["error"]["stage"] == "train"
    assert record["error"]["message"].startswith("AutoTrain never created ainative/kwanzaa-mini")
    assert (
        "AutoTrain exited 0, which it does even when training failed" in record["error"]["message"]
    )
    log = files["autotrain.log"].decode()
    assert "fake autotrain pushes nothing: []" in log
    assert TOKEN not in log
    assert TOKEN not in files["run.json"].decode()


def test_adapter_files_left_from_an_earlier_attempt_do_not_make_a_run_succeed(
    api, fake_autotrain, tmp_path
):
    run_config, autotrain_config = configs(*seed_inputs(api))
    stale = yaml.safe_load(autotrain_config)
    repo = f"ainative/{stale['project_name']}"
    api.create_repo(repo, private=True)
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        api.upload_file(path_or_fileobj=b"old", path_in_repo=name, repo_id=repo)
    # AutoTrain now fails to create its repo (409, no exist_ok) and pushes nothing.
    run_space(api, run_config, autotrain_config, push=True)
    files = candidate(api, tmp_path)
    record = json.loads(files["run.json"])
    assert record["status"] == "failed"
    assert "predate this run" in record["error"]["message"]
    assert "adapter_model.safetensors" not in files


def test_an_autotrain_config_rendered_for_other_pinned_inputs_is_refused_before_autotrain_runs(
    api, fake_autotrain, tmp_path
):
    base_revision, data_revision = seed_inputs(api)
    run_config, _ = configs(base_revision, data_revision)
    _, other_data = configs(base_revision, "b" * 40)
    run_space(api, run_config, other_data, push=True)
    files = candidate(api, tmp_path)
    assert sorted(files) == ["run.json"]  # no autotrain.log: AutoTrain never started
    record = json.loads(files["run.json"])
    assert record["status"] == "failed"
    assert record["error"]["stage"] == "config"
    assert "AUTOTRAIN_CONFIG does not match RUN_CONFIG: data.path" in record["error"]["message"]
