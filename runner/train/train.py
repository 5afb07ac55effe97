"""Train one LoRA/QLoRA adapter, generate its eval outputs and push both to the Hub.

One file, three homes:

- inside a Hugging Face Space (the `space` backend), where `app.py` starts
  `python train.py` at boot with the run config in the `RUN_CONFIG` variable;
- on this machine (the `local` backend), as `python train.py --config run.json` in a
  subprocess of the runner;
- and in a Hugging Face Job (the `jobs` backend), on several GPUs as `accelerate launch
  --num_processes N train.py`: every process trains, the main one alone saves, generates,
  uploads and writes run.json.

So it is self-contained: it imports only the standard library, torch, transformers, peft,
trl, accelerate, datasets and huggingface_hub (with its httpx2; and bitsandbytes, through
transformers, for QLoRA), never the `runner` package. Those libraries load in the functions
that use them, so the run contract (the classes of the run config and run.json) imports with
the standard library alone: the runner renders and reads the same classes. The Hub endpoint
and token come from the environment (`HF_ENDPOINT`, `HF_TOKEN`), read by huggingface_hub
itself.

Stages: config, resume (a trained adapter this run id kept earlier, in the output folder or on
the Hub), download (base model, dataset and incumbent at pinned revisions, one file at a time),
load, train (TRL SFTTrainer + peft, loss on the assistant turn only), save (the adapter, with
run.json status `trained`), keep (the trained adapter uploaded to `output.path_in_repo` at
once, so no later failure costs the training), generate (greedy, batched, left-padded, for the
candidate, the base model with the adapter disabled and the incumbent adapter, on the same eval
items; base and incumbent outputs that an earlier run cached in the output repo are read back
instead, and run.json's `reused` names them), upload (adapter files, `eval_outputs.jsonl`,
`metrics.json` and `run.json` in one commit under `output.path_in_repo`, with the base and
incumbent outputs this run generated under `outputs/` for the next runs). A run that finds a
kept adapter skips train, save and keep (`--retrain` trains anyway). A failure in any stage
still uploads `run.json` with the stage and a redacted message, status `failed`, or `trained`
beside the kept adapter (never `failed` over a kept adapter it could not fetch), and the process
exits 1.

Every Hub request has timeouts and is retried on its own on 429, 5xx, timeouts and dropped
connections, with the runner's policy (runner/hub/retry.py, restated here).
"""

from __future__ import annotations

import argparse
import dataclasses
import fnmatch
import hashlib
import json
import logging
import math
import os
import platform
import random
import re
import resource
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
import types
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar, get_args, get_origin, get_type_hints

# huggingface_hub reads these at import time.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that spin while they wait turn a busy machine into a crawl: with one other
# CPU-bound process on 2 cores, a training step took 8x longer (threads spinning for a core
# the other process holds). Passive waiting costs nothing on an idle machine. Read once, when
# torch loads OpenMP: so before `import torch`.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# The local Hub emulator (loopback only) has no Xet storage, and huggingface_hub takes Xet
# whenever hf_xet is installed without asking: against it, take the LFS path it serves (the
# runner's `serves_xet` rule, kept here because this script runs alone).
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
if urllib.parse.urlsplit(os.environ.get("HF_ENDPOINT", "")).hostname in LOOPBACK_HOSTS:
    os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

KERNELS_NOTICE = "Failed to load CPU gemm_4bit_forward from kernels-community"


def drop_kernels_notice(record: logging.LogRecord) -> bool:
    """False for bitsandbytes' advice to `pip install kernels`, logged at its import on every
    CPU with avx512_bf16. We never install `kernels` (it downloads code from the Hub when
    imported), so the advice is noise at the top of every log."""
    return not str(record.msg).startswith(KERNELS_NOTICE)


def quiet_kernels_notice() -> None:
    """Drop that one message, and only it, from the logger that emits it. Call before anything
    imports bitsandbytes; calling again changes nothing."""
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(drop_kernels_notice)


# Before anything imports bitsandbytes: transformers' trainer and peft do, in the functions
# below that import them.
quiet_kernels_notice()

if TYPE_CHECKING:
    import httpx2
    import torch
    from accelerate import PartialState
    from peft import PeftModel
    from transformers import (
        BitsAndBytesConfig,
        GenerationConfig,
        PreTrainedModel,
        PreTrainedTokenizerBase,
        TrainerCallback,
        TrainerControl,
        TrainerState,
        TrainingArguments,
    )
    from trl import SFTConfig

    # The PyPI `datasets` (ruff files it as first-party because of the repo's datasets/ folder).
    from datasets import Dataset

LOG = logging.getLogger("train")

# Weights, configs and tokenizers; not .bin/.gguf/.onnx duplicates of the same weights.
MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
CUDA_ONLY_OPTIMIZERS = {"paged_adamw_8bit", "paged_adamw_32bit", "adamw_8bit"}
SHARDED = ("fsdp2", "zero3")
LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "huggingface_hub",
    "bitsandbytes",
    "safetensors",
    "tokenizers",
)
_TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{8,}")
# Lines starting with this on stdout are progress events for the runner's progress view
# (read from the subprocess locally, from the Space's run log remotely).
PROGRESS_MARKER = "@@progress "


# -- the run contract -------------------------------------------------------------------------
# What the runner hands this script (the run config) and what the script leaves beside the
# adapter (run.json). The runner renders and reads the same classes; JSON is checked against
# their fields, so a field added here is checked without a key list to keep in step.

Task = Literal["citation_grounded_chat", "code_assistant"]


@dataclass(frozen=True)
class ModelRef:
    """A model repo at a pinned revision: the base model, or the incumbent adapter."""

    repo_id: str
    revision: str


@dataclass(frozen=True)
class DatasetRef:
    repo_id: str
    revision: str
    train_file: str
    eval_file: str


@dataclass(frozen=True)
class Quantization:
    load_in_4bit: bool
    bnb_4bit_quant_type: Literal["nf4", "fp4"]
    bnb_4bit_use_double_quant: bool
    bnb_4bit_compute_dtype: Literal["bfloat16", "float16", "float32"]


@dataclass(frozen=True)
class TrainingSettings:
    """The resolved qlora.yaml."""

    method: Literal["qlora", "lora"]
    r: int
    lora_alpha: int
    lora_dropout: float
    target_modules: list[str]
    modules_to_save: list[str]
    quantization: Quantization | None
    num_train_epochs: float
    max_steps: int | None
    learning_rate: float
    lr_scheduler_type: str
    warmup_ratio: float
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    optim: str
    weight_decay: float
    max_grad_norm: float
    max_seq_length: int
    packing: bool
    assistant_only_loss: bool
    gradient_checkpointing: bool
    seed: int


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int
    batch_size: int
    max_items: int | None


@dataclass(frozen=True)
class OutputRef:
    """Where the run's files go: a folder in a repo (the candidate location)."""

    repo_id: str
    repo_type: str
    path_in_repo: str


@dataclass(frozen=True)
class Parallel:
    """Several processes, one per GPU, started by `accelerate launch` with TRL's preset of
    this strategy: `ddp` replicates the model, `fsdp2` and `zero3` shard weights and
    optimizer state over the GPUs."""

    strategy: Literal["ddp", "fsdp2", "zero3"]
    processes: int


@dataclass(frozen=True)
class RunConfig:
    """What `RUN_CONFIG` or `--config` holds."""

    run_id: str
    adapter: str
    task: Task
    base_model: ModelRef
    dataset: DatasetRef
    training: TrainingSettings
    generation: GenerationSettings
    incumbent: ModelRef | None
    output: OutputRef
    parallel: Parallel | None
    """None: one process on one device."""


@dataclass(frozen=True)
class RunError:
    stage: str
    type: str
    message: str


@dataclass(frozen=True)
class JobUsage:
    """What a Hugging Face Job spent on a run: the runner adds it to run.json once the job
    completes (train.py inside the job cannot know its own queue time)."""

    job_id: str
    flavor: str
    scheduling_s: float
    running_s: float
    peak_gpu_memory_bytes: int | None
    """The most any one GPU held, from the job's metrics; None when none were read."""
    gpu_utilization_pct: float | None
    """The mean GPU utilisation over the metrics read; None when none were read."""


