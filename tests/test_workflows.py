"""The GitHub workflows under .github/workflows: valid against GitHub's schema, clean under
zizmor, calling only runner verbs that exist with arguments the CLI accepts, and safe for
pull requests from forks (no secret, no environment, no write token reaches their code)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
import typer
import yaml
from typer.core import TyperGroup
from typer.main import get_command

from runner.cli import app

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS_DIR = ROOT / ".github" / "workflows"
WORKFLOW_FILES = sorted(WORKFLOWS_DIR.glob("*.yml"))
BIN = Path(sys.executable).parent
RUNNER = ".venv/bin/runner"
SAME_REPO = "github.event.pull_request.head.repo.full_name == github.repository"
# typer >= 0.2x vendors its own click; accept either's groups and usage errors.
GROUPS = (click.Group, TyperGroup)
USAGE_ERRORS = (click.ClickException, typer.TyperException)
PLACEHOLDERS = {"ADAPTER": "ainative-v2", "BASE_SHA": "0" * 40}


def load(path: Path) -> dict[str, Any]:
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean True.
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def triggers(workflow: dict[str, Any]) -> dict[str, Any]:
    on = workflow["on"]
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    return on


def steps(workflow: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(name, step) for name, job in workflow["jobs"].items() for step in job["steps"]]


def run_steps() -> list[tuple[str, str]]:
    return [
        (f"{path.name}:{job}", step["run"])
        for path in WORKFLOW_FILES
        for job, step in steps(load(path))
        if "run" in step
    ]


def tokens(command: str) -> list[str]:
    """Shell words and operators of a `run:` command (`>`, `|`, `;`, `&&` come out alone)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    return list(lexer)


def without_redirect(words: list[str]) -> list[str]:
    """The command's words, less one trailing `> FILE` or `>> FILE`."""
    if len(words) >= 2 and words[-2] in {">", ">>"}:
        return words[:-2]
    return words


def substitute(word: str) -> str:
    return re.sub(
        r"\$\{?(\w+)\}?", lambda m: PLACEHOLDERS.get(m[1], f"/placeholder/{m[1].lower()}"), word
    )


def parse_cli(args: list[str]) -> Any:
    """Parse `args` the way `runner` would, down to the leaf command, without running it:
    unknown options, bad choices and missing arguments raise click's usage errors, and an
    unknown verb an AssertionError."""
    command = get_command(app)
    prog, parent = "runner", None
    while isinstance(command, GROUPS):
        assert args, f"{prog}: no subcommand"
        name, args = args[0], args[1:]
        context = command.make_context(prog, [name], parent=parent, resilient_parsing=False)
        sub = command.get_command(context, name)
        assert sub is not None, f"`{prog} {name}` is not a verb of the runner CLI"
        command, prog, parent = sub, f"{prog} {name}", context
    return command.make_context(prog, list(args), parent=parent, resilient_parsing=False)


def conjuncts(condition: str) -> set[str] | None:
    """The top-level `&&` terms of an `if:`; None when it has an `||` (not a plain AND)."""
    text = " ".join(condition.replace("${{", "").replace("}}", "").split())
    if "||" in text:
        return None
    return {term.strip() for term in text.split("&&")}


def fork_can_run(job: dict[str, Any]) -> bool:
    """False when the job's condition requires the PR's head repository to be this one."""
    terms = conjuncts(str(job.get("if", "")))
    return terms is None or SAME_REPO not in terms


def test_there_are_the_four_workflows():
    names = {path.name for path in WORKFLOW_FILES}
    assert names == {"ci.yml", "pr.yml", "pr-comment.yml", "promote.yml"}


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_workflow_matches_github_schema(path: Path):
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-progress", str(WORKFLOWS_DIR)],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("where", "command"), run_steps(), ids=[c for _, c in run_steps()])
def test_run_step_is_one_runner_or_make_call(where: str, command: str):
    assert "${{" not in command, f"{where}: pass values through env:, not ${{{{ }}}} in run:"
    assert "\n" not in command.strip(), f"{where}: one command per step"
    assert not re.search(r"`|\$\(", command), f"{where}: no command substitution"
    words = without_redirect(tokens(command))
    operators = [w for w in words if re.fullmatch(r"[;&|<>()]+", w)]
    assert not operators, f"{where}: {operators} in {command!r}; the logic belongs in the runner"
    if words[0] == "make":
        assert len(words) == 2, f"{where}: one make target"
        makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
        assert re.search(rf"^{re.escape(words[1])}:", makefile, re.M), f"no make {words[1]}"
    else:
        assert words[0] == RUNNER, f"{where}: {command!r} is neither make nor {RUNNER}"


