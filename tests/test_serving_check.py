"""`runner eval` serves the candidate in the real vLLM server on this CPU (from .venv-serve),
reports what a backend sees with the hardware that measured it, and gates on it and on
parity with the PEFT outputs the eval scored. Each served eval starts a server (~40 s)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from huggingface_hub import HfApi

from runner.hub.seed import seed_folder
from tests.conftest import ADAPTER, REPO_ROOT, TOKEN, RunCli, candidate_of

SERVED_BASE = "runner-tests/tiny-llama-served"


def serving_block() -> str:
    """The embedded default's own `serving:` block (the fast tests' copies drop it)."""
    text = (REPO_ROOT / "adapters" / ADAPTER / "eval.yaml").read_text(encoding="utf-8")
    return text[text.index("\nserving:\n") + 1 :]


def serve_on(root: Path, hub: Any, folder: Path) -> None:
    """Train and serve `root`'s adapter on `folder` (seeded as SERVED_BASE), with the
    embedded default's serving limits and parity settings."""
    commit = seed_folder(hub, folder, SERVED_BASE)
    spec = root / "adapters" / ADAPTER / "adapter.yaml"
    text = spec.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^(\s+)id: .*$", rf"\1id: {SERVED_BASE}", text, count=1)
    text = re.sub(r"(?m)^(\s+)revision: [0-9a-f]{40}$", rf"\1revision: {commit}", text, count=1)
    spec.write_text(text, encoding="utf-8")
    with (root / "adapters" / ADAPTER / "eval.yaml").open("a", encoding="utf-8") as spec_file:
        spec_file.write(serving_block())


def train(root: Path, run_cli: RunCli) -> None:
    code, _, err = run_cli("train", f"adapters/{ADAPTER}", "--backend", "local", "--repo", root)
    assert code == 0, err[-3000:]


def evaluate(root: Path, run_cli: RunCli, out: Path) -> tuple[int, dict[str, Any], str]:
    code, _, err = run_cli("eval", f"adapters/{ADAPTER}", "--out", out, "--repo", root)
    assert "Traceback" not in err, err[-3000:]
    assert (out / "eval_report.json").is_file(), err[-3000:]
    report = json.loads((out / "eval_report.json").read_text(encoding="utf-8"))
    return code, report, (out / "eval_report.md").read_text(encoding="utf-8")


def eval_records(root: Path) -> list[dict[str, Any]]:
    lines = (root / "datasets/kwanzaa/v0/eval.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def serving_checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {check["name"]: check for check in report["checks"] if check["kind"] == "serving"}


def forge_first_output(root: Path, hub: Any) -> str:
    """Rewrite the candidate's scored output of the first eval item on the Hub, after its run
    (as a fork could), to the reference answer: full marks the adapter never wrote."""
    location = candidate_of(root).location
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    path = location.file("eval_outputs.jsonl")
    downloaded = Path(api.hf_hub_download(location.repo_id, path))
    rows = [json.loads(line) for line in downloaded.read_text(encoding="utf-8").splitlines()]
    record = eval_records(root)[0]
    for row in rows:
        if row["role"] == "candidate" and row["item_id"] == record["id"]:
            row["output"] = record["messages"][-1]["content"]
    forged = "".join(json.dumps(row) + "\n" for row in rows).encode()
    api.upload_file(path_or_fileobj=forged, path_in_repo=path, repo_id=location.repo_id)
    return record["messages"][-1]["content"]


def test_eval_serves_the_candidate_in_vllm_shows_what_a_backend_sees_and_checks_parity(
    tiny_repo: Path, env: Any, vllm_tiny: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    """One served eval (a server start is ~40 s): the figures a backend sees, with the
    hardware, within the limits; the item whose scored output the adapter does not write
    diverges in both served forms, the untouched one agrees token for token."""
    serve_on(tiny_repo, env, vllm_tiny)
    train(tiny_repo, run_cli)
    forged = forge_first_output(tiny_repo, env)
    code, report, comment = evaluate(tiny_repo, run_cli, tmp_path / "eval")
    assert code == 1

    measured = report["serving"]["measured"]
    assert measured["engine"].startswith("vLLM 0.32")
    assert measured["hardware_class"] == "cpu"
    assert measured["hardware"].startswith("cpu: ")
    assert [load["concurrency"] for load in measured["loads"]] == [1, 4]
    assert [load["requests"] for load in measured["loads"]] == [2, 2]
    for load in measured["loads"]:
        assert 0 < load["ttft_ms"]["p95"] <= load["latency_ms"]["p95"]
        assert load["tokens_per_second"]["p50"] > 0
    assert measured["peak_memory_mb"] > 100
    checks = serving_checks(report)
    for limit in ("hardware (cpu)", "TTFT p95 (ms) at 4", "latency p95 (ms) at 4"):
        assert checks[limit]["passed"], checks[limit]
    assert checks["server peak memory (MB)"]["passed"]

    forms = {parity["form"]: parity for parity in measured["parity"]}
    assert set(forms) == {"vLLM (LoRA module)", "merged weights"}
    for name, parity in forms.items():
        assert parity["items"] == 2
        assert [item["item_id"] for item in parity["diverging"]] == ["kw-eval-001"]
        assert parity["token_agreement"] <= 0.5 + 1e-9  # the untouched item: all 32 agree
        assert parity["reference_score"] > parity["served_score"]
        assert not checks[f"parity: token agreement, {name}"]["passed"]
        assert not checks[f"parity: json_valid_rate, {name}"]["passed"]
    assert (
        "diverging: kw-eval-001" in checks["parity: token agreement, vLLM (LoRA module)"]["detail"]
    )

    assert "### Serving in vLLM 0.32" in comment
    assert "Measured on cpu: " in comment
    assert "| one at a time | 2 |" in comment
    assert "| 4 at once | 2 |" in comment
    assert "Parity with the PEFT outputs" in comment
    assert "least agreeing items, vLLM (LoRA module)" in comment
    assert json.loads(forged)["answer"] in comment  # the scored answer, beside the served one


def test_an_adapter_that_saves_whole_modules_fails_the_gate_without_being_served(
    tiny_repo: Path, env: Any, vllm_tiny: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    serve_on(tiny_repo, env, vllm_tiny)
    with (tiny_repo / "adapters" / ADAPTER / "qlora.yaml").open("a", encoding="utf-8") as spec:
        spec.write("modules_to_save:\n  - lm_head\n")
    train(tiny_repo, run_cli)
    code, report, comment = evaluate(tiny_repo, run_cli, tmp_path / "eval")
    assert code == 1
    check = serving_checks(report)["serveability"]
    assert not check["passed"]
    assert "serving.modules-to-save" in check["detail"] or "lm_head" in check["detail"]
    assert report["serving"]["measured"] is None
    assert not (tmp_path / "eval" / "vllm.log").exists()
    assert "Not served" in comment
