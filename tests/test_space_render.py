"""The rendered training Space: exactly five files, a pinned Dockerfile, nothing a policy
forbids; and its app.py, run by the emulator, trains once and pauses its Space."""

from __future__ import annotations

import time

import pytest

from runner.engines.trl import TRL
from runner.policy.loading import load_policies
from runner.policy.space import check_space
from runner.space.render import render_space
from runner.workspace import Workspace
from tests.conftest import REPO_ROOT

WHERE = "space:ainative/adapter-trainer"


@pytest.fixture(scope="module")
def policies():
    return load_policies(Workspace(REPO_ROOT))


def findings(files: dict[str, str], policies) -> list[tuple[str, int | None, str]]:
    found = check_space(files, policies.space, policies.text, where=WHERE)
    return [(f.path.removeprefix(WHERE + "/"), f.line, f.rule_id) for f in found]


def test_the_rendered_space_is_exactly_five_files_and_passes_its_policy(policies):
    files = render_space("kwanzaa-mini-v1", TRL.space_app)
    assert sorted(files) == [".gitattributes", "Dockerfile", "README.md", "app.py", "train.py"]
    assert files["README.md"].startswith("---\ntitle: trainer for kwanzaa-mini-v1\nsdk: docker\n")
    assert "app_port: 7860" in files["README.md"]
    assert findings(files, policies) == []


def test_every_pip_install_in_the_dockerfile_is_pinned():
    dockerfile = render_space("kwanzaa-mini-v1", TRL.space_app)["Dockerfile"]
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert len(installs) == 2
    assert "--index-url https://download.pytorch.org/whl/" in installs[0]
    assert all(
        "==" in word
        for line in installs
        for word in line.split()[4:]
        if not word.startswith(("-", "https://"))
    )


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda f: f.update({"requirements.txt": "torch\n"}),
            ("requirements.txt", None, "space.file-set"),
        ),
        (lambda f: f.pop("app.py"), ("app.py", None, "space.file-set")),
        (
            lambda f: f.update(
                Dockerfile=f["Dockerfile"].replace(
                    "FROM python:3.11.11-slim-bookworm", "FROM python:latest"
                )
            ),
            ("Dockerfile", 1, "space.dockerfile"),
        ),
        (
            lambda f: f.update(Dockerfile=f["Dockerfile"].replace("peft==0.21.2", "peft")),
            ("Dockerfile", 4, "space.unpinned"),
        ),
        (
            lambda f: f.update(
                Dockerfile=f["Dockerfile"]
                + "RUN huggingface-cli download HuggingFaceTB/SmolLM2-135M-Instruct\n"
            ),
            ("Dockerfile", 9, "space.dockerfile"),
        ),
        (
            lambda f: f.update({"app.py": f["app.py"] + "\n# Generated with Claude Code\n"}),
            ("app.py", None, "attribution.tool-signature"),
        ),
    ],
    ids=[
        "stray requirements.txt",
        "missing app.py",
        ":latest",
        "unpinned",
        "model at build",
        "attribution",
    ],
)
def test_a_render_that_breaks_the_policy_is_caught(policies, change, expected):
    files = render_space("kwanzaa-mini-v1", TRL.space_app)
    change(files)
    found = findings(files, policies)
    assert [(p, line if expected[1] else None, rule) for p, line, rule in found] == [expected]


def test_a_token_literal_in_a_space_file_is_caught_and_redacted(policies):
    files = render_space("kwanzaa-mini-v1", TRL.space_app)
    token = "hf_" + "Ab9" * 12
    files["app.py"] += f'\nTOKEN = "{token}"\n'
    found = check_space(files, policies.space, policies.text, where=WHERE)
    assert [f.rule_id for f in found] == ["secrets.hf-token"]
    assert token not in str(found[0])


STAND_IN_TRAINING = """
import os
from huggingface_hub import HfApi
HfApi(token=os.environ["HF_TOKEN"]).upload_file(
    path_or_fileobj=os.environ["RUN_CONFIG"].encode(), path_in_repo="run.json",
    repo_id="ainative/space-smoke", repo_type="model")
"""


def test_the_rendered_app_trains_once_on_boot_then_pauses_its_space(hub):
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi(endpoint=hub.endpoint, token="hf_" + "x1" * 17)
    api.create_repo("ainative/space-smoke", exist_ok=True)
    space = "ainative/adapter-trainer"
    api.create_repo(space, repo_type="space", space_sdk="docker", exist_ok=True)
    files = render_space("kwanzaa-mini-v1", TRL.space_app) | {"train.py": STAND_IN_TRAINING}
    # One commit, as the runner syncs: a commit per file builds a half-written app in between.
    api.create_commit(
        space,
        [CommitOperationAdd(name, content.encode()) for name, content in files.items()],
        commit_message="Sync the training Space",
        repo_type="space",
    )
    api.add_space_secret(space, "HF_TOKEN", "hf_" + "x1" * 17)
    api.add_space_variable(space, "RUN_CONFIG", '{"run_id": "0123456789abcdef"}')
    api.restart_space(space)

    deadline = time.monotonic() + 60
    while (stage := api.get_space_runtime(space).stage) != "PAUSED":
        assert stage not in ("RUNTIME_ERROR", "BUILD_ERROR", "CONFIG_ERROR"), stage
        assert time.monotonic() < deadline, f"still {stage} after 60 s"
        time.sleep(0.5)
    info = api.model_info("ainative/space-smoke")
    assert "run.json" in [sibling.rfilename for sibling in info.siblings]
