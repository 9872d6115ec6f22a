"""The task-label analyzer: the published majority/minority definitions on hand-built items, and real files."""

import csv
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from analyzers.task_labels import TaskLabelsAnalyzer, clean_labels, leave_one_out, majority_set, minority_set, sets_match
from helpers import DATA
from sim.analysis import analyze
from sim.summary import AnalyzerSummary
from sim.importing import import_file
from sim.records import Episode

LABELS = DATA / "task_labels" / "artifacts-llmgendata"


@pytest.mark.parametrize(
    ("labels", "majority", "minority"),
    [
        ([0, 0, 1], {0}, {1}),
        ([0, 1, 2], None, None),  # all distinct: no majority; all counts equal: no minority
        ([1, 1, 1], {1}, None),  # one label only: its count is the only count
        ([0, 0, 1, 1, 2], {0, 1}, {2}),
        ([2, 2, 1, 1], {1, 2}, None),
        ([3, 3, 3, 1, 1, 0], {3}, {0}),
        ([], None, None),
    ],
)
def test_majority_and_minority_sets(labels, majority, minority) -> None:
    values = [float(v) for v in labels]
    assert majority_set(values) == (None if majority is None else frozenset(majority))
    assert minority_set(values) == (None if minority is None else frozenset(minority))


def test_a_match_needs_a_shared_label_and_none_matches_nothing() -> None:
    assert sets_match(frozenset({0.0, 1.0}), frozenset({1.0}))
    assert not sets_match(frozenset({0.0}), frozenset({1.0}))
    assert not sets_match(None, frozenset({1.0})) and not sets_match(None, None)
    assert clean_labels([0, -1, None, 2.0, -1.0]) == [0.0, 2.0]


@pytest.fixture
def item(episode):
    """`item(human, labels, **meta)`: an imported item with its human labels and a model's."""

    def make(human: list, labels: list, **meta) -> Episode:
        return episode("e1", kind="task_label", dataset="ds", meta={"human_labels": human, "model_labels": labels, **meta})

    return make


def values_of(episode: Episode) -> dict[str, float]:
    return {a.name: a.value for a in TaskLabelsAnalyzer().annotate(episode)}


def test_a_unanimous_model_keeps_the_majority_and_drops_the_minority(item) -> None:
    values = values_of(item([0, 0, 1], [0, 0, 0, 0, 0]))
    assert (values["majority_match"], values["minority_match"], values["voices_human_minority"]) == (1.0, 0.0, 0.0)
    assert values["model_unanimous"] == 1.0 and values["human_unanimous"] == 0.0
    # P = (2/3, 1/3), Q = (1, 0), M = (5/6, 1/6): JS = (KL(P||M) + KL(Q||M)) / 2 in bits; the distance is its root.
    kl_p = 2 / 3 * math.log2(0.8) + 1 / 3 * math.log2(2)
    kl_q = math.log2(6 / 5)
    assert values["js_distance"] == pytest.approx(math.sqrt((kl_p + kl_q) / 2))
    assert values["wasserstein"] == pytest.approx(1 / 3)
    assert values["human_entropy"] == pytest.approx(-(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3)))
    assert values["human_std"] == pytest.approx(math.sqrt(1 / 3)) and values["model_std"] == 0.0


def test_a_split_model_can_voice_the_human_minority(item) -> None:
    values = values_of(item([0, 0, 1, -1], [1, 1, 0, 0, 0, None]))
    assert (values["majority_match"], values["minority_match"], values["voices_human_minority"]) == (1.0, 1.0, 1.0)
    assert values["model_unanimous"] == 0.0


def test_leave_one_out_ceilings_by_hand(item) -> None:
    # [0, 0, 1]: holding out a 0 leaves {0, 1}, all distinct, so no majority; holding out the 1 leaves the majority
    # {0}, which 1 misses. No human keeps the others' majority, while the model's five 0s keep the full majority.
    values = values_of(item([0, 0, 1], [0, 0, 0, 0, 0]))
    assert values["human_majority_match"] == 0.0 and values["majority_match"] == 1.0
    # One model label (0) in the held-out human's seat matches only the third reference, {0}.
    assert values["model_label_majority_match"] == pytest.approx(1 / 3)
    assert "human_minority_match" not in values  # two remaining labels never have a minority set
    assert values_of(item([2, 2, 2], [2]))["human_majority_match"] == 1.0


