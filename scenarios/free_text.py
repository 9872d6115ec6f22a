"""Free text: responses to human prompts, one or more samples per prompt."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from agents.writer import WRITER_SYSTEM, writer
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.errors import SimError, require_at_least
from sim.records import Episode


@dataclass
class WritingPrompt:
    """A prompt, and the human text written for it when the reference pairs one."""

    prompt: str
    human_text: Optional[str] = None


@dataclass
class FreeTextConfig(ReferenceConfig):
    """Schema of `scenario=free_text`."""

    _target_: str = "scenarios.free_text.FreeTextScenario"
    items: list[WritingPrompt] = field(default_factory=list)
    samples_per_prompt: int = 1
    system_prompt: str = WRITER_SYSTEM
    prompt_template: str = "{prompt}"
    # The 95th percentile of text-davinci-003's and people's answers to Self-Instruct's user-oriented instructions rounded up to 32 (docs/turn_budgets.md): a normal turn is not cut.
    max_tokens: int = 256


@scenarios.register("free_text", config=FreeTextConfig)
class FreeTextScenario(ReferenceScenario[WritingPrompt]):
    """One episode per prompt and sample: the prompt as turn 0, the model's text as turn 1."""

    kind = "free_text"
    reference_format = "free_text"

    def __init__(
        self,
        items: list[dict[str, Any]],
        samples_per_prompt: int,
        system_prompt: str,
        prompt_template: str,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        require_at_least("scenario.samples_per_prompt", samples_per_prompt, 1)
        if "{prompt}" not in prompt_template:
            raise SimError("scenario.prompt_template must contain {prompt}")
        self.configured_items = [WritingPrompt(**item) for item in items]
        self.samples_per_prompt = samples_per_prompt
        self.system_prompt = system_prompt
        self.prompt_template = prompt_template

    def items_from_reference(self, episodes: list[Episode]) -> list[WritingPrompt]:
        """Each distinct prompt, with a human text written for it when the reference has one."""
        prompts: dict[str, WritingPrompt] = {}
        for episode in episodes:
            prompt = episode.content_of("prompt")
            if prompt is None:
                continue
            item = prompts.setdefault(prompt, WritingPrompt(prompt))
            if episode.meta.get("author") == "human" and item.human_text is None:
                item.human_text = episode.content_of("text")
        return list(prompts.values())

    def plan(self) -> list[EpisodePlan]:
        """`samples_per_prompt` episodes per prompt, sharing `meta.pair`."""
        return [
            EpisodePlan(
                index * self.samples_per_prompt + sample,
                item.prompt,
                {"text": "llm"},
                {"pair": index, "sample": sample, "human_text": item.human_text},
            )
            for index, item in enumerate(self.items)
            for sample in range(self.samples_per_prompt)
        ]

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Store the prompt, then ask the writer."""
        item = self.items[plan.meta["pair"]]
        ctx.record_turn(0, "prompt", "prompt", item.prompt)
        agent = writer(self.system_prompt, self.prompt_template.replace("{prompt}", item.prompt))
        await ctx.generate_turn(1, agent.speaker, agent.role, agent.view([]), self.sampling)
        ctx.update_episode(meta={"author": "llm", "writer": "llm"})
        return Outcome("done", "written")
