"""The `sim` command line."""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, Optional

import click
from rich.console import Console
from rich.markup import escape

from sim.errors import DEBUG_ENV, SimError
from sim.store_config import StoreConfig

if TYPE_CHECKING:
    from analyzers.base import Analyzer
    from sim.records import Annotation, Episode
    from sim.store import Store

DEFAULT_DB = StoreConfig.path


def _usage_error(exc: click.UsageError) -> NoReturn:
    """Say a command-line mistake in one line naming the command (click's own form takes three), and exit 2."""
    command = exc.ctx.command_path if exc.ctx is not None else "sim"
    message = exc.format_message().rstrip(".")
    click.echo(f"error: {command}: {message[:1].lower()}{message[1:]} (see `{command} --help`)", err=True)
    sys.exit(exc.exit_code)


class OneLineUsage(click.Command):
    """A command whose usage errors are one line naming it (click raises some, such as an option without its
    value, before the error knows its command)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Parse the command's arguments, saying a mistake in one line that names the command."""
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            exc.ctx = ctx
            _usage_error(exc)


class SimGroup(OneLineUsage, click.Group):
    """Shows a SimError as one line on stderr and exits 1, unless --debug asks for the traceback; a usage
    error (a missing argument, an unknown option or command) is one line too, with exit status 2."""

    command_class = OneLineUsage

    def invoke(self, ctx: click.Context) -> object:
        """Run the command, turning a SimError or a usage error into one line on stderr."""
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage_error(exc)
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


def _flag_names() -> tuple[str, ...]:
    """Turn-level annotations that flag a problem (not per-turn measurements): analyzers' and live guards'."""
    from analyzers import analyzers
    from sim.guards import GUARD_FLAGS

    return (*GUARD_FLAGS, *(name for a in analyzers.names() for name in analyzers.get(a).turn_flags))


def _flags_only(annotations: list["Annotation"]) -> list["Annotation"]:
    """Episode-level values and turn flags, for rendering a conversation."""
    flags = set(_flag_names())
    return [a for a in annotations if a.turn_idx is None or a.name in flags]


def _open(db: str, writes: bool = False) -> "Store":
    """An existing database (commands never create one to read it), checked to be writable when `writes`."""
    from sim.store import Store

    return Store.open(db, create=False, writable=writes, option="--db")


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--run", "run_id", help="Only episodes of this run.")
@click.option("--dataset", help="Only episodes of this imported dataset.")
@click.option("--all", "all_episodes", is_flag=True, help="Every run and imported dataset (default: the latest run, if any).")
@click.option("--analyzer", "names", multiple=True, help="Analyzer to run; repeat for several (default: runner.analyze).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def analyze(
    db: str, run_id: Optional[str], dataset: Optional[str], all_episodes: bool, names: tuple[str, ...], as_json: bool,
    overrides: tuple[str, ...],
) -> None:
    """Score stored episodes (the latest run unless --run, --dataset or --all say otherwise) and print each
    analyzer's metrics per group with 95% CIs; OVERRIDES set analyzer
    settings as in `sim run` (conf/analyzer/); `analyzer.NAME.judge=PRESET` names the judge of a judge analyzer
    (`analyzer.NAME.judge=self`: the composed backend, set with `backend=...`).

    \b
    Examples:
        sim analyze --db runs/sim.db --analyzer role_flip --json
        sim analyze --all
        sim analyze --dataset p2c --analyzer preferences analyzer.preferences.lexicons=PATH/hummingbird_tokens_avg
        sim analyze --analyzer human_likeness analyzer.human_likeness.judge=openai analyzer.human_likeness.judge.model=gpt-4o-mini
    """
    from sim.analysis import analyze as run_analyzers
    from sim.analysis import build_analyzers
    from sim.compose import analysis_settings
    from sim.report import summaries_table, validity_note
    from sim.validation import latest_validations

    cfg = analysis_settings(list(overrides), "sim analyze")
    selected = build_analyzers(cfg.analyzer, list(names) or list(cfg.runner.analyze), cfg.runner)
    store = _open(db, writes=True)
    try:
        if run_id is not None:
            store.run(run_id)
        scope = "every run and imported dataset"
        if run_id is None and dataset is None and not all_episodes and (run_id := store.latest_run_id()) is not None:
            scope = f"run {run_id}, the latest (--all for every run and imported dataset)"
        elif run_id is not None or dataset is not None:
            scope = f"run {run_id}" if dataset is None else f"dataset {dataset}" + (f" in run {run_id}" if run_id else "")
        summaries = run_analyzers(store, selected, run_id=run_id, dataset=dataset)
        validity = [latest_validations(store, analyzer) for analyzer in selected]
    finally:
        store.close()
    for analyzer, summary, found in zip(selected, summaries, validity):
        if analyzer.detectors:  # a detector's rates are read beside the validity it last showed
            summary.notes.append(validity_note(found, analyzer.name, [d.kind for d in analyzer.detectors]))
    if as_json:
        analyzed = [{**s.as_dict(), "validity": found} for s, found in zip(summaries, validity)]
        document = {"db": db, "run": run_id, "dataset": dataset, "analyzers": analyzed}
        click.echo(json.dumps(document, indent=2))
    else:
        console = Console()
        console.print(f"analyzed {escape(scope)}")
        console.print(summaries_table(summaries))


