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


# The structured result of each kind of data item, readable without parsing meta_json. Imported and generated
# items share one shape (see sim/importers and scenarios/), so one view serves both.
KIND_VIEWS = {
    "v_conversation": """
        SELECT e.id AS episode_id, e.run_id, e.source, e.dataset, r.model, e.task, e.n_turns, e.status,
               e.termination_reason, json_extract(e.meta_json, '$.final_answer') AS final_answer,
               json_extract(e.meta_json, '$.target') AS target, json_extract(e.meta_json, '$.correct') AS correct
        FROM episodes e LEFT JOIN runs r ON r.id = e.run_id WHERE e.kind = 'conversation'""",
    "v_task_label": """
        SELECT e.id AS episode_id, e.run_id, e.source, e.dataset, coalesce(json_extract(e.meta_json, '$.model'), r.model) AS model,
               e.task, json_extract(e.meta_json, '$.item_id') AS item_id,
               (SELECT content FROM turns t WHERE t.episode_id = e.id AND t.role = 'item') AS text,
               json_extract(e.meta_json, '$.human_labels') AS human_labels,
               json_extract(e.meta_json, '$.model_labels') AS model_labels,
               json_extract(e.meta_json, '$.model_confidences') AS model_confidences
        FROM episodes e LEFT JOIN runs r ON r.id = e.run_id WHERE e.kind = 'task_label'""",
    "v_preference": """
        SELECT e.id AS episode_id, e.run_id, e.source, e.dataset, r.model,
               (SELECT content FROM turns t WHERE t.episode_id = e.id AND t.role = 'prompt') AS prompt,
               (SELECT content FROM turns t WHERE t.episode_id = e.id AND t.role = 'output_1') AS output_1,
               (SELECT content FROM turns t WHERE t.episode_id = e.id AND t.role = 'output_2') AS output_2,
               json_extract(e.meta_json, '$.judgments') AS judgments,
               json_extract(e.meta_json, '$.swapped_judgments') AS swapped_judgments,
               json_extract(e.meta_json, '$.position_consistent') AS position_consistent
        FROM episodes e LEFT JOIN runs r ON r.id = e.run_id WHERE e.kind = 'preference'""",
    "v_instruction": """
        SELECT e.id AS episode_id, e.run_id, e.source, e.dataset, r.model,
               json_extract(e.meta_json, '$.author') AS author,
               json_extract(e.meta_json, '$.instruction') AS instruction,
               json_extract(e.meta_json, '$.input') AS input, json_extract(e.meta_json, '$.output') AS output,
               e.termination_reason, json_extract(e.meta_json, '$.rouge_l_max') AS rouge_l_max,
               json_extract(e.meta_json, '$.parents') AS parents
        FROM episodes e LEFT JOIN runs r ON r.id = e.run_id WHERE e.kind = 'instruction'""",
    "v_free_text": """
        SELECT e.id AS episode_id, e.run_id, e.source, e.dataset, r.model,
               json_extract(e.meta_json, '$.author') AS author, json_extract(e.meta_json, '$.writer') AS writer,
               (SELECT content FROM turns t WHERE t.episode_id = e.id AND t.role = 'prompt') AS prompt,
               (SELECT content FROM turns t WHERE t.episode_id = e.id AND t.role = 'text') AS text,
               json_extract(e.meta_json, '$.pair') AS pair
        FROM episodes e LEFT JOIN runs r ON r.id = e.run_id WHERE e.kind = 'free_text'""",
}


@migrations()
def m004_logprobs_and_kind_views(db: Database) -> None:
    """Per-turn log-probabilities and one view per kind of data item."""
    db["turns"].add_column("logprob", float)
    for name, select in KIND_VIEWS.items():
        db.create_view(name, select)


@migrations()
def m005_turns_full_text_search(db: Database) -> None:
    """A full-text index of turn content, `turns_fts`, filled from the stored turns and kept current by triggers."""
    # sqlite-utils makes an external-content FTS5 table (content="turns"): the index holds no second copy of the text.
    db["turns"].enable_fts(["content"], create_triggers=True)


@migrations()
def m006_failed_request_attempts(db: Database) -> None:
    """How many attempts the request that failed an episode made, so that a run's retries count them too."""
    db["episodes"].add_column("failed_attempts", int)


