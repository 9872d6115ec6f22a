"""`sim compare`: a sweep on the scripted model against an imported human corpus, a sweep over the embedded model
and a served one, imported corpora with human and LLM sides, grouping by config keys, the figures, and bad input."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from PIL import Image

from helpers import DATA, SERVED_MODEL, TINY, db_rows, scripted_args
from sim.summary import AnalyzerSummary, Metric, PairedComparison
from analyzers.digression import DigressionAnalyzer, digression_shares
from analyzers.role_flip import flip_turns
from sim.compare import ReportView, Selection, build_report, first_flag_curves, flagged_episodes, group_runs, select
from sim.errors import SimError
from sim.figures import turn_histogram
from test_bad_input import assert_one_line_error

DAILYDIALOG = DATA / "conversations" / "dailydialog" / "dailydialog_sample_2624.jsonl"
REFERENCE = "dailydialog_sample_2624"
M4 = DATA / "free_form" / "m4-llama2-samples"
LABELS = DATA / "task_labels" / "artifacts-llmgendata"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# Two short conversations per job; SWEEP: two seeds of them, on the scripted model, whose assistant answers with an
# instruction (a role flip, so that the flip figure is drawn).
SHORT = [*(o for o in TINY if not o.startswith("scenario.max_turns")), "scenario.max_turns=2"]
SWEEP = ["-m", "seed=1,2", *SHORT, *scripted_args("Instruction: Name the first step. Input: None")]
PRESET = "local_server"


def backend_preset(folder: Path, base_url: str) -> str:
    """Write a user config folder whose backend preset `local_server` is the `openai` backend at `base_url`
    (as README's sweeps section shows); returns the --config-dir flag that adds it."""
    preset = folder / "myconf" / "backend" / f"{PRESET}.yaml"
    preset.parent.mkdir(parents=True, exist_ok=True)
    preset.write_text(f"defaults:\n  - openai\n  - _self_\n\nbase_url: {base_url}\nmodel: {SERVED_MODEL}\napi_key_env: null\n")
    return f"--config-dir={preset.parent.parent}"


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory: pytest.TempPathFactory, run_sim) -> Path:
    """A folder whose runs/sim.db holds a 2-job sweep and the imported DailyDialog sample."""
    folder = tmp_path_factory.mktemp("sweep")
    for args in (["run", *SWEEP], ["import", "dailydialog", str(DAILYDIALOG)]):
        result = run_sim(args, folder)
        assert result.returncode == 0, result.stderr
    return folder


def sweep_id(folder: Path) -> str:
    (sweep,) = db_rows(folder / "runs" / "sim.db", "SELECT DISTINCT sweep_id FROM runs")
    return sweep[0]


def markdown_rows(report: str, title: str) -> list[list[str]]:
    """The cells of the Markdown table under the bold `title`."""
    block = report.split(f"**{title}**", 1)[1].split("\n\n", 2)[1]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in block.splitlines()[2:] if line.startswith("|")]


def check_figures(out: Path, expected: set[str]) -> None:
    """The expected PNGs exist and are valid images; report.html embeds exactly them and loads nothing else."""
    pngs = {path.name for path in out.glob("*.png")}
    assert expected <= pngs
    for name in pngs:
        with Image.open(out / name) as image:
            assert image.format == "PNG" and image.width > 100 and image.height > 100
            image.verify()
    page = (out / "report.html").read_text()
    embedded = [base64.b64decode(data) for data in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)]
    assert sorted(embedded) == sorted((out / name).read_bytes() for name in pngs)
    assert not re.search(r"https?://|<script|<link|src='(?!data:)", page)
    markdown = (out / "report.md").read_text()
    assert all(f"]({name})" in markdown for name in pngs)


