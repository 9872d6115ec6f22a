"""Known-answer perturbations and the statistics that score detectors on them: exact counts, reproducible for a
seed, the originals untouched, and AUC, ratios and their conversation-resampling intervals against scikit-learn."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from helpers import DATA
from sim.camel import ASSISTANT_MARKER, USER_MARKER
from sim.importing import import_file
from sim.perturbation import KEEP_FIRST, OFF_TASK, perturb
from sim.records import Episode
from sim.stats import cluster_auc, ratio_estimate, weighted_auc

PFG = DATA / "conversations" / "persuasionforgood" / "full_dialog.csv"


@pytest.fixture(scope="module")
def pfg(tmp_path_factory) -> list[Episode]:
    """The first 60 PersuasionForGood dialogues, as the importer stores them."""
    from sim.store import Store

    path = tmp_path_factory.mktemp("pfg") / "pfg.db"
    store = Store.open(path)
    import_file(store, "persuasionforgood", PFG, dataset="pfg", progress=False)
    episodes = list(store.episodes(dataset="pfg", text_only=True))[:60]
    store.close()
    return episodes


def expected_replacements(episodes: list[Episode], chosen: set[str], rate: float) -> int:
    return sum(max(1, round(rate * (len(e.turns) - KEEP_FIRST))) for e in episodes if e.id in chosen)


def test_swap_replaces_exact_counts_with_the_other_role_from_another_conversation(pfg) -> None:
    originals = {e.id: [t.content for t in e.turns] for e in pfg}
    perturbed = perturb(pfg, "swap", rate=0.2, seed=3)
    assert len(perturbed.chosen) == len(pfg) // 2
    assert perturbed.n_replaced == expected_replacements(pfg, perturbed.chosen, 0.2)
    assert set(perturbed.replaced) == perturbed.chosen
    by_content = {(t.content, t.role): e.id for e in pfg for t in e.turns}
    for episode in perturbed.episodes:
        for turn, original in zip(episode.turns, originals[episode.id]):
            if turn.idx in perturbed.replaced.get(episode.id, set()):
                assert turn.idx >= KEEP_FIRST and turn.content != original
                other_role = "persuadee" if turn.role == "persuader" else "persuader"
                assert by_content[(turn.content, other_role)] != episode.id  # another role, another conversation
            else:
                assert turn.content == original
    assert {e.id: [t.content for t in e.turns] for e in pfg} == originals  # the corpus itself is untouched


def test_perturbations_are_reproducible_for_a_seed(pfg) -> None:
    def contents(seed: int) -> tuple:
        result = perturb(pfg, "digression", seed=seed)
        return result.replaced, [[t.content for t in e.turns] for e in result.episodes]

    assert contents(5) == contents(5)
    assert contents(5) != contents(6)
    replaced = perturb(pfg, "digression", seed=5)
    inserted = {t.content for e in replaced.episodes for t in e.turns if t.idx in replaced.replaced.get(e.id, set())}
    assert inserted <= set(OFF_TASK)
    custom = perturb(pfg, "digression", seed=5, distractors=["Nice weather today, isn't it?"])
    assert {t.content for e in custom.episodes for t in e.turns if t.idx in custom.replaced.get(e.id, set())} == {"Nice weather today, isn't it?"}


def test_a_loop_is_a_near_copy_of_the_speakers_earlier_turn(pfg) -> None:
    perturbed = perturb(pfg, "loop", rate=0.3, seed=1)
    assert perturbed.n_replaced > 20
    for episode in perturbed.episodes:
        for idx in perturbed.replaced.get(episode.id, set()):
            copy = episode.turns[idx].content.split()
            kept = [t for t in episode.turns[:idx] if t.idx not in perturbed.replaced[episode.id]]  # the source stays in place
            earlier = [t.content.split() for t in kept if t.speaker == episode.turns[idx].speaker]
            # One word dropped, doubled or moved: the same words but one, in nearly the same order.
            assert any(abs(len(copy) - len(words)) <= 1 and len(set(copy) ^ set(words)) <= 1 and copy != words for words in earlier)


def test_markers_are_the_partners(episode) -> None:
    turns = [(role, f"{marker} step {i}") for i, (role, marker) in enumerate([("user", USER_MARKER), ("assistant", ASSISTANT_MARKER)] * 5)]
    episodes = [episode(f"c{i}", turns, task="task", roles={"user": "u", "assistant": "a"}) for i in range(4)]
    perturbed = perturb(episodes, "marker", rate=0.5, seed=0)
    assert perturbed.n_replaced == expected_replacements(episodes, perturbed.chosen, 0.5)
    for changed in perturbed.episodes:
        for idx in perturbed.replaced.get(changed.id, set()):
            turn = changed.turns[idx]
            assert turn.content.startswith(ASSISTANT_MARKER if turn.role == "user" else USER_MARKER)


def test_kinds_skip_conversations_they_cannot_perturb(pfg) -> None:
    assert perturb(pfg, "marker").episodes == []  # no CAMEL roles in PersuasionForGood
    with pytest.raises(ValueError):
        perturb(pfg, "shuffle")


def test_auc_matches_scikit_learn_with_ties_and_weights() -> None:
    rng = np.random.default_rng(0)
    scores, labels = rng.integers(0, 5, 500).astype(float), rng.integers(0, 2, 500)
    weights = rng.integers(0, 3, 500).astype(float)
    assert weighted_auc(scores, labels, np.ones(500))[0] == pytest.approx(roc_auc_score(labels, scores))
    assert weighted_auc(scores, labels, weights)[0] == pytest.approx(roc_auc_score(labels, scores, sample_weight=weights))


def test_intervals_resample_conversations() -> None:
    rng = np.random.default_rng(1)
    # 40 conversations of 10 turns, the replaced ones in half of them (as perturbed); each conversation shifts
    # all its scores: turns are not independent.
    clusters = np.repeat(np.arange(40), 10)
    labels = (clusters % 2 == 0) & (rng.random(400) < 0.4)
    scores = labels + rng.normal(size=40)[clusters] * 2 + rng.normal(size=400) * 0.3
    clustered = cluster_auc(scores, labels, clusters)
    independent = cluster_auc(scores, labels, np.arange(400))
    assert clustered.mean == pytest.approx(roc_auc_score(labels, scores)) and clustered.n == 40
    assert clustered.ci_low < clustered.mean < clustered.ci_high
    assert (clustered.ci_high - clustered.ci_low) > 1.3 * (independent.ci_high - independent.ci_low)
    rate = ratio_estimate([0, 1, 2, 0, 3], [10, 10, 10, 10, 10])
    assert rate.mean == pytest.approx(6 / 50) and rate.n == 5 and rate.ci_low <= 6 / 50 <= rate.ci_high
    assert np.isnan(ratio_estimate([0, 0], [0, 0]).mean)


def test_card_metrics_match_scikit_learn(pfg, tmp_path) -> None:
    from types import SimpleNamespace

    from sklearn.metrics import f1_score, precision_score, recall_score

    from analyzers.base import Detector
    from sim.records import Annotation
    from sim.validation import measure, scratch_copy

    perturbed = perturb(pfg, "swap", seed=2)
    store = scratch_copy(perturbed, tmp_path / "scratch.db", "pfg")
    rng = np.random.default_rng(7)
    truth, scores, flags, untouched = [], [], [], []
    annotations = []
    for episode in perturbed.episodes:
        for turn in episode.turns:
            replaced = turn.idx in perturbed.replaced.get(episode.id, set())
            score = float(rng.random() + 0.5 * replaced)
            truth.append(replaced)
            scores.append(score)
            flags.append(score > 0.9)
            untouched.append(episode.id not in perturbed.chosen)
            annotations += [Annotation(episode.id, "s", score, turn.idx), Annotation(episode.id, "f", float(score > 0.9), turn.idx)]
    store.add_annotations("fake", "1", annotations)
    result = measure(perturbed, Detector("swap", "s", "f"), SimpleNamespace(name="fake", sparse_turn_flags=False), store)
    store.close()
    truth, flags, untouched = np.array(truth), np.array(flags), np.array(untouched)
    assert result.auc.mean == pytest.approx(roc_auc_score(truth, scores))
    assert result.precision.mean == pytest.approx(precision_score(truth, flags))
    assert result.recall.mean == pytest.approx(recall_score(truth, flags))
    assert result.f1.mean == pytest.approx(f1_score(truth, flags))
    assert result.false_flag_rate.mean == pytest.approx(flags[untouched].mean())
    assert (result.n_conversations, result.n_turns, result.n_replaced) == (len(pfg), truth.size, perturbed.n_replaced)
    assert result.n_untouched_conversations == len(pfg) - len(perturbed.chosen) and result.coverage == 1.0
