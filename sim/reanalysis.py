"""`sim reanalyze`: analyze again where stored annotations come from another version of their analyzer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

from analyzers import analyzers
from sim.analysis import analyze, build_analyzers
from sim.compose import analysis_settings
from sim.store import Store
from sim.summary import AnalyzerSummary


@dataclass
class Reanalysis:
    """One analyzer run again over one run or dataset."""

    analyzer: str
    version: str
    old_versions: str
    run_id: Optional[str]
    dataset: Optional[str]
    n_episodes: int
    summary: AnalyzerSummary

    @property
    def scope(self) -> str:
        """`run ID` or `dataset NAME`."""
        return f"dataset {self.dataset}" if self.dataset else f"run {self.run_id}"

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "analyzer": self.analyzer, "version": self.version, "old_versions": self.old_versions.split(","),
            "run": self.run_id, "dataset": self.dataset, "n_episodes": self.n_episodes, "summary": self.summary.as_dict(),
        }


def reanalyze(store: Store, names: list[str], overrides: list[str]) -> list[Reanalysis]:
    """Run each named analyzer (default: every registered one with stored annotations) again on each run and
    dataset whose annotations another version wrote; the new annotations replace all the old ones there."""
    cfg = analysis_settings(overrides, "sim reanalyze")
    names = names or [name for name in store.analyzed_names() if name in analyzers.names()]
    done = []
    for analyzer in build_analyzers(cfg.analyzer, names, cfg.runner):
        for run_id, dataset, old_versions, n_stale in store.stale_scopes(analyzer.name, analyzer.version):
            (summary,) = analyze(store, [analyzer], run_id=run_id, dataset=dataset)
            store.drop_other_versions(analyzer.name, analyzer.version, run_id, dataset)
            done.append(Reanalysis(analyzer.name, analyzer.version, old_versions, run_id, dataset, n_stale, summary))
    return done
