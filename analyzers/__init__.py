"""Artifact analyzers; importing this package registers the built-in ones."""

from analyzers.base import Analyzer, analyzers
from analyzers import (  # noqa: F401  (each registers itself)
    collaboration,
    conversation_stats,
    digression,
    free_text,
    human_likeness,
    instructions,
    preferences,
    role_drift,
    role_flip,
    task_labels,
)

__all__ = ["Analyzer", "analyzers"]
