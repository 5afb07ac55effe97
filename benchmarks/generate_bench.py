"""Batched generation against one-at-a-time generation, on the same model and items, measured
in the same run: the speed ratio, and whether the outputs are identical.

- code under test: `runner/train/train.py`'s `generate_rows`, as `train_and_generate` runs it
  for every role: greedy, left padding, fixed-size batches, one `model.generate` a batch.
- batched: the batch size of `adapters/kwanzaa-mini-v1/eval.yaml` (8), plus extra rows (16 and
  all items in one batch by default; `--batch-sizes` to change them).
- one at a time: the same function with `batch_size: 1`: the same code, no batching, no pads.

Model: the tiny random Llama of the tests (`runner.hub.seed.build_tiny_llama`, built once into
a cache folder in the temp dir), fp32 on the CPU, `model.eval()`. Items: `eval_items` over
`datasets/kwanzaa/v0/eval.jsonl`. max_new_tokens: eval.yaml's (160) unless `--max-new-tokens`.

Measuring: the model is loaded once (not timed) and warmed up each way. Each round runs one
at a time, then each batch size; the fastest round of each counts. A forward pre-hook on the
decoder counts the model's forwards and the rows they carry: a batch keeps every row until its
longest one ends, so rows x steps is the work done and the generated tokens (up to and with
EOS, `output_tokens`) the work kept. One torch thread by default: with two on a two-core
machine any other busy process stalls OpenMP's barriers (`--threads` to change it).

Identity: every item's `output` text and `output_tokens` of every batched run, in every round,
against the first one-at-a-time run (and the later one-at-a-time runs against it too). Then a
numeric check at eval.yaml's batch size: the raw next-token logits of each step, batched
against one at a time, the largest difference, and the smallest top-1/top-2 margin of the
one-at-a-time run: how far greedy is from a flip (and, where one happens, where and why).

Target: batched at eval.yaml's batch size at least 5x one-at-a-time in items/s, with
identical outputs.

What bounds the ratio on this model: it is 2 layers of width 64, so a forward is ~300 tiny
ops and costs their dispatch, not their arithmetic. Batching divides the forwards by ~6.5 at
batch 8 (a batch runs to its longest row: most rows never emit EOS), but the per-row work that
is not dispatch then shows: `DynamicCache` grows the KV cache with `torch.cat` every step (a
copy of rows x length) and sdpa attends over the padded cache with an explicit mask, so a
forward of 8 rows costs ~1.7x one of 1 row. The ratio lands near 6.5 / 1.7; batch 16 or all
items in one batch clear 5x. (A static cache does not help on this model: measured.)

The report prints the measured version of that sum.

    python benchmarks/generate_bench.py [--max-new-tokens N] [--batch-sizes 8,16,38]
                                        [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import transformers
from transformers import AutoModelForCausalLM, PreTrainedModel, PreTrainedTokenizerBase

from runner.hub.seed import build_tiny_llama
from runner.specs.evaluation import EvalSpec
from runner.specs.load import load_model_file
from runner.train import train as script

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "datasets" / "kwanzaa" / "v0" / "eval.jsonl"
EVAL_SPEC = ROOT / "adapters" / "kwanzaa-mini-v1" / "eval.yaml"
MODEL_CACHE = Path(tempfile.gettempdir()) / "runner-bench-models"
TARGET_RATIO = 5.0
EXTRA_BATCH_SIZES = (16,)  # and all items in one batch
DEFAULT_ROUNDS = 3
DEFAULT_THREADS = 1
WARMUP_ITEMS = 4
WARMUP_TOKENS = 16


@dataclass
class ForwardCounter:
    """Forward pre-hook on the decoder: how many forwards, and how many rows they carry."""

    forwards: int = 0
    rows: int = 0

    def __call__(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        self.forwards += 1
        self.rows += input_ids.shape[0]

    def reset(self) -> None:
        self.forwards = self.rows = 0


@dataclass(frozen=True)
class Run:
    batch_size: int
    wall_s: float
    forwards: int
    row_steps: int
    """Rows carried by all forwards: one per row per step, finished rows included."""
    rows: list[dict[str, Any]]

    @property
    def items(self) -> int:
        return len(self.rows)

    @property
    def batches(self) -> int:
        return -(-self.items // self.batch_size)

    @property
    def tokens(self) -> int:
        """Generated tokens kept: up to and with EOS, as `output_tokens` counts them."""
        return sum(row["output_tokens"] for row in self.rows)

    @property
    def items_per_s(self) -> float:
        return self.items / self.wall_s

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    @property
    def ms_per_forward(self) -> float:
        return 1000 * self.wall_s / self.forwards

    @property
    def kept(self) -> float:
        return self.tokens / self.row_steps


def run(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    items: list[dict[str, Any]],
    batch_size: int,
    max_new_tokens: int,
    counter: ForwardCounter,
) -> Run:
    generation = script.GenerationSettings(max_new_tokens, batch_size, max_items=None)
    counter.reset()
    start = time.perf_counter()
    rows = script.generate_rows(model, tokenizer, items, generation, "candidate")
    wall = time.perf_counter() - start
    return Run(batch_size, wall, counter.forwards, counter.rows, rows)


def differing(reference: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[str]:
    """Item ids whose output text or output token count differ from the reference's."""
    return [
        mine["item_id"]
        for theirs, mine in zip(reference, rows, strict=True)
        if (theirs["output"], theirs["output_tokens"]) != (mine["output"], mine["output_tokens"])
    ]