def _kinds(ctx: click.Context, param: click.Parameter, value: Optional[str]) -> Optional[list[str]]:
    """`swap,loop` as a list of known perturbation kinds."""
    from sim.perturbation import KINDS

    if value is None:
        return None
    kinds = [kind.strip() for kind in value.split(",") if kind.strip()]
    if not kinds or any(kind not in KINDS for kind in kinds):
        raise click.BadParameter(f"{value!r}: kinds are a comma-separated list of {', '.join(KINDS)}")
    return kinds


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database holding the corpus.")
@click.option("--dataset", help="Imported corpus to perturb.")
@click.option("--run", "run_id", help="Generated run to perturb (instead of --dataset).")
@click.option("--distractors", help="Imported corpus whose turns serve as off-task turns (default: built-in small talk).")
@click.option("--analyzer", "names", multiple=True, help="Analyzer to validate; repeat for several (default: every one with a per-turn detector).")
@click.option("--kinds", callback=_kinds, help="Perturbations, comma-separated: swap, digression, loop, marker (default: all that fit).")
@click.option("--rate", default=0.2, show_default=True, type=click.FloatRange(0, 1, min_open=True, max_open=True),
              help="Share of turns replaced in each perturbed conversation.")
@click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1), help="Seed of the perturbations.")
@click.option("--sample", type=click.IntRange(min=1), help="Test on this many conversations drawn at random (for the seed) from a larger corpus.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option("--out", type=click.Path(path_type=Path), help="Also write validity.md and roc.png into this folder.")
@click.option("--record/--no-record", default=True, show_default=True, help="Store the results in the database's validations table.")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def validate(
    db: str, dataset: Optional[str], run_id: Optional[str], distractors: Optional[str], names: tuple[str, ...],
    kinds: Optional[list[str]], rate: float, seed: int, sample: Optional[int], as_json: bool, out: Optional[Path], record: bool,
    overrides: tuple[str, ...],
) -> None:
    """Known-answer tests of the detectors on a stored corpus: perturb a copy in a scratch store (turns of the
    other role, off-task turns, near-copy loops, CAMEL markers), run the analyzers, and report per kind the AUC
    of each detector's score and its flag's precision, recall, F1 and false-flag rate, with 95% intervals from
    resampling conversations. The database gains only the summary rows (`validations`), which `sim analyze`
    then cites. OVERRIDES set analyzer settings as in `sim analyze`.

    \b
    Examples:
        sim validate --dataset persuasionforgood --analyzer role_drift --json
        sim validate --dataset persuasionforgood --kinds digression --distractors dailydialog_sample_2624
        sim validate --run 20261125-080000-1a2b3c --kinds marker --out runs/validity
    """
    from analyzers import analyzers
    from sim.analysis import build_analyzers
    from sim.compose import analysis_settings
    from sim.perturbation import OFF_TASK
    from sim.report import rich_tables, validity_tables, write_validity_report
    from sim.validation import MIN_CONVERSATIONS, distractor_texts, kinds_to_run, sampled, validate as run_validation
    from sim.validation import record as record_cards

    if (dataset is None) == (run_id is None):
        raise click.UsageError("name the corpus with exactly one of --dataset or --run")
    cfg = analysis_settings(list(overrides), "sim validate")
    candidates = list(names) or [name for name in analyzers.names() if not analyzers.get(name).always_judges]
    built = build_analyzers(cfg.analyzer, candidates, cfg.runner)
    selected = [analyzer for analyzer in built if analyzer.detectors]
    if names and (scoreless := [a.name for a in built if not a.detectors]):
        raise _bad(f"{scoreless[0]} has no per-turn score to validate in these settings", "--analyzer")
    store = _open(db, writes=record)
    try:
        name = dataset or run_id
        if run_id is not None:
            store.run(run_id)
        corpus = sampled([e for e in store.episodes(run_id=run_id, dataset=dataset, text_only=True) if e.kind == "conversation"], sample, seed)
        if len(corpus) < MIN_CONVERSATIONS:
            where = "--dataset" if dataset else "--run"
            raise _bad(f"{name!r} holds {len(corpus)} conversations in {db}; a known-answer test needs at least {MIN_CONVERSATIONS}", where)
        pool = distractor_texts(store, distractors) if distractors else None
        if distractors and not pool:
            raise _bad(f"no imported dataset {distractors!r} with turns of 4 words or more in {db}", "--distractors")
        kinds = _checked_kinds(kinds_to_run(corpus, selected, kinds), corpus, selected, name)
        cards = run_validation(corpus, name, selected, kinds, rate, seed, pool or OFF_TASK, progress=not as_json)
        if record:
            record_cards(store, cards)
    finally:
        store.close()
    if out is not None:
        write_validity_report(out, cards, shlex.join(["sim", "validate", *sys.argv[sys.argv.index("validate") + 1 :]]))
    if as_json:
        click.echo(json.dumps({"db": db, "corpus": name, "rate": rate, "seed": seed, "cards": [c.as_dict() for c in cards]}, indent=2))
        return
    console = Console()
    for card, table in zip(cards, validity_tables(cards)):
        console.print(*rich_tables(table, console.width))
        for note in card.notes:
            console.print(f"[yellow]{card.analyzer}: {note}[/]")
    if out is not None:
        console.print(f"wrote {', '.join(str(path) for path in sorted(out.iterdir()) if path.name in ('validity.md', 'roc.png'))}")


def _checked_kinds(kinds: list[str], corpus: list["Episode"], selected: list["Analyzer"], name: str) -> list[str]:
    """Refuse a kind no selected analyzer detects or none of the corpus's conversations can take."""
    from sim.perturbation import applicable
    from sim.validation import detector_for

    for kind in kinds:
        if not any(detector_for(analyzer, kind) for analyzer in selected):
            raise _bad(f"no selected analyzer detects {kind!r} perturbations", "--kinds")
        if not any(applicable(kind, episode) for episode in corpus):
            raise _bad(f"no conversation of {name!r} can take a {kind!r} perturbation", "--kinds")
    if not kinds:
        raise _bad(f"no selected analyzer detects a perturbation that fits {name!r}", "--analyzer")
    return kinds


def _bad(message: str, option: str) -> click.BadParameter:
    """A bad option value of the running command: one line naming the command and the option, exit status 2."""
    return click.BadParameter(message, ctx=click.get_current_context(), param_hint=option)


@cli.command()
@click.argument("episode_id", required=False)
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--flagged", is_flag=True, help="Only turns an analyzer (role_flip, or the calibrated looped, off_task, drifted) or a live guard flagged.")
@click.option("--search", "query", help="Only turns matching this full-text query (SQLite FTS5 syntax: words, \"a phrase\", OR, prefix*).")
@click.option("--run", "run_id", help="Without EPISODE_ID: only episodes of this run.")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="Without EPISODE_ID: at most this many episodes.")
def show(episode_id: Optional[str], db: str, flagged: bool, query: Optional[str], run_id: Optional[str], limit: int) -> None:
    """Render a stored conversation with its analyzer flags; --flagged and --search keep only the turns that
    match, and without EPISODE_ID they find those turns in every episode (of --run).

    \b
    Examples:
        sim show 20261125-080000-1a2b3c-e0000
        sim show 20261125-080000-1a2b3c-e0000 --flagged
        sim show --search '"Instruction:" AND solution' --run 20261125-080000-1a2b3c
    """
    from sim.report import render_episode

    if episode_id is None and not (flagged or query):
        raise SimError("sim show needs an EPISODE_ID, or --flagged or --search to find turns (see `sim episodes`)")
    console = Console()
    store = _open(db)
    try:
        if episode_id is not None:
            store.episode(episode_id)  # a missing id is named even when no turn would match
        if run_id is not None:
            store.run(run_id)
        matches = None
        if flagged or query:
            matches = store.matching_turns(episode_id, run_id, query, _flag_names() if flagged else None)
            if not matches:
                console.print("no turn matches")
                return
        for shown in [episode_id] if matches is None else list(matches)[:limit]:
            episode = store.episode(shown)
            annotations = _flags_only(store.annotations(shown))
            if matches is not None:
                episode.turns = [turn for turn in episode.turns if turn.idx in matches[shown]]
            render_episode(console, episode, annotations, store.forks_of(shown))
        if matches is not None and len(matches) > limit:
            console.print(f"... and {len(matches) - limit} more episodes (--limit)")
    finally:
        store.close()


