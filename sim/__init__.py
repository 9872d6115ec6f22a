"""artifact-sim: generate LLM data with role-assigned agents and measure its artifacts."""
