"""Role-assigned agents: who speaks, with which system prompt, and how each sees the conversation."""

from agents.agent import Agent

__all__ = ["Agent"]
