"""The serving engine: a real vLLM server (from .venv-serve) on a tiny Llama with a tiny LoRA,
started once for the module, and the machine it measures on."""

from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runner.errors import RunnerError
from runner.serving import vllm
from runner.serving.hardware import (
    Hardware,
    matches,
    parse_compute_apps,
    parse_cpuinfo,
    this_machine,
)
from runner.serving.vllm import ServerSettings, VllmServer, group_members

TOKEN = "hf_servingTestToken12345"
PROMPT = [{"role": "user", "content": "What is Kwanzaa?"}]


@pytest.fixture(scope="module")
def tiny_lora(vllm_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A rank-8 LoRA on q/v whose random weights change what the model says."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folder = tmp_path_factory.mktemp("tiny-lora")
    torch.manual_seed(1)
    lora = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    get_peft_model(AutoModelForCausalLM.from_pretrained(vllm_tiny), lora).save_pretrained(folder)
    return folder


def settings(model_dir: Path, adapter_dir: Path, log_path: Path) -> ServerSettings:
    return ServerSettings(
        model_dir=model_dir,
        adapter_dir=adapter_dir,
        max_lora_rank=8,
        max_model_len=512,
        dtype="float32",
        max_num_seqs=4,
        log_path=log_path,
    )


@pytest.fixture(scope="module")
def server(vllm_tiny: Path, tiny_lora: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("vllm-log") / "server.log"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_TOKEN", TOKEN)
        with VllmServer(settings(vllm_tiny, tiny_lora, log)) as started:
            yield started


def test_a_streamed_chat_through_the_lora_returns_text_with_its_timings(server: VllmServer):
    completion = server.chat(PROMPT, max_tokens=16)

    assert completion.text
    assert 0 < completion.ttft_ms <= completion.latency_ms
    assert 0 < completion.output_tokens <= 16
    assert completion.finish_reason in {"stop", "length"}
    assert server.engine.startswith("vLLM ")
    assert server.start_seconds > 0


def test_the_lora_changes_what_the_served_model_says(server: VllmServer):
    candidate = server.chat(PROMPT, max_tokens=16)
    base = server.chat(PROMPT, max_tokens=16, model="base")

    assert server.chat(PROMPT, max_tokens=16).text == candidate.text  # greedy
    assert base.text != candidate.text


def test_concurrent_chats_answer_as_one_at_a_time(server: VllmServer):
    alone = server.chat(PROMPT, max_tokens=16)
    with ThreadPoolExecutor(max_workers=4) as pool:
        together = list(pool.map(lambda _: server.chat(PROMPT, max_tokens=16), range(4)))

    assert {completion.text for completion in together} == {alone.text}


def test_tokenize_gives_the_engine_token_ids(server: VllmServer, vllm_tiny: Path):
    from transformers import AutoTokenizer

    expected = AutoTokenizer.from_pretrained(vllm_tiny).encode("Kwanzaa", add_special_tokens=False)
    assert server.tokenize("Kwanzaa") == expected


def test_the_servers_peak_memory_is_measured(server: VllmServer):
    assert server.peak_memory_bytes() > 50 * 1024**2


def test_the_token_never_reaches_the_servers_environment(server: VllmServer):
    environ = Path(f"/proc/{server.pid}/environ").read_bytes()

    assert TOKEN.encode() not in environ
    assert b"HF_HUB_OFFLINE=1" in environ
    assert b"VLLM_NO_USAGE_STATS=1" in environ


def test_a_model_the_engine_cannot_load_fails_with_its_log(tiny_lora: Path, tmp_path: Path):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    log = tmp_path / "server.log"

    started = time.monotonic()
    with pytest.raises(RunnerError) as failure:
        VllmServer.start(settings(broken, tiny_lora, log))

    message = str(failure.value)
    assert "exited with code" in message
    assert str(log) in message
    assert log.read_text().strip().splitlines()[-1] in message
    assert time.monotonic() - started < 120


def test_a_missing_engine_python_says_how_to_get_vllm(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(vllm.ENGINE_PYTHON_ENV, str(tmp_path / "no-such-python"))

    with pytest.raises(RunnerError, match="make venv-serve"):
        vllm.engine_python()


def test_this_machine_without_a_gpu_is_a_cpu():
    machine = this_machine()

    assert machine.kind == ("gpu" if shutil.which("nvidia-smi") else "cpu")
    assert matches("cpu", machine) is (machine.kind == "cpu")
    assert machine.count >= 1
    assert machine.memory_gib > 0
    assert machine.described.startswith(f"{machine.hardware_class}: ")


def test_the_cpu_model_is_read_from_cpuinfo():
    cpuinfo = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) 8375C\n"

    assert parse_cpuinfo(cpuinfo) == "Intel(R) Xeon(R) 8375C"


def test_gpu_memory_is_read_per_process_from_nvidia_smi():
    answer = "4242, 3010\n4243, 512\n[N/A], [N/A]\n"

    assert parse_compute_apps(answer) == {4242: 3010 * 2**20, 4243: 512 * 2**20}


@pytest.mark.parametrize(
    ("declared", "hardware", "expected"),
    [
        ("cpu", Hardware("cpu", "AMD EPYC", 2, 23.0), True),
        ("cpu-upgrade", Hardware("cpu", "AMD EPYC", 8, 32.0), True),
        ("cpu-basic", Hardware("gpu", "NVIDIA A10G", 1, 24.0), False),
        ("a10g-small", Hardware("gpu", "NVIDIA A10G", 1, 24.0), True),
        ("a10g-small", Hardware("cpu", "AMD EPYC", 2, 23.0), False),
        ("h200x2", Hardware("gpu", "NVIDIA H200", 2, 140.0), True),
        ("h100", Hardware("gpu", "NVIDIA H200", 1, 140.0), False),
        ("a100-large", Hardware("gpu", "NVIDIA A100-SXM4-80GB", 1, 80.0), True),
        ("l4x1", Hardware("gpu", "NVIDIA L40S", 1, 48.0), False),
        ("l40sx4", Hardware("gpu", "NVIDIA L40S", 4, 48.0), True),
        ("t4-medium", Hardware("gpu", "Tesla T4", 1, 16.0), True),
    ],
)
def test_declared_hardware_matches_by_flavor_name(declared, hardware, expected):
    assert matches(declared, hardware) is expected


def test_stopping_the_server_leaves_no_process_behind(server: VllmServer):
    """Last in the file (pytest keeps a file's order): it stops the module's server, which
    saves a second ~40 s start."""
    assert len(group_members(server.pid)) > 1  # the API server, its engine core, its workers

    stopping = time.monotonic()
    server.stop()

    assert group_members(server.pid) == []
    assert time.monotonic() - stopping < 3 * vllm.STOP_GRACE_S