@dataclass(frozen=True)
class RunResult:
    """What run.json holds. `engine` and `autotrain_repo` are the AutoTrain app's additions
    (its run.json has no `sha256`); `config` is None when the run config did not parse; `job`
    is the `jobs` backend's addition."""

    run_id: str | None
    adapter: str | None
    status: str
    error: RunError | None
    started_at: str
    finished_at: str
    config: RunConfig | None
    sha256: dict[str, str] = field(default_factory=dict)
    processes: int = 1
    """How many processes trained (the world size seen): 4 for a run on 4 GPUs."""
    engine: str = "trl"
    autotrain_repo: str | None = None
    job: JobUsage | None = None
    reused: dict[str, str] = field(default_factory=dict)
    """The roles whose eval outputs came from the cache, not generated: role -> cache key (the
    file `outputs/<key>.jsonl` in the candidates repo)."""


C = TypeVar("C")


class ContractError(ValueError):
    """JSON that does not fit a contract class; one problem per key path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def parse(cls: type[C], value: Any) -> C:
    """`value` (parsed JSON) as an instance of the dataclass `cls`, or ContractError naming
    every missing, unknown and wrongly typed key by its path."""
    problems: list[str] = []
    parsed = _parse_value(cls, value, "", problems)
    if problems:
        raise ContractError(problems)
    return parsed


def to_json(value: Any) -> Any:
    """A contract object as the JSON value it parses from."""
    return dataclasses.asdict(value)


def parse_run_config(value: Any) -> RunConfig:
    """The run config, or ValueError naming every missing or unknown key and bad value."""
    problems: list[str] = []
    config = _parse_value(RunConfig, value, "", problems)
    run_id = value.get("run_id") if isinstance(value, dict) else None
    if not isinstance(run_id, str) or not re.fullmatch(r"[0-9a-f]{16}", run_id):
        problems.append("run_id: expected 16 lowercase hex characters")
    if problems:
        raise ValueError("invalid run config: " + "; ".join(problems))
    return config


def _parse_value(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    origin, args = get_origin(hint), get_args(hint)
    if dataclasses.is_dataclass(hint):
        return _parse_object(hint, value, path, problems)
    if origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        (inner,) = [arg for arg in args if arg is not type(None)]
        return _parse_value(inner, value, path, problems)
    if origin is Literal:
        if value not in args:
            problems.append(f"{path}: expected one of {sorted(args)}")
        return value
    if origin is list:
        if not isinstance(value, list):
            return _wrong_type(path, "a list", value, problems)
        return [
            _parse_value(args[0], item, f"{path}[{i}]", problems) for i, item in enumerate(value)
        ]
    if origin is dict:
        if not isinstance(value, dict) or not all(isinstance(key, str) for key in value):
            return _wrong_type(path, "an object", value, problems)
        return {
            key: _parse_value(args[1], item, f"{path}.{key}", problems)
            for key, item in value.items()
        }
    return _parse_scalar(hint, value, path, problems)


def _parse_scalar(hint: Any, value: Any, path: str, problems: list[str]) -> Any:
    if hint is Any:
        return value
    # JSON has one number type: an integer is a fine float; a boolean is neither.
    accepted = (int, float) if hint is float else (hint,)
    if (isinstance(value, bool) and hint is not bool) or not isinstance(value, accepted):
        return _wrong_type(path, hint.__name__, value, problems)
    return value


def _wrong_type(path: str, expected: str, value: Any, problems: list[str]) -> None:
    problems.append(f"{path or 'config'}: expected {expected}, got {type(value).__name__}")


def _parse_object(cls: Any, value: Any, path: str, problems: list[str]) -> Any:
    if not isinstance(value, dict):
        return _wrong_type(path, "an object", value, problems)
    prefix = f"{path}." if path else ""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    optional = {name for name, f in fields.items() if _has_default(f)}
    problems += [f"{prefix}{k}: missing" for k in sorted(set(fields) - set(value) - optional)]
    problems += [f"{prefix}{k}: unknown key" for k in sorted(set(value) - set(fields))]
    hints = get_type_hints(cls)
    known = {
        k: _parse_value(hints[k], v, prefix + k, problems) for k, v in value.items() if k in fields
    }
    return None if problems else cls(**known)


def _has_default(spec: dataclasses.Field[Any]) -> bool:
    return (
        spec.default is not dataclasses.MISSING or spec.default_factory is not dataclasses.MISSING
    )


# -- stages and errors ------------------------------------------------------------------------


class StageFailed(Exception):
    """An exception raised inside a named stage of the run."""

    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


@contextmanager
def stage(name: str, metrics: dict[str, Any]) -> Iterator[None]:
    """Time a stage into `metrics["durations_s"]`; wrap what it raises in `StageFailed`."""
    LOG.info("stage %s: start", name)
    emit_progress(stage=name)
    start = time.perf_counter()
    try:
        yield
    except StageFailed:
        raise
    except Exception as error:
        raise StageFailed(name, error) from error
    finally:
        metrics["durations_s"][name] = round(time.perf_counter() - start, 3)
        LOG.info("stage %s: %.1f s", name, metrics["durations_s"][name])


def emit_progress(**event: Any) -> None:
    print(PROGRESS_MARKER + json.dumps(event), flush=True)


def progress_callback() -> TrainerCallback:
    """One progress event per logged step: step, total steps and loss."""
    from transformers import TrainerCallback

    class ProgressCallback(TrainerCallback):
        def on_log(
            self,
            args: TrainingArguments,
            state: TrainerState,
            control: TrainerControl,
            logs: dict[str, Any] | None = None,
            **kwargs: Any,
        ) -> None:
            if logs and "loss" in logs and state.is_world_process_zero:  # one report per step
                emit_progress(
                    stage="train", step=state.global_step, total=state.max_steps, loss=logs["loss"]
                )

    return ProgressCallback()


def redact(text: str) -> str:
    """`text` without the Hub tokens of this environment (either name huggingface_hub reads)
    or anything shaped like a token."""
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        token = os.environ.get(name)
        if token:
            text = text.replace(token, "***")
    return _TOKEN_PATTERN.sub("hf_***", text)


def error_record(failure: StageFailed) -> RunError:
    return RunError(failure.stage, type(failure.error).__name__, redact(str(failure.error))[:2000])


# -- config -----------------------------------------------------------------------------------


def read_config(config_path: str | None) -> Any:
    """The run config's JSON value from `--config PATH`, else from the text in `RUN_CONFIG`."""
    if config_path:
        return json.loads(Path(config_path).read_text(encoding="utf-8"))
    text = os.environ.get("RUN_CONFIG")
    if not text:
        raise ValueError("no run config: pass --config run.json or set RUN_CONFIG to its JSON")
    return json.loads(text)


# -- processes ----------------------------------------------------------------------------------
# `accelerate launch --num_processes N train.py` starts this script N times, one process per GPU
# (`Parallel`). All of them train (the trainer takes DDP, FSDP2 or ZeRO-3 from accelerate's
# environment); only the main process saves, generates, uploads and writes run.json. Without
# `accelerate launch` there is one process, and it is the main one.


def process_state(barrier_timeout: float) -> PartialState:
    """This process's place among the run's processes. On a CPU accelerate counts the
    processes only when told `cpu=True` (without it, each of N launched processes takes itself
    for the only one). `barrier_timeout`: how long a process waits for the others at a barrier
    (the main process downloads a base model first: that can take long)."""
    from datetime import timedelta

    from accelerate import PartialState

    return PartialState(cpu=device_type() == "cpu", timeout=timedelta(seconds=barrier_timeout))


def record_before_stopping(processes: PartialState) -> None:
    """In the main process of several, take the launcher's SIGTERM as a note, not a stop. When
    one process fails, the launcher stops the others at once: the main process's collective
    fails at the same moment (measured: the SIGTERM came 6 ms after, before run.json went up).
    Carrying on, the main process records the failure and exits; the launcher's SIGKILL after
    its grace period (30 s) still bounds the run."""
    if processes.num_processes > 1 and processes.is_main_process:
        signal.signal(signal.SIGTERM, _note_stop)


def _note_stop(signum: int, frame: types.FrameType | None) -> None:
    LOG.warning("asked to stop (another process ended): recording the run first")


def _is_sharded(parallel: Parallel | None) -> bool:
    """The weights are split over the processes: no one of them holds the whole model."""
    return parallel is not None and parallel.strategy in SHARDED


