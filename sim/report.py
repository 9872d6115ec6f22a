"""Rendering of runs, analyzer summaries and stored episodes: rich tables for the terminal, and plain tables
that `sim compare` prints and writes as Markdown and HTML."""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional, Sequence

import yaml
from rich import box
from rich.console import Console, Group
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from sim.summary import AnalyzerSummary, Comparison, Metric
from sim.records import TRUNCATED, UTTERANCE, Annotation, Episode

if TYPE_CHECKING:
    from pathlib import Path

    from sim.limits import LimitState
    from sim.runner import RunReport
    from sim.validation import ValidityCard


# Tables mark a finding as significant where its Benjamini-Hochberg q-value is below this, never on p alone.
SIGNIFICANT_Q = 0.05


def interval(low: Optional[float], high: Optional[float]) -> str:
    """` [low, high]`, or nothing when there is no interval."""
    return "" if low is None or high is None else f" [{low:.3f}, {high:.3f}]"


def metric_size(metric: Metric) -> str:
    """How many values a metric rests on: episodes, or turns in episodes, or the items of a corpus statistic."""
    if metric.unit == "turn":
        return f"{metric.n_turns}t/{metric.n_episodes}e"
    return str(metric.n)


def significance(p_value: Optional[float], q_value: Optional[float]) -> str:
    """p and its Benjamini-Hochberg q-value, starred where q < 0.05 (the only significance mark tables use)."""
    if p_value is None:
        return ""
    q = "" if q_value is None else f" q={q_value:.2g}{'*' if q_value < SIGNIFICANT_Q else ''}"
    return f"{p_value:.2g}{q}"


def summaries_table(summaries: list[AnalyzerSummary]) -> Group:
    """Per analyzer and group, a table with a row per metric: what it rests on (episodes; turns in episodes; a
    corpus's items) and the mean (a rate for 0/1 flags) with its 95% CI, and p with its q-value where the metric is
    a test; then the analyzer's comparisons of sides. Fits 80 columns; `--json` adds totals and interval methods."""
    tables: list[Table | Text] = []
    if idle := [summary.analyzer for summary in summaries if not summary.metrics]:
        tables.append(Text(f"no applicable episodes: {', '.join(idle)}", style="dim"))
    for summary in summaries:
        groups: dict[str, list[Metric]] = defaultdict(list)
        for metric in summary.metrics:
            groups[metric.group].append(metric)
        for group, metrics in groups.items():
            # The group's own n: its episodes, not the total over groups.
            n_group = max(metric.n_episodes or (metric.n if metric.unit == "episode" else 0) for metric in metrics)
            where = f": {escape(group)}" if group else ""
            table = Table(title=f"{summary.analyzer} (v{summary.version}){where}, {n_group} episodes", box=box.SIMPLE_HEAD)
            table.add_column("metric (unit)", overflow="fold", max_width=32)
            table.add_column("n", justify="right", no_wrap=True, min_width=5)
            table.add_column("mean [95% CI]", justify="right", no_wrap=True, min_width=22)
            table.add_column("p", justify="right", overflow="fold")
            for metric in metrics:
                unit = "" if metric.unit == "episode" else f" ({metric.unit})"
                table.add_row(
                    escape(metric.name) + unit, metric_size(metric), f"{metric.mean:.3f}{interval(metric.ci_low, metric.ci_high)}",
                    significance(metric.p_value, metric.q_value),
                )
            tables.append(table)
        tables += comparisons_tables(summary)
        if summary.yardsticks:
            tables.append(yardsticks_table(summary))
        tables += [Text(f"{summary.analyzer}: {note}", style="yellow") for note in summary.notes]
    return Group(*tables)


