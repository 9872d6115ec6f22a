"""Artifact analyzers; importing this package registers the built-in ones."""

from analyzers.base import Analyzer, analyzers
from analyzers import role_flip  # noqa: F401  (registers "role_flip")

__all__ = ["Analyzer", "analyzers"]
