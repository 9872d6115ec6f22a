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

# Keys whose value is a credential, whatever it is: keys, passwords, secrets, authorization headers.
SECRET_KEY = re.compile(r"(^|[_-])(api[_-]?key|password|passwd|bearer|authorization|credentials?)$|secret", re.IGNORECASE)
# Keys whose string value is a credential (an access token); a key ending in "tokens" names a count (max_tokens,
# whatever its value: a sweep of counts is text), a number under a token key is a count too, a tokenizer is no token.
TOKEN_KEY = re.compile(r"token(?!izer|s$)", re.IGNORECASE)
# Keys holding HTTP headers (default_headers, extra_headers): every value inside may carry a credential.
HEADERS_KEY = re.compile(r"(^|_)headers$", re.IGNORECASE)
# Keys that name an environment variable (api_key_env) hold no secret themselves.
ENV_NAME_KEY = re.compile(r"_env$", re.IGNORECASE)
# An override value that only reads an environment variable (no default given) names the secret without holding it.
ENV_INTERPOLATION = re.compile(r"^\$\{oc\.env:[A-Za-z_][A-Za-z0-9_]*\}$")
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
    # On resume, let overrides change what is generated (scenario, model, sampling, seed); each resume's changes
    # are then recorded in the store's run_revisions table.
    allow_changes: bool = False
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


def is_secret(key: str, value: Any) -> bool:
    """Whether the value under `key` is a credential to hide: a key, password or secret, an authorization header,
    or a token given as text (a number under a token key is a count, such as max_tokens)."""
    if value is None or ENV_NAME_KEY.search(key):
        return False
    if SECRET_KEY.search(key):
        return True
    return bool(TOKEN_KEY.search(key)) and isinstance(value, str) and not _is_number(value)


def _is_number(text: str) -> bool:
    """Whether `text` reads as a number, as an override's value (`scenario.max_tokens=40`) does."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def scrub(node: Any) -> Any:
    """A plain config container with every secret-looking value replaced, and every value under a headers key."""
    if isinstance(node, dict):
        return {
            key: REDACTED if is_secret(str(key), value)
            else {name: REDACTED for name in value} if HEADERS_KEY.search(str(key)) and isinstance(value, dict)
            else scrub(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [scrub(item) for item in node]
    return node


def secret_override(override: str) -> bool:
    """Whether a command-line override (`KEY=VALUE`) sets a credential, or anything inside headers, to a value given
    in the clear rather than read from an environment variable (`${oc.env:NAME}`)."""
    key, _, value = override.lstrip("+~").partition("=")
    if ENV_INTERPOLATION.match(value.strip("'\"")):
        return False
    parts = key.split(".")
    return is_secret(parts[-1], value) or any(HEADERS_KEY.search(part) for part in parts)


def redacted_override(override: str) -> str:
    """An override as written, with its value replaced when it sets a credential."""
    return f"{override.partition('=')[0]}={REDACTED}" if secret_override(override) else override


def redacted(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as a plain container with every secret-looking value replaced."""
    return scrub(OmegaConf.to_container(cfg, resolve=True))


def redacted_yaml(cfg: DictConfig) -> str:
    """The resolved config as YAML with every secret-looking value replaced; names of env variables are kept."""
    return OmegaConf.to_yaml(OmegaConf.create(redacted(cfg)))


def flat(node: Any, prefix: str) -> dict[str, Any]:
    """A config container as dotted keys, each after `prefix`, and their values (lists and empty mappings are values)."""
    if not isinstance(node, dict) or not node:
        return {prefix[:-1]: node}
    return {key: value for name, child in node.items() for key, value in flat(child, f"{prefix}{name}.").items()}


def config_changes(old: dict[str, Any], new: dict[str, Any], ignored: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Key by key, what differs between two config containers, as {key: {"old": ..., "new": ...}}; a key that one
    side lacks has no value on that side. Keys in `ignored` are left out."""
    before, after = flat(old, ""), flat(new, "")
    changes = {}
    for key in sorted(before.keys() | after.keys()):
        if key in ignored or (key in before and key in after and before[key] == after[key]):
            continue
        changes[key] = {side: values[key] for side, values in (("old", before), ("new", after)) if key in values}
    return changes


def revised_config(config_yaml: Optional[str], revisions: list[dict[str, Any]]) -> dict[str, Any]:
    """A run's stored config with the changes of its recorded revisions (`Store.run_revisions`) applied, in order."""
    config: dict[str, Any] = OmegaConf.to_container(OmegaConf.create(config_yaml or ""))  # type: ignore[assignment]
    for revision in revisions:
        with_changes(config, revision["changes"])
    return config


def with_changes(config: dict[str, Any], changes: dict[str, dict[str, Any]]) -> None:
    """Apply `config_changes` to a config container in place: keys without a new value are removed first, then
    the others set."""
    for key, change in sorted(changes.items(), key=lambda item: "new" in item[1]):
        *parents, leaf = key.split(".")
        node: Any = config
        for part in parents:
            node = node.setdefault(part, {}) if "new" in change else node.get(part, {})
        if "new" in change:
            node[leaf] = change["new"]
        else:
            node.pop(leaf, None)


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
