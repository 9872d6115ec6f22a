"""Known-answer perturbations of stored conversations: copies in which chosen turns are replaced by a turn of
another role (`swap`), an off-task turn (`digression`), a near copy of the speaker's earlier turn (`loop`) or a
turn carrying the partner's CAMEL marker (`marker`), with the truth of which turns were replaced. A detector is
then scored on finding them (sim/validation.py). The originals are never changed."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Optional, Sequence

import numpy as np

from sim.camel import ASSISTANT_MARKER, USER_MARKER
from sim.records import Episode

KINDS = ("swap", "digression", "loop", "marker")
# The first turns (greetings, the task's statement) are never replaced: a conversation needs its opening.
KEEP_FIRST = 2
# A near copy is made of an earlier turn with at least this many words, so that one edit leaves it recognizable.
LOOP_SOURCE_MIN_WORDS = 4
CAMEL_ROLES = {"user": ASSISTANT_MARKER, "assistant": USER_MARKER}  # role -> the partner's marker
# Off-task small talk written for this project: what a conversation about any task may wander into.
OFF_TASK = (
    "By the way, did you catch the game last night? That last-minute goal was unbelievable.",
    "It has been raining here all week, I can't remember the last time I saw the sun.",
    "I just adopted a puppy and he keeps chewing on my shoes.",
    "Have you ever tried making sourdough bread at home? Mine never rises properly.",
    "What are you doing this weekend? I might go hiking if the weather holds.",
    "I finally finished that TV series everyone was talking about, the ending was a letdown.",
    "My neighbor has been renovating his kitchen for three months and the drilling starts at seven.",
    "Do you like cats or dogs better?",
    "I'm thinking of repainting my living room a pale green.",
    "The traffic on the way to work this morning was terrible.",
    "Random question, but what's your favorite pizza topping?",
    "I spent the whole evening trying to fix my bike's chain.",
    "Have you been to that new Thai place downtown? The curry is amazing.",
    "My sister is getting married in June and I still need a suit.",
    "I've been learning to play the guitar, but my fingers hurt so much.",
    "Did you hear they're closing the old cinema on Main Street?",
    "I can never decide what to cook for dinner on Mondays.",
    "Speaking of which, my phone battery dies by noon every day lately.",
    "We're planning a trip to the coast next month, any tips for cheap hotels?",
    "My cat knocked a glass of water onto my laptop yesterday.",
    "I love autumn, the leaves turning orange and red are beautiful.",
    "Do you have any good book recommendations? I just finished a mystery novel.",
    "The gym was so crowded today that I gave up and went home.",
    "I tried a new coffee shop this morning and the latte was way too sweet.",
    "My garden tomatoes are finally turning red.",
    "Have you seen the new superhero movie? My kids loved it.",
    "I need to remember to renew my driver's license before it expires.",
    "Last night I dreamed I was flying over the ocean.",
    "Which team do you think will win the championship this year?",
    "I started doing yoga in the mornings and I feel much more relaxed.",
    "Our washing machine broke down again, so I spent the afternoon at the laundromat.",
    "Do you prefer the mountains or the beach for a vacation?",
    "I burned the pancakes this morning because I was checking my email.",
    "My favorite band is touring next spring, I hope tickets don't sell out.",
    "It's my turn to host the board game night on Friday.",
    "I keep forgetting to water my houseplants and they look so sad.",
    "Did you know octopuses have three hearts?",
    "The snow was so deep yesterday that school was cancelled.",
    "I'm trying to cut down on sugar, but the office always has donuts.",
    "We watched the fireworks from the roof of our building, it was lovely.",
)


@dataclass
class Perturbed:
    """A perturbed copy of a corpus: the copied episodes, the replaced turns of each (episode id -> turn
    indices) and the conversations chosen for perturbation; the others are left untouched."""

    kind: str
    episodes: list[Episode]
    replaced: dict[str, set[int]] = field(default_factory=dict)
    chosen: set[str] = field(default_factory=set)

    @property
    def n_replaced(self) -> int:
        """How many turns were replaced."""
        return sum(len(turns) for turns in self.replaced.values())


def applicable(kind: str, episode: Episode) -> bool:
    """Whether `kind` can perturb `episode`: a conversation with a turn past the opening, and for a swap two
    roles, for a marker CAMEL's user and assistant roles."""
    if episode.kind != "conversation" or len(episode.turns) <= KEEP_FIRST:
        return False
    roles = {turn.role for turn in episode.turns}
    if kind == "swap":
        return len(roles) >= 2
    if kind == "marker":
        return bool(roles & set(CAMEL_ROLES))
    return True


