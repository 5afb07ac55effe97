"""Training throughput and packing efficiency of our training script against a plain TRL
SFTTrainer script, on the same tiny model and data, measured in the same run.

- ours: `runner/train/train.py` as `train_and_generate` runs it (`load_tokenizer`,
  `load_base_model`, `attach_lora`, `train_adapter`), with the team's training defaults
  where they make sense on a CPU: LoRA in fp32, BFD packing (padding-free), loss on the
  assistant turn only; no gradient checkpointing (it buys memory, not speed).
- baseline: what a user writes from TRL's docs: `SFTTrainer` on a dataset of `messages`
  with a `LoraConfig`, an `SFTConfig` with the same LoRA settings, learning rate, batch,
  epochs, max_length and seed, padding (no packing), the default collator.

Model: the tiny random Llama of the tests (`runner.hub.seed.build_tiny_llama`, built once
into a cache folder in the temp dir). Data: `datasets/kwanzaa/v0/train.jsonl`.

Measuring: each run loads a fresh model (not timed), then times the trainer end to end
(dataset preparation + `train()`, exactly what `train_adapter` does). A forward pre-hook on
the decoder counts the tokens of every batch fed to the model: all positions, and the real
(non-pad) ones from the attention mask (a padding-free batch has no mask and no pads).
Packing efficiency = real / all positions. Runs alternate ours/baseline after a warmup of
each; the best round of each side counts. Both sides run on one torch thread by default: with
two threads on a two-core machine, any other busy process stalls OpenMP's barriers and rounds
vary up to 20x; with one they agree within a few percent (`--threads` to change it).

Target: ours is not more than 5% slower than the baseline in real tokens/s (pad positions
are work, not throughput).

    python benchmarks/train_bench.py [--epochs N] [--rounds N] [--threads N]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import transformers
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer, set_seed
from trl import SFTConfig, SFTTrainer

import datasets
from datasets import Dataset
from runner.hub.seed import build_tiny_llama
from runner.specs.training import TrainingSpec
from runner.train import train as script

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "datasets" / "kwanzaa" / "v0" / "train.jsonl"
MODEL_CACHE = Path(tempfile.gettempdir()) / "runner-bench-models"
MAX_SLOWDOWN = 0.05
DEFAULT_EPOCHS = 3.0
DEFAULT_ROUNDS = 5
DEFAULT_THREADS = 1
WARMUP_STEPS = 2


@dataclass
class TokenCounter:
    """Forward pre-hook on the decoder: the positions of every batch it is fed."""

    batches: int = 0
    total: int = 0
    real: int = 0

    def __call__(self, module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> None:
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        self.batches += 1
        self.total += input_ids.numel()
        self.real += int(mask.sum()) if mask is not None else input_ids.numel()


@dataclass(frozen=True)
class Run:
    wall_s: float
    """Trainer construction (tokenize, pack) + train(); model load excluded."""
    loop_s: float
    """The trainer's own train_runtime (the training loop alone)."""
    batches: int
    total: int
    real: int

    @property
    def efficiency(self) -> float:
        return self.real / self.total

    @property
    def tokens_per_s(self) -> float:
        return self.total / self.wall_s

    @property
    def real_per_s(self) -> float:
        return self.real / self.wall_s


# --- the two sides ---------------------------------------------------------------------


def training_settings(epochs: float, max_steps: int | None) -> dict[str, Any]:
    """The team defaults (qlora.yaml), adapted to a CPU: LoRA in fp32, adamw_torch, no
    gradient checkpointing, max_seq_length 512."""
    spec = TrainingSpec(
        method="lora",
        optim="adamw_torch",
        max_seq_length=512,
        gradient_checkpointing=False,
        num_train_epochs=epochs,
        max_steps=max_steps,
    )
    return spec.model_dump(mode="json")


def run_ours(
    model_dir: Path, records: list[dict[str, Any]], training: dict[str, Any], out: Path
) -> Run:
    settings = script.parse(script.TrainingSettings, training)
    tokenizer = script.load_tokenizer(model_dir)
    model = script.attach_lora(script.load_base_model(model_dir, settings), settings)
    counter = TokenCounter()
    model.get_base_model().model.register_forward_pre_hook(counter, with_kwargs=True)
    start = time.perf_counter()
    metrics = script.train_adapter(model, tokenizer, records, settings, out)
    wall = time.perf_counter() - start
    return Run(wall, metrics["train_runtime_s"], counter.batches, counter.total, counter.real)


