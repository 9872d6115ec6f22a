"""Model backends behind one interface; importing this package registers the built-in ones."""

from sim.backends.base import (
    Backend,
    BackendError,
    BackendSetupError,
    ChatMessage,
    Completion,
    SamplingParams,
    backends,
)
from sim.backends import embedded, openai_api  # noqa: F401  (register "embedded" and "openai")

__all__ = [
    "Backend",
    "BackendError",
    "BackendSetupError",
    "ChatMessage",
    "Completion",
    "SamplingParams",
    "backends",
]
