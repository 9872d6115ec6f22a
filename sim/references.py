"""Reference items for a scenario: read from a file with an importer, or taken from a dataset already in the store."""

from __future__ import annotations

from pathlib import Path
from sim.errors import SimError
from sim.importers import Source, importers
from sim.importing import check_readable
from sim.records import Episode
from sim.store import Store


def load_reference(spec: str, format_name: str, options: dict[str, str], store_path: Path) -> list[Episode]:
    """The episodes of `spec`: a file or folder read with importer `format_name` (nothing is stored), or the
    name of a dataset imported earlier with `sim import` into the database at `store_path`. `options` are the
    importer's options, as `sim import -o KEY=VALUE` takes them."""
    path = Path(spec).expanduser()
    if path.exists():
        importer = importers.get(format_name)()
        check_readable(path, importer.reads_folders)
        source = Source(path=path, dataset=path.stem, options=options)
        return [item for item in importer.episodes(source) if isinstance(item, Episode)]
    store_path = Path(store_path).expanduser()
    episodes: list[Episode] = []
    if store_path.exists():
        store = Store.open(store_path, create=False)
        try:
            episodes = list(store.episodes(dataset=spec))
        finally:
            store.close()
    if not episodes:
        raise SimError(f"scenario.reference: {spec!r} is neither a file nor a dataset imported into {store_path}")
    return episodes
