"""The metric catalog cannot drift from the analyzers: every analyzer runs (`sim analyze`) on real stored data
(reference corpora, published SPP transcripts, a role-play run against a loopback model, loopback judges), and
every value it stores or reports has a catalog entry whose unit and level its values keep; `sim metrics` lists
the catalog, as text and as JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyzers import analyzers
from helpers import DATA, db_rows
from scripted_server import ScriptedServer
from sim.importing import import_file
from sim.store import Store
from test_bad_input import assert_one_line_error
from test_judges import changes_mind, paper_judge, spp_store
from test_paired import roleplayer

# Each analyzer's data (datasets, or a run) and settings: cheap, and what makes it report as many of its metrics as can
# be had without the sentence-embedding model or a lexicon folder.
RUNS = {
    "role_flip": ["--all"],
    "conversation_stats": ["--all"],
    "role_drift": ["--dataset", "spp", "analyzer.role_drift.mode=judge"],
    "digression": ["--dataset", "spp", "analyzer.digression.mode=judge", "analyzer.digression.protocol=paper"],
    "human_likeness": ["--dataset", "spp"],
    "collaboration": ["--dataset", "spp"],
    "task_labels": ["--dataset", "labels"],
    "preferences": ["--dataset", "mtbench"],
    "instructions": ["--dataset", "seed_tasks", "analyzer.instructions.embeddings=false", "analyzer.instructions.subset_size=20"],
    "free_text": ["--dataset", "wikihow", "analyzer.free_text.embeddings=false"],
}
JUDGED = ("role_drift", "digression", "human_likeness", "collaboration")
# Declared metrics this data cannot show: embedding mode (the sentence-embedding model), the lexicon folder,
# judgments that need several people on one pair or a wrong answer among the eight SPP transcripts, and label scales.
NOT_HERE = {
    "role_drift": {"drift_score", "mean_drift_score", "role_separability"},
    "digression": {"task_distance", "off_task_score", "off_task", "mean_task_distance", "max_task_distance", "drift_slope",
                   "off_task_rate", "task_distance_at_turn[K]"},
    "instructions": {"embedding_dispersion@K"},
    # The first SChem5Labels items come on one label scale; per-scale values need a dataset that mixes scales.
    "task_labels": {"wasserstein[SCALE]", "human_std[SCALE]", "model_std[SCALE]"},
    # Imported pairs carry neither an LLM judge's repeated asks in both orders (a generated run's) nor a reference.
    "preferences": {"lexicon_diff[STYLE]", "overlap_diff", "first_position_wins[JUDGE]", "position_consistent[JUDGE]",
                    "repetition_agreement[JUDGE]"},
}
# The values each level allows, as a check on (min, max, whether all are whole numbers).
LEVELS = {
    "binary": lambda low, high, whole: whole and low >= 0 and high <= 1,
    "count": lambda low, high, whole: whole and low >= 0,
    "proportion": lambda low, high, whole: low >= 0 and high <= 1,
    "choice": lambda low, high, whole: whole and low >= -1 and high <= 1,
    "score": lambda low, high, whole: True,
}


def split_judge(messages: list[dict]) -> str:
    """A judge that says yes to a fixed half of what it is shown and no to the rest; the paper protocol's later
    stages as `paper_judge` answers them."""
    if len(messages) == 1 and (staged := paper_judge(messages)) != "Yes.":
        return staged
    return "Verdict: yes" if changes_mind(messages[-1]["content"]) else "Verdict: no"


def plain(messages: list[dict]) -> str:
    """A model for both CAMEL agents that never uses their markers: every turn is an interruption."""
    return "Sure, that sounds good to me."


def first_episodes(path: Path, dataset: str, n: int) -> None:
    """Keep only the first `n` episodes of `dataset`: enough to report every metric, cheap to analyze."""
    store = Store.open(path)
    try:
        keep = [row[0] for row in store.db.execute("SELECT id FROM episodes WHERE dataset = ? ORDER BY rowid LIMIT ?", [dataset, n]).fetchall()]
        marks = ", ".join("?" * len(keep))
        dropped = f"SELECT id FROM episodes WHERE dataset = ? AND id NOT IN ({marks})"
        store.db.execute(f"DELETE FROM turns WHERE episode_id IN ({dropped})", [dataset, *keep])
        store.db.execute(f"DELETE FROM episodes WHERE id IN ({dropped})", [dataset, *keep])
        store.db.conn.commit()
    finally:
        store.close()


@pytest.fixture(scope="module")
def analyzed(tmp_path_factory: pytest.TempPathFactory, run_sim) -> tuple[Path, dict[str, dict]]:
    """A store holding every kind of data, and each analyzer's `sim analyze --json` summary of its data."""
    folder = tmp_path_factory.mktemp("catalog")
    db = folder / "runs" / "sim.db"
    db.parent.mkdir()
    spp_store(db)
    store = Store.open(db)
    try:
        for fmt, path, dataset in [
            ("task_labels", DATA / "task_labels" / "artifacts-llmgendata" / "SChem5Labels_intermodel.jsonl", "labels"),
            ("preferences", DATA / "preferences" / "artifacts-llmgendata" / "mtbench-gpt4-human-pref.csv", "mtbench"),
            ("instructions", DATA / "instructions" / "self-instruct" / "seed_tasks.jsonl", "seed_tasks"),
            ("free_text", DATA / "free_form" / "m4-llama2-samples" / "wikihow_llama2_100.jsonl", "wikihow"),
        ]:
            # Self-Instruct's seed tasks were written by people: the human side, which gets the split-half ceilings.
            options = {"author": "human"} if fmt == "instructions" else {}
            import_file(store, fmt, path, dataset=dataset, options=options, progress=False)
    finally:
        store.close()
    first_episodes(db, "labels", 300)
    first_episodes(db, "mtbench", 600)
    summaries = {}
    with ScriptedServer(roleplayer(True)) as flipping, ScriptedServer(plain) as interrupting, ScriptedServer(split_judge) as judge:
        for run_id, model in (("flipping", flipping), ("interrupting", interrupting)):
            made = run_sim(["run", *model.backend_args(), "scenario.n_episodes=2", "scenario.max_turns=4", "runner.progress=false",
                            "runner.analyze=[]", f"run.id={run_id}"], folder)
            assert made.returncode == 0, made.stderr
        for name, args in RUNS.items():
            judged = [*judge.backend_args(f"analyzer.{name}.judge"), f"analyzer.{name}.judge=openai"] if name in JUDGED else []
            done = run_sim(["analyze", "--db", str(db), "--analyzer", name, "--json", *args, *judged], folder)
            assert done.returncode == 0, f"{name}: {done.stderr}"
            (summaries[name],) = json.loads(done.stdout)["analyzers"]
    return db, summaries


