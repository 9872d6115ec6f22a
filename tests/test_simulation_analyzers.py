"""Simulation analyzers: conversation statistics, digression, role drift and human-likeness, on hand-built
conversations with known answers, on real corpora, and with the embedded model as the judge."""

import json
import math
import re

import pytest

from analyzers import analyzers
from analyzers.conversation_stats import ending_of
from analyzers.digression import CATEGORIES
from analyzers.judging import transcript
from helpers import DATA
from sim.analysis import analyze, build_analyzers
from sim.compose import compose_config
from sim.errors import SimError
from sim.importing import import_file
from sim.records import Annotation, Episode

CONVERSATIONS = DATA / "conversations"
SPP = CONVERSATIONS / "artifacts-llmgendata-spp"


@pytest.fixture
def conversation(episode):
    """`conversation(turns, task=None, termination_reason="max_turns", meta=None)`: a conversation of (speaker, role,
    text) triples, each role played by its speaker."""

    def make(turns: list[tuple[str, str, str]], task: str | None = None, termination_reason: str = "max_turns", meta: dict | None = None) -> Episode:
        roles = {role: speaker for speaker, role, _ in turns}
        return episode("c1", turns, task=task, roles=roles, termination_reason=termination_reason, dataset="hand", meta=meta)

    return make


def episode_values(annotations: list[Annotation]) -> dict[str, float]:
    return {a.name: a.value for a in annotations if a.turn_idx is None}


def turn_values(annotations: list[Annotation], name: str) -> list[float]:
    return [a.value for a in annotations if a.name == name and a.turn_idx is not None]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        # A negative cut would slice from the end (`turns[:-1]`), zero would show the judge nothing.
        ("analyzer.human_likeness.max_turns=-1", "analyzer.human_likeness.max_turns must be positive, got -1"),
        ("analyzer.human_likeness.max_chars=-1", "analyzer.human_likeness.max_chars must be positive, got -1"),
        ("analyzer.digression.max_turns=0", "analyzer.digression.max_turns must be positive, got 0"),
        ("analyzer.digression.max_chars=-5", "analyzer.digression.max_chars must be positive, got -5"),
        ("analyzer.role_drift.threshold=-0.1", "analyzer.role_drift.threshold must be in (0, 1], got -0.1"),
        ("analyzer.digression.threshold=0", "analyzer.digression.threshold must be in (0, 2] (a cosine distance), got 0.0"),
        ("analyzer.instructions.seed=-1", "analyzer.instructions.seed must not be negative, got -1"),
    ],
)
def test_bad_sizes_are_refused_when_the_analyzer_is_built(override: str, message: str) -> None:
    name = override.split(".")[1]
    with pytest.raises(SimError, match=f"^{re.escape(message)}$"):
        build_analyzers(compose_config([override]).analyzer, [name])


def test_transcripts_keep_the_first_turns_within_the_limits(conversation) -> None:
    episode = conversation([("A", "user", "one"), ("B", "assistant", "two"), ("A", "user", "three")])
    assert transcript(episode, 1, 100) == "A (user): one"
    assert transcript(episode, 3, 12) == "A (user): on [...]"


def test_repetition_loops_and_endings(conversation) -> None:
    episode = conversation(
        [
            ("A", "user", "a b c d"), ("B", "assistant", "a b c e"), ("A", "user", "x y z"), ("B", "assistant", "a b c d"),
            ("A", "user", "you bake the pizza " * 30), ("B", "assistant", "p q r s t"),
        ],
        termination_reason="guard_stop: role_flip (role_flipped) at turn 3",
        meta={"correct": True},
    )
    annotations = analyzers.create("conversation_stats").annotate(episode)
    assert turn_values(annotations, "repeated_trigram_share")[:4] == [0.0, 0.5, 0.0, 1.0]
    # A near copy (3 of 4 words in order: 0.75), a verbatim copy, and a turn that says one sentence thirty times.
    assert turn_values(annotations, "loop_score") == pytest.approx([0.0, 0.75, 0.0, 1.0, 1 - 4 / 118, 0.0])
    assert turn_values(annotations, "looped") == [0.0, 1.0, 0.0, 1.0, 1.0, 0.0]
    values = episode_values(annotations)
    assert values["loop_turns"] == 3.0 and values["has_loop"] == 1.0 and values["correct"] == 1.0
    assert values["mean_turn_words"] == pytest.approx((4 + 4 + 3 + 4 + 120 + 5) / 6)
    analyzer = analyzers.create("conversation_stats")
    endings = analyzer.corpus_metrics([(episode, []), (conversation([("A", "u", "x")]), []), (conversation([("A", "u", "x")]), [])])
    assert endings["ended[guard_stop]"].mean == pytest.approx(1 / 3) and endings["ended[max_turns]"].mean == pytest.approx(2 / 3)
    assert "graph_density" not in values  # two speakers: no group graph
    assert ending_of(conversation([("A", "u", "x")], termination_reason="max_turns (guards: 1 guard_flag)")) == "max_turns"


