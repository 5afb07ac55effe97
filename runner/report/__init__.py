"""Rendering results for people: the terminal, PR comments, job summaries, JSON."""
