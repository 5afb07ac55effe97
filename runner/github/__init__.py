"""GitHub Actions context (event payload, base ref, outputs) and sticky PR comments."""