def test_sweep_compared_by_seed_against_a_human_corpus(sweep_dir: Path, run_sim) -> None:
    """Each seed is a group with its run's episodes, DailyDialog is the reference, and the conversation statistics
    of each seed are compared against it; the role-flip and metric figures are drawn."""
    db = sweep_dir / "runs" / "sim.db"
    out = sweep_dir / "by_seed"
    result = run_sim(["compare", "--sweep", sweep_id(sweep_dir), "--by", "seed", "--reference", REFERENCE, "--out", str(out)], sweep_dir)
    assert result.returncode == 0, result.stderr
    runs = dict(db_rows(db, "SELECT seed, id FROM runs"))
    counts = dict(db_rows(db, "SELECT run_id, count(*) FROM episodes WHERE run_id IS NOT NULL GROUP BY run_id"))
    report = (out / "report.md").read_text()
    assert markdown_rows(report, "Groups (by seed)") == [
        [REFERENCE, "reference", "(imported dataset)", "2624"],
        ["seed=1", "compared", runs[1], str(counts[runs[1]])],
        ["seed=2", "compared", runs[2], str(counts[runs[2]])],
    ]
    assert counts[runs[1]] == counts[runs[2]] == 2
    # The metric columns are the groups, with each group's episode count as n.
    header = report.split("**role_flip: metrics per group, mean [95% CI]**", 1)[1].split("\n")[2]
    assert header == "| metric | seed=1 | seed=2 |"
    (flip_rate,) = [row for row in markdown_rows(report, "role_flip: metrics per group, mean [95% CI]") if row[0] == "role_flipping_happens"]
    assert all(cell.endswith("n=2") for cell in flip_rate[1:])
    against = markdown_rows(report, "conversation_stats: each group against the reference")
    assert {row[0] for row in against} == {f"seed=1 vs {REFERENCE}", f"seed=2 vs {REFERENCE}"}
    assert {"n_turns", "mean_turn_words"} <= {row[1] for row in against}
    # The flip-rate figure is drawn where some group flips: a rate of 0 everywhere gets no empty panel.
    ((flips,),) = db_rows(db, "SELECT count(*) FROM annotations WHERE analyzer = 'role_flip' AND name = 'role_flipped'")
    check_figures(out, {"role_flip_metrics.png", "conversation_stats_metrics.png"} | ({"role_flip_rate.png"} if flips else set()))
    assert (out / "role_flip_rate.png").exists() == bool(flips)
    assert "Groups (by seed)" in result.stdout and "wrote" in result.stdout


def test_config_key_and_reference_run(sweep_dir: Path, run_sim) -> None:
    """Grouping by a config key puts both runs in one group; a run as the reference leaves the other compared."""
    db = sweep_dir / "runs" / "sim.db"
    first, second = (row[0] for row in db_rows(db, "SELECT id FROM runs ORDER BY created_at"))
    out = sweep_dir / "by_key"
    result = run_sim(["compare", "--by", "scenario.max_turns", "--analyzer", "role_flip", "--out", str(out)], sweep_dir)
    assert result.returncode == 0, result.stderr
    assert markdown_rows((out / "report.md").read_text(), "Groups (by scenario.max_turns)") == [
        ["scenario.max_turns=2", "compared", f"{first}, {second}", "4"]
    ]
    out = sweep_dir / "by_run"
    result = run_sim(["compare", "--run", second, "--reference", first, "--analyzer", "role_flip", "--out", str(out)], sweep_dir)
    assert result.returncode == 0, result.stderr
    report = (out / "report.md").read_text()
    assert [row[:2] for row in markdown_rows(report, "Groups (by run)")] == [[first, "reference"], [second, "compared"]]
    against = markdown_rows(report, "role_flip: each group against the reference")
    assert {row[0] for row in against} == {f"{second} vs {first}"}
    # Without a reference, two groups are still compared with each other: every group against the first.
    out = sweep_dir / "by_seed_unreferenced"
    result = run_sim(["compare", "--by", "seed", "--analyzer", "conversation_stats", "--out", str(out), "--json"], sweep_dir)
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["reference"] is None and document["baseline"] == "seed=1"
    (summary,) = document["analyzers"]
    assert {(c["other"], c["reference"]) for c in summary["against_reference"]} == {("seed=2", "seed=1")}
    assert {"n_turns", "mean_turn_words"} <= {c["name"] for c in summary["against_reference"]}
    rows = markdown_rows((out / "report.md").read_text(), "conversation_stats: each group against the first group, seed=1")
    assert {row[0] for row in rows} == {"seed=2 vs seed=1"}


