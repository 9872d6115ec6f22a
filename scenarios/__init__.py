"""Scenarios generate one kind of synthetic data each; importing this package registers the built-in ones."""

from scenarios.base import EpisodeContext, EpisodePlan, Outcome, Scenario, ScenarioConfig, scenarios
from scenarios import roleplay  # noqa: F401  (registers "roleplay")

__all__ = ["EpisodeContext", "EpisodePlan", "Outcome", "Scenario", "ScenarioConfig", "scenarios"]
