"""The catalog of every metric the registered analyzers report, read from their declarations (`Analyzer.metrics`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from analyzers import analyzers
from analyzers.base import MetricInfo
from sim.errors import SimError


@dataclass(frozen=True)
class CatalogEntry:
    """One declared metric of one analyzer."""

    analyzer: str
    name: str
    info: MetricInfo

    def as_dict(self) -> dict[str, Any]:
        """The entry as plain JSON-ready values."""
        return {"analyzer": self.analyzer, "name": self.name, **asdict(self.info)}


def catalog(name: Optional[str] = None) -> list[CatalogEntry]:
    """Every metric by analyzer; with `name`, the metrics of the analyzer of that name, or the metric it names
    (declared, as `choice[JUDGE]`, or as stored, as `choice[gpt-4o]`)."""
    if name in analyzers.names():
        return [CatalogEntry(name, metric, info) for metric, info in analyzers.get(name).metrics.items()]
    entries = [CatalogEntry(a, metric, info) for a in analyzers.names() for metric, info in analyzers.get(a).metrics.items()]
    if name is None:
        return entries
    found = [entry for entry in entries if entry.name == name]
    if not found:
        found = [CatalogEntry(a, *declared) for a in analyzers.names() if (declared := analyzers.get(a).metric_info(name))]
    if not found:
        raise SimError(f"no metric or analyzer named {name!r} (analyzers: {', '.join(analyzers.names())}; `sim metrics` lists every metric)")
    return found
