"""The promoted model card: huggingface_hub parses its metadata back to the eval numbers, the
body carries the version's README, dataset hashes and provenance, the output is byte-stable,
withdrawing keeps the numbers, and the card reads back the same through the Hub emulator."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from huggingface_hub import HfApi, ModelCard

import runner
from runner.evaluate.report import MetricRow
from runner.hub.client import HubClient, RepoRef
from runner.promote.card import (
    WITHDRAWN_TAG,
    Provenance,
    render_model_card,
    withdrawn_card,
)
from runner.specs.bundle import AdapterBundle
from runner.specs.load import require_adapter
from runner.workspace import Workspace
from tests.conftest import REPO_ROOT
from tests.test_eval_comment import report

GIT_COMMIT = "0123456789abcdef0123456789abcdef01234567"
DATASET_COMMIT = "fedcba9876543210fedcba9876543210fedcba98"
PROVENANCE = Provenance(GIT_COMMIT, 42, "r-3f9a2c1d", runner.__version__)
TOKEN = "hf_modelCardTestToken12345"


@pytest.fixture(scope="module")
def bundle() -> AdapterBundle:
    return require_adapter(Workspace(REPO_ROOT), "adapters/kwanzaa-mini-v1")


@pytest.fixture
def card_text(bundle: AdapterBundle) -> str:
    return render_model_card(bundle, report(), PROVENANCE, dataset_commit=DATASET_COMMIT)


def expected_results() -> dict[str, float]:
    return {
        row.metric: round(row.candidate, 4) for row in report().overall if row.candidate is not None
    }


def results_of(card: ModelCard) -> dict[str, float]:
    return {result.metric_type: result.metric_value for result in card.data.eval_results}


# -- metadata -------------------------------------------------------------------------------


def test_metadata_names_peft_and_the_pinned_base_model(
    bundle: AdapterBundle, card_text: str
) -> None:
    card = ModelCard(card_text)
    assert card_text.startswith("---\n")
    assert card.data.library_name == "peft"
    assert card.data.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert card.data.base_model_revision == bundle.adapter.base_model.revision
    assert card.data.datasets == ["ainative/kwanzaa-grounded-chat"]
    assert card.data.tags == ["peft", "lora", "citation_grounded_chat"]
    assert card.data.license is None  # the dataset's license is not the model's


def test_eval_results_parse_back_to_the_overall_numbers(card_text: str) -> None:
    card = ModelCard(card_text)
    assert results_of(card) == expected_results()
    for result in card.data.eval_results:
        assert result.task_type == "text-generation"
        assert result.dataset_type == "ainative/kwanzaa-grounded-chat"
        assert result.dataset_name == "kwanzaa v0"
        assert result.dataset_revision == DATASET_COMMIT
        assert result.verified is False


def test_values_are_rounded_and_metrics_without_a_value_are_left_out(
    bundle: AdapterBundle,
) -> None:
    overall = [
        MetricRow("json_valid_rate", None, 0.85, 0.921052631578, (0.79, 0.97), None, 0.0),
        MetricRow("citation_recall", None, None, None, None, None, None),
    ]
    text = render_model_card(bundle, report(overall=overall), PROVENANCE)
    card = ModelCard(text)
    assert results_of(card) == {"json_valid_rate": 0.9211}
    assert card.data.eval_results[0].dataset_revision is None


def test_a_report_without_any_value_gives_no_model_index(bundle: AdapterBundle) -> None:
    empty = [MetricRow("json_valid_rate", None, 0.85, None, None, None, None)]
    text = render_model_card(bundle, report(overall=empty), PROVENANCE)
    assert "model-index" not in text
    assert ModelCard(text).data.library_name == "peft"


def test_a_license_is_written_only_when_given(bundle: AdapterBundle) -> None:
    text = render_model_card(bundle, report(), PROVENANCE, license="apache-2.0")
    assert ModelCard(text).data.license == "apache-2.0"


# -- body -----------------------------------------------------------------------------------


def test_body_keeps_the_versions_readme_first(bundle: AdapterBundle, card_text: str) -> None:
    own = (bundle.directory / "README.md").read_text(encoding="utf-8").strip()
    body = ModelCard(card_text).text
    assert body.lstrip().startswith(own)
    sections = [line for line in body.splitlines() if line.startswith("## ")]
    generated = [
        "Base model",
        "Dataset",
        "Training",
        "Evaluation",
        "Provenance",
        "Usage",
        "Serving",
    ]
    assert sections[-len(generated) :] == [f"## {name}" for name in generated]


def test_body_carries_dataset_hashes_and_provenance(bundle: AdapterBundle, card_text: str) -> None:
    body = ModelCard(card_text).text
    files = bundle.dataset.files
    for value in (files.train.sha256, files.eval.sha256, DATASET_COMMIT, GIT_COMMIT):
        assert f"`{value}`" in body
    assert "| Pull request | #42 |" in body
    assert "| Run id | `r-3f9a2c1d` |" in body
    assert f"| Runner version | `{runner.__version__}` |" in body
    assert f"| train | `{files.train.path}` | {files.train.examples} |" in body
    assert bundle.adapter.base_model.revision in body


def test_body_shows_the_gate_and_the_overall_table(card_text: str) -> None:
    body = ModelCard(card_text).text
    assert "**Gate: passed** all 6 checks." in body
    assert "| `citation_coverage_rate` | 0.750 | 0.812 (0.700\u20130.890) | 0.512 |" in body
    assert "| `citation_recall` | \u2014 | 0.600 (0.500\u20130.700) | \u2014 |" in body
    assert "Scored on 120 eval items." in body


def test_a_failed_gate_names_the_failed_checks(bundle: AdapterBundle) -> None:
    body = render_model_card(bundle, report(passed=False), PROVENANCE)
    assert "**Gate: failed** 2 of 6 checks: `citation_coverage_rate [history]`" in body


def test_training_table_and_usage_snippet(bundle: AdapterBundle, card_text: str) -> None:
    assert "| Method | `lora` |" in card_text
    assert "| LoRA | r 16, alpha 32, dropout 0.05 |" in card_text
    assert "| Quantization | none (full precision) |" in card_text
    assert "| Batch | 4 x 1 accumulation = 4 |" in card_text
    assert "| Max sequence length | 768 |" in card_text
    assert "| Packing | no |" in card_text
    assert (
        'model = PeftModel.from_pretrained(base, "ainative/kwanzaa-mini-lora", revision="v1")'
        in card_text
    )
    assert "BitsAndBytesConfig" not in card_text


def test_a_qlora_adapter_says_4bit_and_loads_quantized() -> None:
    qlora = require_adapter(Workspace(REPO_ROOT), "adapters/ainative-v2")
    text = render_model_card(qlora, report(), PROVENANCE)
    assert ModelCard(text).data.tags[:2] == ["peft", "qlora"]
    assert "| Quantization | 4-bit nf4, double quant on, bfloat16 compute |" in text
    assert "quantization_config=BitsAndBytesConfig(load_in_4bit=True)" in text


def test_no_pr_number_shows_a_dash(bundle: AdapterBundle) -> None:
    provenance = dataclasses.replace(PROVENANCE, pr_number=None)
    text = render_model_card(bundle, report(), provenance)
    assert "| Pull request | \u2014 |" in text
    assert "| Commit | \u2014 |" in text  # no dataset commit given


def test_the_versions_own_front_matter_is_dropped(
    bundle: AdapterBundle, tmp_path: Path, card_text: str
) -> None:
    directory = tmp_path / bundle.dirname
    directory.mkdir()
    own = (bundle.directory / "README.md").read_text(encoding="utf-8")
    (directory / "README.md").write_text(f"---\nlicense: mit\ntags: [x]\n---\n{own}")
    moved = dataclasses.replace(bundle, directory=directory)
    text = render_model_card(moved, report(), PROVENANCE, dataset_commit=DATASET_COMMIT)
    assert text == card_text
    assert text.count("\n---\n") == 1  # only the close of the generated front matter


def test_output_is_deterministic(bundle: AdapterBundle, card_text: str) -> None:
    again = render_model_card(bundle, report(), PROVENANCE, dataset_commit=DATASET_COMMIT)
    assert again == card_text
    assert str(ModelCard(card_text)) == card_text  # already in huggingface_hub's own form


# -- withdrawal -----------------------------------------------------------------------------


def test_a_withdrawn_card_keeps_its_numbers_and_shows_the_notice(card_text: str) -> None:
    text = withdrawn_card(card_text, "Leaks a secret on item hist-007.")
    card, original = ModelCard(text), ModelCard(card_text)
    assert results_of(card) == expected_results()
    assert card.data.tags == [*original.data.tags, WITHDRAWN_TAG]
    rest = {k: v for k, v in card.data.to_dict().items() if k != "tags"}
    assert rest == {k: v for k, v in original.data.to_dict().items() if k != "tags"}
    first = next(line for line in card.text.splitlines() if line.startswith(">"))
    assert first == "> [!CAUTION]"
    assert card.text.index("**Withdrawn.**") < card.text.index("# kwanzaa-mini v1")
    assert "> Leaks a secret on item hist-007." in card.text
    assert original.text.strip() in card.text


def test_withdrawing_again_replaces_the_notice(card_text: str) -> None:
    once = withdrawn_card(card_text, "first reason")
    twice = withdrawn_card(once, "second reason\nwith a second line")
    card = ModelCard(twice)
    assert card.data.tags.count(WITHDRAWN_TAG) == 1
    assert card.text.count("**Withdrawn.**") == 1
    assert "first reason" not in twice
    assert "> second reason\n> with a second line" in twice
    assert withdrawn_card(once, "first reason") == once


# -- through the Hub emulator ---------------------------------------------------------------


LOAD_CARD = """
import json
from huggingface_hub import ModelCard
card = ModelCard.load({repo!r})
print("RESULT " + json.dumps({{
    "results": {{r.metric_type: r.metric_value for r in card.data.eval_results}},
    "library_name": card.data.library_name, "base_model": card.data.base_model,
    "text": str(card)}}))
