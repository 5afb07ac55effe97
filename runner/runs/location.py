"""Where a candidate lives on the Hub.

Candidates go to a private model repo next to the publish repo, `<publish repo>-candidates`,
under `runs/<run id>/`: never to the publish repo itself, whose content only promotion
writes. A run id names exactly one candidate, so re-running the same inputs finds it.
"""

from __future__ import annotations

from dataclasses import dataclass

from runner.hub.client import RepoRef
from runner.specs.bundle import AdapterBundle


@dataclass(frozen=True)
class CandidateLocation:
    repo_id: str
    run_id: str

    @property
    def repo(self) -> RepoRef:
        return RepoRef(self.repo_id, "model")

    @property
    def path(self) -> str:
        return f"runs/{self.run_id}"

    def file(self, name: str) -> str:
        return f"{self.path}/{name}"

    def __str__(self) -> str:
        return f"{self.repo_id}/{self.path}"


def candidate_location(bundle: AdapterBundle, run_id: str) -> CandidateLocation:
    return CandidateLocation(bundle.adapter.publish.candidates_repo_id, run_id)
