"""`runner smoke` for a base model the Hub at HF_ENDPOINT does not hold (ainative-v1's
Llama-3.2 on the offline emulator): exit 2 with what is missing, where, which files a smoke
needs and every way to provide them; `runner hub seed --from-folder` serves a local folder at
the revision the spec pins; `--stand-in-tokenizer` smokes with SmolLM2's tokenizer and says
loudly what was not checked."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from runner.hub.emulator import EmulatorServer
from runner.hub.seed import SMOLLM2_REPO_ID, SMOLLM2_REVISION, seed_emulator
from runner.hub.tiny_llama import TINY_REPO_ID
from runner.smoke.tokenizer import OPTIONAL_FILES, VOCAB_FILES
from tests.conftest import REPO_ROOT, TOKEN, RunCli, edit
from tests.test_smoke import empty_hf_cache, smollm2_tokenizer  # noqa: F401  (fixtures)

LLAMA = "unsloth/Llama-3.2-1B-Instruct"
LLAMA_REVISION = "5a8abab4a5d6f164389b1079fb721cfab8d7126c"
KWANZAA_REVISION = "12fd25f77366fa6b3b4b768ec3050bf629380bac"
HOUSE_BASE = "acme/house-base"  # a base only this test's folder has
HOUSE_REVISION = "0123456789abcdef0123456789abcdef01234567"
TOKENIZER_FILES = (*VOCAB_FILES, *OPTIONAL_FILES)


def copy_adapter(root: Path, adapter: str, dataset: str) -> Path:
    for part in ("policies", "schemas", f"adapters/{adapter}", f"datasets/{dataset}"):
        shutil.copytree(REPO_ROOT / part, root / part)
    return root


def set_base(root: Path, repo_id: str, revision: str) -> None:
    spec = root / "adapters" / "kwanzaa-mini-v1" / "adapter.yaml"
    edit(spec, f"id: {SMOLLM2_REPO_ID}", f"id: {repo_id}")
    edit(spec, f"revision: {KWANZAA_REVISION}", f"revision: {revision}")


def tokenizer_only(model: Path, dest: Path) -> Path:
    """What `hf download ID --local-dir DEST` would hold if only the tokenizer was fetched."""
    dest.mkdir()
    for name in TOKENIZER_FILES:
        if (model / name).is_file():
            shutil.copyfile(model / name, dest / name)
    return dest


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def ainative_repo(tmp_path: Path) -> Path:
    return copy_adapter(tmp_path / "repo", "ainative-v1", "ainative")


@pytest.fixture
def kwanzaa_repo(tmp_path: Path) -> Path:
    return copy_adapter(tmp_path / "repo", "kwanzaa-mini-v1", "kwanzaa")


def test_smoke_of_a_base_the_emulator_lacks_says_what_is_missing_and_how_to_provide_it(
    env: Any, ainative_repo: Path, run_cli: RunCli
) -> None:
    code, out, err = run_cli("smoke", "ainative-v1", "--steps", "1", "--repo", ainative_repo)
    said = one_line(err)
    assert code == 2, out + err
    assert f"{LLAMA}@{LLAMA_REVISION}" in said
    assert f"the Hub at {env.endpoint} has no repo {LLAMA}" in said
    assert "tokenizer.json or tokenizer.model, with tokenizer_config.json" in said
    assert "never config.json or the weights" in said
    assert "offline, the runner cannot tell which" in said
    seed = f"runner hub seed --from-folder FOLDER --repo-id {LLAMA} --revision {LLAMA_REVISION}"
    assert seed in said
    assert "unset HF_ENDPOINT" in said
    assert "runner smoke ADAPTER --stand-in-tokenizer" in said
    assert "Traceback" not in out + err


def test_smoke_of_a_revision_the_emulator_lacks_names_the_commit_it_serves(
    env: Any, model_cache: Path, kwanzaa_repo: Path, run_cli: RunCli
) -> None:
    served = seed_emulator(env, model_cache, [TINY_REPO_ID])[TINY_REPO_ID]
    set_base(kwanzaa_repo, TINY_REPO_ID, HOUSE_REVISION)

    code, out, err = run_cli("smoke", "kwanzaa-mini-v1", "--steps", "1", "--repo", kwanzaa_repo)
    said = one_line(err)
    assert code == 2, out + err
    assert f"has {TINY_REPO_ID} (main at {served}) but not revision {HOUSE_REVISION}" in said
    assert f"runner hub seed --model {TINY_REPO_ID}" in said
    assert "Traceback" not in out + err


def test_a_base_seeded_from_a_local_folder_at_the_pinned_revision_smokes(
    tiny_folder: Path,
    kwanzaa_repo: Path,
    tmp_path: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder = tokenizer_only(tiny_folder, tmp_path / "house-base")
    data = tmp_path / "hub-data"
    seed = ("hub", "seed", "--data-dir", data, "--from-folder", folder)
    target = ("--repo-id", HOUSE_BASE, "--revision", HOUSE_REVISION)
    for _ in range(2):  # the second seeding finds the commit there and adds none
        code, out, err = run_cli(*seed, *target)
        assert code == 0, out + err
        assert f"seeded {HOUSE_BASE} @ {HOUSE_REVISION}" in out
    set_base(kwanzaa_repo, HOUSE_BASE, HOUSE_REVISION)

    with EmulatorServer(data) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        monkeypatch.setenv("HF_TOKEN", TOKEN)
        code, out, err = run_cli("smoke", "kwanzaa-mini-v1", "--steps", "1", "--repo", kwanzaa_repo)
    assert code == 0, out + err
    assert f"{HOUSE_BASE}@{HOUSE_REVISION} tokenizer" in out
    assert "smoke passed" in out


def test_seeding_a_folder_that_holds_a_symlink_is_refused_by_name(
    tmp_path: Path, run_cli: RunCli
) -> None:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    (folder / "tokenizer.json").symlink_to("/etc/hostname")
    data = tmp_path / "hub-data"

    code, out, err = run_cli(
        "hub", "seed", "--data-dir", data, "--from-folder", folder, "--repo-id", HOUSE_BASE
    )
    said = one_line(err)
    assert code == 2, out + err
    assert f"{folder}/tokenizer.json: a symbolic link" in said
    assert "cp -rL" in said
    assert "Traceback" not in out + err


def test_stand_in_tokenizer_smokes_a_base_the_emulator_lacks_and_says_what_was_not_checked(
    env: Any,
    smollm2_tokenizer: dict[str, bytes],  # noqa: F811  (the fixture imported above)
    ainative_repo: Path,
    run_cli: RunCli,
) -> None:
    smoke = ("smoke", "ainative-v1", "--steps", "1", "--stand-in-tokenizer")
    code, out, err = run_cli(*smoke, "--repo", ainative_repo)
    assert code == 2, out + err  # the stand-in itself must be there: said how to seed it
    assert f"runner hub seed --model {SMOLLM2_REPO_ID}" in one_line(err)

    env.seed(SMOLLM2_REPO_ID, smollm2_tokenizer, message="tokenizer", commit_id=SMOLLM2_REVISION)
    code, out, err = run_cli(*smoke, "--repo", ainative_repo)
    said = one_line(out)
    assert code == 0, out + err
    stand_in = f"{SMOLLM2_REPO_ID}@{SMOLLM2_REVISION}"
    assert f"{stand_in} (standing in for {LLAMA}@{LLAMA_REVISION}) tokenizer" in said
    assert "render with the stand-in's template" in said
    assert "smoke passed with a stand-in tokenizer" in said
    assert f"NOT CHECKED: the base model's own tokenizer ({LLAMA}@{LLAMA_REVISION}" in said