# -- the Hub: retries, timeouts, one file at a time ---------------------------------------------
# The runner's policy (runner/hub/retry.py), restated because this file travels alone into a
# Space; a test pins the two together. One retry loop: the session below raises transient
# failures past huggingface_hub's own retry loops, so attempts never multiply.

T = TypeVar("T")
RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
# The knobs, in seconds (the runner's names: a local run inherits the runner's environment).
ENV_TIMEOUT = "RUNNER_HUB_TIMEOUT"
ENV_DEADLINE = "RUNNER_HUB_DEADLINE"
ENV_TRANSFER_DEADLINE = "RUNNER_HUB_TRANSFER_DEADLINE"
WINDOW_MARGIN = 1.0


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    unreachable_attempts: int = 1  # refused or unresolvable: retrying finds no Hub either
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    timeout: float = 60.0  # of silence: to connect, or between bytes sent or received
    deadline: float = 600.0  # a whole read of metadata, retries included
    transfer_deadline: float = 4 * 3600.0  # a whole upload or download (weights)

    @classmethod
    def from_env(cls) -> RetryPolicy:
        """The defaults, with each knob that is set in the environment instead."""
        knobs = {
            "timeout": ENV_TIMEOUT,
            "deadline": ENV_DEADLINE,
            "transfer_deadline": ENV_TRANSFER_DEADLINE,
        }
        return cls(**{name: _seconds(var) for name, var in knobs.items() if os.environ.get(var)})

    def backoff(self, failures: int) -> float:
        delay = min(self.base_delay * 2 ** max(failures - 1, 0), self.max_delay)
        return delay * (1 + random.uniform(-self.jitter, self.jitter))


def _seconds(name: str) -> float:
    text = os.environ[name]
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} is {text!r}: set it to a number of seconds above 0, or unset it")
    return value


_policy = {"active": RetryPolicy()}


class TransientHubError(Exception):
    """A request that failed in a way worth retrying: a status in RETRY_STATUS (with the wait
    the Hub asked for), or a dropped, refused or silent connection (its httpx2 error is the
    cause). Not an httpx2 error, so huggingface_hub's own retry loops let it through."""

    def __init__(
        self, request: httpx2.Request, what: str, status: int | None, wait: float | None
    ) -> None:
        self.status, self.wait = status, wait
        super().__init__(f"{request.method} {request.url.path}: {what}")


def hub_session_class() -> type[httpx2.Client]:
    """huggingface_hub's client (same hooks, same redirects) whose requests end: a timeout on
    every silence where huggingface_hub set none, and transient failures raised for
    `with_retries`."""
    import httpx2

    class HubSession(httpx2.Client):
        def send(self, request: httpx2.Request, **kwargs: Any) -> httpx2.Response:
            timeout = _policy["active"].timeout
            asked = request.extensions.get("timeout") or {}
            bounded = {
                kind: asked.get(kind) or timeout for kind in ("connect", "read", "write", "pool")
            }
            request.extensions = {**request.extensions, "timeout": bounded}
            try:
                response = super().send(request, **kwargs)
            except httpx2.TransportError as error:
                raise TransientHubError(request, type(error).__name__, None, None) from error
            status = response.status_code
            if status in RETRY_STATUS:
                response.close()
                wait = wait_hint(status, response.headers)
                raise TransientHubError(request, f"HTTP {status}", status, wait)
            return response

    return HubSession


def install_hub_session(policy: RetryPolicy) -> None:
    """Send every huggingface_hub request of this process through a HubSession timed by
    `policy` (huggingface_hub recreates its client after some errors: the factory, not one
    client, carries it)."""
    from huggingface_hub import get_session, set_client_factory

    _policy["active"] = policy
    hf_default = get_session()
    # Its timeout is none: without passing it on, httpx's 5 s default would fill every
    # request and the policy's timeout would never apply.
    settings = {
        "event_hooks": hf_default.event_hooks,
        "follow_redirects": hf_default.follow_redirects,
        "timeout": hf_default.timeout,
    }
    session = hub_session_class()
    set_client_factory(lambda: session(**settings))


def wait_hint(status: int, headers: httpx2.Headers) -> float | None:
    """Seconds the Hub asks us to wait: until the window a 429's `RateLimit` says is spent
    (`"api";r=0;t=55`) resets, plus a second (it counts whole seconds), read first as
    huggingface_hub does; else `Retry-After`."""
    from huggingface_hub.utils import parse_ratelimit_headers

    window = parse_ratelimit_headers(headers) if status == 429 else None
    if window is not None and window.remaining == 0:
        return window.reset_in_seconds + WINDOW_MARGIN
    retry_after = headers.get("Retry-After")
    if retry_after is None:
        return None
    try:
        return max(float(retry_after), 0.0)
    except ValueError:
        return None  # an HTTP date: rare enough to fall back on our backoff


def is_transient(error: BaseException) -> bool:
    """Worth retrying: a TransientHubError, or the same failures reaching us another way."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    for cause in _chain(error):
        if isinstance(cause, TransientHubError | httpx2.TransportError):
            return True
        if isinstance(cause, HfHubHTTPError) and cause.response is not None:
            return cause.response.status_code in RETRY_STATUS
    return False


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def with_retries(what: str, call: Callable[[], T], *, transfer: bool = False) -> T:
    """`call()` retried on transient failures, within the policy's attempts and deadline
    (`transfer`: the generous one, for uploads and downloads); the last failure is re-raised.
    Callers retry one request or one file each, so a flaky request costs one retry, never
    the work done before it."""
    policy = _policy["active"]
    limit = policy.transfer_deadline if transfer else policy.deadline
    started = time.monotonic()
    failures = unreachable = 0
    while True:
        try:
            return call()
        except Exception as error:
            if not is_transient(error):
                raise
            failures += 1
            # Refused, or a host name that does not resolve: no Hub there (as the runner's).
            no_hub = (ConnectionRefusedError, socket.gaierror)
            unreachable += any(isinstance(c, no_hub) for c in _chain(error))
            asked = next((c.wait for c in _chain(error) if isinstance(c, TransientHubError)), None)
            wait = policy.backoff(failures) if asked is None else asked
            left = limit - (time.monotonic() - started)
            spent = failures >= policy.attempts or unreachable >= policy.unreachable_attempts
            if spent or wait >= left:
                LOG.error("%s: %s; giving up after %d attempts", what, _brief(error), failures)
                raise
            LOG.warning("%s: %s; retrying in %.1f s", what, _brief(error), wait)
            time.sleep(wait)


def _brief(error: BaseException) -> str:
    return redact(f"{type(error).__name__}: {error}")[:300]


def download_file(repo_id: str, filename: str, *, revision: str, repo_type: str = "model") -> Path:
    """One file at `revision`, retried on its own."""
    from huggingface_hub import hf_hub_download

    return Path(
        with_retries(
            f"download {repo_id}/{filename}",
            lambda: hf_hub_download(repo_id, filename, repo_type=repo_type, revision=revision),
            transfer=True,
        )
    )


def download_folder(
    repo_id: str, revision: str, patterns: Sequence[str], repo_type: str = "model"
) -> Path:
    """The files of `repo_id` at `revision` that match `patterns`, one file at a time (a
    failure costs that file's retry, never the files already fetched); returns the local
    snapshot folder they are in."""
    from huggingface_hub import HfApi

    info = with_retries(
        f"read {repo_id}@{revision}",
        lambda: HfApi().repo_info(repo_id, repo_type=repo_type, revision=revision),
    )
    names = [
        sibling.rfilename
        for sibling in info.siblings or []
        if any(fnmatch.fnmatch(sibling.rfilename, pattern) for pattern in patterns)
    ]
    if not names:
        raise FileNotFoundError(f"{repo_id}@{revision} has no file matching {list(patterns)}")
    # The commit the revision named, so every file comes from the same one.
    paths = [
        download_file(repo_id, name, revision=str(info.sha), repo_type=repo_type) for name in names
    ]
    return paths[0].parents[len(Path(names[0]).parts) - 1]


# -- download ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Local paths of everything the run reads from the Hub."""

    model_dir: Path
    train_file: Path
    eval_file: Path
    incumbent_dir: Path | None


def download_inputs(config: RunConfig) -> Inputs:
    """Base model, dataset files and incumbent adapter, each at its pinned revision."""
    base, data, incumbent = config.base_model, config.dataset, config.incumbent
    model_dir = download_folder(base.repo_id, base.revision, MODEL_FILES)
    train_file, eval_file = (
        download_file(data.repo_id, name, revision=data.revision, repo_type="dataset")
        for name in (data.train_file, data.eval_file)
    )
    incumbent_dir = None
    if incumbent:
        incumbent_dir = download_folder(incumbent.repo_id, incumbent.revision, ADAPTER_FILES)
    return Inputs(model_dir, train_file, eval_file, incumbent_dir)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as stream:
        return [json.loads(line) for line in stream if line.strip()]


# -- load -------------------------------------------------------------------------------------


def device_type() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def compute_dtype(training: TrainingSettings) -> torch.dtype:
    """fp32 on a CPU; on a GPU the configured 4-bit compute dtype, or bf16 for plain LoRA."""
    import torch

    if device_type() == "cpu":
        return torch.float32
    quantization = training.quantization
    name = quantization.bnb_4bit_compute_dtype if quantization else "bfloat16"
    if name == "bfloat16" and not torch.cuda.is_bf16_supported():
        return torch.float16
    return getattr(torch, name)


def quantization_config(
    training: TrainingSettings, parallel: Parallel | None = None
) -> BitsAndBytesConfig | None:
    """NF4 (or FP4) 4-bit loading through bitsandbytes for `method: qlora`, else None.

    Sharded (FSDP2, ZeRO-3), the 4-bit weights are stored in the compute dtype: FSDP and
    DeepSpeed shard only floating-point tensors of one dtype, and bitsandbytes packs into
    uint8 by default (PEFT docs, "Use PEFT QLoRA and FSDP for finetuning large models on
    multiple GPUs" and "Use PEFT QLoRA and DeepSpeed with ZeRO3 ...": `bnb_4bit_quant_storage`
    = the model's dtype)."""
    from transformers import BitsAndBytesConfig

    if training.method != "qlora":
        return None
    settings = training.quantization
    dtype = compute_dtype(training)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type=settings.bnb_4bit_quant_type if settings else "nf4",
        bnb_4bit_use_double_quant=settings.bnb_4bit_use_double_quant if settings else True,
        bnb_4bit_compute_dtype=dtype,
        bnb_4bit_quant_storage=dtype if _is_sharded(parallel) else None,
    )


