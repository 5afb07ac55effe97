"""`adapter.yaml`: the identity of one adapter version."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from runner.findings import quote
from runner.specs.base import HubRepoId, NonNegativeInt, PositiveInt, Slug, SpecModel, spec_error
from runner.specs.tasks import TaskKind

_COMMIT_RE = re.compile(r"[0-9a-f]{40}")

# The flavors of huggingface_hub 2.4's JobHardware (what `run_job` accepts).
JobFlavor = Literal[
    "cpu-basic",
    "cpu-upgrade",
    "cpu-performance",
    "cpu-xl",
    "t4-small",
    "t4-medium",
    "l4x1",
    "l4x4",
    "l40sx1",
    "l40sx4",
    "l40sx8",
    "a10g-small",
    "a10g-large",
    "a10g-largex2",
    "a10g-largex4",
    "a100-large",
    "a100x4",
    "a100x8",
    "h200",
    "h200x2",
    "h200x4",
    "h200x8",
    "rtx-pro-6000",
    "rtx-pro-6000x2",
    "rtx-pro-6000x4",
    "rtx-pro-6000x8",
]


SpaceHardware = Literal[
    "cpu-basic",
    "cpu-upgrade",
    "t4-small",
    "t4-medium",
    "l4x1",
    "l4x4",
    "a10g-small",
    "a10g-large",
    "a10g-largex2",
    "a10g-largex4",
    "a100-large",
    "h100",
]


class BaseModelRef(SpecModel):
    id: HubRepoId
    """Hub id of the base model, e.g. `unsloth/Llama-3.2-1B-Instruct`."""
    revision: str = Field(min_length=1)
    """The 40-hex commit the adapter is trained on. A branch or tag needs `floating: true`."""
    floating: bool = False
    """Accept a moving revision (a branch or tag). Reported as a warning: runs stop being
    reproducible when the branch moves."""

    @model_validator(mode="after")
    def _revision_is_pinned(self) -> BaseModelRef:
        if not self.floating and not _COMMIT_RE.fullmatch(self.revision):
            raise spec_error(
                "unpinned_revision",
                f"expected a 40-hex commit id, got {quote(self.revision)}; pin the commit, or set "
                "`floating: true` to accept a moving revision",
                at="revision",
            )
        return self


def candidates_repo(publish_repo_id: str) -> str:
    """Where a publish repo's candidates live (private): `<publish repo>-candidates`."""
    return f"{publish_repo_id}-candidates"


class PublishTarget(SpecModel):
    repo_id: HubRepoId
    """Model repo the adapter is promoted to; each version becomes a tag `v<N>` there."""
    private: bool = True
    """Create the repo as private."""

    @property
    def candidates_repo_id(self) -> str:
        return candidates_repo(self.repo_id)


Distributed = Literal["ddp", "fsdp2", "zero3"]
"""How a multi-GPU Job spreads training over its GPUs (TRL's accelerate presets)."""


class TrainingTarget(SpecModel):
    backend: Literal["space", "local", "jobs"] = "space"
    """`jobs`: a Hugging Face Job on a GPU flavor (production, recommended). `space`: a
    Hugging Face Space we own (the seeds' way). `local`: this machine."""
    engine: Literal["trl", "autotrain"] = "trl"
    """`trl`: TRL SFTTrainer + peft (default). `autotrain`: AutoTrain llm-sft in the Space."""
    hardware: SpaceHardware = "a10g-small"
    """Space hardware requested for the run."""
    space_id: HubRepoId | None = None
    """The Space that runs training; defaults to `<publish owner>/adapter-trainer`."""
    timeout_minutes: PositiveInt = 180
    """Give up on a run (and pause the Space, or cancel the Job) after this long."""
    flavor: JobFlavor | None = None
    """The Hugging Face Jobs flavor (e.g. `a10g-small`, `h100x8`); required by `backend: jobs`."""
    scheduling_deadline_minutes: float = Field(default=30.0, gt=0)
    """Cancel a Job still waiting for a machine of its flavor after this long."""
    distributed: Distributed | None = None
    """Train on every GPU of a multi-GPU `flavor` with `accelerate launch` and TRL's preset:
    `ddp` (the model fits one GPU: faster), `fsdp2` or `zero3` (weights and optimizer state
    sharded over the GPUs: for a base that one GPU cannot hold). Unset: one GPU."""

    @model_validator(mode="after")
    def _autotrain_runs_in_a_space(self) -> TrainingTarget:
        if self.engine == "autotrain" and self.backend != "space":
            raise spec_error(
                "autotrain_needs_space",
                "engine autotrain runs AutoTrain's own image inside a Space; set "
                "`backend: space`, or use `engine: trl` to train locally",
                at="engine",
            )
        return self

    @model_validator(mode="after")
    def _flavor_only_for_jobs(self) -> TrainingTarget:
        if self.backend == "jobs" and self.flavor is None:
            raise spec_error(
                "jobs_need_flavor",
                "backend jobs runs on a Hugging Face Jobs flavor: set `flavor`, e.g. "
                "`flavor: a10g-small`",
                at="flavor",
            )
        if self.backend != "jobs" and self.flavor is not None:
            raise spec_error(
                "flavor_without_jobs",
                f"`flavor` picks the machine of a Hugging Face Job; backend {self.backend} "
                "does not run one: remove `flavor`, or set `backend: jobs`",
                at="flavor",
            )
        if self.backend != "jobs" and self.distributed is not None:
            raise spec_error(
                "distributed_without_jobs",
                f"`distributed` spreads a Job's training over the GPUs of its flavor; backend "
                f"{self.backend} trains on one device: remove `distributed`, or set "
                "`backend: jobs` and a multi-GPU `flavor`",
                at="distributed",
            )
        return self


class Lineage(SpecModel):
    parent: str | None = None
    """The adapter version this one was derived from, e.g. `ainative-v1`."""
    notes: str = ""
    """Why this version exists, in one line."""


class AdapterSpec(SpecModel):
    name: Slug
    """Adapter name; the directory is `<name>-v<version>`."""
    version: NonNegativeInt
    """Version number; it becomes the tag `v<version>` on the publish repo."""
    task: TaskKind
    """Task kind; chooses the data checks and the scorer."""
    description: str = Field(min_length=1)
    """One sentence: what the adapter does."""
    base_model: BaseModelRef
    publish: PublishTarget
    training: TrainingTarget = TrainingTarget()
    lineage: Lineage = Lineage()
