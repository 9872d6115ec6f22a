"""Collaboration: an LLM judge reads a conversation and answers whether its conclusion came from a combined effort
of the participants or was led by one of them (the paper's third simulation judgment). Where the task has a
ground truth (SPP puzzles), accuracy is split by the verdict."""

from __future__ import annotations

from dataclasses import dataclass

from agents.verdicts import YES_NO_VERDICT
from analyzers.base import MetricInfo, analyzers, unanswered
from analyzers.judging import ConversationJudgeConfig, ConversationVerdict, Protocol, paper_yes_no

PAPER_QUESTION = (
    "Judge how the participants of the conversation below worked together: did its conclusion come from a combined "
    "effort, with every participant contributing substantially, or did a single participant lead it? Answer yes for "
    "a combined effort, no otherwise.\n### Task\n\n{task}\n\n### Conversation\n\n{transcript}\n\n"
)
PROTOCOLS = {
    "short": Protocol(
        "short",
        ask="Here is a task and a conversation about it.\n\nTask: {task}\n\nConversation:\n{transcript}\n\n"
        "Did the participants reach their conclusion by a combined effort, each contributing substantially (yes), "
        f"or did a single participant lead it (no)? Say briefly why. {YES_NO_VERDICT}",
    ),
    "paper": paper_yes_no(PAPER_QUESTION, "Now give your reasons."),
}


@dataclass
class CollaborationConfig(ConversationJudgeConfig):
    """Schema of `analyzer.collaboration` (the settings are ConversationJudgeConfig's)."""

    _target_: str = "analyzers.collaboration.CollaborationAnalyzer"


@analyzers.register("collaboration", config=CollaborationConfig)
class CollaborationAnalyzer(ConversationVerdict):
    """Per conversation: `unanswered_rate` (1 when the judge gave no verdict) and `combined_effort` (1 yes, 0: one
    participant led) with the judge's rationale; per group accuracy with and without a combined effort where
    episodes carry `meta.correct`."""

    version = "1"
    metrics = {
        "unanswered_rate": unanswered("episode"),
        "combined_effort": MetricInfo("1 where the judge said the conversation was a combined effort, 0 where one participant led", "episode", "binary"),
        "accuracy[combined effort]": MetricInfo("task accuracy (meta.correct) of the conversations judged a combined effort", "corpus", "proportion"),
        "accuracy[one leader]": MetricInfo("task accuracy (meta.correct) of the conversations judged led by one participant", "corpus", "proportion"),
    }
    verdict_name = "combined_effort"
    split_labels = ("combined effort", "one leader")
    protocols = PROTOCOLS
