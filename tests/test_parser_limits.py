"""Parsers are bounded: every hostile spec, policy, record, answer schema or code block ends
in a finding that names `file:line` (or a clear error), with exit 1 or 2, never a traceback,
and without first spending gigabytes or minutes on it."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi

from runner.evaluate.rows import prompt_sha256
from runner.runs.location import candidate_location
from runner.specs import require_adapter
from runner.train.train import RunResult, to_json
from runner.workspace import Workspace
from tests.conftest import REPO_ROOT, TOKEN, RunCli

A = "adapters/demo-v1"
EVAL_YAML = f"{A}/eval.yaml"
TRAIN = "datasets/demo/v1/train.jsonl"
KWANZAA = "adapters/kwanzaa-mini-v1"
SCHEMA = "datasets/kwanzaa/answer_json.schema.json"

ALIAS_BOMB = "\n".join(
    [
        'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]',
        *(
            f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]"
            for prev, name in zip("abcdefgh", "bcdefghi", strict=True)
        ),
    ]
)
"""405 bytes that a loader without limits expands to 9**9 (387 million) strings."""
DASHES = "x = " + "-" * 3000 + "1"
"""Parses as 3,000 nested unary minuses: CPython's parser runs out of recursion on it."""


def validate(run_cli: RunCli, root: Path, *args: str) -> tuple[int, str]:
    code, out, err = run_cli("validate", "--repo", root, *args)
    assert "Traceback" not in out + err
    return code, out + err


def first_record(root: Path) -> dict[str, Any]:
    return json.loads((root / TRAIN).read_text(encoding="utf-8").splitlines()[0])


# --- spec and policy YAML ----------------------------------------------------------------


def test_a_yaml_alias_bomb_is_refused_where_it_expands(demo_repo: Path, run_cli: RunCli) -> None:
    (demo_repo / EVAL_YAML).write_text(ALIAS_BOMB, encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML}:5:8 aliases expand the file to more than 10000 values here" in printed


def test_a_mapping_of_100k_keys_is_refused_at_the_key_over_the_limit(
    demo_repo: Path, run_cli: RunCli
) -> None:
    keys = "".join(f"k{i}: 1\n" for i in range(100_000))  # under the size cap
    (demo_repo / EVAL_YAML).write_text(keys, encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML}:1001:1 more than 1000 keys in the mapping that starts at line 1" in printed


def test_a_list_of_a_million_items_is_refused_by_its_size(demo_repo: Path, run_cli: RunCli) -> None:
    (demo_repo / EVAL_YAML).write_text("items:\n" + "- 1\n" * 1_000_000, encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML} larger than 1024 KiB" in printed


def test_a_list_under_the_size_cap_is_refused_at_the_item_over_the_limit(
    demo_repo: Path, run_cli: RunCli
) -> None:
    (demo_repo / EVAL_YAML).write_text("items: [" + "1, " * 5000 + "]\n", encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML}:1:3009 more than 1000 items in the list that starts at line 1" in printed


def test_yaml_nested_5000_deep_is_refused_where_it_crosses_the_limit(
    demo_repo: Path, run_cli: RunCli
) -> None:
    (demo_repo / EVAL_YAML).write_text("a: " + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML}:1:35 nested deeper than 32 levels" in printed


def test_a_yaml_integer_of_5000_digits_is_refused(demo_repo: Path, run_cli: RunCli) -> None:
    spec = demo_repo / EVAL_YAML
    spec.write_text(spec.read_text() + f"max_items: {'9' * 5000}\n", encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML}:9:12 a number of 5000 digits" in printed


def test_yaml_1_3_is_refused_at_its_directive(demo_repo: Path, run_cli: RunCli) -> None:
    spec = demo_repo / EVAL_YAML
    spec.write_text("%YAML 1.3\n---\n" + spec.read_text(), encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML}:1:1 %YAML 1.3: only YAML 1.1 and 1.2 are read" in printed


def test_a_spec_linked_to_dev_zero_is_refused_unread(demo_repo: Path, run_cli: RunCli) -> None:
    (demo_repo / EVAL_YAML).unlink()
    os.symlink("/dev/zero", demo_repo / EVAL_YAML)
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert f"{EVAL_YAML} is a symbolic link; replace the link with the file itself" in printed


def test_a_policy_linked_to_dev_zero_is_reported_once(demo_repo: Path, run_cli: RunCli) -> None:
    policy = demo_repo / "policies" / "attribution.yaml"
    policy.unlink()
    os.symlink("/dev/zero", policy)
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert printed.count("policies/attribution.yaml is a symbolic link") == 1


