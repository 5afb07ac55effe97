"""Build and run logs of a Space's latest start, kept in memory for streaming and on disk so
they survive a restart of the emulator."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any, Literal

from runner.hub.emulator.blobs import now_iso

LogKind = Literal["build", "run"]
KINDS: tuple[LogKind, ...] = ("build", "run")


class LogBook:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self.epoch = 0  # bumped on every start and pause: a stream of an older one ends
        self._events: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        self._closed: dict[str, bool] = {k: True for k in KINDS}
        # The run log the last pause or sleep dropped, by its epoch: a stream that was
        # following it still gets the lines printed before the container went away.
        self._dropped: tuple[int, list[dict[str, Any]]] | None = None
        for kind in KINDS:
            path = self._path(kind)
            if path.is_file():
                lines = path.read_text(encoding="utf-8").splitlines()
                self._events[kind] = [json.loads(line) for line in lines if line.strip()]

    def _path(self, kind: str) -> Path:
        return self.folder / f"{kind}.log.jsonl"

    def reset(self) -> RunLog:
        """Empty logs for a new start; returns the writer for that start."""
        with self._lock:
            self.epoch += 1
            self.folder.mkdir(parents=True, exist_ok=True)
            for kind in KINDS:
                self._events[kind] = []
                self._closed[kind] = False
                self._path(kind).write_text("", encoding="utf-8")
            return RunLog(self, self.epoch)

    def add(self, kind: LogKind, line: str, *, epoch: int | None = None) -> None:
        event = {"data": line, "timestamp": now_iso()}
        with self._lock:
            if epoch is not None and epoch != self.epoch:
                return
            self._events[kind].append(event)
            self.folder.mkdir(parents=True, exist_ok=True)
            with self._path(kind).open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(event) + "\n")

    def close(self, *kinds: LogKind, epoch: int | None = None) -> None:
        with self._lock:
            if epoch is not None and epoch != self.epoch:
                return
            for kind in kinds or KINDS:
                self._closed[kind] = True

    def drop_run(self) -> None:
        """The app's container is gone (paused, asleep): on the Hub its run log goes with it,
        while the build log stays. A stream that followed it gets its last lines and ends;
        late lines of that start are dropped."""
        with self._lock:
            self._dropped = (self.epoch, self._events["run"])
            self.epoch += 1
            self._events["run"] = []
            if self._path("run").is_file():
                self._path("run").write_text("", encoding="utf-8")
            for kind in KINDS:
                self._closed[kind] = True

    def read(
        self, kind: LogKind, start: int, epoch: int | None = None
    ) -> tuple[list[dict[str, Any]], bool, int]:
        """Events from index `start` of the log of start `epoch` (None: the current one),
        whether that log is finished, and its epoch. The log of an earlier start is finished:
        empty once a new start reset the book, its last lines when a pause dropped it."""
        with self._lock:
            if epoch is None or epoch == self.epoch:
                return list(self._events[kind][start:]), self._closed[kind], self.epoch
            if kind == "run" and self._dropped is not None and self._dropped[0] == epoch:
                return list(self._dropped[1][start:]), True, epoch
            return [], True, epoch

    def tail(self, kind: LogKind, lines: int) -> list[str]:
        with self._lock:
            return [e["data"] for e in self._events[kind][-lines:]]


class RunLog:
    """The logs of one start. Once a newer start has reset the book, or a pause or sleep has
    dropped the run log, this start's late lines (a stopped app flushing its output) are
    dropped instead of mixing into the new logs."""

    def __init__(self, book: LogBook, epoch: int) -> None:
        self.book = book
        self.epoch = epoch

    def add(self, kind: LogKind, line: str) -> None:
        self.book.add(kind, line, epoch=self.epoch)

    def close(self, *kinds: LogKind) -> None:
        self.book.close(*kinds, epoch=self.epoch)

    def tail(self, kind: LogKind, lines: int) -> list[str]:
        return self.book.tail(kind, lines)
