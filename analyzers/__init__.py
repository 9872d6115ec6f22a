"""Artifact analyzers; importing this package registers the built-in ones."""

from analyzers.base import Analyzer, analyzers
from analyzers import free_text, instructions, preferences, role_flip, task_labels  # noqa: F401  (register themselves)

__all__ = ["Analyzer", "analyzers"]