def test_sweep_over_the_embedded_model_and_a_served_one_compared_by_backend(sim, tmp_path: Path, llama_server: str) -> None:
    """A user's backend preset lets one sweep mix the embedded model with a served one; each backend is a group
    with its run's episodes."""
    result = sim("run", backend_preset(tmp_path, llama_server), "-m", f"backend=embedded,{PRESET}", *SHORT)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    runs = {backend: (run_id, model) for run_id, backend, model in db_rows(db, "SELECT id, backend, model FROM runs")}
    assert set(runs) == {"embedded", "openai"} and runs["openai"][1] == SERVED_MODEL
    counts = dict(db_rows(db, "SELECT run_id, count(*) FROM episodes WHERE status = 'done' GROUP BY run_id"))
    assert counts == {runs["embedded"][0]: 2, runs["openai"][0]: 2}
    result = sim("compare", "--sweep", sweep_id(tmp_path), "--by", "backend", "--analyzer", "role_flip", "--out", "by_backend")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "by_backend" / "report.md").read_text()
    assert markdown_rows(report, "Groups (by backend)") == [
        ["backend=embedded", "compared", runs["embedded"][0], "2"], ["backend=openai", "compared", runs["openai"][0], "2"],
    ]
    header = report.split("**role_flip: metrics per group, mean [95% CI]**", 1)[1].split("\n")[2]
    assert header == "| metric | backend=embedded | backend=openai |"


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (["--sweep", "nope"], ("no sweep 'nope'", "sweeps: runs/multirun/")),
        (["--run", "nope"], ("no run 'nope'",)),
        (["--dataset", "nope"], ("no imported dataset 'nope'",)),
        (["--reference", "nope"], ("--reference 'nope'", "no imported dataset or run")),
        (["--by", "scenario.nothing"], ("--by 'scenario.nothing'", "neither a runs column")),
        (["--dataset", REFERENCE, "--by", "seed"], ("--by 'seed' groups runs",)),
        (["--dataset", REFERENCE, "--reference", REFERENCE], ("nothing to compare",)),
        (["--sweep", "latest", "--run", "x"], ("--sweep or --run",)),
        (["seed=3"], ("sim compare takes analyzer and judge settings", "'seed=3'")),
        (["--analyzer", "nope"], ("nope",)),
    ],
)
def test_bad_input(sweep_dir: Path, args: list[str], fragments: tuple[str, ...], run_sim) -> None:
    out = sweep_dir / "never_written"
    assert_one_line_error(run_sim(["compare", *args, "--out", str(out)], sweep_dir), *fragments)
    assert not out.exists()


def test_bad_out_and_empty_store(tmp_path: Path, sweep_dir: Path, run_sim) -> None:
    """An --out below a file, a database without runs, and a missing database each fail in one line."""
    (tmp_path / "a_file").write_text("")
    result = run_sim(["compare", "--db", str(sweep_dir / "runs" / "sim.db"), "--out", str(tmp_path / "a_file" / "report")], tmp_path)
    assert_one_line_error(result, "--out", "is a file")
    assert run_sim(["import", "dailydialog", str(DAILYDIALOG), "--db", "only_imports.db"], tmp_path).returncode == 0
    assert_one_line_error(run_sim(["compare", "--db", "only_imports.db"], tmp_path), "nothing to compare")
    assert_one_line_error(run_sim(["compare", "--db", "missing.db"], tmp_path), "no database at missing.db")
    assert not (tmp_path / "runs").exists()


