"""Human-likeness: an LLM judge reads a conversation and answers whether it resembles a dialogue between people.
Where the task has a ground truth (SPP puzzles), accuracy is split by the verdict, as the paper reports it."""

from __future__ import annotations

from dataclasses import dataclass

from agents.verdicts import YES_NO_VERDICT
from analyzers.base import MetricInfo, analyzers, unanswered
from analyzers.judging import ConversationJudgeConfig, ConversationVerdict, Protocol, paper_yes_no

PAPER_QUESTION = (
    "Judge whether the conversation below reads like a dialogue between people or like one made up by several AI "
    "agents. Weigh how it flows, how natural the replies are, whether there are emotional or personal asides, and "
    "how varied and complex its language is. Answer yes if it reads like people talking, no otherwise.\n"
    "### Conversation\n\n{transcript}\n\n"
)
PROTOCOLS = {
    "short": Protocol(
        "short",
        ask="Here is a conversation.\n\n{transcript}\n\n"
        f"Does this conversation resemble a dialogue between people? Say briefly why. {YES_NO_VERDICT}",
    ),
    "paper": paper_yes_no(PAPER_QUESTION, "Now give your reasons: point to what in the conversation suggests people or machines."),
}


@dataclass
class HumanLikenessConfig(ConversationJudgeConfig):
    """Schema of `analyzer.human_likeness` (the settings are ConversationJudgeConfig's)."""

    _target_: str = "analyzers.human_likeness.HumanLikenessAnalyzer"


@analyzers.register("human_likeness", config=HumanLikenessConfig)
class HumanLikenessAnalyzer(ConversationVerdict):
    """Per conversation: `unanswered_rate` (1 when the judge gave no verdict) and `human_like` (1 yes, 0 no) with
    the judge's rationale; per group accuracy of human-like and agent-like conversations where episodes carry
    `meta.correct`."""

    version = "2"
    metrics = {
        "unanswered_rate": unanswered("episode"),
        "human_like": MetricInfo("1 where the judge said the conversation resembles a dialogue between people", "episode", "binary", "lower"),
        "accuracy[human-like]": MetricInfo("task accuracy (meta.correct) of the conversations judged human-like", "corpus", "proportion"),
        "accuracy[agent-like]": MetricInfo("task accuracy (meta.correct) of the conversations judged agent-like", "corpus", "proportion"),
    }
    verdict_name = "human_like"
    split_labels = ("human-like", "agent-like")
    protocols = PROTOCOLS
