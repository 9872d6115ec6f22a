"""Task labels: k annotator agents, each optionally a persona, label every reference item."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Optional

from agents.annotator import annotator, label_probability, parse_label
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.errors import SimError, require_at_least
from sim.records import Episode


@dataclass
class LabelItem:
    """One text to label, with the human labels the reference gives for it (if any)."""

    text: str
    human_labels: list[Optional[float]] = field(default_factory=list)
    item_id: Optional[str] = None


@dataclass
class TaskLabelsConfig(ReferenceConfig):
    """Schema of `scenario=task_labels`."""

    _target_: str = "scenarios.task_labels.TaskLabelsScenario"
    items: list[LabelItem] = field(default_factory=list)
    task: str = "sentiment"
    instruction: str = "Label the sentiment of the text."
    labels: list[str] = field(default_factory=list)
    first_label: int = 0
    # Room for one label: the answer is asked for the label alone (agents.annotator reads the first one it names).
    max_tokens: int = 8
    annotators: int = 3
    personas: list[str] = field(default_factory=list)
    logprobs: bool = True


@scenarios.register("task_labels", config=TaskLabelsConfig)
class TaskLabelsScenario(ReferenceScenario[LabelItem]):
    """One episode per item: the item as turn 0, then one turn per annotator; labels parsed into meta."""

    kind = "task_label"
    reference_format = "task_labels"

    def __init__(
        self,
        items: list[dict[str, Any]],
        task: str,
        instruction: str,
        labels: list[str],
        first_label: int,
        annotators: int,
        personas: list[str],
        logprobs: bool,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        if not labels:
            raise SimError("scenario.labels is empty: give the label scheme, e.g. scenario.labels=[negative,positive]")
        require_at_least("scenario.annotators", annotators, 1)
        self.configured_items = [LabelItem(**item) for item in items]
        self.task = task
        self.instruction = instruction
        # Label values are numbers, as in the reference corpora: first_label, first_label + 1, ...
        self.labels = {str(first_label + offset): str(meaning) for offset, meaning in enumerate(labels)}
        self.annotators = annotators
        self.personas = list(personas)
        self.logprobs = logprobs

    def items_from_reference(self, episodes: list[Episode]) -> list[LabelItem]:
        """One item per distinct text (the inter-model files hold one row per item and model)."""
        items: dict[str, LabelItem] = {}
        for episode in episodes:
            text = episode.content_of("item")
            if text is not None and text not in items:
                human = [v for v in episode.meta.get("human_labels") or [] if v is not None]
                item_id = episode.meta.get("item_id")
                items[text] = LabelItem(text, human, None if item_id is None else str(item_id))
        return list(items.values())

    def plan(self) -> list[EpisodePlan]:
        """One episode per item."""
        roles = {"item": "item", "model_annotator": "model"}
        return [
            EpisodePlan(index, self.task, roles, {"item_id": item.item_id or str(index), "human_labels": item.human_labels})
            for index, item in enumerate(self.items)
        ]

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Ask each annotator in turn; an answer naming no label counts as a missing annotation, one naming a number
        outside the scheme is kept as that number (the analyzer counts it invalid). A label's confidence is the
        probability of the tokens that spell it, where the backend gave token log-probabilities."""
        item = self.items[plan.index]
        ctx.record_turn(0, "item", "item", item.text)
        sampling = replace(self.sampling, logprobs=self.logprobs)
        labels: list[Optional[float]] = []
        confidences: list[Optional[float]] = []
        personas: list[Optional[str]] = []
        for number in range(self.annotators):
            persona = self.personas[number % len(self.personas)] if self.personas else None
            agent = annotator(f"annotator_{number}", persona, self.instruction, self.labels, item.text)
            turn = await ctx.generate_turn(number + 1, agent.speaker, agent.role, agent.view([]), sampling)
            value = parse_label(turn.content, self.labels)
            tokens = ctx.token_logprobs(number + 1)
            labels.append(None if value is None else float(value))
            confidences.append(None if tokens is None or value is None else label_probability(tokens, self.labels, value))
            personas.append(persona)
        ctx.update_episode(
            meta={
                "task": self.task,
                "model_labels": labels,
                "model_confidences": confidences,
                "personas": personas,
                "label_scheme": self.labels,
            }
        )
        unparsed = labels.count(None)
        return Outcome("done", f"labeled ({unparsed} unparsed)" if unparsed else "labeled")
