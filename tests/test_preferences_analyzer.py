"""The preference analyzer: agreement, position consistency and surface features on hand-built pairs, and real judgments."""

import csv
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from analyzers import analyzers
from analyzers.preferences import PreferencesAnalyzer, judge_bias_table, kappa
from helpers import DATA
from sim.analysis import analyze
from sim.errors import SimError
from sim.importing import import_file
from sim.records import Episode, Turn

PREFERENCES = DATA / "preferences" / "artifacts-llmgendata"


@pytest.fixture
def pair(episode):
    """`pair(number, first, second, judgments, prompt=None, speakers=("a", "b"), **meta)`: an imported pair of outputs
    (turns 1 and 2, after the prompt's turn 0 when there is one) with its judgments."""

    def make(number: int, first: str, second: str, judgments: dict, prompt: str | None = None,
             speakers: tuple[str, str] = ("a", "b"), **meta) -> Episode:
        turns = ([("prompt", "prompt", prompt)] if prompt else []) + [
            Turn(1, speakers[0], "output_1", first), Turn(2, speakers[1], "output_2", second)
        ]
        return episode(f"p{number}", turns, kind="preference", task=prompt, dataset="hand", meta={"judgments": judgments, **meta})

    return make


def values_of(analyzer: PreferencesAnalyzer, episode: Episode) -> dict[str, float]:
    return {a.name: a.value for a in analyzer.annotate(episode)}


