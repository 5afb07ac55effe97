"""`runner ci announce-channels`: every channel reconcile moved becomes a GitHub deployment
(checked against the GitHub stand-in) and, when CHANNEL_WEBHOOK_URL is set, a signed JSON
payload to a webhook (checked by a local receiver), whose URL is never shown."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Iterator
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runner.github import webhook
from runner.promote.result import ChannelResult, ReconcileResult
from tests.conftest import RunCli
from tests.github_standin import REPO, FakeGitHub

COMMIT = "e" * 40
HUB_COMMIT = "a" * 40
LINK = "http://hub.local/ainative/kwanzaa-mini/tree/stable"
EVAL = {
    "run_id": "r1",
    "passed": True,
    "primary_metric": "json_valid_rate",
    "primary_value": 0.97,
    "metrics": {"json_valid_rate": 0.97},
    "items": 40,
}
RUN_URL = f"https://github.com/{REPO}/actions/runs/99"
SECRET = "whsec_signingSecret42"
HOOK_PATH = "/services/T0000/B0000/XXXXtokenInThePath9"  # a Slack-style URL: its path is a secret


def channel(
    name: str, before: int | None, after: int, *, moved: bool = True, **fields: Any
) -> ChannelResult:
    return ChannelResult(
        "kwanzaa-mini", name, "ainative/kwanzaa-mini", str(after), "to move", before, after,
        ok=True, moved=moved, result="moved" if moved else "in place",
        commit=HUB_COMMIT, link=LINK.replace("stable", name), eval=EVAL, **fields,
    )  # fmt: skip


def write_result(tmp_path: Path, *channels: ChannelResult) -> Path:
    path = tmp_path / "result.json"
    ReconcileResult(True, COMMIT, (), channels).write(path)
    return path


@pytest.fixture
def rolled_back(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A reconcile that moved stable back from v2 to v1 and left canary in place."""
    monkeypatch.setenv("GITHUB_RUN_ID", "99")
    return write_result(tmp_path, channel("stable", 2, 1), channel("canary", 2, 2, moved=False))


