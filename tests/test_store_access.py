"""Only the store, its migrations and `sim merge` speak SQL: everything else reads and writes through `Store`."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Where SQL belongs: the store, the numbered migrations, and the merge of whole databases.
SPEAKS_SQL = {ROOT / "sim" / "store.py", ROOT / "sim" / "migrations.py", ROOT / "sim" / "merge.py"}
# A store's connection or tables reached past its methods, an SQL statement in a string, pandas' SQL reader.
RAW_SQL = re.compile(
    r"\.db\.(execute|query|conn|executescript)\b|\.db\[|read_sql|sqlite3\.connect|[\"'](SELECT|INSERT|UPDATE|DELETE)\s"
)


def test_no_sql_outside_the_store() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for folder in ("sim", "analyzers", "agents", "scenarios")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path not in SPEAKS_SQL
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if RAW_SQL.search(line)
    ]
    assert found == []


def test_the_pattern_finds_raw_sql() -> None:
    for line in ('rows = store.db.execute("SELECT 1")', 'store.db["runs"].rows', 'frame = pd.read_sql_query(q, conn)',
                 'query = "DELETE FROM turns"'):
        assert RAW_SQL.search(line), line
    assert not RAW_SQL.search("with store.db.atomic():")
