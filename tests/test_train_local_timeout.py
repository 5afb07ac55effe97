"""`runner train --backend local --timeout-minutes N`: the local backend keeps the limits the
Space backend keeps. A run that reports no progress is stopped at the timeout, its process
ended, and the message says which limit stopped it and what was kept."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import ADAPTER, RunCli

# Stands in for train.py: notes its process id next to its config, then says nothing for
# longer than any test waits (a hung download, a wedged data loader).
SILENT_TRAIN = """\
import os, pathlib, sys, time
config = pathlib.Path(sys.argv[sys.argv.index("--config") + 1])
config.with_name("train.pid").write_text(str(os.getpid()))
time.sleep(45)
"""


def still_running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_silent_local_run_is_stopped_at_timeout_minutes(
    tiny_repo: Path, tmp_path: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tiny_repo  # its base model is on the Hub, as train checks before it starts
    script = tmp_path / "silent_train.py"
    script.write_text(SILENT_TRAIN, encoding="utf-8")
    monkeypatch.setattr("runner.backends.local.TRAIN_SCRIPT", script)

    code, _, err = run_cli(
        "train", f"adapters/{ADAPTER}", "--backend", "local", "--timeout-minutes", "0.1",
        "--repo", root,
    )  # fmt: skip

    assert code == 1, err
    said = " ".join(err.split())
    assert "past the 0.1 min timeout (--timeout-minutes)" in said, said
    assert "no progress" in said
    assert "kept: nothing" in said
    assert "Traceback" not in err
    pid = int(next((root / ".runs").glob("*/train.pid")).read_text())
    assert not still_running(pid)