def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_base_model(
    model_dir: Path, training: TrainingSettings, parallel: Parallel | None = None
) -> PreTrainedModel:
    """The base model: 4-bit for QLoRA, full precision for LoRA, on this process's GPU when
    there is one."""
    from transformers import AutoModelForCausalLM

    quantization = quantization_config(training, parallel)
    model = AutoModelForCausalLM.from_pretrained(
        model_dir,
        dtype=compute_dtype(training),
        quantization_config=quantization,
        device_map=device_map(parallel),
    )
    if quantization is not None:
        disable_cpu_weight_repacking(model)
    return model


def device_map(parallel: Parallel | None) -> dict[str, int] | str | None:
    """Where the weights load: the CPU; this process's GPU; or, sharded, nowhere yet (FSDP2 and
    ZeRO-3 place the shards themselves)."""
    from accelerate import PartialState

    if device_type() == "cpu":
        return "cpu"
    if _is_sharded(parallel):
        return None
    return {"": PartialState().local_process_index}


def disable_cpu_weight_repacking(model: torch.nn.Module) -> int:
    """Stop bitsandbytes' avx512_bf16 CPU path from repacking 4-bit weights in an eval
    forward: once repacked, later training gradients are silently wrong (bitsandbytes 0.50).
    Returns the number of 4-bit layers changed."""
    layers = [m for m in model.modules() if hasattr(m, "support_avx512bf16_for_cpu")]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)


# -- train ------------------------------------------------------------------------------------


def attach_lora(
    model: PreTrainedModel, training: TrainingSettings, parallel: Parallel | None = None
) -> PeftModel:
    """Wrap `model` in a fresh, trainable LoRA adapter (seeded by `training.seed`).

    Sharded QLoRA keeps every weight in the one storage dtype FSDP2 and ZeRO-3 shard: no fp32
    upcast of the other layers (prepare_model_for_kbit_training) nor of the adapter, as TRL
    does for a sharded QLoRA model (trl `prepare_peft_model`)."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import set_seed

    set_seed(training.seed)
    sharded_qlora = training.method == "qlora" and _is_sharded(parallel)
    if training.method == "qlora" and not sharded_qlora:
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=training.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    config = LoraConfig(
        r=training.r,
        lora_alpha=training.lora_alpha,
        lora_dropout=training.lora_dropout,
        target_modules=list(training.target_modules),
        modules_to_save=list(training.modules_to_save) or None,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config, autocast_adapter_dtype=not sharded_qlora)


def chat_dataset(records: list[dict[str, Any]], assistant_only_loss: bool) -> Dataset:
    """Chat records as TRL rows: prompt/completion (loss on the final assistant turn only)
    when `assistant_only_loss`, else whole `messages` (loss on every token).

    Prompt/completion works with any chat template; TRL's own `assistant_only_loss` needs
    `{% generation %}` markers that most base models' templates lack."""
    from datasets import Dataset

    rows = []
    for record in records:
        messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
        if messages[-1]["role"] != "assistant":
            raise ValueError(f"record {record.get('id')!r} does not end with an assistant turn")
        if assistant_only_loss:
            rows.append({"prompt": messages[:-1], "completion": messages[-1:]})
        else:
            rows.append({"messages": messages})
    return Dataset.from_list(rows)


def resolve_optimizer(requested: str) -> tuple[str, str | None]:
    """The optimizer to use here and, when it differs from the requested one, why."""
    if device_type() == "cpu" and requested in CUDA_ONLY_OPTIMIZERS:
        return "adamw_torch", f"{requested} needs CUDA (bitsandbytes); used adamw_torch on CPU"
    return requested, None


def sft_config(training: TrainingSettings, output_dir: Path, optim: str) -> SFTConfig:
    """TRL's config from the resolved qlora.yaml. Packing is BFD packing, which is padding-free
    with per-example position ids (no attention across examples)."""
    import torch
    from trl import SFTConfig

    dtype = compute_dtype(training)
    on_cpu = device_type() == "cpu"
    return SFTConfig(
        output_dir=str(output_dir),
        num_train_epochs=training.num_train_epochs,
        max_steps=training.max_steps or -1,
        learning_rate=training.learning_rate,
        lr_scheduler_type=training.lr_scheduler_type,
        warmup_steps=training.warmup_ratio,  # a float below 1 is a ratio in transformers 5
        per_device_train_batch_size=training.per_device_train_batch_size,
        gradient_accumulation_steps=training.gradient_accumulation_steps,
        optim=optim,
        weight_decay=training.weight_decay,
        max_grad_norm=training.max_grad_norm,
        max_length=training.max_seq_length,
        packing=training.packing,
        packing_strategy="bfd",
        completion_only_loss=training.assistant_only_loss,
        assistant_only_loss=False,
        activation_checkpointing=training.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        seed=training.seed,
        data_seed=training.seed,
        bf16=not on_cpu and dtype == torch.bfloat16,
        fp16=not on_cpu and dtype == torch.float16,
        use_cpu=on_cpu,
        dataloader_pin_memory=not on_cpu,
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        disable_tqdm=True,
    )


