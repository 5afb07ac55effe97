"""What a run left on the Hub under its candidate location, and whether it is a candidate:
a `run.json` that says succeeded, beside the adapter files and the eval outputs.

A `run.json` that says `trained` sits beside a trained adapter whose eval outputs are still
missing (train.py uploads it as soon as training ends; a later failure keeps the status and
records the error). It is not a candidate, and not a failure to clear either: the next
train.py run of the same run id reuses the adapter and only generates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from runner.hub.client import HubClient, NotFoundError
from runner.runs.location import CandidateLocation
from runner.train.train import ADAPTER_FILES, RunResult, parse


@dataclass(frozen=True)
class RunRecord:
    location: CandidateLocation
    files: frozenset[str]
    """File names under the run's folder."""
    record: RunResult | None
    """The run's `run.json`; None when it is not one (broken JSON, or not its shape)."""
    required: tuple[str, ...]
    """The files a candidate holds: its engine's `required_files`."""

    @property
    def status(self) -> str:
        return self.record.status if self.record else "unreadable"

    @property
    def missing(self) -> list[str]:
        return [name for name in self.required if name not in self.files]

    @property
    def is_candidate(self) -> bool:
        return self.status == "succeeded" and not self.missing

    @property
    def is_trained(self) -> bool:
        """A trained adapter kept for the next attempt: reuse it, never clear it as failed."""
        return self.status == "trained" and all(name in self.files for name in ADAPTER_FILES)

    @property
    def error(self) -> str | None:
        """Why it is not a candidate, in one line; None when it is one."""
        if self.is_candidate:
            return None
        error = self.record.error if self.record else None
        failure = None
        if error:
            failure = f"failed in stage {error.stage}: {error.type}: {error.message}"
        if self.is_trained:
            kept = "trained, eval outputs not made yet (the adapter is kept: a rerun generates)"
            return f"{kept}; last attempt {failure}" if failure else kept
        if failure:
            return failure
        if self.missing:
            return f"status {self.status}, missing {', '.join(self.missing)}"
        return f"status {self.status}"


def read_run(
    client: HubClient, location: CandidateLocation, *, required: Sequence[str]
) -> RunRecord | None:
    """The run at `location`, or None when nothing (no `run.json`) is there. `required`: the
    files that make it a candidate (its engine's `required_files`)."""
    try:
        oids = client.file_oids(location.repo)
    except NotFoundError:
        return None
    prefix = location.path + "/"
    files = frozenset(p.removeprefix(prefix) for p in oids if p.startswith(prefix))
    if "run.json" not in files:
        return None
    path = client.download(location.repo, location.file("run.json"))
    try:
        record = parse(RunResult, json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, RecursionError):  # not JSON, not run.json's shape, or nested to crash
        record = None
    return RunRecord(location, files, record, tuple(required))


def clear_run(client: HubClient, run: RunRecord, reason: str) -> None:
    """Delete a previous attempt's files, so only the next attempt can make a candidate."""
    client.commit(
        run.location.repo,
        {},
        f"Clear run {run.location.run_id}: {reason}",
        delete=[run.location.file(name) for name in sorted(run.files)],
    )
