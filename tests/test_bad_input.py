"""Bad input: one clear line on stderr, a non-zero exit, and no damage to existing data."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest

from helpers import DATA, TINY, db_rows
from sim.store import Store

CASINO = DATA / "conversations" / "casino" / "casino_dialogues.jsonl"


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert "Traceback" not in result.stderr


def contents(folder: Path) -> dict[str, bytes | None]:
    """Every file (with its bytes) and folder (None) under `folder`: equal before and after means nothing was
    written, created or removed there."""
    return {
        str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
        for path in sorted(folder.rglob("*"))
    }


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ("scenario=nope", ("unknown scenario 'nope'", "roleplay")),
        ("backend=nope", ("unknown backend 'nope'", "embedded")),
        ("scenario.n_episodes=many", ("n_episodes", "many")),
        ("scenario.no_such_key=1", ("no_such_key",)),
        ("scenario.n_episodes=-2", ("scenario.n_episodes must be positive (or null for all items)",)),
        ("scenario.top_p=0", ("scenario.top_p",)),
        ("runner.analyze=[nope]", ("unknown analyzer 'nope'", "role_flip")),
        ("backend.model_path=/nonexistent/model.gguf", ("no such GGUF file", "/nonexistent/model.gguf")),
        ("analyzer.instructions.subset_size=1", ("analyzer.instructions.subset_size must be at least 2",)),
        ("analyzer.preferences.lexicons=/nonexistent", ("analyzer.preferences.lexicons: /nonexistent is not a folder",)),
        # malformed overrides, wrong types and sizes
        ("scenario.reference_options={judge: [unclosed", ("no viable alternative at input", "{judge: [unclosed")),
        ("scenario.n_episodes", ("scenario.n_episodes", "missing EQUAL")),
        ("=3", ("override '=3' has no key",)),
        ("nogroup=x", ("unknown key nogroup: the config has backend, scenario",)),
        # a mistyped key names the closest keys of its schema; `+key` is advised only where new keys are taken
        ("scenario.n_episode=3", ("unknown key scenario.n_episode; did you mean scenario.n_episodes?",)),
        ("+scenario.n_episode=3", ("unknown key scenario.n_episode; did you mean scenario.n_episodes?",)),
        ("scenari.n_episodes=3", ("unknown key scenari.n_episodes; did you mean scenario.n_episodes?",)),
        (("scenario=task_labels", "scenario.n_episode=3"), ("did you mean scenario.n_episodes?",)),
        ("scenario.max_turns.x=1", ("scenario.max_turns",)),
        (("backend=langchain", "backend.chat_model.temp=1"), ("unknown key backend.chat_model.temp; to add it, write +backend.chat_model.temp=...",)),
        ("scenario.temperature=hot", ("scenario.temperature", "'hot'", "Float")),
        ("runner.progress=maybe", ("runner.progress", "'maybe' is not a valid bool")),
        ("seed=abc", ("seed", "'abc'", "Integer")),
        ("runner.concurrency=0", ("runner.concurrency must be positive, got 0",)),
        ("runner.max_attempts=0", ("runner.max_attempts must be positive, got 0",)),
        ("scenario.max_turns=0", ("scenario.max_turns must be positive, got 0",)),
        ("scenario.max_tokens=-5", ("scenario.max_tokens must be positive, got -5",)),
        ("seed=99999999999999999999", ("seed must fit in 64 bits", "99999999999999999999")),
        ("backend.n_threads=-2", ("backend.n_threads must be positive (or null for all cores), got -2",)),
        ("analyzer.free_text.max_texts=0", ("analyzer.free_text.max_texts must be at least 5, got 0",)),
        ("analyzer.instructions.seed=-3", ("analyzer.instructions.seed must not be negative, got -3",)),
        (("backend=langchain", "backend.max_concurrency=0"), ("backend.max_concurrency must be positive, got 0",)),
        (("runner.analyze=[human_likeness]", "analyzer.human_likeness.max_turns=-1"), ("analyzer.human_likeness.max_turns must be positive, got -1",)),
        (("runner.analyze=[digression]", "analyzer.digression.max_chars=0"), ("analyzer.digression.max_chars must be positive, got 0",)),
        (("runner.analyze=[role_drift]", "analyzer.role_drift.threshold=-0.1"), ("analyzer.role_drift.threshold must be in (0, 1], got -0.1",)),
        ("runner.max_cost_usd=0", ("runner.max_cost_usd must be positive (or null for no cap), got 0",)),
        ("runner.max_tokens=-1", ("runner.max_tokens must be positive (or null for no cap), got -1",)),
        ("runner.max_cost_usd=1", ("runner.max_cost_usd needs backend.pricing",)),
        ("backend.pricing={input_usd_per_mtok:1}", ("backend.pricing needs input_usd_per_mtok and output_usd_per_mtok",)),
        ("backend.pricing={input_usd_per_mtok:1,output_usd_per_mtok:-2}", ("backend.pricing needs", "output_usd_per_mtok': -2")),
        ("store.path=", ("store.path: . is a directory",)),
        # an API key typed on the command line, under any secret-looking key, is refused before Hydra records it
        ("backend.api_key=sk-typed-key", ("backend.api_key: keys are not taken on the command line", "api_key_env")),
        ("+backend.api_key=sk-typed-key", ("backend.api_key: keys are not taken on the command line",)),
        ("+backend.chat_model.api_key=sk-typed-key", ("backend.chat_model.api_key: keys are not taken",)),
        ("+backend.chat_model.openai_api_key=sk-typed-key", ("backend.chat_model.openai_api_key: keys are not taken",)),
    ],
)
def test_bad_config_is_one_line_and_writes_nothing(sim, tmp_path: Path, override: str | tuple[str, ...], fragments) -> None:
    result = sim("run", *TINY, *(override if isinstance(override, tuple) else (override,)))
    assert_one_line_error(result, *fragments)
    assert "sk-typed-key" not in result.stderr
    assert contents(tmp_path) == {}, "no store, and no Hydra output folder (config snapshot, log) of the refused job"


def test_a_sweep_whose_every_job_is_refused_writes_nothing(sim, tmp_path: Path) -> None:
    result = sim("run", "-m", *TINY, "scenario.max_tokens=-5", "seed=1,2")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 3 and all("scenario.max_tokens must be positive, got -5" in line for line in errors)
    assert contents(tmp_path) == {}, "neither the jobs' folders nor the sweep's multirun.yaml are left"


def test_a_refused_job_of_a_sweep_removes_only_its_own_folder(sim, scripted, tmp_path: Path) -> None:
    result = sim("run", "-m", *TINY, *scripted("Instruction: Begin."), "scenario.n_episodes=1", "scenario.max_turns=2", "runner.analyze=[]", "scenario.max_tokens=16,-5")
    assert result.returncode == 1 and "error: job 1 (" in result.stderr and "Traceback" not in result.stderr
    (sweep,) = (tmp_path / "runs" / "multirun").glob("*/*")
    assert sorted(path.name for path in sweep.iterdir()) == ["0", "multirun.yaml"]
    assert sorted(path.name for path in (sweep / "0").iterdir()) == [".hydra", "sim.log"]
    assert db_rows(tmp_path / "runs" / "sim.db", "SELECT status FROM runs") == [("done",)]


def test_a_refused_replay_writes_nothing(sim, scripted, tmp_path: Path) -> None:
    parent = sim("run", *TINY, *scripted("Instruction: Begin."), "scenario.n_episodes=1", "scenario.max_turns=2", "scenario.max_tokens=16", "runner.analyze=[]", "run.id=p")
    assert parent.returncode == 0, parent.stderr
    before = contents(tmp_path)
    refused = sim("replay", "p-e0000", "--fork-at", "1", "scenario.max_tokens=-5")
    assert_one_line_error(refused, "scenario.max_tokens must be positive, got -5")
    assert contents(tmp_path) == before


def test_bad_value_inside_a_sweep_is_caught_before_any_job(sim, tmp_path: Path) -> None:
    assert_one_line_error(sim("run", "-m", *TINY, "scenario=roleplay,nope"), "unknown scenario 'nope'")
    assert not (tmp_path / "runs").exists()


def test_a_fixed_run_id_in_a_sweep_is_refused(sim, tmp_path: Path) -> None:
    assert_one_line_error(sim("run", "-m", *TINY, "run.id=same", "seed=1,2"), "leave run.id unset")
    assert not (tmp_path / "runs").exists()


def test_unwritable_db_path(sim, tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    before = contents(tmp_path)
    assert_one_line_error(sim("run", *TINY, "store.path=blocker/sim.db"), "cannot create folder")
    assert contents(tmp_path) == before


def test_file_that_is_not_sqlite_is_left_intact(sim, tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"precious notes\n" * 100)
    before = contents(tmp_path)
    # Each error names the setting or option the path came from.
    assert_one_line_error(sim("run", *TINY, f"store.path={notes}"), f"store.path: {notes} is not a SQLite database")
    assert_one_line_error(sim("show", "x", "--db", str(notes)), f"--db: {notes} is not a SQLite database")
    assert_one_line_error(sim("analyze", "--db", str(notes)), f"--db: {notes} is not a SQLite database")
    assert_one_line_error(sim("compare", "--db", str(notes)), f"--db: {notes} is not a SQLite database")
    assert_one_line_error(sim("merge", str(notes), "--into", "runs/merged.db"), f"shard: {notes} is not a SQLite database")
    assert_one_line_error(sim("import", "casino", str(CASINO), "--db", str(notes)), f"--db: {notes} is not a SQLite database")
    assert contents(tmp_path) == before, "the file is intact, with no WAL or journal beside it and no Hydra folder"


def test_reading_commands_on_missing_things(sim, tmp_path: Path) -> None:
    assert_one_line_error(sim("show", "e1"), "no database at runs/sim.db")
    assert not (tmp_path / "runs").exists()
    db = tmp_path / "empty.db"
    Store.open(db).close()  # a store without data
    assert_one_line_error(sim("show", "e1", "--db", str(db)), "no episode 'e1'")
    assert_one_line_error(sim("analyze", "--db", str(db), "--run", "r9"), "no run 'r9'")
    assert_one_line_error(sim("analyze", "--db", str(db), "--analyzer", "nope"), "unknown analyzer 'nope'")
    assert_one_line_error(sim("episodes", "--db", str(db), "--run", "r9"), "no run 'r9'")


def sqlite_without_tables(path: Path) -> None:
    """A SQLite file in WAL mode that holds no table (reading it makes SQLite create -wal and -shm files)."""
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("PRAGMA user_version=7")


@pytest.mark.parametrize(("name", "make", "what"), [
    ("empty.db", lambda path: path.write_bytes(b""), "the file is empty"),
    ("bare.db", sqlite_without_tables, "a SQLite database without tables"),
])
def test_commands_that_need_a_store_leave_a_file_without_one_as_it_was(sim, tmp_path: Path, name: str, make, what: str) -> None:
    db = tmp_path / name
    make(db)
    before = contents(tmp_path)
    not_a_store = (f"{db} is not an artifact-sim database ({what})",)
    for args in [
        ("show", "e1", "--db", str(db)),
        ("episodes", "--db", str(db)),
        ("analyze", "--db", str(db)),
        ("reanalyze", "--db", str(db)),
        ("compare", "--db", str(db), "--out", "report"),
        ("replay", "p-e0000", "--fork-at", "1", "--db", str(db)),
        ("merge", str(db), "--into", "merged.db"),  # the shard is refused before the target is created
    ]:
        assert_one_line_error(sim(*args), *not_a_store)
        assert contents(tmp_path) == before, args


def test_debug_shows_the_traceback(sim) -> None:
    result = sim("--debug", "show", "e1")
    assert result.returncode != 0 and "Traceback" in result.stderr


@pytest.mark.parametrize(
    ("args", "fragments"),
    [
        (("--analyzer", "nope"), ("unknown analyzer 'nope'", "free_text")),
        (("scenario.n_episodes=3",), ("sim analyze takes analyzer and judge settings", "scenario.n_episodes=3")),
        (("--analyzer", "digression", "analyzer.digression.mode=guess"), ("analyzer.digression.mode must be one of embedding, judge",)),
        (("--analyzer", "role_drift", "analyzer.role_drift.mode=guess"), ("analyzer.role_drift.mode must be one of embedding, judge",)),
        (("analyzer.free_text.embeddings=maybe",), ("analyzer.free_text.embeddings must be auto, true or false",)),
        (("analyzer.nope.x=1",), ("analyzer.nope.x",)),
        (("analyzer.instructions.rouge_pairs=many",), ("rouge_pairs", "many")),
    ],
)
def test_bad_analyzer_settings_are_one_line_and_touch_nothing(sim, tmp_path: Path, args, fragments) -> None:
    Store.open(tmp_path / "sim.db").close()
    before = contents(tmp_path)
    assert_one_line_error(sim("analyze", "--db", str(tmp_path / "sim.db"), *args), *fragments)
    assert contents(tmp_path) == before


def test_malformed_yaml_in_a_config_dir(sim, tmp_path: Path) -> None:
    broken = tmp_path / "myconf" / "scenario" / "broken.yaml"
    broken.parent.mkdir(parents=True)
    broken.write_text("defaults:\n  - roleplay\n  - _self_\nn_episodes: [1, 2\n")
    result = sim("run", f"--config-dir={tmp_path / 'myconf'}", "scenario=broken", *TINY)
    assert_one_line_error(result, "malformed YAML", str(broken), "line 4")
    assert not (tmp_path / "runs").exists()
    assert_one_line_error(sim("run", "--config-dir=nowhere", "scenario=broken"), f"--config-dir: no such folder {tmp_path / 'nowhere'}")


GOOD_LABEL = b'{"text_ind": 1, "text": "a fine line", "human_annots": [0, 1], "model_annots": [1]}\n'


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("empty.jsonl", b"", "empty.jsonl: the file is empty"),
        ("corrupt.jsonl", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "corrupt.jsonl:1: not valid UTF-8"),
        ("folder.jsonl", None, "folder.jsonl: is a folder; this format reads one file"),
        ("fields.jsonl", b'{"id": 1, "body": "x"}\n', "fields.jsonl:1: missing field 'text_ind'"),
        ("broken.jsonl", GOOD_LABEL + b'{"text_ind": 2, "text": \n', "broken.jsonl:2: malformed JSON"),
        ("latin1.jsonl", GOOD_LABEL + b'{"text_ind": 2, "text": "caf\xe9"}\n', "latin1.jsonl:2: not valid UTF-8"),
        ("list.jsonl", GOOD_LABEL + b"[1, 2]\n", "list.jsonl:2: expected a JSON object, got list"),
    ],
)
def test_bad_reference_file_is_one_line_naming_file_and_line(sim, tmp_path: Path, name: str, content, problem: str) -> None:
    reference = tmp_path / name
    if content is None:
        reference.mkdir()
    else:
        reference.write_bytes(content)
    result = sim("run", *TINY, "runner.analyze=[]", "scenario=task_labels", f"scenario.reference={reference}")
    assert_one_line_error(result, problem)
    assert not (tmp_path / "runs").exists()


def test_a_fifty_megabyte_line_is_imported_or_refused_in_one_line(sim, tmp_path: Path) -> None:
    text = "word " * 10_000_000
    huge = tmp_path / "huge.jsonl"
    huge.write_text(json.dumps({"dialogue_idx": 0, "topic": "t", "turns": [{"speaker": "A", "text": text}]}) + "\n")
    imported = sim("import", "dailydialog", str(huge))
    assert imported.returncode == 0, imported.stderr[-2000:]
    db = tmp_path / "runs" / "sim.db"
    assert db_rows(db, "SELECT length(content) FROM turns") == [(len(text),)]

    cut = tmp_path / "cut.jsonl"
    cut.write_bytes(huge.read_bytes()[:-3] + b"\n")
    refused = sim("import", "dailydialog", str(cut))
    assert_one_line_error(refused, "cut.jsonl:1: malformed JSON")
    assert len(refused.stderr) < 500, "the error does not echo the line"
    wide = tmp_path / "wide.csv"
    wide.write_text("text\n" + "x" * 1_000_000 + "\n")
    assert_one_line_error(sim("import", "table", str(wide), "-o", "text=text"), "wide.csv", "field larger than field limit")
    assert db_rows(db, "SELECT count(*) FROM episodes") == [(1,)]


@pytest.fixture
def dialogue_db(tmp_path: Path) -> Path:
    """A store holding one imported corpus."""
    from sim.importing import import_file
    from sim.store import Store

    store = Store.open(tmp_path / "dialogues.db")
    import_file(store, "dailydialog", DATA / "conversations" / "dailydialog" / "dailydialog_sample_2624.jsonl", progress=False)
    store.close()
    return tmp_path / "dialogues.db"


def add_future_migration(db: Path, name: str) -> None:
    """Record a migration this version does not know, as a newer artifact-sim would; checkpointed into the file."""
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO _sqlite_migrations (migration_set, name, applied_at) VALUES ('artifact_sim', ?, '2030-01-01')", [name])


@pytest.mark.parametrize(
    "args",
    [
        ("episodes", "--all"),
        ("show", "dailydialog_sample_2624-0"),
        ("analyze", "--analyzer", "conversation_stats"),
        ("import", "casino", str(CASINO)),
    ],
    ids=lambda args: args[0],
)
def test_a_database_from_a_newer_schema_is_refused_untouched(sim, dialogue_db: Path, args) -> None:
    add_future_migration(dialogue_db, "m999_future")
    before = dialogue_db.read_bytes()
    assert_one_line_error(sim(*args, "--db", str(dialogue_db)), str(dialogue_db), "newer schema (m999_future)", "upgrade artifact-sim")
    assert dialogue_db.read_bytes() == before


def test_run_into_a_newer_schema_is_refused(sim, dialogue_db: Path) -> None:
    add_future_migration(dialogue_db, "m999_x")
    before = contents(dialogue_db.parent)
    assert_one_line_error(sim("run", *TINY, f"store.path={dialogue_db}"), "newer schema (m999_x)")
    assert contents(dialogue_db.parent) == before


@pytest.fixture
def unprivileged(tmp_path: Path):
    """(folder, sim) where file permissions apply to `sim`: when the tests run as root, it runs without root's
    capabilities to override them."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: file permissions cannot be enforced")
        prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        command = [*prefix, sys.executable, "-m", "sim", *args]
        return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600)

    yield tmp_path, call
    for path in tmp_path.rglob("*"):
        path.chmod(0o755)  # so that pytest can remove its scratch folders


