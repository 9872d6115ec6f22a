"""Group discussions: three or more persona agents, taking turns round-robin or as a moderator decides."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.group import END, members, moderator, parse_next_speaker
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.errors import SimError, require_one_of
from sim.graphs import graph_summary, transition_graph
from sim.records import Episode, Turn

POLICIES = ("round_robin", "moderator")


@dataclass
class Persona:
    """A group member: a name and a description of who they are."""

    name: str
    description: str


@dataclass
class GroupConfig(ReferenceConfig):
    """Schema of `scenario=group`; a reference gives human conversations whose opening lines become the topics."""

    _target_: str = "scenarios.group.GroupScenario"
    topics: list[str] = field(default_factory=list)
    personas: list[Persona] = field(default_factory=list)
    policy: str = "round_robin"
    # The 95th percentile of people's turns in DailyDialog rounded up to 32 (docs/turn_budgets.md): a normal turn is not cut.
    max_tokens: int = 64


@scenarios.register("group", config=GroupConfig)
class GroupScenario(ReferenceScenario[str]):
    """One episode per topic (cycled up to `n_episodes`); ends at `max_turns` or when the moderator says END.
    The speaker-transition graph's summary goes to the episode's meta."""

    kind = "conversation"
    forkable = True
    reference_format = "dailydialog"
    caps_items = False

    def __init__(self, topics: list[str], personas: list[dict[str, str]], policy: str, **common: Any) -> None:
        super().__init__(**common)
        if len(personas) < 3:
            raise SimError(f"scenario.personas needs at least 3 members for a group, got {len(personas)}")
        names = [p["name"] for p in personas]
        if len(set(names)) < len(names):
            raise SimError(f"scenario.personas: names must be distinct, got {', '.join(names)}")
        require_one_of("scenario.policy", policy, POLICIES)
        self.configured_items = list(topics)
        self.personas = {p["name"]: p["description"] for p in personas}
        self.policy = policy

    def items_from_reference(self, episodes: list[Episode]) -> list[str]:
        """The opening line of each conversation, as a concrete prompt for the group to take up."""
        return [e.turns[0].content for e in episodes if e.turns]

    def plan(self) -> list[EpisodePlan]:
        """Cycle through the topics until `n_episodes` episodes (null: one per topic) are planned."""
        return [
            EpisodePlan(index, self.items[index % len(self.items)], dict(self.personas), {"policy": self.policy})
            for index in range(self.n_episodes or len(self.items))
        ]

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Let the chosen member speak, turn after turn."""
        assert plan.task is not None
        agents = {agent.speaker: agent for agent in members(plan.task, self.personas)}
        names = list(agents)
        transcript: list[Turn] = []
        fallbacks = 0
        reason = "max_turns"
        for idx in range(self.max_turns):
            speaker = names[idx % len(names)]
            if self.policy == "moderator" and idx > 0:
                chair = moderator(plan.task, names, transcript)
                choice = parse_next_speaker(await ctx.generate_text(f"moderator:{idx}", chair.view([]), self.sampling), names)
                if choice == END:
                    reason = "moderator_end"
                    break
                if choice is None:
                    fallbacks += 1  # an answer naming nobody: keep the round-robin order
                else:
                    speaker = choice
            agent = agents[speaker]
            transcript.append(
                await ctx.generate_turn(idx, agent.speaker, agent.role, agent.view(transcript, name_speakers=True), self.sampling)
            )
        ctx.update_episode(meta={"transitions": graph_summary(transition_graph(transcript)), "moderator_fallbacks": fallbacks})
        return Outcome("done", reason)