# --- numeric check: logits batched against one at a time ---------------------------------


@dataclass(frozen=True)
class Step:
    item_id: str
    step: int
    margin: float
    """The one-at-a-time run's top-1 minus top-2 logit at this step."""
    diff: float
    """The largest |logit| difference, batched against one at a time, at this step."""


@dataclass
class Numerics:
    max_diff: float = 0.0
    closest: Step | None = None
    """The step with the smallest top-1/top-2 margin, one at a time."""
    flips: list[Step] | None = None
    """Per item, the first step where batched greedy picks another token than one at a time."""


def step_logits(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    batch: list[dict[str, Any]],
    max_new_tokens: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generated tokens [rows, steps] and raw logits [steps, rows, vocab], built as
    `_generate_batch` builds its inputs (chat template, left padding, no special tokens)."""
    tokenizer.padding_side = "left"
    texts = [
        tokenizer.apply_chat_template(item["messages"], add_generation_prompt=True, tokenize=False)
        for item in batch
    ]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    config = script.greedy_config(model, tokenizer, max_new_tokens)
    config.output_logits = True
    config.return_dict_in_generate = True
    with torch.no_grad():
        output = model.generate(**inputs, generation_config=config)
    tokens = output.sequences[:, inputs["input_ids"].shape[1] :]
    return tokens, torch.stack(output.logits)


def numerics(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    items: list[dict[str, Any]],
    single_rows: list[dict[str, Any]],
    batch_size: int,
    max_new_tokens: int,
) -> Numerics:
    found = Numerics(flips=[])
    for start in range(0, len(items), batch_size):
        batch = items[start : start + batch_size]
        _, batched = step_logits(model, tokenizer, batch, max_new_tokens)
        for index, item in enumerate(batch):
            _, alone = step_logits(model, tokenizer, [item], max_new_tokens)
            # a flip can end the batched rows sooner than this item's one-at-a-time run
            steps = min(single_rows[start + index]["output_tokens"], batched.shape[0])
            mine, theirs = alone[:steps, 0], batched[:steps, index]
            top = mine.topk(2, dim=-1).values
            margins = (top[:, 0] - top[:, 1]).tolist()
            diffs = (mine - theirs).abs().amax(dim=-1).tolist()
            found.max_diff = max(found.max_diff, *diffs)
            step = min(range(steps), key=margins.__getitem__)
            if found.closest is None or margins[step] < found.closest.margin:
                found.closest = Step(item["item_id"], step, margins[step], diffs[step])
            flipped = (mine.argmax(-1) != theirs.argmax(-1)).nonzero()
            if len(flipped):
                first = int(flipped[0])
                found.flips.append(Step(item["item_id"], first, margins[first], diffs[first]))
    return found


# --- report ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    eval_batch: int
    """eval.yaml's batch size: the one the target is about."""
    max_new_tokens: int
    spec_max_new_tokens: int
    threads: int
    rounds: int


def report(
    single: Run,
    batched: dict[int, Run],
    walls: dict[int, list[float]],
    differ: dict[int, set[str]],
    found: Numerics,
    settings: Settings,
) -> None:
    eval_batch, max_new_tokens, threads = (
        settings.eval_batch,
        settings.max_new_tokens,
        settings.threads,
    )
    source = (
        "eval.yaml's"
        if max_new_tokens == settings.spec_max_new_tokens
        else f"eval.yaml says {settings.spec_max_new_tokens}"
    )
    eos = sum(row["output_tokens"] < max_new_tokens for row in single.rows)
    print(
        f"tiny random Llama (fp32, CPU), {single.items} items of {DATA.relative_to(ROOT)},"
        f" greedy, max_new_tokens {max_new_tokens} ({source}),"
        f" {threads} torch thread{'s' if threads > 1 else ''},"
        f" best of {settings.rounds} round{'s' if settings.rounds > 1 else ''}"
    )
    print(
        f"{'batch':>5} {'batches':>7} {'forwards':>8} {'ms/fwd':>7} {'kept':>6} {'wall s':>7}"
        f" {'items/s':>8} {'gen tok/s':>9} {'speed-up':>8}  identical"
    )
    for entry in (single, *batched.values()):
        bad = differ.get(entry.batch_size, set())
        same = "yes" if not bad else f"no ({len(bad)} differ)"
        note = " (eval.yaml)" if entry.batch_size == eval_batch else ""
        print(
            f"{entry.batch_size:5} {entry.batches:7} {entry.forwards:8,}"
            f" {entry.ms_per_forward:7.2f} {entry.kept:6.1%} {entry.wall_s:7.2f}"
            f" {entry.items_per_s:8.2f} {entry.tokens_per_s:9,.0f}"
            f" {single.wall_s / entry.wall_s:7.2f}x  {same}{note}"
        )
    by_round = "; ".join(
        f"batch {size}: " + ", ".join(f"{wall:.2f}" for wall in found_walls)
        for size, found_walls in walls.items()
    )
    print(f"wall s by round: {by_round}")
    print(
        f"generated tokens: {single.tokens:,} (up to and with EOS); {eos}/{single.items} items"
        f" ended with EOS, the others ran to max_new_tokens"
    )
    print(
        "forwards: model calls (prefill + decode steps); kept: generated tokens / rows carried"
        " by the forwards (a batch runs until its longest row ends)"
    )
    closest = found.closest
    if closest is not None:
        print(
            f"logits at batch {eval_batch} vs one at a time: max |diff| {found.max_diff:.1e};"
            f" smallest top-1/top-2 margin {closest.margin:.1e} (item {closest.item_id},"
            f" step {closest.step}, |diff| there {closest.diff:.1e})"
        )
    for flip in found.flips or []:
        print(
            f"  greedy flip: item {flip.item_id}, first at generated token {flip.step}:"
            f" margin {flip.margin:.1e} < |diff| {flip.diff:.1e}"
        )

    main_run = batched[eval_batch]
    ratio = single.wall_s / main_run.wall_s
    met = "met" if ratio >= TARGET_RATIO else "NOT met"
    print(
        f"batched (batch {eval_batch}, eval.yaml) is {ratio:.2f}x one-at-a-time in items/s"
        f" (target: at least {TARGET_RATIO:g}x: {met})"
    )
    if ratio < TARGET_RATIO:
        fewer = single.forwards / main_run.forwards
        dearer = main_run.ms_per_forward / single.ms_per_forward
        print(
            f"  why: batching cuts the forwards {fewer:.1f}x ({single.forwards:,} ->"
            f" {main_run.forwards:,}), but each forward costs {dearer:.2f}x as much"
            f" ({single.ms_per_forward:.2f} -> {main_run.ms_per_forward:.2f} ms):"
            f" {fewer:.1f} / {dearer:.2f} = {fewer / dearer:.2f}x"
        )
        bigger = [
            size for size, entry in batched.items() if single.wall_s / entry.wall_s >= TARGET_RATIO
        ]
        if bigger:
            print(f"  batch sizes that reach it here: {', '.join(map(str, bigger))}")
    total = set().union(*differ.values()) if differ else set()
    verdict = "yes" if not total else f"no ({len(total)} differ: {', '.join(sorted(total))})"
    print(
        f"outputs identical: {verdict} (output text and output_tokens, every item,"
        f" batch size and round)"
    )


# --- main ------------------------------------------------------------------------------------


def eval_generation() -> dict[str, Any]:
    _, spec, findings = load_model_file(EVAL_SPEC, EvalSpec, str(EVAL_SPEC.relative_to(ROOT)))
    if spec is None:
        raise SystemExit("\n".join(str(finding) for finding in findings))
    return spec.generation.model_dump()


def parse_args(argv: list[str] | None, generation: dict[str, Any]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--max-new-tokens",
        type=int,
        default=generation["max_new_tokens"],
        help="tokens to generate at most per item (default: eval.yaml's)",
    )
    parser.add_argument(
        "--batch-sizes",
        default=None,
        help="comma-separated batch sizes (default: eval.yaml's, 16, all items)",
    )
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="runs of each")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch threads")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or args.max_new_tokens < 1:
        parser.error("--rounds, --threads and --max-new-tokens must be at least 1")
    if args.batch_sizes is not None:
        try:
            args.batch_sizes = [int(size) for size in args.batch_sizes.split(",")]
        except ValueError:
            parser.error("--batch-sizes takes integers separated by commas")
        if any(size < 2 for size in args.batch_sizes):
            parser.error("--batch-sizes must be at least 2 (1 is the baseline)")
    return args


