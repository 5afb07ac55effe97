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
        self.epoch = 0  # bumped on every start: a stream of an older start ends
        self._events: dict[str, list[dict[str, Any]]] = {k: [] for k in KINDS}
        self._closed: dict[str, bool] = {k: True for k in KINDS}
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

    def read(self, kind: LogKind, start: int) -> tuple[list[dict[str, Any]], bool, int]:
        """Events from index `start`, whether the log is finished, and the current epoch."""
        with self._lock:
            return list(self._events[kind][start:]), self._closed[kind], self.epoch

    def tail(self, kind: LogKind, lines: int) -> list[str]:
        with self._lock:
            return [e["data"] for e in self._events[kind][-lines:]]


class RunLog:
    """The logs of one start. Once a newer start has reset the book, this start's late lines
    (a stopped app flushing its output) are dropped instead of mixing into the new logs; a
    pause does not reset, so an app's last lines before it is stopped are kept."""

    def __init__(self, book: LogBook, epoch: int) -> None:
        self.book = book
        self.epoch = epoch

    def add(self, kind: LogKind, line: str) -> None:
        self.book.add(kind, line, epoch=self.epoch)

    def close(self, *kinds: LogKind) -> None:
        self.book.close(*kinds, epoch=self.epoch)

    def tail(self, kind: LogKind, lines: int) -> list[str]:
        return self.book.tail(kind, lines)
