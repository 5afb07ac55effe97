"""All of `policies/`: the text policies (attribution, secrets), the training, promotion
and Space rules and the Hub repo allowlist, with problems in the policy files themselves as
findings."""

from __future__ import annotations

from dataclasses import dataclass, field

from runner.findings import Finding
from runner.policy import TextPolicies, load_text_policies
from runner.policy.promotion import PromotionPolicy
from runner.policy.repos import RepoPolicy, load_repo_policy
from runner.policy.space import SpacePolicy
from runner.policy.training import TrainingPolicy
from runner.specs.load import load_model_file
from runner.workspace import Workspace


@dataclass(frozen=True)
class Policies:
    text: TextPolicies
    training: TrainingPolicy | None
    promotion: PromotionPolicy | None
    space: SpacePolicy | None
    repos: RepoPolicy | None
    """The Hub repo allowlist; None (missing or broken) allows no repo at all."""
    problems: list[Finding] = field(default_factory=list)
    """Findings about the policy files; any error makes the input unusable (exit 2)."""


def load_policies(workspace: Workspace) -> Policies:
    directory = workspace.root / "policies"
    text, problems = load_text_policies(directory, display_prefix="policies")
    _, training, found = load_model_file(
        directory / "training.yaml", TrainingPolicy, "policies/training.yaml"
    )
    problems += found
    _, promotion, found = load_model_file(
        directory / "promotion.yaml", PromotionPolicy, "policies/promotion.yaml"
    )
    problems += found
    _, space, found = load_model_file(directory / "space.yaml", SpacePolicy, "policies/space.yaml")
    problems += found
    repos, found = load_repo_policy(directory)
    problems += found
    # A file two loaders cannot read (a link, a device) is reported by both: say it once.
    problems = list(dict.fromkeys(problems))
    return Policies(text, training, promotion, space, repos, problems)
