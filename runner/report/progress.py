"""The live view of a training run: stage, step of total, loss; built from the progress
events the runner reads from train.py (locally or from the Space's log)."""

from __future__ import annotations

from types import TracebackType
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class TrainProgress:
    """A context manager; pass `update` as the event sink."""

    def __init__(self, console: Console, title: str) -> None:
        self.console = console
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
        self._title = title

    def __enter__(self) -> TrainProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._progress.stop()

    def update(self, event: dict[str, Any]) -> None:
        if "log" in event:
            return  # plain log lines go to train.log / the Space log, not the view
        if event.get("removed"):
            stray = ", ".join(event["removed"])
            self._progress.console.print(f"removed files nobody rendered from the Space: {stray}")
        stage = event.get("stage")
        fields: dict[str, Any] = {}
        if stage:
            fields["description"] = f"{self._title}: {stage}"
        if "step" in event:
            fields.update(completed=event["step"], total=event.get("total") or None)
        if "loss" in event:
            fields["loss"] = f"loss {event['loss']:.4f}"
        self._progress.update(self._task, **fields)
