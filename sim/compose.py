"""Config composition: the config a command's overrides give, the overrides' keys, and the analysis commands'
settings; what the engine (replay, reanalysis, resume) and the front end share, below both."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Optional

import yaml
from hydra import compose, initialize_config_module
from hydra.core.config_store import ConfigStore
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import analyzers  # registers analyzers
import scenarios  # registers scenarios and their config schemas
import sim.config  # noqa: F401  (registers the top-level schema)
from sim.backends import embedded, hf_pipeline, langchain_chat, openai_api, scripted, vllm_engine  # noqa: F401  (registers backends and their config schemas)
from sim.backends import backends
from sim.errors import SimError, one_line

CONFIG_MODULE = "conf"
CONFIG_NAME = "config"
# What analysis commands take: analyzer settings, the backend a `judge=self` uses, and how a judge's requests are
# retried and cached.
JUDGE_REQUEST_KEYS = ("use_cache", "max_attempts", "backoff_initial_s", "backoff_max_s", "retry_after_max_s")
ANALYSIS_OVERRIDES = ("analyzer.", "backend=", "backend.", *(f"runner.{key}=" for key in JUDGE_REQUEST_KEYS))
CONFIG_DIR_FLAGS = ("--config-dir", "-cd")
# `analyzer.NAME.judge=PRESET` (or a sweep of presets, or `self`): a backend preset as an analyzer's judge.
JUDGE_CHOICE = re.compile(r"^analyzer\.(\w+)\.judge=(?!null$)(self|[A-Za-z_][\w-]*(?:,[A-Za-z_][\w-]*)*)$")
# Overrides that pick another backend or scenario cannot apply to a run that already has episodes.
GROUPS = ("backend", "scenario")

# Every registered analyzer's settings under `analyzer.NAME`, from its conf/analyzer/NAME.yaml: conf/config.yaml lists
# this one entry, so that a new analyzer needs no line there.
ConfigStore.instance().store(
    name="analyzer_settings", node={"defaults": [{f"analyzer@analyzer.{name}": name} for name in analyzers.analyzers.names()]}
)


def hydra_error_line(exc: BaseException) -> str:
    """A Hydra or OmegaConf error, with its cause, folded onto one line."""
    if isinstance(exc, MissingConfigException) and exc.missing_cfg_file and exc.options is not None:
        group, _, option = exc.missing_cfg_file.rpartition("/")
        choices = ", ".join(o for o in exc.options if not o.startswith("base_"))
        return f"unknown {group} {option!r} (available: {choices})"
    parts = [str(exc)]
    if exc.__cause__ is not None and str(exc.__cause__) not in parts[0]:
        parts.append(str(exc.__cause__))
    lines = [one_line(line) for part in parts for line in part.splitlines() if line.strip()]
    return "; ".join(dict.fromkeys(lines))


def judge_choices(overrides: list[str]) -> list[str]:
    """`overrides` with each `analyzer.NAME.judge=PRESET` in Hydra's form for placing a backend preset at the
    judge's key (so that `analyzer.NAME.judge.KEY=VALUE` can then set its fields), and `judge=self` as the
    composed backend."""
    chosen = []
    for override in overrides:
        match = JUDGE_CHOICE.match(override)
        if match is None:
            chosen.append(override)
        elif match.group(2) == "self":
            chosen.append(f"analyzer.{match.group(1)}.judge=${{backend}}")
        else:
            chosen.append(f"+backend@analyzer.{match.group(1)}.judge={match.group(2)}")
    return chosen


def compose_config(overrides: list[str]) -> DictConfig:
    """The config `sim run` would get from these overrides (no sweeps); a SimError naming a bad one."""
    overrides = judge_choices(overrides)
    try:
        with initialize_config_module(config_module=CONFIG_MODULE, version_base="1.3"):
            cfg = compose(config_name=CONFIG_NAME, overrides=overrides)
    except yaml.YAMLError as exc:
        raise SimError(f"malformed YAML: {hydra_error_line(exc)}") from None
    except (HydraException, OmegaConfBaseException, ValueError) as exc:
        # Hydra raises a bare ValueError for some malformed overrides (`=3`).
        unknown = getattr(exc.__cause__, "full_key", None) if isinstance(exc, HydraException) else None
        bad = next((o for o in overrides if unknown and f"{override_key(o)}.".startswith(f"{unknown}.")), None)
        if bad is not None and (line := _unknown_key(compose_config([o for o in overrides if o != bad]), unknown, override_key(bad))):
            raise SimError(line) from None
        raise SimError(hydra_error_line(exc)) from None
    # Hydra adds a `+key` to a schema too, where it would only fail later as an unexpected argument.
    for added in (o for o in overrides if o.startswith("+") and not o.startswith("++")):
        key = override_key(added)
        parent = OmegaConf.select(cfg, key.rpartition(".")[0]) if "." in key else cfg
        if isinstance(parent, DictConfig) and not _accepts_new_keys(parent):
            raise SimError(_unknown_key(compose_config([o for o in overrides if o != added]), key, key) or f"unknown key {key}")
    return cfg


def _accepts_new_keys(node: DictConfig) -> bool:
    """Whether a config node is a free mapping (`+key=value` adds to it) rather than a dataclass schema."""
    return OmegaConf.get_type(node) is dict


def _unknown_key(cfg: DictConfig, unknown: str, written: str) -> Optional[str]:
    """One line for `written`, an override whose key `unknown` (itself or a prefix) the config does not have,
    naming the closest keys of its schema; None where the config has that key after all."""
    parent_key, _, leaf = unknown.rpartition(".")
    parent = OmegaConf.select(cfg, parent_key) if parent_key else cfg
    if not isinstance(parent, DictConfig):
        return f"unknown key {written}: {parent_key} holds a value, not settings"
    if _accepts_new_keys(parent):
        return f"unknown key {written}; to add it, write +{written}=..."
    keys = [str(k) for k in parent.keys() if not str(k).startswith("_")]
    if leaf in parent:
        return None
    prefix, rest = f"{parent_key}." if parent_key else "", written[len(unknown):]
    if close := difflib.get_close_matches(leaf, keys, n=3, cutoff=0.6):
        return f"unknown key {written}; did you mean {' or '.join(prefix + c + rest for c in close)}?"
    where = f"{parent_key} ({OmegaConf.get_type(parent).__name__})" if parent_key else "the config"
    return f"unknown key {written}: {where} has {', '.join(keys) or 'no settings'}"


def config_dir_overrides(args: list[str]) -> tuple[list[str], list[str]]:
    """`args` without Hydra's --config-dir flag, and the search-path override that flag stands for."""
    rest, search_path = [], []
    remaining = iter(args)
    for arg in remaining:
        flag, equals, value = arg.partition("=")
        if flag in CONFIG_DIR_FLAGS:
            directory = Path(value if equals else next(remaining, "")).resolve()
            if not directory.is_dir():
                raise SimError(f"{flag}: no such folder {directory}")
            search_path.append(f"hydra.searchpath=[file://{directory}]")
        else:
            rest.append(arg)
    return rest, search_path


