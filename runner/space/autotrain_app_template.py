"""Space entry point for the `autotrain` engine, rendered as app.py: health and status on
$PORT, one AutoTrain Advanced run started at boot, and the Space paused at the end.

AutoTrain 0.8.36 swallows its errors and exits 0, and pushes only to
`<hub.username>/<project_name>`. So its exit code is ignored and the run is judged by its
artifacts: `adapter_config.json` and `adapter_model.safetensors` in that repo, committed after
this run started. They are copied, in one commit, to the run config's `output` folder with a
`run.json` of the shape train.py writes (plus `"engine": "autotrain"`); a failed run uploads
`run.json` with status `failed` and the tail of AutoTrain's log (token redacted).

Environment: `RUN_CONFIG` (the run config JSON train.py reads), `AUTOTRAIN_CONFIG` (the YAML
rendered by the runner; its token is `${HF_TOKEN}`, which AutoTrain's parser resolves from
this environment), `HF_TOKEN` (secret) and `SPACE_ID`.

AutoTrain fetches models and data by id with no revision, so this app downloads the base
model and the train file at the run config's pinned revisions into the local folders the
rendered config names (`inputs/models/<repo>/<revision>`, `inputs/datasets/<repo>/<revision>`)
and refuses a config rendered for other inputs.

Standard library and huggingface_hub only (PyYAML is a dependency of huggingface_hub, and
AutoTrain reads the same text with the same `yaml.safe_load`).
"""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import CommitOperationAdd, HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import RepositoryNotFoundError

ENGINE = "autotrain"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
MODEL_FILES = ["*.json", "*.safetensors", "*.model", "*.txt", "*.jinja", "*.tiktoken"]
LOG_NAME = "autotrain.log"
LOG_TAIL_LINES = 200
PROGRESS_MARKER = "@@progress "  # the same progress events train.py prints
TOKEN_PATTERN = re.compile(r"hf_[A-Za-z0-9]{8,}")
STATE: dict[str, Any] = {"stage": "starting", "status": None, "started_at": time.time()}
HUB_TIMEOUT_S = 60.0  # of silence (connecting, or between bytes): a moving transfer never ends


class StageFailed(Exception):
    def __init__(self, stage: str, error: BaseException) -> None:
        super().__init__(f"{stage}: {type(error).__name__}: {error}")
        self.stage = stage
        self.error = error


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Name the stage in /status and in a progress event; wrap what it raises."""
    STATE["stage"] = name
    print(PROGRESS_MARKER + json.dumps({"stage": name}), flush=True)
    try:
        yield
    except StageFailed:
        raise
    except Exception as error:
        raise StageFailed(name, error) from error


def redact(text: str) -> str:
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        token = os.environ.get(name)
        if token:
            text = text.replace(token, "***")
    return TOKEN_PATTERN.sub("hf_***", text)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# -- Hub requests -----------------------------------------------------------------------------


def bound_hub_requests() -> None:
    """Give every huggingface_hub request of this app a timeout. It sends them with none, so
    a Hub that stopped answering would keep this Space, and its GPU bill, running forever.
    AutoTrain's image pins huggingface_hub 0.x (requests); the runner's tests run 2.x (httpx2)."""
    import huggingface_hub

    default = huggingface_hub.get_session()
    if not hasattr(huggingface_hub, "set_client_factory"):
        bound_requests_sessions(type(default.get_adapter("https://")))
        return
    client_class, follow = type(default), default.follow_redirects
    hooks = {**default.event_hooks, "request": [*default.event_hooks["request"], fill_timeouts]}
    huggingface_hub.set_client_factory(
        lambda: client_class(event_hooks=hooks, follow_redirects=follow, timeout=None)
    )


def fill_timeouts(request: Any) -> None:
    # huggingface_hub passes `timeout=None` on most calls, which overrides a client's default.
    asked = request.extensions.get("timeout") or {}
    request.extensions["timeout"] = {
        kind: HUB_TIMEOUT_S if asked.get(kind) is None else asked[kind]
        for kind in ("connect", "read", "write", "pool")
    }


def bound_requests_sessions(adapter_class: Any) -> None:
    """huggingface_hub 0.x: sessions whose adapter (its own, for its request ids) fills in
    the timeout every call leaves unset."""
    import requests
    from huggingface_hub import configure_http_backend

    class BoundedAdapter(adapter_class):
        def send(self, request: Any, **kwargs: Any) -> Any:
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = HUB_TIMEOUT_S
            return super().send(request, **kwargs)

    def session() -> requests.Session:
        bounded = requests.Session()
        for prefix in ("http://", "https://"):
            bounded.mount(prefix, BoundedAdapter())
        return bounded

    configure_http_backend(backend_factory=session)


# -- config -----------------------------------------------------------------------------------


def read_configs() -> tuple[dict[str, Any], dict[str, Any], str]:
    """The run config, the AutoTrain config and the AutoTrain config's text."""
    run_config = json.loads(os.environ.get("RUN_CONFIG") or "null")
    text = os.environ.get("AUTOTRAIN_CONFIG") or ""
    config = yaml.safe_load(text) if text else None
    if not isinstance(run_config, dict) or not isinstance(config, dict):
        raise ValueError("set RUN_CONFIG (JSON object) and AUTOTRAIN_CONFIG (YAML mapping)")
    if not os.environ.get("HF_TOKEN"):
        raise ValueError("no HF_TOKEN secret: AutoTrain could not push its adapter")
    return run_config, config, text


