"""Preferences: a judge agent picks the better of two outputs, or a tie, in both orders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from agents.judge import judge, parse_choice
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.records import Episode

# A judge's A/B answer in terms of the pair's own outputs, for the order shown and for the swapped order.
AS_SHOWN = {"A": "output_1", "B": "output_2", "tie": "tie"}
SWAPPED = {"A": "output_2", "B": "output_1", "tie": "tie"}


@dataclass
class PreferencePair:
    """Two outputs to compare, the prompt they answer (if known), and the human choice (if known)."""

    output_1: str
    output_2: str
    prompt: Optional[str] = None
    human: Optional[str] = None


@dataclass
class PreferencesConfig(ReferenceConfig):
    """Schema of `scenario=preferences`."""

    _target_: str = "scenarios.preferences.PreferencesScenario"
    items: list[PreferencePair] = field(default_factory=list)


@scenarios.register("preferences", config=PreferencesConfig)
class PreferencesScenario(ReferenceScenario[PreferencePair]):
    """One episode per pair: prompt and outputs as turns, then the judge's answer in each order."""

    kind = "preference"
    reference_format = "preferences"

    def __init__(self, items: list[dict[str, Any]], **common: Any) -> None:
        super().__init__(**common)
        self.configured_items = [PreferencePair(**item) for item in items]

    def items_from_reference(self, episodes: list[Episode]) -> list[PreferencePair]:
        """Pairs of exactly two outputs (ranking files with more outputs are left out); the human choice when given."""
        pairs = []
        for episode in episodes:
            by_role = {t.role: t.content for t in episode.turns}
            if set(by_role) - {"prompt", "judge"} != {"output_1", "output_2"}:
                continue
            human = (episode.meta.get("judgments") or {}).get("human")
            pairs.append(PreferencePair(by_role["output_1"], by_role["output_2"], by_role.get("prompt"), human))
        return pairs

    def plan(self) -> list[EpisodePlan]:
        """One episode per pair."""
        roles = {"judge": "judge"}
        return [EpisodePlan(index, pair.prompt, roles, {"pair": index}) for index, pair in enumerate(self.items)]

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Show the pair as A/B, then as B/A; store both choices in terms of output_1 and output_2."""
        pair = self.items[plan.index]
        idx = 0
        if pair.prompt is not None:
            ctx.record_turn(idx, "prompt", "prompt", pair.prompt)
            idx += 1
        ctx.record_turn(idx, "output_1", "output_1", pair.output_1)
        ctx.record_turn(idx + 1, "output_2", "output_2", pair.output_2)
        choices = []
        for offset, (first, second, mapping) in enumerate(
            [(pair.output_1, pair.output_2, AS_SHOWN), (pair.output_2, pair.output_1, SWAPPED)]
        ):
            agent = judge(pair.prompt, first, second)
            role = "judge" if mapping is AS_SHOWN else "judge_swapped"
            turn = await ctx.generate_turn(idx + 2 + offset, agent.speaker, role, agent.view([]), self.sampling)
            parsed = parse_choice(turn.content)
            choices.append(None if parsed is None else mapping[parsed])
        judgments: dict[str, Optional[str]] = {"judge": choices[0]}
        if pair.human is not None:
            judgments = {"human": pair.human, **judgments}
        consistent = None if None in choices else choices[0] == choices[1]
        ctx.update_episode(
            meta={"judgments": judgments, "swapped_judgments": {"judge": choices[1]}, "position_consistent": consistent}
        )
        return Outcome("done", "judged" if consistent is not None else "judged (unparsed choice)")
