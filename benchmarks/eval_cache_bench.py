"""A candidate's eval outputs with the cache of base and incumbent outputs against without it,
measured in the same run: wall and CPU seconds of each, their ratio, and whether the reused
rows are the generated ones.

- code under test: `runner/train/train.py`'s generate stage as `train_and_generate` runs it:
  `output_keys`, `read_cached_outputs` (one `repo_info` and one download per cached role, from
  the local Hub emulator through the real huggingface_hub client, then the rows checked) and
  `generate_roles`.
- without the cache (the baseline, what every run did before): candidate, base (adapter
  disabled) and incumbent generated.
- with the cache: the candidate generated; base and incumbent read back and checked.
- the run that fills the cache pays once more: writing its two files and uploading them (in
  the run's result commit; timed here as a commit of their own).

Model: the tiny random Llama of the tests (`runner.hub.seed.build_tiny_llama`), fp32 on the
CPU, with a fresh LoRA as the candidate and another saved LoRA as the incumbent. Items and
generation: `datasets/kwanzaa/v0/eval.jsonl` and `adapters/kwanzaa-mini-v1`'s settings
(eval.yaml's max_new_tokens and batch size; `--max-new-tokens` to change it).

Measuring: the model loads outside the timing, fresh for each measurement (a run loads the
incumbent adapter once). Each round measures both ways; the fastest round of each counts. CPU
seconds are this process's, the emulator's serving thread included: the cache's cost on both
sides of the wire. One torch thread by default (`--threads`), as generate_bench.py.

Expected: the three roles cost about the same, so with the cache the stage takes about a third
of the time, plus the cache read (milliseconds against a local Hub). Measured on this 2-core
machine, busy with other work: 1.9x to 3.8x in wall time and 2.6x to 3.1x in CPU time (best of
3 rounds, eval.yaml's 160 tokens), rows identical; filling the cache cost 0.08 s once.

    python benchmarks/eval_cache_bench.py [--rounds N] [--threads N] [--max-new-tokens N]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import logging
import os
import socket
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "datasets" / "kwanzaa" / "v0" / "eval.jsonl"
ADAPTER = "adapters/kwanzaa-mini-v1"
MODEL_CACHE = Path(tempfile.gettempdir()) / "runner-bench-models"
REPO_ID = "ainative/eval-cache-bench-candidates"
TOKEN = "hf_evalCacheBenchToken12345"
RUN_ID = "0123456789abcdef"
DEFAULT_ROUNDS = 3
DEFAULT_THREADS = 1


@dataclass(frozen=True)
class Timing:
    wall_s: float
    cpu_s: float


def timed(call: Callable[[], Any]) -> tuple[Timing, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = call()
    return Timing(time.perf_counter() - wall, time.process_time() - cpu), result


def free_port() -> int:
    """A port for the emulator, known before huggingface_hub is imported: it reads
    HF_ENDPOINT once, at import."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="runs of each way")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch threads")
    parser.add_argument(
        "--max-new-tokens", type=int, default=None, help="tokens per item (default: eval.yaml's)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or (args.max_new_tokens or 1) < 1:
        parser.error("--rounds, --threads and --max-new-tokens must be at least 1")
    return args


def quiet() -> None:
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("train").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def run_config(max_new_tokens: int | None) -> Any:
    """kwanzaa-mini-v1's training and generation settings, on the tiny model."""
    from runner.hub.tiny_llama import TINY_REPO_ID
    from runner.runs.config import run_generation_settings, training_settings
    from runner.specs import require_adapter
    from runner.train import train as script
    from runner.workspace import Workspace

    bundle = require_adapter(Workspace(ROOT), ADAPTER)
    generation = run_generation_settings(bundle)
    if max_new_tokens is not None:
        generation = dataclasses.replace(generation, max_new_tokens=max_new_tokens)
    return script.RunConfig(
        run_id=RUN_ID,
        adapter=bundle.dirname,
        task=bundle.adapter.task,
        base_model=script.ModelRef(TINY_REPO_ID, "bench"),
        dataset=script.DatasetRef("bench/data", "bench", "train.jsonl", "eval.jsonl"),
        training=training_settings(bundle),
        generation=generation,
        incumbent=script.ModelRef("bench/incumbent", "v1"),
        output=script.OutputRef(REPO_ID, "model", f"runs/{RUN_ID}"),
        parallel=None,
    )


def lora_model(model_dir: Path, seed: int) -> Any:
    """The tiny model with a fresh LoRA whose B is not zero (an untrained LoRA changes no
    output)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    config = LoraConfig(r=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    return get_peft_model(model, config)


@dataclass(frozen=True)
class Stage:
    timing: Timing
    rows: dict[str, list[dict[str, Any]]]
    reused: set[str]


def generate_stage(
    config: Any, model_dir: Path, items: list[dict[str, Any]], incumbent: Path, cached: bool
) -> Stage:
    """The generate stage of one run, timed from the keys to the last row."""
    from runner.train import train as script

    model, tokenizer = lora_model(model_dir, seed=1), script.load_tokenizer(model_dir)

    def stage() -> tuple[dict[str, list[dict[str, Any]]], set[str]]:
        found = {}
        if cached:
            keys = script.output_keys(config, items, incumbent)
            found = script.read_cached_outputs(config.output, keys, items)
        rows = script.generate_roles(model, tokenizer, items, config.generation, incumbent, found)
        return rows, set(found)

    with contextlib.redirect_stdout(io.StringIO()):  # the progress events a run prints
        timing, (rows, reused) = timed(stage)
    return Stage(timing, rows, reused)


def fill_cache(config: Any, items: list[dict[str, Any]], incumbent: Path, stage: Stage) -> Timing:
    """What the run that generated base and incumbent pays to share them."""
    from runner.train import train as script

    folder = Path(tempfile.mkdtemp(prefix="eval-cache-bench-"))
    keys = script.output_keys(config, items, incumbent)

    def share() -> None:
        files = script.cache_files(folder, keys, stage.rows, set())
        script.upload_files(config.output, {}, "Cached outputs", beside=files)

    timing, _ = timed(share)
    return timing


def same_rows(cached: Stage, generated: Stage) -> bool:
    """The reused roles' rows are the generated ones (latency aside: it is the filling run's)."""

    def comparable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{k: v for k, v in row.items() if k != "latency_ms"} for row in rows]

    return all(
        comparable(cached.rows[role]) == comparable(generated.rows[role]) for role in cached.reused
    )


def report(
    without: list[Stage], with_cache: list[Stage], fill: Timing, items: int, config: Any
) -> None:
    best_without = min(without, key=lambda s: s.timing.wall_s)
    best_with = min(with_cache, key=lambda s: s.timing.wall_s)
    generation = config.generation
    print(
        f"tiny random Llama (fp32, CPU), {items} items of {DATA.relative_to(ROOT)}, greedy,"
        f" max_new_tokens {generation.max_new_tokens}, batch {generation.batch_size},"
        f" best of {len(without)} round(s)"
    )
    print(f"{'eval outputs of a candidate':<40} {'rows generated':>14} {'wall s':>7} {'CPU s':>7}")
    for name, stage in (
        ("without the cache (every role)", best_without),
        ("with the cache", best_with),
    ):
        generated = sum(len(rows) for role, rows in stage.rows.items() if role not in stage.reused)
        print(f"{name:<40} {generated:>14} {stage.timing.wall_s:7.2f} {stage.timing.cpu_s:7.2f}")
    print(
        f"{'filling the cache (once, first run)':<40} {'':>14} {fill.wall_s:7.2f} {fill.cpu_s:7.2f}"
    )
    wall = best_without.timing.wall_s / best_with.timing.wall_s
    cpu = best_without.timing.cpu_s / best_with.timing.cpu_s
    print(f"with the cache: {wall:.2f}x faster in wall time, {cpu:.2f}x in CPU time")
    print(
        "wall s by round: without "
        + ", ".join(f"{s.timing.wall_s:.2f}" for s in without)
        + "; with "
        + ", ".join(f"{s.timing.wall_s:.2f}" for s in with_cache)
    )
    identical = all(same_rows(stage, best_without) for stage in with_cache)
    reused = sorted(best_with.reused)
    print(f"reused roles: {', '.join(reused) or 'none'}; rows identical to generated: {identical}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    port = free_port()
    os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{port}"
    os.environ["HF_TOKEN"] = TOKEN
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    os.environ["HF_HOME"] = tempfile.mkdtemp(prefix="eval-cache-bench-hf-")

    import torch

    from runner.hub.emulator import EmulatorServer
    from runner.hub.seed import build_tiny_llama
    from runner.train import train as script

    quiet()
    torch.set_num_threads(args.threads)
    script.install_hub_session(script.RetryPolicy.from_env())
    model_dir = build_tiny_llama(MODEL_CACHE)
    config = run_config(args.max_new_tokens)
    items = script.eval_items(script.read_jsonl(DATA), config.generation.max_items)
    incumbent = Path(tempfile.mkdtemp(prefix="eval-cache-bench-incumbent-"))
    lora_model(model_dir, seed=2).save_pretrained(incumbent)
    with EmulatorServer(Path(tempfile.mkdtemp(prefix="eval-cache-bench-hub-")), port=port):
        first = generate_stage(config, model_dir, items, incumbent, cached=False)
        fill = fill_cache(config, items, incumbent, first)
        without, with_cache = [], []
        for _ in range(args.rounds):
            without.append(generate_stage(config, model_dir, items, incumbent, cached=False))
            with_cache.append(generate_stage(config, model_dir, items, incumbent, cached=True))
    report(without, with_cache, fill, len(items), config)


if __name__ == "__main__":
    main()