def test_transition_graph_of_a_group(conversation) -> None:
    episode = conversation([("A", "a", "one two"), ("B", "b", "three four"), ("C", "c", "five six"), ("A", "a", "seven eight")])
    values = episode_values(analyzers.create("conversation_stats").annotate(episode))
    assert values["graph_density"] == pytest.approx(3 / 6) and values["graph_reciprocity"] == 0.0
    assert values["self_transition_share"] == 0.0 and values["transition_entropy"] == pytest.approx(math.log2(3))


@pytest.mark.slow
def test_spp_transcripts_and_a_human_corpus(store) -> None:
    log = SPP / "logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl"
    import_file(store, "spp", log, dataset="spp", options={"puzzles": str(SPP / "logic_grid_puzzle_200.jsonl")}, progress=False)
    import_file(store, "dailydialog", CONVERSATIONS / "dailydialog" / "dailydialog_sample_2624.jsonl", dataset="dd", progress=False)
    (summary,) = analyze(store, [analyzers.create("conversation_stats")])
    metrics = {(m.group, m.name): m for m in summary.metrics}
    logged = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines() if line.strip()]
    correct = [r["test_output_infos"][0]["correct"] for r in logged if r.get("test_output_infos")]
    assert metrics[("spp", "correct")].n == len(correct) and metrics[("spp", "correct")].mean == pytest.approx(sum(correct) / len(correct))
    assert metrics[("dd", "n_turns")].n == 2624
    # The simulated personas repeat themselves far more than people in everyday dialogue.
    assert metrics[("spp", "mean_repeated_trigram_share")].ci_low > metrics[("dd", "mean_repeated_trigram_share")].ci_high


@pytest.mark.slow
def test_embedding_distance_from_the_task_grows_with_a_digression(conversation) -> None:
    episode = conversation(
        [
            ("A", "user", "Let us bake a chocolate cake: first melt the chocolate and butter."),
            ("B", "assistant", "Then whisk eggs and sugar and fold in the melted chocolate for the cake batter."),
            ("A", "user", "Pour the chocolate batter into the cake tin and bake it for thirty minutes."),
            ("B", "assistant", "By the way, the stock market fell sharply today after the bank report."),
        ],
        task="Bake a chocolate cake.",
    )
    annotations = analyzers.create("digression", mode="embedding").annotate(episode)
    distances = turn_values(annotations, "task_distance")
    assert distances[3] > max(distances[:3]) + 0.3
    assert episode_values(annotations)["drift_slope"] > 0
    # Off task: far from the task and from the talk around it; only the aside about the stock market.
    assert turn_values(annotations, "off_task") == [0.0, 0.0, 0.0, 1.0]
    assert episode_values(annotations)["off_task_rate"] == 0.25


def test_accuracy_with_and_without_digression(conversation) -> None:
    analyzer = analyzers.create("digression", mode="embedding")
    scored = []
    for number, (digresses, correct) in enumerate([(1, False), (1, True), (0, True), (0, True), (0, False)]):
        episode = conversation([("A", "u", "x")], task="t", meta={"correct": correct})
        scored.append((episode, [Annotation(f"e{number}", "digresses", float(digresses))]))
    metrics = analyzer.corpus_metrics(scored)
    assert metrics["accuracy[with digression]"].mean == 0.5 and metrics["accuracy[without digression]"].mean == pytest.approx(2 / 3)


def test_drift_curve_follows_one_cohort_of_conversations(episode) -> None:
    # Conversations of 2, 4, 4 and 6 turns whose distance is their length at every turn: a curve over whoever
    # reached each turn would rise with turn index (only long conversations reach late turns); the cohort's is flat.
    scored = [
        (episode(f"e{n}", task="t"),
         [Annotation(f"e{n}", "task_distance", float(n), turn_idx=i) for i in range(n)])
        for n in (2, 4, 4, 6)
    ]
    analyzer = analyzers.create("digression", mode="embedding")
    curve = {name: m.mean for name, m in analyzer.corpus_metrics(scored).items() if name.startswith("task_distance_at_turn")}
    assert curve == {f"task_distance_at_turn[{i}]": pytest.approx(14 / 3) for i in range(4)}
    assert analyzer.notes(scored) == ["task_distance_at_turn follows the same 3 of 4 conversations at every turn: those with at least 4 turns"]


def keep_first(store, n: int) -> list[str]:
    """Delete all but the first `n` stored episodes; their ids."""
    keep = [row["id"] for row in store.episode_rows()][:n]
    marks = ", ".join("?" * len(keep))
    store.db.execute(f"DELETE FROM turns WHERE episode_id NOT IN ({marks})", keep)
    store.db.execute(f"DELETE FROM episodes WHERE id NOT IN ({marks})", keep)
    store.db.conn.commit()
    return keep


