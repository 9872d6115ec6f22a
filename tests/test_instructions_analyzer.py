"""The instruction analyzer: verb-object roots, diversity statistics on hand-built sets, and real instruction files."""

import numpy as np
import pytest

from analyzers import analyzers
from analyzers.instructions import InstructionsAnalyzer, compression_ratio, dispersion, distinct_n, verb_object
from helpers import DATA
from sim.analysis import analyze
from sim.errors import SimError
from sim.importing import import_file
from sim.records import Episode
from sim.stats import subsample_statistic

INSTRUCTIONS = DATA / "instructions"


@pytest.mark.parametrize(
    ("instruction", "root"),
    [
        ("Write a short poem about cats.", ("write", "poem")),
        ("Given a list of numbers, sort them in ascending order.", ("sort", "them")),
        ("In this task, you need to classify the sentence.", ("classify", "sentence")),
        ("Please generate 3 names for a cat", ("generate", "names")),
        ("Tell me about your day.", ("tell", None)),
        ("What is the capital of France?", None),
        ("Is this review positive?", None),
        ("", None),
    ],
)
def test_verb_object_roots(instruction: str, root) -> None:
    assert verb_object(instruction) == root


def test_distinct_n_and_compression() -> None:
    assert distinct_n([["a", "b", "a", "b"]], 1) == 0.5
    assert distinct_n([["a", "b", "a", "b"]], 2) == pytest.approx(2 / 3)  # ab, ba, ab
    assert np.isnan(distinct_n([["a"]], 2))
    repetitive = ["Write a poem about the sea."] * 20
    varied = [f"Task {i}: {word} the {noun} quickly." for i, (word, noun) in enumerate(zip("sort list find rank name count draw plan test join".split() * 2, "numbers words cities rivers books songs cars dogs trees lakes".split() * 2))]
    assert compression_ratio(repetitive) < compression_ratio(varied)


def test_dispersion_of_unit_vectors() -> None:
    same = np.tile([1.0, 0.0], (4, 1))
    orthogonal = np.eye(3)
    assert dispersion(same) == pytest.approx(0.0) and dispersion(orthogonal) == pytest.approx(1.0)


def test_set_statistics_at_a_fixed_size_are_comparable_across_set_sizes() -> None:
    # Two sets drawn from the same vocabulary, one ten times larger: at a fixed subset size distinct-1 agrees.
    rng = np.random.default_rng(3)
    small = [[f"w{v}" for v in rng.integers(0, 300, 8)] for _ in range(60)]
    large = [[f"w{v}" for v in rng.integers(0, 300, 8)] for _ in range(600)]
    whole = distinct_n(small, 1), distinct_n(large, 1)
    assert whole[0] > whole[1] + 0.2  # on whole sets the larger set looks far less diverse
    at_50 = [subsample_statistic(len(s), lambda idx, s=s: distinct_n([s[i] for i in idx], 1), 50) for s in (small, large)]
    assert abs(at_50[0].mean - at_50[1].mean) < 0.03
    assert at_50[1].ci_low < at_50[1].mean < at_50[1].ci_high
    assert subsample_statistic(40, lambda idx: float(len(idx)), 50).ci_low is None  # smaller than the subset: whole set once


@pytest.fixture
def instruction(episode):
    """`instruction(number, text, author="llm")`: an imported instruction with an output."""

    def make(number: int, text: str, author: str = "llm") -> Episode:
        turns = [(author, "instruction", text), (author, "output", "Some output here.")]
        return episode(f"e{number}", turns, kind="instruction", task=text, dataset="hand", meta={"author": author})

    return make


@pytest.fixture
def scored_set(instruction):
    """`scored_set(analyzer, texts, author)`: each text as an instruction by `author`, with its annotations."""

    def score(analyzer: InstructionsAnalyzer, texts: list[str], author: str) -> list:
        return [(instruction(i, text, author), analyzer.annotate(instruction(i, text, author))) for i, text in enumerate(texts)]

    return score


def test_duplicates_and_lengths_on_a_hand_built_set(scored_set) -> None:
    texts = ["Write a poem.", "write  a POEM.", "Sort the list.", "Write a poem."]
    analyzer = analyzers.create("instructions", subset_size=2, rouge_pairs=50, embeddings=False)
    scored = scored_set(analyzer, texts, "llm")
    metrics = analyzer.corpus_metrics(scored)
    assert metrics["duplicate_rate"].mean == 0.5  # the second and fourth repeat the first
    assert {a.name: a.value for a in scored[2][1]} == {"instruction_words": 3.0, "output_words": 3.0, "has_verb_root": 1.0}
    assert scored[2][1][-1].detail == {"verb": "sort", "object": "list"}
    assert 0 < metrics["pairwise_rouge_l"].mean < 1