def comparisons_tables(summary: AnalyzerSummary) -> list[Table]:
    """Per group and pair of sides, one row per compared metric: the two means, the difference (other minus
    reference) with its 95% CI, Cohen's d, and p with its Benjamini-Hochberg q-value."""
    pairs: dict[tuple[str, str, str], list[Comparison]] = defaultdict(list)
    for comparison in summary.comparisons:
        pairs[(comparison.group, comparison.reference, comparison.other)].append(comparison)
    tables = []
    for (group, reference, other), comparisons in pairs.items():
        table = Table(title=f"{summary.analyzer}: {escape(group)}, {escape(other)} vs {escape(reference)}", box=box.SIMPLE_HEAD)
        table.add_column("metric (unit)", no_wrap=True)
        table.add_column(f"{escape(reference)} → {escape(other)}", justify="right", no_wrap=True)
        table.add_column("difference [95% CI]", justify="right", overflow="fold")
        table.add_column("d", justify="right", no_wrap=True)
        table.add_column("p", justify="right", overflow="fold")
        for c in comparisons:
            table.add_row(
                escape(c.name) + ("" if c.unit == "episode" else f" ({c.unit})"), f"{c.mean_reference:.3g} → {c.mean_other:.3g}",
                difference_cell(c), "" if c.effect_size is None else f"{c.effect_size:.2f}", significance(c.p_value, c.q_value),
            )
        tables.append(table)
    return tables


def yardstick_rows(summary: AnalyzerSummary) -> list[list[str]]:
    """Per LLM metric with a human ceiling: group, metric, the LLM value, the human side's value, the ceiling."""

    def cell(metric: Optional[Metric]) -> str:
        return "" if metric is None else f"{metric.mean:.3f}{interval(metric.ci_low, metric.ci_high)}"

    return [
        [y.group, y.name, cell(y.llm), cell(y.human), f"{cell(y.ceiling)} ({'between human halves' if y.kind == 'gap' else 'human vs human'})"]
        for y in summary.yardsticks
    ]


# The narrowest a text column of a listing gets: narrower, it would say nothing.
TEXT_MIN_WIDTH = 8
# The widest a naming column of a table gets on a terminal before it folds.
KEY_WIDTH = 28
YARDSTICK_COLUMNS = ["group", "metric", "LLM [95% CI]", "human", "human ceiling"]


def yardsticks_table(summary: AnalyzerSummary) -> Table:
    """LLM values beside the human value and the human ceiling, each with its 95% CI."""
    table = Table(title=f"{summary.analyzer}: LLM value, human value, human ceiling", box=box.SIMPLE_HEAD)
    for column in YARDSTICK_COLUMNS:
        table.add_column(column, overflow="fold")
    for row in yardstick_rows(summary):
        table.add_row(*(escape(value) for value in row))
    return table


def difference_cell(comparison: Comparison) -> str:
    """The difference with its 95% CI."""
    c = comparison
    return f"{c.difference:.3g}{'' if c.ci_low is None else f' [{c.ci_low:.3g}, {c.ci_high:.3g}]'}"


def request_limit_words(limit: "LimitState") -> str:
    """How a run's request limit went and how often the server said it was overloaded, in one line."""
    overloads = f"{limit.overloads} answers said the server was overloaded (429, 503, timeouts)"
    if not limit.adaptive:
        return f"{overloads}; backend.max_concurrency=auto adapts the request limit to the server"
    cut = "never cut" if limit.low is None else f"cut to {limit.low} at the lowest"
    return f"request limit (auto, up to {limit.ceiling}): {limit.current} at the end, {limit.high} at the highest, {cut}; {overloads}"