def check_agreement(run_config: dict[str, Any], config: dict[str, Any]) -> None:
    """Refuse an AutoTrain config rendered for another run or other pinned inputs."""
    base, data = run_config["base_model"], run_config["dataset"]
    expected = {
        "base_model": f"inputs/models/{base['repo_id']}/{base['revision']}",
        "data.path": f"inputs/datasets/{data['repo_id']}/{data['revision']}",
    }
    found = {"base_model": config.get("base_model"), "data.path": config["data"].get("path")}
    problems = [
        f"{k} is {found[k]!r}, expected {v!r}" for k, v in expected.items() if found[k] != v
    ]
    if not str(config.get("project_name", "")).endswith("-" + str(run_config["run_id"])):
        problems.append(f"project_name {config.get('project_name')!r} is not of this run")
    if problems:
        raise ValueError("AUTOTRAIN_CONFIG does not match RUN_CONFIG: " + "; ".join(problems))


def autotrain_repo(config: dict[str, Any]) -> str:
    return f"{config['hub']['username']}/{config['project_name']}"


def autotrain_repo_or_none(config: dict[str, Any]) -> str | None:
    try:
        return autotrain_repo(config)
    except (KeyError, TypeError):
        return None


# -- download ---------------------------------------------------------------------------------


def stage_inputs(run_config: dict[str, Any], config: dict[str, Any], work: Path) -> None:
    """The pinned base model and train file, where the AutoTrain config expects them."""
    base, data = run_config["base_model"], run_config["dataset"]
    snapshot_download(
        base["repo_id"],
        revision=base["revision"],
        allow_patterns=MODEL_FILES,
        local_dir=work / config["base_model"],
    )
    source = hf_hub_download(
        data["repo_id"], data["train_file"], repo_type="dataset", revision=data["revision"]
    )
    target = work / config["data"]["path"] / f"{config['data']['train_split']}.jsonl"
    write_chat_column(Path(source), target, config["data"]["column_mapping"]["text_column"])


def write_chat_column(source: Path, target: Path, column: str) -> None:
    """Only the chat column: AutoTrain loads every column of the file into one Arrow table,
    and our records' other fields (ids, categories, gold citations) are never trained on."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with source.open(encoding="utf-8") as lines, target.open("w", encoding="utf-8") as out:
        for line in lines:
            if line.strip():
                out.write(json.dumps({column: json.loads(line)[column]}) + "\n")


# -- train ------------------------------------------------------------------------------------


def commit_ids(repo_id: str) -> set[str]:
    """Commits of AutoTrain's repo before the run; none when it does not exist yet."""
    try:
        return {commit.commit_id for commit in HfApi().list_repo_commits(repo_id)}
    except RepositoryNotFoundError:
        return set()


