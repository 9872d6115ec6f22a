"""Drive one run: build the backend and scenario from config, play every episode, store each turn at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import platform
import secrets
import subprocess
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig
from tqdm import tqdm

import sim
from analyzers import analyzers
from scenarios import EpisodePlan, Outcome, Scenario
from sim.analysis import AnalyzerSummary, analyze
from sim.backends import Backend, BackendError, ChatMessage, SamplingParams
from sim.config import redacted_yaml
from sim.errors import SimError
from sim.records import Episode, Turn
from sim.store import Store

VERSIONED_PACKAGES = ("artifact-sim", "hydra-core", "omegaconf", "llama-cpp-python", "sqlite-utils")


@dataclass
class RunReport:
    """What a finished run produced."""

    run_id: str
    db_path: Path
    outcomes: list[Outcome]
    summaries: list[AnalyzerSummary]


def build(node: DictConfig, what: str) -> Any:
    """Instantiate a `_target_` config, surfacing a SimError raised by the constructor as itself."""
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        if isinstance(exc.__cause__, SimError):
            raise exc.__cause__ from None
        raise SimError(f"cannot build {what}: {exc}") from None


def derive_seed(seed: int, episode_index: int, key: str) -> int:
    """A per-request seed: repeatable for the same run seed, distinct across episodes and turns."""
    digest = hashlib.sha256(f"{seed}:{episode_index}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def new_run_id() -> str:
    """A sortable, collision-resistant run id."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape generated data."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def source_git_sha() -> Optional[str]:
    """The commit of the artifact-sim source tree, when it is a git checkout."""
    source_dir = Path(sim.__file__).resolve().parent.parent
    try:
        result = subprocess.run(
            ["git", "-C", str(source_dir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


class StoredEpisodeContext:
    """The runner's side of one episode: backend calls, seeds, storage and progress."""

    def __init__(self, store: Store, backend: Backend, episode_id: str, seed: int, plan: EpisodePlan, turns_bar: tqdm):
        self.store = store
        self.backend = backend
        self.episode_id = episode_id
        self.seed = seed
        self.plan = plan
        self.turns_bar = turns_bar

    def _params(self, sampling: SamplingParams, key: str) -> SamplingParams:
        return replace(sampling, seed=derive_seed(self.seed, self.plan.index, key))

    async def generate_turn(
        self, idx: int, speaker: str, role: str, messages: list[ChatMessage], sampling: SamplingParams
    ) -> Turn:
        """Ask the backend for turn `idx`, commit it, and return it."""
        params = self._params(sampling, f"turn:{idx}")
        completion = await self.backend.complete(messages, params)
        turn = Turn(
            idx=idx,
            speaker=speaker,
            role=role,
            content=completion.text.strip(),
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=round(completion.latency_ms, 3),
            finish_reason=completion.finish_reason,
            request_hash=self.backend.request_hash(messages, params),
        )
        self.store.add_turn(self.episode_id, turn)
        self.turns_bar.update(1)
        return turn

    async def generate_text(self, key: str, messages: list[ChatMessage], sampling: SamplingParams) -> str:
        """Ask the backend for text that is not a turn."""
        return (await self.backend.complete(messages, self._params(sampling, key))).text

    def update_episode(self, task: Optional[str] = None, meta: Optional[dict[str, Any]] = None) -> None:
        """Record a task or metadata decided while playing."""
        fields: dict[str, Any] = {}
        if task is not None:
            fields["task"] = task
        if meta is not None:
            fields["meta_json"] = json.dumps(meta)
        if fields:
            self.store.update_episode_meta(self.episode_id, **fields)


async def play_all(
    store: Store, backend: Backend, scenario: Scenario, run_id: str, seed: int, progress: bool
) -> list[Outcome]:
    """Play the scenario's episodes one after another, recording each ending."""
    plans = scenario.plan()
    outcomes = []
    with tqdm(total=len(plans), desc="episodes", unit="ep", disable=not progress, position=0) as episodes_bar, tqdm(
        total=scenario.max_turns, desc="turns", unit="turn", disable=not progress, position=1, leave=False
    ) as turns_bar:
        for plan in plans:
            episode_id = f"{run_id}-e{plan.index:04d}"
            store.start_episode(
                Episode(
                    id=episode_id,
                    run_id=run_id,
                    source="generated",
                    kind=scenario.kind,
                    task=plan.task,
                    roles=plan.roles,
                    status="running",
                    termination_reason=None,
                    meta=plan.meta,
                )
            )
            turns_bar.reset(total=scenario.max_turns)
            ctx = StoredEpisodeContext(store, backend, episode_id, seed, plan, turns_bar)
            try:
                outcome = await scenario.play(plan, ctx)
            except BackendError as exc:
                outcome = Outcome("failed", f"backend_error: {exc}")
            store.finish_episode(episode_id, outcome.status, outcome.termination_reason)
            outcomes.append(outcome)
            episodes_bar.update(1)
    return outcomes


def execute(cfg: DictConfig, sweep_id: Optional[str] = None) -> RunReport:
    """Run one job of the given config end to end, then run the configured analyzers on it."""
    for name in cfg.runner.analyze:
        analyzers.get(name)  # fail on a typo before any generation
    scenario: Scenario = build(cfg.scenario, "scenario")
    backend: Backend = build(cfg.backend, "backend")
    store = Store.open(cfg.store.path)
    run_id = cfg.run.id or new_run_id()
    try:
        store.start_run(
            {
                "id": run_id,
                "scenario": scenario.name,
                "backend": backend.name,
                "model": backend.model,
                "seed": cfg.seed,
                "sweep_id": cfg.run.sweep_id or sweep_id,
                "config_yaml": redacted_yaml(cfg),
                "git_sha": source_git_sha(),
                "versions_json": json.dumps(package_versions()),
            }
        )
        try:
            outcomes = asyncio.run(play_all(store, backend, scenario, run_id, cfg.seed, cfg.runner.progress))
        except BaseException:
            store.finish_run(run_id, "interrupted")
            raise
        store.finish_run(run_id, "done")
        summaries = analyze(store, list(cfg.runner.analyze), run_id=run_id)
        return RunReport(run_id, store.path, outcomes, summaries)
    finally:
        backend.close()
        store.close()
