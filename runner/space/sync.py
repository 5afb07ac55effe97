"""Run one training in a Space: sync the rendered files, configure, start, watch, pause.

The Space is ours and holds nothing by hand: every sync makes its files exactly the render
(a hand-added `requirements.txt` is deleted), sets the `HF_TOKEN` secret and the variables
(the run config), requests the hardware and starts it once. The watch ends at a terminal
stage or the timeout, and the Space is paused in every case, so no GPU idles.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from runner.errors import RunnerError, SpecError
from runner.findings import has_errors
from runner.hub.client import HubClient, HubError, RepoRef, SpaceState
from runner.policy.loading import Policies
from runner.policy.space import check_space
from runner.space.render import render_space
from runner.specs.bundle import AdapterBundle

ACTIVE = frozenset({"BUILDING", "APP_STARTING", "RUNNING", "RUNNING_BUILDING"})
FAILED = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"})
STOPPED = frozenset({"PAUSED", "STOPPED", "SLEEPING"})
# A Space that was paused may still report PAUSED for a moment after it is started.
START_GRACE_S = 60.0


class SpaceRunError(RunnerError):
    """The Space run ended without the app finishing: build or runtime error, or timeout."""


@dataclass(frozen=True)
class SpaceRun:
    space_id: str
    stage: str
    """The terminal stage, or `TIMEOUT`."""
    message: str
    log_tail: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """The app ran to its end and paused the Space itself."""
        return self.stage in STOPPED


@dataclass
class Watch:
    """How to watch: the timeout, the polling interval, and callbacks for a progress view."""

    timeout_s: float
    poll_s: float = 2.0
    on_stage: Callable[[str], None] | None = None
    on_log: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def space_id_for(bundle: AdapterBundle) -> str:
    target = bundle.adapter.training
    return target.space_id or f"{bundle.adapter.publish.repo_id.split('/')[0]}/adapter-trainer"


def checked_render(bundle: AdapterBundle, policies: Policies, space_id: str) -> dict[str, str]:
    """The Space's files, or a SpecError when they break `policies/space.yaml`: a failing
    render is never synced."""
    files = render_space(bundle.dirname, bundle.adapter.training.engine)
    if policies.space is None:
        raise RunnerError("policies/space.yaml is missing or invalid; it guards every sync")
    found = check_space(files, policies.space, policies.text, where=f"space:{space_id}")
    if has_errors(found):
        raise SpecError(f"the rendered Space for {bundle.dirname} breaks its policy", found)
    return files


def sync_space(
    client: HubClient,
    space_id: str,
    files: Mapping[str, str],
    *,
    secrets: Mapping[str, str],
    variables: Mapping[str, str],
) -> list[str]:
    """Make the Space hold exactly `files` with these secrets and variables, paused.
    Returns the stray files that were deleted."""
    repo = RepoRef(space_id, "space")
    client.ensure_repo(repo, private=True)
    client.pause_space(space_id)  # nothing may start half-configured
    before = set(client.file_oids(repo))
    for key, value in secrets.items():
        client.set_space_secret(space_id, key, value)
    for key, value in variables.items():
        client.set_space_variable(space_id, key, value)
    with tempfile.TemporaryDirectory(prefix="space-") as tmp:
        folder = Path(tmp)
        for name, text in files.items():
            (folder / name).write_text(text, encoding="utf-8")
        client.sync_folder(repo, folder, "Sync the training Space")
    return sorted(before - set(files) - {".gitattributes"})


def start_space(client: HubClient, space_id: str, hardware: str) -> None:
    client.request_space_hardware(space_id, hardware)
    if client.space_runtime(space_id).stage in STOPPED:
        client.restart_space(space_id)  # the Hub may keep a paused Space paused


def watch_space(client: HubClient, space_id: str, watch: Watch) -> SpaceRun:
    """Poll the stage until the app finishes, fails or the timeout passes; the Space is
    paused on every way out, and a failure carries the log tail."""
    try:
        state = _wait_for_end(client, space_id, watch, lambda: _follow(client, space_id, watch))
    finally:
        _pause_quietly(client, space_id)
    if state is None:
        tail = client.space_log_tail(space_id)
        minutes = watch.timeout_s / 60
        message = f"no terminal stage after {minutes:g} min; paused the Space"
        return SpaceRun(space_id, "TIMEOUT", message, tail)
    if state.stage in STOPPED:
        return SpaceRun(space_id, state.stage, "the app finished and paused the Space")
    tail = client.space_log_tail(space_id, build=state.stage == "BUILD_ERROR")
    message = f"{state.stage}: {state.error or 'no error message'}; paused the Space"
    return SpaceRun(space_id, state.stage, message, tail)


def _wait_for_end(
    client: HubClient, space_id: str, watch: Watch, start_follow: Callable[[], None]
) -> SpaceState | None:
    deadline = watch.clock() + watch.timeout_s
    grace_end = watch.clock() + START_GRACE_S
    seen_active, last_stage, following = False, "", False
    while watch.clock() < deadline:
        state = client.space_runtime(space_id)
        if state.stage != last_stage:
            last_stage = state.stage
            if watch.on_stage:
                watch.on_stage(state.stage)
        if state.stage == "RUNNING" and not following and watch.on_log:
            following = True
            start_follow()
        seen_active = seen_active or state.stage in ACTIVE
        if state.stage in FAILED:
            return state
        if state.stage in STOPPED and (seen_active or watch.clock() > grace_end):
            return state
        watch.sleep(watch.poll_s)
    return None


def _follow(client: HubClient, space_id: str, watch: Watch) -> None:
    """Feed run log lines to `watch.on_log` from a daemon thread until the stream ends."""

    def pump() -> None:
        try:
            for line in client.follow_space_log(space_id):
                assert watch.on_log is not None
                watch.on_log(line)
        except Exception:  # a dropped log stream only costs progress display
            return

    threading.Thread(target=pump, name=f"logs {space_id}", daemon=True).start()


def _pause_quietly(client: HubClient, space_id: str) -> None:
    try:
        if client.space_runtime(space_id).stage != "PAUSED":
            client.pause_space(space_id)
    except HubError:
        client.pause_space(space_id)  # one more try; if that fails, the error says so


def describe_failure(run: SpaceRun) -> str:
    """The message a user reads when a Space run did not finish: stage, reason, log tail."""
    lines = [f"Space {run.space_id}: {run.message}"]
    if run.log_tail:
        kind = "build" if run.stage == "BUILD_ERROR" else "run"
        lines.append(f"last {len(run.log_tail)} line(s) of the {kind} log:")
        lines += [f"  | {line}" for line in run.log_tail]
    return "\n".join(lines)
