"""Space runtimes: a Space's `app.py` run as a local process, moving through the Hub's stages.

A start materialises the Space's current tree into a work dir (BUILDING), launches `app.py`
with the Space's secrets and variables in its environment (APP_STARTING), and watches it:
RUNNING once it answers HTTP on the README's `app_port` (7860 unless set), RUNTIME_ERROR
when it exits on its own or never answers there within `startup_duration_timeout` (30 min
unless set). Pausing stops the process, and its run log goes with it (the build log stays).
Every start bumps a generation number, and a watcher only writes the stage while its
generation is current, so a pause or a new start can never be overwritten by a stale
watcher.

As on the Hub, a paused Space stays paused until it is restarted: a commit or a hardware
request only changes what its next start runs on. A commit to a live Space rebuilds it while
the old app keeps serving (RUNNING_BUILDING) until the new one is launched
(RUNNING_APP_STARTING). A running Space with a sleep time goes SLEEPING once it runs out.

Only docker Spaces run: a gradio, streamlit or static Space goes through the same stages (its
app file, `app.py` or `index.html` unless the README's `app_file` names another, must be there;
its build takes a moment) and then counts as RUNNING with nothing serving it, so that pause,
restart, hardware and sleep act on it as on the Hub."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from runner.hub.emulator.blobs import now_iso
from runner.hub.emulator.cards import CardError, front_matter
from runner.hub.emulator.space_apps import (
    PORT_MAP_SHIM,
    AppConfig,
    AppConfigError,
    answers_http,
    container_environment,
    free_port,
    inherited_environment,
    pump_run_log,
    start_process,
    terminate,
)
from runner.hub.emulator.space_logs import LogBook, RunLog
from runner.hub.emulator.space_settings import SDKS, gc_timeout
from runner.hub.emulator.storage import Repo, Store, split_repo_id

LIVE_STAGES = ("BUILDING", "APP_STARTING", "RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING")
# The stages in which an app (the current one, or the old one during a rebuild) holds hardware.
SERVING_STAGES = ("APP_STARTING", "RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING")
# A commit in these stages rebuilds the Space while the app it has keeps running.
ROLLING_STAGES = ("RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING")
Outcome = Literal["BUILD_ERROR", "RUNTIME_ERROR", "hang"]
# SDKs whose apps the emulator does not run (no gradio or streamlit here): their Spaces build
# for this long, standing for the Hub's image build, then count as running.
EMULATED_SDKS = ("gradio", "streamlit", "static")
EMULATED_BUILD_S = 2.0


@dataclass
class Script:
    outcome: Outcome
    stage: str
    remaining: int | None


@dataclass
class SpaceState:
    logs: LogBook
    generation: int = 0
    process: subprocess.Popen[str] | None = None
    port: int | None = None
    watchers: list[threading.Thread] = field(default_factory=list)


class SpaceManager:
    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = root
        self.endpoint = ""  # set once the server has its port: the apps' HF_ENDPOINT
        self._lock = threading.RLock()
        self._states: dict[str, SpaceState] = {}
        self._scripts: dict[str, Script] = {}
        # Processes died with the previous emulator: a Space that was live is now stopped.
        for repo in store.repos("space"):
            if repo.space and repo.space.get("stage") in LIVE_STAGES:
                self._save(repo, stage="STOPPED", errorMessage="The Hub emulator was restarted")

    # -- state ------------------------------------------------------------------------------

    def _state(self, repo_id: str) -> SpaceState:
        with self._lock:
            if repo_id not in self._states:
                namespace, name = split_repo_id(repo_id)
                self._states[repo_id] = SpaceState(LogBook(self.root / namespace / name / "logs"))
            return self._states[repo_id]

    def _save(self, repo: Repo, **changes: Any) -> None:
        with self.store.lock:
            assert repo.space is not None
            repo.space.update(changes)
            if self.store.get("space", repo.id) is repo:  # not deleted meanwhile
                self.store.save(repo)

    def _set(self, repo: Repo, generation: int, **changes: Any) -> bool:
        """Write runtime fields only if `generation` is still the Space's current start."""
        with self._lock:
            if self._state(repo.id).generation != generation:
                return False
            self._save(repo, **changes)
            return True

    def logs(self, repo_id: str) -> LogBook:
        return self._state(repo_id).logs

    def runtime(self, repo: Repo) -> dict[str, Any]:
        settings = repo.space or {}
        stage = settings.get("stage", "NO_APP_FILE")
        state = self._state(repo.id)
        live = stage in SERVING_STAGES
        namespace, name = split_repo_id(repo.id)
        return {
            "stage": stage,
            "hardware": {
                "current": settings.get("hardware") if live else None,
                "requested": settings.get("hardware"),
            },
            "storage": None,
            "gcTimeout": gc_timeout(settings),
            "replicas": {"current": 1 if live else 0, "requested": 1},
            "devMode": settings.get("devMode", False),
            "domains": [{"domain": f"{namespace}-{name}.hf.space", "stage": "READY"}],
            "sdk": settings.get("sdk"),
            "errorMessage": settings.get("errorMessage"),
            # Not on the real Hub: where the emulated app listens, for tests to call it.
            "localUrl": f"http://127.0.0.1:{state.port}" if live and state.port else None,
        }

    # -- control ----------------------------------------------------------------------------

    def script(self, repo_id: str, outcome: Outcome, stage: str, times: int | None) -> None:
        if outcome not in ("BUILD_ERROR", "RUNTIME_ERROR", "hang"):
            raise ValueError(f"outcome must be BUILD_ERROR, RUNTIME_ERROR or hang, not {outcome!r}")
        if stage not in ("BUILDING", "APP_STARTING"):
            raise ValueError(f"a Space can hang in BUILDING or APP_STARTING, not {stage!r}")
        if times is not None and times < 1:
            raise ValueError("times must be at least 1 (or None for every start)")
        with self._lock:
            self._scripts[repo_id] = Script(outcome, stage, times)

    def _take_script(self, repo_id: str) -> Script | None:
        with self._lock:
            script = self._scripts.get(repo_id)
            if script is None:
                return None
            if script.remaining is not None:
                script.remaining -= 1
                if script.remaining <= 0:
                    del self._scripts[repo_id]
            return script

    def start(self, repo: Repo) -> None:
        """(Re)start: stop what runs, then build and run the current tree in the background."""
        self._start(repo, rolling=False)

    def _start(self, repo: Repo, *, rolling: bool) -> None:
        """Build and run the current tree in the background. A rolling start keeps the old
        app serving until the new one is launched; any other start stops it first."""
        with self._lock:
            state = self._state(repo.id)
            state.generation += 1
            generation, old = state.generation, state.process
            if not rolling:
                state.process, state.port = None, None
            logs = state.logs.reset()
            stage = "RUNNING_BUILDING" if rolling else "BUILDING"
            self._save(repo, stage=stage, errorMessage=None, paused=False)
        watcher = threading.Thread(
            target=self._run,
            args=(repo, generation, logs, old, rolling),
            name=f"space {repo.id}",
            daemon=True,
        )
        state.watchers = [w for w in state.watchers if w.is_alive()] + [watcher]
        watcher.start()

    def on_commit(self, repo: Repo) -> None:
        """A new commit rebuilds a Space that is not paused; a running one keeps serving."""
        settings = repo.space or {}
        if settings.get("paused"):
            return
        with self._lock:
            # An emulated app has no process: in a rolling stage, it is serving.
            has_app = self._state(repo.id).process is not None or _emulated(settings)
            self._start(repo, rolling=has_app and settings.get("stage") in ROLLING_STAGES)

    def on_hardware(self, repo: Repo) -> None:
        """New hardware moves a live Space onto it; a paused Space waits for its restart."""
        if not (repo.space or {}).get("paused"):
            self.start(repo)

    def pause(self, repo: Repo) -> None:
        process = self._halt(repo, stage="PAUSED", paused=True)
        if process is not None:
            # Let the pause response reach an app that paused itself before it is stopped.
            threading.Thread(target=terminate, args=(process, 0.2), daemon=True).start()

    def _put_to_sleep(self, repo: Repo, generation: int) -> None:
        """The sleep time ran out: the app stops; a restart (or a commit) wakes the Space."""
        process = self._halt(repo, stage="SLEEPING", paused=False, generation=generation)
        if process is not None:
            terminate(process)

    def _halt(
        self, repo: Repo, *, stage: str, paused: bool, generation: int | None = None
    ) -> subprocess.Popen[str] | None:
        """End the current start (only if it is still `generation`, when given) in `stage`;
        returns the app process for the caller to stop."""
        with self._lock:
            state = self._state(repo.id)
            if generation is not None and state.generation != generation:
                return None
            state.generation += 1
            process, state.process, state.port = state.process, None, None
            self._save(repo, stage=stage, errorMessage=None, paused=paused)
            state.logs.drop_run()
        return process

    def forget(self, repo_id: str) -> None:
        """The Space's repo was deleted: stop it and drop its files."""
        namespace, name = split_repo_id(repo_id)
        with self._lock:
            state = self._state(repo_id)
            state.generation += 1
            process, state.process, state.port = state.process, None, None
            self._scripts.pop(repo_id, None)
        if process is not None:
            terminate(process)
        shutil.rmtree(self.root / namespace / name, ignore_errors=True)
        with self._lock:
            # Fresh logs, but generations keep counting: a watcher of the deleted Space must
            # never match a start of a Space re-created under the same id.
            self._states[repo_id] = SpaceState(
                LogBook(self.root / namespace / name / "logs"), generation=state.generation + 1
            )

    def stop_all(self) -> None:
        with self._lock:
            states = list(self._states.items())
            for _, state in states:
                state.generation += 1
        for repo_id, state in states:
            if state.process is not None:
                terminate(state.process)
                state.process = None
            for watcher in state.watchers:
                watcher.join(timeout=5)
            repo = self.store.get("space", repo_id)
            if repo is not None and repo.space and repo.space.get("stage") in LIVE_STAGES:
                self._save(repo, stage="STOPPED", errorMessage="The Hub emulator stopped")
            state.logs.close()

    # -- one start --------------------------------------------------------------------------

    def _run(
        self,
        repo: Repo,
        generation: int,
        logs: RunLog,
        old: subprocess.Popen[str] | None,
        rolling: bool,
    ) -> None:
        if old is not None and not rolling:
            terminate(old)
            old = None
        try:
            self._build_and_run(repo, generation, logs, old, rolling)
        except Exception as exc:  # an emulator bug must show as a stage, not a silent thread
            logs.add("build", f"Hub emulator error: {exc!r}")
            self._set(repo, generation, stage="BUILD_ERROR", errorMessage=f"emulator: {exc!r}")
        finally:
            logs.close()

    def _retire(self, repo: Repo, generation: int, old: subprocess.Popen[str] | None) -> None:
        """A rolling start's build is over: the old app stops, unless a pause or a newer
        start has already taken it over."""
        if old is None:
            return
        with self._lock:
            state = self._state(repo.id)
            if state.generation != generation or state.process is not old:
                return
            state.process, state.port = None, None
        terminate(old)

    def _end_build(
        self,
        repo: Repo,
        generation: int,
        old: subprocess.Popen[str] | None,
        stage: str,
        message: str | None = None,
    ) -> bool:
        self._retire(repo, generation, old)
        return self._set(repo, generation, stage=stage, errorMessage=message)

    def _card(self, tree: dict[str, Any] | Any) -> dict[str, Any]:
        readme = tree.get("README.md")
        try:
            return front_matter(self.store.blobs.read(readme.sha256).decode()) if readme else {}
        except (CardError, UnicodeDecodeError) as exc:
            return {"_error": str(exc)}

    def _build_and_run(
        self,
        repo: Repo,
        generation: int,
        logs: RunLog,
        old: subprocess.Popen[str] | None,
        rolling: bool,
    ) -> None:
        commit = self.store.resolve(repo, "main")
        logs.add("build", f"===== Build queued at {now_iso()} for commit {commit.id} =====")
        card = self._card(commit.tree)
        sdk = card.get("sdk")
        if sdk not in SDKS:
            message = (
                "Configuration error: README.md front matter must declare `sdk:` as one of "
                f"{', '.join(SDKS)} (found sdk: {sdk!r})"
            )
            logs.add("build", message)
            self._end_build(repo, generation, old, "CONFIG_ERROR", message)
            return
        # The README, not the create request, says what the Space runs (as on the Hub).
        if not self._set(repo, generation, sdk=sdk):
            return
        config: AppConfig | None = None
        if sdk == "docker":
            try:
                config = AppConfig.from_card(card)
            except AppConfigError as exc:
                logs.add("build", str(exc))
                self._end_build(repo, generation, old, "CONFIG_ERROR", str(exc))
                return
        app_file = _app_file(sdk, card)
        if app_file not in commit.tree:
            message = f"No {app_file} in the Space: nothing to run"
            logs.add("build", message)
            self._end_build(repo, generation, old, "NO_APP_FILE", message)
            return

        script = self._take_script(repo.id)
        if script and script.outcome == "BUILD_ERROR":
            logs.add("build", "ERROR: build failed (scripted by the Hub emulator)")
            self._end_build(repo, generation, old, "BUILD_ERROR", "Build failed (scripted)")
            return
        if script and script.outcome == "hang" and script.stage == "BUILDING":
            logs.add("build", "Build is taking its time (scripted hang)")
            return

        workdir: Path | None = None
        if config is not None:
            workdir = self._materialise(repo, commit.tree)
            logs.add("build", f"Materialised {len(commit.tree)} files into {workdir}")
        else:
            logs.add("build", f"Building a {sdk} Space (emulated: its app will not run here)")
            if not self._wait_while_current(repo.id, generation, EMULATED_BUILD_S):
                return
        logs.add("build", "===== Build done =====")
        logs.close("build")
        starting = "RUNNING_APP_STARTING" if rolling else "APP_STARTING"
        if not self._end_build(repo, generation, old, starting):
            return
        if script and script.outcome == "RUNTIME_ERROR":
            logs.add("run", "Traceback: RuntimeError (scripted by the Hub emulator)")
            message = "Exit code: 1. Reason: RuntimeError (scripted)"
            self._set(repo, generation, stage="RUNTIME_ERROR", errorMessage=message)
            return
        if script and script.outcome == "hang":
            logs.add("run", "Application is starting (scripted hang)")
            return
        if config is None or workdir is None:
            self._serve_emulated(repo, generation, logs, sdk)
        else:
            self._launch(repo, generation, workdir, logs, config)

    def _wait_while_current(self, repo_id: str, generation: int, seconds: float) -> bool:
        """Sleep `seconds` unless a pause or a newer start ends this one first: whether it is
        still current."""
        deadline = time.monotonic() + seconds
        while self._state(repo_id).generation == generation:
            if time.monotonic() >= deadline:
                return True
            time.sleep(0.05)
        return False

    def _serve_emulated(self, repo: Repo, generation: int, logs: RunLog, sdk: str) -> None:
        """An app the emulator does not run counts as running until paused, restarted,
        rebuilt or asleep."""
        logs.add("run", f"===== Application Startup at {now_iso()} =====")
        logs.add("run", f"The Hub emulator does not run {sdk} apps: nothing serves this Space")
        if not self._set(repo, generation, stage="RUNNING"):
            return
        running_since = time.monotonic()
        while self._state(repo.id).generation == generation:
            if _slept_in(repo, running_since):
                self._put_to_sleep(repo, generation)
                return
            time.sleep(0.25)

    def _materialise(self, repo: Repo, tree: dict[str, Any] | Any) -> Path:
        namespace, name = split_repo_id(repo.id)
        workdir = self.root / namespace / name / "app"
        shutil.rmtree(workdir, ignore_errors=True)
        for path, entry in tree.items():
            target = workdir / path
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.store.blobs.path(entry.sha256), target)
        return workdir

    def _environment(
        self, repo: Repo, workdir: Path, config: AppConfig, host_port: int
    ) -> dict[str, str]:
        settings = repo.space or {}
        namespace, name = split_repo_id(repo.id)
        env = inherited_environment()
        shim = workdir.parent / "portmap"
        shim.mkdir(parents=True, exist_ok=True)
        (shim / "sitecustomize.py").write_text(PORT_MAP_SHIM, encoding="utf-8")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(shim), env.get("PYTHONPATH")]))
        env.update({k: v["value"] for k, v in settings.get("variables", {}).items()})
        env.update({k: v["value"] for k, v in settings.get("secrets", {}).items()})
        env.update(container_environment(workdir.parent, self.endpoint))
        env.update(
            {
                "SPACE_ID": repo.id,
                "SPACE_AUTHOR_NAME": namespace,
                "SPACE_REPO_NAME": name,
                "SPACE_HOST": f"{namespace}-{name}.hf.space",
                "SYSTEM": "spaces",
                "PORT": str(config.app_port),
                "HUB_EMULATOR_PORT_MAP": f"{config.app_port}:{host_port}",
            }
        )
        return env

    def _launch(
        self, repo: Repo, generation: int, workdir: Path, logs: RunLog, config: AppConfig
    ) -> None:
        port = free_port()
        process = start_process(
            [sys.executable, "-u", "app.py"],
            workdir,
            self._environment(repo, workdir, config, port),
        )
        with self._lock:
            state = self._state(repo.id)
            if state.generation != generation:
                terminate(process)
                return
            state.process, state.port = process, port
        logs.add("run", f"===== Application Startup at {now_iso()} =====")
        reader = threading.Thread(target=pump_run_log, args=(process, logs), daemon=True)
        reader.start()

        running_since: float | None = None
        startup_deadline = time.monotonic() + config.startup_s
        while process.poll() is None:
            if self._state(repo.id).generation != generation:
                return
            if running_since is None and time.monotonic() >= startup_deadline:
                self._startup_timed_out(repo, generation, process, logs, config)
                return
            if running_since is None and answers_http(port):
                if not self._set(repo, generation, stage="RUNNING"):
                    return
                running_since = time.monotonic()
            if running_since is not None and _slept_in(repo, running_since):
                self._put_to_sleep(repo, generation)
                return
            time.sleep(0.05 if running_since is None else 0.25)
        reader.join(timeout=5)
        tail = " | ".join(logs.tail("run", 10))
        message = f"Exit code: {process.returncode}. Reason: {tail}"
        self._set(repo, generation, stage="RUNTIME_ERROR", errorMessage=message)

    def _startup_timed_out(
        self,
        repo: Repo,
        generation: int,
        process: subprocess.Popen[str],
        logs: RunLog,
        config: AppConfig,
    ) -> None:
        """The app never answered on its app_port: the Hub gives up on it as unhealthy."""
        message = (
            f"Launch timed out, workload was not healthy after {config.startup_timeout}: "
            f"nothing answered HTTP on app_port {config.app_port} (README.md front matter). "
            "The app must listen on that port, or app_port must name the port it listens on."
        )
        logs.add("run", message)
        with self._lock:
            if not self._set(repo, generation, stage="RUNTIME_ERROR", errorMessage=message):
                return
            state = self._state(repo.id)
            state.process, state.port = None, None
        terminate(process)


def _emulated(settings: dict[str, Any]) -> bool:
    return settings.get("sdk") in EMULATED_SDKS


def _app_file(sdk: str, card: dict[str, Any]) -> str:
    """The file a Space must hold to be built: the emulator runs a docker Space's `app.py`;
    the other SDKs start from the README's `app_file`."""
    if sdk == "docker":
        return "app.py"
    default = "index.html" if sdk == "static" else "app.py"
    app_file = card.get("app_file", default)
    return app_file if isinstance(app_file, str) and app_file else default


def _slept_in(repo: Repo, running_since: float) -> bool:
    """Whether the Space's sleep time has run out. The emulator does not see visits to the
    app, so a running Space counts as idle from the moment it started running."""
    sleep_time = gc_timeout(repo.space or {})
    return bool(sleep_time and sleep_time > 0 and time.monotonic() - running_since >= sleep_time)
