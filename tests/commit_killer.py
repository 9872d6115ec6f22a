"""Run `sim` and SIGKILL it as the Nth transaction that wrote to a table starts its COMMIT: the transaction's rows
are written and its commit has begun but not ended, the one point a poll from outside cannot hit.

    python tests/commit_killer.py TABLE N SIM_ARGS...
"""

import os
import re
import signal
import sqlite3
import sys

from sim.cli import cli


def kill_at_commit(table: str, nth: int) -> None:
    """Make every SQLite connection this process opens kill it at the COMMIT of the `nth` transaction writing `table`."""
    writes_table = re.compile(rf"^\s*(INSERT|INSERT OR REPLACE|UPDATE|DELETE FROM)\s+(INTO\s+)?\[?{table}\]?\b", re.I)
    seen = {"writing": False, "commits": 0}

    def on_statement(sql: str) -> None:
        if sql.strip().upper() == "BEGIN":
            seen["writing"] = False
        elif writes_table.match(sql):
            seen["writing"] = True
        elif sql.strip().upper() == "COMMIT" and seen["writing"]:
            seen["writing"] = False
            seen["commits"] += 1
            if seen["commits"] == nth:
                os.kill(os.getpid(), signal.SIGKILL)

    connect = sqlite3.connect

    def traced_connect(*args, **kwargs) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.set_trace_callback(on_statement)
        return conn

    sqlite3.connect = traced_connect


if __name__ == "__main__":
    kill_at_commit(sys.argv[1], int(sys.argv[2]))
    cli(sys.argv[3:], prog_name="sim")
