"""Role drift: how much each turn of a role-played conversation reads like its own role rather than the partner's,
for any scenario (not only CAMEL's markers). Embedding mode compares a turn with each role's description and with
each speaker's earlier turns; judge mode asks an LLM whether the turn is spoken as its role."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from analyzers import embeddings as sentence_embeddings
from analyzers.base import Analyzer, analyzers
from analyzers.judging import UsesJudge, judge_for_mode, parse_yes_no
from sim.errors import SimError, require_at_least
from sim.records import Annotation, Episode, Turn

REFERENCES = ("roles", "history")
QUESTION = (
    "In a role-play, {own} talks with {partners}.{task}\n\nHere is one turn:\n{content}\n\n"
    "Is this turn spoken as {own}, in that role, rather than as {partners}? Answer yes or no."
)


def role_description(episode: Episode, role: str) -> str:
    """What a role is: `meta.role_descriptions[role]` where the scenario stored one, else the role's name."""
    return (episode.meta.get("role_descriptions") or {}).get(role) or episode.roles.get(role, role)


@dataclass
class RoleDriftConfig:
    """Schema of `analyzer.role_drift`: `mode` is `embedding` or `judge` (the `judge` backend, by default the
    composed `backend`); in embedding mode `reference` says what a turn is compared with to decide drift: the
    role descriptions (`roles`) or each speaker's earlier turns (`history`, for corpora whose roles are only
    speaker ids); a turn drifts when its margin (own minus partner similarity) is below `-threshold`."""

    _target_: str = "analyzers.role_drift.RoleDriftAnalyzer"
    _recursive_: bool = False  # the judge's backend is built when the analysis starts, not with the analyzer
    mode: str = "embedding"
    reference: str = "roles"
    threshold: float = 0.0
    judge: Any = None


@analyzers.register("role_drift", config=RoleDriftConfig)
class RoleDriftAnalyzer(UsesJudge, Analyzer):
    """Per turn: `role_margin` (similarity to its own role's description minus the closest other role's),
    `history_margin` (to its speaker's earlier turns minus the other speakers'), and `drifted`; in judge mode
    `in_role` and `drifted`. Per episode: `drift_rate`, `drift_happens` and `first_drift_turn`."""

    version = "1"
    turn_flags = ("drifted",)

    def __init__(self, mode: str = "embedding", reference: str = "roles", threshold: float = 0.0, judge: Any = None) -> None:
        # A tolerance below zero would turn its meaning round: turns closer to their own role would count as drifted.
        require_at_least("analyzer.role_drift.threshold", threshold, 0)
        self.judge = judge_for_mode(mode, judge, "role_drift", max_tokens=8)
        if reference not in REFERENCES:
            raise SimError(f"analyzer.role_drift.reference must be one of {', '.join(REFERENCES)}, got {reference!r}")
        self.reference, self.threshold = reference, threshold

    def applies_to(self, episode: Episode) -> bool:
        """Conversations with two or more roles, each of whose turns belongs to one of them."""
        return episode.kind == "conversation" and len(self._roles(episode)) >= 2

    @staticmethod
    def _roles(episode: Episode) -> list[str]:
        spoken = {turn.role for turn in episode.turns}
        return [role for role in episode.roles if role in spoken]

    def _scored_turns(self, episode: Episode) -> list[Turn]:
        roles = set(self._roles(episode))
        return [turn for turn in episode.turns if turn.role in roles and turn.content.strip()]

    def annotate(self, episode: Episode) -> list[Annotation]:
        """Per-turn margins or verdicts, then the episode's drift rate and first drifting turn."""
        return self.annotate_many([episode])[0]

    def annotate_many(self, episodes: list[Episode]) -> list[list[Annotation]]:
        """Judge mode one episode at a time; embedding mode embeds the roles and turns of all of them at once."""
        turns = [self._scored_turns(episode) for episode in episodes]
        if self.judge is not None:
            per_turn = [self._judged(episode, scored) for episode, scored in zip(episodes, turns)]
        else:
            texts = [
                [role_description(episode, role) for role in self._roles(episode)] + [turn.content for turn in scored]
                for episode, scored in zip(episodes, turns)
            ]
            vectors = sentence_embeddings.embed_groups(texts)
            per_turn = [self._embedded(e, scored, v) for e, scored, v in zip(episodes, turns, vectors)]
        return [self._with_episode_values(e, scored, values) for e, scored, values in zip(episodes, turns, per_turn)]

    @staticmethod
    def _with_episode_values(episode: Episode, turns: list[Turn], per_turn: list[list[Annotation]]) -> list[Annotation]:
        annotations = [a for values in per_turn for a in values]
        drifted = [(turn.idx, a.value) for turn, values in zip(turns, per_turn) for a in values if a.name == "drifted"]
        if drifted:
            flags = [value for _, value in drifted]
            annotations.append(Annotation(episode.id, "drift_rate", float(np.mean(flags))))
            annotations.append(Annotation(episode.id, "drift_happens", float(any(flags))))
            first = next((idx for idx, value in drifted if value), None)
            if first is not None:
                annotations.append(Annotation(episode.id, "first_drift_turn", float(first)))
        return annotations

    def _embedded(self, episode: Episode, turns: list[Turn], vectors: np.ndarray) -> list[list[Annotation]]:
        roles = self._roles(episode)
        role_vectors, turn_vectors = dict(zip(roles, vectors[: len(roles)])), vectors[len(roles) :]
        history: dict[str, list[np.ndarray]] = {}
        result = []
        for turn, vector in zip(turns, turn_vectors):
            own = float(vector @ role_vectors[turn.role])
            partner = max(float(vector @ role_vectors[role]) for role in roles if role != turn.role)
            values = [Annotation(episode.id, "role_margin", own - partner, turn_idx=turn.idx)]
            mine = history.get(turn.speaker)
            theirs = [v for speaker, vs in history.items() if speaker != turn.speaker for v in vs]
            history_margin: Optional[float] = None
            if mine and theirs:
                history_margin = cosine(vector, np.mean(mine, axis=0)) - cosine(vector, np.mean(theirs, axis=0))
                values.append(Annotation(episode.id, "history_margin", history_margin, turn_idx=turn.idx))
            margin = own - partner if self.reference == "roles" else history_margin
            if margin is not None:
                values.append(Annotation(episode.id, "drifted", float(margin < -self.threshold), turn_idx=turn.idx))
            history.setdefault(turn.speaker, []).append(vector)
            result.append(values)
        return result

    def _judged(self, episode: Episode, turns: list[Turn]) -> list[list[Annotation]]:
        roles = self._roles(episode)
        task = f" Their task: {episode.task}" if episode.task else ""
        prompts = []
        for turn in turns:
            partners = " and ".join(role_description(episode, role) for role in roles if role != turn.role)
            prompts.append(QUESTION.format(own=role_description(episode, turn.role), partners=partners, task=task, content=turn.content.strip()))
        result = []
        for turn, answer in zip(turns, self.judge.ask(prompts)):
            verdict = parse_yes_no(answer)
            if verdict is None:
                result.append([Annotation(episode.id, "judge_answered", 0.0, turn_idx=turn.idx, detail={"answer": answer})])
            else:
                result.append([
                    Annotation(episode.id, "in_role", float(verdict), turn_idx=turn.idx),
                    Annotation(episode.id, "drifted", float(not verdict), turn_idx=turn.idx),
                ])
        return result


def cosine(first: np.ndarray, second: np.ndarray) -> float:
    """Cosine similarity of two vectors."""
    return float(first @ second / (np.linalg.norm(first) * np.linalg.norm(second)))