def test_every_analyzer_is_run_here() -> None:
    assert sorted(RUNS) == analyzers.names()


def catalogued(db: Path, name: str, summary: dict) -> set[str]:
    """The declared metrics `name` showed in the store and in its summary, each value checked against its entry."""
    analyzer = analyzers.get(name)
    seen: set[str] = set()
    stored = db_rows(db, "SELECT name, turn_idx IS NULL, min(value), max(value), min(value = round(value)) FROM annotations"
                         f" WHERE analyzer = '{name}' GROUP BY name, turn_idx IS NULL")
    assert stored, f"{name} stored nothing"
    for metric, per_episode, low, high, whole in stored:
        found = analyzer.metric_info(metric)
        assert found is not None, f"{name} stores {metric!r}, which `sim metrics` does not know"
        declared, info = found
        assert info.unit == ("episode" if per_episode else "turn"), (metric, info.unit)
        assert LEVELS[info.level](low, high, bool(whole)), f"{metric}: values {low}..{high} are not {info.level}"
        seen.add(declared)
    for metric in summary["metrics"]:
        found = analyzer.metric_info(metric["name"])
        assert found is not None, f"{name} reports {metric['name']!r}, which `sim metrics` does not know"
        assert found[1].unit == metric["unit"], (metric["name"], metric["unit"])
        seen.add(found[0])
    for comparison in summary["comparisons"]:
        assert analyzer.metric_info(comparison["name"]) is not None, comparison["name"]
    return seen


