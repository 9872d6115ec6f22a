"""Role drift: does a turn of a role-played conversation read as spoken in its own role? Embedding mode learns
the roles from the corpus itself (analyzers/role_model.py: which role would say this turn, cross-fitted by
conversation) and scores each turn by the probability that another role said it; where the roles cannot be told
apart from what they say (both negotiators of CaSiNo, say), drift is not identifiable and no rate is given.
Judge mode asks an LLM whether the turn is spoken as its role."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np

from agents.verdicts import YES_NO_VERDICT, read_yes_no
from analyzers import embeddings as sentence_embeddings
from analyzers.base import Analyzer, Detector, Scored, MetricInfo, analyzers, unanswered
from analyzers.judging import UsesJudge, judge_for_mode
from analyzers.role_model import role_probabilities
from sim.errors import require_score
from sim.records import Annotation, Episode, Turn
from sim.stats import Estimate, cluster_auc

QUESTION = (
    "In a role-play, {own} talks with {partners}.{task}\n\nHere is one turn:\n{content}\n\n"
    "Is this turn spoken as {own}, in that role, rather than as {partners}? "
) + YES_NO_VERDICT
# Room for a sentence of reasons and the verdict line.
JUDGE_MAX_TOKENS = 64
# A role is learned only from a group where it speaks in at least this many conversations.
MIN_ROLE_CONVERSATIONS = 20
# Below this cross-fitted AUC the roles' turns are too alike for a turn of the wrong role to be found.
MIN_SEPARABILITY = 0.7
# drift_score at or above which a turn is flagged `drifted`: chosen by `sim validate --kinds swap` on
# PersuasionForGood for a false-flag rate under 5% (docs/validity.md).
THRESHOLD = 0.75


def role_description(episode: Episode, role: str) -> str:
    """What a role is: `meta.role_descriptions[role]` where the scenario stored one, else the role's name."""
    return (episode.meta.get("role_descriptions") or {}).get(role) or episode.roles.get(role, role)


@dataclass
class RoleDriftConfig:
    """Schema of `analyzer.role_drift`: `mode` is `embedding` (a role model learned from the group's own turns;
    needs the embeddings extra) or `judge` (an LLM judge: `judge` names a backend preset or config, or `self` for
    the composed backend); a turn is flagged `drifted` when its drift_score reaches `threshold`."""

    _target_: str = "analyzers.role_drift.RoleDriftAnalyzer"
    _recursive_: bool = False  # the judge's backend is built when the analysis starts, not with the analyzer
    mode: str = "embedding"
    threshold: float = THRESHOLD
    judge: Any = None


@dataclass(frozen=True)
class RoleFit:
    """What the role model of one group showed: the roles it learned, how well it tells their turns apart
    (cross-fitted AUC over conversations), and so whether drift can be measured there at all."""

    roles: tuple[str, ...]
    n_conversations: int
    separability: Optional[Estimate]

    @property
    def identifiable(self) -> bool:
        """Whether a turn of the wrong role can be found: two roles learned and told apart well enough."""
        return self.separability is not None and self.separability.mean >= MIN_SEPARABILITY


