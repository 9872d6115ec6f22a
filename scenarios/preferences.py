"""Preferences: a judge agent picks the better of two outputs, or a tie, in both orders, `repeats` times each.

A judge's answer is read for the verdict it gives (`agents.verdicts.read_choice`); an answer without one is
unanswered: its turn keeps the text, the episode's `unanswered` names the ask, and its choice is None, never a
guess. Meta per judge: `judgments` and `swapped_judgments` hold the first ask of each order (None: unanswered),
`repeated_judgments` every ask by order (`as_shown`, `swapped`), `position_consistent` whether the first asks of
the two orders agree (None when either is unanswered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from agents.judge import judge
from agents.verdicts import read_choice
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.errors import require_positive
from sim.records import Episode

# A judge's A/B answer in terms of the pair's own outputs, for the order shown and for the swapped order.
AS_SHOWN = {"A": "output_1", "B": "output_2", "tie": "tie"}
SWAPPED = {"A": "output_2", "B": "output_1", "tie": "tie"}
# The two orders a pair is shown in: name, the judge's turn role, and how its A/B maps onto the outputs.
ORDERS = (("as_shown", "judge", AS_SHOWN), ("swapped", "judge_swapped", SWAPPED))
JUDGE = "judge"


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
    n_episodes: Optional[int] = None  # every pair
    # Room for a short rationale before the verdict line the judge is asked to end with.
    max_tokens: int = 64
    # How often each order is asked, each ask with its own seed: repetition stability needs at least 2.
    repeats: int = 1


@scenarios.register("preferences", config=PreferencesConfig)
class PreferencesScenario(ReferenceScenario[PreferencePair]):
    """One episode per pair: prompt and outputs as turns, then the judge's answer in each order."""

    kind = "preference"
    reference_format = "preferences"

    def __init__(self, items: list[dict[str, Any]], repeats: int, **common: Any) -> None:
        super().__init__(**common)
        require_positive("scenario.repeats", repeats)
        self.configured_items = [PreferencePair(**item) for item in items]
        self.repeats = repeats

    def items_from_reference(self, episodes: list[Episode]) -> list[PreferencePair]:
        """Pairs of exactly two outputs (ranking files with more outputs are left out); the human choice when given."""
        pairs = []
        for episode in episodes:
            by_role = {t.role: t.content for t in episode.turns}
            if {role for role in by_role if role.startswith("output_")} != {"output_1", "output_2"}:
                continue
            human = (episode.meta.get("judgments") or {}).get("human")
            pairs.append(PreferencePair(by_role["output_1"], by_role["output_2"], by_role.get("prompt"), human))
        return pairs

    def plan(self) -> list[EpisodePlan]:
        """One episode per pair."""
        roles = {"judge": "judge"}
        return [EpisodePlan(index, pair.prompt, roles, {"pair": index}) for index, pair in enumerate(self.items)]

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Show the pair as A/B, then as B/A, `repeats` times; store every choice in terms of output_1 and output_2."""
        pair = self.items[plan.index]
        idx = 0
        if pair.prompt is not None:
            ctx.record_turn(idx, "prompt", "prompt", pair.prompt)
            idx += 1
        ctx.record_turn(idx, "output_1", "output_1", pair.output_1)
        ctx.record_turn(idx + 1, "output_2", "output_2", pair.output_2)
        idx += 2
        shown = {"as_shown": (pair.output_1, pair.output_2), "swapped": (pair.output_2, pair.output_1)}
        asks: dict[str, list[Optional[str]]] = {order: [] for order, _, _ in ORDERS}
        unanswered = []
        for ask in range(self.repeats):
            for order, role, mapping in ORDERS:
                agent = judge(pair.prompt, *shown[order])
                # Each ask is its own turn, so it gets its own seed (derived from the turn index).
                turn = await ctx.generate_turn(idx, agent.speaker, role, agent.view([]), self.sampling)
                verdict = read_choice(turn.content)
                asks[order].append(None if verdict is None else mapping[verdict])
                if verdict is None:
                    unanswered.append({"order": order, "ask": ask, "turn": idx})
                idx += 1
        first, swapped = asks["as_shown"][0], asks["swapped"][0]
        judgments: dict[str, Optional[str]] = {JUDGE: first}
        if pair.human is not None:
            judgments = {"human": pair.human, **judgments}
        consistent = None if None in (first, swapped) else first == swapped
        ctx.update_episode(meta={
            "judgments": judgments, "swapped_judgments": {JUDGE: swapped}, "repeated_judgments": {JUDGE: asks},
            "unanswered": {JUDGE: unanswered}, "position_consistent": consistent,
        })
        return Outcome("done", "judged" if consistent is not None else "judged (unanswered)")
