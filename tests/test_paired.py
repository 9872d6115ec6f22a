"""Paired comparisons (`sim compare --paired`): the pairing rules and paired statistics on hand-built values checked
against SciPy and statsmodels, and two loopback servers, one of whose assistants always flips role, compared pair by
pair on the same tasks, and a run forked whole against its parents."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import pytest
from PIL import Image
from scipy import stats
from statsmodels.stats.contingency_tables import mcnemar

from scripted_server import ScriptedServer
from test_compare import markdown_rows
from sim.analysis import Side, compare_pairs, paired_values
from sim.records import Annotation

ASKS = "You will always instruct me"  # only the CAMEL user's system prompt says this
USER_TURN = "Instruction: Write the next part of the plan.\nInput: None"
CLEAN_TURN = "Solution: Here is that part of the plan. Next request."
FLIPPED_TURN = "Instruction: You write the next part of the plan yourself.\nInput: None"
TASKS = 8


def side(values: dict[str, list[float]], turn_values: Optional[dict[str, list[float]]] = None) -> Side:
    """A side whose episodes carry one episode value each (`flag`) and some turn values (`words`), by key."""
    built = Side()
    for key in values:
        for i, value in enumerate(values[key]):
            episode = f"{key}-{i}"
            annotations = [Annotation(episode, "flag", value)]
            annotations += [Annotation(episode, "words", v, turn_idx=t) for t, v in enumerate((turn_values or {}).get(key, []))]
            built.annotations.append(annotations)
            built.keys.append(key)
    return built


def test_paired_values_pool_a_key_and_average_turns() -> None:
    values = paired_values(side({"a": [1.0, 0.0], "b": [1.0]}, {"a": [2.0, 4.0], "b": [5.0]}))
    # Two episodes of key a give their mean; turn values are each conversation's mean, then the key's mean.
    assert values[("flag", "episode")] == {"a": 0.5, "b": 1.0}
    assert values[("words", "turn")] == {"a": 3.0, "b": 5.0}
    assert ("words", "turn") not in paired_values(side({"a": [1.0]}, {"a": [2.0]}), turns=False)


@pytest.mark.slow
def test_paired_statistics_match_scipy_and_statsmodels() -> None:
    first = {f"k{i}": [float(i % 2)] for i in range(12)}
    second = {f"k{i}": [1.0] for i in range(12)} | {"only-here": [0.0]}
    words_first = {f"k{i}": [float(i), float(i + 2)] for i in range(12)}
    words_second = {f"k{i}": [float(i + 1 + i % 3), float(i + 3)] for i in range(12)}
    compared = {c.name: c for c in compare_pairs(side(first, words_first), side(second, words_second), "g", "base", "other")}
    flag, words = compared["flag"], compared["words"]
    assert (flag.n_pairs, flag.unpaired, flag.unit) == (12, 1, "episode")
    assert flag.difference == pytest.approx(0.5) and flag.test == "mcnemar exact"
    # 6 keys flagged on both sides, 6 only on the second: McNemar's exact test on the discordant pairs.
    assert flag.p_value == pytest.approx(mcnemar([[6, 0], [6, 0]], exact=True).pvalue)
    assert flag.ci_low is not None and flag.ci_low <= 0.5 <= flag.ci_high
    a = [(i + i + 2) / 2 for i in range(12)]
    b = [(i + 1 + i % 3 + i + 3) / 2 for i in range(12)]
    assert words.unit == "turn" and words.test == "wilcoxon signed-rank"
    assert words.difference == pytest.approx(sum(b) / 12 - sum(a) / 12)
    assert words.p_value == pytest.approx(stats.wilcoxon(a, b).pvalue)
    # Pairing removes the between-item spread: the paired interval is narrower than the unpaired one.
    assert words.ci_high - words.ci_low < words.unpaired_width


def roleplayer(flips: bool):
    """A scripted model for both CAMEL agents: the user instructs; the assistant answers, or instructs back when `flips`."""

    def answer(messages: list[dict]) -> str:
        if ASKS in messages[0]["content"]:
            return USER_TURN
        return FLIPPED_TURN if flips else CLEAN_TURN

    return answer


def flipping_happens(document: dict) -> dict:
    (summary,) = document["analyzers"]
    (found,) = [c for c in summary["paired"] if c["name"] == "role_flipping_happens"]
    return found


@pytest.mark.slow
def test_a_flipping_backend_against_a_clean_one_pair_by_pair(tmp_path: Path, monkeypatch, db_rows, run_sim) -> None:
    with ScriptedServer(roleplayer(False)) as clean, ScriptedServer(roleplayer(True)) as flipping:
        args = ["scenario.max_turns=2", "runner.progress=false", "runner.analyze=[role_flip]", "backend=openai",
                f"backend.model={clean.model}", "backend.api_key_env=null"]
        swept = run_sim(["run", "-m", f"backend.base_url={clean.base_url},{flipping.base_url}", f"scenario.n_episodes={TASKS}", *args], tmp_path)
        assert swept.returncode == 0, swept.stderr
        compared = run_sim(["compare", "--sweep", "latest", "--by", "backend.base_url", "--paired", "--analyzer", "role_flip",
                            "--json", "--out", "swept"], tmp_path)
        assert compared.returncode == 0, compared.stderr
        document = json.loads(compared.stdout)
        found = flipping_happens(document)
        assert found["n_pairs"] == TASKS and found["unpaired"] == 0
        # The flat records: each comparison once, unpaired and paired, with its groups and test.
        (record,) = [r for r in document["results"] if r["metric"] == "role_flipping_happens" and r["paired"]]
        assert record["groups"] == [document["baseline"], document["groups"][1]["name"]] and record["n_pairs"] == TASKS
        assert record["test"] == "mcnemar exact" and record["q_value"] == found["q_value"]
        assert any(r["metric"] == "role_flipping_happens" and not r["paired"] for r in document["results"])
        # Every task flips on one side and never on the other: the difference is +-1 whichever group comes first.
        sign = 1 if document["baseline"] == f"backend.base_url={clean.base_url}" else -1
        assert found["difference"] == pytest.approx(sign) and found["p_value"] < 0.05 and found["q_value"] < 0.05
        assert "pair by pair" in (tmp_path / "swept" / "report.md").read_text()
        with Image.open(tmp_path / "swept" / "role_flip_paired.png") as figure:  # the paired-differences figure
            assert figure.format == "PNG" and figure.width > 100

        # Every clean conversation forked onto the flipping server at turn 1, in one run, paired with its parent.
        ((clean_run,),) = db_rows(tmp_path / "runs" / "sim.db", f"SELECT id FROM runs WHERE config_yaml LIKE '%{clean.base_url}%'")
        forked = run_sim(["replay", "--run", clean_run, "--fork-at", "1", *args[1:], f"backend.base_url={flipping.base_url}"], tmp_path)
        assert forked.returncode == 0, forked.stderr
    ((fork_run, fork),) = db_rows(tmp_path / "runs" / "sim.db", f"SELECT run_id, id FROM episodes WHERE parent_id = '{clean_run}-e0003'")
    # sim diff: the two side by side from turn 1 on, the fork's flipped turn flagged.
    monkeypatch.setenv("COLUMNS", "200")
    shown = run_sim(["diff", f"{clean_run}-e0003", fork], tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "1 turn(s) shared from the start" in shown.stdout
    assert "[0] " not in shown.stdout and "[1] " in shown.stdout  # the shared turn is not repeated
    assert CLEAN_TURN.split(".")[0] in shown.stdout and FLIPPED_TURN.split(".")[0] in shown.stdout
    assert "role_flipped" in shown.stdout and "role_flipping_happens=1" in shown.stdout
    missing = run_sim(["diff", fork, "nope"], tmp_path)
    assert missing.returncode == 1 and missing.stderr.strip().splitlines() == [f"error: no episode 'nope' in {Path('runs') / 'sim.db'}"]
    compared = run_sim(["compare", "--run", clean_run, "--run", fork_run, "--paired", "--analyzer", "role_flip", "--json", "--out", "fork"],
                       tmp_path)
    assert compared.returncode == 0, compared.stderr
    document = json.loads(compared.stdout)
    found = flipping_happens(document)
    assert (found["n_pairs"], found["unpaired"]) == (TASKS, 0)
    assert found["difference"] == pytest.approx(1 if document["baseline"] == clean_run else -1) and found["p_value"] < 0.05
    # Every fork parts from its parent at turn 1, the first regenerated assistant turn, which flips.
    report = (tmp_path / "fork" / "report.md").read_text()
    (parted,) = markdown_rows(report, "role_flip: where forks part from their parents in role_flipped, interruption")
    assert parted == [fork_run, str(TASKS), str(TASKS), "1 [1, 1]"]
    with Image.open(tmp_path / "fork" / "role_flip_first_flag.png") as figure:  # turns until the first flip, per group
        assert figure.format == "PNG" and figure.width > 100


def test_paired_needs_two_groups(sim, tmp_path: Path) -> None:
    with ScriptedServer(roleplayer(False)) as clean:
        done = sim("run", *clean.backend_args(), "scenario.n_episodes=2", "scenario.max_turns=2", "runner.progress=false",
                   "runner.analyze=[]")
        assert done.returncode == 0, done.stderr
    refused = sim("compare", "--paired", "--analyzer", "role_flip")
    assert refused.returncode == 1
    assert refused.stderr.strip().startswith("error: --paired needs two or more groups to pair; every run gives one")
    assert not (tmp_path / "runs" / "compare").exists()