def stored_request_limit(run: dict[str, Any], revisions: list[dict[str, Any]]) -> Optional["LimitState"]:
    """How a stored run's request limit went, from its runs row and its config as last revised (a resume may change
    backend.max_concurrency and runner.concurrency); None for a run from before the limit was recorded."""
    from sim.config import revised_config
    from sim.limits import LimitState

    if run.get("request_limit") is None:
        return None
    config = revised_config(run["config_yaml"], revisions)
    limit = (config.get("backend") or {}).get("max_concurrency")
    adaptive = limit == "auto"
    # auto grows up to runner.concurrency; a fixed limit is its own ceiling.
    ceiling = (config.get("runner") or {}).get("concurrency") if adaptive else limit
    return LimitState(adaptive, run["request_limit"], run["request_limit_min"], run["request_limit_max"],
                      ceiling or run["request_limit_max"], run["overloads"] or 0)


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
        if "cost_usd" in totals:
            console.print(f"  {totals['requests']} requests sent in all (turns, texts, judges), cost {usd(totals['cost_usd'])}; "
                          f"per kind of call: sim runs show {escape(report.run_id)}")
        if (limit := report.request_limit) is not None and (limit.adaptive or limit.overloads):
            console.print(f"  {request_limit_words(limit)}")
        if truncated := totals.get("truncated_turns"):
            console.print(
                f"  [yellow]{truncated} of {totals['n_turns']} turns ({truncated / totals['n_turns']:.0%}) were cut at "
                f"max_tokens[/]: lengths and anything read from a turn's end measure the cap (raise scenario.max_tokens)"
            )
    # After a run, analyzers made for other kinds of data (role_flip on labels, say) are only named.
    applied = [summary for summary in report.summaries if summary.n_episodes]
    idle = [summary.analyzer for summary in report.summaries if not summary.n_episodes]
    if idle:
        console.print(f"  not applicable to this run's episodes: {', '.join(idle)}")
    if applied:
        console.print(summaries_table(applied))
    if report.caveat:
        console.print(f"[yellow]note:[/] {escape(report.caveat)}")


def episodes_table(rows: list[dict[str, Any]], width: int) -> Table:
    """A listing of stored episodes for a terminal `width` columns wide; ids are never cut, so they can be copied
    into `sim show`, and the text columns are cut short (with an ellipsis), never squeezed away."""
    forked = any(row.get("parent_id") for row in rows)
    cells = []
    for row in rows:
        kind = row["kind"] if row["source"] == "generated" else f"{row['kind']} ({row['source']})"
        fork = [f"{row['parent_id']} ({row['fork_turn']})" if row.get("parent_id") else ""] if forked else []
        ending = f"{row['status']}: {row['termination_reason'] or ''}"
        cells.append([row["id"], kind, ending, str(row["n_turns"]), *fork, row["task"] or ""])
    columns = ["id", "kind", "ending", "turns", *(["fork of (at turn)"] if forked else []), "task"]
    # Widest content of each column, then the text columns (not id, not turns) cut to share what the ids leave.
    widths = [max([len(column), *(len(cell[i]) for cell in cells)]) for i, column in enumerate(columns)]
    caps = [None, 22, 18, None, *([24] if forked else []), None]
    widths = [w if cap is None else min(w, cap) for w, cap in zip(widths, caps)]
    spare = width - sum(widths[:-1]) - 3 * len(columns) - 2  # each column's padding and rule, and the edges
    widths[-1] = max(min(widths[-1], spare), TEXT_MIN_WIDTH)
    table = Table(title="Episodes", box=box.SIMPLE_HEAD)
    for column, column_width in zip(columns, widths):
        table.add_column(column, width=column_width, no_wrap=True, overflow="ellipsis", justify="right" if column == "turns" else "left")
    for row_cells in cells:
        table.add_row(*map(escape, row_cells))
    return table


def run_record(row: dict[str, Any]) -> dict[str, Any]:
    """A row of `Store.run_overview` as `sim runs` reports it: episodes planned and pending (where the config
    gives their number), and the share of turns cut at max_tokens, in place of the stored config."""
    record = {key: value for key, value in row.items() if key != "config_yaml"}
    planned = (yaml.safe_load(row["config_yaml"] or "{}") or {}).get("scenario", {}).get("n_episodes")
    finished = row["episodes_done"] + row["episodes_failed"]
    record["episodes_planned"] = planned if isinstance(planned, int) else None
    record["episodes_pending"] = max(planned - finished, 0) if isinstance(planned, int) else None
    record["truncated_turn_share"] = row["truncated_turns"] / row["n_turns"] if row["n_turns"] else None
    return record