@pytest.mark.slow
def test_identical_halves_have_no_split_gap(scored_set) -> None:
    analyzer = analyzers.create("instructions", subset_size=10, rouge_pairs=200, embeddings=False)
    # Every half of one repeated instruction is that instruction again: every gap is exactly 0.
    same = analyzer.corpus_metrics(scored_set(analyzer, ["Write a poem about the sea."] * 60, "human"))
    names = {f"{name}@10_human_split_gap" for name in (
        "distinct_1", "distinct_2", "distinct_3", "compression_ratio", "root_verb_entropy", "distinct_verb_objects", "top_verb_share"
    )} | {"pairwise_rouge_l_human_split_gap"}
    assert {name for name in same if name.endswith("_human_split_gap")} == names
    assert all(same[name].mean == same[name].ci_high == 0.0 for name in names)
    # Two instructions in random mixes: halves differ, by a gap that is never negative.
    mixed = analyzer.corpus_metrics(scored_set(analyzer, ["Write a poem about the sea.", "Sort the numbers in the list."] * 30, "human"))
    assert mixed["distinct_1@10_human_split_gap"].mean > 0 and all(mixed[name].ci_low >= 0 for name in names)
    llm = analyzer.corpus_metrics(scored_set(analyzer, ["Write a poem about the sea."] * 60, "llm"))
    assert not any(name.endswith("_human_split_gap") for name in llm)  # a ceiling is human only


def test_bad_settings_are_one_line() -> None:
    with pytest.raises(SimError, match="analyzer.instructions.subset_size must be at least 2"):
        analyzers.create("instructions", subset_size=1, embeddings=False)
    with pytest.raises(SimError, match="analyzer.instructions.embeddings must be auto, true or false"):
        analyzers.create("instructions", embeddings="sometimes")


@pytest.mark.slow
def test_human_seed_tasks_against_llm_generated_instructions(store) -> None:
    import_file(store, "instructions", INSTRUCTIONS / "self-instruct" / "seed_tasks.jsonl", progress=False)
    import_file(store, "instructions", INSTRUCTIONS / "gpteacher" / "roleplay-simple-deduped-roleplay-instruct.json", progress=False)
    (summary,) = analyze(store, [analyzers.create("instructions", embeddings=True, max_texts=300)])
    metrics = {(m.group, m.name): m for m in summary.metrics}
    seeds, gpteacher = "seed_tasks / human", "roleplay-simple-deduped-roleplay-instruct / llm"
    assert summary.n_episodes == 175 + 1923
    assert metrics[(seeds, "instruction_words")].n == 175
    assert metrics[(seeds, "has_verb_root")].mean > 0.85  # the seed tasks are nearly all imperatives
    for group in (seeds, gpteacher):
        for name in ("distinct_2@50", "compression_ratio@50", "embedding_dispersion@50", "pairwise_rouge_l"):
            metric = metrics[(group, name)]
            assert metric.unit == "corpus" and metric.ci_low <= metric.mean <= metric.ci_high
    verbs = store.db.execute(
        "SELECT json_extract(detail_json, '$.verb') v, count(*) c FROM annotations a JOIN episodes e ON e.id = a.episode_id"
        " WHERE e.dataset = 'seed_tasks' AND a.name = 'has_verb_root' AND a.value = 1 GROUP BY v ORDER BY c DESC LIMIT 1"
    ).fetchall()
    assert verbs == [("write", 22)]


@pytest.mark.slow
def test_human_split_gaps_of_real_seed_tasks(store) -> None:
    import_file(store, "instructions", INSTRUCTIONS / "self-instruct" / "seed_tasks.jsonl", progress=False)
    import_file(store, "instructions", INSTRUCTIONS / "gpteacher" / "codegen-instruct.json", progress=False)
    (summary,) = analyze(store, [analyzers.create("instructions", embeddings=False)])
    metrics = {(m.group, m.name): m for m in summary.metrics}
    seeds, codegen = "seed_tasks / human", "codegen-instruct / llm"
    for name in ("distinct_1@50", "distinct_2@50", "compression_ratio@50", "root_verb_entropy@50", "pairwise_rouge_l"):
        gap = metrics[(seeds, f"{name}_human_split_gap")]
        assert gap.unit == "corpus" and gap.interval == "split half" and 0 <= gap.ci_low <= gap.mean <= gap.ci_high
        assert (codegen, f"{name}_human_split_gap") not in metrics
    # GPT-4's code tasks repeat their openings ("Write a Python function ..."): the gap between them and the human
    # seeds is several times what two halves of the seeds differ by.
    for name in ("distinct_2@50", "root_verb_entropy@50"):
        llm_gap = abs(metrics[(codegen, name)].mean - metrics[(seeds, name)].mean)
        assert llm_gap > 3 * metrics[(seeds, f"{name}_human_split_gap")].ci_high, name
    # 175 seeds split into halves of 87: at 100 instructions a half is too small, so there is no gap at that size.
    small = analyzers.create("instructions", subset_size=100, embeddings=False)
    scored = [(e, small.annotate(e)) for e in store.episodes(dataset="seed_tasks")]
    names = set(small.corpus_metrics(scored))
    assert "distinct_1@100" in names and "distinct_1@100_human_split_gap" not in names and "pairwise_rouge_l_human_split_gap" in names
