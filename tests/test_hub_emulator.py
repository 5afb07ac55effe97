"""The Hub emulator, driven by the real `huggingface_hub` client.

huggingface_hub reads HF_ENDPOINT, HF_HOME and the telemetry switch once, at import, and
other tests in this process may already have imported it with other values. So every client
call here runs in a fresh `python -c` subprocess with its own environment; the emulator
runs in this process, where tests also reach its Python API (faults, scripts, request log)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from runner.hub.emulator import EmulatorServer

TOKEN = "hf_emulatorTestToken"

PRELUDE = """
import json, os, pathlib, sys, time
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import HfHubHTTPError
api = HfApi()
work = pathlib.Path(os.environ["EMULATOR_TEST_WORK"])

def emit(value):
    print("RESULT " + json.dumps(value, default=str))

def error_of(call):
    try:
        call()
    except Exception as exc:
        response = getattr(exc, "response", None)
        return {"type": type(exc).__name__, "status": getattr(response, "status_code", None),
                "message": str(exc)}
    return None

def wait_stage(repo_id, stages, timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        runtime = api.get_space_runtime(repo_id)
        if runtime.stage in stages:
            return runtime
        time.sleep(0.05)
    raise TimeoutError(f"{repo_id} still {runtime.stage}")
"""

# A Space app: serves HTTP on $PORT; once the emulator's readiness probe reached it, uploads
# a file to the model repo named by its TARGET_REPO variable with its HF_TOKEN secret, then
# pauses its own Space.
SPACE_APP = """
import http.server, os, threading
from huggingface_hub import HfApi

probed = threading.Event()

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")
        probed.set()

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print("app listening for", os.environ["SPACE_ID"], flush=True)
probed.wait(30)
api = HfApi(token=os.environ["HF_TOKEN"])
api.upload_file(
    path_or_fileobj=f"written by {os.environ['SPACE_ID']}".encode(),
    path_in_repo="result.txt",
    repo_id=os.environ["TARGET_REPO"],
    commit_message="Result from the Space",
)
print("uploaded the result", flush=True)
api.pause_space(os.environ["SPACE_ID"])
print("paused myself", flush=True)
threading.Event().wait()
"""

DOCKER_README = "---\ntitle: trainer\nsdk: docker\napp_port: 7860\n---\n\nA test Space.\n"

Client = Callable[..., Any]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[EmulatorServer]:
    with EmulatorServer(tmp_path / "hub-data") as server:
        yield server


def make_client(endpoint: str, work: Path) -> Client:
    def run(code: str, *, token: str | None = TOKEN, hf_home: Path | None = None) -> Any:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        env.update(
            HF_ENDPOINT=endpoint,
            HF_HOME=str(hf_home or work / "hf-home"),
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HUB_DISABLE_XET="1",  # the emulator has no Xet storage: binary files take LFS
            EMULATOR_TEST_WORK=str(work),
        )
        if token:
            env["HF_TOKEN"] = token
        proc = subprocess.run(
            [sys.executable, "-c", PRELUDE + textwrap.dedent(code)],
            env=env,
            capture_output=True,
            text=True,
            timeout=90,
        )
        assert proc.returncode == 0, f"client failed:\n{proc.stdout}\n{proc.stderr}"
        results = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
        assert results, f"client emitted nothing:\n{proc.stdout}\n{proc.stderr}"
        return json.loads(results[-1])

    return run


@pytest.fixture
def client(hub: EmulatorServer, tmp_path: Path) -> Client:
    return make_client(hub.endpoint, tmp_path)


def write_files(root: Path, files: dict[str, str]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def test_repos_are_created_with_their_visibility_and_a_duplicate_is_a_conflict(client: Client):
    result = client("""
        me = api.whoami()
        private = api.create_repo("ainative/private-model", private=True)
        public = api.create_repo("demo-org/public-data", repo_type="dataset")
        duplicate = error_of(lambda: api.create_repo("ainative/private-model"))
        again = api.create_repo("ainative/private-model", exist_ok=True)
        emit({
            "me": [me["name"], [o["name"] for o in me["orgs"]]],
            "urls": [private.repo_id, public.repo_type, public.repo_id, again.repo_id],
            "private": api.model_info("ainative/private-model").private,
            "public": api.dataset_info("demo-org/public-data").private,
            "duplicate": duplicate,
            "anonymous": error_of(lambda: api.model_info("ainative/private-model", token=False)),
            "missing": error_of(lambda: api.model_info("ainative/nope")),
            "not_mine": error_of(lambda: api.create_repo("someone-else/model")),
            "files": api.list_repo_files("ainative/private-model"),
        })
    """)
    assert result["me"] == ["ainative", ["demo-org", "ainative-labs"]]
    assert result["urls"] == [
        "ainative/private-model",
        "dataset",
        "demo-org/public-data",
        "ainative/private-model",
    ]
    assert result["private"] is True
    assert result["public"] is False
    assert result["duplicate"]["status"] == 409
    assert result["anonymous"]["type"] == "RepositoryNotFoundError"
    assert result["missing"]["type"] == "RepositoryNotFoundError"
    assert result["not_mine"]["status"] == 403
    assert result["files"] == [".gitattributes"]


def test_requests_without_a_token_are_unauthorized(client: Client):
    result = client(
        """
        from huggingface_hub.utils import get_session
        whoami = get_session().get(os.environ["HF_ENDPOINT"] + "/api/whoami-v2")
        emit({"whoami": whoami.status_code,
              "create": error_of(lambda: api.create_repo("ainative/x"))})
        """,
        token=None,
    )
    assert result["whoami"] == 401
    assert result["create"]["status"] == 401


def test_uploaded_files_download_singly_and_as_a_snapshot_into_an_empty_cache(
    client: Client, tmp_path: Path
):
    write_files(tmp_path / "model", {"config.json": '{"a": 1}', "weights/part-1.bin": "0101"})
    uploaded = client("""
        api.create_repo("ainative/tiny")
        api.upload_folder(folder_path=work / "model", repo_id="ainative/tiny",
                          commit_message="Add model")
        info = api.upload_file(path_or_fileobj=b"# Tiny\\n", path_in_repo="README.md",
                               repo_id="ainative/tiny", commit_message="Add card")
        api.create_repo("ainative/tiny-data", repo_type="dataset")
        api.upload_file(path_or_fileobj=b'{"q": 1}\\n', path_in_repo="train.jsonl",
                        repo_id="ainative/tiny-data", repo_type="dataset", commit_message="Data")
        config = hf_hub_download("ainative/tiny", "config.json")
        data = hf_hub_download("ainative/tiny-data", "train.jsonl", repo_type="dataset")
        emit({"commit": info.oid, "config": open(config).read(), "data": open(data).read(),
              "missing": error_of(lambda: hf_hub_download("ainative/tiny", "nope.txt")),
              "bad_revision": error_of(
                  lambda: hf_hub_download("ainative/tiny", "config.json", revision="nope"))})
    """)
    assert uploaded["config"] == '{"a": 1}'
    assert uploaded["data"] == '{"q": 1}\n'
    assert uploaded["missing"]["type"] == "RemoteEntryNotFoundError"
    assert uploaded["bad_revision"]["type"] == "RevisionNotFoundError"

    snapshot = client(
        """
        folder = pathlib.Path(snapshot_download("ainative/tiny"))
        emit({"commit": folder.name, "files": {
            str(p.relative_to(folder)): p.read_text() for p in sorted(folder.rglob("*"))
            if p.is_file()}})
        """,
        hf_home=tmp_path / "empty-cache",
    )
    assert snapshot["commit"] == uploaded["commit"]
    assert snapshot["files"]["config.json"] == '{"a": 1}'
    assert snapshot["files"]["weights/part-1.bin"] == "0101"
    assert snapshot["files"]["README.md"] == "# Tiny\n"
    assert ".gitattributes" in snapshot["files"]


def test_an_unchanged_reupload_sends_no_file_content(
    client: Client, hub: EmulatorServer, tmp_path: Path
):
    write_files(tmp_path / "model", {"a.txt": "alpha", "b/c.txt": "gamma"})
    code = """
        api.create_repo("ainative/same", exist_ok=True)
        info = api.upload_folder(folder_path=work / "model", repo_id="ainative/same",
                                 commit_message="Upload")
        emit({"commit": info.oid, "history": len(api.list_repo_commits("ainative/same"))})
    """
    first = client(code)
    blobs = hub.ctx.store.blobs.count()
    hub.clear_requests()
    second = client(code)
    assert second == first
    assert hub.ctx.store.blobs.count() == blobs
    paths = [(r["method"], r["path"]) for r in hub.requests()]
    assert ("POST", "/api/models/ainative/same/preupload/main") in paths
    assert ("POST", "/api/models/ainative/same/commit/main") not in paths


def test_delete_patterns_remove_stray_files(client: Client, tmp_path: Path):
    write_files(tmp_path / "v1", {"app.py": "v1", "stray.txt": "old", "old/data.csv": "x"})
    write_files(tmp_path / "v2", {"app.py": "v2"})
    files = client("""
        api.create_repo("ainative/synced")
        api.upload_folder(folder_path=work / "v1", repo_id="ainative/synced", commit_message="v1")
        api.upload_folder(folder_path=work / "v2", repo_id="ainative/synced", commit_message="v2",
                          delete_patterns="*")
        emit(api.list_repo_files("ainative/synced"))
    """)
    assert files == [".gitattributes", "app.py"]


def test_tags_and_branches_pin_what_is_downloaded(client: Client):
    result = client("""
        repo = "ainative/versioned"
        api.create_repo(repo)
        v1 = api.upload_file(path_or_fileobj=b"one", path_in_repo="w.txt", repo_id=repo,
                             commit_message="v1").oid
        api.create_tag(repo, tag="v1", tag_message="first")
        api.create_branch(repo, branch="dev")
        api.upload_file(path_or_fileobj=b"two", path_in_repo="w.txt", repo_id=repo,
                        commit_message="v2")
        api.upload_file(path_or_fileobj=b"dev", path_in_repo="w.txt", repo_id=repo,
                        revision="dev", commit_message="on dev")
        refs = api.list_repo_refs(repo)
        read = lambda rev: open(hf_hub_download(repo, "w.txt", revision=rev)).read()
        emit({
            "v1": v1,
            "tags": [(t.name, t.target_commit) for t in refs.tags],
            "branches": sorted(b.name for b in refs.branches),
            "at_tag": read("v1"), "at_commit": read(v1), "at_main": read("main"),
            "at_dev": read("dev"),
            "duplicate_tag": error_of(lambda: api.create_tag(repo, tag="v1")),
            "titles": [c.title for c in api.list_repo_commits(repo)],
        })
    """)
    assert result["tags"] == [["v1", result["v1"]]]
    assert result["branches"] == ["dev", "main"]
    assert (result["at_tag"], result["at_commit"]) == ("one", "one")
    assert (result["at_main"], result["at_dev"]) == ("two", "dev")
    assert result["duplicate_tag"]["status"] == 409
    assert result["titles"] == ["v2", "v1", "initial commit"]


def test_a_stale_parent_commit_is_refused_and_changes_nothing(client: Client):
    result = client("""
        from huggingface_hub import CommitOperationAdd
        repo = "ainative/guarded"
        api.create_repo(repo)
        base = api.upload_file(path_or_fileobj=b"base", path_in_repo="f.txt", repo_id=repo,
                               commit_message="base").oid
        head = api.upload_file(path_or_fileobj=b"moved", path_in_repo="f.txt", repo_id=repo,
                               commit_message="someone else").oid
        stale = error_of(lambda: api.create_commit(
            repo, [CommitOperationAdd("f.txt", b"mine")], commit_message="mine",
            parent_commit=base))
        fresh = api.create_commit(repo, [CommitOperationAdd("g.txt", b"ok")],
                                  commit_message="fresh", parent_commit=head).oid
        emit({"stale": stale, "head": head, "fresh_parent_ok": fresh != head,
              "content": open(hf_hub_download(repo, "f.txt", revision=head)).read()})
    """)
    assert result["stale"]["status"] == 412
    assert "A commit has happened since" in result["stale"]["message"]
    assert result["content"] == "moved"
    assert result["fresh_parent_ok"] is True


def test_a_model_card_with_eval_results_round_trips(client: Client):
    result = client("""
        from huggingface_hub import ModelCard, metadata_update
        repo = "ainative/carded"
        api.create_repo(repo)
        api.upload_file(path_or_fileobj=b"---\\nlicense: apache-2.0\\n---\\n# Carded\\n",
                        path_in_repo="README.md", repo_id=repo, commit_message="card")
        metadata_update(repo, {"model-index": [{"name": "carded", "results": [{
            "task": {"type": "text-generation"},
            "dataset": {"type": "kwanzaa", "name": "Kwanzaa eval"},
            "metrics": [{"type": "citation_f1", "value": 0.87, "name": "Citation F1"}]}]}]})
        card = ModelCard.load(repo)
        info = api.model_info(repo)
        broken = error_of(lambda: api.upload_file(path_or_fileobj=b"---\\nfoo: [\\n---\\n",
                                                  path_in_repo="README.md", repo_id=repo,
                                                  commit_message="broken"))
        emit({"results": [(r.metric_type, r.metric_value, r.dataset_name)
                          for r in card.data.eval_results],
              "license": card.data.license, "tags": info.tags,
              "card_license": info.card_data.license, "broken": broken})
    """)
    assert result["results"] == [["citation_f1", 0.87, "Kwanzaa eval"]]
    assert result["license"] == "apache-2.0"
    assert result["card_license"] == "apache-2.0"
    assert "license:apache-2.0" in result["tags"]
    assert result["broken"]["type"] == "ValueError"


def test_space_secrets_variables_hardware_and_runtime(client: Client):
    result = client("""
        repo = "ainative/settings-space"
        api.create_repo(repo, repo_type="space", space_sdk="docker")
        api.add_space_secret(repo, "HF_TOKEN", "hf_secret_value", description="push token")
        api.add_space_secret(repo, "OTHER", "x")
        api.delete_space_secret(repo, "OTHER")
        api.add_space_variable(repo, "MODEL", "tiny")
        after_delete = api.delete_space_variable(repo, "MODEL")
        api.add_space_variable(repo, "EPOCHS", "3")
        requested = api.request_space_hardware(repo, "t4-small", sleep_time=3600)
        runtime = wait_stage(repo, ["NO_APP_FILE"])
        paused = api.pause_space(repo)
        secrets = api.get_space_secrets(repo)
        emit({
            "secrets": {k: v.description for k, v in secrets.items()},
            "variables": {k: v.value for k, v in api.get_space_variables(repo).items()},
            "after_delete": list(after_delete),
            "requested": [requested.requested_hardware, requested.sleep_time],
            "stage": runtime.stage, "paused": paused.stage,
            "info_stage": api.space_info(repo).runtime.stage,
            "bad_hardware": error_of(lambda: api.request_space_hardware(repo, "quantum")),
        })
    """)
    assert result["secrets"] == {"HF_TOKEN": "push token"}
    assert result["variables"] == {"EPOCHS": "3"}
    assert result["after_delete"] == []
    assert result["requested"] == ["t4-small", 3600]
    assert result["stage"] == "NO_APP_FILE"
    assert result["paused"] == "PAUSED"
    assert result["info_stage"] == "PAUSED"
    assert result["bad_hardware"]["status"] == 400


def _port_closed(port: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        except OSError:
            return True
        time.sleep(0.05)
    return False


def test_a_space_app_runs_writes_to_a_model_repo_and_pauses_itself(
    client: Client, hub: EmulatorServer, tmp_path: Path
):
    write_files(tmp_path / "space", {"README.md": DOCKER_README, "app.py": SPACE_APP})
    result = client("""
        space, target = "ainative/trainer", "ainative/trained-model"
        api.create_repo(target)
        api.create_repo(space, repo_type="space", space_sdk="docker")
        api.add_space_secret(space, "HF_TOKEN", os.environ["HF_TOKEN"])
        api.add_space_variable(space, "TARGET_REPO", target)
        api.upload_folder(folder_path=work / "space", repo_id=space, repo_type="space",
                          commit_message="Sync the Space")
        runtime = wait_stage(space, ["PAUSED", "RUNTIME_ERROR", "BUILD_ERROR"])
        emit({"stage": runtime.stage, "error": runtime.raw.get("errorMessage"),
              "hardware": runtime.hardware,
              "result": open(hf_hub_download(target, "result.txt")).read(),
              "logs": list(api.fetch_space_logs(space)),
              "build": list(api.fetch_space_logs(space, build=True))})
    """)
    assert result["stage"] == "PAUSED", result
    assert result["hardware"] is None
    assert result["result"] == "written by ainative/trainer"
    assert result["logs"] == [], "a paused Space's run log went with its container"
    assert any("Materialised" in line for line in result["build"])
    # The app authenticated with its secret; the emulator never logs the token itself.
    app_requests = [r for r in hub.requests() if r["path"].endswith("/pause")]
    assert app_requests
    assert app_requests[0]["headers"]["authorization"] == "Bearer <redacted>"
    assert TOKEN not in json.dumps(hub.requests())


def test_a_running_space_answers_on_its_port_and_stops_with_the_emulator(tmp_path: Path):
    app = (
        "import http.server, os\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def do_GET(self):\n"
        "        self.send_response(200); self.end_headers()\n"
        "        self.wfile.write(os.environ['GREETING'].encode())\n"
        "http.server.HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()\n"
    )
    write_files(tmp_path / "space", {"README.md": DOCKER_README, "app.py": app})
    with EmulatorServer(tmp_path / "hub-data") as hub:
        runtime = make_client(hub.endpoint, tmp_path)("""
            space = "ainative/server"
            api.create_repo(space, repo_type="space", space_sdk="docker")
            api.add_space_variable(space, "GREETING", "hello from the Space")
            api.upload_folder(folder_path=work / "space", repo_id=space, repo_type="space",
                              commit_message="serve")
            emit(wait_stage(space, ["RUNNING", "RUNTIME_ERROR"]).raw)
        """)
        assert runtime["stage"] == "RUNNING"
        assert runtime["hardware"] == {"current": "cpu-basic", "requested": "cpu-basic"}
        assert httpx.get(runtime["localUrl"]).text == "hello from the Space"
    port = int(runtime["localUrl"].rsplit(":", 1)[1])
    assert _port_closed(port), "the Space's app outlived the emulator"


def test_a_space_whose_readme_names_no_sdk_ends_in_config_error(client: Client, tmp_path: Path):
    readme = "---\ntitle: x\n---\n"
    write_files(tmp_path / "space", {"README.md": readme, "app.py": "raise SystemExit(3)\n"})
    result = client("""
        space = "ainative/no-sdk-space"
        api.create_repo(space, repo_type="space", space_sdk="docker")
        api.upload_folder(folder_path=work / "space", repo_id=space, repo_type="space",
                          commit_message="no sdk")
        runtime = wait_stage(space, ["CONFIG_ERROR", "RUNTIME_ERROR"])
        emit({"stage": runtime.stage, "error": runtime.raw["errorMessage"],
              "logs": list(api.fetch_space_logs(space))})
    """)
    assert result["stage"] == "CONFIG_ERROR"
    assert "found sdk: None" in result["error"]
    assert result["logs"] == []


def test_a_failing_app_ends_in_runtime_error_with_its_log_served(client: Client, tmp_path: Path):
    app = "print('loading the dataset', flush=True)\nraise SystemExit('boom: no GPU here')\n"
    write_files(tmp_path / "space", {"README.md": DOCKER_README, "app.py": app})
    result = client("""
        space = "ainative/crashing"
        api.create_repo(space, repo_type="space", space_sdk="docker")
        api.upload_folder(folder_path=work / "space", repo_id=space, repo_type="space",
                          commit_message="crash")
        runtime = wait_stage(space, ["RUNTIME_ERROR", "RUNNING", "PAUSED"])
        emit({"stage": runtime.stage, "error": runtime.raw["errorMessage"],
              "logs": list(api.fetch_space_logs(space))})
    """)
    assert result["stage"] == "RUNTIME_ERROR"
    assert result["error"].startswith("Exit code: 1.")
    assert "loading the dataset" in result["logs"]
    assert "boom: no GPU here" in result["logs"]


def test_scripted_space_outcomes_replace_running_the_app(
    client: Client, hub: EmulatorServer, tmp_path: Path
):
    write_files(tmp_path / "space", {"README.md": DOCKER_README, "app.py": SPACE_APP})
    space = "ainative/scripted"
    hub.script_space(space, "BUILD_ERROR", times=1)
    result = client("""
        space = "ainative/scripted"
        api.create_repo(space, repo_type="space", space_sdk="docker")
        api.upload_folder(folder_path=work / "space", repo_id=space, repo_type="space",
                          commit_message="sync")
        emit(wait_stage(space, ["BUILD_ERROR", "RUNNING", "PAUSED"]).stage)
    """)
    assert result == "BUILD_ERROR"

    hub.script_space(space, "RUNTIME_ERROR", times=1)
    crashed = client(f"""
        api.restart_space("{space}")
        emit(wait_stage("{space}", ["RUNTIME_ERROR", "PAUSED"]).stage)
    """)
    assert crashed == "RUNTIME_ERROR"

    hub.script_space(space, "hang", stage="APP_STARTING")
    hung = client(f"""
        api.restart_space("{space}")
        wait_stage("{space}", ["APP_STARTING"])
        time.sleep(0.5)
        emit([api.get_space_runtime("{space}").stage, api.pause_space("{space}").stage])
    """)
    assert hung == ["APP_STARTING", "PAUSED"]


def test_repos_and_spaces_persist_across_a_restart(tmp_path: Path):
    data = tmp_path / "persistent"
    with EmulatorServer(data) as first:
        # Seeding bypasses the namespace check: base models belong to others on the real Hub.
        base = first.seed(
            "HuggingFaceTB/SmolLM2-135M-Instruct", {"config.json": b"{}"}, tag="pinned"
        )
        written = make_client(first.endpoint, tmp_path)("""
            api.create_repo("ainative/kept", private=True)
            oid = api.upload_file(path_or_fileobj=b"kept", path_in_repo="k.txt",
                                  repo_id="ainative/kept", commit_message="keep").oid
            api.create_tag("ainative/kept", tag="v1")
            api.create_repo("ainative/kept-space", repo_type="space", space_sdk="docker")
            api.add_space_variable("ainative/kept-space", "LR", "2e-4")
            api.pause_space("ainative/kept-space")
            emit(oid)
        """)
    with EmulatorServer(data) as second:
        assert second.runtime("ainative/kept-space")["stage"] == "PAUSED"
        result = make_client(second.endpoint, tmp_path)(
            """
            emit({"sha": api.model_info("ainative/kept").sha,
                  "base": api.model_info("HuggingFaceTB/SmolLM2-135M-Instruct",
                                         revision="pinned").sha,
                  "private": api.model_info("ainative/kept").private,
                  "at_tag": open(hf_hub_download("ainative/kept", "k.txt", revision="v1")).read(),
                  "variables": {k: v.value for k, v in
                                api.get_space_variables("ainative/kept-space").items()}})
            """,
            hf_home=tmp_path / "fresh-cache",
        )
    assert result == {
        "sha": written,
        "base": base,
        "private": True,
        "at_tag": "kept",
        "variables": {"LR": "2e-4"},
    }


def test_an_injected_503_is_retried_and_both_attempts_are_in_the_request_log(
    client: Client, hub: EmulatorServer
):
    client('api.create_repo("ainative/flaky"); emit(True)')
    hub.fail(method="POST", path=r"/api/models/.+/preupload/.+", status=503, times=1, retry_after=0)
    hub.clear_requests()
    result = client("""
        emit(api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="ainative/flaky",
                             commit_message="despite a 503").oid)
    """)
    preuploads = [
        (r["status"], r["fault"]) for r in hub.requests() if r["path"].endswith("/preupload/main")
    ]
    assert preuploads == [(503, "status 503"), (200, None)]
    assert len(result) == 40


def test_reset_and_timeout_faults_surface_as_transport_errors(client: Client, hub: EmulatorServer):
    client('api.create_repo("ainative/unreliable"); emit(True)')
    hub.fail(method="GET", path=r"^/api/models/ainative/unreliable$", mode="reset", times=1)
    hub.fail(method="GET", path=r"^/api/models/ainative/unreliable$", mode="timeout", delay=2)
    result = client("""
        reset = error_of(lambda: api.model_info("ainative/unreliable"))
        timeout = error_of(lambda: api.model_info("ainative/unreliable", timeout=0.5))
        emit({"reset": reset["type"], "timeout": timeout["type"],
              "then": api.model_info("ainative/unreliable").id})
    """)
    assert result["reset"] in ("ReadError", "RemoteProtocolError", "ConnectError")
    assert result["timeout"] == "ReadTimeout"
    assert result["then"] == "ainative/unreliable"
    faults = [r["fault"] for r in hub.requests() if r["fault"]]
    assert faults == ["reset", "timeout"]


def test_the_control_api_drives_faults_and_reads_the_request_log_over_http(hub: EmulatorServer):
    with httpx.Client(base_url=hub.endpoint) as http:
        rule = http.post(
            "/_emulator/faults", json={"method": "GET", "path": "^/api/whoami-v2$", "status": 429}
        ).json()
        assert rule["remaining"] == 1
        first = http.get("/api/whoami-v2", headers={"Authorization": f"Bearer {TOKEN}"})
        second = http.get("/api/whoami-v2", headers={"Authorization": f"Bearer {TOKEN}"})
        log = http.get("/_emulator/requests").json()
        bad = http.post("/_emulator/spaces/script", json={"repo_id": "a/b", "outcome": "nope"})
    assert (first.status_code, second.status_code) == (429, 200)
    statuses = [(e["path"], e["status"]) for e in log]
    assert statuses == [("/api/whoami-v2", 429), ("/api/whoami-v2", 200)]
    assert bad.status_code == 400


# A Space app that says whether an earlier run left a file in its temporary directory, leaves
# one, and pauses its Space.
TMP_APP = """
import os, tempfile
from huggingface_hub import HfApi

