"""The training Space: rendering its files for a run (and, later, syncing and watching it)."""
