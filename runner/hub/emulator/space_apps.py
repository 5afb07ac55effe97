"""How the emulator runs a docker Space's app on this machine: the README settings a Space
container honours (`app_port`, `startup_duration_timeout`), the environment it gets, the
shim that stands for Docker's port mapping, and the process helpers."""

from __future__ import annotations

import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.hub.emulator.space_logs import RunLog

# The environment an app inherits from the emulator's: enough to run Python and reach a GPU.
PASSTHROUGH_ENV = (
    "PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "TMPDIR", "LANG", "LC_ALL",
    "SSL_CERT_FILE", "VIRTUAL_ENV",
)  # fmt: skip
DEFAULT_APP_PORT = 7860
DEFAULT_STARTUP_TIMEOUT = "30m"
_DURATION = re.compile(r"^\s*(\d+)\s*([smhd])\s*$")
_SECONDS_PER = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Docker maps a Space container's app_port to the outside world. Apps here share this
# machine's ports, so each app (always a Python process here) is loaded with this
# `sitecustomize` through PYTHONPATH, which moves its bind() to the app_port onto a free local
# port: an app listening on any other port is never reached, as on the Hub. The mapping is
# popped from the environment, so the app's own children (train.py) bind as they ask.
PORT_MAP_SHIM = """\
import os
import socket

_mapping = os.environ.pop("HUB_EMULATOR_PORT_MAP", "")
if _mapping:
    _app_port, _host_port = (int(part) for part in _mapping.split(":"))
    _bind = socket.socket.bind

    def _mapped_bind(self, address):
        if isinstance(address, tuple) and len(address) >= 2 and address[1] == _app_port:
            address = (address[0], _host_port, *address[2:])
        return _bind(self, address)

    socket.socket.bind = _mapped_bind
"""


class AppConfigError(ValueError):
    """The README front matter's app settings cannot be used: the Space ends in CONFIG_ERROR."""


@dataclass(frozen=True)
class AppConfig:
    """How the Hub reaches a docker Space's app, from its README front matter."""

    app_port: int
    startup_timeout: str
    """As the README wrote it, for messages."""
    startup_s: float

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> AppConfig:
        port = card.get("app_port", DEFAULT_APP_PORT)
        # bool is an int to Python, never a port to the Hub.
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise AppConfigError(
                f"Configuration error: README.md front matter `app_port` must be a port "
                f"number from 1 to 65535 (found app_port: {port!r})"
            )
        timeout = card.get("startup_duration_timeout", DEFAULT_STARTUP_TIMEOUT)
        match = _DURATION.match(timeout) if isinstance(timeout, str) else None
        if match is None or int(match.group(1)) == 0:
            raise AppConfigError(
                "Configuration error: README.md front matter `startup_duration_timeout` must "
                f"be a duration such as 30m or 1h (found {timeout!r})"
            )
        seconds = int(match.group(1)) * _SECONDS_PER[match.group(2)]
        return cls(port, timeout.strip(), float(seconds))


def inherited_environment() -> dict[str, str]:
    return {k: os.environ[k] for k in PASSTHROUGH_ENV if k in os.environ}


def container_environment(folder: Path, endpoint: str) -> dict[str, str]:
    """What a process run for a container (a Space's app, a job) gets over its own settings:
    a HOME of its own and an empty /tmp under `folder`, as a fresh container has (the host's
    /tmp would hand what one run left there to the next), and the emulator as its Hub."""
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    scratch = folder / "tmp"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir(parents=True)
    return {
        "HOME": str(home),
        "TMPDIR": str(scratch),
        "HF_HOME": str(home / ".cache" / "huggingface"),
        "PYTHONUNBUFFERED": "1",
        "HF_ENDPOINT": endpoint,
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",  # no Xet storage here: the client takes LFS
    }


def start_process(argv: list[str], cwd: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A container's process: text output (stderr merged) to read line by line, no stdin, and
    its own process group, so stopping it stops its children too."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,
    )


def pump_run_log(process: subprocess.Popen[str], logs: RunLog) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        logs.add("run", line.rstrip("\n"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers_http(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=0.5)
    try:
        connection.request("GET", "/")
        connection.getresponse().read()
        return True
    except (OSError, http.client.HTTPException):
        return False
    finally:
        connection.close()


def terminate(process: subprocess.Popen[str], grace: float = 0.0) -> None:
    """Stop an app and its process group (which the emulator created): TERM, then KILL."""
    if grace:
        time.sleep(grace)
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=3)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        process.wait(timeout=3)
