"""Known answer: a loopback judge that always prefers the longer response, in many wordings, is read right in both
orders through the real `sim run` and `sim analyze`; its answers without a verdict are stored as unanswered."""

from __future__ import annotations

import csv
import itertools
import json
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from scripted_server import ScriptedServer

# How a verbose judge words "the winner is {win}" (the other response is {lose}): verdict lines, markdown, answers
# that name A before concluding B, comparisons in either direction, MT-Bench brackets.
WORDINGS = [
    "Response {lose} is brief. Response {win} covers more ground.\n\nVerdict: {win}",
    "Comparing Response A and Response B, {win} is better.",
    "**Analysis**\n- Response {lose}: short.\n- Response {win}: thorough.\n\n**Final answer:** {win}",
    "Both responses address the prompt.\n\nFinal verdict: [[{win}]]",
    "Response {win} is better than Response {lose}.",
    "A better answer is {win}.",
    "I prefer Response {win}; Response {lose} leaves out the details.",
    "The better response is {win}, since it explains more.",
    "Response {lose} is worse than Response {win}: it says less.",
    "Both responses are on topic, but Response {win} wins on completeness.",
    "After weighing Response A against Response B, my final verdict is {win}.",
    "## Verdict\n[[{win}]]",
]
NO_VERDICT = "Response A and Response B each have their strengths; it could be either, depending on the reader."
SHOWN = re.compile(r"Response A:\n(?P<a>.*?)\n\nResponse B:\n(?P<b>.*?)\n\n", re.DOTALL)
PAIRS = 12
REPEATS = 2


class VerboseLengthJudge:
    """Answers each judge request for the longer response, cycling through WORDINGS and, every len(WORDINGS) + 1
    answers, once with no verdict; counts the answers it gave without one."""

    def __init__(self) -> None:
        self.turn = itertools.count()
        self.lock = threading.Lock()
        self.without_verdict = 0

    def __call__(self, messages: list[dict[str, Any]]) -> str:
        shown = SHOWN.search(messages[-1]["content"])
        assert shown is not None, "not a pairwise judge prompt"
        win, lose = ("A", "B") if len(shown["a"]) > len(shown["b"]) else ("B", "A")
        with self.lock:
            index = next(self.turn) % (len(WORDINGS) + 1)
            if index == len(WORDINGS):
                self.without_verdict += 1
                return NO_VERDICT
        return WORDINGS[index].format(win=win, lose=lose)


def write_pairs(path: Path) -> None:
    """PAIRS pairs of a short and a long output, the longer one first in every other pair, with human choices."""
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["output1", "output2", "target"])
        for i in range(PAIRS):
            short = f"Answer {i}: yes."
            long = f"Answer {i}: yes, because " + " ".join(["the reasoning goes on"] * (2 + i))
            writer.writerow([long, short, 0] if i % 2 else [short, long, 1])


def test_a_consistent_verbose_judge_is_read_right_in_both_orders(tmp_path: Path, run_sim) -> None:
    reference = tmp_path / "pairs_human.csv"
    write_pairs(reference)
    judge = VerboseLengthJudge()
    with ScriptedServer(judge) as server:
        result = run_sim([
            "run", "scenario=preferences", *server.backend_args(), f"scenario.reference={reference}",
            f"scenario.repeats={REPEATS}", "runner.progress=false", "runner.analyze=[]",
        ], tmp_path)
        assert result.returncode == 0, result.stderr
        assert len(server.requests) == PAIRS * 2 * REPEATS
    db = tmp_path / "runs" / "sim.db"
    with sqlite3.connect(db) as conn:
        episodes = conn.execute("SELECT id, meta_json FROM episodes WHERE kind = 'preference'").fetchall()
        turns = {(e, idx): (role, content) for e, idx, role, content in conn.execute("SELECT episode_id, idx, role, content FROM turns")}
    assert len(episodes) == PAIRS
    right, answered, unanswered = 0, 0, 0
    for episode_id, meta_json in episodes:
        meta = json.loads(meta_json)
        output_1, output_2 = (turns[episode_id, idx][1] for idx in (0, 1))
        longer = "output_1" if len(output_1) > len(output_2) else "output_2"
        asks = meta["repeated_judgments"]["judge"]
        for order in ("as_shown", "swapped"):
            assert len(asks[order]) == REPEATS
            for choice in asks[order]:
                assert choice in ("output_1", "output_2", None)  # never a tie, never a guessed choice
                answered += choice is not None
                right += choice == longer
        for shown, swapped in zip(asks["as_shown"], asks["swapped"]):
            if None not in (shown, swapped):
                assert shown == swapped  # every answered pair of orders is position-consistent
        if meta["position_consistent"] is not None:
            assert meta["position_consistent"] is True
        for ask in meta["unanswered"]["judge"]:
            unanswered += 1
            assert asks[ask["order"]][ask["ask"]] is None
            assert turns[episode_id, ask["turn"]] == ("judge" if ask["order"] == "as_shown" else "judge_swapped", NO_VERDICT)
    assert judge.without_verdict >= 3 and unanswered == judge.without_verdict
    assert answered + unanswered == PAIRS * 2 * REPEATS
    assert right / answered >= 0.95

    result = run_sim(["analyze", "--db", str(db), "--analyzer", "preferences", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    (summary,) = json.loads(result.stdout)["analyzers"]
    metrics = {metric["name"]: metric for metric in summary["metrics"]}
    rate = metrics["unanswered_rate[judge]"]
    assert rate["n"] == PAIRS and abs(rate["mean"] - unanswered / (PAIRS * 2 * REPEATS)) < 1e-9
    assert rate["ci_low"] <= rate["mean"] <= rate["ci_high"]
    assert metrics["position_consistent[judge]"]["mean"] == 1.0
    assert metrics["repetition_agreement[judge]"]["mean"] == 1.0
    assert metrics["picks_longer[judge]"]["mean"] == 1.0