def test_an_unreadable_reference_file(unprivileged) -> None:
    folder, sim_as_user = unprivileged
    secret = folder / "labels.jsonl"
    secret.write_bytes(GOOD_LABEL)
    secret.chmod(0)
    run = sim_as_user("run", *TINY, "scenario=task_labels", f"scenario.reference={secret}")
    assert_one_line_error(run, f"{secret}: permission denied")
    assert not (folder / "runs").exists()


def test_an_unreadable_import_file(unprivileged) -> None:
    folder, sim_as_user = unprivileged
    secret = folder / "labels.jsonl"
    secret.write_bytes(GOOD_LABEL)
    secret.chmod(0)
    assert_one_line_error(sim_as_user("import", "task_labels", str(secret)), f"{secret}: permission denied")
    assert sorted(path.name for path in folder.iterdir()) == ["labels.jsonl"], "no database was created"


@pytest.fixture
def read_only_db(unprivileged, dialogue_db: Path) -> Path:
    """A read-only copy of the dialogue store in the unprivileged test's folder."""
    db = unprivileged[0] / "readonly.db"
    shutil.copy(dialogue_db, db)
    db.chmod(0o444)
    return db


def test_a_read_only_database_is_read_but_never_written(unprivileged, read_only_db: Path) -> None:
    folder, sim_as_user = unprivileged
    db, before = read_only_db, read_only_db.read_bytes()
    listed = sim_as_user("episodes", "--all", "--db", str(db))
    assert listed.returncode == 0, listed.stderr
    assert "dailydialog_sample_2624-0" in listed.stdout
    shown = sim_as_user("show", "dailydialog_sample_2624-0", "--db", str(db))
    assert shown.returncode == 0 and "garbage" in shown.stdout
    casino = str(CASINO)
    assert_one_line_error(sim_as_user("import", "casino", casino, "--db", str(db)), f"--db: {db} is read-only")
    assert_one_line_error(sim_as_user("run", *TINY, f"store.path={db}", "run.id=r"), f"store.path: {db} is read-only")
    assert db.read_bytes() == before
    assert not (folder / "runs").exists(), "the refused run left no Hydra folder"


