"""Structured-config schemas for the top level of the Hydra config tree."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from sim.errors import SimError, one_line
from sim.store_config import StoreConfig

SECRET_KEY = re.compile(r"(^|_)(api_?key|secret|password|passwd|token|access_token|bearer)$", re.IGNORECASE)
REDACTED = "<redacted>"


@dataclass
class RunnerConfig:
    """How a run is driven and what happens after it."""

    progress: bool = True
    # Analyzers run on the run's episodes afterwards; each is built from its config under `analyzer.NAME`.
    analyze: list[str] = field(
        default_factory=lambda: ["role_flip", "conversation_stats", "task_labels", "preferences", "instructions", "free_text"]
    )
    concurrency: int = 8
    use_cache: bool = True
    max_attempts: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    retry_after_max_s: float = 300.0
    # Caps on what a run's generation spends (null: none): a request that could pass one is not sent, and the run
    # ends as `stopped: budget`, resumable with a higher cap. The cost cap needs backend.pricing.
    max_cost_usd: Optional[float] = None
    max_tokens: Optional[int] = None


@dataclass
class RunConfig:
    """Identity of one run; left null, the id is generated and the sweep id taken from Hydra. A fork run
    (`sim replay`) names the episode it plays again (`fork_of`), or several of one run (`fork_episodes`), and the
    turn it regenerates from."""

    id: Optional[str] = None
    sweep_id: Optional[str] = None
    fork_of: Optional[str] = None
    fork_episodes: Optional[list[str]] = None
    fork_at: Optional[int] = None


@dataclass
class SimConfig:
    """The whole config: a backend, a scenario, the analyzers' settings, the store, the runner, the run and the base seed."""

    backend: Any = MISSING
    scenario: Any = MISSING
    analyzer: Any = field(default_factory=dict)
    store: StoreConfig = field(default_factory=StoreConfig)
    runner: RunnerConfig = field(default_factory=RunnerConfig)
    run: RunConfig = field(default_factory=RunConfig)
    seed: int = 0


ConfigStore.instance().store(name="base_config", node=SimConfig)


def redacted_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML with every secret-looking value replaced; names of env variables are kept."""
    container = OmegaConf.to_container(cfg, resolve=True)

    def scrub(node: Any) -> Any:
        if isinstance(node, dict):
            return {
                key: REDACTED if SECRET_KEY.search(str(key)) and value is not None else scrub(value)
                for key, value in node.items()
            }
        if isinstance(node, list):
            return [scrub(item) for item in node]
        return node

    return OmegaConf.to_yaml(OmegaConf.create(scrub(container)))


def build(node: DictConfig, what: str) -> Any:
    """Instantiate a `_target_` config, surfacing a SimError raised by the constructor as itself."""
    try:
        return instantiate(node, _convert_="all")
    except InstantiationException as exc:
        if isinstance(exc.__cause__, SimError):
            raise exc.__cause__ from None
        raise SimError(f"cannot build {what}: {one_line(str(exc))}") from None
    except OmegaConfBaseException as exc:
        raise SimError(f"cannot build {what}: {one_line(str(exc))}") from None