"""


def load_in_subprocess(endpoint: str, repo: str, home: Path) -> dict:
    """`ModelCard.load` in a fresh process: huggingface_hub reads HF_ENDPOINT at import."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(
        HF_ENDPOINT=endpoint, HF_HOME=str(home), HF_TOKEN=TOKEN, HF_HUB_DISABLE_TELEMETRY="1"
    )
    code = textwrap.dedent(LOAD_CARD.format(repo=repo))
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=90
    )
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def test_the_card_reads_back_through_the_hub(hub, tmp_path: Path, card_text: str) -> None:
    repo = RepoRef("ainative/kwanzaa-mini-lora")
    client = HubClient(hub.endpoint, token=TOKEN, cache_dir=tmp_path / "cache")
    client.ensure_repo(repo, private=False)
    client.commit(repo, {"README.md": card_text.encode("utf-8")}, "Promote kwanzaa-mini-v1")

    loaded = load_in_subprocess(hub.endpoint, repo.repo_id, tmp_path / "hf-home")
    assert loaded["results"] == expected_results()
    assert loaded["library_name"] == "peft"
    assert loaded["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert loaded["text"] == card_text

    info = HfApi(endpoint=hub.endpoint, token=TOKEN).model_info(repo.repo_id)
    assert info.card_data is not None
    assert info.card_data.library_name == "peft"
    assert {r.metric_type: r.metric_value for r in info.card_data.eval_results} == (
        expected_results()
    )
