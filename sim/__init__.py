"""artifact-sim: generate LLM data with role-assigned agents and measure its artifacts."""

__version__ = "0.1.0"
