"""The live view of a training run: stage, step of total, loss; built from the progress
events the runner reads from train.py (locally or from the Space's log).

On a terminal it is a rich progress bar. In a log (CI, `make demo | tee`) a bar shows nothing
until it ends, so there it is a line per stage and a heartbeat line at least every minute:
a long stage never looks like a hung one.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

HEARTBEAT_S = 60.0


class TrainProgress:
    """A context manager; pass `update` as the event sink (it may be called from any thread)."""

    def __init__(self, console: Console, title: str, *, heartbeat_s: float = HEARTBEAT_S) -> None:
        self.console = console
        self._title = title
        self._live = console.is_terminal
        self._heartbeat_s = heartbeat_s
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(title, total=None, loss="")
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._started = time.monotonic()
        self._stage, self._step, self._loss = "", "", ""

    def __enter__(self) -> TrainProgress:
        self._started = time.monotonic()
        if self._live:
            self._progress.start()
        else:
            threading.Thread(target=self._beat, name="heartbeat", daemon=True).start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self._live:
            self._progress.stop()
        else:
            self._print_status()

    def update(self, event: dict[str, Any]) -> None:
        if "log" in event:
            return  # plain log lines go to train.log / the Space log, not the view
        with self._lock:
            if event.get("removed"):
                stray = ", ".join(event["removed"])
                self.console.print(f"removed files nobody rendered from the Space: {stray}")
            if self._live:
                self._update_bar(event)
            elif self._remember(event):
                self._print_status()

    def _update_bar(self, event: dict[str, Any]) -> None:
        fields: dict[str, Any] = {}
        if event.get("stage"):
            fields["description"] = f"{self._title}: {_stage_of(event)}"
        if "step" in event:
            fields.update(completed=event["step"], total=event.get("total") or None)
        if "loss" in event:
            fields["loss"] = f"loss {event['loss']:.4f}"
        self._progress.update(self._task, **fields)

    def _remember(self, event: dict[str, Any]) -> bool:
        """Keep the event's stage, step and loss for the next line; True on a new stage."""
        stage = _stage_of(event) if event.get("stage") else self._stage
        changed, self._stage = stage != self._stage, stage
        if changed:
            self._step, self._loss = "", ""
        if "step" in event:
            total = event.get("total")
            self._step = f"step {event['step']}" + (f"/{total}" if total else "")
        if "loss" in event:
            self._loss = f"loss {event['loss']:.4f}"
        return changed

    def _beat(self) -> None:
        while not self._stop.wait(self._heartbeat_s):
            with self._lock:
                self._print_status()

    def _print_status(self) -> None:
        """One line: title, stage, step of total, loss, time elapsed."""
        elapsed = int(time.monotonic() - self._started)
        clock = f"{elapsed // 3600}:{elapsed // 60 % 60:02d}:{elapsed % 60:02d}"
        parts = [p for p in (self._stage or "starting", self._step, self._loss) if p]
        line = f"{self._title}: {', '.join(parts)}, {clock} elapsed"
        self.console.print(Text(line), soft_wrap=True)


def _stage_of(event: dict[str, Any]) -> str:
    """`generate base` for a generation event with its role (`generate base (reused)` when the
    run took that role's outputs from the cache), else the stage."""
    words = " ".join(str(event[key]) for key in ("stage", "role") if event.get(key))
    return f"{words} (reused)" if event.get("reused") else words