@migrations()
def m007_validations(db: Database) -> None:
    """One row per known-answer test of an analyzer (`sim validate`): what was perturbed, on which corpus, with
    which settings, and the metrics it measured, so that `sim analyze` can say how far its detectors are valid."""
    db["validations"].create(
        {
            "id": int,
            "analyzer": str,
            "analyzer_version": str,
            "settings_hash": str,
            "dataset": str,
            "kind": str,
            "rate": float,
            "seed": int,
            "metrics_json": str,
            "created_at": str,
        },
        pk="id",
    )
    db["validations"].create_index(["analyzer", "analyzer_version", "settings_hash"])


# The turn texts that importers of these formats mark as actions from m008 on (written out here, not imported, so
# that this migration stays as it shipped).
M008_ACTIONS = {
    "casino": ("Submit-Deal", "Accept-Deal", "Reject-Deal", "Walk-Away"),
    "dealornodeal": ("<selection>",),
}


@migrations()
def m008_turn_kinds(db: Database) -> None:
    """What each turn is: an `utterance` (said in the conversation) or a non-utterance an importer marks, such as an
    `action` (a deal submitted or accepted in a negotiation corpus). Stored turns are utterances, except those of
    earlier CaSiNo and Deal or No Deal imports that the importers now mark as actions."""
    db["turns"].add_column("kind", str, not_null_default="utterance")
    # Only a store holding such imports is touched: a new store's migrations write no turn.
    imported = {row["format"] for row in db["imports"].rows_where(select="DISTINCT format")}
    for format_name, texts in M008_ACTIONS.items():
        if format_name not in imported:
            continue
        db.execute(
            f"UPDATE turns SET kind = 'action' WHERE content IN ({', '.join('?' * len(texts))}) AND episode_id IN"
            " (SELECT e.id FROM episodes e JOIN imports i ON i.dataset = e.dataset WHERE e.source = 'imported' AND i.format = ?)",
            [*texts, format_name],
        )


@migrations()
def m009_request_ledger(db: Database) -> None:
    """The ledger: one row per answered request (a turn's, a text's such as a task specifier's or a moderator's, a
    judge's), sent or served from the cache, with its tokens and, where its backend is priced, its cost. Filled
    here with the requested turns stored so far (their cost unknown: no pricing was recorded then). Runs keep the
    command-line overrides of each session that started or resumed them (`overrides_json`, a list of lists)."""
    db["runs"].add_column("overrides_json", str)
    db["requests"].create(
        {
            "id": int,
            "run_id": str,
            "episode_id": str,
            "kind": str,
            "purpose": str,
            "backend": str,
            "model": str,
            "request_hash": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "cost_usd": float,
            "cache_hit": int,
            "retries": int,
            "latency_ms": float,
            "created_at": str,
        },
        pk="id",
    )
    db["requests"].create_index(["run_id", "kind"])
    db["requests"].create_index(["episode_id"])
    db.execute(
        "INSERT INTO requests (run_id, episode_id, kind, purpose, backend, model, request_hash, prompt_tokens,"
        " completion_tokens, cache_hit, retries, latency_ms, created_at)"
        " SELECT e.run_id, t.episode_id, 'turn', 'turn', r.backend, r.model, t.request_hash, t.prompt_tokens,"
        " t.completion_tokens, t.cache_hit, t.retries, t.latency_ms, t.created_at"
        " FROM turns t JOIN episodes e ON e.id = t.episode_id JOIN runs r ON r.id = e.run_id"
        " WHERE t.cache_hit IS NOT NULL ORDER BY t.id"
    )


@migrations()
def m010_run_revisions(db: Database) -> None:
    """What each resume of a run changed in its config (`run_revisions`), and the revision each turn was generated
    under (`turns.revision`, 0 for the run's own config)."""
    db["run_revisions"].create(
        {
            "run_id": str,
            "revision": int,
            "created_at": str,
            "generation": int,
            "changes_json": str,
            "overrides_json": str,
        },
        pk=("run_id", "revision"),
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["turns"].add_column("revision", int, not_null_default=0)


@migrations()
def m011_request_limits(db: Database) -> None:
    """Each run's request limit (`backend.max_concurrency`, adaptive with `auto`): where its last session ended,
    the smallest an overload cut it to and the largest it was, and how many answers said the server was
    overloaded (429, 503, timeouts)."""
    for column in ("request_limit", "request_limit_min", "request_limit_max", "overloads"):
        db["runs"].add_column(column, int)