@pytest.mark.slow
def test_embedding_analyzers_on_real_conversations(store) -> None:
    import_file(store, "spp", SPP / "logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl", dataset="spp", progress=False)
    keep_first(store, 12)
    import_file(store, "casino", CONVERSATIONS / "casino" / "casino_dialogues.jsonl", dataset="casino", progress=False)
    store.db.execute("DELETE FROM turns WHERE episode_id IN (SELECT id FROM episodes WHERE dataset = 'casino' AND rowid NOT IN (SELECT rowid FROM episodes WHERE dataset = 'casino' ORDER BY rowid LIMIT 12))")
    store.db.execute("DELETE FROM episodes WHERE dataset = 'casino' AND rowid NOT IN (SELECT rowid FROM episodes WHERE dataset = 'casino' ORDER BY rowid LIMIT 12)")
    store.db.conn.commit()
    digression, drift = analyze(store, [analyzers.create("digression", mode="embedding"), analyzers.create("role_drift", mode="embedding")])
    distances = {m.name: m for m in digression.metrics if m.group == "spp"}
    assert distances["mean_task_distance"].n == 12 and 0 < distances["mean_task_distance"].mean < 1
    assert distances["task_distance_at_turn[0]"].unit == "corpus"
    # Twelve conversations are too few to learn what each role says: no drift rates, and the notes say why.
    assert not [m for m in drift.metrics if m.name.startswith("drift")]
    assert any("casino: role drift is not identifiable" in note for note in drift.notes)
    assert any("spp: role drift is not identifiable" in note for note in drift.notes)


@pytest.mark.slow
def test_judges_on_the_embedded_model_answer_and_are_cached(store) -> None:
    from sim.analysis import build_analyzers

    import_file(store, "dailydialog", CONVERSATIONS / "dailydialog" / "dailydialog_sample_2624.jsonl", dataset="dd", progress=False)
    keep = keep_first(store, 2)
    judged_by_self = [f"analyzer.{name}.judge=self" for name in ("human_likeness", "digression", "role_drift")]
    settings = compose_config(["backend.n_ctx=2048", "analyzer.digression.mode=judge", "analyzer.role_drift.mode=judge", *judged_by_self]).analyzer
    selected = build_analyzers(settings, ["human_likeness", "digression", "role_drift"])
    first = analyze(store, selected)
    requests = store.db["request_cache"].count
    assert requests >= 2 + 2 + sum(len(store.episode(i).turns) for i in keep)  # one per conversation, one per turn
    for summary in first:
        assert summary.n_episodes == 2
    rows = store.db.execute("SELECT analyzer, episode_id, turn_idx, name, value, detail_json FROM annotations ORDER BY id").fetchall()
    for analyzer, episode_id, turn_idx, name, value, detail in rows:
        if name == "unanswered_rate":
            assert json.loads(detail)["judge"].startswith("embedded:SmolLM2") and json.loads(detail)["answers"]
        if name == "human_like":
            assert json.loads(detail)["rationale"]
    in_role = {(e, t): v for a, e, t, n, v, _ in rows if n == "in_role"}
    drifted = {(e, t): v for a, e, t, n, v, _ in rows if n == "drifted" and a == "role_drift"}
    assert in_role and all(drifted[key] == 1 - value for key, value in in_role.items())
    categories = {n for _, _, _, n, _, _ in rows if n.startswith("category[")}
    assert categories <= {f"category[{name}]" for name in CATEGORIES}
    # Analyzing again asks nothing new: every answer comes from the store's request cache.
    second = analyze(store, build_analyzers(settings, ["human_likeness", "digression", "role_drift"]))
    assert store.db["request_cache"].count == requests
    assert [m.mean for s in second for m in s.metrics] == [m.mean for s in first for m in s.metrics]


@pytest.mark.slow
def test_deal_actions_are_not_scored(store) -> None:
    """On the real CaSiNo corpus, conversation statistics and role flips score the utterances only: no annotation
    falls on a deal action, and the turns counted are the 11,919 utterances, not the 14,297 turns with the actions."""
    from analyzers.role_flip import RoleFlipAnalyzer

    import_file(store, "casino", CONVERSATIONS / "casino" / "casino_dialogues.jsonl", dataset="casino", progress=False)
    # CAMEL's roles for the two participants, so that role_flip applies (it checks user and assistant turns only).
    store.db.execute("UPDATE turns SET role = CASE speaker WHEN 'mturk_agent_1' THEN 'user' ELSE 'assistant' END")
    store.db.execute("UPDATE turns SET content = 'Instruction: accept. Input: None' WHERE kind = 'action'")
    store.db.conn.commit()
    utterances, actions = (store.db["turns"].count_where("kind = ?", [kind]) for kind in ("utterance", "action"))
    assert (utterances, actions) == (11919, 2378)
    stats, flips = analyze(store, [analyzers.create("conversation_stats"), RoleFlipAnalyzer()], progress=False)
    counted = {m.name: m for m in stats.metrics}
    assert counted["turn_words"].n == utterances and counted["n_turns"].mean * counted["n_turns"].n == utterances
    on_actions = store.db.execute(
        "SELECT a.analyzer, count(*) FROM annotations a JOIN turns t ON t.episode_id = a.episode_id AND t.idx = a.turn_idx"
        " WHERE t.kind = 'action' GROUP BY a.analyzer"
    ).fetchall()
    assert on_actions == []
    checked = store.db.execute("SELECT sum(value) FROM annotations WHERE analyzer = 'role_flip' AND name = 'n_checked_turns'").fetchone()[0]
    assert checked == utterances and flips.n_episodes == 1030
