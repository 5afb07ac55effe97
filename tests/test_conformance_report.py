"""`make conformance` judges huggingface_hub's own test results by area: what the runner uses
must pass, anything may fail a feature we do not use but never with a 5xx or a hang, and a
test that needs what this machine cannot have is shown as such, never counted as a pass."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def harness() -> ModuleType:
    spec = importlib.util.spec_from_file_location("conformance_run", ROOT / "conformance/run.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


def _junit(path: Path, cases: list[tuple[str, str, str, str]]) -> Path:
    rows = []
    for classname, name, kind, message in cases:
        inner = f'<{kind} message="{message}"/>' if kind else ""
        rows.append(f'<testcase classname="{classname}" name="{name}">{inner}</testcase>')
    path.write_text(f"<testsuites><testsuite>{''.join(rows)}</testsuite></testsuites>")
    return path


def test_a_used_area_failure_fails_the_run_and_is_listed(harness: ModuleType, tmp_path: Path):
    outcomes = harness.read_junit(
        _junit(
            tmp_path / "junit.xml",
            [
                ("tests.test_hf_api.TestCommitApi", "test_upload", "", ""),
                ("tests.test_hf_api.TestCommitApi", "test_create_pr", "failure", "400 Bad"),
                ("tests.test_hf_api.TestWebhookApi", "test_list", "error", "404 Not Found"),
            ],
        )
    )
    report = harness.table(outcomes)

    assert "| commits and preupload (LFS included) | yes | 1 | 1 | 0 | 0 | 0 |" in report
    assert "| collections, webhooks, papers, users, activity, listings | no | 0 | 1 |" in report
    assert "`test_hf_api.py::TestCommitApi::test_create_pr`: 400 Bad" in report
    assert [harness._blocking(o) for o in outcomes] == [False, True, False]


def test_a_server_error_or_a_hang_blocks_even_in_an_unused_area(harness: ModuleType, tmp_path):
    outcomes = harness.read_junit(
        _junit(
            tmp_path / "junit.xml",
            [
                ("tests.test_hf_api.TestWebhookApi", "a", "failure", "Server error '500 Int'"),
                ("tests.test_buckets", "test_b", "failure", "Failed: Timeout &gt;120.0s"),
                ("tests.test_buckets", "test_c", "failure", "Client error '404 Not Found'"),
            ],
        )
    )

    assert [o.broken for o in outcomes] == [True, True, False]
    assert "| buckets, kernels, Xet storage | no | 0 | 2 | 0 | 0 | 1 |" in harness.table(outcomes)


def test_a_test_needing_another_host_or_missing_fixtures_is_not_runnable_not_passed(
    harness: ModuleType, tmp_path: Path
):
    outcomes = harness.read_junit(
        _junit(
            tmp_path / "junit.xml",
            [
                (
                    "tests.test_utils_http",
                    "test_get",
                    "failure",
                    "[Errno -2] Name or service not known",
                ),
                (
                    "tests.test_repocard.TestRepoCard",
                    "test_load",
                    "failure",
                    "path not found on disk (/x/tests/fixtures/cards/sample.md).",
                ),
            ],
        )
    )

    assert [o.status for o in outcomes] == ["n/a", "n/a"]
    assert not any(harness._blocking(o) for o in outcomes)
    report = harness.table(outcomes)
    assert "0 passed, 0 failed, 0 skipped, 2 not runnable here" in report
    assert "reads tests/fixtures, which the sdist does not ship" in report


def test_the_test_accounts_are_read_from_the_constants_without_running_them(
    harness: ModuleType, tmp_path: Path
):
    constants = tmp_path / "testing_constants.py"
    constants.write_text(
        'USER = "__DUMMY_HUB_USER__"\nFULL_NAME = "Dummy User"\nTOKEN = "hf_ci"\n'
        'OTHER_USER = "DVUser"\nOTHER_TOKEN = "hf_other"\nENTERPRISE_USER = "Admin"\n'
        'ENTERPRISE_ORG = "Org"\nENTERPRISE_TOKEN = "hf_ent"\n'
        'raise SystemExit("a constants file is never executed")\n'
    )

    accounts = harness.hub_test_accounts(constants)

    assert {"token": "hf_ci", "user": "__DUMMY_HUB_USER__"} in accounts["tokens"]
    assert {"name": "Admin", "orgs": {"Org": "admin"}} in accounts["users"]