def test_free_text_corpora_with_human_and_llm_sides(sim, tmp_path: Path) -> None:
    """Two imported corpora with human and LLM texts: each side is compared against the reference corpus's side
    of the same name, the sides within each corpus against each other, and style distributions are drawn."""
    for name in ("wikihow", "arxiv"):
        assert sim("import", "free_text", str(M4 / f"{name}_llama2_100.jsonl"), "--dataset", f"m4_{name}").returncode == 0
    result = sim("compare", "--dataset", "m4_wikihow", "--reference", "m4_arxiv", "--analyzer", "free_text",
                 "--out", "ft", "analyzer.free_text.embeddings=false")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "ft" / "report.md").read_text()
    assert markdown_rows(report, "Groups (by run)") == [
        ["m4_arxiv", "reference", "(imported dataset)", "200"], ["m4_wikihow", "compared", "(imported dataset)", "200"],
    ]
    header = report.split("**free_text: metrics per group, mean [95% CI]**", 1)[1].split("\n")[2]
    # Each side's style features, then the corpus test telling the sides apart (classifier AUC) per corpus.
    assert header == (
        "| metric | m4_arxiv / human | m4_arxiv / llm | m4_arxiv: llm vs human"
        " | m4_wikihow / human | m4_wikihow / llm | m4_wikihow: llm vs human |"
    )
    against = {(row[0], row[1]): row for row in markdown_rows(report, "free_text: each group against the reference")}
    assert ("m4_wikihow / llm vs m4_arxiv / llm", "words") in against
    assert ("m4_wikihow / human vs m4_arxiv / human", "type_token_ratio") in against
    within = {row[0] for row in markdown_rows(report, "free_text: sides within each group")}
    assert within == {"m4_arxiv / llm vs m4_arxiv / human", "m4_wikihow / llm vs m4_wikihow / human"}
    check_figures(tmp_path / "ft", {"free_text_styles.png", "free_text_metrics.png"})


def test_task_label_distributions(sim, tmp_path: Path) -> None:
    """Task labels of two imported label files: agreement metrics per file, and the label distributions figure."""
    assert sim("import", "task_labels", str(LABELS / "SChem5Labels_intermodel.jsonl")).returncode == 0
    assert sim("import", "task_labels", str(LABELS / "mismatch_gpt3.csv")).returncode == 0
    result = sim("compare", "--dataset", "SChem5Labels_intermodel", "--reference", "mismatch_gpt3", "--analyzer", "task_labels", "--out", "tl")
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "tl" / "report.md").read_text()
    against = {row[1] for row in markdown_rows(report, "task_labels: each group against the reference")}
    assert {"majority_match", "js_distance"} <= against
    check_figures(tmp_path / "tl", {"task_label_distributions.png", "task_labels_metrics.png"})
    # --json prints the same comparison for programs: the groups, every metric and comparison, the files written.
    as_json = sim("compare", "--dataset", "SChem5Labels_intermodel", "--reference", "mismatch_gpt3", "--analyzer", "task_labels",
                  "--out", "tl2", "--json")
    assert as_json.returncode == 0, as_json.stderr
    document = json.loads(as_json.stdout)
    assert [(g["name"], g["reference"]) for g in document["groups"]] == [("mismatch_gpt3", True), ("SChem5Labels_intermodel", False)]
    assert document["reference"] == "mismatch_gpt3" and all(g["n_episodes"] > 0 for g in document["groups"])
    (summary,) = document["analyzers"]
    assert {c["name"] for c in summary["against_reference"]} == against  # the names of the report's table
    assert all(c["q_value"] is not None and c["reference"] == "mismatch_gpt3" for c in summary["against_reference"])
    assert all((tmp_path / path).is_file() for path in document["report"] + document["figures"])


def run_rows(*temperatures: float) -> list[dict]:
    """Runs rows as the runner stores them, with the composed config at each temperature."""
    from sim.compose import compose_config

    rows = []
    for i, temperature in enumerate(temperatures):
        cfg = compose_config([f"scenario.temperature={temperature}", f"seed={i}"])
        rows.append({"id": f"r{i}", "seed": i, "backend": "embedded", "model": "m", "scenario": "roleplay", "config_yaml": OmegaConf.to_yaml(cfg)})
    return rows


