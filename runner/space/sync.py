"""Run one training in a Space: sync the rendered files, configure, start, watch, pause.

The Space is ours and holds nothing by hand: every sync makes its files exactly the render
(a hand-added `requirements.txt` is deleted), sets the `HF_TOKEN` secret and the variables
(the run config), requests the hardware and starts it once. The watch ends at a terminal
stage or a limit (no progress past the timeout, or the cost ceiling), and the Space is paused
in every case, so no GPU idles.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.errors import InputError, RunnerError, SpecError
from runner.findings import has_errors
from runner.hub.client import HubClient, HubError, RepoRef, SpaceState
from runner.policy.loading import Policies
from runner.policy.repos import space_id_of
from runner.policy.space import check_space
from runner.runs.progress import parse_progress
from runner.space.render import RUNNER_TAG, SpaceApp, made_by_runner, render_space
from runner.specs.bundle import AdapterBundle

# A commit to a running Space passes RUNNING_BUILDING and RUNNING_APP_STARTING on the Hub.
ACTIVE = frozenset(
    {"BUILDING", "APP_STARTING", "RUNNING", "RUNNING_BUILDING", "RUNNING_APP_STARTING"}
)
FAILED = frozenset({"BUILD_ERROR", "RUNTIME_ERROR", "CONFIG_ERROR", "NO_APP_FILE"})
STOPPED = frozenset({"PAUSED", "STOPPED", "SLEEPING"})
# A Space the Hub put to sleep stopped without its app finishing the run.
ASLEEP = "SLEEPING"
FINISHED = STOPPED - {ASLEEP}
# Free hardware sleeps after a fixed 48 h; the Hub takes a sleep time only for paid hardware.
FREE_HARDWARE = "cpu-basic"
NEVER_SLEEP = -1
# A Space that was paused may still report PAUSED for a moment after it is started.
START_GRACE_S = 60.0
README_HEAD_BYTES = 64 * 1024
# The last lines of a run (a Space, a local process or a Job) that a failure message shows.
LOG_TAIL_LINES = 20
# How long a followed run log may take to deliver its last lines once the Space stopped.
FOLLOW_DRAIN_S = 5.0
MAX_FILES_SHOWN = 8


class ForeignSpaceError(InputError):
    """The Space exists and is not the runner's: syncing would wipe someone else's files."""


@dataclass(frozen=True)
class SpaceRun:
    space_id: str
    stage: str
    """The terminal stage, or `TIMEOUT` when a limit stopped the run."""
    message: str
    log_tail: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        """The app ran to its end and paused the Space itself."""
        return self.stage in FINISHED


@dataclass(frozen=True)
class Limits:
    """When the watch stops a run that has not ended. Never before `timeout_s`; past it, once
    `stall_s` pass without progress (a new stage, a step counter that moves); and at
    `ceiling_s`, the cost guard, whatever happens. `*_from` say where each limit came from."""

    timeout_s: float
    stall_s: float
    ceiling_s: float
    timeout_from: str = ""
    ceiling_from: str = ""


@dataclass
class Watch:
    """How to watch: the time limits, the polling interval, and callbacks for a progress view."""

    limits: Limits
    poll_s: float = 2.0
    on_stage: Callable[[str], None] | None = None
    on_log: Callable[[str], None] | None = None
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep


def space_id_for(bundle: AdapterBundle) -> str:
    return space_id_of(bundle.adapter)


def checked_render(
    bundle: AdapterBundle, policies: Policies, space_id: str, app: SpaceApp
) -> dict[str, str]:
    """The Space's files running `app`, or a SpecError when they break `policies/space.yaml`:
    a failing render is never synced."""
    files = render_space(bundle.dirname, app)
    if policies.space is None:
        raise RunnerError("policies/space.yaml is missing or invalid; it guards every sync")
    found = check_space(files, policies.space, policies.text, where=f"space:{space_id}")
    if has_errors(found):
        raise SpecError(f"the rendered Space for {bundle.dirname} breaks its policy", found)
    return files


# The one secret the runner gives a training Space: the token its app pushes and pauses with.
SPACE_TOKEN_SECRET = "HF_TOKEN"


def sync_space(
    client: HubClient,
    space_id: str,
    files: Mapping[str, str],
    *,
    secrets: Mapping[str, str],
    variables: Mapping[str, str],
) -> list[str]:
    """Make the Space hold exactly `files` with these secrets and variables, paused.
    Returns the stray files that were deleted. A Space that exists and was not made by the
    runner is refused before anything is written to it."""
    repo = RepoRef(space_id, "space")
    created = client.ensure_repo(repo, private=True)
    before = set(client.file_oids(repo))
    if not created:
        _require_runner_space(client, repo, before)
    client.pause_space(space_id)  # nothing may start half-configured
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


def space_made_by_runner(client: HubClient, repo: RepoRef, files: set[str]) -> bool:
    """The Space's README.md (among `files`) carries the tag every render puts there."""
    if "README.md" not in files:
        return False
    with client.download(repo, "README.md").open("rb") as readme:
        # The front matter opens the file; a huge README need not be read to find it.
        return made_by_runner(readme.read(README_HEAD_BYTES).decode("utf-8", errors="replace"))