def usd(value: Optional[float]) -> str:
    """A cost as `sim runs` prints it: dollars to four decimals (more when smaller), or `unpriced`."""
    if value is None:
        return "unpriced"
    return f"${value:.4f}" if value == 0 or value >= 0.0001 else f"${value:.2g}"


def runs_table(records: list[dict[str, Any]]) -> Tabular:
    """The runs, one row each: what made it, how far it got, its requests' tokens and cost, and how many of its
    turns were cut."""
    rows = []
    for r in records:
        pending = "?" if r["episodes_pending"] is None else str(r["episodes_pending"])
        cut = "" if r["truncated_turn_share"] is None else f"{r['truncated_turn_share']:.0%}"
        rows.append([
            r["id"], r["status"] or "", r["scenario"] or "", f"{r['backend']}:\n{r['model']}",
            f"{r['episodes_done']}/{r['episodes_failed']}/{pending}", str(r["n_turns"]), cut,
            f"{r['prompt_tokens']}\n{r['completion_tokens']}", usd(r["cost_usd"]), str(r["cache_hits"]),
            "" if r["wall_s"] is None else f"{r['wall_s']:.0f}", (r["created_at"] or "")[:16].replace("T", "\n"),
        ])
    columns = ["run", "status", "scenario", "backend:\nmodel", "episodes\ndone/failed\n/pending", "turns", "cut at\nmax_tokens",
               "tokens\nin/out", "cost", "cache\nhits", "wall\ns", "created\n(UTC)"]
    return Tabular("Runs", columns, rows)


def ledger_table(run_id: str, ledger: list[dict[str, Any]], total: dict[str, Any]) -> Tabular:
    """A run's ledger, one row per kind of call and purpose and one for the whole run (`total`): requests sent,
    their tokens and cost, and the requests, tokens and cost that cache hits saved."""
    rows = [
        [kind, purpose, str(row["requests"]), str(row["prompt_tokens"]), str(row["completion_tokens"]), usd(row["cost_usd"]),
         str(row["cache_hits"]), str(row["saved_tokens"]), usd(row["saved_usd"])]
        for kind, purpose, row in [*((row["kind"], row["purpose"], row) for row in ledger), ("all", "", total)]
    ]
    columns = ["kind", "purpose", "requests\nsent", "tokens\nin", "tokens\nout", "cost", "cache\nhits", "tokens\nsaved", "cost\nsaved"]
    return Tabular(f"Ledger of run {run_id}", columns, rows)


def render_episode(
    console: Console, episode: Episode, annotations: list[Annotation], forks: Sequence[dict[str, Any]] = ()
) -> None:
    """A conversation turn by turn with its speakers, roles and the flags analyzers set; where it was forked from,
    and the episodes forked from it (`Store.forks_of`)."""
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
    if episode.parent_id is not None:
        console.print(f"forked from {escape(episode.parent_id)} at turn {episode.fork_turn} (turns before it are the parent's)")
    for fork in forks:
        console.print(f"fork: {escape(fork['id'])} at turn {fork['fork_turn']} (run {escape(fork['run_id'])})")
    if episode_flags:
        console.print(f"flags: {escape(', '.join(episode_flags))}")
    for turn in episode.turns:
        flags = turn_flags.get(turn.idx)
        title = f"[{turn.idx}] {escape(turn.speaker)} ({escape(turn.role)})"
        if turn.kind != UTTERANCE:
            title += f"  {escape(turn.kind)}"
        if flags:
            title += f"  [red]{escape(', '.join(flags))}[/]"
        cut = turn.finish_reason == TRUNCATED
        subtitle = f"[yellow]cut at max_tokens ({turn.completion_tokens} tokens)[/]" if cut else None
        console.print(Panel(escape(turn.content), title=title, title_align="left", subtitle=subtitle, subtitle_align="right"))


def shared_prefix(first: Episode, second: Episode) -> int:
    """How many turns two conversations share from the start (same speaker, role and text)."""
    shared = 0
    for a, b in zip(first.turns, second.turns):
        if (a.speaker, a.role, a.content) != (b.speaker, b.role, b.content):
            break
        shared += 1
    return shared


