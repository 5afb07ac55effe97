"""`runner hub seed` and `runner hub serve` as a person uses them: seed a data dir offline,
serve it, and the seeded SmolLM2 answers a chat prompt after `snapshot_download`."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT

RUNNER = str(REPO_ROOT / ".venv/bin/runner")

ASK = """
import os, sys
from huggingface_hub import snapshot_download
from transformers import AutoModelForCausalLM, AutoTokenizer
path = snapshot_download("HuggingFaceTB/SmolLM2-135M-Instruct")
tokenizer = AutoTokenizer.from_pretrained(path)
model = AutoModelForCausalLM.from_pretrained(path).eval()
chat = [{"role": "user", "content": "What is the capital of France?"}]
inputs = tokenizer.apply_chat_template(chat, add_generation_prompt=True, return_dict=True,
                                       return_tensors="pt")
output = model.generate(**inputs, max_new_tokens=20, do_sample=False)
print(tokenizer.decode(output[0][inputs["input_ids"].shape[1]:], skip_special_tokens=True))
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_seeded_smollm2_answers_after_snapshot_download_from_a_served_emulator(
    tmp_path, model_cache
):
    data = tmp_path / "hub"
    seeded = subprocess.run(
        [RUNNER, "hub", "seed", "--data-dir", data, "--cache-dir", model_cache],
        capture_output=True,
        text=True,
        check=False,
    )
    assert seeded.returncode == 0, seeded.stderr
    assert "seeded HuggingFaceTB/SmolLM2-135M-Instruct @ " in seeded.stdout

    port = free_port()
    server = subprocess.Popen(
        [RUNNER, "hub", "serve", "--data-dir", data, "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while not listening(port):
            assert server.poll() is None, "the emulator exited"
            assert time.monotonic() < deadline, "the emulator did not start in 30 s"
            time.sleep(0.2)
        env = os.environ | {
            "HF_ENDPOINT": f"http://127.0.0.1:{port}",
            "HF_HOME": str(tmp_path / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
        }
        answer = subprocess.run(
            [sys.executable, "-c", ASK], capture_output=True, text=True, env=env, check=False
        )
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert answer.returncode == 0, answer.stderr[-2000:]
    assert "Paris" in answer.stdout
