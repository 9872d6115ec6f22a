"""The learned role-drift detector: cross-fitting that never lets a turn be scored by a model that saw its own
conversation (or its own text), scores and flags on real persuasion dialogues, and no rates where the roles are
symmetric (CaSiNo)."""

import numpy as np
import pytest

from analyzers import analyzers
from analyzers.role_drift import MIN_SEPARABILITY
from analyzers.role_model import cross_fit
from helpers import DATA
from sim.analysis import analyze
from sim.errors import SimError
from sim.importing import import_file
from sim.perturbation import perturb

CONVERSATIONS = DATA / "conversations"


def keep_first(store, dataset: str, n: int) -> None:
    """Delete all but the first `n` episodes of a dataset."""
    doomed = "SELECT id FROM episodes WHERE dataset = ? AND rowid NOT IN (SELECT rowid FROM episodes WHERE dataset = ? ORDER BY rowid LIMIT ?)"
    store.db.execute(f"DELETE FROM turns WHERE episode_id IN ({doomed})", [dataset, dataset, n])
    store.db.execute(f"DELETE FROM episodes WHERE id IN ({doomed})", [dataset, dataset, n])
    store.db.conn.commit()


def test_cross_fitting_never_trains_on_the_scored_conversation_or_text() -> None:
    rng = np.random.default_rng(0)
    conversations = np.repeat(np.arange(30), 8)
    texts = [f"turn {i % 50}" for i in range(conversations.size)]  # texts recur across conversations
    seen: list[tuple[set, set]] = []

    def fit(train: np.ndarray, held: np.ndarray) -> np.ndarray:
        seen.append((set(train.tolist()), set(held.tolist())))
        assert not set(conversations[train]) & set(conversations[held])
        assert not {texts[i] for i in train} & {texts[i] for i in held}
        return rng.random((held.size, 2))

    predictions = cross_fit(conversations, texts, fit)
    assert predictions.shape == (conversations.size, 2) and len(seen) == 5
    assert set().union(*(held for _, held in seen)) == set(range(conversations.size))  # every row predicted once


@pytest.mark.slow
def test_drift_scores_on_persuasion_dialogues_find_swapped_turns(store) -> None:
    import_file(store, "persuasionforgood", CONVERSATIONS / "persuasionforgood" / "full_dialog.csv", dataset="pfg", progress=False)
    keep_first(store, "pfg", 120)
    corpus = list(store.episodes(dataset="pfg", text_only=True))
    swapped = perturb(corpus, "swap", seed=0)
    analyzer = analyzers.create("role_drift")
    annotations = analyzer.annotate_many(swapped.episodes)
    scores, truth = [], []
    for episode, values in zip(swapped.episodes, annotations):
        turn_scores = {a.turn_idx: a.value for a in values if a.name == "drift_score"}
        assert set(turn_scores) == {t.idx for t in episode.turns if t.content.strip()}
        assert all(0 <= v <= 1 for v in turn_scores.values())
        flags = {a.turn_idx: a.value for a in values if a.name == "drifted"}
        assert all(flags[i] == float(turn_scores[i] >= analyzer.threshold) for i in flags)
        scores += list(turn_scores.values())
        truth += [i in swapped.replaced.get(episode.id, set()) for i in turn_scores]
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(truth, scores) > 0.7  # 120 dialogues; the full corpus is in docs/validity.md
    (summary,) = analyze(store, [analyzers.create("role_drift")], dataset="pfg")
    metrics = {m.name: m for m in summary.metrics}
    assert metrics["role_separability"].mean > MIN_SEPARABILITY and metrics["drift_rate"].n == 120
    assert any("cross-fitted on 120 conversations (persuadee, persuader)" in note for note in summary.notes)


@pytest.mark.slow
def test_symmetric_roles_give_no_drift_rates(store) -> None:
    import_file(store, "casino", CONVERSATIONS / "casino" / "casino_dialogues.jsonl", dataset="casino", progress=False)
    keep_first(store, "casino", 80)
    (summary,) = analyze(store, [analyzers.create("role_drift")], dataset="casino")
    names = {m.name for m in summary.metrics}
    assert names == {"role_separability"}  # no drift_rate, no drift_score: only why not
    separability = next(m for m in summary.metrics if m.name == "role_separability")
    assert separability.mean < MIN_SEPARABILITY and abs(separability.mean - 0.5) < 0.1
    assert any("role drift is not identifiable" in note for note in summary.notes)
    assert store.db.execute("SELECT count(*) FROM annotations WHERE analyzer = 'role_drift'").fetchone()[0] == 0


@pytest.mark.parametrize("threshold", [0, -0.1, 1.5])
def test_a_threshold_outside_the_score_range_is_refused(threshold: float) -> None:
    with pytest.raises(SimError, match=r"analyzer.role_drift.threshold must be in \(0, 1\]"):
        analyzers.create("role_drift", threshold=threshold)