def test_grouping_by_config_key() -> None:
    """Runs group by a resolved config value, numbers in numeric order; an absent key is one clear error."""
    rows = run_rows(0.8, 0.2, 10.0, 0.2)
    groups = group_runs(rows, "scenario.temperature")
    assert [(g.name, g.runs) for g in groups] == [
        ("scenario.temperature=0.2", ["r1", "r3"]), ("scenario.temperature=0.8", ["r0"]), ("scenario.temperature=10.0", ["r2"]),
    ]
    assert [g.name for g in group_runs(rows, "seed")] == ["seed=0", "seed=1", "seed=2", "seed=3"]
    assert [g.name for g in group_runs(rows, "backend.model_path")] == ["backend.model_path=null"]
    with pytest.raises(SimError, match="neither a runs column"):
        group_runs(rows, "scenario.no_such_key")


def test_role_flip_turns_drawn_where_flips_happen(store, episode) -> None:
    """A conversation whose assistant gives an instruction at turn 1 puts a flip at turn index 1 in the figure data."""
    turns = [("u", "user", "Instruction: write a plan. Input: None"), ("a", "assistant", "Instruction: you do it."),
             ("u", "user", "Instruction: fine. Input: None"), ("a", "assistant", "Solution: done.")]
    with store.db.atomic():
        for i in range(2):
            store.add_imported_episode(episode(f"e{i}", turns if i == 0 else turns[:1], task="plan",
                                               roles={"user": "u", "assistant": "a"}, dataset="hand"))
    from analyzers.role_flip import RoleFlipAnalyzer
    from sim.analysis import analyze

    selection = select(store, datasets=["hand"])
    summaries = analyze(store, [RoleFlipAnalyzer()], scopes=selection.scopes(), group_of=selection.group_of, progress=False)
    report = build_report(store, selection, summaries)
    charts = {chart.name: chart for chart in report.charts}
    assert set(charts) == {"role_flip_metrics", "role_flip_rate", "role_flip_turns", "role_flip_first_flag"}
    assert charts["role_flip_first_flag"].png.startswith(PNG_MAGIC)
    # Turns until the first flip: e0 flips on its second turn; e1 never does and counts until its only turn, so by
    # turn 2 no conversation at risk is left without a flip (Kaplan-Meier).
    episodes = flagged_episodes(store, selection, summaries[0], ["role_flipped"])
    assert {key: (e.n_turns, dict(e.flagged)) for key, e in episodes.items()} == {"e0": (4, {"role_flipped": {1}}), "e1": (1, {})}
    assert first_flag_curves(episodes, ["role_flipped"]) == {"role_flipped": {"hand": ([0.0, 2.0], [1.0, 0.0])}}
    assert flip_turns(ReportView(store, selection, summaries[0])) == {"hand": [1]}
    assert charts["role_flip_turns"].png.startswith(PNG_MAGIC)
    assert turn_histogram("t", "t", "", {"hand": []}, {"hand": 2}) is None


def test_digression_categories_stack_per_group(store) -> None:
    """Judge-mode category counts become shares of each group's judged episodes; without categories, no figure."""
    def metric(name: str, n: int, group: str) -> Metric:
        return Metric(name, "episode", n, float(n), 1.0, 1.0, 1.0, group)

    summary = AnalyzerSummary("digression", "1", 10, [
        metric("digresses", 4, "a"), metric("category[transitional]", 1, "a"), metric("category[constructive]", 2, "a"),
        metric("digresses", 6, "b"), metric("category[transitional]", 3, "b"),
    ])
    assert digression_shares(summary) == {"a": {"transitional": 0.25, "constructive": 0.5}, "b": {"transitional": 0.5}}
    selection = Selection([], "dataset", "")
    (chart,) = DigressionAnalyzer.report_figures(ReportView(store, selection, summary)).charts
    assert chart is not None and chart.png.startswith(PNG_MAGIC)
    without = AnalyzerSummary("digression", "1", 4, [metric("digresses", 4, "a")])
    assert DigressionAnalyzer.report_figures(ReportView(store, selection, without)).charts == [None]


@pytest.fixture
def stored_runs(store, episode):
    """`stored_runs(rows, sweeps)`: store runs rows (one conversation each) in order, each in its sweep."""

    def add(rows: list[dict], sweeps: list[str]) -> None:
        for row, sweep in zip(rows, sweeps):
            store.start_run({**row, "sweep_id": sweep})
            store.start_episode(episode(f"{row['id']}-e0000", task="t", source="generated", termination_reason="max_turns",
                                        dataset=None, run_id=row["id"]))

    return add


