"""`make conformance`: huggingface_hub's own staging-Hub tests, for the installed version, run
against the Hub emulator, with a pass/fail table per area.

The sdist of the installed huggingface_hub ships its tests (pip downloads it from the package
index: the only network this needs). They are unpacked under `.conformance/`, their staging
endpoint is rewritten to a fresh emulator, their test accounts are registered in it, and
pytest runs them with a per-test timeout. Exit 1 when a test of an area the runner uses
fails, or when any test meets a 5xx or a hang (areas we do not use may fail, with a 4xx).

    python conformance/run.py [--work .conformance] [--timeout 120] [-k EXPR] [FILE ...]
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ET
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import huggingface_hub

from runner.hub.emulator.server import EmulatorServer

HERE = Path(__file__).resolve().parent
CONFTEST = HERE / "hub_tests_conftest.py"
# The test files that talk to a Hub (staging, or production through our emulated classes).
HUB_TEST_FILES = (
    "test_hf_api.py",
    "test_file_download.py",
    "test_snapshot_download.py",
    "test_cache_layout.py",
    "test_repocard.py",
    "test_copy_files.py",
    "test_commit_scheduler.py",
    "test_auth.py",
    "test_utils_http.py",
    "test_hf_file_system.py",
    "test_cli_discussions.py",
    "test_commit_api.py",
    "test_lfs.py",
    "test_upload_pipeline.py",
    "test_utils_telemetry.py",
    "test_cli.py",
    "test_hub_mixin_pytorch.py",
    "test_buckets.py",
    "test_buckets_cli.py",
    "test_buckets_hf_file_system.py",
    "test_bucket_live_follow.py",
    "test_kernels.py",
    "test_xet_upload.py",
)
MARKERS = ("api", "transfer", "inference", "xet", "no_xet", "production", "deprecated", "git_lfs")
MARKERS += ("vcr",)  # recorded answers: here they are answered by the emulator instead


@dataclass(frozen=True)
class Area:
    name: str
    used: bool  # the runner depends on it: every test must pass
    pattern: str  # searched in "file.py::Class::test"


AREAS = (
    Area(
        "commits and preupload (LFS included)",
        True,
        r"test_hf_api\.py::(TestCommitApi|TestHfApiUploadEmptyFile|TestHfApiDeleteFolder|"
        r"TestHfApiDeleteFiles|TestCommitInBackground|TestHfLargefiles|TestUploadFolderMocked)"
        r"|test_commit_scheduler|test_commit_api|test_lfs|test_upload_pipeline",
    ),
    Area(
        "tree and paths-info",
        True,
        r"test_hf_api\.py::(TestHfApiListRepoTree|TestHfApiRepoFileExists|TestHfApiVerifyChecksums)",
    ),
    Area(
        "refs, tags, branches, commit lists",
        True,
        r"test_hf_api\.py::(TestHfApiTagEndpoint|TestHfApiBranchEndpoint|TestListGitRefs|"
        r"TestListGitCommits)",
    ),
    Area(
        "downloads and snapshots",
        True,
        r"test_file_download|test_snapshot_download|test_cache_layout|"
        r"test_hf_api\.py::TestDownloadHfApiAlias",
    ),
    Area("repo cards and metadata", True, r"test_repocard"),
    Area(
        "repo create, delete, settings (gating included)",
        True,
        r"test_hf_api\.py::(TestHfApiEndpoints|TestHfApiPublicStaging|TestAccessRequest|TestRepoUrl)",
    ),
    Area(
        "private repos, tokens and auth",
        True,
        r"test_hf_api\.py::(TestHfApiPrivate|TestHfApiTokenAttribute|TestHfApiAuthCheck)"
        r"|test_auth|test_utils_http",
    ),
    Area(
        "Spaces: runtime, secrets, variables, hardware, pause, restart, sleep",
        True,
        r"test_hf_api\.py::TestSpaceAPI",
    ),
    Area("history rewrite and LFS file deletion", False, r"TestSquashHistory|TestListAndPermanent"),
    Area("discussions and pull requests", False, r"TestHfApiDiscussions|test_cli_discussions"),
    Area(
        "collections, webhooks, papers, users, activity, listings",
        False,
        r"TestCollectionAPI|TestWebhookApi|TestPaperApi|TestUserApi|TestActivityApi|"
        r"TestExpandPropertyType|TestHfApiInferenceCatalog|TestHfApiPublicProduction",
    ),
    Area("HfFileSystem", False, r"test_hf_file_system"),
    Area("the hf command line, hub mixins", False, r"test_cli\.py|test_hub_mixin"),
    Area(
        "buckets, kernels, Xet storage",
        False,
        r"test_bucket|test_copy_files|test_kernels|test_xet_upload",
    ),
    Area("other", False, r"."),
)
# Public Spaces of other users that the recorded production tests read (as huggingface.co
# holds them), put in place the way the Space cassettes' replay finds them there.
PRODUCTION_SPACES: dict[str, dict[str, bytes]] = {
    "victor/static-space": {
        "README.md": b"---\ntitle: static-space\nsdk: static\n---\n",
        "index.html": b"<!doctype html><title>static-space</title>\n",
    },
}
# A failure that is the emulator's fault whatever the area: a server error or a hang.
BROKEN = re.compile(r"\b50[0-4] Server Error|Server error '50[0-4]|Failed: Timeout|ReadTimeout")
# Failures that say nothing about the emulator: the test needs what this run cannot have.
NOT_RUNNABLE = (
    (
        re.compile(r"Name or service not known|Temporary failure in name resolution"),
        "reaches a host other than the emulator (no internet here)",
    ),
    (
        re.compile(r"tests/fixtures/\S+ (?:\(|not found)|tests/fixtures/\S+'?$", re.M),
        "reads tests/fixtures, which the sdist does not ship",
    ),
)
# Tests whose assertion is about the endpoint's name being huggingface.co's, not about a Hub.
ENDPOINT_NAME_TESTS = re.compile(r"test_utils_http\.py::test_fix_hf_endpoint_in_url")


@dataclass(frozen=True)
class Outcome:
    test: str  # file.py::Class::test
    status: str  # passed, failed, skipped
    message: str

    @property
    def area(self) -> Area:
        return next(area for area in AREAS if re.search(area.pattern, self.test))

    @property
    def broken(self) -> bool:
        return self.status == "failed" and BROKEN.search(self.message) is not None


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    work = Path(args.work).resolve()
    suite = unpack_tests(work)
    with EmulatorServer(work / "hub") as hub:
        _point_at(suite, hub.endpoint)
        hub.add_accounts(hub_test_accounts(suite / "tests" / "testing_constants.py"))
        for repo_id, files in PRODUCTION_SPACES.items():
            hub.seed(repo_id, files, repo_type="space")
        junit = work / "junit.xml"
        files = args.files or list(HUB_TEST_FILES)
        _run_pytest(suite, hub.endpoint, files, junit, args.timeout, args.k)
    outcomes = read_junit(junit)
    report = table(outcomes)
    (work / "report.md").write_text(report)
    print(report)
    return 1 if any(_blocking(o) for o in outcomes) else 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default=".conformance", help="where the tests are unpacked")
    parser.add_argument("--timeout", type=int, default=120, help="seconds per test")
    parser.add_argument("-k", help="pytest -k expression")
    parser.add_argument("files", nargs="*", help=f"test files (default: {len(HUB_TEST_FILES)})")
    return parser


def unpack_tests(work: Path) -> Path:
    """The installed version's tests, fresh, with our conftest and markers."""
    version = huggingface_hub.__version__
    sdist = _sdist(work / "sdist", version)
    suite = work / f"huggingface_hub-{version}"
    shutil.rmtree(suite, ignore_errors=True)
    prefix = f"huggingface_hub-{version}/tests/"
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.startswith(prefix) and m.isfile()]
        archive.extractall(work, members=members, filter="data")
    tests = suite / "tests"
    (tests / "__init__.py").touch()
    shutil.copyfile(CONFTEST, tests / "conftest.py")
    markers = "".join(f"    {name}: huggingface_hub's marker\n" for name in MARKERS)
    ini = f"[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n{markers}"
    (suite / "pytest.ini").write_text(ini)
    return suite


