"""`sim replay`: regenerate a stored conversation from one of its turns on, with other settings, as a new episode."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from sim.compose import GROUPS, apply_overrides, compose_config, config_dir_overrides, override_key
from sim.errors import SimError, require_at_least
from sim.runner import RunReport, execute
from sim.store import Store

# What a replay may change; the store is --db, and the new run gets its own id.
REPLAY_KEYS = ("backend", "scenario.", "seed", "runner.", "analyzer.")


def fork_config(run: dict[str, Any], overrides: list[str]) -> DictConfig:
    """The parent run's config with `overrides` applied: `backend=NAME` swaps the whole backend (a preset of
    `--config-dir DIR` too), `KEY=VALUE` sets one key, composed on the parent's own backend and scenario so that
    Hydra checks names and types."""
    overrides, search_path = config_dir_overrides(overrides)
    keys = [override_key(override) for override in overrides]
    for override, key in zip(overrides, keys):
        if not key.startswith(REPLAY_KEYS) or key == "scenario":
            raise SimError(
                f"sim replay takes backend=..., backend.*, scenario.*, seed, runner.* and analyzer.* overrides, got {override!r}"
            )
    parent_groups = [f"{group}={run[group]}" for group in GROUPS]
    # The parent's stored values over today's defaults: a run stored before a setting existed gets its default.
    cfg = OmegaConf.merge(compose_config([*search_path, *parent_groups]), OmegaConf.create(run["config_yaml"]))
    kept_groups = [choice for group, choice in zip(GROUPS, parent_groups) if group not in keys]
    apply_overrides(cfg, compose_config([*search_path, *kept_groups, *overrides]), overrides)
    return cfg


def replay(db: Path, episode_id: str, fork_at: int, overrides: list[str]) -> RunReport:
    """Fork stored episode `episode_id` at turn `fork_at` into a new run of the same store, play it, analyze it."""
    store = Store.open(db, create=False, option="--db")
    try:
        parent = store.episode(episode_id)
        run = store.run(parent.run_id) if parent.source == "generated" and parent.run_id else None
    finally:
        store.close()
    if run is None:
        raise SimError(f"episode {episode_id!r} was imported, not generated: only generated conversations can be replayed")
    if not 0 <= fork_at <= len(parent.turns):
        raise SimError(f"--fork-at must be between 0 and {len(parent.turns)} (the turns of {episode_id}), got {fork_at}")
    return _fork(db, run, fork_at, overrides, fork_of=episode_id, fork_episodes=None)


@dataclass
class BatchReplay:
    """A run of forks of another run's episodes: the run, and how many chosen episodes were too short to fork."""

    report: RunReport
    forked: int
    too_short: int


def replay_run(db: Path, run_id: str, fork_at: int, episodes: Optional[list[str]], overrides: list[str]) -> BatchReplay:
    """Fork every episode of run `run_id` (or the listed ones) at turn `fork_at` into one new run, played
    concurrently and resumable like any run; episodes with fewer than `fork_at` turns are skipped and counted."""
    require_at_least("--fork-at", fork_at, 0)
    store = Store.open(db, create=False, option="--db")
    try:
        run = store.run(run_id)
        rows = store.episode_rows(run_id)
    finally:
        store.close()
    if episodes:
        known = {row["id"] for row in rows}
        if unknown := [episode for episode in episodes if episode not in known]:
            raise SimError(f"--episodes: {unknown[0]!r} is not an episode of run {run_id}")
        rows = [row for row in rows if row["id"] in set(episodes)]
    parents = [row["id"] for row in rows if row["n_turns"] >= fork_at]
    if not parents:
        raise SimError(f"--fork-at {fork_at}: no chosen episode of run {run_id} has {fork_at} turns to keep")
    report = _fork(db, run, fork_at, overrides, fork_of=None, fork_episodes=parents)
    return BatchReplay(report, len(parents), len(rows) - len(parents))


def _fork(db: Path, run: dict[str, Any], fork_at: int, overrides: list[str], **forks: Any) -> RunReport:
    """A new run of the parent run's config with `overrides`, playing the forks `forks` names (`fork_of` or
    `fork_episodes`), which records them so that `sim run run.id=ID` resumes it as a fork run."""
    cfg = fork_config(run, overrides)
    cfg.store.path = str(db)
    cfg.run.update(id=None, sweep_id=None, fork_at=fork_at, **forks)
    return execute(cfg)