def run_baseline(
    model_dir: Path, records: list[dict[str, Any]], training: dict[str, Any], out: Path
) -> Run:
    """A plain TRL script: model + tokenizer, a `messages` dataset, LoraConfig, SFTConfig."""
    set_seed(training["seed"])
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    dataset = Dataset.from_list([{"messages": record["messages"]} for record in records])
    peft_config = LoraConfig(
        r=training["r"],
        lora_alpha=training["lora_alpha"],
        lora_dropout=training["lora_dropout"],
        target_modules=list(training["target_modules"]),
        task_type="CAUSAL_LM",
    )
    args = SFTConfig(
        output_dir=str(out),
        num_train_epochs=training["num_train_epochs"],
        max_steps=training["max_steps"] or -1,
        learning_rate=training["learning_rate"],
        lr_scheduler_type=training["lr_scheduler_type"],
        warmup_steps=training["warmup_ratio"],
        per_device_train_batch_size=training["per_device_train_batch_size"],
        gradient_accumulation_steps=training["gradient_accumulation_steps"],
        optim=training["optim"],
        max_grad_norm=training["max_grad_norm"],
        max_length=training["max_seq_length"],
        packing=False,
        gradient_checkpointing=training["gradient_checkpointing"],
        seed=training["seed"],
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )
    counter = TokenCounter()
    model.model.register_forward_pre_hook(counter, with_kwargs=True)
    start = time.perf_counter()
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=peft_config,
    )
    result = trainer.train()
    wall = time.perf_counter() - start
    loop = result.metrics.get("train_runtime") or wall
    return Run(wall, loop, counter.batches, counter.total, counter.real)


SIDES: dict[str, Callable[..., Run]] = {"ours": run_ours, "baseline": run_baseline}


# --- report ----------------------------------------------------------------------------


def report(runs: dict[str, list[Run]], epochs: float, threads: int) -> None:
    best = {side: max(found, key=lambda run: run.real_per_s) for side, found in runs.items()}
    rounds = len(next(iter(runs.values())))
    print(
        f"tiny random Llama, {DATA.relative_to(ROOT)}, {epochs:g} epochs,"
        f" {threads} torch thread{'s' if threads > 1 else ''}, best of {rounds} rounds"
    )
    print(
        f"{'':9} {'batches':>7} {'real tok':>9} {'all tok':>9} {'packing':>8}"
        f" {'wall s':>7} {'loop s':>7} {'tok/s':>8} {'real tok/s':>11}"
    )
    for side, run in best.items():
        print(
            f"{side:9} {run.batches:7} {run.real:9,} {run.total:9,} {run.efficiency:8.1%}"
            f" {run.wall_s:7.2f} {run.loop_s:7.2f} {run.tokens_per_s:8,.0f} {run.real_per_s:11,.0f}"
        )
    ours, base = best["ours"], best["baseline"]
    print(
        f"{'ours/base':9} {'':7} {'':9} {'':9} {ours.efficiency / base.efficiency:7.2f}x"
        f" {ours.wall_s / base.wall_s:6.2f}x {ours.loop_s / base.loop_s:6.2f}x"
        f" {ours.tokens_per_s / base.tokens_per_s:7.2f}x {ours.real_per_s / base.real_per_s:10.2f}x"
    )
    for side, found in runs.items():
        rates = ", ".join(f"{run.real_per_s:,.0f}" for run in found)
        print(f"{side} real tok/s by round: {rates}")
    print("wall s: trainer set-up (tokenize, pack) + train(), model load excluded; loop s: train()")
    change = ours.real_per_s / base.real_per_s - 1
    verdict = "faster" if change >= 0 else "slower"
    met = "met" if change >= -MAX_SLOWDOWN else "NOT met"
    print(
        f"ours is {abs(change):.1%} {verdict} in real tokens/s"
        f" (target: not more than {MAX_SLOWDOWN:.0%} slower: {met})"
    )


# --- main ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=float, default=DEFAULT_EPOCHS, help="epochs a run")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, help="runs of each side")
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="torch threads")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.threads < 1 or args.epochs <= 0:
        parser.error("--rounds and --threads must be at least 1, --epochs above 0")
    return args


def quiet() -> None:
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    logging.getLogger("train").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def silently(run: Callable[..., Run], *args: Any) -> Run:
    """`run(*args)` without the trainer's per-step log lines on stdout."""
    with contextlib.redirect_stdout(io.StringIO()):
        return run(*args)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    quiet()
    torch.set_num_threads(args.threads)
    model_dir = build_tiny_llama(MODEL_CACHE)
    records = script.read_jsonl(DATA)
    runs: dict[str, list[Run]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory(prefix="train-bench-") as scratch:
        out = Path(scratch)
        warmup = training_settings(args.epochs, WARMUP_STEPS)
        for side, run in SIDES.items():
            silently(run, model_dir, records, warmup, out / f"warmup-{side}")
        training = training_settings(args.epochs, None)
        for index in range(args.rounds):
            for side, run in SIDES.items():
                print(f"round {index + 1}/{args.rounds}: {side}", flush=True)
                folder = out / f"{side}-{index}"
                runs[side].append(silently(run, model_dir, records, training, folder))
    real = {run.real for found in runs.values() for run in found}
    if len(real) != 1:
        raise SystemExit(f"the sides trained on different real token counts: {sorted(real)}")
    report(runs, args.epochs, args.threads)


if __name__ == "__main__":
    main()