def _sdist(folder: Path, version: str) -> Path:
    found = sorted(folder.glob(f"huggingface_hub-{version}.tar.gz"))
    if found:
        return found[0]
    folder.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary"]
    subprocess.run([*pip, ":all:", "-d", str(folder), f"huggingface_hub=={version}"], check=True)
    return folder / f"huggingface_hub-{version}.tar.gz"


def _point_at(suite: Path, endpoint: str) -> None:
    constants = suite / "tests" / "testing_constants.py"
    text = constants.read_text()
    text, count = re.subn(r"(?m)^ENDPOINT_STAGING = .*$", f"ENDPOINT_STAGING = {endpoint!r}", text)
    if count != 1:
        raise SystemExit(f"{constants}: no ENDPOINT_STAGING line to point at the emulator")
    constants.write_text(text)


STAGING_ORG = "valid_org_hub"  # not in testing_constants: test_whoami names it


def hub_test_accounts(constants: Path) -> dict[str, object]:
    """The users and tokens the tests log in with, read (not run) from their constants."""
    values = {
        target.id: node.value.value
        for node in ast.parse(constants.read_text()).body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    enterprise = values["ENTERPRISE_ORG"]
    return {
        "users": [
            {
                "name": values["USER"],
                "fullname": values["FULL_NAME"],
                "orgs": {STAGING_ORG: "write"},
            },
            {"name": values["OTHER_USER"]},
            {"name": values["ENTERPRISE_USER"], "orgs": {enterprise: "admin"}},
            {"name": "user"},  # the recorded Space API tests' account
        ],
        "tokens": [
            {"token": values["TOKEN"], "user": values["USER"]},
            {"token": values["OTHER_TOKEN"], "user": values["OTHER_USER"]},
            {"token": values["ENTERPRISE_TOKEN"], "user": values["ENTERPRISE_USER"]},
            {"token": "hf_fake_token", "user": "user"},
        ],
        # hub-ci's orgs as the tests find them: USER's org, and an Enterprise org whose new
        # repos are private unless asked otherwise
        "orgs": [
            {"name": STAGING_ORG, "fullname": "Dummy Hub Org"},
            {"name": enterprise, "private_by_default": True},
        ],
    }


def _run_pytest(
    suite: Path, endpoint: str, files: list[str], junit: Path, timeout: int, k: str | None
) -> None:
    # The emulator is the library's default endpoint, as hub-ci is in huggingface_hub's CI
    # (HUGGINGFACE_CO_STAGING would pin hub-ci's name over HF_ENDPOINT). The transfer path is
    # the one the runner takes against a loopback Hub: LFS (the emulator cannot serve Xet).
    # None of the runner's own huggingface_hub settings (it disables telemetry at import).
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env |= {"HF_ENDPOINT": endpoint, "HF_HUB_DISABLE_XET": "1", "NO_COLOR": "1"}
    # what huggingface_hub's own pytest settings put in the environment
    env |= {"HF_TOKEN": "", "HUGGING_FACE_HUB_TOKEN": "", "DISABLE_SYMLINKS_IN_WINDOWS_TESTS": "1"}
    command = [sys.executable, "-m", "pytest", *(f"tests/{name}" for name in files)]
    command += ["-q", "-p", "no:cacheprovider", "-p", "no:randomly", "--no-header", "-rN"]
    command += ["--continue-on-collection-errors"]
    command += [f"--timeout={timeout}", f"--junitxml={junit}", "-W", "ignore"]
    if k:
        command += ["-k", k]
    subprocess.run(command, cwd=suite, env=env, check=False)


def read_junit(path: Path) -> list[Outcome]:
    outcomes = []
    for case in ET.parse(path).iter("testcase"):
        # "tests.test_hf_api.TestCommitApi" -> "test_hf_api.py::TestCommitApi::<name>"
        # (a file that failed to import: classname "" and name "tests.test_x")
        dotted = case.get("classname") or case.get("name", "")
        module, *classes = dotted.removeprefix("tests.").split(".")
        test = "::".join([f"{module}.py", *classes, case.get("name", "")])
        status, message, details = "passed", "", ""
        for child in case:
            if child.tag in ("failure", "error"):
                details = child.text or ""
                status, message = "failed", child.get("message") or details
            elif child.tag == "skipped" and status == "passed":
                status, message = "skipped", child.get("message") or ""
        outcomes.append(Outcome(test, *_not_runnable(test, status, message, details)))
    return outcomes


def _not_runnable(test: str, status: str, message: str, details: str) -> tuple[str, str]:
    """A failure that needs what this run cannot have is "n/a", with the reason (found in
    the message, or in the traceback when the client wrapped the cause)."""
    if status != "failed":
        return status, message
    if ENDPOINT_NAME_TESTS.search(test):
        return "n/a", "asserts the default endpoint is named huggingface.co or hub-ci"
    for pattern, reason in NOT_RUNNABLE:
        if pattern.search(message) or pattern.search(details):
            return "n/a", reason
    return status, message


def _blocking(outcome: Outcome) -> bool:
    return outcome.broken or (outcome.status == "failed" and outcome.area.used)


def table(outcomes: list[Outcome]) -> str:
    counts: dict[str, Counter[str]] = {area.name: Counter() for area in AREAS}
    for outcome in outcomes:
        counts[outcome.area.name][outcome.status] += 1
        counts[outcome.area.name]["broken"] += outcome.broken
    lines = [
        f"# huggingface_hub {huggingface_hub.__version__} tests against the Hub emulator",
        "",
        "| area | runner uses it | passed | failed | skipped | not runnable here | 5xx or hang |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for area in AREAS:
        c = counts[area.name]
        if sum(c.values()) == 0:
            continue
        mark = "yes" if area.used else "no"
        lines.append(
            f"| {area.name} | {mark} | {c['passed']} | {c['failed']} | {c['skipped']} "
            f"| {c['n/a']} | {c['broken']} |"
        )
    total = Counter(o.status for o in outcomes)
    lines += ["", f"Total: {total['passed']} passed, {total['failed']} failed, "]
    lines[-1] += f"{total['skipped']} skipped, {total['n/a']} not runnable here."
    lines += _details("Must pass (an area the runner uses, or a 5xx/hang)", outcomes, _blocking)
    lines += _details("Failing in areas the runner does not use", outcomes, _unused_failure)
    for status in ("skipped", "n/a"):
        why = Counter(o.message.split(":")[0] for o in outcomes if o.status == status)
        shown = ", ".join(f"{n} {reason}" for reason, n in why.most_common())
        lines += ["", f"{status.capitalize()}: {shown or 'none'}"]
    return "\n".join(lines) + "\n"


def _unused_failure(outcome: Outcome) -> bool:
    return outcome.status == "failed" and not _blocking(outcome)


def _details(title: str, outcomes: list[Outcome], keep: object) -> list[str]:
    chosen = [o for o in outcomes if keep(o)]  # type: ignore[operator]
    if not chosen:
        return []
    lines = ["", f"## {title}: {len(chosen)}", ""]
    for outcome in chosen:
        first = next((ln for ln in outcome.message.splitlines() if ln.strip()), "")[:160]
        lines.append(f"- `{outcome.test}`: {first}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