def test_analyze_refuses_a_read_only_database_in_one_line(unprivileged, read_only_db: Path) -> None:
    _, sim_as_user = unprivileged
    db, before = read_only_db, read_only_db.read_bytes()
    assert_one_line_error(sim_as_user("analyze", "--db", str(db), "--analyzer", "conversation_stats"), "is read-only")
    assert db.read_bytes() == before


def test_a_database_in_a_read_only_folder(unprivileged, dialogue_db: Path) -> None:
    folder, sim_as_user = unprivileged
    locked = folder / "locked"
    locked.mkdir()
    db = locked / "sim.db"
    shutil.copy(dialogue_db, db)
    db.chmod(0o666)
    locked.chmod(0o555)
    before = db.read_bytes()
    assert_one_line_error(sim_as_user("episodes", "--all", "--db", str(db)), f"cannot open {db}: its folder is read-only")
    casino = str(CASINO)
    assert_one_line_error(sim_as_user("import", "casino", casino, "--db", str(db)), f"the folder of {db} is read-only")
    assert db.read_bytes() == before
    assert sorted(p.name for p in locked.iterdir()) == ["sim.db"]


@pytest.mark.parametrize(
    ("args", "fragment", "command"),
    [
        (("merge", "--into", "x.db"), "sim merge: missing argument 'SHARD...'", ("merge",)),
        (("merge", "f.db"), "sim merge: missing option '--into'", ("merge",)),
        (("replay", "X"), "sim replay: missing option '--fork-at'", ("replay",)),
        (("show", "--limit", "0"), "sim show: invalid value for '--limit'", ("show",)),
        (("show", "--limit"), "sim show: option '--limit' requires an argument", ("show",)),
        (("compare", "--by"), "sim compare: option '--by' requires an argument", ("compare",)),
        (("compare", "--sweeps", "latest"), "sim compare: no such option '--sweeps'", ("compare",)),
        (("analyze", "--bogus"), "sim analyze: no such option '--bogus'", ("analyze",)),
        (("reanalyze", "--bogus"), "sim reanalyze: no such option '--bogus'", ("reanalyze",)),
        (("replay", "X", "--fork-at", "1", "--bogus"), "sim replay: no such option '--bogus'", ("replay",)),
        (("nope",), "sim: no such command 'nope'", ()),
        (("--nope",), "sim: no such option '--nope'", ()),
    ],
)
def test_usage_errors_are_one_line_naming_the_command(sim, tmp_path: Path, args, fragment: str, command) -> None:
    result = sim(*args)
    assert_one_line_error(result, fragment, f"{' '.join(['sim', *command])} --help`)")
    assert result.returncode == 2
    assert contents(tmp_path) == {}
    helped = sim(*command, "--help")  # still click's full help
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: ")
