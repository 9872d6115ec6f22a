"""Importers of human and published-LLM reference corpora; importing this package registers the built-in ones."""

from sim.importers.base import ImportProblem, Importer, Skipped, Source, importers, parse_options
from sim.importers import (  # noqa: F401  (registration)
    camel,
    casino,
    dailydialog,
    dealornodeal,
    free_text,
    hf_datasets,
    instructions,
    persuasionforgood,
    preferences,
    spp,
    table,
    task_labels,
    tasks,
)

__all__ = ["ImportProblem", "Importer", "Skipped", "Source", "importers", "parse_options"]
