"""The Hydra application behind `sim run`, and a pre-flight check that turns config errors into one line."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException
from rich.console import Console

from sim.compose import (  # registers analyzers, scenarios, backends and the config schemas
    CONFIG_MODULE, CONFIG_NAME, compose_config, config_dir_overrides, hydra_error_line, judge_choices, override_key,
)
from sim.config import scrub, secret_override
from sim.errors import DEBUG_ENV, SimError, one_line
from sim.report import print_run
from sim.ids import new_run_id, sweep_job_run_id
from sim.runner import execute

# Added to an unexpected error's one line.
DEBUG_HINT = "(`sim --debug run ...` shows where)"
MULTIRUN_FLAGS = ("-m", "--multirun")
# Loggers whose INFO records the job's log shows; other packages' only from WARNING on, unless `sim --debug`.
OWN_LOGGERS = ("sim", "agents", "scenarios", "analyzers", "__main__")
# The shell's status for a program stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT = 130
# A run that runner.max_cost_usd or runner.max_tokens stopped, resumable with a higher cap.
BUDGET_EXIT = 3
# Launcher presets whose jobs run on other machines, where one SQLite file would be shared over a network file system.
CLUSTER_LAUNCHERS = ("slurm", "submitit_slurm")
RAY_LAUNCHERS = ("ray_cluster", "ray")
SHARD_PER_JOB = "store.path='${hydra:sweep.dir}/shards/${hydra:job.num}.db'"
# The folder of each sweep this process started (SweepFolder records it), removed again if the sweep leaves
# nothing in it but Hydra's multirun.yaml: every job refused, or a launcher that could not start.
started_sweeps: list[Path] = []


def _value_variants(overrides: list[str]) -> list[list[str]]:
    """Override lists that together try every value of every sweep once (others at their first value)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    firsts, choices = [], []
    for override in parsed:
        key = override.get_key_element()
        if override.is_sweep_override() and override.is_discrete_sweep():
            values = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            values = [override.input_line]
        firsts.append(values[0])
        choices.append(values)
    variants = [firsts]
    for position, values in enumerate(choices):
        for value in values[1:]:
            variants.append(firsts[:position] + [value] + firsts[position + 1 :])
    return variants