def _require_runner_space(client: HubClient, repo: RepoRef, files: set[str]) -> None:
    """A sync wipes the Space's files and hands its app our HF_TOKEN: it goes ahead only on
    a Space the runner made."""
    if space_made_by_runner(client, repo, files):
        return
    shown = ", ".join(sorted(files)[:MAX_FILES_SHOWN]) + (
        ", ..." if len(files) > MAX_FILES_SHOWN else ""
    )
    raise ForeignSpaceError(
        f"Space {repo.repo_id} exists and was not made by the runner: its README.md has no "
        f"`{RUNNER_TAG}` tag. Nothing was changed on it; a sync would replace its files "
        f"({shown}) and give its app HF_TOKEN. Set training.space_id in adapter.yaml to a new "
        "Space name (the runner creates it) or to a Space the runner made; if this one is a "
        "leftover of an interrupted first sync, delete it and run again."
    )


def start_space(client: HubClient, space_id: str, hardware: str) -> None:
    """Put the Space on `hardware` and start it. Nobody visits a training Space, so on paid
    hardware it must never sleep: a sleep time set by hand would stop the run midway."""
    sleep_time = None if hardware == FREE_HARDWARE else NEVER_SLEEP
    client.request_space_hardware(space_id, hardware, sleep_time=sleep_time)
    if client.space_runtime(space_id).stage in STOPPED:
        client.restart_space(space_id)  # the Hub keeps a paused Space paused


def watch_space(client: HubClient, space_id: str, watch: Watch) -> SpaceRun:
    """Poll the stage until the app finishes or fails, or a limit stops the run; the Space is
    paused on every way out, and the run carries the log tail."""
    progress = RunProgress(watch.clock)
    followed = FollowedLog()
    try:
        ended = _wait_for_end(client, space_id, watch, progress, followed)
        tail = _log_tail(client, space_id, ended, followed)
    finally:
        _pause_quietly(client, space_id)
    if isinstance(ended, str):
        return SpaceRun(space_id, "TIMEOUT", f"{ended}; paused the Space", tail)
    if ended.stage in FINISHED:
        return SpaceRun(space_id, ended.stage, "the app finished and paused the Space", tail)
    message = f"{ended.stage}: {_reason(ended)}; paused the Space"
    return SpaceRun(space_id, ended.stage, message, tail)