def expected_payload(name: str, before: int | None, after: int) -> dict[str, Any]:
    return {
        "event": "channel.moved",
        "id": f"kwanzaa-mini-{name}@{COMMIT}:v{after}",
        "adapter": "kwanzaa-mini",
        "channel": name,
        "environment": f"kwanzaa-mini-{name}",
        "from": before,
        "to": after,
        "repo_id": "ainative/kwanzaa-mini",
        "revision": name,
        "hub_commit": HUB_COMMIT,
        "commit": COMMIT,
        "link": LINK.replace("stable", name),
        "eval": EVAL,
        "run_url": RUN_URL,
    }


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver: records each request and answers `status`."""

    received: list[tuple[str, Message, bytes]]  # headers: read case-insensitively
    status: int

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append((self.path, self.headers, body))
        self.send_response(self.status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[type[Receiver]]:
    handler = type("Handler", (Receiver,), {"received": [], "status": 204})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    serve = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    serve.start()  # polled often: shutdown at teardown returns at once
    monkeypatch.setenv("CHANNEL_WEBHOOK_URL", f"http://127.0.0.1:{server.server_port}{HOOK_PATH}")
    monkeypatch.setenv("CHANNEL_WEBHOOK_SECRET", SECRET)
    # Retries within a fraction of a second, not a minute.
    monkeypatch.setattr(webhook, "DEADLINE_S", 0.3)
    monkeypatch.setattr(webhook, "BACKOFF_S", 0.01)
    yield handler
    server.shutdown()


def assert_no_webhook_url(*texts: str) -> None:
    for text in texts:
        assert HOOK_PATH not in text
        assert "XXXXtokenInThePath9" not in text


def test_a_channel_move_becomes_a_github_deployment_with_a_successful_status(
    github: type[FakeGitHub], rolled_back: Path, run_cli: RunCli
) -> None:
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 0, err
    assert "kwanzaa-mini stable: v2 → v1: deployment 1 created" in out
    assert "canary" not in out  # it did not move
    assert github.deployments == {
        1: {
            "ref": COMMIT,
            "environment": "kwanzaa-mini-stable",
            "description": "kwanzaa-mini stable: v2 → v1",
            "payload": expected_payload("stable", 2, 1),
            "auto_merge": False,
            "required_contexts": [],
            "production_environment": True,
            "transient_environment": False,
        }
    }
    assert github.deployment_statuses == {
        1: [
            {
                "state": "success",
                "environment_url": LINK,
                "log_url": RUN_URL,
                "description": "kwanzaa-mini stable: v2 → v1",
                "auto_inactive": True,
            }
        ]
    }


def test_a_later_move_leaves_one_active_deployment_per_channel(
    github: type[FakeGitHub], rolled_back: Path, run_cli: RunCli, tmp_path: Path
) -> None:
    """GitHub's auto_inactive skips production environments: `stable`'s earlier deployment is
    made inactive by the runner itself."""
    assert run_cli("ci", "announce-channels", rolled_back)[0] == 0
    later = tmp_path / "later"
    later.mkdir()
    ReconcileResult(True, "f" * 40, (), (channel("stable", 1, 2),)).write(later / "result.json")

    code, out, err = run_cli("ci", "announce-channels", later / "result.json")

    assert code == 0, err
    assert "kwanzaa-mini stable: v1 → v2: deployment 2 created; 1 now inactive" in out
    assert [s["state"] for s in github.deployment_statuses[1]] == ["success", "inactive"]
    assert [s["state"] for s in github.deployment_statuses[2]] == ["success"]
    code, out, _ = run_cli("ci", "announce-channels", later / "result.json")
    assert "already announced (deployment 2)" in out
    assert len(github.deployment_statuses[1]) == 2  # not retired twice


def test_a_canary_deployment_is_not_a_production_one(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path
) -> None:
    code, out, err = run_cli(
        "ci", "announce-channels", write_result(tmp_path, channel("canary", None, 3))
    )
    assert code == 0, err
    assert "kwanzaa-mini canary: (none) → v3: deployment 1 created" in out
    [deployment] = github.deployments.values()
    assert deployment["environment"] == "kwanzaa-mini-canary"
    assert deployment["production_environment"] is False
    assert deployment["payload"]["from"] is None
    assert deployment["payload"]["run_url"] is None  # outside a workflow run
    assert github.deployment_statuses[1][0]["log_url"] == ""


def test_a_rerun_announces_no_move_twice(
    github: type[FakeGitHub], rolled_back: Path, run_cli: RunCli
) -> None:
    assert run_cli("ci", "announce-channels", rolled_back)[0] == 0
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 0, err
    assert "kwanzaa-mini stable: v2 → v1: already announced (deployment 1)" in out
    assert len(github.deployments) == 1
    assert len(github.deployment_statuses[1]) == 1


def test_a_rerun_after_a_stop_between_deployment_and_status_completes_it(
    github: type[FakeGitHub], rolled_back: Path, run_cli: RunCli
) -> None:
    assert run_cli("ci", "announce-channels", rolled_back)[0] == 0
    github.deployment_statuses.clear()  # as if the job had stopped before the status
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 0, err
    assert "deployment 1 completed" in out
    assert len(github.deployments) == 1
    assert [s["state"] for s in github.deployment_statuses[1]] == ["success"]


def test_the_webhook_receives_the_move_signed(
    github: type[FakeGitHub], receiver: type[Receiver], rolled_back: Path, run_cli: RunCli
) -> None:
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 0, err
    assert "kwanzaa-mini stable: v2 → v1: webhook delivered" in out
    [(path, headers, body)] = receiver.received
    assert path == HOOK_PATH
    assert json.loads(body) == expected_payload("stable", 2, 1)
    assert json.loads(body) == github.deployments[1]["payload"]  # one payload for both
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == "adapter-gitops-runner"
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Adapter-GitOps-Signature-256"], signature)
    assert_no_webhook_url(out, err)
    assert SECRET not in out + err


def test_an_unsigned_webhook_gets_no_signature(
    github: type[FakeGitHub],
    receiver: type[Receiver],
    rolled_back: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CHANNEL_WEBHOOK_SECRET", "")  # an unset secret, as a workflow passes it
    assert run_cli("ci", "announce-channels", rolled_back)[0] == 0
    [(_, headers, _)] = receiver.received
    assert "X-Adapter-GitOps-Signature-256" not in headers


def test_a_failing_webhook_is_retried_then_reported_without_its_url(
    github: type[FakeGitHub], receiver: type[Receiver], rolled_back: Path, run_cli: RunCli
) -> None:
    receiver.status = 500
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 1
    assert len(receiver.received) > 1  # retried
    assert "kwanzaa-mini stable: v2 → v1: deployment 1 created" in out  # the rest still ran
    assert "webhook failed: the webhook (CHANNEL_WEBHOOK_URL) answered 500" in err
    assert "run the job again" in err
    assert_no_webhook_url(out, err)


def test_a_webhook_refusing_the_payload_is_not_retried(
    github: type[FakeGitHub], receiver: type[Receiver], rolled_back: Path, run_cli: RunCli
) -> None:
    receiver.status = 404
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 1
    assert len(receiver.received) == 1
    assert "the webhook (CHANNEL_WEBHOOK_URL) answered 404" in err
    assert_no_webhook_url(out, err)


def test_an_unreachable_webhook_is_reported_without_its_url(
    github: type[FakeGitHub],
    receiver: type[Receiver],
    rolled_back: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as closed:  # a port nothing listens on once this block ends
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("CHANNEL_WEBHOOK_URL", f"http://127.0.0.1:{port}{HOOK_PATH}")
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 1
    assert "the webhook (CHANNEL_WEBHOOK_URL) could not be reached" in err
    assert_no_webhook_url(out, err)


def test_a_webhook_url_that_is_not_http_is_refused_without_showing_it(
    github: type[FakeGitHub], rolled_back: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CHANNEL_WEBHOOK_URL", f"ftp://hooks.example{HOOK_PATH}")
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 2
    assert "the webhook (CHANNEL_WEBHOOK_URL) is not an http(s) URL" in err
    assert_no_webhook_url(out, err)


def test_nothing_moved_makes_no_call(
    github: type[FakeGitHub], receiver: type[Receiver], run_cli: RunCli, tmp_path: Path
) -> None:
    result = write_result(tmp_path, channel("stable", 1, 1, moved=False))
    code, out, _ = run_cli("ci", "announce-channels", result)
    assert code == 0
    assert "no channel moved: nothing to announce" in out
    code, out, _ = run_cli("ci", "announce-channels", tmp_path / "absent.json")
    assert code == 0
    assert "absent.json is missing" in out
    assert github.calls == []
    assert receiver.received == []


def test_an_unreadable_result_is_an_input_error(
    github: type[FakeGitHub], run_cli: RunCli, tmp_path: Path
) -> None:
    path = tmp_path / "result.json"
    path.write_text("{not json")
    code, _, err = run_cli("ci", "announce-channels", path)
    assert code == 2
    assert "not a result of `runner reconcile --result`" in err
    assert github.calls == []


def test_announcing_without_a_github_token_is_a_clear_error(
    github: type[FakeGitHub], rolled_back: Path, run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN")
    code, _, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 2
    assert "announcing a channel move needs GITHUB_TOKEN and GITHUB_REPOSITORY" in err
    assert github.calls == []


def test_a_refused_deployment_says_which_permission_the_job_needs(
    github: type[FakeGitHub],
    receiver: type[Receiver],
    rolled_back: Path,
    run_cli: RunCli,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_notTheWorkflowToken99")
    code, out, err = run_cli("ci", "announce-channels", rolled_back)
    assert code == 1
    assert "deployment failed: GitHub answered 401" in err
    assert "`deployments: write`" in err
    assert "ghs_notTheWorkflowToken99" not in out + err
    assert "webhook delivered" in out  # tried all of them
