"""What `runner status` and `runner reconcile` say is true and agrees: a candidate evaluated
only locally is "not evaluated" on the Hub and reconcile evaluates it; "the Hub matches git"
only when it does; a dry run says it changed nothing and what --apply would do and cost."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from runner.promote.result import ReconcileResult
from tests.conftest import RunCli
from tests.test_promotion_order import V1, add_version, plant


def test_after_a_failed_local_eval_status_and_reconcile_agree_and_say_what_happens(
    demo_repo: Path, env: Any, run_cli: RunCli
) -> None:
    plant(env, demo_repo, V1, answer="no code at all")
    code, out, _ = run_cli("eval", f"adapters/{V1}", "--repo", demo_repo)
    assert code == 1
    assert "FAILS the gate" in out

    code, out, _ = run_cli("status", "--repo", demo_repo)
    assert code == 0
    assert "not evaluated" in out
    assert "no eval report on the Hub" in out
    assert "`runner reconcile --apply` evaluates it" in out

    code, out, _ = run_cli("reconcile", "--apply", "--repo", demo_repo)
    assert code == 0
    assert f"{V1}: not promoted: failed its gate" in out

    code, out, _ = run_cli("status", "--repo", demo_repo)
    assert "candidate failed" in out
    code, out, _ = run_cli("reconcile", "--apply", "--repo", demo_repo)
    assert code == 0
    closing = out.strip().splitlines()[-1]
    assert closing == (
        f"nothing to do: the Hub matches git except {V1} (candidate failed), which no "
        "reconcile promotes (the details above say why)"
    )


def plan_estimate(run_cli: RunCli, root: Path, adapter: str) -> tuple[float, float, str]:
    """GPU hours, dollars and hardware, as `runner plan` prints them."""
    code, out, _ = run_cli("plan", f"adapters/{adapter}", "--repo", root)
    assert code == 0, out
    found = re.search(r"GPU time: about ([\d.]+) h on `?([\w-]+)`?, about \$([\d.]+)", out)
    assert found, out
    return float(found.group(1)), float(found.group(3)), found.group(2)


def test_a_dry_run_says_nothing_changed_and_what_apply_would_do_and_cost(
    demo_repo: Path, env: Any, run_cli: RunCli, tmp_path: Path
) -> None:
    """demo-v1's candidate is on the Hub but not evaluated; demo-v2 was never trained."""
    plant(env, demo_repo, V1)
    v2 = add_version(demo_repo, 2)
    hours, usd, hardware = plan_estimate(run_cli, demo_repo, v2)
    env.clear_requests()
    result = tmp_path / "result.json"

    code, out, err = run_cli("reconcile", "--result", result, "--repo", demo_repo)

    assert code == 0, out + err
    assert out.strip().splitlines()[-1] == (
        f"dry run: nothing changed. `--apply` would train 1 adapter (≈{hours:.2f} GPU-hours, "
        f"≈${usd:.2f} on {hardware} per `runner plan`), evaluate 2 and promote up to 2 "
        "(those that pass)"
    )
    assert not [r for r in env.requests() if r["method"] not in ("GET", "HEAD")]
    assert not ReconcileResult.read(result).applied


def test_a_dry_run_with_everything_promoted_says_apply_has_nothing_to_do(
    demo_repo: Path, env: Any, run_cli: RunCli
) -> None:
    plant(env, demo_repo, V1)
    assert run_cli("reconcile", "--apply", "--repo", demo_repo)[0] == 0

    code, out, _ = run_cli("reconcile", "--repo", demo_repo)

    assert code == 0
    assert out.strip().splitlines()[-1] == (
        "dry run: nothing changed, and `--apply` has nothing to do: the Hub matches git"
    )
