"""CAMEL AI-Society role-play: an AI user instructs an AI assistant on a task until it is done."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.camel import TASK_DONE, camel_pair, task_specifier
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.records import Episode, Turn


@dataclass
class RoleplayTask:
    """One (assistant role, user role, task) triple."""

    assistant_role: str
    user_role: str
    task: str


@dataclass
class RoleplayConfig(ReferenceConfig):
    """Schema of `scenario=roleplay`; a reference gives CAMEL chats, whose role pairs and original tasks are replayed."""

    _target_: str = "scenarios.roleplay.RoleplayScenario"
    tasks: list[RoleplayTask] = field(default_factory=list)
    specify_task: bool = False
    specify_word_limit: int = 50
    # The 95th percentile of GPT-4's answers in a role (GPTeacher) rounded up to 32 (docs/turn_budgets.md): a normal turn is not cut.
    max_tokens: int = 192


@scenarios.register("roleplay", config=RoleplayConfig)
class RoleplayScenario(ReferenceScenario[RoleplayTask]):
    """Two agents, user then assistant, taking turns until the user says `<CAMEL_TASK_DONE>` or `max_turns`."""

    kind = "conversation"
    forkable = True
    reference_format = "camel"
    caps_items = False

    def __init__(
        self,
        tasks: list[dict[str, str]],
        specify_task: bool,
        specify_word_limit: int,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        self.configured_items = [RoleplayTask(**task) for task in tasks]
        self.specify_task = specify_task
        self.specify_word_limit = specify_word_limit

    def items_from_reference(self, episodes: list[Episode]) -> list[RoleplayTask]:
        """The (assistant role, user role, original task) of each chat with both roles."""
        return [
            RoleplayTask(e.roles["assistant"], e.roles["user"], e.meta.get("original_task") or e.task)
            for e in episodes
            if {"assistant", "user"} <= set(e.roles) and (e.meta.get("original_task") or e.task)
        ]

    def plan(self) -> list[EpisodePlan]:
        """Cycle through the task triples until `n_episodes` episodes (null: one per triple) are planned."""
        plans = []
        for index in range(self.n_episodes or len(self.items)):
            triple = self.items[index % len(self.items)]
            plans.append(
                EpisodePlan(
                    index=index,
                    task=triple.task,
                    roles={"user": triple.user_role, "assistant": triple.assistant_role},
                    meta={"original_task": triple.task, "role_descriptions": role_descriptions(triple)},
                )
            )
        return plans

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Alternate user and assistant turns; the user speaks first."""
        assert plan.task is not None
        task = plan.task
        if self.specify_task:
            task = await self._specify(plan, ctx)
        user, assistant = camel_pair(plan.roles["assistant"], plan.roles["user"], task)
        transcript: list[Turn] = []
        for idx in range(self.max_turns):
            agent = user if idx % 2 == 0 else assistant
            turn = await ctx.generate_turn(idx, agent.speaker, agent.role, agent.view(transcript), self.sampling)
            transcript.append(turn)
            if agent is user and TASK_DONE in turn.content:  # as in CAMEL, only the AI user ends the task
                return Outcome("done", "task_done")
        return Outcome("done", "max_turns")

    async def _specify(self, plan: EpisodePlan, ctx: EpisodeContext) -> str:
        """Rewrite the task into a more specific one, as CAMEL's task-specifier agent does."""
        specifier = task_specifier(plan.roles["assistant"], plan.roles["user"], plan.task or "", self.specify_word_limit)
        specified = (await ctx.generate_text("specify_task", specifier.view([]), self.sampling)).strip()
        if not specified:
            return plan.task or ""
        ctx.update_episode(task=specified, meta={"specified_task": specified})
        return specified


def role_descriptions(triple: RoleplayTask) -> dict[str, str]:
    """What each CAMEL role does, for analyzers that compare a turn with its role (role_drift)."""
    return {
        "user": f"{triple.user_role}, who instructs the other person step by step what to do next for the task",
        "assistant": f"{triple.assistant_role}, who follows the instructions and answers with a solution for each",
    }