def test_a_policy_alias_bomb_is_refused(demo_repo: Path, run_cli: RunCli) -> None:
    (demo_repo / "policies" / "training.yaml").write_text(ALIAS_BOMB, encoding="utf-8")
    code, printed = validate(run_cli, demo_repo)
    assert code == 2
    assert "policies/training.yaml:5:8 aliases expand the file" in printed


# --- JSONL records ------------------------------------------------------------------------


def write_first_line(root: Path, line: str) -> None:
    train = root / TRAIN
    rest = train.read_text(encoding="utf-8").splitlines()[1:]
    train.write_text("\n".join([line, *rest]) + "\n", encoding="utf-8")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[" * 5000 + "]" * 5000, "nested deeper than 64 levels"),
        ('{"id": ' + "9" * 5000 + "}", "an integer of 5000 digits"),
    ],
    ids=["nested-5000-deep", "integer-of-5000-digits"],
)
def test_a_record_beyond_the_json_limits_is_a_finding_on_its_line(
    demo_repo: Path, run_cli: RunCli, line: str, message: str
) -> None:
    write_first_line(demo_repo, line)
    code, printed = validate(run_cli, demo_repo)
    assert code == 1
    assert f"{TRAIN}:1 not read: {message}" in printed


def test_a_lone_surrogate_in_a_record_is_a_finding_on_its_line(
    demo_repo: Path, run_cli: RunCli
) -> None:
    line = (demo_repo / TRAIN).read_text(encoding="utf-8").splitlines()[0]
    write_first_line(demo_repo, line.replace("return a + b", "return '\\udc80'"))
    code, printed = validate(run_cli, demo_repo)
    assert code == 1
    assert f"{TRAIN}:1 not read: a lone surrogate \\udc80 at column" in printed


def test_a_python_block_of_3000_dashes_is_a_syntax_finding(
    demo_repo: Path, run_cli: RunCli
) -> None:
    record = first_record(demo_repo)
    record["messages"][2]["content"] = f"```python\n{DASHES}\n```"
    write_first_line(demo_repo, json.dumps(record))
    code, printed = validate(run_cli, demo_repo)
    assert code == 1
    assert f"{TRAIN}:1 python block 1 of the assistant answer does not parse: nested too" in printed


def test_a_megabyte_of_python_in_one_answer_is_not_parsed(demo_repo: Path, run_cli: RunCli) -> None:
    record = first_record(demo_repo)
    record["messages"][2]["content"] = "```python\n" + "x = 1\n" * 20_000 + "```"
    write_first_line(demo_repo, json.dumps(record))
    code, printed = validate(run_cli, demo_repo)
    assert code == 1
    assert f"{TRAIN}:1 the python blocks of the assistant answer hold 120000 characters; over " in (
        printed
    )


# --- answer schemas -----------------------------------------------------------------------


@pytest.fixture
def citation_repo(tmp_path: Path) -> Path:
    """The embedded default's specs and data: a citation_grounded_chat adapter whose dataset
    manifest declares an answer_schema."""
    root = tmp_path / "repo"
    for part in ("policies", "schemas", KWANZAA, "datasets/kwanzaa"):
        shutil.copytree(REPO_ROOT / part, root / part)
    return root


@pytest.fixture
def schema_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on this machine that serves any path as a JSON Schema, and the paths
    it was asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            body = b'{"type": "object"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/schema+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()


def schema_finding(run_cli: RunCli, root: Path) -> str:
    code, printed = validate(run_cli, root, KWANZAA)
    assert code == 1
    manifest = (root / KWANZAA / "dataset.yaml").read_text(encoding="utf-8").splitlines()
    line = next(n for n, text in enumerate(manifest, 1) if text.startswith("answer_schema:"))
    found = [text for text in printed.splitlines() if "[data.answer-schema]" in text]
    assert len(found) == 1, printed
    assert found[0].startswith(f"{KWANZAA}/dataset.yaml:{line}:")
    return found[0]


def test_an_answer_schema_that_is_not_json_names_its_line(
    citation_repo: Path, run_cli: RunCli
) -> None:
    (citation_repo / SCHEMA).write_text('{\n  "type": "object",\n}\n', encoding="utf-8")
    assert f"{SCHEMA}:3:1: not JSON" in schema_finding(run_cli, citation_repo)


def test_an_answer_schema_that_is_not_a_json_schema_says_where(
    citation_repo: Path, run_cli: RunCli
) -> None:
    (citation_repo / SCHEMA).write_text('{"type": "objekt"}', encoding="utf-8")
    assert f"{SCHEMA}: not a valid JSON Schema at type" in schema_finding(run_cli, citation_repo)


