"""Instructions: Self-Instruct bootstrapping from human seed tasks, with a ROUGE-L near-duplicate filter."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Optional

from agents.self_instruct import generator, instance_writer, parse_instance, parse_instruction
from scenarios.base import EpisodeContext, EpisodePlan, Outcome, ReferenceConfig, ReferenceScenario, scenarios
from sim.errors import require_at_least, require_score
from sim.records import Episode


@dataclass
class SeedTask:
    """A human-written task: an instruction, and one instance of it when known."""

    instruction: str
    input: str = ""
    output: Optional[str] = None
    id: Optional[str] = None


@dataclass
class InstructionsConfig(ReferenceConfig):
    """Schema of `scenario=instructions`; `n_episodes` is the number of generation requests."""

    _target_: str = "scenarios.instructions.InstructionsScenario"
    items: list[SeedTask] = field(default_factory=list)
    n_human_examples: int = 4
    n_machine_examples: int = 2
    round_size: int = 4
    rouge_threshold: float = 0.7
    # The 95th percentile of GPT-3's Self-Instruct instances (input and output) rounded up to 32 (docs/turn_budgets.md): a normal turn is not cut.
    max_tokens: int = 128


@scenarios.register("instructions", config=InstructionsConfig)
class InstructionsScenario(ReferenceScenario[SeedTask]):
    """Episodes run in rounds of `round_size`; each round's prompts mix seed instructions with instructions
    accepted in earlier rounds, as Self-Instruct's task pool grows. A new instruction whose ROUGE-L F1 with
    any pool instruction reaches `rouge_threshold` is kept but marked `near_duplicate`."""

    kind = "instruction"
    reference_format = "instructions"
    caps_items = False

    def __init__(
        self,
        items: list[dict[str, Any]],
        n_human_examples: int,
        n_machine_examples: int,
        round_size: int,
        rouge_threshold: float,
        **common: Any,
    ) -> None:
        super().__init__(**common)
        for key, value in {"n_human_examples": n_human_examples, "round_size": round_size}.items():
            require_at_least(f"scenario.{key}", value, 1)
        require_at_least("scenario.n_machine_examples", n_machine_examples, 0)
        require_score("scenario.rouge_threshold", rouge_threshold)
        self.configured_items = [SeedTask(**item) for item in items]
        self.n_human_examples = n_human_examples
        self.n_machine_examples = n_machine_examples
        self.round_size = round_size
        self.rouge_threshold = rouge_threshold
        from rouge_score import rouge_scorer  # here, not at the top: it loads NLTK, which slows every `sim run` by ~2 s

        self.scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)

    def items_from_reference(self, episodes: list[Episode]) -> list[SeedTask]:
        """One seed per distinct instruction (tasks with several instances keep the first)."""
        seeds: dict[str, SeedTask] = {}
        for episode in episodes:
            instruction = episode.meta.get("instruction") or episode.task
            if instruction and instruction not in seeds:
                meta = episode.meta
                seeds[instruction] = SeedTask(instruction, meta.get("input") or "", meta.get("output"), episode.id)
        return list(seeds.values())

    def plan(self) -> list[EpisodePlan]:
        """`n_episodes` generation requests; each depends on every episode of the rounds before its own."""
        total = self.n_episodes or len(self.items)
        return [
            EpisodePlan(
                index,
                None,
                {"instruction_generation": "llm"},
                {"round": index // self.round_size},
                depends_on=list(range(index // self.round_size * self.round_size)),
            )
            for index in range(total)
        ]

    def _pool(self, plan: EpisodePlan, ctx: EpisodeContext) -> list[tuple[str, str]]:
        """(id, instruction) of the seeds and of the instructions accepted in earlier rounds."""
        pool = [(seed.id or f"seed-{n}", seed.instruction) for n, seed in enumerate(self.items)]
        for index in plan.depends_on:
            earlier = ctx.earlier_episode(index)
            if earlier.termination_reason == "accepted":
                pool.append((earlier.id, earlier.meta["instruction"]))
        return pool

    async def play(self, plan: EpisodePlan, ctx: EpisodeContext) -> Outcome:
        """Propose an instruction from sampled examples, filter it, then write an instance of it."""
        pool = self._pool(plan, ctx)
        rng = ctx.rng()
        seeds, machine = pool[: len(self.items)], pool[len(self.items) :]
        examples = rng.sample(seeds, min(self.n_human_examples, len(seeds)))
        examples += rng.sample(machine, min(self.n_machine_examples, len(machine)))
        agent = generator([text for _, text in examples])
        turn = await ctx.generate_turn(0, agent.speaker, agent.role, agent.view([]), self.sampling)
        instruction = parse_instruction(turn.content)
        meta: dict[str, Any] = {"author": "llm", "instruction": instruction, "parents": [key for key, _ in examples]}
        if not instruction:
            ctx.update_episode(meta=meta)
            return Outcome("done", "invalid")
        scores = [(self.scorer.score(text, instruction)["rougeL"].fmeasure, key) for key, text in pool]
        best, most_similar = max(scores)
        meta.update(rouge_l_max=round(best, 4), most_similar=most_similar)
        ctx.update_episode(task=instruction, meta=meta)
        if best >= self.rouge_threshold:
            return Outcome("done", "near_duplicate")
        writer = instance_writer(instruction)
        answer = await ctx.generate_turn(1, writer.speaker, writer.role, writer.view([]), self.sampling)
        given_input, output = parse_instance(answer.content)
        ctx.update_episode(meta={"input": given_input, "output": output})
        return Outcome("done", "accepted")