@pytest.mark.parametrize(
    ("where", "command"),
    [(w, c) for w, c in run_steps() if c.startswith(RUNNER)],
    ids=[c for _, c in run_steps() if c.startswith(RUNNER)],
)
def test_runner_call_parses_against_the_cli(where: str, command: str):
    args = [substitute(word) for word in without_redirect(tokens(command))[1:]]
    try:
        parse_cli(args)
    except USAGE_ERRORS as error:
        pytest.fail(f"{where}: `runner {shlex.join(args)}`: {error.format_message()}")


def test_the_cli_parse_check_rejects_drift():
    for args in (
        ["ci", "no-such-verb"],
        ["validate", "--no-such-option"],
        ["validate", "--format", "yaml"],
        ["ci", "comment", "ainative-v2"],  # --kind and --body-file are required
        ["smoke"],  # the adapter is required
    ):
        with pytest.raises((*USAGE_ERRORS, AssertionError)):
            parse_cli(args)
    parse_cli(["reconcile", "--apply", "--adapter", "ainative-v2"])


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_with_its_version(path: Path):
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if "uses:" in line]
    assert lines
    for line in lines:
        assert re.search(r"uses: [\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*$", line), line


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_every_checkout_drops_its_credentials(path: Path):
    checkouts = [
        s for _, s in steps(load(path)) if s.get("uses", "").startswith("actions/checkout@")
    ]
    assert checkouts
    for step in checkouts:
        assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", WORKFLOW_FILES, ids=lambda p: p.name)
def test_permissions_are_granted_per_job(path: Path):
    workflow = load(path)
    assert workflow["permissions"] == {}
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("permissions"), dict), f"{name}: no permissions: block"
        assert job.get("timeout-minutes"), f"{name}: no timeout-minutes"


def pull_request_workflows() -> list[Path]:
    return [
        p
        for p in WORKFLOW_FILES
        if {"pull_request", "pull_request_target"} & set(triggers(load(p)))
    ]


@pytest.mark.parametrize("path", pull_request_workflows(), ids=lambda p: p.name)
def test_a_fork_pull_request_reaches_no_secret(path: Path):
    """Replay a `pull_request` from a fork: every job that can run gets a read-only token,
    no secret but GITHUB_TOKEN, and no deployment environment."""
    workflow = load(path)
    assert "pull_request_target" not in triggers(workflow)
    assert "secrets." not in yaml.safe_dump(workflow.get("env", {}))
    for name, job in workflow["jobs"].items():
        for scope, access in job["permissions"].items():
            assert access in {"read", "none"}, f"{name}: {scope}: {access} on a pull_request"
        if not fork_can_run(job):
            continue
        text = yaml.safe_dump(job)
        secrets = set(re.findall(r"secrets\.(\w+)", text)) - {"GITHUB_TOKEN"}
        assert not secrets, f"{name}: a fork's PR could reach {secrets}"
        assert "environment" not in job, f"{name}: a fork's PR could use its environment"


def test_candidate_training_is_label_gated_and_same_repo_only():
    workflow = load(WORKFLOWS_DIR / "pr.yml")
    assert "labeled" in triggers(workflow)["pull_request"]["types"]
    gated = {n: j for n, j in workflow["jobs"].items() if "environment" in j}
    assert list(gated) == ["candidate"]
    job = gated["candidate"]
    assert job["environment"] == "hf-candidates"
    terms = conjuncts(job["if"])
    assert terms is not None
    assert {
        "github.event.action == 'labeled'",
        "github.event.label.name == 'train-candidate'",
        SAME_REPO,
    } <= terms
    runs = [s["run"] for s in job["steps"] if "run" in s]
    # the spec's backend, never this runner (tests/test_train_backends.py: --remote)
    assert any(r.startswith(f"{RUNNER} train ") and r.endswith(" --remote") for r in runs)
    assert any(r.startswith(f"{RUNNER} eval ") and "--upload" in r for r in runs)
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert uploads, "the eval report goes to the comment job as an artifact"


def test_pr_checks_cover_the_changed_adapters():
    workflow = load(WORKFLOWS_DIR / "pr.yml")
    paths = triggers(workflow)["pull_request"]["paths"]
    assert set(paths) == {"adapters/**", "channels/**", "datasets/**", "policies/**", "runner/**"}
    runs = [s["run"] for _, s in steps(workflow) if "run" in s]
    for expected in (
        f"{RUNNER} ci changed",
        f"{RUNNER} validate --changed-since",
        f"{RUNNER} smoke ",
        f"{RUNNER} plan ",
        f"{RUNNER} ci pr-info ",
    ):
        assert any(r.startswith(expected) for r in runs), expected
    assert any("--format github" in r for r in runs)
    assert any("--format markdown" in r and "GITHUB_STEP_SUMMARY" in r for r in runs)


