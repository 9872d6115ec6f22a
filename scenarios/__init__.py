"""Scenarios generate one kind of synthetic data each; importing this package registers the built-in ones."""

from scenarios.base import (
    EpisodeContext,
    EpisodePlan,
    Outcome,
    ReferenceScenario,
    Scenario,
    ScenarioConfig,
    scenarios,
)
from scenarios import free_text, group, instructions, preferences, roleplay, spp, task_labels  # noqa: F401  (registration)

__all__ = ["EpisodeContext", "EpisodePlan", "Outcome", "ReferenceScenario", "Scenario", "ScenarioConfig", "scenarios"]