@analyzers.register("role_drift", config=RoleDriftConfig)
class RoleDriftAnalyzer(UsesJudge, Analyzer):
    """Embedding mode, per turn: `drift_score` (1 - P(own role | turn) among the episode's roles, from a role model
    cross-fitted on the group) and `drifted` (score >= threshold); per episode `drift_rate`, `drift_happens`,
    `first_drift_turn`, `mean_drift_score`; per group `role_separability`. Nothing where the roles are not
    identifiable. Judge mode: per turn `unanswered_rate` (1 when the judge gave no verdict, carrying who judged),
    `in_role` and `drifted`, and the same episode values."""

    version = "3"
    metrics = {
        "drift_score": MetricInfo("1 - P(own role | turn) among the conversation's roles, from a role model cross-fitted on the group", "turn", "score", "higher"),
        "drifted": MetricInfo("1 where drift_score reaches analyzer.role_drift.threshold (judge mode: the judge said the turn left its role)", "turn", "binary", "higher"),
        "in_role": MetricInfo("judge mode: 1 where the judge said the turn keeps its speaker's role", "turn", "binary", "lower"),
        "unanswered_rate": unanswered("turn"),
        "drift_rate": MetricInfo("drifted turns / scored turns", "episode", "proportion", "higher"),
        "drift_happens": MetricInfo("1 where any turn drifted", "episode", "binary", "higher"),
        "first_drift_turn": MetricInfo("index of the first drifted turn (none without one)", "episode", "count", "lower"),
        "mean_drift_score": MetricInfo("mean drift_score of the conversation's turns", "episode", "score", "higher"),
        "role_separability": MetricInfo("cross-fitted AUC of the role model telling the roles' turns apart (below 0.7: no drift rates)", "corpus", "score"),
    }
    turn_flags = ("drifted",)
    uses_corpus = True  # the role model and its separability are properties of the group

    def __init__(self, mode: str, threshold: float, judge: Any) -> None:
        require_score("analyzer.role_drift.threshold", threshold)
        self.judge = judge_for_mode(mode, judge, "role_drift", JUDGE_MAX_TOKENS)
        self.threshold = threshold
        self.fits_corpus = self.judge is None  # the role model learns from every episode of the group
        score = "drifted" if self.judge is not None else "drift_score"
        self.detectors = (Detector("swap", score, "drifted"),)
        self.fits: dict[str, RoleFit] = {}  # episode id -> the fit of its group, for the group's summary

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
        """Per-turn scores or verdicts, then the episode's drift rate and first drifting turn."""
        return self.annotate_many([episode])[0]

    def annotate_many(self, episodes: list[Episode]) -> list[list[Annotation]]:
        """Judge mode one episode at a time; embedding mode fits a role model per group on all its episodes."""
        if self.judge is not None:
            return [self._with_episode_values(e, self._judged(e, self._scored_turns(e))) for e in episodes]
        groups: dict[str, list[int]] = defaultdict(list)
        for position, episode in enumerate(episodes):
            groups[self.group_of(episode)].append(position)
        result: list[list[Annotation]] = [[] for _ in episodes]
        for positions in groups.values():
            for position, annotations in zip(positions, self._learned([episodes[p] for p in positions])):
                result[position] = annotations
        return result

    def _learned(self, episodes: list[Episode]) -> list[list[Annotation]]:
        """Fit the group's role model and, where the roles are identifiable, score every turn of a learned role."""
        scored = [self._scored_turns(episode) for episode in episodes]
        counts = Counter(role for turns in scored for role in {turn.role for turn in turns})
        roles = tuple(sorted(role for role, n in counts.items() if n >= MIN_ROLE_CONVERSATIONS))
        index = {role: k for k, role in enumerate(roles)}
        # Turns of learned roles, in conversations where at least two learned roles speak.
        rows = [
            (e, turn) for e, turns in enumerate(scored) if len({t.role for t in turns} & set(index)) >= 2
            for turn in turns if turn.role in index
        ]
        fit = RoleFit(roles, len(episodes), None)
        drift: dict[tuple[int, int], float] = {}
        if len(roles) >= 2 and len({e for e, _ in rows}) >= MIN_ROLE_CONVERSATIONS:
            texts = [turn.content for _, turn in rows]
            labels = [index[turn.role] for _, turn in rows]
            conversations = [e for e, _ in rows]
            probabilities = role_probabilities(texts, sentence_embeddings.embed(texts), labels, conversations, len(roles))
            present = np.zeros((len(episodes), len(roles)), dtype=bool)
            present[conversations, labels] = True
            # Among the roles of the turn's own conversation: a persona absent from it is no alternative.
            within = probabilities * present[conversations]
            within /= within.sum(axis=1, keepdims=True).clip(min=1e-12)
            fit = RoleFit(roles, len(episodes), separability(within, labels, conversations, present[conversations]))
            for (e, turn), row, label in zip(rows, within, labels):
                drift[(e, turn.idx)] = float(1.0 - row[label])
        result = []
        for e, episode in enumerate(episodes):
            self.fits[episode.id] = fit
            per_turn = [] if not fit.identifiable else [
                [
                    Annotation(episode.id, "drift_score", drift[(e, turn.idx)], turn_idx=turn.idx),
                    Annotation(episode.id, "drifted", float(drift[(e, turn.idx)] >= self.threshold), turn_idx=turn.idx),
                ]
                for turn in episode.turns if (e, turn.idx) in drift
            ]
            result.append(self._with_episode_values(episode, per_turn))
        return result

    @staticmethod
    def _with_episode_values(episode: Episode, per_turn: list[list[Annotation]]) -> list[Annotation]:
        annotations = [a for values in per_turn for a in values]
        drifted = [(a.turn_idx, a.value) for a in annotations if a.name == "drifted"]
        if drifted:
            flags = [value for _, value in drifted]
            annotations.append(Annotation(episode.id, "drift_rate", float(np.mean(flags))))
            annotations.append(Annotation(episode.id, "drift_happens", float(any(flags))))
            first = next((idx for idx, value in drifted if value), None)
            if first is not None:
                annotations.append(Annotation(episode.id, "first_drift_turn", float(first)))
        scores = [a.value for a in annotations if a.name == "drift_score"]
        if scores:
            annotations.append(Annotation(episode.id, "mean_drift_score", float(np.mean(scores))))
        return annotations

    def _fit_of(self, scored: list[Scored]) -> Optional[RoleFit]:
        """The one role model behind a group's episodes, if they share one."""
        fits = {id(self.fits[episode.id]): self.fits[episode.id] for episode, _ in scored if episode.id in self.fits}
        return next(iter(fits.values())) if len(fits) == 1 else None

    def corpus_metrics(self, scored: list[Scored]) -> dict[str, Estimate]:
        """`role_separability`: how well the group's role model tells its roles' turns apart (cross-fitted AUC)."""
        fit = self._fit_of(scored)
        return {"role_separability": fit.separability} if fit is not None and fit.separability is not None else {}

    def notes(self, scored: list[Scored]) -> list[str]:
        """Who judged (judge mode); why there are no drift rates where the roles are not identifiable, how the score
        was made where they are (embedding mode)."""
        if self.judge is not None:
            return self.judge_notes(scored)
        fit = self._fit_of(scored)
        if fit is None:
            return []
        if fit.separability is None:
            return [
                f"role drift is not identifiable: fewer than two roles speak in {MIN_ROLE_CONVERSATIONS} or more of its "
                f"{fit.n_conversations} conversations, too few to learn what each role says; no drift rates"
            ]
        auc = fit.separability
        told = f"the role model tells the roles' turns apart at AUC {auc.mean:.3f}" + (
            f" [{auc.ci_low:.3f}, {auc.ci_high:.3f}]" if auc.ci_low is not None else ""
        )
        if not fit.identifiable:
            return [
                f"role drift is not identifiable: {told}, below {MIN_SEPARABILITY} (roles that say the same kind of "
                "thing cannot drift into each other); no drift rates"
            ]
        return [f"drift_score from a role model cross-fitted on {fit.n_conversations} conversations ({', '.join(fit.roles)}); {told}"]

    def _judged(self, episode: Episode, turns: list[Turn]) -> list[list[Annotation]]:
        roles = self._roles(episode)
        task = f" Their task: {episode.task}" if episode.task else ""
        prompts = []
        for turn in turns:
            partners = " and ".join(role_description(episode, role) for role in roles if role != turn.role)
            prompts.append(QUESTION.format(own=role_description(episode, turn.role), partners=partners, task=task, content=turn.content.strip()))
        result = []
        who = {**self.judged_by(episode), "protocol": "short"}
        for turn, answer in zip(turns, self.judge.ask(prompts, episode)):
            verdict = read_yes_no(answer)
            annotations = [Annotation(episode.id, "unanswered_rate", float(verdict is None), turn_idx=turn.idx, detail={**who, "answers": [answer]})]
            if verdict is not None:
                annotations += [
                    Annotation(episode.id, "in_role", float(verdict), turn_idx=turn.idx),
                    Annotation(episode.id, "drifted", float(not verdict), turn_idx=turn.idx),
                ]
            result.append(annotations)
        return result


def separability(
    probabilities: np.ndarray, labels: list[int], conversations: list[int], present: np.ndarray
) -> Estimate:
    """How well role probabilities tell the roles' turns apart: the AUC of P(role | turn) for the turn's own role
    against the other roles of its conversation (one pair per turn and role), with the interval from resampling
    conversations. 0.5 when the roles say the same things."""
    turns, roles = np.nonzero(present)
    own = np.asarray(labels)[turns] == roles
    numbered = {c: k for k, c in enumerate(dict.fromkeys(conversations))}
    return cluster_auc(probabilities[turns, roles], own, [numbered[conversations[t]] for t in turns])