def render_diff(
    console: Console, first: Episode, second: Episode, annotations: tuple[list[Annotation], list[Annotation]]
) -> None:
    """Two conversations side by side from the first turn where they differ, each turn with the flags analyzers set
    on it, and each episode's own values above."""
    shared = shared_prefix(first, second)
    console.print(f"[bold]{escape(first.id)}[/] ({len(first.turns)} turns) vs [bold]{escape(second.id)}[/] ({len(second.turns)} turns): "
                  f"{shared} turn(s) shared from the start" + ("" if shared else "; they differ from turn 0"))
    table = Table(box=box.SIMPLE_HEAD, show_lines=True, expand=True)
    flags: list[dict[int, list[str]]] = []
    for episode, found in zip((first, second), annotations):
        per_turn: dict[int, list[str]] = defaultdict(list)
        for annotation in found:
            if annotation.turn_idx is not None and annotation.value:
                per_turn[annotation.turn_idx].append(annotation.name)
        flags.append(per_turn)
        values = ", ".join(f"{a.name}={a.value:g}" for a in found if a.turn_idx is None)
        table.add_column(escape(episode.id) + (f"\n{escape(values)}" if values else ""), ratio=1, overflow="fold")
    by_idx = [{turn.idx: turn for turn in episode.turns} for episode in (first, second)]
    for idx in sorted(set(by_idx[0]) | set(by_idx[1])):
        if idx < shared:
            continue
        cells = []
        for turns, turn_flags in zip(by_idx, flags):
            turn = turns.get(idx)
            if turn is None:
                cells.append("")
                continue
            marks = f"  [red]{escape(', '.join(turn_flags[idx]))}[/]" if turn_flags.get(idx) else ""
            cells.append(f"[bold][{idx}] {escape(turn.speaker)} ({escape(turn.role)})[/]{marks}\n{escape(turn.content)}")
        table.add_row(*cells)
    if table.row_count:
        console.print(table)
    else:
        console.print("the two conversations are the same")


@dataclass
class Tabular:
    """A table as plain text cells, so that one table can be printed, and written as Markdown and as HTML."""

    title: str
    columns: list[str]
    rows: list[list[str]]
    keys: int = 1  # leading columns that name a row (repeated where a terminal splits the table)


def rich_tables(tabular: Tabular, width: int) -> list[Table]:
    """A Tabular for a terminal `width` columns wide: the naming columns fold, values never wrap, and value columns
    that do not fit beside each other go on into further tables, each led by the naming columns."""
    widths = [max(len(line) for cell in [column, *(row[i] for row in tabular.rows)] for line in cell.splitlines() or [""])
              for i, column in enumerate(tabular.columns)]
    keys = list(range(tabular.keys))
    key_widths = [min(widths[i], KEY_WIDTH) for i in keys]
    lead = sum(key_widths) + 3 * len(keys) + 1  # each column's padding and rule
    chunks: list[list[int]] = [[]]
    used = lead
    for i in range(tabular.keys, len(widths)):
        if chunks[-1] and used + widths[i] + 3 > width:
            chunks.append([])
            used = lead
        chunks[-1].append(i)
        used += widths[i] + 3
    tables = []
    for number, chunk in enumerate(chunks, 1):
        title = tabular.title if len(chunks) == 1 else f"{tabular.title} ({number} of {len(chunks)})"
        table = Table(title=escape(title), box=box.SIMPLE_HEAD)
        for i, key_width in zip(keys, key_widths):
            table.add_column(escape(tabular.columns[i]), overflow="fold", max_width=key_width)
        for i in chunk:
            table.add_column(escape(tabular.columns[i]), no_wrap=True, justify="right")
        for row in tabular.rows:
            table.add_row(*(escape(row[i]) for i in [*keys, *chunk]))
        tables.append(table)
    return tables


def markdown_table(tabular: Tabular) -> str:
    """A Tabular as a GitHub-flavored Markdown table under a bold title."""

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in cells) + " |"

    lines = [f"**{tabular.title}**", "", line(tabular.columns), "|" + "---|" * len(tabular.columns)]
    return "\n".join(lines + [line(row) for row in tabular.rows]) + "\n"


