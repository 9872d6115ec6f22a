"""Terminal rendering of runs, analyzer summaries and stored episodes."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from sim.analysis import AnalyzerSummary
from sim.records import Annotation, Episode

if TYPE_CHECKING:
    from sim.runner import RunReport


def summaries_table(summaries: list[AnalyzerSummary]) -> Group:
    """A table per analyzer, a row per metric: n values, their total, and the mean (a rate for 0/1 flags)
    with its bootstrap 95% CI; fits 80 columns."""
    tables = []
    for summary in summaries:
        table = Table(title=f"{summary.analyzer} (v{summary.version}, {summary.n_episodes} episodes)")
        table.add_column("metric", no_wrap=True)
        table.add_column("level", no_wrap=True)
        for column in ("n", "total", "mean [95% CI]"):
            table.add_column(column, justify="right", no_wrap=True)
        if not summary.metrics:
            table.add_row("(no applicable episodes)", "", "0", "", "")
        for metric in summary.metrics:
            interval = "" if metric.ci_low is None else f" [{metric.ci_low:.3f}, {metric.ci_high:.3f}]"
            table.add_row(metric.name, metric.level, str(metric.n), f"{metric.total:g}", f"{metric.mean:.3f}{interval}")
        tables.append(table)
    return Group(*tables)


def print_run(console: Console, report: "RunReport") -> None:
    """What a run produced, how its episodes ended, its totals, and the analyzer summary."""
    if report.already_done:
        console.print(f"run [bold]{escape(report.run_id)}[/] in {escape(str(report.db_path))} is already done; nothing to resume")
        return
    verb = "resumed and stored" if report.resumed else "stored"
    console.print(f"run [bold]{escape(report.run_id)}[/] {verb} in {escape(str(report.db_path))}")
    endings = Counter(f"{o.status}: {o.termination_reason}" for o in report.outcomes)
    for ending, count in sorted(endings.items()):
        console.print(f"  {count} episode(s) {escape(ending)}")
    totals = report.totals
    if totals:
        console.print(
            f"  {totals['n_turns']} turns, {totals['prompt_tokens']} prompt + {totals['completion_tokens']} completion tokens, "
            f"{totals['cache_hits']} cache hits, {totals['retries']} retries, {totals['wall_s']:.1f} s"
        )
    # After a run, an analyzer made for another kind of data (role_flip on labels, say) is only named.
    applied = [summary for summary in report.summaries if summary.n_episodes]
    for summary in report.summaries:
        if not summary.n_episodes:
            console.print(f"  {summary.analyzer}: applies to no episode of this run")
    if applied:
        console.print(summaries_table(applied))


def episodes_table(rows: list[dict[str, Any]]) -> Table:
    """A listing of stored episodes; ids are never wrapped, so they can be copied into `sim show`."""
    table = Table(title="Episodes")
    table.add_column("id", no_wrap=True, min_width=max((len(r["id"]) for r in rows), default=2))
    table.add_column("source / kind", no_wrap=True)
    table.add_column("ending", no_wrap=True)
    table.add_column("turns", justify="right")
    table.add_column("task", ratio=1, overflow="fold")
    for row in rows:
        ending = f"{row['status']}: {row['termination_reason'] or ''}"
        table.add_row(
            escape(row["id"]), f"{row['source']} {row['kind']}", escape(ending), str(row["n_turns"]), escape(row["task"] or "")
        )
    return table


def render_episode(console: Console, episode: Episode, annotations: list[Annotation]) -> None:
    """A conversation turn by turn with its speakers, roles and the flags analyzers set."""
    episode_flags = [f"{a.name}={a.value:g}" for a in annotations if a.turn_idx is None]
    turn_flags: dict[int, list[str]] = defaultdict(list)
    for annotation in annotations:
        if annotation.turn_idx is not None and annotation.value:
            turn_flags[annotation.turn_idx].append(annotation.name)
    roles = ", ".join(f"{part}: {name}" for part, name in episode.roles.items())
    console.print(f"[bold]{escape(episode.id)}[/]  {episode.source} {episode.kind}  status={episode.status}"
                  f"  termination={escape(str(episode.termination_reason))}")
    console.print(f"task: {escape(episode.task or '')}")
    console.print(f"roles: {escape(roles)}")
    if episode_flags:
        console.print(f"flags: {escape(', '.join(episode_flags))}")
    for turn in episode.turns:
        flags = turn_flags.get(turn.idx)
        title = f"[{turn.idx}] {escape(turn.speaker)} ({escape(turn.role)})"
        if flags:
            title += f"  [red]{escape(', '.join(flags))}[/]"
        console.print(Panel(escape(turn.content), title=title, title_align="left"))
