"""The model card says how to serve the version in vLLM (the base at its pinned revision, the
version's tag as a LoRA module, the smallest `--max-lora-rank` that holds it) with what the
serving check measured and on which hardware; without a measurement it says the check did not
run; measured strings cannot break the card's markdown."""

from __future__ import annotations

import dataclasses
import re

import pytest
from huggingface_hub import ModelCard

from runner.evaluate.gate import Serving
from runner.promote.card import render_model_card
from runner.serving.figures import (
    DivergingItem,
    LoadFigures,
    Parity,
    Percentiles,
    ServingMeasurement,
)
from runner.specs.bundle import AdapterBundle
from runner.specs.load import require_adapter
from runner.workspace import Workspace
from tests.conftest import REPO_ROOT
from tests.test_eval_comment import PRIMARY, report
from tests.test_model_card import PROVENANCE

HARDWARE = "cpu: Intel(R) Xeon(R) Platinum 8488C (2 cores, 23 GiB)"


def measurement(**changes: object) -> ServingMeasurement:
    single = LoadFigures(
        1, 20, Percentiles(180.0, 240.0), Percentiles(2100.0, 3900.0), Percentiles(41.5, 47.0),
        Percentiles(88.0, 160.0),
    )  # fmt: skip
    loaded = LoadFigures(
        4, 20, Percentiles(410.0, 1250.0), Percentiles(5200.0, 9800.0), Percentiles(17.2, 21.0),
        Percentiles(88.0, 160.0),
    )  # fmt: skip
    agreeing = Parity(
        form="vLLM LoRA", tokens=32, token_agreement=0.984, metric=PRIMARY,
        reference_score=0.812, served_score=0.806, items=20, diverged=1,
    )  # fmt: skip
    merged = dataclasses.replace(
        agreeing, form="merged", token_agreement=0.91, served_score=0.75, diverged=3,
        diverging=[DivergingItem("hist-007", 0.4, "a", "b")],
    )  # fmt: skip
    parity = [agreeing, merged]
    base = ServingMeasurement(
        "vLLM 0.32.0", HARDWARE, "cpu", 41.3, 1834.6, [single, loaded], parity
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def bundle() -> AdapterBundle:
    return require_adapter(Workspace(REPO_ROOT), "adapters/kwanzaa-mini-v1")


def card(bundle: AdapterBundle, measured: ServingMeasurement | None) -> str:
    served = report(serving=Serving(4100.0, 1834.6, measured))
    return render_model_card(bundle, served, PROVENANCE)


def serving_part(card_text: str) -> str:
    return card_text[card_text.index("## Serving") :]


def row(text: str, first_cell: str) -> list[str]:
    line = next(line for line in text.splitlines() if line.startswith(f"| {first_cell} |"))
    return [cell.strip() for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def test_card_shows_the_vllm_command_at_the_pinned_base_and_version_tag(
    bundle: AdapterBundle,
) -> None:
    text = serving_part(card(bundle, measurement()))
    base = bundle.adapter.base_model
    assert "hf download ainative/kwanzaa-mini-lora --revision v1 --local-dir ./kwanzaa-mini-v1" in (
        text
    )
    assert f"vllm serve {base.id} --revision {base.revision} \\\n" in text
    assert "--enable-lora --lora-modules kwanzaa-mini=./kwanzaa-mini-v1 --max-lora-rank 16" in text
    assert 'model="kwanzaa-mini",' in text  # the OpenAI client asks for the LoRA module by name


@pytest.mark.parametrize(("r", "engine_rank"), [(4, 8), (16, 16), (40, 64), (300, 320)])
def test_max_lora_rank_is_the_smallest_vllm_accepts_above_r(
    bundle: AdapterBundle, r: int, engine_rank: int
) -> None:
    ranked = dataclasses.replace(bundle, training=bundle.training.model_copy(update={"r": r}))
    assert f"--max-lora-rank {engine_rank}\n" in card(ranked, measurement())


def test_card_shows_the_measured_figures_with_engine_and_hardware(bundle: AdapterBundle) -> None:
    text = serving_part(card(bundle, measurement()))
    assert row(text, "Engine") == ["Engine", "`vLLM 0.32.0`"]
    assert row(text, "Hardware") == ["Hardware", f"`{HARDWARE}`"]
    assert row(text, "Server start") == ["Server start", "41.3 s"]
    assert row(text, "Server peak memory") == ["Server peak memory", "1,835 MB"]
    assert row(text, "1") == ["1", "20", "180 / 240 ms", "2,100 / 3,900 ms", "41.5"]
    assert row(text, "4") == ["4", "20", "410 / 1,250 ms", "5,200 / 9,800 ms", "17.2"]
    assert row(text, "`vLLM LoRA`") == [
        "`vLLM LoRA`", "0.984 of the first 32 tokens", "1 of 20", f"`{PRIMARY}`", "0.812",
        "0.806", "+0.006",
    ]  # fmt: skip
    assert row(text, "`merged`")[1:] == [
        "0.910 of the first 32 tokens", "3 of 20", f"`{PRIMARY}`", "0.812", "0.750", "+0.062"
    ]  # fmt: skip


def test_card_without_a_measurement_says_the_serving_check_did_not_run(
    bundle: AdapterBundle,
) -> None:
    text = serving_part(card(bundle, None))
    assert "The serving check did not run for this version" in text
    assert "vllm serve" in text  # how to serve it holds all the same
    assert not re.search(r"TTFT|Hardware|Parity|\d+ MB", text)


def test_hostile_hardware_and_engine_strings_stay_inside_their_cells(
    bundle: AdapterBundle,
) -> None:
    hostile = "Xeon | <img src=x onerror=alert(1)>\n## Injected [link](http://evil.test) ``x`"
    text = card(bundle, measurement(hardware=hostile, engine="`vLLM` | <b>"))
    assert ModelCard(text).data.base_model == bundle.adapter.base_model.id
    assert not any(line.startswith("## Injected") for line in text.splitlines())
    hardware = row(text, "Hardware")
    assert len(hardware) == 2  # the pipe did not open a third cell
    assert hardware[1] == (
        "``` Xeon \\| <img src=x onerror=alert(1)> ## Injected [link](http://evil.test) ``x` ```"
    )  # one code span, longer than any backtick run in it: no HTML, no link, no heading
    assert row(text, "Engine") == ["Engine", "`` `vLLM` \\| <b> ``"]
