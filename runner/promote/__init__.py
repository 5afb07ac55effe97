"""Promotion: the model card, the atomic commit to the publish repo and the version tag."""
