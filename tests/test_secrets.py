"""Secrets stay in the environment, data stays data: an API key never reaches the store, Hydra's folders, logs or
reports; text full of quotes and SQL is stored verbatim; code hidden in a data file is never run."""

import csv
import json
import secrets
from pathlib import Path

from helpers import SERVED_MODEL, TINY
from fault_proxy import FaultProxy
from test_bad_input import assert_one_line_error


def files_containing(root: Path, needle: str) -> list[Path]:
    """Every file under `root` whose bytes contain `needle`."""
    encoded = needle.encode()
    return [path for path in root.rglob("*") if path.is_file() and encoded in path.read_bytes()]


def test_api_key_is_read_from_the_environment_and_written_nowhere(sim, tmp_path: Path, llama_server: str, monkeypatch, db_rows) -> None:
    key = f"sk-sentinel-{secrets.token_hex(8)}"
    monkeypatch.setenv("SIM_TEST_SECRET_KEY", key)
    # The proxy answers 401 to any request without this exact key: the run succeeding proves the key was sent.
    with FaultProxy(llama_server, required_key=key) as proxy:
        run = sim(
            "run", "backend=openai", f"backend.base_url={proxy.base_url}", f"backend.model={SERVED_MODEL}",
            "backend.api_key_env=SIM_TEST_SECRET_KEY", *TINY, "run.id=secret",
        )
        assert run.returncode == 0, run.stderr
        assert proxy.counts["forwarded"] >= 1
    outputs = [
        run, sim("episodes", "--all"), sim("show", "secret-e0000"), sim("analyze", "--json"), sim("analyze"),
        sim("compare", "--run", "secret", "--out", "runs/report"),
    ]
    assert all(result.returncode == 0 for result in outputs), [result.stderr for result in outputs]
    assert all(key not in result.stdout + result.stderr for result in outputs)
    # The store (with its WAL), Hydra's config, overrides and job log, the comparison report, and anything else.
    assert (tmp_path / "runs" / "sim.db").exists() and list((tmp_path / "runs" / "outputs").rglob("config.yaml"))
    assert (tmp_path / "runs" / "report" / "report.md").exists() and (tmp_path / "runs" / "report" / "report.html").exists()
    assert files_containing(tmp_path, key) == []
    config = db_rows(tmp_path / "runs" / "sim.db", "SELECT config_yaml FROM runs")[0][0]
    assert "api_key_env: SIM_TEST_SECRET_KEY" in config  # the variable's name is kept, its value never


def test_quotes_and_sql_in_data_are_stored_verbatim(sim, tmp_path: Path, db_rows) -> None:
    texts = [
        "Robert'); DROP TABLE episodes; --",
        '" OR 1=1; DELETE FROM turns WHERE "" = "',
        "It's a 'quoted' \"text\" with ; semicolons -- and a /* comment */",
        "%s %(name)s {0} ${oc.env:HOME} ?1 :name",
    ]
    source = tmp_path / "hostile.csv"
    with source.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "speaker"])
        writer.writerows([(f"row{i}", text, f"O'Brien {i}") for i, text in enumerate(texts)])
    result = sim("import", "table", str(source), "-o", "text=text", "-o", "id=id", "-o", "speaker=speaker", "--dataset", "it's; DROP")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    assert [content for (content,) in db_rows(db, "SELECT content FROM turns ORDER BY episode_id")] == texts
    assert db_rows(db, "SELECT DISTINCT dataset FROM episodes") == [("it's; DROP",)]
    assert {name for (name,) in db_rows(db, "SELECT name FROM sqlite_master WHERE type = 'table'")} >= {"episodes", "turns", "annotations", "runs"}
    analyzed = sim("analyze", "--json", "--dataset", "it's; DROP")
    assert analyzed.returncode == 0, analyzed.stderr
    assert json.loads(analyzed.stdout)["dataset"] == "it's; DROP"


def test_code_in_a_data_file_is_never_run(sim, tmp_path: Path, db_rows) -> None:
    marker = tmp_path / "PWNED"
    evaluator = {
        "evaluator": "human",
        "example_1": {"instruction": "'q'", "reference": "'r'", "rankings": f"__import__('os').system('touch {marker}')"},
    }
    (tmp_path / "rankings.json").write_text(json.dumps(evaluator), encoding="utf-8")
    assert_one_line_error(sim("import", "preferences", str(tmp_path / "rankings.json")), "rankings is not a list literal")
    assert not marker.exists()
    # A pickle is not a format any importer reads.
    (tmp_path / "data.pkl").write_bytes(b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00]\x94.")
    refused = sim("import", "table", str(tmp_path / "data.pkl"), "-o", "text=text")
    assert_one_line_error(refused, "data.pkl: the table format reads .csv, .tsv, .jsonl and .parquet files, not .pkl")
    assert not (tmp_path / "runs" / "sim.db").exists() or db_rows(tmp_path / "runs" / "sim.db", "SELECT count(*) FROM episodes") == [(0,)]