class FollowedLog:
    """The run log as the watch follows it: the thread reading it and its last lines."""

    def __init__(self) -> None:
        self.lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
        self.thread: threading.Thread | None = None

    def following(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    def drained(self) -> list[str]:
        """The last lines, once the stream of a stopped Space delivered what it still had."""
        if self.thread is not None:
            self.thread.join(FOLLOW_DRAIN_S)
        return list(self.lines)


def _log_tail(
    client: HubClient, space_id: str, ended: SpaceState | str, followed: FollowedLog
) -> list[str]:
    """The last log lines, read before the watch pauses the Space: the Hub drops a Space's run
    log with its container, so a stopped Space (the app paused itself) has only the lines the
    watch followed while it ran, and a live one is read before its pause."""
    if isinstance(ended, str):
        return list(followed.lines) or client.space_log_tail(space_id, lines=LOG_TAIL_LINES)
    if ended.stage in STOPPED:
        return followed.drained()
    build = ended.stage == "BUILD_ERROR"
    served = client.space_log_tail(space_id, build=build, lines=LOG_TAIL_LINES)
    return served or list(followed.lines)


def _reason(ended: SpaceState) -> str:
    if ended.stage == ASLEEP:
        return (
            "the Hub put the Space to sleep before the app finished: its sleep time ran out "
            "(the runner asks paid hardware never to sleep; cpu-basic sleeps after 48 h idle)"
        )
    return ended.error or "no error message"


class RunProgress:
    """When the run last made progress, read from its log by the following thread. Progress
    is a progress mark (stage, role, step) never printed before: a repeated step is none, and
    neither is a log stream that replays from the start after a reconnect."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._seen: set[tuple[str, str, str]] = set()
        self.last: tuple[float, str] | None = None
        """When the last progress arrived, and what it was."""

    def read(self, line: str) -> None:
        event = parse_progress(line)
        if event is None:
            return
        mark = (str(event.get("stage")), str(event.get("role")), str(event.get("step")))
        if mark not in self._seen:
            self._seen.add(mark)
            self.last = (self._clock(), describe_progress(event))


def describe_progress(event: Mapping[str, Any]) -> str:
    """A progress event in a few words: `train step 53/68`, `generate base step 2/8`."""
    words = [str(event.get("stage", "run")), *([str(event["role"])] if "role" in event else [])]
    if event.get("reused"):  # the run took this role's outputs from the cache
        words.append("(reused)")
    if "step" in event:
        words.append(f"step {event['step']}" + (f"/{event['total']}" if event.get("total") else ""))
    return " ".join(words)


def _wait_for_end(
    client: HubClient,
    space_id: str,
    watch: Watch,
    progress: RunProgress,
    followed: FollowedLog,
) -> SpaceState | str:
    """The terminal state, or why a limit stopped the run, following the run log meanwhile."""
    started = watch.clock()
    grace_end = started + START_GRACE_S
    seen_active, last_stage = False, ""
    while (stop := why_stop(watch.limits, started, watch.clock(), progress.last)) is None:
        state = client.space_runtime(space_id)
        if state.stage != last_stage:
            last_stage = state.stage
            if watch.on_stage:
                watch.on_stage(state.stage)
        if state.stage == "RUNNING" and not followed.following():  # again if it dropped
            followed.thread = _follow(client, space_id, watch, progress, followed.lines)
        seen_active = seen_active or state.stage in ACTIVE
        if state.stage in FAILED:
            return state
        if state.stage in STOPPED and (seen_active or watch.clock() > grace_end):
            return state
        watch.sleep(watch.poll_s)
    return stop


def why_stop(
    limits: Limits, started: float, now: float, last: tuple[float, str] | None
) -> str | None:
    """Which limit ends the run now, in words; None while it may go on."""
    seen = f"last progress: {last[1]}" if last else "none reported"
    if now - started >= limits.ceiling_s:
        return (
            f"stopped at the hard cost ceiling of {_minutes(limits.ceiling_s)} min"
            f"{_source(limits.ceiling_from)}, {seen}"
        )
    quiet_since = last[0] if last else started
    if now - started < limits.timeout_s or (last and now - quiet_since < limits.stall_s):
        return None
    return (
        f"stopped: no progress for {_minutes(now - quiet_since)} min, past the "
        f"{_minutes(limits.timeout_s)} min timeout{_source(limits.timeout_from)}, {seen}"
    )


def _minutes(seconds: float) -> str:
    return f"{round(seconds / 60, 1):g}"


def _source(origin: str) -> str:
    return f" ({origin})" if origin else ""


def _follow(
    client: HubClient,
    space_id: str,
    watch: Watch,
    progress: RunProgress,
    followed: deque[str],
) -> threading.Thread:
    """Read the run log from a daemon thread until the stream ends: every line feeds the
    progress the limits look at, the tail a report shows, and `watch.on_log` when there is a
    progress view."""

    def pump() -> None:
        try:
            for line in client.follow_space_log(space_id):
                progress.read(line)
                followed.append(line)
                if watch.on_log:
                    watch.on_log(line)
        except Exception:  # a dropped stream is followed again on the next poll
            return

    thread = threading.Thread(target=pump, name=f"logs {space_id}", daemon=True)
    thread.start()
    return thread


def _pause_quietly(client: HubClient, space_id: str) -> None:
    try:
        if client.space_runtime(space_id).stage != "PAUSED":
            client.pause_space(space_id)
    except HubError:
        client.pause_space(space_id)  # one more try; if that fails, the error says so


def describe_failure(run: SpaceRun) -> str:
    """The message a user reads when a Space run did not give what it should: stage, reason,
    log tail, or where the log went when there is none."""
    lines = [f"Space {run.space_id}: {run.message}"]
    kind = "build" if run.stage == "BUILD_ERROR" else "run"
    if run.log_tail:
        lines.append(f"last {len(run.log_tail)} line(s) of the {kind} log:")
        lines += [f"  | {line}" for line in run.log_tail]
    elif run.stage in STOPPED:
        lines.append(
            "no run log: the Hub drops a Space's run log when the Space pauses, and the watch "
            "read no line of it while the app ran (the build log stays on the Space)"
        )
    return "\n".join(lines)
