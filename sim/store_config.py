"""The store's schema (`store.path`), apart from sim.config so that the command line reads its default without
loading Hydra."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class StoreConfig:
    """Where runs are logged."""

    path: str = "runs/sim.db"