def _missing_keys(cfg: DictConfig) -> list[str]:
    """Dotted keys left `???`, found without resolving interpolations: `${hydra:job.num}` in a shard's
    store.path only resolves inside a job."""
    found = []

    def walk(node: object, prefix: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        elif node == "???":
            found.append(prefix[:-1])

    walk(OmegaConf.to_container(cfg, resolve=False), "")
    return sorted(found)


def check_overrides(args: list[str]) -> None:
    """Compose the config for every override value before Hydra runs anything; raise SimError on a bad one."""
    args, search_path = config_dir_overrides(args)
    if secret := next((a for a in args if secret_override(a)), None):
        raise SimError(
            f"{override_key(secret)}: keys are not taken on the command line, where Hydra would write them into its "
            "output folder; put the key in an environment variable and name it with backend.api_key_env "
            "(or, for a header, write its value as ${oc.env:NAME})"
        )
    if any(arg.startswith("-") and arg not in MULTIRUN_FLAGS for arg in args):
        return  # Hydra's own flags (--help, --cfg, ...) are Hydra's to handle
    overrides = [arg for arg in args if arg not in MULTIRUN_FLAGS]
    if keyless := [o for o in overrides if o.lstrip("+~").startswith("=")]:
        raise SimError(f"override {keyless[0]!r} has no key; expected KEY=VALUE")
    if len(overrides) < len(args):  # a sweep
        if any(o.startswith("run.id=") and "," not in o for o in overrides):
            raise SimError("with -m every job needs its own run id: leave run.id unset (or sweep it, run.id=a,b)")
        _check_shard_per_job(overrides)
    try:
        variants = _value_variants(overrides)
    except (HydraException, OmegaConfBaseException) as exc:
        raise SimError(hydra_error_line(exc)) from None
    for variant in variants:
        missing = _missing_keys(compose_config(search_path + variant))
        if missing:
            raise SimError(f"{', '.join(missing)} must be set, e.g. {missing[0]}=...")


def _store_files(cfg: DictConfig) -> Optional[tuple[Optional[tuple[int, int, int]], ...]]:
    """Inode, size and modification time of the database's file, WAL and journal (None where one is missing): what
    any write to the store changes. None when store.path cannot be resolved."""
    try:
        path = Path(str(cfg.store.path)).expanduser()
    except OmegaConfBaseException:
        return None
    state = []
    for file in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
        try:
            stat = file.stat()
        except OSError:
            state.append(None)
        else:
            state.append((stat.st_ino, stat.st_size, stat.st_mtime_ns))
    return tuple(state)


def _remove_job_folder(hydra_cfg: DictConfig) -> None:
    """Remove what Hydra wrote for this job (its config snapshot and log), then each folder this leaves empty,
    up to the working folder. A sweep's folder keeps its other jobs and multirun.yaml, so it stays."""
    folder = Path(hydra_cfg.runtime.output_dir)
    snapshot = folder / hydra_cfg.output_subdir if hydra_cfg.output_subdir else None
    written = [snapshot / name for name in ("config.yaml", "hydra.yaml", "overrides.yaml")] if snapshot else []
    log = OmegaConf.select(hydra_cfg, "job_logging.handlers.file.filename", default=None, throw_on_resolution_failure=False)
    if log is not None and Path(log).parent == folder:  # a log shared with other jobs is not this job's to remove
        written.append(Path(log))
    for file in written:
        file.unlink(missing_ok=True)
    _remove_empty_folders([snapshot, folder] if snapshot else [folder], Path(hydra_cfg.runtime.cwd))


def _remove_empty_folders(folders: list[Path], cwd: Path) -> None:
    """Remove `folders` in order, then the last one's parents below `cwd`, stopping at the first that is not empty
    (another job's folder, or a file that is not ours)."""
    for empty in [*folders, *(parent for parent in folders[-1].parents if cwd in parent.parents)]:
        try:
            empty.rmdir()
        except OSError:
            return


def _remove_empty_sweeps(cwd: Path) -> None:
    """Remove the folder of each sweep this process started that holds nothing but Hydra's multirun.yaml."""
    for sweep_dir in started_sweeps:
        if sweep_dir.is_dir() and [p.name for p in sweep_dir.iterdir()] == ["multirun.yaml"]:
            (sweep_dir / "multirun.yaml").unlink()
            _remove_empty_folders([sweep_dir], cwd)


class SweepFolder(Callback):
    """Records the folder of each sweep as it starts, so that a sweep that leaves nothing there can remove it."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Note the sweep's folder."""
        started_sweeps.append(Path.cwd() / config.hydra.sweep.dir)


def _check_shard_per_job(overrides: list[str]) -> None:
    """Refuse a sweep whose jobs run on several machines but would all write one store.path."""
    values = {key: value for key, _, value in (o.lstrip("+").partition("=") for o in overrides)}
    launcher = values.get("hydra/launcher", "")
    on_a_cluster = launcher in CLUSTER_LAUNCHERS or (
        launcher in RAY_LAUNCHERS and values.get("hydra.launcher.ray.init.address", "null") not in ("null", "")
    )
    path = values.get("store.path", "")
    if on_a_cluster and "hydra:job." not in path and "," not in path:
        raise SimError(
            f"hydra/launcher={launcher} runs jobs on several machines, and SQLite must not be shared over a network "
            f"file system: give each job its own shard, {SHARD_PER_JOB}, and merge them with `sim merge`"
        )


@hydra.main(version_base="1.3", config_path=f"pkg://{CONFIG_MODULE}", config_name=CONFIG_NAME)
def hydra_main(cfg: DictConfig) -> None:
    """One Hydra job: generate, store, analyze, print the summary."""
    hydra_cfg = HydraConfig.get()
    if not os.environ.get(DEBUG_ENV):  # HTTP clients log a line per request at INFO, Hydra's level for the job
        for handler in logging.getLogger().handlers:
            handler.addFilter(_own_or_warning)
    sweep_id = hydra_cfg.sweep.dir if hydra_cfg.mode == RunMode.MULTIRUN else None
    task_overrides = list(hydra_cfg.overrides.task)
    if not cfg.run.id:
        cfg.run.id = sweep_job_run_id(sweep_id, hydra_cfg.job.num, task_overrides) if sweep_id else new_run_id()
    _rewrite_snapshot(hydra_cfg, cfg.run.id)
    store_before = _store_files(cfg)
    try:
        report = execute(cfg, sweep_id=sweep_id, overrides=task_overrides, on_start=_say_started)
    except KeyboardInterrupt:
        if store_before is not None and _store_files(cfg) == store_before:
            raise
        resume = [o for o in task_overrides if override_key(o) != "run.id"] + [f"run.id={cfg.run.id}"]
        print(f"interrupted; run {cfg.run.id} keeps what it stored. Resume it with: sim run {shlex.join(resume)}", file=sys.stderr)
        raise SystemExit(INTERRUPTED_EXIT) from None
    except Exception as exc:
        # Refused before it wrote to the store (bad config, unusable database): Hydra's folder for the job holds
        # only the refused config, so the job leaves nothing. A job that stored a run keeps its folder and log.
        if store_before is not None and _store_files(cfg) == store_before:
            _remove_job_folder(hydra_cfg)
        if os.environ.get(DEBUG_ENV):
            raise
        error = exc if isinstance(exc, SimError) else SimError(f"{one_line(str(exc))} {DEBUG_HINT}")
        if sweep_id is None:
            print(f"error: {error}", file=sys.stderr)
            raise SystemExit(1) from None
        # Said now, for this job; Hydra then goes on with the sweep's other jobs and raises the first failure last.
        print(f"error: job {hydra_cfg.job.num} ({' '.join(task_overrides)}): {error}", file=sys.stderr)
        raise error from None
    print_run(Console(), report)
    if report.stopped:
        resume = [o for o in task_overrides if override_key(o) != "run.id"] + [f"run.id={cfg.run.id}"]
        print(f"stopped: budget; run {cfg.run.id} keeps what it stored. Resume it with a higher runner.max_cost_usd or "
              f"runner.max_tokens: sim run {shlex.join(resume)}", file=sys.stderr)
        if sweep_id is None:  # a sweep goes on with its other jobs
            raise SystemExit(BUDGET_EXIT)


def _own_or_warning(record: logging.LogRecord) -> bool:
    """Let a log record through when it is this project's, or a warning or worse from anyone."""
    return record.levelno >= logging.WARNING or record.name.split(".")[0] in OWN_LOGGERS


def _say_started(run_id: str, db_path: Path, resumed: bool) -> None:
    """Name the run and its database before the first turn, so that an interrupted run can be found."""
    print(f"run {run_id} {'resumed' if resumed else 'started'}, stored in {db_path}", flush=True)


def _rewrite_snapshot(hydra_cfg: DictConfig, run_id: str) -> None:
    """Write the job's run id into the config Hydra saved for it before the job started, with every secret-looking
    value there (from a config file under --config-dir, say) replaced."""
    if not hydra_cfg.output_subdir:
        return
    saved = Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir / "config.yaml"
    if saved.is_file():
        snapshot = OmegaConf.create(scrub(OmegaConf.to_container(OmegaConf.load(saved), resolve=False)))
        OmegaConf.update(snapshot, "run.id", run_id, force_add=True)
        OmegaConf.save(snapshot, saved)


def run_hydra(args: list[str]) -> None:
    """Hand the command-line overrides to the Hydra app, as if it were the program."""
    # Hydra would print its own (trimmed) traceback and exit; with a full error it raises instead, so that a
    # launcher that cannot start (no SLURM here, clashing flags) ends as one line unless --debug asks for more.
    os.environ["HYDRA_FULL_ERROR"] = "1"
    sys.argv = ["sim", *judge_choices(args)]
    started_sweeps.clear()
    try:
        hydra_main()
    except SimError as exc:
        _remove_empty_sweeps(Path.cwd())
        if set(args) & set(MULTIRUN_FLAGS) and not os.environ.get(DEBUG_ENV):
            raise SimError(f"{exc} (the first failed job of the sweep; the other jobs ran)") from None
        raise
    except Exception as exc:
        _remove_empty_sweeps(Path.cwd())
        if os.environ.get(DEBUG_ENV):
            raise
        raise SimError(f"{hydra_error_line(exc)} {DEBUG_HINT}") from None