def train_adapter(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
    training: TrainingSettings,
    output_dir: Path,
    callbacks: Sequence[TrainerCallback] | None = None,
    save_to: Path | None = None,
) -> dict[str, Any]:
    """Train the LoRA weights of `model` in place; returns the training metrics. Each logged
    step goes to `callbacks` (default: progress events on stdout for the runner). With
    `save_to`, the trainer saves the adapter there, as peft does (every process must call
    this: sharded, the weights are gathered from all of them, and the main one writes)."""
    from transformers import PrinterCallback
    from trl import SFTTrainer

    optim, optim_note = resolve_optimizer(training.optim)
    # A cache in the forward turns off transformers' packed-sequence masks: examples leak.
    model.config.use_cache = False
    shaped = one_packed_sequence_per_forward(training, model.config._attn_implementation)
    trainer = SFTTrainer(
        model=model,
        args=sft_config(shaped, output_dir, optim),
        train_dataset=chat_dataset(records, training.assistant_only_loss),
        processing_class=tokenizer,
        callbacks=list(callbacks) if callbacks is not None else [progress_callback()],
    )
    trainer.remove_callback(PrinterCallback)  # the callbacks report steps; no raw log dicts
    if device_type() == "cpu":
        keep_trainable_weights_fp32(model)  # TRL casts QLoRA adapters to bf16
    result = trainer.train()
    if save_to is not None:
        # Under FSDP2 (FULL_STATE_DICT) and ZeRO-3 the trainer gathers the full state dict and
        # hands it to PeftModel.save_pretrained, which keeps the adapter's weights: the
        # same adapter_model.safetensors + adapter_config.json as one process writes.
        trainer.save_model(str(save_to))
    model.config.use_cache = True
    return {
        **training_metrics(trainer.state.log_history, result.metrics),
        "optimizer": {"requested": training.optim, "used": optim, "note": optim_note},
    }


def one_packed_sequence_per_forward(
    training: TrainingSettings, attention: str | None
) -> TrainingSettings:
    """Padding-free packing joins a batch's packed sequences into one row. Flash attention
    keeps them apart cheaply; any other attention builds and runs the full square mask over
    the joined row (measured: 1.8x the step time of the same tokens padded). So without flash
    attention, feed one packed sequence per forward and accumulate: every optimizer step
    still sees the same sequences."""
    if not training.packing or (attention or "").startswith("flash_attention"):
        return training
    return dataclasses.replace(
        training,
        per_device_train_batch_size=1,
        gradient_accumulation_steps=training.gradient_accumulation_steps
        * training.per_device_train_batch_size,
    )


def keep_trainable_weights_fp32(model: torch.nn.Module) -> None:
    """Undo TRL's bf16 cast of QLoRA adapter weights: a CPU computes in fp32."""
    import torch

    for param in model.parameters():
        if param.requires_grad and param.dtype != torch.float32:
            param.data = param.data.float()


def training_metrics(log_history: list[dict[str, Any]], summary: dict[str, Any]) -> dict[str, Any]:
    """Loss per logging step and throughput from the trainer's logs."""
    steps = [
        {
            k: entry[k]
            for k in ("step", "epoch", "loss", "learning_rate", "grad_norm", "num_tokens")
            if k in entry
        }
        for entry in log_history
        if "loss" in entry
    ]
    tokens = steps[-1].get("num_tokens", 0) if steps else 0
    runtime = summary.get("train_runtime") or 0.0
    return {
        "loss_history": steps,
        "train_loss": summary.get("train_loss"),
        "train_runtime_s": runtime,
        "train_tokens": tokens,
        "train_tokens_per_s": round(tokens / runtime, 2) if runtime else None,
        "global_steps": steps[-1]["step"] if steps else 0,
    }


# -- save -------------------------------------------------------------------------------------


def save_adapter(saved: Path, adapter_dir: Path, base_model: ModelRef) -> list[Path]:
    """Copy adapter_config.json + adapter_model.safetensors from `saved` (the trainer's save:
    it also holds the tokenizer and training arguments) into `adapter_dir`. The config then
    names the Hub base model and revision instead of the local snapshot (patched after saving,
    so peft's vocabulary check reads the local config and never the network). The model card
    comes with promotion, so peft's stub README stays behind."""
    adapter_dir.mkdir(parents=True)
    for name in ADAPTER_FILES:
        shutil.copyfile(saved / name, adapter_dir / name)
    config_path = adapter_dir / "adapter_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8"))
    config["base_model_name_or_path"] = base_model.repo_id
    config["revision"] = base_model.revision
    write_json(config_path, config)
    return sorted(adapter_dir.iterdir())


# -- generate ---------------------------------------------------------------------------------


def prompt_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """The chat up to (not including) the final assistant turn."""
    messages = [{"role": m["role"], "content": m["content"]} for m in record["messages"]]
    return messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages


def prompt_sha256(messages: list[dict[str, str]]) -> str:
    """Hash of the prompt messages as canonical JSON: the same for every role and tokenizer."""
    return canonical_sha256(messages)


def eval_items(records: list[dict[str, Any]], max_items: int | None) -> list[dict[str, Any]]:
    chosen = records if max_items is None else records[:max_items]
    return [
        {
            "item_id": str(record.get("id", index)),
            "category": record.get("category"),
            "messages": prompt_messages(record),
        }
        for index, record in enumerate(chosen)
    ]


def greedy_config(
    model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, max_new_tokens: int
) -> GenerationConfig:
    from transformers import GenerationConfig

    eos = getattr(model.generation_config, "eos_token_id", None) or tokenizer.eos_token_id
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        do_sample=False,
        num_beams=1,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
    )


def generate_rows(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    items: list[dict[str, Any]],
    generation: GenerationSettings,
    role: str,
    report: bool = False,
) -> list[dict[str, Any]]:
    """Greedy outputs of `model` for `items`, in fixed-size left-padded batches; with
    `report`, a progress event per batch (the run's, not smoke's in-process generation)."""
    model.eval()
    tokenizer.padding_side = "left"
    config = greedy_config(model, tokenizer, generation.max_new_tokens)
    eos_ids = _as_set(config.eos_token_id)
    rows: list[dict[str, Any]] = []
    size = generation.batch_size
    for start in range(0, len(items), size):
        batch = items[start : start + size]
        rows += _generate_batch(model, tokenizer, batch, config, eos_ids, role)
        if report:  # a step counter that moves: the runner lets a progressing run go on
            emit_progress(stage="generate", role=role, step=len(rows), total=len(items))
    return rows


def _generate_batch(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    batch: list[dict[str, Any]],
    config: GenerationConfig,
    eos_ids: set[int],
    role: str,
) -> list[dict[str, Any]]:
    import torch

    texts = [
        tokenizer.apply_chat_template(item["messages"], add_generation_prompt=True, tokenize=False)
        for item in batch
    ]
    inputs = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    inputs = inputs.to(model.device)
    start = time.perf_counter()
    with torch.no_grad():
        output = model.generate(**inputs, generation_config=config)
    if output.is_cuda:
        torch.cuda.synchronize()
    latency_ms = round((time.perf_counter() - start) * 1000, 1)
    new_tokens = output[:, inputs["input_ids"].shape[1] :].tolist()
    return [
        _row(item, role, tokenizer, tokens, eos_ids, int(mask.sum()), latency_ms)
        for item, tokens, mask in zip(batch, new_tokens, inputs["attention_mask"], strict=True)
    ]


def _row(
    item: dict[str, Any],
    role: str,
    tokenizer: PreTrainedTokenizerBase,
    tokens: list[int],
    eos_ids: set[int],
    prompt_tokens: int,
    latency_ms: float,
) -> dict[str, Any]:
    """One eval row; latency is the wall time of the item's batch."""
    end = next((i for i, t in enumerate(tokens) if t in eos_ids), None)
    kept = tokens if end is None else tokens[:end]
    return {
        "item_id": item["item_id"],
        "category": item["category"],
        "prompt_sha256": prompt_sha256(item["messages"]),
        "role": role,
        "output": tokenizer.decode(kept, skip_special_tokens=True),
        "latency_ms": latency_ms,
        "prompt_tokens": prompt_tokens,
        "output_tokens": len(tokens) if end is None else end + 1,
    }


def _as_set(value: int | list[int] | None) -> set[int]:
    if value is None:
        return set()
    return {value} if isinstance(value, int) else set(value)


def generate_all_roles(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    items: list[dict[str, Any]],
    generation: GenerationSettings,
    incumbent_dir: Path | None,
) -> list[dict[str, Any]]:
    """Candidate (trained adapter), base (adapter disabled) and incumbent, same items."""
    return all_rows(generate_roles(model, tokenizer, items, generation, incumbent_dir, {}))


