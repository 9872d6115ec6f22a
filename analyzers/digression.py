"""Digression: does a conversation wander from its task? Either an LLM judge answers yes or no and sorts each
digression into the paper's seven categories, or sentence embeddings measure each turn's distance from the task
statement and how it grows over the conversation. Where the task has a ground truth, accuracy is reported with
and without digression."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from agents.verdicts import YES_NO_VERDICT
from analyzers import embeddings as sentence_embeddings
from analyzers.base import Analyzer, Detector, ReportFigures, Scored, MetricInfo, analyzers, unanswered
from analyzers.judging import ConversationJudgeConfig, JudgesConversations, Protocol, accuracy_by, judge_for_mode, protocol_named, transcript_limits
from sim.errors import require_score
from sim.records import Annotation, Episode
from sim.stats import Estimate, estimate

if TYPE_CHECKING:
    from sim.summary import AnalyzerSummary
    from sim.compare import ReportView

CATEGORIES = (
    "procedural/introductory",
    "repetitive/confirmatory",
    "transitional",
    "irrelevant/off-topic",
    "misleading/incorrect reasoning",
    "closing/summarizing",
    "constructive",
)
# The paper's seven kinds of digression, as its classification prompt numbers them.
CATEGORY_LIST = "".join(f"[{number}] {name}, " for number, name in enumerate(CATEGORIES, start=1)).rstrip(", ")
TASK_AND_TRANSCRIPT = "### Task\n\n{task}\n\n### Conversation\n\n{transcript}\n\n"
PAPER_QUESTION = (
    "Read the task and the conversation below and decide whether the conversation digresses: answer yes or no. "
    "Then point out any statement that does nothing to solve the task or has nothing to do with its clues.\n"
)
PROTOCOLS = {
    "short": Protocol(
        "short",
        ask="Here is a task and a conversation about it.\n\nTask: {task}\n\nConversation:\n{transcript}\n\n"
        f"Does this conversation digress from its task? Say briefly why. {YES_NO_VERDICT}",
        classify="Here is a conversation that digresses from its task, and a judge's reasons.\n\n"
        + TASK_AND_TRANSCRIPT + "### Reasons\n\n{rationale}\n\n"
        f"Which kind of digression is it: {CATEGORY_LIST}? Answer with its number in brackets, e.g. [2].",
    ),
    "paper": Protocol(
        "paper",
        ask=PAPER_QUESTION + TASK_AND_TRANSCRIPT + "### Answer: ",
        explain=PAPER_QUESTION + TASK_AND_TRANSCRIPT + "### Answer: {verdict}.\n"
        "Now quote each statement that does nothing to solve the task or has nothing to do with its clues, and say "
        "why it counts as a digression. If on reflection your answer changes, give the reason for the change. "
        + YES_NO_VERDICT,
        classify=f"Sort the reasoning below into one of these kinds of statement: {CATEGORY_LIST}. "
        "Reply in the form [k], e.g. [1] or [3].\n### Conversation\n\n{transcript}\n\n### Reasoning\n\n{rationale}\n\n"
        "### Answer (in the form [k]): ",
        system=True,
        max_tokens=256,
    ),
}
# The topic-drift curve follows one cohort of conversations at every turn: those with at least as many turns as
# the median conversation (at most this many). Turn indices reached by different conversations (all reach turn 1,
# few turn 9) would confound drift with which conversations run long.
CURVE_TURNS = 10
# A turn is compared with the turns this many places before and after it: the talk it is part of.
CONTEXT = 2
# off_task_score at or above which a turn is flagged `off_task`: chosen by `sim validate --kinds digression` on
# PersuasionForGood and the SPP transcripts for a false-flag rate under 5% (docs/validity.md).
THRESHOLD = 0.9


def off_task_scores(turns: np.ndarray, task: np.ndarray) -> np.ndarray:
    """Per turn, 1 - the larger of its cosine similarity to the task and its mean similarity to the turns around
    it (CONTEXT on each side): high only for a turn that is about neither the task nor what is being talked
    about, which the task statement alone cannot tell from a greeting or an aside that the talk takes up."""
    similarity = turns @ turns.T
    scores = np.empty(len(turns))
    for i in range(len(turns)):
        around = [j for j in range(max(0, i - CONTEXT), min(len(turns), i + CONTEXT + 1)) if j != i]
        context = float(similarity[i, around].mean()) if around else -1.0
        scores[i] = 1.0 - max(float(turns[i] @ task), context)
    return scores


@dataclass
class DigressionConfig(ConversationJudgeConfig):
    """Schema of `analyzer.digression`: `mode` is `embedding` (distance of each turn from the task statement) or
    `judge` (an LLM judge, set up by the ConversationJudgeConfig settings); `embeddings` must be installed for the
    embedding mode, where a turn is flagged `off_task` when its off_task_score reaches `threshold`."""

    _target_: str = "analyzers.digression.DigressionAnalyzer"
    mode: str = "embedding"
    threshold: float = THRESHOLD


@analyzers.register("digression", config=DigressionConfig)
class DigressionAnalyzer(JudgesConversations, Analyzer):
    """Embedding mode: per turn `task_distance` (1 - cosine similarity to the task), `off_task_score` (far from
    both the task and the turns around it) and its flag `off_task`; per episode the mean and maximum distance,
    `drift_slope` (distance gained per turn) and `off_task_rate`; per group the mean distance at each turn index.
    Judge mode: per episode `unanswered_rate`, `digresses` and, for a digression, `category[NAME]`; per group
    accuracy with and without digression where episodes carry `meta.correct`."""

    version = "3"
    metrics = {
        "task_distance": MetricInfo("1 - cosine similarity of the turn to the task", "turn", "score", "higher"),
        "off_task_score": MetricInfo("1 - the larger of the turn's similarity to the task and its mean similarity to the two turns before and after", "turn", "score", "higher"),
        "off_task": MetricInfo("1 where off_task_score reaches analyzer.digression.threshold", "turn", "binary", "higher"),
        "mean_task_distance": MetricInfo("mean task_distance of the conversation's turns", "episode", "score", "higher"),
        "max_task_distance": MetricInfo("largest task_distance of the conversation's turns", "episode", "score", "higher"),
        "drift_slope": MetricInfo("task_distance gained per turn (least-squares slope)", "episode", "score", "higher"),
        "off_task_rate": MetricInfo("off_task turns / scored turns", "episode", "proportion", "higher"),
        "task_distance_at_turn[K]": MetricInfo("mean task_distance at turn K over one cohort (the conversations with at least the median number of turns)", "corpus", "score", "higher"),
        "unanswered_rate": unanswered("episode"),
        "digresses": MetricInfo("judge mode: 1 where the judge said the conversation digresses from its task", "episode", "binary", "higher"),
        "category_unanswered": MetricInfo("judge mode: 1 where the judge named no kind for a digression", "episode", "binary"),
        "category[NAME]": MetricInfo("judge mode: 1 where the judge sorted the digression into kind NAME (one of seven)", "episode", "binary"),
        "accuracy[with digression]": MetricInfo("task accuracy (meta.correct) of the conversations the judge said digress", "corpus", "proportion"),
        "accuracy[without digression]": MetricInfo("task accuracy (meta.correct) of the conversations the judge said keep to the task", "corpus", "proportion"),
    }
    uses_corpus = True
    turn_flags = ("off_task",)

    def __init__(
        self, mode: str, judge: Any, protocol: str, template: Optional[str], max_turns: int, max_chars: int, threshold: float,
    ) -> None:
        require_score("analyzer.digression.threshold", threshold, 2, " (a cosine distance)")
        self.threshold = threshold
        self.max_turns, self.max_chars = transcript_limits("digression", max_turns, max_chars)
        self.protocol = protocol_named(PROTOCOLS, protocol, template, "digression")
        self.judge = judge_for_mode(mode, judge, "digression", self.protocol.max_tokens)
        # The judge reads whole conversations: only the embedding mode scores single turns.
        self.detectors = () if self.judge is not None else (Detector("digression", "off_task_score", "off_task"),)

    def applies_to(self, episode: Episode) -> bool:
        """Conversations with a task statement and at least one turn."""
        return episode.kind == "conversation" and bool(episode.task) and bool(episode.turns)

    def annotate(self, episode: Episode) -> list[Annotation]:
        """Distances from the task (embedding mode), or the judge's verdict and category (judge mode)."""
        return self.annotate_many([episode])[0]

    def annotate_many(self, episodes: list[Episode]) -> list[list[Annotation]]:
        """Judge mode one episode at a time; embedding mode embeds the tasks and turns of all of them at once."""
        if self.judge is not None:
            return [self.judged_conversation(episode, "digresses", CATEGORIES) for episode in episodes]
        texts = [[episode.task or ""] + [turn.content for turn in episode.turns] for episode in episodes]
        return [self._embedded(episode, vectors) for episode, vectors in zip(episodes, sentence_embeddings.embed_groups(texts))]

    def _embedded(self, episode: Episode, vectors: np.ndarray) -> list[Annotation]:
        task, turns = vectors[0], vectors[1:]
        distances = 1.0 - turns @ task
        off_task = off_task_scores(turns, task)
        annotations = []
        for turn, distance, score in zip(episode.turns, distances, off_task):
            annotations += [
                Annotation(episode.id, "task_distance", float(distance), turn_idx=turn.idx),
                Annotation(episode.id, "off_task_score", float(score), turn_idx=turn.idx),
                Annotation(episode.id, "off_task", float(score >= self.threshold), turn_idx=turn.idx),
            ]
        values = {
            "mean_task_distance": float(distances.mean()), "max_task_distance": float(distances.max()),
            "off_task_rate": float((off_task >= self.threshold).mean()),
        }
        if len(distances) >= 2:
            values["drift_slope"] = float(np.polyfit(np.arange(len(distances)), distances, 1)[0])
        return annotations + [Annotation(episode.id, name, value) for name, value in values.items()]

    def notes(self, scored: list[Scored]) -> list[str]:
        """Who judged (judge mode), or which conversations the topic-drift curve follows."""
        if self.judge is not None:
            return self.judge_notes(scored)
        curves = drift_cohort(scored)
        if not curves:
            return []
        return [f"task_distance_at_turn follows the same {len(curves)} of {len(scored)} conversations at every turn:"
                f" those with at least {len(curves[0])} turns"]

    def corpus_metrics(self, scored: list[Scored]) -> dict[str, Estimate]:
        """The topic-drift curve (mean distance at each turn index over one cohort of conversations, `drift_cohort`)
        and accuracy with and without digression."""
        result: dict[str, Estimate] = {}
        curves = drift_cohort(scored)
        for position, values in enumerate(zip(*curves)):
            result[f"task_distance_at_turn[{position}]"] = estimate(values)
        result.update(accuracy_by(scored, "digresses", ("with digression", "without digression")))
        return result

    @classmethod
    def report_figures(cls, view: "ReportView") -> ReportFigures:
        """Digression categories (judge mode) as stacked shares of each group's judged episodes."""
        # Imported here: the figures import sim.analysis, which imports every analyzer.
        from sim.figures import stacked_shares

        return ReportFigures(charts=[stacked_shares(
            "digression_categories", "Digression categories per group",
            "Share of each group's judged episodes that digress, stacked by the judge's category.", digression_shares(view.summary),
        )])


def drift_cohort(scored: list[Scored]) -> list[list[float]]:
    """The task distances of each conversation's first L turns, for the conversations that have L turns, where L
    is the median number of scored turns (at most CURVE_TURNS): one cohort, followed turn by turn."""
    distances = [[a.value for a in annotations if a.name == "task_distance"] for _, annotations in scored]
    distances = [values for values in distances if values]
    if not distances:
        return []
    length = min(int(np.median([len(values) for values in distances])), CURVE_TURNS)
    return [values[:length] for values in distances if len(values) >= length]


def digression_shares(summary: "AnalyzerSummary") -> dict[str, dict[str, float]]:
    """Per group, each category's share of the episodes the judge answered for."""
    judged = {metric.group: metric.n for metric in summary.metrics if metric.name == "digresses"}
    shares: dict[str, dict[str, float]] = {group: {} for group in judged}
    for metric in summary.metrics:
        if metric.name.startswith("category[") and judged.get(metric.group):
            shares[metric.group][metric.name[len("category[") : -1]] = metric.n / judged[metric.group]
    return shares
