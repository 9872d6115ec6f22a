"""A progress bar over the jobs of a sweep (`sim run -m`), as a Hydra callback."""

from __future__ import annotations

import math
from typing import Any, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from tqdm import tqdm

# Launchers that run jobs one after another in this process; the others report progress their own way
# (the joblib launcher through `hydra.launcher.verbose`, SLURM and Ray through their own tools).
IN_PROCESS_LAUNCHERS = ("hydra._internal.core_plugins.basic_launcher.BasicLauncher",)


def count_jobs(overrides: list[str]) -> int:
    """How many jobs a sweep over these command-line overrides launches (Hydra's basic sweeper: the product)."""
    parsed = OverridesParser.create().parse_overrides(overrides)
    return math.prod(len(list(o.sweep_string_iterator())) if o.is_discrete_sweep() else 1 for o in parsed if o.is_sweep_override())


class JobProgress(Callback):
    """Counts finished jobs of a multirun whose jobs run in this process."""

    def __init__(self) -> None:
        self.bar: Optional[tqdm] = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Open the bar when the launcher runs the jobs here and progress is on."""
        if config.hydra.launcher._target_ in IN_PROCESS_LAUNCHERS and config.runner.progress:
            total = count_jobs(list(config.hydra.overrides.task))
            self.bar = tqdm(total=total, desc="jobs", unit="job", disable=None, position=2)

    def on_job_end(self, config: DictConfig, job_return: Any, **kwargs: Any) -> None:
        """One more job done."""
        if self.bar is not None:
            self.bar.update(1)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        """Close the bar."""
        if self.bar is not None:
            self.bar.close()
