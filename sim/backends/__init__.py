"""Model backends behind one interface; importing this package registers the built-in ones."""

from sim.backends.base import Backend, BackendError, ChatMessage, Completion, SamplingParams, backends
from sim.backends import embedded  # noqa: F401  (registers "embedded")

__all__ = ["Backend", "BackendError", "ChatMessage", "Completion", "SamplingParams", "backends"]
