"""The judge layer: named judges, the paper's two-stage protocol as sent to a recording loopback server, judge
identity and self-judging in the annotations, unanswered judgments, the run's cache setting, and a user's
template with the authors' own wording (read from ../shared/reference)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from helpers import DATA
from scripted_server import ScriptedServer
from sim.importing import import_file
from sim.store import Store

SPP = DATA / "conversations" / "artifacts-llmgendata-spp"
SPP_LOG = SPP / "logic_grid_puzzle_200__spp_gpt4-32k_temp0_with_sys_mes.jsonl"
SPP_PUZZLES = SPP / "logic_grid_puzzle_200.jsonl"
REFERENCE_PROMPTS = DATA.parent / "reference" / "paper-judge-prompts.md"
N_TRANSCRIPTS = 8


def spp_store(path: Path, n: int = N_TRANSCRIPTS) -> list[str]:
    """A store holding the first `n` published SPP transcripts (with their puzzles' answers); their ids."""
    store = Store.open(path)
    try:
        import_file(store, "spp", SPP_LOG, dataset="spp", options={"puzzles": str(SPP_PUZZLES)}, progress=False)
        keep = [row["id"] for row in store.episode_rows()][:n]
        marks = ", ".join("?" * len(keep))
        store.db.execute(f"DELETE FROM turns WHERE episode_id NOT IN ({marks})", keep)
        store.db.execute(f"DELETE FROM episodes WHERE id NOT IN ({marks})", keep)
        store.db.conn.commit()
    finally:
        store.close()
    return keep


def changes_mind(text: str) -> bool:
    """Whether the scripted judge turns its stage-1 yes into a no for this transcript (a fixed half of them)."""
    return hashlib.sha256(text.encode()).digest()[0] % 2 == 0


def paper_judge(messages: list[dict]) -> str:
    """A judge for the paper protocol: always yes at stage 1; at stage 2 a reasoned answer that keeps the yes or
    changes it to no; category [4] for a digression."""
    (message,) = messages
    text = message["content"]
    if "Sort the reasoning" in text or "Please classify the given reasoning" in text:
        return "Looking at the reasoning, the statements are off-topic contributions.\n\n[4]"
    if "Now quote" in text or "you can change the asnwer" in text:
        if changes_mind(text.split("### Conversation")[1].split("### Answer")[0]):
            return ("On a second reading, the introductions all serve to set up the puzzle, so I was wrong to call them "
                    "digressions. Therefore, the answer is no.")
        return ("The Florist's remark about the weather does not help solve the puzzle, so it is a digression. "
                "Therefore, the answer is yes.")
    return "Yes."


def analyze_args(db: Path, server: ScriptedServer, analyzer: str, *extra: str) -> list[str]:
    """`sim analyze` of one analyzer with the scripted server as its named judge."""
    return ["analyze", "--db", str(db), "--analyzer", analyzer, "--json", *server.backend_args(f"analyzer.{analyzer}.judge"),
            f"analyzer.{analyzer}.judge=openai", *extra]


def metrics(output: str, analyzer: str) -> dict[str, dict]:
    """The `spp` group's metrics of one analyzer in `sim analyze --json` output."""
    (summary,) = [s for s in json.loads(output)["analyzers"] if s["analyzer"] == analyzer]
    return {m["name"]: m for m in summary["metrics"] if m["group"] == "spp"}


def test_paper_protocol_runs_two_stages_through_the_cache(tmp_path: Path, db_rows, run_sim) -> None:
    db = tmp_path / "spp.db"
    ids = spp_store(db)
    with ScriptedServer(paper_judge) as server:
        args = analyze_args(db, server, "digression", "analyzer.digression.mode=judge", "analyzer.digression.protocol=paper")
        done = run_sim(args, tmp_path)
        assert done.returncode == 0, done.stderr
        sent = list(server.requests)
        again = run_sim(args, tmp_path)
        assert again.returncode == 0, again.stderr
        assert len(server.requests) == len(sent)  # the second analysis asked nothing new: all from the cache
    # The paper's setting: each prompt one system message, temperature 0, 256 tokens.
    assert all([m["role"] for m in body["messages"]] == ["system"] for body in sent)
    assert {(body["temperature"], body["max_tokens"]) for body in sent} == {(0.0, 256)}
    stage_1 = [b["messages"][0]["content"] for b in sent if b["messages"][0]["content"].endswith("### Answer: ")]
    stage_2 = [b["messages"][0]["content"] for b in sent if "Now quote" in b["messages"][0]["content"]]
    classify = [b["messages"][0]["content"] for b in sent if "Sort the reasoning" in b["messages"][0]["content"]]
    assert len(stage_1) == len(stage_2) == N_TRANSCRIPTS
    # Stage 2 shows stage 1's verdict back, with the same task and transcript.
    assert all("### Answer: yes." in text for text in stage_2)
    assert sorted(t.split("### Answer")[0] for t in stage_1) == sorted(t.split("### Answer")[0] for t in stage_2)
    kept = [t for t in stage_2 if not changes_mind(t.split("### Conversation")[1].split("### Answer")[0])]
    assert 0 < len(kept) < N_TRANSCRIPTS and len(classify) == len(kept)  # only digressions are classified
    found = metrics(done.stdout, "digression")
    assert found["digresses"]["mean"] == pytest.approx(len(kept) / N_TRANSCRIPTS)
    assert found["unanswered_rate"]["mean"] == 0 and found["unanswered_rate"]["n"] == N_TRANSCRIPTS
    assert found["category[irrelevant/off-topic]"]["n"] == len(kept)
    assert {"accuracy[with digression]", "accuracy[without digression]"} <= set(found)
    assert json.loads(again.stdout)["analyzers"] == json.loads(done.stdout)["analyzers"]
    rows = db_rows(db, "SELECT episode_id, detail_json FROM annotations WHERE name = 'unanswered_rate'")
    assert sorted(e for e, _ in rows) == sorted(ids)
    for _, detail in rows:
        who = json.loads(detail)
        assert who["judge"] == "openai:scripted" and who["protocol"] == "paper" and not who["self_judged"]
        assert len(who["answers"]) in (2, 3)


def test_an_answer_without_a_verdict_is_unanswered(tmp_path: Path, db_rows, run_sim) -> None:
    db = tmp_path / "spp.db"
    spp_store(db, 4)
    undecided = "It is hard to say; the conversation has features of both human and machine dialogue."
    with ScriptedServer(lambda messages: undecided) as server:
        done = run_sim(analyze_args(db, server, "human_likeness"), tmp_path)
    assert done.returncode == 0, done.stderr
    found = metrics(done.stdout, "human_likeness")
    assert found["unanswered_rate"]["mean"] == 1 and found["unanswered_rate"]["n"] == 4
    assert "human_like" not in found  # no verdict is never read as yes or no
    answers = [json.loads(d)["answers"] for (d,) in db_rows(db, "SELECT detail_json FROM annotations WHERE name = 'unanswered_rate'")]
    assert answers == [[undecided]] * 4


def test_collaboration_splits_accuracy_by_the_verdict(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "spp.db"
    spp_store(db)

    def judge(messages: list[dict]) -> str:
        led = changes_mind(messages[0]["content"])
        return f"The AI Assistant {'drives every step' if led else 'and the personas each add clues'}.\nVerdict: {'no' if led else 'yes'}"

    with ScriptedServer(judge) as server:
        done = run_sim(analyze_args(db, server, "collaboration", "analyzer.collaboration.protocol=short"), tmp_path)
        assert [m["role"] for m in server.requests[0]["messages"]] == ["user"]
    assert done.returncode == 0, done.stderr
    found = metrics(done.stdout, "collaboration")
    assert found["combined_effort"]["n"] == N_TRANSCRIPTS and 0 < found["combined_effort"]["mean"] < 1
    assert found["accuracy[combined effort]"]["n"] + found["accuracy[one leader]"]["n"] == N_TRANSCRIPTS
    (summary,) = json.loads(done.stdout)["analyzers"]
    assert any(f"judged by openai:scripted (protocol short) on {N_TRANSCRIPTS} of {N_TRANSCRIPTS}" in n for n in summary["notes"])


def test_a_judge_must_be_named(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "spp.db"
    spp_store(db, 2)
    for args in (["--analyzer", "human_likeness"], ["--analyzer", "digression", "analyzer.digression.mode=judge"]):
        done = run_sim(["analyze", "--db", str(db), *args], tmp_path)
        assert done.returncode == 1
        name = args[1]
        assert done.stderr.strip().splitlines() == [
            f"error: analyzer.{name}.judge is not set: name a backend preset as judge (e.g. analyzer.{name}.judge=openai "
            f"analyzer.{name}.judge.model=gpt-4o), or analyzer.{name}.judge=self to let the composed backend judge "
            "(results marked self-judged when it generated the data)"
        ]
    done = run_sim(["analyze", "--db", str(db), "--analyzer", "collaboration", "analyzer.collaboration.judge=nosuch"], tmp_path)
    assert done.returncode == 1 and "unknown backend 'nosuch'" in done.stderr
    done = run_sim(["analyze", "--db", str(db), "--analyzer", "collaboration", "analyzer.collaboration.judge=self",
                    "analyzer.collaboration.protocol=long"], tmp_path)
    assert done.returncode == 1 and "analyzer.collaboration.protocol must be one of short, paper, got 'long'" in done.stderr


def test_self_judging_is_marked_and_the_run_cache_setting_is_kept(tmp_path: Path, db_rows, run_sim) -> None:
    """A run generated by the scripted model and judged by it (judge=self) is marked self-judged; with
    runner.use_cache=false the judge asks again."""
    db = tmp_path / "run.db"

    def model(messages: list[dict]) -> str:
        if "resemble a dialogue between people" in messages[-1]["content"]:
            return "It reads like two people chatting.\nVerdict: yes"
        return "Sure, let us plan the trip together."

    with ScriptedServer(model) as server:
        generated = run_sim(["run", *server.backend_args(), "scenario.n_episodes=2", "scenario.max_turns=2", "runner.progress=false",
                             f"store.path={db}", "runner.analyze=[human_likeness]", "analyzer.human_likeness.judge=self"], tmp_path)
        assert generated.returncode == 0, generated.stderr
        asked = len(server.requests)
        args = ["analyze", "--db", str(db), "--analyzer", "human_likeness", "--json", *server.backend_args(),
                "analyzer.human_likeness.judge=self"]
        cached = run_sim(args, tmp_path)
        assert cached.returncode == 0, cached.stderr
        assert len(server.requests) == asked
        uncached = run_sim([*args, "runner.use_cache=false"], tmp_path)
        assert uncached.returncode == 0, uncached.stderr
        assert len(server.requests) == asked + 2
    (summary,) = json.loads(cached.stdout)["analyzers"]
    assert any("self-judged: the judge generated 2 of the 2 judged items itself" in note for note in summary["notes"])
    details = [json.loads(d) for (d,) in db_rows(db, "SELECT detail_json FROM annotations WHERE name = 'unanswered_rate'")]
    assert details and all(d["self_judged"] and d["judge"] == "openai:scripted" for d in details)


def authors_template(path: Path) -> Path:
    """A template file holding the authors' own digression prompts (cells 12, 13 and 28 of their notebook, read
    from the reference file), with their placeholders renamed to the project's."""
    cells = re.findall(r"def (prompt_\w+)\(.*?\):\n(.*?)\n    return text", REFERENCE_PROMPTS.read_text(encoding="utf-8"), re.DOTALL)
    texts = {}
    for name, body in cells:
        pieces = re.findall(r'^\s*text \+?= f"(.*)"\s*$', body, re.MULTILINE)
        text = "".join(piece.encode().decode("unicode_escape") for piece in pieces)
        for theirs, ours in (("example", "task"), ("response", "transcript"), ("label", "verdict"), ("reason", "rationale")):
            text = text.replace("{" + theirs + "}", "{" + ours + "}")
        texts[name] = text
    keys = {"ask": "prompt_digression", "explain": "prompt_digression_reason", "classify": "prompt_classify"}
    path.write_text(json.dumps({key: texts[name] for key, name in keys.items()} | {"system": True}), encoding="utf-8")
    return path


def test_a_template_sends_the_authors_wording(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "spp.db"
    spp_store(db, 3)
    template = authors_template(tmp_path / "paper.yaml")
    with ScriptedServer(paper_judge) as server:
        done = run_sim(analyze_args(db, server, "digression", "analyzer.digression.mode=judge", "analyzer.digression.protocol=paper",
                                    f"analyzer.digression.template={template}"), tmp_path)
        sent = [body["messages"][0]["content"] for body in server.requests]
    assert done.returncode == 0, done.stderr
    assert sum(t.startswith("Please analyze the following conversation for any digressions") for t in sent) == 6
    assert sum("Or you can change the asnwer" in t and "### Answer: yes." in t for t in sent) == 3
    assert all(t.startswith("Please classify the given reasoning") for t in sent if "classify" in t)
    assert metrics(done.stdout, "digression")["unanswered_rate"]["n"] == 3
    bad = run_sim(["analyze", "--db", str(db), "--analyzer", "digression", "analyzer.digression.mode=judge",
                   "analyzer.digression.judge=self", f"analyzer.digression.template={tmp_path / 'none.yaml'}"], tmp_path)
    assert bad.returncode == 1 and f"analyzer.digression.template: no such file {tmp_path / 'none.yaml'}" in bad.stderr
