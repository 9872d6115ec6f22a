"""A database written before a setting existed still resumes, replays and analyzes: its stored config lacks the new
keys, and each takes today's default."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from omegaconf import OmegaConf

from sim.analysis import analyze, build_analyzers
from sim.compose import compose_config
from sim.replay import replay
from sim.runner import execute
from sim.store import Store

# Settings added after the first databases were written: the budgets and the pricing of the request ledger.
ADDED_SINCE = ("runner.max_cost_usd", "runner.max_tokens", "backend.pricing")
RUN = ("scenario.n_episodes=2", "scenario.max_turns=4", "runner.analyze=[]", "run.id=old")


def strip_stored_config(db: Path, run_id: str) -> None:
    """Remove the ADDED_SINCE keys from a run's stored config, as a database from before them holds it."""
    with sqlite3.connect(db) as connection:
        (stored,) = connection.execute("SELECT config_yaml FROM runs WHERE id = ?", [run_id]).fetchone()
        config = OmegaConf.to_container(OmegaConf.create(stored))
        for key in ADDED_SINCE:
            section, name = key.split(".")
            assert name in config[section], f"{key} is not in today's stored config"
            del config[section][name]
        connection.execute("UPDATE runs SET config_yaml = ? WHERE id = ?", [OmegaConf.to_yaml(config), run_id])


def test_a_run_stored_before_newer_settings_replays_resumes_and_analyzes(tmp_path: Path, generate) -> None:
    db = tmp_path / "sim.db"
    generate("backend.replies=[Go on.]", *RUN)
    strip_stored_config(db, "old")

    forked = replay(db, "old-e0000", 2, ["backend.replies=[Something else.]"])
    store = Store.open(db)
    try:
        (episode,) = [store.episode(row["id"]) for row in store.episode_rows(forked.run_id)]
        assert episode.parent_id == "old-e0000" and episode.fork_turn == 2
        assert [turn.content for turn in episode.turns] == ["Go on.", "Go on.", "Something else.", "Something else."]
    finally:
        store.close()

    resumed = execute(compose_config(["backend=scripted", f"store.path={db}", "runner.progress=false",
                                      "backend.replies=[Go on.]", *RUN]))
    assert resumed.already_done

    cfg = compose_config([f"store.path={db}"])
    store = Store.open(db)
    try:
        summaries = analyze(store, build_analyzers(cfg.get("analyzer"), ["role_flip"], cfg.runner), run_id="old")
    finally:
        store.close()
    assert [summary.n_episodes for summary in summaries] == [2]


def test_an_unfinished_run_stored_before_its_backend_scenario_and_analyzers_had_settings_resumes(tmp_path: Path, db_rows) -> None:
    from scripted_server import ScriptedServer

    db = tmp_path / "sim.db"
    # Settings whose constructors once gave a default: a run stored before each existed lacks it.
    missing = ("backend.http_client", "backend.check_model", "scenario.specify_word_limit", "analyzer.digression.threshold")
    with ScriptedServer(lambda messages: "Go on.") as server:
        overrides = [*server.backend_args(), f"store.path={db}", "runner.progress=false", *RUN]
        execute(compose_config(overrides), overrides=overrides)
        with sqlite3.connect(db) as connection:  # the second episode cut off after two turns, as by a Ctrl-C
            connection.execute("UPDATE runs SET status = 'interrupted'")
            connection.execute("UPDATE episodes SET status = 'interrupted' WHERE id = 'old-e0001'")
            connection.execute("DELETE FROM turns WHERE episode_id = 'old-e0001' AND idx >= 2")
            (stored,) = connection.execute("SELECT config_yaml FROM runs").fetchone()
            config = OmegaConf.create(stored)
            for key in missing:
                parent, name = key.rsplit(".", 1)
                assert name in OmegaConf.select(config, parent), f"{key} is not in today's stored config"
                OmegaConf.select(config, parent).pop(name)
            connection.execute("UPDATE runs SET config_yaml = ?", [OmegaConf.to_yaml(config)])

        resumed = execute(compose_config(overrides), overrides=overrides)
    assert not resumed.already_done
    assert db_rows(db, "SELECT status FROM runs") == [("done",)]
    assert db_rows(db, "SELECT id, status, n_turns FROM episodes ORDER BY id") == [("old-e0000", "done", 4), ("old-e0001", "done", 4)]
    assert db_rows(db, "SELECT count(*) FROM run_revisions") == [(0,)], "a default taken is not a change of the run's config"