def test_latest_sweep_has_several_runs_and_pooled_runs_are_warned_of(store, stored_runs) -> None:
    """`--sweep latest` skips a newer sweep of one run; a group pooling runs that differ in a key other than `--by`
    is named in one warning line, printed first and written into report.md; grouping them apart warns of nothing."""
    from sim.compare import to_markdown

    rows = run_rows(0.2, 0.2, 0.7)
    rows[2]["id"] = "single"
    stored_runs(rows, ["multirun/a", "multirun/a", "multirun/b"])
    selection = select(store, "latest", by="scenario.temperature")
    assert selection.described == "sweep multirun/a" and [g.runs for g in selection.groups] == [["r0", "r1"]]
    (warning,) = selection.warnings
    assert warning.startswith("scenario.temperature=0.2 pools 2 runs that differ in seed ") and "\n" not in warning
    report = build_report(store, selection, [])
    assert report.warnings == [warning]
    assert f"> **Warning:** {warning}" in to_markdown(report)
    assert select(store, "latest", by="seed").warnings == []
    assert select(store, "multirun/b", by="scenario.temperature").warnings == []


def test_latest_sweep_needs_a_sweep_of_several_runs(store, stored_runs) -> None:
    stored_runs(run_rows(0.2), ["multirun/a"])
    with pytest.raises(SimError, match="no sweep .* has more than one run"):
        select(store, "latest")


def test_figures_leave_out_zero_and_constant_metrics() -> None:
    """A rate that is 0 in every group and a count fixed by the settings get no panel (the caption names them); a
    metric that differs between groups does; with nothing but such metrics there is no figure."""
    from sim.figures import COLUMNS, DPI, PANEL_INCHES, distributions, metric_bars, paired_differences

    def row(name: str, mean: float, low: float, high: float, group: str) -> Metric:
        return Metric(name, "episode", 10, mean * 10, mean, low, high, group)

    metrics = [
        row("role_flipping_happens", 0.0, 0.0, 0.28, "a"), row("role_flipping_happens", 0.0, 0.0, 0.28, "b"),
        row("n_checked_turns", 4.0, 4.0, 4.0, "a"), row("n_checked_turns", 4.0, 4.0, 4.0, "b"),
        row("mean_turn_words", 12.0, 10.0, 14.0, "a"), row("mean_turn_words", 12.0, 11.0, 13.0, "b"),
    ]
    names = ["role_flipping_happens", "n_checked_turns", "mean_turn_words"]
    chart = metric_bars("m", "t", "Means.", metrics, names)
    assert chart.caption == "Means. Not drawn, being 0 or one constant in every group: role_flipping_happens, n_checked_turns."
    with Image.open(io.BytesIO(chart.png)) as image:
        assert image.width == round(PANEL_INCHES[0] * DPI) < round(PANEL_INCHES[0] * COLUMNS * DPI)  # one panel
    assert metric_bars("m", "t", "Means.", metrics[:4], names) is None
    # Paired differences: none at all in any pair gets no panel; every pair differing by exactly 1 does.
    def paired(name: str, difference: float) -> PairedComparison:
        return PairedComparison(n_reference=4, n_other=4, mean_reference=0.0, mean_other=difference, difference=difference,
                                ci_low=difference, ci_high=difference, effect_size=None, p_value=0.1, name=name, group="b",
                                reference="a", other="b", n_pairs=4)

    assert paired_differences("p", "t", "", [paired("n_checked_turns", 0.0)]) is None
    assert paired_differences("p", "t", "", [paired("n_checked_turns", 0.0), paired("role_flipping_happens", 1.0)]) is not None
    assert distributions("d", "t", "", {"same": {"a": [1.0, 1.0], "b": [1.0]}}) is None
    assert distributions("d", "t", "", {"same": {"a": [1.0, 1.0]}, "varies": {"a": [1.0, 2.0]}}) is not None
