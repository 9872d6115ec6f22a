"""Model backends behind one interface; each built-in backend registers itself when its module is imported (sim.compose
imports them all before composing a config), so importing this package loads no backend's SDK."""

from sim.backends.base import Backend, BackendError, BackendSetupError, Completion, backends

__all__ = ["Backend", "BackendError", "BackendSetupError", "Completion", "backends"]