@cli.command()
@click.argument("first_id")
@click.argument("second_id")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
def diff(first_id: str, second_id: str, db: str) -> None:
    """Render two stored conversations side by side from the first turn where they differ (a fork and its parent,
    or two runs' conversations of one task), each turn with its analyzer flags.

    \b
    Example:
        sim diff 20261125-080000-1a2b3c-e0003 20261126-090000-4d5e6f-e0000
    """
    from sim.report import render_diff

    store = _open(db)
    try:
        first, second = store.episode(first_id), store.episode(second_id)
        annotations = (_flags_only(store.annotations(first_id)), _flags_only(store.annotations(second_id)))
    finally:
        store.close()
    render_diff(Console(), first, second, annotations)


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--run", "run_id", help="Only this run (default: the latest run).")
@click.option("--all", "all_runs", is_flag=True, help="Episodes of every run and import.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (one object per episode).")
def episodes(db: str, run_id: Optional[str], all_runs: bool, as_json: bool) -> None:
    """List stored episodes with their endings, to find an id for `sim show`.

    \b
    Examples:
        sim episodes --db runs/sim.db
        sim episodes --all --json
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
    if as_json:
        decoded = [{key.removesuffix("_json"): json.loads(value or "{}") if key.endswith("_json") else value for key, value in row.items()} for row in rows]
        click.echo(json.dumps(decoded, indent=2))
    else:
        console = Console()
        console.print(episodes_table(rows, console.width))


@cli.group(invoke_without_command=True)
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--sweep", "sweep_id", help="Only the runs of this sweep (its id, as `sim compare --sweep` takes it).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON (one object per run).")
@click.pass_context
def runs(ctx: click.Context, db: str, sweep_id: Optional[str], as_json: bool) -> None:
    """List stored runs: status, scenario, model, episodes done/failed/pending, turns and the share cut at
    max_tokens, tokens in/out and cost of every request (judges' too; `unpriced` without backend.pricing),
    cache hits, wall time. `sim runs show ID` shows one run.

    \b
    Examples:
        sim runs
        sim runs --db runs/sweep.db --sweep multirun/2026-12-01/10-00-00-000000 --json
        sim runs show 20261125-080000-1a2b3c
    """
    if ctx.invoked_subcommand is not None:
        return
    from sim.report import rich_tables, run_record, runs_table

    store = _open(db)
    try:
        records = [run_record(row) for row in store.run_overview(sweep_id)]
    finally:
        store.close()
    if sweep_id is not None and not records:
        raise SimError(f"--sweep: no runs of sweep {sweep_id!r} in {db}")
    if as_json:
        click.echo(json.dumps(records, indent=2))
    else:
        console = Console()
        console.print(*rich_tables(runs_table(records), console.width))


@runs.command("show")
@click.argument("run_id")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON: config, overrides and ledger.")
def runs_show(run_id: str, db: str, as_json: bool) -> None:
    """Show one run: its stored config (secrets redacted), the overrides of each session that started or resumed
    it, its ledger per kind of call (turns, texts such as a task specifier's, judges), with cost and what the
    cache saved, and how its request limit went (with backend.max_concurrency=auto, or when the server said it was
    overloaded).

    \b
    Examples:
        sim runs show 20261125-080000-1a2b3c --db runs/sim.db
        sim runs show 20261125-080000-1a2b3c --json
    """
    from dataclasses import asdict

    from sim.report import ledger_table, request_limit_words, rich_tables, stored_request_limit

    store = _open(db)
    try:
        row = store.run(run_id)
        ledger, total = store.ledger(run_id), store.ledger_total(run_id)
        revisions = store.run_revisions(run_id)
    finally:
        store.close()
    overrides = None if row["overrides_json"] is None else json.loads(row["overrides_json"])
    limit = stored_request_limit(row, revisions)
    if as_json:
        shown = {"id": run_id, "status": row["status"], "config_yaml": row["config_yaml"], "overrides": overrides, "ledger": ledger, "total": total,
                 "request_limit": None if limit is None else asdict(limit)}
        click.echo(json.dumps(shown, indent=2))
        return
    console = Console()
    console.print(f"run [bold]{escape(run_id)}[/]  {escape(row['status'] or '')}  {escape(row['scenario'] or '')}  "
                  f"{escape(row['backend'] or '')}:{escape(row['model'] or '')}")
    if overrides is None:
        console.print("overrides: not recorded (the run predates their recording)")
    for number, session in enumerate(overrides or []):
        said = shlex.join(session) if session else "(none)"
        console.print(f"overrides {'started' if number == 0 else f'resume {number}'}: {escape(said)}")
    console.print("config:")
    console.print(escape((row["config_yaml"] or "").rstrip()), highlight=False)
    if ledger:
        console.print(*rich_tables(ledger_table(run_id, ledger, total), console.width))
    else:
        console.print("ledger: no requests recorded")
    if limit is not None and (limit.adaptive or limit.overloads):
        console.print(request_limit_words(limit))


def _overrides_and_config_dir(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """Let `--config-dir` through to Hydra with the overrides, and refuse any other unknown option."""
    from sim.compose import CONFIG_DIR_FLAGS

    for value in values:
        if value.startswith("-") and value.partition("=")[0] not in CONFIG_DIR_FLAGS:
            raise click.NoSuchOption(value.partition("=")[0], ctx=ctx)
    return values


@cli.command(context_settings={"ignore_unknown_options": True})
@click.argument("episode_id", required=False)
@click.option("--fork-at", "fork_at", type=int, required=True, help="Keep the turns before this index; regenerate from it on.")
@click.option("--run", "run_id", help="Fork every episode of this run (instead of EPISODE_ID) into one new run.")
@click.option("--episodes", help="With --run: only these episodes, comma-separated ids.")
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED, callback=_overrides_and_config_dir)
def replay(
    episode_id: Optional[str], fork_at: int, run_id: Optional[str], episodes: Optional[str], db: str, overrides: tuple[str, ...]
) -> None:
    """Regenerate a stored conversation from turn --fork-at on, with another backend, prompt or seed (OVERRIDES
    as in `sim run`), as a new episode (parent_id, fork_turn) of a new run; then analyze it. With --run, every
    episode of that run (or those --episodes lists) is forked into one new run, played concurrently
    (runner.concurrency) and resumable with `sim run run.id=ID` like any run; episodes shorter than --fork-at are
    skipped and counted.

    \b
    Examples:
        sim replay 20261125-080000-1a2b3c-e0000 --fork-at 3 seed=7
        sim replay 20261125-080000-1a2b3c-e0000 --fork-at 2 backend=openai backend.model=gpt-4o-mini
        sim replay 20261125-080000-1a2b3c-e0000 --fork-at 0 scenario.temperature=0.2
        sim replay --run 20261125-080000-1a2b3c --fork-at 3 backend=openai backend.model=gpt-4o-mini
    """
    from sim.replay import replay as replay_episode, replay_run
    from sim.report import print_run, render_episode
    from sim.ids import episode_id_of, episode_index_of

    if run_id is not None and episode_id is not None and "=" in episode_id:
        overrides, episode_id = (episode_id, *overrides), None  # with --run, the first argument is an override
    if (episode_id is None) == (run_id is None):
        raise click.UsageError("name what to fork with exactly one of EPISODE_ID or --run")
    if episodes is not None and run_id is None:
        raise click.UsageError("--episodes lists episodes of --run")
    console = Console()
    if run_id is not None:
        listed = [episode.strip() for episode in episodes.split(",") if episode.strip()] if episodes else None
        batch = replay_run(Path(db), run_id, fork_at, listed, list(overrides))
        skipped = f"; {batch.too_short} shorter than {fork_at} turns skipped" if batch.too_short else ""
        console.print(f"forked {batch.forked} episode(s) of {run_id} at turn {fork_at} into run {batch.report.run_id}{skipped}", soft_wrap=True)
        print_run(console, batch.report)
        return
    assert episode_id is not None
    report = replay_episode(Path(db), episode_id, fork_at, list(overrides))
    child_id = episode_id_of(report.run_id, episode_index_of(episode_id))
    store = _open(db)
    try:
        render_episode(console, store.episode(child_id), _flags_only(store.annotations(child_id)))
    finally:
        store.close()
    console.print(f"forked {episode_id} at turn {fork_at} into {child_id}")
    print_run(console, report)


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--analyzer", "names", multiple=True, help="Analyzer to check; repeat for several (default: every analyzer with stored annotations).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def reanalyze(db: str, names: tuple[str, ...], as_json: bool, overrides: tuple[str, ...]) -> None:
    """Run analyzers again on the runs and datasets whose stored annotations an older (or newer) version of the
    analyzer wrote; current annotations are left alone. OVERRIDES as in `sim analyze`.

    \b
    Examples:
        sim reanalyze
        sim reanalyze --analyzer role_flip --db runs/sweep.db
    """
    from sim.reanalysis import reanalyze as reanalyze_store
    from sim.report import summaries_table

    store = _open(db, writes=True)
    try:
        done = reanalyze_store(store, list(names), list(overrides))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps([item.as_dict() for item in done], indent=2))
        return
    console = Console()
    if not done:
        console.print("every analyzer's annotations are current; nothing to do")
    for item in done:
        console.print(f"{item.analyzer}: v{item.old_versions} -> v{item.version} on {item.scope} ({item.n_episodes} episodes)")
        console.print(summaries_table([item.summary]))


@cli.command()
@click.argument("shards", nargs=-1, required=True, metavar="SHARD...", type=click.Path(path_type=Path))
@click.option("--into", "into", required=True, help="Target database (created if missing).")
def merge(shards: tuple[Path, ...], into: str) -> None:
    """Merge SQLite shards (one per job of a sweep over several machines) into one store: each episode comes
    whole (turns, annotations) from one file; one already there is kept unless the shard finished it, so merging
    again adds nothing.

    \b
    Example:
        sim merge runs/multirun/2026-11-25/10-00-00-000000/shards/*.db --into runs/sim.db
    """
    from sim.merge import check_shard, merge_shard
    from sim.store import Store

    for shard in shards:  # each shard is checked before the target is opened, or created: a bad one leaves it as it was
        check_shard(shard)
    store = Store.open(into, option="--into")
    try:
        for shard in shards:
            added = ", ".join(f"{n} {table}" for table, n in merge_shard(store, shard).items() if n) or "nothing new"
            click.echo(f"{shard}: {added}")
    finally:
        store.close()


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8001, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--open/--no-open", "open_browser", default=True, show_default=True, help="Open a web browser on the database.")
def browse(db: str, host: str, port: int, open_browser: bool) -> None:
    """Browse the database read-only in Datasette: runs and episodes with facets, full-text search over turns.

    \b
    Examples:
        sim browse
        sim browse --db runs/sweep.db --port 8002 --no-open
    """
    from sim.browse import browse as serve

    serve(Path(db).expanduser(), host, port, open_browser)


@cli.command("import")
@click.argument("format_name", metavar="FORMAT", required=False)
@click.argument("path", required=False, type=click.Path(path_type=Path, readable=False))  # the importer says why, in one line
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
    from sim.importing import import_into
    from sim.records import UTTERANCE

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
    report = import_into(db, format_name, path, dataset, parsed)
    if report.already_imported:
        click.echo(f"{path} was already imported as dataset {report.dataset!r} ({format_name}); nothing added")
        return
    turns = f"{report.n_turns} turns"
    if set(report.turn_kinds) - {UTTERANCE}:
        turns += ": " + ", ".join(f"{count} {kind}s" for kind, count in sorted(report.turn_kinds.items()))
    click.echo(f"imported {report.n_episodes} episodes ({turns}) from {path} as dataset {report.dataset!r} into {db}")
    for skipped in report.skipped:
        click.echo(f"  skipped {path}:{skipped.line}: {skipped.reason}")


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--sweep", help="Compare the runs of this sweep (runs.sweep_id; `latest`: the newest sweep with more than one run).")
@click.option("--run", "run_ids", multiple=True, help="Compare this run; repeat for several (default: every run).")
@click.option("--dataset", "datasets", multiple=True, help="Also compare this imported dataset, a group of its own; repeat for several.")
@click.option("--by", default="run", show_default=True,
              help="Group runs by a runs column (run, backend, model, seed, scenario) or a config key (scenario.temperature).")
@click.option("--reference", help="Imported dataset or run id that every group is compared against.")
@click.option("--analyzer", "names", multiple=True, help="Analyzer to run; repeat for several (default: runner.analyze).")
@click.option("--out", type=click.Path(path_type=Path), help="Report folder (default: runs/compare/<UTC time>).")
@click.option("--paired", is_flag=True, help="Also compare each group with the baseline pair by pair: forks with their parents, runs by item.")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON instead of tables (the report is still written).")
@click.argument("overrides", nargs=-1, type=click.UNPROCESSED)
def compare(
    db: str, sweep: Optional[str], run_ids: tuple[str, ...], datasets: tuple[str, ...], by: str, reference: Optional[str],
    names: tuple[str, ...], out: Optional[Path], paired: bool, as_json: bool, overrides: tuple[str, ...],
) -> None:
    """Compare groups of runs: analyzer metrics per group with 95% CIs, differences against a reference, and
    figures; prints the tables and writes report.md, a self-contained report.html and the PNGs into --out.

    \b
    Examples:
        sim compare --sweep latest --by scenario.temperature --out runs/compare/temperature
        sim compare --run RUN_A --run RUN_B --by backend --reference dailydialog_sample_2624
        sim compare --dataset m4_wikihow --reference hc3_plus --analyzer free_text analyzer.free_text.embeddings=false
        sim compare --sweep latest --by seed --analyzer role_flip --json
        sim compare --run PARENT_RUN --run FORK_RUN --paired --analyzer role_flip
    """
    from sim.compare import run_comparison
    from sim.report import rich_tables

    done = run_comparison(db, sweep, run_ids, datasets, by, reference, names, out, overrides, paired)
    if as_json:
        click.echo(json.dumps(done.as_dict(), indent=2))
        return
    report, folder = done.report, done.folder
    console = Console()
    for warning in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(warning)}")
    for section in report.sections:
        console.print(f"[bold]{section.title}[/]")
        for table in section.tables:
            console.print(*rich_tables(table, console.width))
    console.print(f"wrote {folder / 'report.md'}, {folder / 'report.html'} and {len(report.charts)} figure(s)")


@cli.command()
@click.option("--db", default=DEFAULT_DB, show_default=True, help="SQLite database.")
@click.option("--run", "run_ids", multiple=True, help="Episodes of this run; repeat for several.")
@click.option("--sweep", help="Episodes of every run of this sweep (runs.sweep_id).")
@click.option("--dataset", "datasets", multiple=True, help="Episodes of this imported dataset; repeat for several.")
@click.option("--kind", help="Only this kind of data item: conversation, task_label, preference, instruction or free_text.")
@click.option("--format", "fmt", required=True,
              help="jsonl; csv (nested fields as JSON); parquet (pip install -e '.[parquet]'); hf, a `datasets` folder (pip install -e '.[datasets]').")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="File to write (a folder for --format hf).")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
def export(
    db: str, run_ids: tuple[str, ...], sweep: Optional[str], datasets: tuple[str, ...], kind: Optional[str], fmt: str, out: Path, force: bool
) -> None:
    """Write stored episodes (default: all) as one record each: its turns as chat messages (role, content, name),
    per-turn fields (speaker, finish_reason, tokens, flags), its analyzer values, and where it came from.

    \b
    Examples:
        sim export --run 20261125-080000-1a2b3c --format jsonl --out runs/export/run.jsonl
        sim export --dataset dailydialog_sample_2624 --format parquet --out runs/export/dailydialog.parquet
        sim export --sweep SWEEP_ID --kind conversation --format hf --out runs/export/sweep --force
    """
    from sim.export import Selection, export as write_export

    selection = Selection(runs=list(run_ids), sweep=sweep, datasets=list(datasets), kind=kind)
    store = _open(db)
    try:
        done = write_export(store, selection, fmt, out, _flag_names(), force)
    finally:
        store.close()
    click.echo(f"wrote {done.n_episodes} episodes ({done.n_turns} turns) to {done.path} ({done.format})")


@cli.command()
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def metrics(name: Optional[str], as_json: bool) -> None:
    """List every metric the analyzers report: its analyzer, unit (episode, turn or corpus), level (binary, count,
    proportion, choice, score), direction (higher or lower: which way means more artifact; neutral) and definition.
    NAME: only that metric (as declared, `choice[JUDGE]`, or as stored, `choice[gpt-4o]`), or every metric of
    the analyzer NAME.

    \b
    Examples:
        sim metrics
        sim metrics role_flip
        sim metrics 'picks_longer[gpt-4o]' --json
    """
    from rich.markup import escape
    from rich.padding import Padding

    from sim.metric_catalog import catalog

    entries = catalog(name)
    if as_json:
        click.echo(json.dumps([entry.as_dict() for entry in entries], indent=2))
        return
    console = Console()
    for analyzer in dict.fromkeys(entry.analyzer for entry in entries):
        console.print(f"[bold]{analyzer}[/]")
        for entry in (e for e in entries if e.analyzer == analyzer):
            info = entry.info
            direction = "neutral" if info.direction == "neutral" else f"{info.direction}: more artifact"
            console.print(f"  [cyan]{escape(entry.name)}[/] ({info.unit}, {info.level}, {direction})", soft_wrap=True)
            console.print(Padding(escape(info.definition), (0, 0, 0, 6), expand=False))
