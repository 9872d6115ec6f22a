"""Provenance that cannot drift: a resume that would generate differently is refused unless run.allow_changes=true,
which records it in run_revisions and marks the turns made under it; secrets are hidden wherever a config is written;
the LangChain cache identity is the whole chat model config; `sim browse` warns when the network can read the store."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from omegaconf import OmegaConf

from scripted_server import ScriptedServer
from sim.backends.langchain_chat import LangChainBackend
from sim.config import REDACTED, config_changes, redacted, secret_override, with_changes

UNREACHABLE = "http://127.0.0.1:9/v1"
SECRET = "sk-provenance-test-4242"


def answer(messages: list[dict]) -> str:
    """A scripted model that always says one short line."""
    return "Let us go on with the task."


def slow_answer(messages: list[dict]) -> str:
    """The same line, slowly enough to interrupt a run between two turns."""
    time.sleep(0.3)
    return answer(messages)


def run_args(base_url: str, db: Path, *extra: str) -> list[str]:
    """`sim run` against an OpenAI-compatible endpoint serving the scripted model, storing in `db`."""
    return ["run", "backend=openai", f"backend.base_url={base_url}", "backend.model=scripted", "backend.api_key_env=null",
            f"store.path={db}", "runner.analyze=[]", "runner.progress=false", "scenario.max_tokens=16",
            "scenario.max_turns=4", *extra]


def assert_refused(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    """A refusal: non-zero exit, one line on stderr that holds every needle."""
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_a_resume_that_would_generate_differently_is_refused_and_a_new_endpoint_is_not(tmp_path: Path, db_rows, run_sim) -> None:
    db = tmp_path / "sim.db"
    failed = run_sim(run_args(UNREACHABLE, db, "scenario.n_episodes=3", "run.id=r"), tmp_path)
    assert failed.returncode != 0 and db_rows(db, "SELECT status FROM runs") == [("failed",)]
    with ScriptedServer(answer) as server:
        fewer = run_sim(run_args(server.base_url, db, "scenario.n_episodes=1", "run.id=r"), tmp_path)
        assert_refused(fewer, "run 'r'", "scenario.n_episodes 3 -> 1", "run.allow_changes=true")
        assert "backend.base_url" not in fewer.stderr, "a new endpoint for the same model is no change to what is generated"
        other_model = run_sim(run_args(server.base_url, db, "scenario.n_episodes=3", "backend.model=other", "run.id=r"), tmp_path)
        assert_refused(other_model, 'backend.model "scripted" -> "other"')
        reseeded = run_sim(run_args(server.base_url, db, "scenario.n_episodes=3", "seed=7", "run.id=r"), tmp_path)
        assert_refused(reseeded, "seed 0 -> 7")
        assert db_rows(db, "SELECT count(*) FROM run_revisions") == [(0,)] and server.requests == []

        fixed = run_sim(run_args(server.base_url, db, "scenario.n_episodes=3", "backend.timeout_s=30", "run.id=r"), tmp_path)
    assert fixed.returncode == 0, fixed.stderr
    assert db_rows(db, "SELECT status FROM runs") == [("done",)]
    assert db_rows(db, "SELECT status, count(*) FROM episodes GROUP BY status") == [("done", 3)]
    (revision,) = db_rows(db, "SELECT revision, generation, changes_json FROM run_revisions WHERE run_id = 'r'")
    assert revision[:2] == (1, 0), "a new endpoint and timeout are recorded as a revision that generates the same"
    assert json.loads(revision[2]) == {
        "backend.base_url": {"old": UNREACHABLE, "new": server.base_url},
        "backend.timeout_s": {"old": 60.0, "new": 30.0},
    }
    assert db_rows(db, "SELECT DISTINCT revision FROM turns") == [(1,)]
    assert "n_episodes: 3" in db_rows(db, "SELECT config_yaml FROM runs")[0][0]
    merged = tmp_path / "merged.db"
    for _ in range(2):  # a shard merged twice adds its revisions once
        result = run_sim(["merge", str(db), "--into", str(merged)], tmp_path)
        assert result.returncode == 0, result.stderr
    assert db_rows(merged, "SELECT revision, generation, changes_json FROM run_revisions") == [revision]
    assert db_rows(merged, "SELECT DISTINCT revision FROM turns") == [(1,)]


def test_allowed_changes_are_recorded_as_a_revision_that_marks_the_turns_made_under_it(tmp_path: Path, db_rows, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(slow_answer) as server:
        args = run_args(server.base_url, db, "scenario.n_episodes=2", "runner.concurrency=1", "run.id=r")
        process = subprocess.Popen([sys.executable, "-m", "sim", *args], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.PIPE, text=True)
        server.wait_for_requests(3)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 130, stderr
        before = db_rows(db, "SELECT count(*) FROM turns")[0][0]
        assert 1 <= before < 8

        more = [*args[:-1], "scenario.n_episodes=3", "seed=7", "run.allow_changes=true", "run.id=r"]
        resumed = run_sim([arg for arg in more if arg != "scenario.n_episodes=2"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert db_rows(db, "SELECT status FROM runs") == [("done",)]
    (revision,) = db_rows(db, "SELECT revision, generation, changes_json, overrides_json FROM run_revisions")
    assert revision[:2] == (1, 1)
    assert json.loads(revision[2]) == {"scenario.n_episodes": {"old": 2, "new": 3}, "seed": {"old": 0, "new": 7}}
    assert {"scenario.n_episodes=3", "seed=7", "run.allow_changes=true"} <= set(json.loads(revision[3]))
    assert db_rows(db, "SELECT revision, count(*) FROM turns GROUP BY revision") == [(0, before), (1, 12 - before)]
    assert db_rows(db, "SELECT DISTINCT revision FROM turns WHERE episode_id = 'r-e0002'") == [(1,)]
    assert "n_episodes: 2" in db_rows(db, "SELECT config_yaml FROM runs")[0][0], "the run's config stays as it started"


def test_the_config_a_run_goes_on_with_is_its_own_with_its_revisions_applied() -> None:
    old = {"scenario": {"n_episodes": 2, "roles": {"a": "x"}}, "analyzer": {}, "seed": 0}
    new = {"scenario": {"n_episodes": 3, "roles": {}}, "analyzer": {"guard": {"on": True}}, "seed": 0, "extra": [1]}
    changes = config_changes(old, new, ())
    assert changes["scenario.n_episodes"] == {"old": 2, "new": 3} and changes["extra"] == {"new": [1]}
    assert changes["scenario.roles.a"] == {"old": "x"} and "seed" not in changes
    revised = json.loads(json.dumps(old))
    with_changes(revised, changes)
    assert revised == new


def test_redaction_covers_credentials_and_headers_but_keeps_counts_of_tokens() -> None:
    cfg = OmegaConf.create({
        "backend": {
            "api_key_env": "OPENAI_API_KEY", "max_tokens": 40, "max_new_tokens": 64, "n_tokens": 3, "tokenizer": "gpt2",
            "chat_model": {
                "Authorization": "Bearer sk-a", "x-api-key": "sk-b", "aws_secret_access_key": "sk-c", "hf_token": "hf-d",
                "default_headers": {"X-Team": "t-e", "Authorization": "Bearer sk-f"}, "extra_headers": {"Cookie": "g"},
                "password": None, "model": "m",
            },
        },
    })
    scrubbed = redacted(cfg)
    chat = scrubbed["backend"]["chat_model"]
    assert {key: chat[key] for key in ("Authorization", "x-api-key", "aws_secret_access_key", "hf_token")} == dict.fromkeys(
        ("Authorization", "x-api-key", "aws_secret_access_key", "hf_token"), REDACTED)
    assert chat["default_headers"] == {"X-Team": REDACTED, "Authorization": REDACTED}
    assert chat["extra_headers"] == {"Cookie": REDACTED}
    assert chat["password"] is None and chat["model"] == "m"
    backend = scrubbed["backend"]
    assert (backend["api_key_env"], backend["max_tokens"], backend["max_new_tokens"], backend["n_tokens"], backend["tokenizer"]) == (
        "OPENAI_API_KEY", 40, 64, 3, "gpt2")
    # On the command line too: a sweep of counts is text, and still a count.
    assert not any(map(secret_override, ["scenario.max_tokens=16,-5", "+backend.max_new_tokens=64", "scenario.max_tokens=40"]))
    assert all(map(secret_override, ["+backend.hf_token=hf-d", "+backend.chat_model.access_token=abc", "backend.api_key=sk-a"]))


def langchain_args(server: ScriptedServer, db: Path, *extra: str) -> list[str]:
    """`sim run` through `backend=langchain` (ChatOpenAI) against the scripted server, one short episode."""
    return ["run", "backend=langchain", f"backend.chat_model.base_url={server.base_url}", "backend.chat_model.model=scripted",
            "backend.api_key_env=null", f"store.path={db}", "runner.analyze=[]", "runner.progress=false",
            "scenario.n_episodes=1", "scenario.max_turns=2", "scenario.max_tokens=16", *extra]


def written_anywhere(folder: Path, text: str) -> list[Path]:
    """The files under `folder` (databases included) that hold `text`."""
    return [path for path in folder.rglob("*") if path.is_file() and text.encode() in path.read_bytes()]


def test_header_secrets_reach_neither_hydras_folder_nor_the_store(tmp_path: Path, monkeypatch, db_rows, run_sim) -> None:
    db = tmp_path / "sim.db"
    with ScriptedServer(answer) as server:
        typed = run_sim(langchain_args(server, db, f"+backend.chat_model.default_headers.Authorization=Bearer-{SECRET}"), tmp_path)
        assert_refused(typed, "backend.chat_model.default_headers.Authorization: keys are not taken on the command line")
        keyed = run_sim(langchain_args(server, db, f"backend.api_key={SECRET}"), tmp_path)
        assert_refused(keyed, "backend.api_key: keys are not taken on the command line")
        defaulted = run_sim(langchain_args(server, db, f"+backend.chat_model.default_headers.Authorization=${{oc.env:NO_SUCH,{SECRET}}}"), tmp_path)
        assert_refused(defaulted, "backend.chat_model.default_headers.Authorization: keys are not taken")
        monkeypatch.setenv("SIM_TEST_AUTHORIZATION", f"Bearer {SECRET}")
        named = run_sim(langchain_args(server, db, "+backend.chat_model.default_headers.Authorization=${oc.env:SIM_TEST_AUTHORIZATION}"), tmp_path)
    assert named.returncode == 0, named.stderr
    assert written_anywhere(tmp_path, SECRET) == []
    overrides = next(tmp_path.glob("runs/outputs/*/*/.hydra/overrides.yaml")).read_text()
    assert "Authorization=${oc.env:SIM_TEST_AUTHORIZATION}" in overrides, "the override names the variable, not its value"
    config_yaml = db_rows(db, "SELECT config_yaml FROM runs")[0][0]
    assert f"Authorization: {REDACTED}" in config_yaml and "max_tokens: 16" in config_yaml


def test_a_config_file_secret_is_hidden_in_hydras_snapshot(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "sim.db"
    extra = tmp_path / "extra" / "backend"
    extra.mkdir(parents=True)
    (extra / "team.yaml").write_text(
        f"defaults:\n  - langchain\n  - _self_\nchat_model:\n  default_headers:\n    X-Team-Token: {SECRET}\n"
    )
    with ScriptedServer(answer) as server:
        args = langchain_args(server, db)
        result = run_sim(["run", "--config-dir", str(tmp_path / "extra"), "backend=team", *args[2:]], tmp_path)
    assert result.returncode == 0, result.stderr
    snapshot = next(tmp_path.glob("runs/outputs/*/*/.hydra/config.yaml")).read_text()
    assert f"X-Team-Token: {REDACTED}" in snapshot and "max_tokens: 16" in snapshot
    assert written_anywhere(tmp_path, SECRET) == [extra / "team.yaml"]


def test_langchain_cache_identity_is_the_whole_chat_model_config_without_secrets() -> None:
    def backend(**settings: object) -> LangChainBackend:
        chat_model = {"_target_": "langchain_openai.ChatOpenAI", "model": "same-name", **settings}
        return LangChainBackend(OmegaConf.create(chat_model), api_key_env=None, max_concurrency=1)

    one, other = backend(base_url="http://127.0.0.1:8001/v1"), backend(base_url="http://127.0.0.1:8002/v1")
    assert one.model == other.model == "same-name"
    assert one.identity != other.identity
    with_header = backend(base_url="http://127.0.0.1:8001/v1", default_headers={"Authorization": "Bearer sk-1"})
    other_header = backend(base_url="http://127.0.0.1:8001/v1", default_headers={"Authorization": "Bearer sk-2"})
    assert with_header.identity == other_header.identity != one.identity, "secrets do not enter the identity"


def test_browse_warns_when_the_host_is_not_loopback(tmp_path: Path, run_sim) -> None:
    db = tmp_path / "sim.db"
    failed = run_sim(run_args(UNREACHABLE, db, "scenario.n_episodes=1"), tmp_path)
    assert failed.returncode != 0 and db.is_file()
    with socket.socket() as taken:  # the port is held, so the command stops before it serves anything
        taken.bind(("0.0.0.0", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = run_sim(["browse", "--db", str(db), "--host", "0.0.0.0", "--port", str(port), "--no-open"], tmp_path, timeout=120)
        loopback = run_sim(["browse", "--db", str(db), "--host", "127.0.0.1", "--port", str(port), "--no-open"], tmp_path, timeout=120)
    warning, error = result.stderr.strip().splitlines()
    assert warning == f"warning: --host 0.0.0.0 is not a loopback address: anyone who can reach this machine can read {db}"
    assert error.startswith("error: cannot serve on 0.0.0.0") and result.returncode != 0
    assert "warning" not in loopback.stderr