def autotrain_env() -> dict[str, str]:
    """This environment without SPACE_ID and ENDPOINT_ID: AutoTrain pauses the Space it finds
    there (and opens a discussion on it) when it ends, which would stop this app before the
    run is judged and copied."""
    env = {k: v for k, v in os.environ.items() if k not in ("SPACE_ID", "ENDPOINT_ID")}
    env["PAUSE_ON_FAILURE"] = "0"
    return env


def run_autotrain(text: str, work: Path) -> int:
    """`autotrain --config` in `work`, its output logged (redacted) to the Space log and to
    `work/autotrain.log`. Returns the exit code, which says nothing about success."""
    config_file = work / "autotrain.yaml"
    config_file.write_text(text, encoding="utf-8")
    command = ["autotrain", "--config", str(config_file)]
    with (
        (work / LOG_NAME).open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command,
            cwd=work,
            env=autotrain_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            clean = redact(line)
            log.write(clean)
            sys.stdout.write(clean)
    return process.returncode


def judge_artifacts(repo_id: str, before: set[str], exit_code: int) -> str:
    """The commit of AutoTrain's repo holding both adapter files, each written by a commit
    made during this run; raises RuntimeError naming what is missing or stale."""
    api = HfApi()
    why = f"AutoTrain exited {exit_code}, which it does even when training failed; see {LOG_NAME}"
    try:
        head = api.model_info(repo_id).sha
        paths = api.get_paths_info(repo_id, list(ADAPTER_FILES), expand=True, revision=head)
        infos = {info.path: info for info in paths}
    except RepositoryNotFoundError:
        raise RuntimeError(f"AutoTrain never created {repo_id} ({why})") from None
    missing = [name for name in ADAPTER_FILES if name not in infos]
    stale = [name for name in ADAPTER_FILES if name in infos and not _new(infos[name], before)]
    if missing:
        raise RuntimeError(f"AutoTrain pushed no {', '.join(missing)} to {repo_id} ({why})")
    if stale:
        raise RuntimeError(
            f"{', '.join(stale)} in {repo_id} predate this run: AutoTrain pushed no new adapter "
            f"({why})"
        )
    return head


def _new(info: Any, before: set[str]) -> bool:
    # A file whose last commit is unknown cannot be shown to come from this run.
    return info.last_commit is not None and info.last_commit.oid not in before


def download_artifacts(repo_id: str, revision: str, work: Path) -> dict[str, Path]:
    return {
        name: Path(hf_hub_download(repo_id, name, revision=revision, local_dir=work / "adapter"))
        for name in ADAPTER_FILES
    }


# -- records and upload -----------------------------------------------------------------------


def run_record(
    run_config: dict[str, Any], config: dict[str, Any], started: str, error: dict[str, str] | None
) -> dict[str, Any]:
    return {
        "run_id": run_config.get("run_id"),
        "adapter": run_config.get("adapter"),
        "engine": ENGINE,
        "status": "failed" if error else "succeeded",
        "error": error,
        "started_at": started,
        "finished_at": now_iso(),
        "config": run_config,
        "autotrain_repo": autotrain_repo_or_none(config),
    }


def upload(run_config: dict[str, Any], files: dict[str, Path], message: str) -> None:
    """All `files` (name in the output folder -> local path) in one commit."""
    output = run_config["output"]
    api = HfApi()
    api.create_repo(output["repo_id"], repo_type=output["repo_type"], exist_ok=True)
    prefix = output["path_in_repo"].strip("/")
    operations = [
        CommitOperationAdd(path_in_repo=f"{prefix}/{name}", path_or_fileobj=str(path))
        for name, path in sorted(files.items())
    ]
    api.create_commit(
        output["repo_id"],
        operations=operations,
        commit_message=message,
        repo_type=output["repo_type"],
    )


def log_tail(work: Path) -> str | None:
    log = work / LOG_NAME
    if not log.is_file():
        return None
    with log.open(encoding="utf-8", errors="replace") as lines:
        return redact("".join(deque(lines, maxlen=LOG_TAIL_LINES)))


def error_record(failure: StageFailed) -> dict[str, str]:
    return {
        "stage": failure.stage,
        "type": type(failure.error).__name__,
        "message": redact(str(failure.error))[:2000],
    }


# -- the run ----------------------------------------------------------------------------------


def train(work: Path, state: dict[str, Any]) -> dict[str, Path]:
    """Every stage up to the adapter files on local disk; raises StageFailed."""
    with stage("config"):
        run_config, config, text = read_configs()
        state.update(run_config=run_config, config=config)
        check_agreement(run_config, config)
    with stage("download"):
        stage_inputs(run_config, config, work)
    with stage("train"):
        repo_id = autotrain_repo(config)
        before = commit_ids(repo_id)
        exit_code = run_autotrain(text, work)  # ignored: see judge_artifacts
        head = judge_artifacts(repo_id, before, exit_code)
    with stage("collect"):
        return download_artifacts(repo_id, head, work)


def run_once() -> str:
    """The whole run; uploads run.json in every case it can. Returns the status."""
    started = now_iso()
    work = Path(tempfile.mkdtemp(prefix="autotrain-run-"))
    state: dict[str, Any] = {"run_config": {}, "config": {}}
    try:
        files = train(work, state)
        with stage("upload"):
            files["run.json"] = write_record(work, state, started, None)
            upload(state["run_config"], files, message(state["run_config"], None))
        return "succeeded"
    except StageFailed as failure:
        print(f"run failed: {redact(str(failure))}", file=sys.stderr, flush=True)
        upload_failure(work, state, started, error_record(failure))
        return "failed"


def write_record(
    work: Path, state: dict[str, Any], started: str, error: dict[str, str] | None
) -> Path:
    path = work / "run.json"
    record = run_record(state["run_config"], state["config"], started, error)
    path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def upload_failure(work: Path, state: dict[str, Any], started: str, error: dict[str, str]) -> None:
    """run.json with status failed, and the log tail when AutoTrain ran."""
    files = {"run.json": write_record(work, state, started, error)}
    tail = log_tail(work)
    if tail is not None:
        (work / "autotrain-tail.log").write_text(tail, encoding="utf-8")
        files[LOG_NAME] = work / "autotrain-tail.log"
    try:
        upload(state["run_config"], files, message(state["run_config"], error))
    except Exception as upload_error:
        print(f"could not upload run.json: {redact(str(upload_error))}", file=sys.stderr)


def message(run_config: dict[str, Any], error: dict[str, str] | None) -> str:
    outcome = f"failed in {error['stage']}" if error else "succeeded"
    run = f"{run_config.get('run_id')} of {run_config.get('adapter')}"
    return f"Candidate {run} (AutoTrain): {outcome}"


def run_and_pause() -> None:
    try:
        STATE["status"] = run_once()
        STATE["stage"] = "finished"
    finally:
        pause_space()  # whatever happened: a Space left running bills its GPU


def pause_space() -> None:
    space = os.environ.get("SPACE_ID")
    if space:
        HfApi(token=os.environ.get("HF_TOKEN")).pause_space(space)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            body, status = b"ok", 200
        elif self.path == "/status":
            body, status = json.dumps(STATE).encode(), 200
        else:
            body, status = b"not found", 404
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    bound_hub_requests()
    threading.Thread(target=run_and_pause, daemon=True).start()
    port = int(os.environ.get("PORT", "7860"))
    ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()


if __name__ == "__main__":
    main()