def analysis_settings(overrides: list[str], command: str) -> DictConfig:
    """The composed config for `command`'s analyzer and judge overrides; a SimError for any other override."""
    if bad := [o for o in overrides if not o.startswith(ANALYSIS_OVERRIDES)]:
        raise SimError(f"{command} takes analyzer and judge settings (analyzer.NAME.KEY=VALUE, backend=..., "
                       f"runner.{'/'.join(JUDGE_REQUEST_KEYS)}), got {bad[0]!r}")
    return compose_config(overrides)


def with_schema_defaults(cfg: DictConfig) -> DictConfig:
    """`cfg` with each backend, scenario and analyzer setting it lacks at its schema's default: a run stored before a
    setting existed goes on with that setting's default (constructors take no defaults of their own)."""
    nodes = [("backend", backends), ("scenario", scenarios.scenarios)]
    nodes += [(f"analyzer.{name}", analyzers.analyzers) for name in (cfg.get("analyzer") or {})]
    for key, registry in nodes:
        node = OmegaConf.select(cfg, key)
        schema = registry.schema_for_target(node.get("_target_")) if isinstance(node, DictConfig) else None
        if schema is not None:
            # Plain defaults under the stored node: a stored key that today's schema no longer has is kept for the
            # constructor to judge, not refused by the merge.
            OmegaConf.update(cfg, key, OmegaConf.merge(OmegaConf.to_container(OmegaConf.structured(schema)), node), merge=False)
    return cfg


def override_key(override: str) -> str:
    """The dotted key a command-line override sets: `+backend.model=x` sets `backend.model`."""
    return override.lstrip("+~").split("=", 1)[0]


def apply_overrides(stored: DictConfig, composed: DictConfig, overrides: list[str]) -> None:
    """Set each key the overrides name in `stored` to its value in `composed` (a whole node for `backend=...`, and
    for a preset placed at a key, `+backend@analyzer.NAME.judge=PRESET`)."""
    for override in overrides:
        key = override_key(override).rpartition("@")[2]
        value = composed[key] if key in GROUPS else OmegaConf.select(composed, key)
        OmegaConf.update(stored, key, value, merge=False, force_add=True)
