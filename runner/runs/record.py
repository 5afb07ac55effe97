"""What a run left on the Hub under its candidate location, and whether it is a candidate:
a `run.json` that says succeeded, beside the adapter files and the eval outputs.

A `run.json` that says `trained` sits beside a trained adapter whose eval outputs are still
missing (train.py uploads it as soon as training ends; a later failure keeps the status and
records the error). It is not a candidate, and not a failure to clear either: the next
train.py run of the same run id reuses the adapter and only generates."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from runner.hub.client import HubClient, NotFoundError
from runner.runs.location import ADAPTER_FILES, CandidateLocation

REQUIRED_FILES = (*ADAPTER_FILES, "eval_outputs.jsonl", "metrics.json", "run.json")
# AutoTrain trains only: its candidates' eval outputs are generated at evaluation time.
AUTOTRAIN_FILES = (*ADAPTER_FILES, "run.json")


@dataclass(frozen=True)
class RunRecord:
    location: CandidateLocation
    files: frozenset[str]
    """File names under the run's folder."""
    record: dict[str, Any]
    """The run's `run.json`."""

    @property
    def status(self) -> str:
        return str(self.record.get("status", "unknown"))

    @property
    def missing(self) -> list[str]:
        required = AUTOTRAIN_FILES if self.record.get("engine") == "autotrain" else REQUIRED_FILES
        return [name for name in required if name not in self.files]

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
        error = self.record.get("error")
        failure = None
        if isinstance(error, dict):
            stage, kind, message = (error.get(k) for k in ("stage", "type", "message"))
            failure = f"failed in stage {stage}: {kind}: {message}"
        if self.is_trained:
            kept = "trained, eval outputs not made yet (the adapter is kept: a rerun generates)"
            return f"{kept}; last attempt {failure}" if failure else kept
        if failure:
            return failure
        if self.missing:
            return f"status {self.status}, missing {', '.join(self.missing)}"
        return f"status {self.status}"


def read_run(client: HubClient, location: CandidateLocation) -> RunRecord | None:
    """The run at `location`, or None when nothing (no `run.json`) is there."""
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
        record = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        record = {"status": "unreadable"}
    return RunRecord(location, files, record if isinstance(record, dict) else {})


def clear_run(client: HubClient, run: RunRecord, reason: str) -> None:
    """Delete a previous attempt's files, so only the next attempt can make a candidate."""
    client.commit(
        run.location.repo,
        {},
        f"Clear run {run.location.run_id}: {reason}",
        delete=[run.location.file(name) for name in sorted(run.files)],
    )