def test_leave_one_out_minority_on_five_labels(item) -> None:
    # [0, 0, 0, 1, 1]: a held-out 0 leaves {0: 2, 1: 2} (no minority); a held-out 1 leaves {0: 3, 1: 1}, minority {1}.
    values = values_of(item([0, 0, 0, 1, 1, -1], [1, 0, 0, 0]))
    assert values["human_minority_match"] == pytest.approx(2 / 5)
    # Majority: a held-out 0 leaves {0: 2, 1: 2}, majority {0, 1}, matched; a held-out 1 leaves majority {0}, missed.
    assert values["human_majority_match"] == pytest.approx(3 / 5)
    # Model labels 1, 0, 0, 0 against the references {0,1} x3 and {0} x2: 1 matches 3 of 5, each 0 all 5.
    assert values["model_label_majority_match"] == pytest.approx((3 + 5 * 3) / 20)
    # Minority references: None x3, {1} x2; only the model's single 1 matches, twice.
    assert values["model_label_minority_match"] == pytest.approx(2 / 20)


def test_without_human_labels_only_the_model_side_is_scored(item) -> None:
    values = values_of(item([], [2, 2, 1]))
    assert set(values) == {"model_entropy", "model_std", "model_unanimous"}
    assert not TaskLabelsAnalyzer().applies_to(item([0, 1], [None, -1]))


def test_groups_are_dataset_and_model(item) -> None:
    analyzer = TaskLabelsAnalyzer()
    assert analyzer.group_of(item([0], [0], model="vicuna")) == "ds / vicuna"
    assert analyzer.group_of(item([0], [0])) == "ds"


@pytest.mark.slow
def test_within_item_spread_equals_the_published_variation(store) -> None:
    path = LABELS / "mismatch_gpt3.csv"
    import_file(store, "task_labels", path, dataset="mismatch", progress=False)
    (summary,) = analyze(store, [TaskLabelsAnalyzer()])
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    # The file mixes label scales, so the spread is stored per scale (human_std[0-2], ...).
    stored = dict(store.db.execute("SELECT episode_id, value FROM annotations WHERE name LIKE 'human_std[%'").fetchall())
    episodes = list(store.episodes(dataset="mismatch"))
    assert len(episodes) == len(rows) == summary.n_episodes
    checked = 0
    for episode, row in zip(episodes, rows):
        assert episode.content_of("item") == row["text"]
        if len(clean_labels(json.loads(row["human_annots"]))) > 1:
            assert stored[episode.id] == pytest.approx(float(row["human_variation"]), abs=1e-6), episode.id
            checked += 1
    assert checked > 7000


def analyzed_file(store, path: Path) -> tuple[AnalyzerSummary, dict[str, dict[str, object]]]:
    """Import a label file, analyze it, and return the summary with its metrics by group and name."""
    import_file(store, "task_labels", path, progress=False)
    (summary,) = analyze(store, [TaskLabelsAnalyzer()])
    by_group: dict[str, dict[str, object]] = {}
    for metric in summary.metrics:
        by_group.setdefault(metric.group, {})[metric.name] = metric
    return summary, by_group


@pytest.mark.slow
def test_real_intermodel_file_per_model(store) -> None:
    path = LABELS / "SChem5Labels_intermodel.jsonl"
    summary, by_group = analyzed_file(store, path)
    assert summary.n_episodes == 3955 and len(by_group) == 5  # five models, each labeling all 791 items
    # The share of items a model labels unanimously, and of its labels outside the 0-4 scale the humans used (a
    # few 6s and 7s), counted straight from the file; unanimity counts the labels on the scale only.
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    scale = {label for record in records for label in clean_labels(record["human_annots"])}
    assert scale == {0.0, 1.0, 2.0, 3.0, 4.0}
    unanimous: dict[str, list[bool]] = {}
    invalid: dict[str, list[float]] = {}
    for record in records:
        present = clean_labels(record["model_annots"])
        valid = [label for label in present if label in scale]
        unanimous.setdefault(record["model_name"], []).append(len(set(valid)) == 1)
        invalid.setdefault(record["model_name"], []).append(1 - len(valid) / len(present))
    assert sum(rate > 0 for rates in invalid.values() for rate in rates) == 3
    for model, flags in unanimous.items():
        metrics = by_group[f"SChem5Labels_intermodel / {model}"]
        assert metrics["model_unanimous"].n == len(flags) == 791
        assert metrics["model_unanimous"].mean == pytest.approx(sum(flags) / len(flags))
        assert metrics["invalid_label_rate"].n == 791
        assert metrics["invalid_label_rate"].mean == pytest.approx(sum(invalid[model]) / 791)
        for name in ("majority_match", "minority_match", "voices_human_minority"):
            assert 0 <= metrics[name].ci_low <= metrics[name].mean <= metrics[name].ci_high <= 1


