"""Progress of a run (bars on a terminal, periodic lines elsewhere), and a bar over the jobs of a sweep
(`sim run -m`) as a Hydra callback."""

from __future__ import annotations

import math
import sys
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Optional

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig
from tqdm import tqdm

if TYPE_CHECKING:
    from sim.requests import RequestStats

# Launchers that run jobs one after another in this process; the others report progress their own way
# (the joblib launcher through `hydra.launcher.verbose`, SLURM and Ray through their own tools).
IN_PROCESS_LAUNCHERS = ("hydra._internal.core_plugins.basic_launcher.BasicLauncher",)
# Where stderr is not a terminal (piped, redirected to a log, a batch job), a progress line this often.
LINE_EVERY_S = 10.0
# On a terminal, the retries, waits and request limit beside the bars are redrawn this often, so that a run whose
# requests all wait (out a backoff or a server's Retry-After) still shows its numbers and clock moving.
BAR_REFRESH_S = 1.0


class RunProgress:
    """Episodes and turns of one run as they end, with the requests' retries, waits and (when adaptive) limit:
    tqdm bars where stderr is a terminal, redrawn every BAR_REFRESH_S; elsewhere one line to stderr every `every_s`
    seconds, so that a run in the background never looks stuck. `requests()` says where the requests stand."""

    def __init__(self, total: int, enabled: bool, requests: Callable[[], "RequestStats"], every_s: float = LINE_EVERY_S) -> None:
        self.total, self.episodes, self.turns = total, 0, 0
        self._requests = requests
        self._bars = enabled and sys.stderr.isatty()
        self._every_s = BAR_REFRESH_S if self._bars else every_s
        self._episodes_bar = tqdm(total=total, desc="episodes", unit="ep", disable=not self._bars, position=0)
        self._turns_bar = tqdm(desc="turns", unit="turn", disable=not self._bars, position=1, leave=False)
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._lines = threading.Thread(target=self._report, daemon=True) if enabled else None

    def __enter__(self) -> "RunProgress":
        if self._lines is not None:
            self._lines.start()
        return self

    def __exit__(self, kind: Optional[type[BaseException]], error: Optional[BaseException], trace: Optional[TracebackType]) -> None:
        self._stop.set()
        if self._lines is not None:
            self._lines.join()
        self._turns_bar.close()
        self._episodes_bar.close()

    def turn_done(self) -> None:
        """One more turn played (or kept from before a resume)."""
        self.turns += 1
        self._turns_bar.update(1)

    def episode_done(self) -> None:
        """One more episode ended."""
        self.episodes += 1
        self._episodes_bar.update(1)

    def requests(self) -> str:
        """Requests retried, those waiting (of them, those a server turned away as overloaded) and, when adaptive,
        the request limit now and its ceiling."""
        stats = self._requests()
        words = f"{stats.retried} retries ({stats.waiting} waiting, {stats.rate_limited} rate-limited)"
        if stats.limit.adaptive:
            words += f", request limit {stats.limit.current}/{stats.limit.ceiling} (auto)"
        return words

    def line(self) -> str:
        """Where the run stands, in one line."""
        elapsed = time.perf_counter() - self._started
        return (
            f"progress: episodes {self.episodes}/{self.total}, {self.turns} turns ({self.turns / max(elapsed, 1e-9):.2f}/s), "
            f"{self.requests()}, {elapsed:.0f} s"
        )

    def _report(self) -> None:
        while not self._stop.wait(self._every_s):
            if self._bars:
                self._turns_bar.set_postfix_str(self.requests())  # redraws the bar, its clock too
                self._episodes_bar.refresh()
            else:
                print(self.line(), file=sys.stderr, flush=True)


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
