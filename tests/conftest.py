from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from runner.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURE_REPO = Path(__file__).resolve().parent / "fixtures" / "repo"


@pytest.fixture
def demo_repo(tmp_path: Path) -> Path:
    """A copy of a tiny, valid adapters repository with one adapter: `adapters/demo-v1`."""
    root = tmp_path / "repo"
    shutil.copytree(FIXTURE_REPO, root)
    shutil.copytree(REPO_ROOT / "schemas", root / "schemas")
    shutil.copytree(REPO_ROOT / "policies", root / "policies")
    return root


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


RunCli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Run `runner ARGS...` in-process; returns (exit code, stdout, stderr)."""

    def run(*args: str | Path) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return run


@pytest.fixture
def hub(tmp_path: Path):
    """A local Hub emulator on a free port, state under this test's tmp_path."""
    from runner.hub.emulator import EmulatorServer

    with EmulatorServer(tmp_path / "hub-data") as server:
        yield server


@pytest.fixture(scope="session")
def model_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built base models kept in the pytest cache, so the SmolLM2 conversion runs once."""
    cache = getattr(request.config, "cache", None)  # None with -p no:cacheprovider
    if cache is None:
        return tmp_path_factory.mktemp("hub-seed-models")
    return Path(cache.mkdir("hub-seed-models"))


@pytest.fixture(scope="session")
def tiny_folder(model_cache: Path) -> Path:
    """The tiny random Llama with its locally trained tokenizer."""
    from runner.hub.seed import build_tiny_llama

    return build_tiny_llama(model_cache)