def test_distances_agree_with_scipy() -> None:
    import numpy as np
    from scipy.spatial.distance import jensenshannon
    from scipy.stats import entropy, wasserstein_distance

    from analyzers.task_labels import distribution, js_distance, wasserstein
    from sim.stats import entropy_bits

    rng = np.random.default_rng(6)
    for _ in range(200):
        human = rng.integers(0, 5, rng.integers(1, 6)).astype(float).tolist()
        model = rng.integers(0, 5, rng.integers(1, 6)).astype(float).tolist()
        support = sorted(set(human) | set(model))
        p, q = distribution(human, support), distribution(model, support)
        assert js_distance(p, q) == pytest.approx(np.nan_to_num(jensenshannon(p, q, base=2)), abs=1e-7)
        assert wasserstein(p, q, support) == pytest.approx(wasserstein_distance(human, model))
        assert entropy_bits(p) == pytest.approx(entropy(p, base=2))


@pytest.mark.slow
def test_human_ceilings_on_real_sentiment_labels(store) -> None:
    path = LABELS / "Sentiment_intermodel.jsonl"
    summary, by_group = analyzed_file(store, path)
    records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    gpt = [clean_labels(r["human_annots"]) for r in records if r["model_name"] == "open_ai_gpt35turbo"]
    metrics = by_group["Sentiment_intermodel / open_ai_gpt35turbo"]
    assert metrics["human_majority_match"].n == len(gpt) == 1407  # every item has four human labels
    # Chance: the held-out label drawn from the corpus's label frequencies, blind to the item (about 0.23 here).
    pooled = Counter(label for labels in gpt for label in labels)
    total = sum(pooled.values())
    chance = np.mean([
        np.mean([sum(pooled[label] for label in (majority_set(rest) or ())) / total for _, rest in leave_one_out(labels)])
        for labels in gpt
    ])
    for name in ("human_majority_match", "human_minority_match", "model_label_majority_match", "model_label_minority_match"):
        metric = metrics[name]
        assert 0 <= metric.ci_low <= metric.mean <= metric.ci_high <= 1, name
    # Humans keep each other's majority more often than a label drawn blind to the item would (0.31 against 0.23).
    assert metrics["human_majority_match"].ci_low > chance
    # The ceiling is a property of the items, so it is the same whichever model labeled them.
    means = {round(m["human_majority_match"].mean, 9) for group, m in by_group.items()}
    assert len(means) == 1 and len(by_group) == 5


@pytest.mark.slow
def test_mixed_label_scales_are_not_pooled(store) -> None:
    """mismatch_gpt3.csv mixes the 0-1 (GHC), 0-2 (SBIC) and 0-4 (SChem, Sentiment) tasks: each item's scale is
    found in the per-task files beside it and label-unit metrics are given per scale; a file of one scale keeps the
    plain names."""
    import_file(store, "task_labels", LABELS / "mismatch_gpt3.csv", progress=False)
    scales = Counter(row[0] for row in store.db.execute("SELECT json_extract(meta_json, '$.label_scale') FROM episodes"))
    assert scales == {"[0,1]": 2728, "[0,2]": 3107, "[0,4]": 2171, None: 26}
    (summary,) = analyze(store, [TaskLabelsAnalyzer()], progress=False)
    metrics = {m.name: m for m in summary.metrics}
    assert not {"wasserstein", "human_std", "model_std"} & set(metrics)
    expected: dict[str, list[float]] = {}
    for episode in store.episodes(dataset="mismatch_gpt3"):
        scale = episode.meta.get("label_scale")
        human, model = clean_labels(episode.meta["human_labels"]), clean_labels(episode.meta["model_labels"])
        valid = [label for label in model if scale is None or scale[0] <= label <= scale[1]]
        if valid and human:
            name = f"{scale[0]}-{scale[1]}" if scale else "unknown scale"
            expected.setdefault(name, []).append(float(np.std(human, ddof=1)) if len(human) > 1 else 0.0)
    assert set(expected) == {"0-1", "0-2", "0-4", "unknown scale"}
    for name, spreads in expected.items():
        assert metrics[f"human_std[{name}]"].n == metrics[f"wasserstein[{name}]"].n == len(spreads)
        assert metrics[f"human_std[{name}]"].mean == pytest.approx(np.mean(spreads))
    one_scale, _ = analyzed_file(store, LABELS / "ghc_intermodel.jsonl")
    assert {"wasserstein", "human_std", "model_std"} <= {m.name for m in one_scale.metrics if m.group.startswith("ghc_intermodel")}