def write_lexicon(folder: Path, style: str, rows: list[tuple[str, float]]) -> None:
    folder.mkdir(exist_ok=True)
    lines = ["idx\tword\tcount\tavg_attr\tstd_attr\tavg_pred"] + [f"{i}\t{w}\t1\t{v}\t0\t{v}" for i, (w, v) in enumerate(rows)]
    (folder / f"{style}_features.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_choices_agreement_length_and_lexicon(tmp_path: Path, pair) -> None:
    write_lexicon(tmp_path / "lex", "politeness", [("please", 1.0), ("now", -1.0)])
    analyzer = analyzers.create("preferences", lexicons=str(tmp_path / "lex"))
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


def test_ties_equal_lengths_and_unanswered_choices(pair) -> None:
    analyzer = analyzers.create("preferences")
    values = values_of(analyzer, pair(1, "one two", "three four", {"human": "tie", "judge": None, "llm": "tie"}))
    assert values["choice[human]"] == 0.0 and "choice[judge]" not in values
    assert not any(name.startswith("picks_longer") for name in values)  # a tie and equal lengths say nothing about length
    assert values["agrees_with_human[llm]"] == 1.0 and "agrees_without_ties[llm]" not in values
    # A judge asked without a verdict counts in its unanswered rate, never as a choice; people are not asked.
    assert (values["unanswered_rate[judge]"], values["unanswered_rate[llm]"]) == (1.0, 0.0)
    assert "unanswered_rate[human]" not in values
    unanswered = pair(2, "x", "y", {"judge": None})
    assert analyzer.applies_to(unanswered) and values_of(analyzer, unanswered) == {"length_diff": 0.0, "unanswered_rate[judge]": 1.0}


def test_position_consistency_of_generated_judgments(pair) -> None:
    analyzer = analyzers.create("preferences")
    kept = values_of(analyzer, pair(1, "a b", "c", {"judge": "output_1"}, swapped_judgments={"judge": "output_1"}))
    flipped = values_of(analyzer, pair(2, "a b", "c", {"judge": "output_1"}, swapped_judgments={"judge": "output_2"}))
    assert (kept["position_consistent[judge]"], flipped["position_consistent[judge]"]) == (1.0, 0.0)


@pytest.fixture
def asked(pair):
    """`asked(number, as_shown, swapped)`: a generated pair whose judge was asked each order len(as_shown) times
    (None: no verdict)."""

    def make(number: int, as_shown: list, swapped: list) -> Episode:
        meta = {"swapped_judgments": {"judge": swapped[0]}, "repeated_judgments": {"judge": {"as_shown": as_shown, "swapped": swapped}}}
        return pair(number, "a b", "c", {"judge": as_shown[0]}, **meta)

    return make


def test_bias_audit_of_repeated_asks(asked) -> None:
    analyzer = analyzers.create("preferences")
    # Ask 1 flips with the order (output 1 shown first, then output 2 shown first: the first shown wins twice),
    # ask 2 agrees, ask 3 is unanswered as shown. Repeats of one order: output 1 twice as shown (1 agreeing pair);
    # output 2, 1, 1 swapped (1 of 3 pairs agrees).
    values = values_of(analyzer, asked(1, ["output_1", "output_1", None], ["output_2", "output_1", "output_1"]))
    assert values["unanswered_rate[judge]"] == pytest.approx(1 / 6)
    assert values["position_consistent[judge]"] == 0.5
    assert values["first_position_wins[judge]"] == 1.0
    assert values["repetition_agreement[judge]"] == pytest.approx(2 / 4)
    # The second shown wins both times; a tie against a choice counts the decisive choice only.
    assert values_of(analyzer, asked(2, ["output_2"], ["output_1"]))["first_position_wins[judge]"] == 0.0
    assert values_of(analyzer, asked(3, ["tie"], ["output_1"]))["first_position_wins[judge]"] == 0.0
    consistent = values_of(analyzer, asked(4, ["output_1"], ["output_1"]))
    assert consistent["position_consistent[judge]"] == 1.0
    assert "first_position_wins[judge]" not in consistent and "repetition_agreement[judge]" not in consistent  # one ask per order


@pytest.fixture
def length_judged(pair):
    """`length_judged(n, slope, seed, judges_per_pair=1)`: n pairs of random lengths whose judge takes output 1 with
    log-odds `slope` per 100 words of difference, each pair judged by `judges_per_pair` people (MT-Bench rows sharing
    one pair)."""

    def make(n: int, slope: float, seed: int, judges_per_pair: int = 1) -> list[Episode]:
        rng = np.random.default_rng(seed)
        episodes = []
        for i in range(n):
            first, second = rng.integers(1, 400, 2)
            for j in range(judges_per_pair):
                chose_first = rng.random() < 1 / (1 + np.exp(-slope * (first - second) / 100))
                judgments = {"human": "output_1" if chose_first else "output_2"}
                episodes.append(pair(i * judges_per_pair + j, "w " * first, "w " * second, judgments, question_id=i, turn=1))
        return episodes

    return make


@pytest.mark.slow
def test_length_log_odds_recovers_a_known_slope_resampling_pairs(length_judged) -> None:
    analyzer = analyzers.create("preferences")
    episodes = length_judged(300, 1.5, seed=3, judges_per_pair=2)
    metric = analyzer.corpus_metrics([(e, analyzer.annotate(e)) for e in episodes])["length_log_odds[human]"]
    assert metric.n == 600 and metric.interval == "cluster bootstrap"  # 300 pairs of two judgments: pairs resampled
    assert 0 < metric.ci_low < 1.5 < metric.ci_high
    # No length preference: the interval covers 0.
    neutral = length_judged(300, 0.0, seed=4)
    flat = analyzer.corpus_metrics([(e, analyzer.annotate(e)) for e in neutral])["length_log_odds[human]"]
    assert flat.ci_low < 0 < flat.ci_high and flat.interval == "bootstrap"


def test_length_log_odds_of_a_judge_that_always_takes_the_longer_output_is_unbounded(pair) -> None:
    analyzer = analyzers.create("preferences")
    episodes = [pair(i, "w " * (1 + i % 5), "w " * (3 + i % 7), {}) for i in range(30)]
    for episode in episodes:
        longer_first = len(episode.content_of("output_1")) > len(episode.content_of("output_2"))
        episode.meta["judgments"] = {"llm": "output_1" if longer_first else "output_2"}
    metrics = analyzer.corpus_metrics([(e, analyzer.annotate(e)) for e in episodes])
    assert np.isnan(metrics["length_log_odds[llm]"].mean)  # separation: no finite slope, never a huge number


@pytest.mark.slow
def test_judge_bias_table_and_figure_in_compare(store, asked) -> None:
    from sim.compare import build_report, select

    episodes = [asked(i, ["output_1", "output_2"], ["output_1" if i % 3 else "output_2", None]) for i in range(12)]
    for episode in episodes:
        episode.meta["judgments"]["human"] = "output_1"
        store.add_imported_episode(episode)
    (summary,) = analyze(store, [analyzers.create("preferences")])
    table = judge_bias_table(summary)
    rows = {(judge, measure): (value, n, interval) for _, judge, measure, value, n, interval, _ in table.rows}
    assert rows["judge", "unanswered rate"] == ("0.250 [0.250, 0.250]", "12", "bootstrap")  # 1 of 4 asks in every pair
    value, n, interval = rows["judge", "position consistency"]
    assert value.startswith("0.667 [") and n == "12" and interval == "wilson"  # 8 of 12 pairs
    assert rows["judge", "preference fairness"][0].startswith("1.000 [")  # the 4 flips all went to the first shown
    assert rows["judge", "repetition stability"][0].startswith("0.000 [")  # as shown, the two asks always differ
    assert {"Cohen's kappa with humans", "agreement with humans"} <= {measure for judge, measure in rows if judge == "judge"}
    assert ("human", "P(prefers longer)") in rows
    (section,) = [section for section in build_report(store, select(store, datasets=["hand"]), [summary]).sections if section.charts]
    assert table in section.tables
    (chart,) = [chart for chart in section.charts if chart.name == "preferences_judge_bias"]
    assert chart.png.startswith(b"\x89PNG")


def test_kappa_and_correlations_per_judge(pair) -> None:
    import numpy as np

    # Human 1, 1, -1, -1 against LLM 1, 1, -1, 1: observed 3/4, chance 1/2, kappa 1/2.
    assert kappa(np.array([(1, 1), (1, 1), (-1, -1), (-1, 1)])) == pytest.approx(0.5)
    analyzer = analyzers.create("preferences")
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


@pytest.fixture
def mtbench_row(pair):
    """`mtbench_row(number, question, human, judge, gpt4)`: an MT-Bench row, judged by one person and by GPT-4."""

    def make(number: int, question: str, human: str, judge: str, gpt4: str) -> Episode:
        return pair(number, "answer of model a", "answer of model b", {"human": human, "gpt-4": gpt4},
                    speakers=("model-a", "model-b"), question_id=question, turn="1", human_judge=judge)

    return make


def test_human_ceiling_on_a_hand_built_panel(mtbench_row) -> None:
    analyzer = analyzers.create("preferences")
    rows = [
        mtbench_row(1, "81", "output_1", "expert_1", "output_1"),
        mtbench_row(2, "81", "output_1", "expert_2", "output_1"),
        mtbench_row(3, "81", "tie", "author_1", "output_1"),
        mtbench_row(4, "82", "output_2", "expert_1", "output_1"),  # one human only: no ceiling for question 82
        mtbench_row(5, "83", "output_2", "expert_1", "output_2"),
        mtbench_row(6, "83", "output_1", "expert_1", "output_2"),  # the same person twice is no pair of humans
    ]
    metrics = analyzer.corpus_metrics([(e, analyzer.annotate(e)) for e in rows])
    # Question 81: of the three pairs of humans one agrees; GPT-4 agrees with two of the three humans.
    assert metrics["human_human_agreement"].n == 1
    assert metrics["human_human_agreement"].mean == pytest.approx(1 / 3)
    assert metrics["judge_human_agreement[gpt-4]"].mean == pytest.approx(2 / 3)
    # Without ties only the two experts remain, who agree, and GPT-4 agrees with both.
    assert metrics["human_human_agreement_without_ties"].mean == metrics["judge_human_agreement_without_ties[gpt-4]"].mean == 1.0
    assert "judge_human_agreement[human]" not in metrics


def test_bad_lexicon_folders(tmp_path: Path) -> None:
    with pytest.raises(SimError, match="is not a folder"):
        analyzers.create("preferences", lexicons=str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(SimError, match="holds no \\*_features.tsv files"):
        analyzers.create("preferences", lexicons=str(tmp_path / "empty"))
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "joy_features.tsv").write_text("word\tscore\nhappy\t1\n", encoding="utf-8")
    with pytest.raises(SimError, match="joy_features.tsv: a lexicon needs the columns word and avg_attr"):
        analyzers.create("preferences", lexicons=str(tmp_path / "bad"))


@pytest.mark.slow
def test_mtbench_gpt4_against_human_judges(store) -> None:
    path = PREFERENCES / "mtbench-gpt4-human-pref.csv"
    import_file(store, "preferences", path, dataset="mtbench", progress=False)
    (summary,) = analyze(store, [analyzers.create("preferences", lexicons=str(PREFERENCES / "hummingbird_tokens_avg"))])
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


@pytest.mark.slow
def test_mtbench_human_ceiling_from_repeated_judgments(store) -> None:
    path = PREFERENCES / "mtbench-gpt4-human-pref.csv"
    import_file(store, "preferences", path, dataset="mtbench", progress=False)
    (summary,) = analyze(store, [analyzers.create("preferences")])
    metrics = {m.name: m for m in summary.metrics}
    # Straight from the file: rows of one question, turn and model pair are one pair judged by several people.
    by_pair: dict[tuple, list[dict]] = defaultdict(list)
    for row in csv.DictReader(path.open(encoding="utf-8")):
        by_pair[(row["question_id"], row["turn"], row["model_a"], row["model_b"])].append(row)
    panels = [rows for rows in by_pair.values() if len({r["human_info"] for r in rows}) >= 2]
    per_pair = [np.mean([a["human_model"] == b["human_model"] for a, b in combinations(rows, 2)]) for rows in panels]
    gpt4 = [np.mean([r["human_model"] == (r["gpt4_model"] if r["gpt4_model"] in ("model_a", "model_b") else "tie") for r in rows]) for rows in panels]
    human, judge = metrics["human_human_agreement"], metrics["judge_human_agreement[gpt-4]"]
    assert human.n == judge.n == len(panels) == 205  # the unit is the pair: 205 pairs, not their 334 pairs of humans
    assert human.mean == pytest.approx(np.mean(per_pair)) and judge.mean == pytest.approx(np.mean(gpt4))
    for metric in (human, judge, metrics["human_human_agreement_without_ties"]):
        assert 0 <= metric.ci_low < metric.mean < metric.ci_high <= 1
    # Two humans agree far more often than two choices drawn independently from the humans' choice frequencies.
    shares = np.array(list(Counter(r["human_model"] for rows in by_pair.values() for r in rows).values())) / 882
    assert human.ci_low > float(shares @ shares) + 0.1


def test_length_preference_compared_paired_by_pair(pair) -> None:
    # Three compared pairs: the judge takes the longer output on all three; people on pair 1 (both of its two
    # judgments), on half of pair 2's and on none of pair 3's. Per pair, judge minus people: 0, 0.5, 1.
    rows = [
        pair(1, "long long long", "short", {"human": "output_1", "gpt-4": "output_1"}, question_id=1, turn=1),
        pair(2, "long long long", "short", {"human": "output_1", "gpt-4": "output_1"}, question_id=1, turn=1),
        pair(3, "short", "long long long", {"human": "output_1", "gpt-4": "output_2"}, question_id=2, turn=1),
        pair(4, "short", "long long long", {"human": "output_2", "gpt-4": "output_2"}, question_id=2, turn=1),
        pair(5, "long long long", "short", {"human": "output_2", "gpt-4": "output_1"}, question_id=3, turn=1),
    ]
    analyzer = analyzers.create("preferences")
    assert len({analyzer.cluster_of(row) for row in rows}) == 3
    paired = analyzer.corpus_metrics([(row, analyzer.annotate(row)) for row in rows])["picks_longer_minus_human[gpt-4]"]
    assert paired.n == 3 and paired.mean == pytest.approx(0.5) and paired.interval == "paired bootstrap, wilcoxon signed-rank"
