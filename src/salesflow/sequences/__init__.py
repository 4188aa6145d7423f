"""Sequences: branching graphs of sales steps, their validation, statistics,
rendering and the standard templates."""
