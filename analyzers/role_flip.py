"""Role flipping in CAMEL-style role-play, by the published marker rule (Das et al. 2024)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from analyzers.base import Analyzer, Detector, MetricInfo, ReportFigures, analyzers
from sim.camel import ASSISTANT_MARKER, TASK_DONE, USER_MARKER
from sim.records import Annotation, Episode, Turn

if TYPE_CHECKING:
    from sim.compare import ReportView


def classify_turn(role: str, content: str) -> tuple[bool, bool]:
    """(role_flipped, interruption) for one user or assistant turn."""
    own, partner = (USER_MARKER, ASSISTANT_MARKER) if role == "user" else (ASSISTANT_MARKER, USER_MARKER)
    flipped = partner in content
    interruption = not flipped and own not in content and TASK_DONE not in content
    return flipped, interruption


@dataclass
class RoleFlipConfig:
    """Schema of `analyzer.role_flip`; the marker rule has no settings."""

    _target_: str = "analyzers.role_flip.RoleFlipAnalyzer"


@analyzers.register("role_flip", config=RoleFlipConfig)
class RoleFlipAnalyzer(Analyzer):
    """A user turn with `Solution:` or an assistant turn with `Instruction:` is flipped; one with neither own marker nor
    the done token is an interruption. Turn flags are stored only where they fire (a million clean turns would
    otherwise write two million zeros); the episode keeps the counts and the shares of its checked turns."""

    version = "2"
    metrics = {
        "role_flipped": MetricInfo("1 on a user turn containing `Solution:` or an assistant turn containing `Instruction:` (stored only where it fires)", "turn", "binary", "higher"),
        "interruption": MetricInfo("1 on a user turn with neither `Instruction:` nor the done token, or an assistant turn with neither `Solution:` nor it (stored only where it fires)", "turn", "binary", "higher"),
        "role_flipping_happens": MetricInfo("1 where any checked turn of the conversation is role-flipped", "episode", "binary", "higher"),
        "n_checked_turns": MetricInfo("user and assistant turns checked for markers", "episode", "count"),
        "n_role_flipped_turns": MetricInfo("role-flipped turns of the conversation", "episode", "count", "higher"),
        "n_interruptions": MetricInfo("interruptions of the conversation", "episode", "count", "higher"),
        "role_flipped_turn_share": MetricInfo("role-flipped turns / checked turns", "episode", "proportion", "higher"),
        "interruption_turn_share": MetricInfo("interruptions / checked turns", "episode", "proportion", "higher"),
    }
    checks_turns = True
    sparse_turn_flags = True
    turn_flags = ("role_flipped", "interruption")
    detectors = (Detector("marker", "role_flipped", "role_flipped"),)

    def check_turn(self, turn: Turn) -> Optional[str]:
        """`role_flipped` when a user or assistant turn carries its partner's marker."""
        if turn.role not in ("user", "assistant"):
            return None
        flipped, _ = classify_turn(turn.role, turn.content)
        return "role_flipped" if flipped else None

    def applies_to(self, episode: Episode) -> bool:
        """Conversations with CAMEL's user and assistant roles."""
        return episode.kind == "conversation" and any(t.role in ("user", "assistant") for t in episode.turns)

    def annotate(self, episode: Episode) -> list[Annotation]:
        """A turn annotation where a turn flips or interrupts, and the episode's counts and shares."""
        turns: list[Turn] = [t for t in episode.turns if t.role in ("user", "assistant")]
        annotations: list[Annotation] = []
        n_flipped = n_interruptions = 0
        for turn in turns:
            flipped, interruption = classify_turn(turn.role, turn.content)
            if flipped:
                n_flipped += 1
                annotations.append(Annotation(episode.id, "role_flipped", 1.0, turn_idx=turn.idx))
            if interruption:
                n_interruptions += 1
                annotations.append(Annotation(episode.id, "interruption", 1.0, turn_idx=turn.idx))
        annotations += [
            Annotation(episode.id, "role_flipping_happens", float(n_flipped > 0)),
            Annotation(episode.id, "n_checked_turns", float(len(turns))),
            Annotation(episode.id, "n_role_flipped_turns", float(n_flipped)),
            Annotation(episode.id, "n_interruptions", float(n_interruptions)),
            Annotation(episode.id, "role_flipped_turn_share", n_flipped / len(turns)),
            Annotation(episode.id, "interruption_turn_share", n_interruptions / len(turns)),
        ]
        return annotations

    @classmethod
    def report_figures(cls, view: "ReportView") -> ReportFigures:
        """The role-flip rate per group, and the turns at which flips happen."""
        # Imported here: the figures import sim.analysis, which imports every analyzer.
        from sim.figures import metric_bars, turn_histogram

        summary = view.summary
        rate = metric_bars(
            "role_flip_rate", "Role-flip rate per group",
            "Share of episodes with at least one flipped turn, and of checked turns that flip; bars are 95% CIs"
            " (Wilson; for turns at the effective sample size of clustered turns).",
            summary.metrics, ["role_flipping_happens", "role_flipped_turn_share"],
        )
        checked = {metric.group: metric.n for metric in summary.metrics if metric.name == "role_flipping_happens"}
        turns = turn_histogram(
            "role_flip_turns", "Turn index of role flips",
            "For each turn index, the share of a group's episodes whose turn at that index flipped roles.",
            flip_turns(view), checked,
        )
        return ReportFigures(charts=[rate, turns])


def flip_turns(view: "ReportView") -> dict[str, list[int]]:
    """Per group, the turn index of every flipped turn."""
    flips: dict[str, list[int]] = {group: [] for group in view.groups}
    for group, _, turn_idx, _, _ in view.annotations(name="role_flipped"):
        flips[group].append(turn_idx)
    return flips