def test_an_answer_schema_ref_to_a_url_is_never_fetched(
    citation_repo: Path, run_cli: RunCli, schema_server: tuple[str, list[str]]
) -> None:
    url, asked = schema_server
    schema = json.loads((citation_repo / SCHEMA).read_text(encoding="utf-8"))
    schema["properties"]["answer"] = {"$ref": f"{url}/answer.json"}
    (citation_repo / SCHEMA).write_text(json.dumps(schema), encoding="utf-8")
    found = schema_finding(run_cli, citation_repo)
    assert f'/properties/answer/$ref refers to "{url}/answer.json", outside the schema' in found
    assert asked == []


def test_an_answer_schema_ref_to_a_file_is_never_read(
    citation_repo: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.json"
    outside.write_text('{"type": "string"}', encoding="utf-8")
    (citation_repo / SCHEMA).write_text(json.dumps({"$ref": outside.as_uri()}), encoding="utf-8")
    found = schema_finding(run_cli, citation_repo)
    assert f'{SCHEMA}: /$ref refers to "file:///' in found
    assert "outside the schema; nothing is fetched" in found


# --- runner eval --------------------------------------------------------------------------


RUN_ID = "0123456789abcdef"


def plant_candidate(
    hub: Any,
    root: Path,
    adapter: str,
    outputs: list[str],
    run_id: str = RUN_ID,
    metrics: dict[str, Any] | None = None,
) -> None:
    """A succeeded run `run_id` of `adapter` on the emulator whose adapter matches its spec and
    whose eval outputs are `outputs`, one line each; `metrics` is its metrics.json."""
    bundle = require_adapter(Workspace(root), adapter)
    location = candidate_location(bundle, run_id)
    config = {
        "base_model_name_or_path": bundle.adapter.base_model.id,
        "revision": bundle.adapter.base_model.revision,
        "r": bundle.training.r,
        "lora_alpha": bundle.training.lora_alpha,
        "target_modules": bundle.training.target_modules,
    }
    succeeded = RunResult(run_id, bundle.dirname, "succeeded", None, "started", "finished", None)
    files = {
        "adapter_config.json": json.dumps(config),
        "adapter_model.safetensors": "weights",
        "eval_outputs.jsonl": "\n".join(outputs) + "\n",
        "metrics.json": json.dumps(metrics or {}),
        "run.json": json.dumps(to_json(succeeded)),
    }
    api = HfApi(endpoint=hub.endpoint, token=TOKEN)
    api.create_repo(location.repo_id, private=True, exist_ok=True)
    for name, text in files.items():
        api.upload_file(
            path_or_fileobj=text.encode("utf-8", "surrogatepass"),
            path_in_repo=location.file(name),
            repo_id=location.repo_id,
        )


def output_row(record: dict[str, Any], output: str) -> str:
    return json.dumps(
        {
            "item_id": record["id"],
            "category": record["category"],
            "prompt_sha256": prompt_sha256(record),
            "role": "candidate",
            "output": output,
            "latency_ms": 100.0,
            "prompt_tokens": 10,
            "output_tokens": 10,
        }
    )


def eval_record(root: Path, dataset: str) -> dict[str, Any]:
    return json.loads((root / dataset).read_text(encoding="utf-8").splitlines()[0])


def run_eval(run_cli: RunCli, root: Path, adapter: str, out: Path) -> tuple[int, str]:
    code, printed, err = run_cli("eval", adapter, "--run", RUN_ID, "--out", out, "--repo", root)
    assert "Traceback" not in printed + err
    return code, printed + err


def test_a_candidate_answering_3000_dashes_fails_the_gate_with_its_reason(
    demo_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    record = eval_record(demo_repo, "datasets/demo/v1/eval.jsonl")
    plant_candidate(env, demo_repo, A, [output_row(record, f"```python\n{DASHES}\n```")])
    code, printed = run_eval(run_cli, demo_repo, A, tmp_path / "eval")
    assert code == 1
    assert "FAILS the gate" in printed
    report = json.loads((tmp_path / "eval" / "eval_report.json").read_text(encoding="utf-8"))
    [item] = report["worst_items"]
    assert item["failed"]["python_parse_rate"] == (
        "python block 1 of the assistant answer does not parse: nested too deeply for Python's "
        "parser"
    )


def test_an_outputs_line_beyond_the_json_limits_names_its_line(
    demo_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    record = eval_record(demo_repo, "datasets/demo/v1/eval.jsonl")
    plant_candidate(env, demo_repo, A, [output_row(record, "ok"), "[" * 5000 + "]" * 5000])
    code, printed = run_eval(run_cli, demo_repo, A, tmp_path / "eval")
    assert code == 2
    assert "eval_outputs.jsonl:2: not read: nested deeper than 64 levels" in printed