scratch = tempfile.gettempdir()
marker = os.path.join(scratch, "left-by-an-earlier-run")
found = os.path.exists(marker)
open(marker, "w").write("x")
api = HfApi(token=os.environ["HF_TOKEN"])
api.upload_file(path_or_fileobj=f"{scratch}|{found}".encode(), path_in_repo="tmp.txt",
                repo_id=os.environ["TARGET_REPO"])
api.pause_space(os.environ["SPACE_ID"])
"""


def test_every_start_of_a_space_app_gets_an_empty_temporary_directory_of_its_own(
    client: Client, hub: EmulatorServer, tmp_path: Path
):
    """As a Space's container does: a file the run left in /tmp (a kept adapter) is gone at
    the next start, and never shared with the host or another emulator."""
    write_files(tmp_path / "space", {"README.md": DOCKER_README, "app.py": TMP_APP})
    result = client("""
        space, target = "ainative/trainer", "ainative/trained-model"
        api.create_repo(target)
        api.create_repo(space, repo_type="space", space_sdk="docker")
        api.add_space_secret(space, "HF_TOKEN", os.environ["HF_TOKEN"])
        api.add_space_variable(space, "TARGET_REPO", target)
        api.upload_folder(folder_path=work / "space", repo_id=space, repo_type="space")
        seen = []
        for _ in range(2):
            wait_stage(space, ["PAUSED"])
            seen.append(open(hf_hub_download(target, "tmp.txt", force_download=True)).read())
            api.restart_space(space)
        emit(seen)
    """)
    scratch = {line.split("|")[0] for line in result}
    assert [line.split("|")[1] for line in result] == ["False", "False"], result
    assert len(scratch) == 1
    assert Path(scratch.pop()).is_relative_to(tmp_path / "hub-data"), result