def all_rows(by_role: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The rows of every role, one role after the other: eval_outputs.jsonl's order."""
    return [row for rows in by_role.values() for row in rows]


def generate_roles(
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    items: list[dict[str, Any]],
    generation: GenerationSettings,
    incumbent_dir: Path | None,
    cached: dict[str, list[dict[str, Any]]],
) -> dict[str, list[dict[str, Any]]]:
    """The rows of each role, in the order candidate, base, incumbent; a role whose rows are
    `cached` is taken from there, not generated."""

    def generate(role: str) -> list[dict[str, Any]]:
        return generate_rows(model, tokenizer, items, generation, role, report=True)

    rows = {"candidate": generate("candidate")}
    if "base" in cached:
        rows["base"] = reused_rows("base", cached)
    else:
        with model.disable_adapter():
            rows["base"] = generate("base")
    if incumbent_dir is None:
        return rows
    if "incumbent" in cached:
        rows["incumbent"] = reused_rows("incumbent", cached)
    else:
        model.load_adapter(str(incumbent_dir), adapter_name="incumbent")
        model.set_adapter("incumbent")
        rows["incumbent"] = generate("incumbent")
        model.set_adapter("default")
    return rows


def reused_rows(role: str, cached: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """A cached role's rows, with the progress event that says so (the runner's view shows a
    role that was not generated)."""
    emit_progress(stage="generate", role=role, reused=True, total=len(cached[role]))
    return cached[role]


# -- base and incumbent outputs, generated once -----------------------------------------------
# The base model's and the incumbent's outputs do not depend on the candidate: every candidate
# for the same base and eval items would generate them again for nothing. The run that
# generates them uploads them with its results, content-addressed, to `outputs/<key>.jsonl` in
# the candidates repo (beside the candidates), and every later run with the same key reads them
# back, checks them and reuses them. A key names a model, not a role: the base model at its
# revision, or the base model with the incumbent's adapter files (by sha256).

GENERATION_VERSION = 1
"""Part of every cache key: bump it when a change here alters what a model outputs for the same
inputs (prompt rendering, decoding, the row's fields). A constant rather than this script's
hash, which would drop the cache on every change to training or upload code."""
CACHE_FOLDER = "outputs"
GENERATING_LIBRARIES = ("torch", "transformers", "peft", "bitsandbytes", "tokenizers")
ROW_FIELDS = frozenset(
    {"item_id", "category", "prompt_sha256", "role", "output"}
    | {"latency_ms", "prompt_tokens", "output_tokens"}
)


def canonical_sha256(value: Any) -> str:
    """sha256 of `value` as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def output_keys(
    config: RunConfig, items: list[dict[str, Any]], incumbent_dir: Path | None
) -> dict[str, str]:
    """The cache key of the base role and, when there is an incumbent, of the incumbent role:
    everything their outputs depend on. That is the model, the eval items, the settings that
    shape a batch's tokens, how the base loads (4-bit or not, dtype), the hardware (another
    kernel can pick another greedy token) and the generating code and libraries."""
    training = config.training
    # `quantization` is read only for QLoRA (quantization_config): a LoRA run that states it
    # loads the base model all the same.
    quantized = training.quantization if training.method == "qlora" else None
    inputs = {
        "base_model": to_json(config.base_model),
        "items": canonical_sha256(items),
        "generation": {
            "max_new_tokens": config.generation.max_new_tokens,
            "batch_size": config.generation.batch_size,
        },
        "loading": {
            "method": training.method,
            "quantization": None if quantized is None else to_json(quantized),
            "dtype": str(compute_dtype(training)),
        },
        "device": device_name(),
        "engine": {"generation": GENERATION_VERSION} | generating_library_versions(),
    }
    keys = {"base": canonical_sha256(inputs | {"adapter": None})}
    if incumbent_dir is not None:
        adapter = {name: file_sha256(incumbent_dir / name) for name in ADAPTER_FILES}
        keys["incumbent"] = canonical_sha256(inputs | {"adapter": adapter})
    return keys


def generating_library_versions() -> dict[str, str | None]:
    versions = library_versions()
    return {name: versions[name] for name in GENERATING_LIBRARIES}


def cache_path(key: str) -> str:
    return f"{CACHE_FOLDER}/{key}.jsonl"


def read_cached_outputs(
    output: OutputRef, keys: dict[str, str], items: list[dict[str, Any]]
) -> dict[str, list[dict[str, Any]]]:
    """The rows of each role whose cached file the candidates repo holds and that checks out
    against `items`; a role left out is generated, with a log line that says why. The cache
    only saves time: failing to read it costs a generation, never the run."""
    try:
        present, revision = cached_files(output)
    except Exception as error:  # whatever the Hub answered, generating is the way on
        LOG.warning("cannot read the cached outputs (%s): generating every role", _brief(error))
        return {}
    reused: dict[str, list[dict[str, Any]]] = {}
    for role, key in keys.items():
        path = cache_path(key)
        if path not in present:
            LOG.info("%s outputs: none cached at %s: generating them", role, path)
            continue
        try:
            local = download_file(
                output.repo_id, path, revision=revision, repo_type=output.repo_type
            )
            reused[role] = checked_rows(local, items, role)
        except Exception as error:  # a broken file or a failed download: generate instead
            LOG.warning(
                "%s outputs at %s unusable (%s): generating them again", role, path, _brief(error)
            )
            continue
        LOG.info("%s outputs reused from %s: not generating them", role, path)
    return reused


def cached_files(output: OutputRef) -> tuple[set[str], str | None]:
    """The cached output files in the candidates repo, and the commit they were read at (no
    files and no commit when the repo does not exist yet)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    repo_id, repo_type = output.repo_id, output.repo_type
    try:
        info = with_retries(
            f"read {repo_id}", lambda: HfApi().repo_info(repo_id, repo_type=repo_type)
        )
    except RepositoryNotFoundError:
        return set(), None
    prefix = CACHE_FOLDER + "/"
    names = {s.rfilename for s in info.siblings or [] if s.rfilename.startswith(prefix)}
    return names, str(info.sha)


def checked_rows(path: Path, items: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    """The rows of a cached file as `role`'s rows; ValueError unless every line is an eval row
    and they hold the items' ids in the items' order."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except ValueError:
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(row, dict) or set(row) != ROW_FIELDS:
            raise ValueError(f"line {number} is not an eval row")
        rows.append(row | {"role": role})
    expected = [item["item_id"] for item in items]
    if [row["item_id"] for row in rows] != expected:
        raise ValueError(f"{len(rows)} rows that are not the {len(expected)} eval items in order")
    return rows


def cache_files(
    folder: Path, keys: dict[str, str], rows: dict[str, list[dict[str, Any]]], reused: set[str]
) -> dict[str, Path]:
    """The outputs this run generated for a cached role, written under `folder`: path in the
    repo -> local file, for the upload."""
    files = {}
    for role, key in keys.items():
        if role in reused:
            continue
        local = folder / cache_path(key)
        local.parent.mkdir(parents=True, exist_ok=True)
        write_jsonl(local, rows[role])
        files[cache_path(key)] = local
    return files


# -- metrics, records and upload --------------------------------------------------------------


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def library_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = None
    return versions


def peak_memory() -> dict[str, Any]:
    """Peak GPU memory allocated by torch on a GPU, else the process's peak RSS."""
    if device_type() == "cuda":
        import torch

        return {"kind": "cuda_max_allocated", "bytes": int(torch.cuda.max_memory_allocated())}
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"kind": "rss", "bytes": int(kib) * 1024}


class PeakMemory:
    """Peak memory while the block runs, for the serving limit: CUDA's peak allocation since
    the block started, or on a CPU the highest RSS sampled every 20 ms (the process's own
    peak RSS also counts the training before)."""

    def __enter__(self) -> PeakMemory:
        self.peak: dict[str, Any] = {}
        self._stop = threading.Event()
        self._rss = _rss_bytes()
        if device_type() == "cuda":
            import torch

            torch.cuda.reset_peak_memory_stats()
        else:
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self._rss = max(self._rss, _rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if device_type() == "cuda":
            import torch

            self.peak = {
                "kind": "cuda_max_allocated",
                "bytes": int(torch.cuda.max_memory_allocated()),
            }
        else:
            self._sampler.join()
            self.peak = {"kind": "rss_sampled", "bytes": max(self._rss, _rss_bytes())}


def _rss_bytes() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def device_name() -> str:
    if device_type() == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    return f"cpu ({platform.machine()}, {os.cpu_count()} cores)"


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as stream:
        for row in rows:
            stream.write(json.dumps(row, ensure_ascii=False) + "\n")


def upload_files(
    output: OutputRef,
    files: dict[str, Path],
    message: str,
    *,
    beside: dict[str, Path] | None = None,
) -> str:
    """All `files` (name in the folder -> local path) in one commit, each request retried, with
    the files `beside` (path in the repo -> local path: the cached outputs beside the
    candidates); returns the commit id."""
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    repo_id, repo_type = output.repo_id, output.repo_type
    with_retries(
        f"create {repo_id}",
        lambda: api.create_repo(repo_id, repo_type=repo_type, exist_ok=True),
    )
    prefix = output.path_in_repo.strip("/")
    operations = [
        CommitOperationAdd(path_in_repo=f"{prefix}/{name}", path_or_fileobj=str(path))
        for name, path in sorted(files.items())
    ]
    operations += [
        CommitOperationAdd(path_in_repo=path_in_repo, path_or_fileobj=str(path))
        for path_in_repo, path in sorted((beside or {}).items())
    ]
    info = with_retries(
        f"commit to {repo_id}",
        lambda: api.create_commit(
            repo_id, operations=operations, commit_message=message, repo_type=repo_type
        ),
        transfer=True,
    )
    return info.oid


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def adapter_hashes(adapter_dir: Path) -> dict[str, str]:
    """sha256 of each adapter file, so the runner can verify what it downloads later."""
    return {
        path.name: file_sha256(path)
        for path in sorted(adapter_dir.iterdir())
        if path.is_file() and path.name not in RECORD_FILES
    }


# -- the trained adapter, kept ----------------------------------------------------------------
# Training is the expensive part of a run: once it is done, the adapter goes to the candidate
# location with run.json status "trained" (not a candidate yet: the eval outputs are missing),
# and stays in the output folder. A later run of the same run id that finds it, here or on the
# Hub, skips training and only generates and uploads the rest.

KEPT_DIR = "trained"
RECORD_FILES = ("run.json", "metrics.json")
_PLAIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Kept:
    """A trained adapter of this run id: a folder with the adapter files, run.json (status
    "trained", with their sha256) and metrics.json (with the training metrics)."""

    folder: Path
    record: RunResult
    metrics: dict[str, Any]
    source: str
    """Where it was found: "this run", "local" (an earlier attempt's output folder) or "hub"."""

    @property
    def hashes(self) -> dict[str, str]:
        return dict(self.record.sha256)

    def adapter_files(self) -> dict[str, Path]:
        return {name: self.folder / name for name in sorted(self.hashes)}

    def files(self) -> dict[str, Path]:
        return self.adapter_files() | {name: self.folder / name for name in RECORD_FILES}


def read_kept(folder: Path, run_id: str, source: str) -> Kept | None:
    """The adapter kept in `folder` for `run_id`, or None when there is none or its files do
    not match their hashes (then the run trains again)."""
    record = _read_trained_record(folder / "run.json", run_id)
    metrics = _read_json_object(folder / "metrics.json")
    if record is None or metrics is None:
        return None
    expected = record.sha256
    found = {name: file_sha256(folder / name) for name in expected if (folder / name).is_file()}
    if found != expected:
        LOG.warning("the trained adapter in %s does not match its run.json: training again", folder)
        return None
    return Kept(folder, record, metrics, source)


def _read_trained_record(path: Path, run_id: str) -> RunResult | None:
    """The run.json at `path` when it records a trained adapter of `run_id`, else None."""
    try:
        record = parse(RunResult, _read_json_object(path))
    except ContractError:
        return None
    trained = record.status == "trained" and record.run_id == run_id and bool(record.sha256)
    # Names become local paths: plain file names only, never run.json or metrics.json.
    plain = all(_PLAIN_NAME.fullmatch(name) and name not in RECORD_FILES for name in record.sha256)
    return record if trained and plain else None


def _read_json_object(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def find_kept(state: RunState, config: RunConfig) -> Kept | None:
    """This run id's adapter from an earlier attempt: in the output folder (a local retry),
    else at the candidate location (a Space restarts with nothing local)."""
    folder = state.out_dir / KEPT_DIR
    return read_kept(folder, config.run_id, "local") or fetch_kept(state, config, folder)


def fetch_kept(state: RunState, config: RunConfig, folder: Path) -> Kept | None:
    """The kept adapter at the candidate location, copied into `folder`, or None. Notes in
    `state.hub_trained` that the Hub holds one as soon as its run.json says so."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError

    output, run_id = config.output, config.run_id
    repo_id, repo_type = output.repo_id, output.repo_type
    prefix = output.path_in_repo.strip("/") + "/"
    try:
        info = with_retries(
            f"read {repo_id}", lambda: HfApi().repo_info(repo_id, repo_type=repo_type)
        )
    except RepositoryNotFoundError:
        return None
    present = {
        sibling.rfilename.removeprefix(prefix)
        for sibling in info.siblings or []
        if sibling.rfilename.startswith(prefix)
    }

    def fetch(name: str) -> Path:
        return download_file(repo_id, prefix + name, revision=str(info.sha), repo_type=repo_type)

    if "run.json" not in present:
        return None
    record = _read_trained_record(fetch("run.json"), run_id)
    if record is None:
        return None
    names = [*sorted(record.sha256), *RECORD_FILES]
    if not set(names) <= present:
        return None
    state.hub_trained = True
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name in names:
        shutil.copyfile(fetch(name), folder / name)
    return read_kept(folder, run_id, "hub")


def keep_on_hub(config: RunConfig, kept: Kept, metrics: dict[str, Any]) -> None:
    """Upload the trained adapter now, before generating. Not fatal: when it fails, the
    adapter stays in the output folder and goes up again with the results."""
    message = f"Trained adapter of run {config.run_id} ({config.adapter}): eval to follow"
    try:
        with stage("keep", metrics):
            upload_files(config.output, kept.files(), message)
    except StageFailed as failure:
        LOG.warning(
            "could not keep the trained adapter on the Hub yet (%s); it stays in %s",
            redact(str(failure)),
            kept.folder,
        )


# -- the run ----------------------------------------------------------------------------------


@dataclass
class RunState:
    """One attempt at a run: its config, output folder, metrics so far and trained adapter."""

    given: dict[str, Any]
    """The run config's JSON object, as given."""
    out_dir: Path
    metrics: dict[str, Any]
    started: str
    processes: PartialState
    retrain: bool = False
    config: RunConfig | None = None
    """`given`, once the config stage has parsed it."""
    kept: Kept | None = None
    hub_trained: bool = False
    """The candidate location holds a trained adapter of this run id (seen by `fetch_kept`)."""
    reused: dict[str, str] = field(default_factory=dict)
    """Role -> cache key of the eval outputs read from the cache (run.json's `reused`)."""
    cache_files: dict[str, Path] = field(default_factory=dict)
    """The base and incumbent outputs this run generated: path in the repo -> local file."""

    @property
    def run_id(self) -> str | None:
        return _given_text(self.given, "run_id")

    @property
    def adapter(self) -> str | None:
        return _given_text(self.given, "adapter")


def _given_text(given: dict[str, Any], key: str) -> str | None:
    """A text field of a run config that may not have parsed (for the records of its failure)."""
    value = given.get(key)
    return value if isinstance(value, str) else None


def train_and_generate(state: RunState, config: RunConfig) -> None:
    """Every stage up to the files in the output folder; raises StageFailed. A kept adapter of
    this run id replaces the training. Every process trains; the main one alone generates."""
    metrics, training, processes = state.metrics, config.training, state.processes
    if not state.retrain:  # first: a failure from here on keeps what it finds
        with stage("resume", metrics):
            state.kept = resume(state, config)
    # The main process fills the cache first, so no two processes write the same file.
    with stage("download", metrics), processes.local_main_process_first():
        inputs = download_inputs(config)
        train_records = read_jsonl(inputs.train_file)
        items = eval_items(read_jsonl(inputs.eval_file), config.generation.max_items)
    if state.kept is not None and not processes.is_main_process:
        return  # nothing to train: generating is the main process's
    with stage("load", metrics):
        tokenizer = load_tokenizer(inputs.model_dir)
        if state.kept is None:
            base = load_base_model(inputs.model_dir, training, config.parallel)
            model = attach_lora(base, training, config.parallel)
        else:
            model = generation_model(inputs.model_dir, training, state.kept.folder)
    if state.kept is None:
        state.kept = train_and_keep(state, config, model, tokenizer, train_records)
        if not processes.is_main_process:
            return  # trained: generating is the main process's
        if _is_sharded(config.parallel):
            # Its weights are now shards, spread over processes that have ended: generate
            # with the saved adapter on a whole base model in this process.
            with stage("reload", metrics):
                model = generation_model(inputs.model_dir, training, state.kept.folder)
    else:
        LOG.info(
            "run %s was trained before (%s): training skipped", config.run_id, state.kept.source
        )
        metrics["training"] = state.kept.metrics.get("training")
        metrics["resumed"] = {"from": state.kept.source}
    with stage("generate", metrics):
        keys = output_keys(config, items, inputs.incumbent_dir)
        cached = read_cached_outputs(config.output, keys, items)
        with PeakMemory() as memory:
            by_role = generate_roles(
                model, tokenizer, items, config.generation, inputs.incumbent_dir, cached
            )
        rows = all_rows(by_role)
        write_jsonl(state.out_dir / "eval_outputs.jsonl", rows)
        state.cache_files = cache_files(state.out_dir, keys, by_role, set(cached))
    state.reused = {role: keys[role] for role in cached}
    metrics["generation"] = {
        "items": len(items),
        "rows": len(rows),
        "generated": [role for role in by_role if role not in cached],
        "cache_keys": keys,
        "peak_memory": memory.peak,
    }


def generation_model(model_dir: Path, training: TrainingSettings, adapter_dir: Path) -> PeftModel:
    """The base model with the saved adapter, whole in this one process, for generating."""
    from peft import PeftModel

    return PeftModel.from_pretrained(load_base_model(model_dir, training), str(adapter_dir))


def resume(state: RunState, config: RunConfig) -> Kept | None:
    """`find_kept` on the local main process; the others then read what it left in the output
    folder, so every process agrees on whether the run trains."""
    processes = state.processes
    with processes.local_main_process_first():
        if processes.is_local_main_process:
            return find_kept(state, config)
        return read_kept(state.out_dir / KEPT_DIR, config.run_id, "local")


def train_and_keep(
    state: RunState,
    config: RunConfig,
    model: PeftModel,
    tokenizer: PreTrainedTokenizerBase,
    records: list[dict[str, Any]],
) -> Kept | None:
    """Train, save the adapter with its "trained" record in the output folder, and keep it on
    the Hub. Every process trains; only the main one keeps (the others get None)."""
    metrics = state.metrics
    saved = state.out_dir / "trainer" / "adapter"
    with stage("train", metrics):
        metrics["training"] = train_adapter(
            model, tokenizer, records, config.training, state.out_dir / "trainer", save_to=saved
        )
    if not state.processes.is_main_process:
        return None
    folder = state.out_dir / KEPT_DIR
    with stage("save", metrics):
        shutil.rmtree(folder, ignore_errors=True)
        save_adapter(saved, folder, config.base_model)
        record = run_record(state, "trained", None, adapter_hashes(folder))
        write_json(folder / "run.json", to_json(record))
        write_json(folder / "metrics.json", metrics)
    kept = Kept(folder, record, dict(metrics), "this run")
    keep_on_hub(config, kept, metrics)
    return kept


def run(given: dict[str, Any], out_dir: Path, *, retrain: bool = False) -> int:
    """The whole run of the run config `given` (its JSON object); uploads run.json in every
    case. Returns the exit code."""
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics: dict[str, Any] = {"durations_s": {}, "device": device_name()}
    metrics["versions"] = library_versions()
    processes = process_state(_policy["active"].transfer_deadline)
    record_before_stopping(processes)
    state = RunState(given, out_dir, metrics, now_iso(), processes, retrain)
    error: RunError | None = None
    try:
        with stage("config", metrics):
            state.config = parse_run_config(given)
        train_and_generate(state, state.config)
    except StageFailed as failure:
        LOG.error("run failed: %s", redact(str(failure)))
        error = error_record(failure)
    if not processes.is_main_process:
        # Exit at once, never at a barrier: a failure here ends the launch (accelerate stops
        # every process), and the main process records the run when it still can.
        return 0 if error is None else 1
    metrics["peak_memory"] = peak_memory()
    return finish(state, error)


def finish(state: RunState, error: RunError | None) -> int:
    """Write metrics.json and run.json and upload them with the adapter and eval outputs when
    the run succeeded. After a failure, only the records go up, with the kept adapter when
    there is one (status "trained": the next attempt skips training)."""
    if error is None and state.kept is not None and state.config is not None:
        try:
            with stage("upload", state.metrics):
                _write_records(state, "succeeded", None)
                upload_files(
                    state.config.output,
                    _result_files(state, state.kept),
                    _message(state, None),
                    beside=state.cache_files,
                )
            return 0
        except StageFailed as failure:
            LOG.error("upload failed: %s", redact(str(failure)))
            error = error_record(failure)
    assert error is not None, "a run without a trained adapter has failed"
    _write_records(state, "trained" if state.kept else "failed", error)
    if state.kept is None and (state.hub_trained or error.stage == "resume"):
        # The Hub may hold a trained adapter this attempt could not fetch: "failed" over its
        # run.json would have it cleared. Leave it for the next attempt.
        LOG.error("the candidate location is left as it was; run.json stays in %s", state.out_dir)
    else:
        _upload_failure(state, error)
    return 1


def run_record(
    state: RunState, status: str, error: RunError | None, hashes: dict[str, str]
) -> RunResult:
    return RunResult(
        run_id=state.run_id,
        adapter=state.adapter,
        status=status,
        error=error,
        started_at=state.started,
        finished_at=now_iso(),
        config=state.config,
        sha256=hashes,
        processes=state.processes.num_processes,
        reused=state.reused,
    )


def _write_records(state: RunState, status: str, error: RunError | None) -> None:
    hashes = state.kept.hashes if state.kept else {}
    write_json(state.out_dir / "metrics.json", state.metrics)
    write_json(state.out_dir / "run.json", to_json(run_record(state, status, error, hashes)))


def _result_files(state: RunState, kept: Kept) -> dict[str, Path]:
    files = kept.adapter_files()
    for name in ("eval_outputs.jsonl", *RECORD_FILES):
        files[name] = state.out_dir / name
    return files


def _upload_failure(state: RunState, error: RunError) -> None:
    output = _failure_output(state)
    if output is None:
        LOG.error("no usable `output` in the config: run.json stays in %s", state.out_dir)
        return
    files = {name: state.out_dir / name for name in RECORD_FILES}
    if state.kept is not None:
        files = state.kept.adapter_files() | files
    try:
        upload_files(output, files, _message(state, error))
    except Exception as upload_error:
        LOG.error("could not upload run.json: %s", redact(str(upload_error)))
        if state.kept is not None:
            LOG.error("the trained adapter stays in %s for the next attempt", state.kept.folder)


def _failure_output(state: RunState) -> OutputRef | None:
    """Where the records of a failure go: the config's output, even when the rest of the
    config did not parse."""
    if state.config is not None:
        return state.config.output
    try:
        return parse(OutputRef, state.given.get("output"))
    except ContractError:
        return None


def _message(state: RunState, error: RunError | None) -> str:
    outcome = f"failed in {error.stage}" if error else "succeeded"
    return f"Candidate {state.run_id} of {state.adapter}: {outcome}"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="run config JSON file (default: $RUN_CONFIG)")
    parser.add_argument(
        "--output-dir",
        help="where local files go (default: $RUN_OUTPUT_DIR, else a folder in the temp dir)",
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train even when a trained adapter of this run id is kept (locally or on the Hub)",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s train.py %(levelname)s %(message)s", force=True
    )
    args = parse_args(argv)
    try:
        config = read_config(args.config)
    except (OSError, ValueError) as error:
        LOG.error("cannot read the run config: %s", redact(str(error)))
        return 2
    if not isinstance(config, dict):
        LOG.error("the run config must be a JSON object")
        return 2
    default = Path(tempfile.gettempdir()) / f"run-{config.get('run_id', 'unknown')}"
    out_dir = Path(args.output_dir or os.environ.get("RUN_OUTPUT_DIR") or default)
    try:
        policy = RetryPolicy.from_env()
    except ValueError as error:
        LOG.error("%s", error)
        return 2
    install_hub_session(policy)
    return run(config, out_dir, retrain=args.retrain)


if __name__ == "__main__":
    sys.exit(main())
