"""Run and episode ids: new and sweep-job run ids, and a generated episode's id from its run and index."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timezone

from sim.errors import SimError


def new_run_id() -> str:
    """A sortable, collision-resistant run id."""
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def sweep_job_run_id(sweep_id: str, job_num: int, overrides: list[str]) -> str:
    """The run id of job `job_num` of a sweep, from the sweep and the job's overrides: the same each time the job
    starts, so that a job started again (a cluster requeues it after a timeout) resumes its run, and another for
    another sweep in the same folder."""
    digest = hashlib.sha256("\n".join([sweep_id, *overrides]).encode()).hexdigest()[:10]
    return f"sweep-{digest}-j{job_num}"


def episode_id_of(run_id: str, index: int) -> str:
    """The id of a run's episode `index`."""
    return f"{run_id}-e{index:04d}"


def episode_index_of(episode_id: str) -> int:
    """The index of a generated episode within its run, read from its id."""
    head, _, index = episode_id.rpartition("-e")
    if not head or not index.isdigit():
        raise SimError(f"{episode_id!r} is not the id of a generated episode (RUN_ID-eNNNN)")
    return int(index)
