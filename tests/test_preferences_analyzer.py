"""The preference analyzer: agreement, position consistency and surface features on hand-built pairs, and real judgments."""

import csv
from pathlib import Path

import pytest

from analyzers.preferences import PreferencesAnalyzer, kappa
from conftest import DATA
from sim.analysis import analyze
from sim.errors import SimError
from sim.importing import import_file
from sim.records import Episode, Turn

PREFERENCES = DATA / "preferences" / "artifacts-llmgendata"


def pair(number: int, first: str, second: str, judgments: dict, prompt: str | None = None, **meta) -> Episode:
    turns = ([Turn(0, "prompt", "prompt", prompt)] if prompt else []) + [
        Turn(1, "a", "output_1", first), Turn(2, "b", "output_2", second)
    ]
    return Episode(f"p{number}", None, "import", "preference", prompt, {}, "done", None, "hand", {"judgments": judgments, **meta}, turns)


def values_of(analyzer: PreferencesAnalyzer, episode: Episode) -> dict[str, float]:
    return {a.name: a.value for a in analyzer.annotate(episode)}


def write_lexicon(folder: Path, style: str, rows: list[tuple[str, float]]) -> None:
    folder.mkdir(exist_ok=True)
    lines = ["idx\tword\tcount\tavg_attr\tstd_attr\tavg_pred"] + [f"{i}\t{w}\t1\t{v}\t0\t{v}" for i, (w, v) in enumerate(rows)]
    (folder / f"{style}_features.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_choices_agreement_length_and_lexicon(tmp_path: Path) -> None:
    write_lexicon(tmp_path / "lex", "politeness", [("please", 1.0), ("now", -1.0)])
    analyzer = PreferencesAnalyzer(lexicons=str(tmp_path / "lex"))
    episode = pair(1, "please please now go", "now", {"human": "output_1", "gpt-4": "output_2"}, prompt="go now please")
    values = values_of(analyzer, episode)
    assert values["length_diff"] == 3.0
    assert values["lexicon_diff[politeness]"] == pytest.approx((1 + 1 - 1) / 3 - (-1))
    # Jaccard with the prompt's {go, now, please}: output 1 has all three of its own three words, output 2 one of three.
    assert values["overlap_diff"] == pytest.approx(1 - 1 / 3)
    assert (values["choice[human]"], values["choice[gpt-4]"]) == (1.0, -1.0)
    assert (values["picks_longer[human]"], values["picks_longer[gpt-4]"]) == (1.0, 0.0)
    assert values["agrees_with_human[gpt-4]"] == 0.0 and "agrees_with_human[human]" not in values
    assert values["agrees_without_ties[gpt-4]"] == 0.0


def test_ties_equal_lengths_and_unparsed_choices() -> None:
    analyzer = PreferencesAnalyzer()
    values = values_of(analyzer, pair(1, "one two", "three four", {"human": "tie", "judge": None, "llm": "tie"}))
    assert values["choice[human]"] == 0.0 and "choice[judge]" not in values
    assert not any(name.startswith("picks_longer") for name in values)  # a tie and equal lengths say nothing about length
    assert values["agrees_with_human[llm]"] == 1.0 and "agrees_without_ties[llm]" not in values
    assert not analyzer.applies_to(pair(2, "x", "y", {"judge": None}))


def test_position_consistency_of_generated_judgments() -> None:
    analyzer = PreferencesAnalyzer()
    kept = values_of(analyzer, pair(1, "a b", "c", {"judge": "output_1"}, swapped_judgments={"judge": "output_1"}))
    flipped = values_of(analyzer, pair(2, "a b", "c", {"judge": "output_1"}, swapped_judgments={"judge": "output_2"}))
    assert (kept["position_consistent[judge]"], flipped["position_consistent[judge]"]) == (1.0, 0.0)


def test_kappa_and_correlations_per_judge() -> None:
    import numpy as np

    # Human 1, 1, -1, -1 against LLM 1, 1, -1, 1: observed 3/4, chance 1/2, kappa 1/2.
    assert kappa(np.array([(1, 1), (1, 1), (-1, -1), (-1, 1)])) == pytest.approx(0.5)
    analyzer = PreferencesAnalyzer()
    # The LLM judge always takes the longer output; the human judge takes the first, whatever its length.
    episodes = [pair(i, "w " * (1 + i % 3), "w " * (1 + (i + 1) % 3), {}) for i in range(30)]
    for episode in episodes:
        longer_first = len(episode.content_of("output_1")) > len(episode.content_of("output_2"))
        episode.meta["judgments"] = {"human": "output_1", "llm": "output_1" if longer_first else "output_2"}
    scored = [(e, analyzer.annotate(e)) for e in episodes]
    metrics = analyzer.corpus_metrics(scored)
    assert metrics["r[llm, length_diff]"].mean > 0.8 and metrics["r[llm, length_diff]"].p_value < 0.001
    assert np.isnan(metrics["r[human, length_diff]"].mean)  # a judge that never varies has no correlation
    assert metrics["kappa[llm]"].n == 30


def test_bad_lexicon_folders(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="is not a folder"):
        PreferencesAnalyzer(lexicons=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimError, match="holds no \\*_features.tsv files"):
        PreferencesAnalyzer(lexicons=str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "joy_features.tsv").write_text("word\tscore\nhappy\t1\n", encoding="utf-8")
    with pytest.raises(SimError, match="joy_features.tsv: a lexicon needs the columns word and avg_attr"):
        PreferencesAnalyzer(lexicons=str(tmp_path / "bad"))


def test_mtbench_gpt4_against_human_judges(store) -> None:
    path = PREFERENCES / "mtbench-gpt4-human-pref.csv"
    import_file(store, "preferences", path, dataset="mtbench", progress=False)
    (summary,) = analyze(store, [PreferencesAnalyzer(lexicons=str(PREFERENCES / "hummingbird_tokens_avg"))])
    metrics = {m.name: m for m in summary.metrics}
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    def choice(value: str) -> str:  # model_a, model_b, or a tie ("tie", "tie (inconsistent)")
        return value if value in ("model_a", "model_b") else "tie"

    agree = [choice(row["human_model"]) == choice(row["gpt4_model"]) for row in rows]
    decided = [choice(row["human_model"]) == choice(row["gpt4_model"]) for row in rows if "tie" not in (choice(row["human_model"]), choice(row["gpt4_model"]))]
    assert summary.n_episodes == len(rows) == 882
    assert metrics["agrees_with_human[gpt-4]"].mean == pytest.approx(sum(agree) / len(agree))
    assert metrics["agrees_without_ties[gpt-4]"].mean == pytest.approx(sum(decided) / len(decided))
    assert -1 <= metrics["kappa[gpt-4]"].ci_low <= metrics["kappa[gpt-4]"].mean <= metrics["kappa[gpt-4]"].ci_high <= 1
    assert {f"r[{judge}, lexicon_diff[politeness]]" for judge in ("gpt-4", "human")} <= set(metrics)
    assert 0 <= metrics["r[gpt-4, length_diff]"].p_value <= 1
