"""The `sim` command line."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import click
from rich.console import Console

from sim.config import StoreConfig
from sim.errors import DEBUG_ENV, SimError

if TYPE_CHECKING:
    from sim.store import Store

DEFAULT_DB = StoreConfig.path


class SimGroup(click.Group):
    """Shows a SimError as one line on stderr and exits 1, unless --debug asks for the traceback."""

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, turning a SimError into one line on stderr."""
        try:
            return super().invoke(ctx)
        except SimError as exc:
            if os.environ.get(DEBUG_ENV):
                raise
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)


@click.group(cls=SimGroup)
@click.version_option(package_name="artifact-sim")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
def cli(debug: bool) -> None:
    """artifact-sim: generate LLM data with role-assigned agents, log it to SQLite, and measure its artifacts."""
    if debug:
        os.environ[DEBUG_ENV] = "1"


@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_extra_args": True, "help_option_names": []},
)
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def run(overrides: tuple[str, ...]) -> None:
    """Generate data with Hydra overrides; `sim run --help` lists the config.

    \b
    Examples:
        sim run
        sim run scenario.n_episodes=5 scenario.max_turns=8 seed=7
        sim run -m seed=1,2,3 store.path=runs/sweep.db
    """
    from sim.app import check_overrides, run_hydra  # Hydra and the model stack load only for `run`

    check_overrides(list(overrides))
    run_hydra(list(overrides))


def _open(db: str) -> "Store":
    """An existing database; commands that only read never create one."""
    from sim.store import Store

    return Store.open(db, create=False)


@cli.command(context_settings={"ignore_unknown_options": True})
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--run", "run_id", help="Only episodes of this run.")
@click.option("--dataset", help="Only episodes of this imported dataset.")
@click.option("--analyzer", "names", multiple=True, help="Analyzer to run; repeat for several (default: runner.analyze).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def analyze(
    db: str, run_id: Optional[str], dataset: Optional[str], names: tuple[str, ...], as_json: bool, overrides: tuple[str, ...]
) -> None:
    """Score stored episodes and print each analyzer's metrics per group with 95% CIs; OVERRIDES set analyzer
    settings as in `sim run` (conf/analyzer/), and `backend=...` picks the judge of the judge analyzers.

    \b
    Examples:
        sim analyze --db runs/sim.db --analyzer role_flip --json
        sim analyze --dataset p2c --analyzer preferences analyzer.preferences.lexicons=PATH/hummingbird_tokens_avg
        sim analyze --analyzer human_likeness backend=openai backend.model=gpt-4o-mini
    """
    from sim.analysis import analyze as run_analyzers
    from sim.analysis import build_analyzers
    from sim.app import compose_config
    from sim.report import summaries_table

    if bad := [o for o in overrides if not o.startswith(("analyzer.", "backend=", "backend."))]:
        raise SimError(f"sim analyze takes analyzer and judge settings (analyzer.NAME.KEY=VALUE, backend=...), got {bad[0]!r}")
    cfg = compose_config(list(overrides))
    selected = build_analyzers(cfg.analyzer, list(names) or list(cfg.runner.analyze))
    store = _open(db)
    try:
        if run_id is not None:
            store.run(run_id)
        summaries = run_analyzers(store, selected, run_id=run_id, dataset=dataset)
    finally:
        store.close()
    if as_json:
        document = {"db": db, "run": run_id, "dataset": dataset, "analyzers": [s.as_dict() for s in summaries]}
        click.echo(json.dumps(document, indent=2))
    else:
        Console().print(summaries_table(summaries))


@cli.command()
@click.argument("episode_id")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
def show(episode_id: str, db: str) -> None:
    """Render one stored conversation with its analyzer flags.

    \b
    Example:
        sim show 20261125-080000-1a2b3c-e0000
    """
    from sim.report import render_episode

    store = _open(db)
    try:
        episode = store.episode(episode_id)
        annotations = store.annotations(episode_id)
    finally:
        store.close()
    render_episode(Console(), episode, annotations)


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--run", "run_id", help="Only this run (default: the latest run).")
@click.option("--all", "all_runs", is_flag=True, help="Episodes of every run and import.")
def episodes(db: str, run_id: Optional[str], all_runs: bool) -> None:
    """List stored episodes with their endings, to find an id for `sim show`.

    \b
    Example:
        sim episodes --db runs/sim.db
    """
    from sim.report import episodes_table

    store = _open(db)
    try:
        if run_id is not None:
            store.run(run_id)
        elif not all_runs:
            run_id = store.latest_run_id()
        rows = store.episode_rows(run_id)
    finally:
        store.close()
    Console().print(episodes_table(rows))


@cli.command("import")
@click.argument("format_name", metavar="FORMAT", required=False)
@click.argument("path", required=False, type=click.Path(path_type=Path))
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database (created if missing).")
@click.option("--dataset", help="Dataset name for the imported episodes (default: the file name without extension).")
@click.option("-o", "--option", "options", multiple=True, metavar="KEY=VALUE", help="Importer option; repeat for several.")
@click.option("--list", "list_formats", is_flag=True, help="List the import formats and exit.")
def import_command(
    format_name: Optional[str], path: Optional[Path], db: str, dataset: Optional[str], options: tuple[str, ...], list_formats: bool
) -> None:
    """Load a human or published-LLM reference corpus into the store as imported episodes.

    \b
    Examples:
        sim import --list
        sim import dailydialog ../shared/data/conversations/dailydialog/dailydialog_sample_2624.jsonl
        sim import table my_texts.csv -o text=body -o speaker=author --dataset mine
        sim import hf:json my_texts.jsonl -o text=body --dataset mine
    """
    from sim.importers import importers, parse_options
    from sim.importing import import_file
    from sim.store import Store

    if list_formats:
        for name in importers.names():
            click.echo(f"{name:20} {importers.get(name).description}")
        return
    parsed: dict[str, str] = {}
    if format_name and format_name.startswith("hf:"):
        format_name, parsed["builder"] = "hf", format_name[3:]
        path = path or Path(parsed["builder"].replace("/", "_"))
    if not format_name or path is None:
        raise SimError("sim import needs FORMAT and PATH (or --list)")
    parsed.update(parse_options(options, "-o"))
    importers.get(format_name)
    store = Store.open(db)
    try:
        report = import_file(store, format_name, path, dataset, parsed)
    finally:
        store.close()
    if report.already_imported:
        click.echo(f"{path} was already imported as dataset {report.dataset!r} ({format_name}); nothing added")
        return
    click.echo(f"imported {report.n_episodes} episodes ({report.n_turns} turns) from {path} as dataset {report.dataset!r} into {db}")
    for skipped in report.skipped:
        click.echo(f"  skipped {path}:{skipped.line}: {skipped.reason}")