def quiet() -> None:
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    logging.getLogger("train").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def main(argv: list[str] | None = None) -> None:
    generation = eval_generation()
    args = parse_args(argv, generation)
    quiet()
    torch.set_num_threads(args.threads)
    model_dir = build_tiny_llama(MODEL_CACHE)
    tokenizer = script.load_tokenizer(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.eval()
    counter = ForwardCounter()
    model.model.register_forward_pre_hook(counter, with_kwargs=True)
    items = script.eval_items(script.read_jsonl(DATA), None)

    eval_batch = generation["batch_size"]
    sizes = args.batch_sizes or [eval_batch, *EXTRA_BATCH_SIZES, len(items)]
    sizes = sorted({eval_batch, *(min(size, len(items)) for size in sizes)})

    for size in (1, eval_batch):
        run(model, tokenizer, items[:WARMUP_ITEMS], size, WARMUP_TOKENS, counter)
    singles: list[Run] = []
    batched: dict[int, list[Run]] = {size: [] for size in sizes}
    for index in range(args.rounds):
        print(f"round {index + 1}/{args.rounds}: batch 1, {', '.join(map(str, sizes))}", flush=True)
        singles.append(run(model, tokenizer, items, 1, args.max_new_tokens, counter))
        for size in sizes:
            batched[size].append(run(model, tokenizer, items, size, args.max_new_tokens, counter))

    reference = singles[0].rows
    differ = {1: {i for single in singles[1:] for i in differing(reference, single.rows)}}
    for size, runs in batched.items():
        differ[size] = {i for entry in runs for i in differing(reference, entry.rows)}
    logits = numerics(model, tokenizer, items, reference, eval_batch, args.max_new_tokens)
    report(
        min(singles, key=lambda entry: entry.wall_s),
        {size: min(runs, key=lambda entry: entry.wall_s) for size, runs in batched.items()},
        {size: [entry.wall_s for entry in runs] for size, runs in [(1, singles), *batched.items()]},
        {size: ids for size, ids in differ.items() if ids},
        logits,
        Settings(
            eval_batch, args.max_new_tokens, generation["max_new_tokens"], args.threads, args.rounds
        ),
    )


if __name__ == "__main__":
    main()