def test_the_comment_job_never_touches_pr_code():
    workflow = load(WORKFLOWS_DIR / "pr-comment.yml")
    assert set(triggers(workflow)) == {"workflow_run"}
    assert triggers(workflow)["workflow_run"]["workflows"] == [
        load(WORKFLOWS_DIR / "pr.yml")["name"]
    ]
    for name, job in workflow["jobs"].items():
        text = yaml.safe_dump(job)
        assert not re.search(r"workflow_run\.(head_sha|head_branch|head_commit)", text), name
        assert "pull_request.head" not in text, name
        assert "environment" not in job
        for step in job["steps"]:
            uses = step.get("uses", "")
            if uses.startswith("actions/checkout@"):
                # The default branch: no ref, no other repository.
                assert not {"ref", "repository"} & set(step.get("with", {})), name
            if uses.startswith("actions/download-artifact@"):
                assert step["with"]["run-id"] == "${{ github.event.workflow_run.id }}"
                assert "github-token" in step["with"]
        runs = [s["run"] for s in job["steps"] if "run" in s]
        assert any(r.startswith(f"{RUNNER} ci post-comments ") for r in runs)
        assert job["permissions"].get("pull-requests") == "write"


def test_promotion_is_serialised_and_never_cancelled():
    workflow = load(WORKFLOWS_DIR / "promote.yml")
    on = triggers(workflow)
    assert on["push"]["branches"] == ["main"]
    assert on["schedule"]
    assert set(on["workflow_dispatch"]["inputs"]) == {"adapter", "dry_run"}
    assert workflow["concurrency"]["cancel-in-progress"] is False
    assert "github.ref" not in workflow["concurrency"]["group"]
    job = workflow["jobs"]["reconcile"]
    assert job["environment"] == "hf-production"
    assert set(job["permissions"]) == {"contents"}
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # withdrawn versions live in git history
    runs = [s["run"] for s in job["steps"] if "run" in s]
    result = '--result "$RUNNER_TEMP/reconcile/result.json"'
    assert f"{RUNNER} reconcile --apply {result}" in runs
    assert f'{RUNNER} reconcile --apply --adapter "$ADAPTER" {result}' in runs
    assert f"{RUNNER} reconcile {result}" in runs


def test_the_merged_pr_hears_the_promotion_result_from_a_job_without_the_hub_token():
    workflow = load(WORKFLOWS_DIR / "promote.yml")
    job = workflow["jobs"]["comment"]
    assert job["needs"] == "reconcile"
    assert "!cancelled()" in job["if"]
    assert "github.event_name == 'push'" in job["if"]
    assert "environment" not in job
    assert job["permissions"] == {"contents": "read", "pull-requests": "write"}
    assert "secrets." not in yaml.safe_dump(job)
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert f'{RUNNER} ci comment-promotion "$RUNNER_TEMP/reconcile/result.json"' in runs


def test_channel_moves_are_announced_after_every_reconcile_without_the_hub_token():
    job = load(WORKFLOWS_DIR / "promote.yml")["jobs"]["announce"]
    assert job["needs"] == "reconcile"
    assert job["if"] == "${{ !cancelled() }}"  # scheduled and manual runs move channels too
    assert "environment" not in job
    assert job["permissions"] == {"contents": "read", "deployments": "write"}
    secrets = set(re.findall(r"secrets\.(\w+)", yaml.safe_dump(job)))
    assert secrets == {"CHANNEL_WEBHOOK_URL", "CHANNEL_WEBHOOK_SECRET"}
    runs = [s["run"] for s in job["steps"] if "run" in s]
    assert f'{RUNNER} ci announce-channels "$RUNNER_TEMP/reconcile/result.json"' in runs


def test_every_make_call_names_a_makefile_target():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.MULTILINE))
    calls = {command.split()[1] for _, command in run_steps() if command.startswith("make ")}
    assert calls, "the workflows install with make"
    assert calls <= targets


def test_ci_lints_and_tests():
    runs = [s["run"] for _, s in steps(load(WORKFLOWS_DIR / "ci.yml")) if "run" in s]
    assert {"make lint", "make test"} <= set(runs)