@pytest.mark.parametrize("name", sorted(RUNS))
def test_every_value_an_analyzer_writes_is_in_the_catalog(analyzed: tuple[Path, dict[str, dict]], name: str) -> None:
    db, summaries = analyzed
    seen = catalogued(db, name, summaries[name])
    # The other way round: a declared metric that none of this data shows must be one this data cannot show.
    unseen = set(analyzers.get(name).metrics) - seen
    assert unseen == NOT_HERE.get(name, set()), f"unseen {sorted(unseen)}"


@pytest.mark.slow
def test_embedding_modes_write_only_catalogued_metrics(tmp_path: Path, run_sim) -> None:
    """The sentence-embedding model: role drift on human persuasion dialogues, digression on SPP transcripts, and
    the instructions' embedding dispersion show the metrics the fast data cannot."""
    db = tmp_path / "sim.db"
    spp_store(db)
    store = Store.open(db)
    try:
        import_file(store, "persuasionforgood", DATA / "conversations" / "persuasionforgood" / "full_dialog.csv", dataset="p4g", progress=False)
        import_file(store, "instructions", DATA / "instructions" / "self-instruct" / "seed_tasks.jsonl", dataset="seed_tasks", progress=False)
    finally:
        store.close()
    first_episodes(db, "p4g", 40)
    runs = {
        "role_drift": ["--dataset", "p4g", "analyzer.role_drift.mode=embedding"],
        "digression": ["--dataset", "spp", "analyzer.digression.mode=embedding"],
        "instructions": ["--dataset", "seed_tasks", "analyzer.instructions.embeddings=true", "analyzer.instructions.subset_size=20"],
    }
    for name, args in runs.items():
        done = run_sim(["analyze", "--db", str(db), "--analyzer", name, "--json", *args], tmp_path)
        assert done.returncode == 0, f"{name}: {done.stderr}"
        (summary,) = json.loads(done.stdout)["analyzers"]
        assert NOT_HERE[name] <= catalogued(db, name, summary), name  # what the fast data leaves out of these three


def test_sim_metrics_lists_the_catalog(sim) -> None:
    listed = sim("metrics", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = json.loads(listed.stdout)
    assert {(e["analyzer"], e["name"]) for e in entries} == {(a, m) for a in analyzers.names() for m in analyzers.get(a).metrics}
    assert all(set(e) == {"analyzer", "name", "definition", "unit", "level", "direction"} for e in entries)
    (stored_name,) = json.loads(sim("metrics", "picks_longer[gpt-4]", "--json").stdout)
    assert (stored_name["analyzer"], stored_name["name"], stored_name["direction"]) == ("preferences", "picks_longer[JUDGE]", "higher")
    of_one = json.loads(sim("metrics", "role_flip", "--json").stdout)
    assert [e["name"] for e in of_one] == list(analyzers.get("role_flip").metrics)
    text = sim("metrics", "role_flipped").stdout
    assert "role_flip" in text and "role_flipped (turn, binary, higher: more artifact)" in text and "Solution:" in text
    shared = {e["analyzer"] for e in json.loads(sim("metrics", "unanswered_rate", "--json").stdout)}
    assert shared == {"collaboration", "digression", "human_likeness", "role_drift"}
    assert_one_line_error(sim("metrics", "nope"), "no metric or analyzer named 'nope'")