def near_copy(text: str, rng: np.random.Generator) -> str:
    """`text` with one small edit (a word dropped, doubled, or two neighbours swapped): the same turn said again."""
    tokens = text.split()
    edit, at = int(rng.integers(3)), int(rng.integers(len(tokens) - 1))
    if edit == 0:
        del tokens[at]
    elif edit == 1:
        tokens.insert(at, tokens[at])
    else:
        tokens[at], tokens[at + 1] = tokens[at + 1], tokens[at]
    return " ".join(tokens)


# Each kind's replacement for one turn: (episode, slot index, all slots replaced in it, rng) -> new content, or
# None where it has none.
Replacement = Callable[[Episode, int, set[int], np.random.Generator], Optional[str]]


def _swap(corpus: Sequence[Episode]) -> Replacement:
    """A turn of another role from a different conversation of the same corpus."""
    donors = [(e, t.role, t.content) for e, episode in enumerate(corpus) for t in episode.turns if t.content.strip()]
    positions = {id(episode): e for e, episode in enumerate(corpus)}

    def replace(episode: Episode, slot: int, slots: set[int], rng: np.random.Generator) -> Optional[str]:
        home, role = positions[id(episode)], episode.turns[slot].role
        for _ in range(1000):  # draws until one fits: nearly every draw does when the roles are balanced
            donor, donor_role, content = donors[int(rng.integers(len(donors)))]
            if donor != home and donor_role != role:
                return content
        return None

    return replace


def _digression(distractors: Sequence[str]) -> Replacement:
    """An off-task turn: one of `distractors`."""
    return lambda episode, slot, slots, rng: distractors[int(rng.integers(len(distractors)))]


def _loop(episode: Episode, slot: int, slots: set[int], rng: np.random.Generator) -> Optional[str]:
    """A near copy of an earlier turn of the same speaker that stays in the conversation (is not replaced too)."""
    speaker = episode.turns[slot].speaker
    sources = [
        t.content for i, t in enumerate(episode.turns[:slot])
        if i not in slots and t.speaker == speaker and len(t.content.split()) >= LOOP_SOURCE_MIN_WORDS
    ]
    return near_copy(sources[int(rng.integers(len(sources)))], rng) if sources else None


def _marker(episode: Episode, slot: int, slots: set[int], rng: np.random.Generator) -> Optional[str]:
    """The turn with its partner's CAMEL marker put in front: an assistant that instructs, a user that solves."""
    turn = episode.turns[slot]
    partner_marker = CAMEL_ROLES.get(turn.role)
    return None if partner_marker is None else f"{partner_marker} {turn.content}"


def _replacement(kind: str, episodes: Sequence[Episode], distractors: Sequence[str]) -> Replacement:
    """How `kind` replaces one turn of `episodes`."""
    if kind == "swap":
        return _swap(episodes)
    if kind == "digression":
        return _digression(distractors)
    return _loop if kind == "loop" else _marker


def perturb(
    corpus: Sequence[Episode], kind: str, rate: float = 0.2, seed: int = 0, distractors: Sequence[str] = OFF_TASK
) -> Perturbed:
    """A copy of the applicable conversations of `corpus` in which a random half (for `seed`) have about `rate`
    of their turns past the opening replaced as `kind` says (at least one each, where a replacement exists); the
    replaced turns keep their index, speaker and role label. Deterministic for a seed."""
    if kind not in KINDS:
        raise ValueError(f"unknown perturbation {kind!r}; one of {', '.join(KINDS)}")
    episodes = [copy.deepcopy(episode) for episode in corpus if applicable(kind, episode)]
    replacement = _replacement(kind, episodes, distractors)
    rng = np.random.default_rng(seed)
    chosen = rng.choice(len(episodes), size=len(episodes) // 2, replace=False) if episodes else np.array([], dtype=int)
    result = Perturbed(kind, episodes, chosen={episodes[i].id for i in chosen})
    for i in sorted(int(i) for i in chosen):
        episode = episodes[i]
        candidates = list(range(KEEP_FIRST, len(episode.turns)))
        k = max(1, round(rate * len(candidates)))
        slots = {int(s) for s in rng.choice(candidates, size=k, replace=False)}
        for slot in sorted(slots):
            content = replacement(episode, slot, slots, rng)
            if content is not None and content != episode.turns[slot].content:
                episode.turns[slot].content = content
                result.replaced.setdefault(episode.id, set()).add(episode.turns[slot].idx)
    return result