def html_table(tabular: Tabular) -> str:
    """A Tabular as an HTML table with its title as caption."""
    head = "".join(f"<th>{html.escape(c)}</th>" for c in tabular.columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in tabular.rows)
    return f"<table><caption>{html.escape(tabular.title)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>\n"


def _estimate_cell(estimate: Optional[dict[str, Any]]) -> str:
    """A stored or fresh estimate as `value [low, high]`, or `-` where there is none."""
    if not estimate or estimate.get("mean") is None or estimate["mean"] != estimate["mean"]:
        return "-"
    return f"{estimate['mean']:.3f}{interval(estimate.get('ci_low'), estimate.get('ci_high'))}"


VALIDITY_METRICS = [
    ("AUC [95% CI]", "auc"), ("precision", "precision"), ("recall", "recall"), ("F1", "f1"),
    ("false flags (untouched)", "false_flag_rate"),
]


def validity_tables(cards: list["ValidityCard"]) -> list[Tabular]:
    """One table per validity card, a column per perturbation kind: what was perturbed, the AUC of the detector's
    score and, where it flags, its precision, recall, F1 and false-flag rate on untouched conversations, each with
    the 95% interval from resampling conversations."""
    tables = []
    for card in cards:
        found = [result.as_dict() for result in card.results]
        rows = [
            ["score / flag", *(f"{r['score']} / {r['flag'] or '(none)'}" for r in found)],
            ["conversations (perturbed)", *(f"{r['n_conversations']} ({r['n_perturbed_conversations']})" for r in found)],
            ["turns (replaced)", *(f"{r['n_turns']} ({r['n_replaced']})" for r in found)],
            ["replaced turns scored", *(f"{r['coverage']:.3f}" for r in found)],
        ]
        for label, name in VALIDITY_METRICS:
            rows.append([label, *(_estimate_cell(r[name]) for r in found)])
        title = f"{card.analyzer} v{card.version} (settings {card.settings_hash}) on {card.dataset}, rate {card.rate}, seed {card.seed}"
        tables.append(Tabular(title, ["measure", *(r["kind"] for r in found)], rows))
    return tables


def validity_note(validations: list[dict[str, Any]], analyzer: str, kinds: list[str]) -> str:
    """One line saying how valid an analyzer's detectors were last shown to be (`validations`: the newest stored
    row per kind), or that they were not validated with these settings."""
    if not validations:
        return (f"not validated with these settings; its rates are uncalibrated until "
                f"`sim validate --dataset NAME --analyzer {analyzer}` ({', '.join(kinds)}) measures them")
    parts = []
    for row in validations:
        part = f"{row['kind']} on {row['dataset']}: AUC {_estimate_cell(row['auc'])}"
        if row.get("false_flag_rate"):
            part += f", recall {_estimate_cell(row['recall'])}, false flags {_estimate_cell(row['false_flag_rate'])}"
        parts.append(part)
    return "validated by sim validate: " + "; ".join(parts)


def write_validity_report(folder: "Path", cards: list["ValidityCard"], command: str) -> None:
    """`validity.md` (the command, then a table per card and its notes) and `roc.png` (ROC curve per detector and
    kind) in `folder`, which is created if missing."""
    from sim.figures import roc_curves

    folder.mkdir(parents=True, exist_ok=True)
    lines = ["# Validity of the detectors", "", "```bash", command, "```", ""]
    for card, table in zip(cards, validity_tables(cards)):
        lines += [markdown_table(table)] + [f"- {note}" for note in card.notes] + [""]
    (folder / "validity.md").write_text("\n".join(lines))
    curves = {card.analyzer: {r.kind: r.roc for r in card.results} for card in cards}
    chart = roc_curves("roc", "ROC curves", "each detector's score against the replaced turns", curves)
    if chart is not None:
        (folder / "roc.png").write_bytes(chart.png)
