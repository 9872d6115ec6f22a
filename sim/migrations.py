"""The store's schema, grown by numbered migrations; never edit one that has shipped, add the next."""

from sqlite_utils import Database, Migrations

migrations = Migrations("artifact_sim")


@migrations()
def m001_initial_schema(db: Database) -> None:
    """Runs, episodes, turns and annotations."""
    db["runs"].create(
        {
            "id": str,
            "created_at": str,
            "finished_at": str,
            "status": str,
            "scenario": str,
            "backend": str,
            "model": str,
            "seed": int,
            "sweep_id": str,
            "config_yaml": str,
            "git_sha": str,
            "versions_json": str,
        },
        pk="id",
    )
    db["episodes"].create(
        {
            "id": str,
            "run_id": str,
            "source": str,
            "dataset": str,
            "kind": str,
            "task": str,
            "roles_json": str,
            "status": str,
            "termination_reason": str,
            "n_turns": int,
            "meta_json": str,
            "parent_id": str,
            "fork_turn": int,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("run_id", "runs", "id"), ("parent_id", "episodes", "id")],
    )
    db["episodes"].create_index(["run_id"])
    db["turns"].create(
        {
            "id": int,
            "episode_id": str,
            "idx": int,
            "speaker": str,
            "role": str,
            "content": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "latency_ms": float,
            "finish_reason": str,
            "request_hash": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("episode_id", "episodes", "id")],
    )
    db["turns"].create_index(["episode_id", "idx"], unique=True)
    db["annotations"].create(
        {
            "id": int,
            "analyzer": str,
            "analyzer_version": str,
            "episode_id": str,
            "turn_idx": int,
            "name": str,
            "value": float,
            "detail_json": str,
            "created_at": str,
        },
        pk="id",
        foreign_keys=[("episode_id", "episodes", "id")],
    )
    db["annotations"].create_index(["analyzer", "episode_id"])


@migrations()
def m002_cache_retries_and_run_totals(db: Database) -> None:
    """The request cache, per-turn cache hits and retries, and per-run token and latency totals."""
    db["request_cache"].create(
        {"hash": str, "backend": str, "model": str, "completion_json": str, "created_at": str}, pk="hash"
    )
    db["turns"].add_column("cache_hit", int)
    db["turns"].add_column("retries", int)
    for column, kind in [
        ("n_turns", int),
        ("prompt_tokens", int),
        ("completion_tokens", int),
        ("latency_ms", float),
        ("cache_hits", int),
        ("retries", int),
        ("wall_s", float),
    ]:
        db["runs"].add_column(column, kind)


@migrations()
def m003_imports(db: Database) -> None:
    """One row per imported reference file, so the same file imported twice adds nothing."""
    db["imports"].create(
        {
            "id": int,
            "format": str,
            "dataset": str,
            "path": str,
            "sha256": str,
            "n_episodes": int,
            "created_at": str,
        },
        pk="id",
    )
    db["imports"].create_index(["sha256", "format", "dataset"], unique=True)
