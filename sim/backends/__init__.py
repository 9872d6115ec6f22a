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
from sim.backends import embedded, hf_pipeline, langchain_chat, openai_api, vllm_engine  # noqa: F401  (registration)

__all__ = [
    "Backend",
    "BackendError",
    "BackendSetupError",
    "ChatMessage",
    "Completion",
    "SamplingParams",
    "backends",
]
