"""Policy as code. Text policies (`kind: text` files in `policies/`) scan any text, dataset
records, spec files, rendered Space files and model outputs, for AI attribution and
secrets; other policy kinds live beside them in this package."""

from runner.policy.normalize import normalize_for_matching
from runner.policy.text import TextPolicies
from runner.policy.text_load import load_text_policies

__all__ = ["TextPolicies", "load_text_policies", "normalize_for_matching"]
