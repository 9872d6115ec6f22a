"""`sim replay`: regenerate a stored conversation from one of its turns on, with other settings, as a new episode."""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from sim.errors import SimError
from sim.runner import GROUPS, Fork, RunReport, execute
from sim.store import Store

# What a replay may change; the store is --db, and the new run gets its own id.
REPLAY_KEYS = ("backend", "scenario.", "seed", "runner.", "analyzer.")


def fork_config(stored_yaml: str, overrides: list[str]) -> DictConfig:
    """The parent run's config with `overrides` applied: `backend=NAME` swaps the whole backend,
    `KEY=VALUE` sets one key (as composed, so that Hydra checks names and types)."""
    from sim.app import compose_config  # Hydra's composition, loaded only when a replay needs it

    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        if not key.startswith(REPLAY_KEYS) or key == "scenario":
            raise SimError(
                f"sim replay takes backend=..., backend.*, scenario.*, seed, runner.* and analyzer.* overrides, got {override!r}"
            )
    composed = compose_config(overrides)
    cfg = OmegaConf.create(stored_yaml)
    for override in overrides:
        key = override.lstrip("+~").split("=", 1)[0]
        value = composed[key] if key in GROUPS else OmegaConf.select(composed, key)
        OmegaConf.update(cfg, key, value, merge=False, force_add=True)
    return cfg


def replay(db: Path, episode_id: str, fork_at: int, overrides: list[str]) -> RunReport:
    """Fork stored episode `episode_id` at turn `fork_at` into a new run of the same store, play it, analyze it."""
    store = Store.open(db, create=False)
    try:
        parent = store.episode(episode_id)
        run = store.run(parent.run_id) if parent.source == "generated" and parent.run_id else None
    finally:
        store.close()
    if run is None:
        raise SimError(f"episode {episode_id!r} was imported, not generated: only generated conversations can be replayed")
    if not 0 <= fork_at <= len(parent.turns):
        raise SimError(f"--fork-at must be between 0 and {len(parent.turns)} (the turns of {episode_id}), got {fork_at}")
    cfg = fork_config(run["config_yaml"], overrides)
    cfg.store.path = str(db)
    cfg.run.id = None
    cfg.run.sweep_id = None
    return execute(cfg, fork=Fork(parent, fork_at))
