"""Solo-Performance-Prompting on tasks with a ground truth (logic grid puzzles): one model voicing several
personas in one response (`mode=single`), or the personas as separate agents (`mode=agents`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agents.spp import FINAL_REQUEST, LEADER, persona_team, solo_performer
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.errors import SimError, require_one_of
from sim.records import Episode, Turn
from sim.spp import final_answer, is_correct, split_transcript

MODES = ("single", "agents")


@dataclass
class Puzzle:
    """A question and its accepted answers."""

    question: str
    target: list[str] = field(default_factory=list)


@dataclass
class SPPConfig(ReferenceConfig):
    """Schema of `scenario=spp`."""

    _target_: str = "scenarios.spp.SPPScenario"
    items: list[Puzzle] = field(default_factory=list)
    mode: str = "single"
    personas: list[str] = field(default_factory=lambda: ["Logic Puzzle Expert", "Critical Thinker"])
    # The 95th percentile of the paper's GPT-4 SPP responses rounded up to 32 (docs/turn_budgets.md): a normal turn is not cut.
    max_tokens: int = 992


@scenarios.register("spp", config=SPPConfig)
class SPPScenario(ReferenceScenario[Puzzle]):
    """One episode per puzzle; the final answer is parsed and scored against the target."""

    kind = "conversation"
    reference_format = "tasks"

    def __init__(self, items: list[dict[str, Any]], mode: str, personas: list[str], **common: Any) -> None:
        super().__init__(**common)
        require_one_of("scenario.mode", mode, MODES)
        if mode == "agents" and not personas:
            raise SimError("scenario.personas is empty: mode=agents needs at least one persona")
        self.configured_items = [Puzzle(item["question"], [str(t) for t in item.get("target") or []]) for item in items]
        self.mode = mode
        self.personas = list(personas)

    def items_from_reference(self, episodes: list[Episode]) -> list[Puzzle]:
        """Tasks (the `tasks` importer's shape), or SPP logs whose meta keeps the puzzle's target."""
        puzzles = []
        for episode in episodes:
            target = episode.meta.get("target")
            if episode.task and target is not None:
                puzzles.append(Puzzle(episode.task, [str(t) for t in (target if isinstance(target, list) else [target])]))
        return puzzles

    @property
    def forkable(self) -> bool:  # type: ignore[override]
        """Only the agents mode makes one request per turn; a single response cannot be cut at a turn."""
        return self.mode == "agents"

    def plan(self) -> list[EpisodePlan]:
        """One episode per puzzle."""
        roles = {LEADER: "leader", **{p: "persona" for p in self.personas}} if self.mode == "agents" else {}
        return [
            EpisodePlan(index, puzzle.question, roles, {"target": puzzle.target, "mode": self.mode})
            for index, puzzle in enumerate(self.items)
        ]

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Collaborate, then score the final answer."""
        puzzle = self.items[plan.index]
        if self.mode == "single":
            answer, reason = await self._single(puzzle, ctx)
        else:
            answer, reason = await self._agents(puzzle, ctx)
        ctx.update_episode(meta={"final_answer": answer, "correct": is_correct(answer, puzzle.target)})
        return Outcome("done", reason)

    async def _single(self, puzzle: Puzzle, ctx: EpisodeContext) -> tuple[str | None, str]:
        """One response holding the whole collaboration, stored as one turn per persona contribution."""
        agent = solo_performer(puzzle.question)
        response = await ctx.generate_text("spp_response", agent.view([]), self.sampling)
        personas, turns = split_transcript(response)
        if not turns:
            turns = [(LEADER, "spp_response", response.strip())]
        for idx, (speaker, role, text) in enumerate(turns):
            ctx.record_turn(idx, speaker, role, text)
        ctx.update_episode(meta={"personas": personas, "raw_response": response})
        answer = final_answer(response)
        return answer, "final_answer" if answer is not None else "no_final_answer"

    async def _agents(self, puzzle: Puzzle, ctx: EpisodeContext) -> tuple[str | None, str]:
        """The leader and the personas speak in turn until the leader gives a final answer or turns run out."""
        team = persona_team(puzzle.question, self.personas)
        transcript: list[Turn] = []
        for idx in range(self.max_turns):
            agent = team[idx % len(team)]
            turn = await ctx.generate_turn(idx, agent.speaker, agent.role, agent.view(transcript, name_speakers=True), self.sampling)
            transcript.append(turn)
            if agent.speaker == LEADER and idx > 0 and (answer := final_answer(turn.content)) is not None:
                return answer, "final_answer"
        request = Turn(len(transcript), "team", "team", FINAL_REQUEST)
        closing = team[0].view([*transcript, request], name_speakers=True)
        turn = await ctx.generate_turn(len(transcript), LEADER, LEADER, closing, self.sampling)
        answer = final_answer(turn.content)
        return answer, "max_turns" if answer is not None else "no_final_answer"
