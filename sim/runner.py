"""Drive one run: build the backend and scenario from config, play episodes concurrently, store each turn at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import platform
import random
import subprocess
import time
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf

import sim
from scenarios import EpisodePlan, Outcome, Scenario
from sim.analysis import analyze, build_analyzers
from sim.backends import Backend, BackendError
from sim.backends.base import build_backend
from sim.compose import GROUPS, apply_overrides, override_key, with_schema_defaults
from sim.config import build, config_changes, redacted, redacted_override, redacted_yaml, revised_config
from sim.errors import SimError, require_at_least, require_positive
from sim.guards import GUARD_ANALYZER, Guard, GuardStop, build_guards
from sim.ids import episode_id_of, episode_index_of, new_run_id
from sim.limits import LimitState, request_limit
from sim.messages import ChatMessage, SamplingParams
from sim.progress import RunProgress
from sim.records import Episode, Turn
from sim.requests import Budget, BudgetStop, Call, RequestExecutor, retry_policy
from sim.store import Store
from sim.summary import AnalyzerSummary

VERSIONED_PACKAGES = ("artifact-sim", "hydra-core", "omegaconf", "llama-cpp-python", "openai", "sqlite-utils")
FINISHED = ("done", "failed")
# The status of a run, and of its episodes left unfinished, that a budget stopped (resumable, with a higher cap).
BUDGET_STOPPED = "stopped: budget"
EPISODE_STOPPED = "stopped"
# What a resume may change without changing what is generated: how requests reach the same model and what they
# cost, and how the run is driven, stored and analyzed. Any other change is refused unless run.allow_changes=true.
CONNECTION_KEYS = (
    "backend.base_url", "backend.timeout_s", "backend.max_concurrency", "backend.api_key_env", "backend.check_model",
    "backend.http_client", "backend.pricing",
)
RUN_SETTINGS = ("runner.", "store.", "analyzer.", "run.sweep_id")
# Never compared between a run's config and its resume: the run's id, and the permission to change the rest.
UNCOMPARED = ("run.id", "run.allow_changes")


@dataclass
class RunReport:
    """What a run produced, or that it had already been done."""

    run_id: str
    db_path: Path
    outcomes: list[Outcome] = field(default_factory=list)
    summaries: list[AnalyzerSummary] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)
    already_done: bool = False
    resumed: bool = False
    stopped: bool = False  # the budget stopped it before every episode was played
    caveat: Optional[str] = None  # the backend's word on what its model's data can show
    request_limit: Optional[LimitState] = None  # where this session's request limit went


def derive_seed(seed: int, episode_index: int, key: str) -> int:
    """A per-request seed: repeatable for the same run seed, distinct across episodes and turns."""
    digest = hashlib.sha256(f"{seed}:{episode_index}:{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def package_versions() -> dict[str, str]:
    """Versions of Python and the packages that shape generated data."""
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def source_git_sha() -> Optional[str]:
    """The commit of the artifact-sim source tree, when it is a git checkout."""
    source_dir = Path(sim.__file__).resolve().parent.parent
    try:
        result = subprocess.run(
            ["git", "-C", str(source_dir), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def _turn_of_key(key: str) -> Optional[int]:
    """The turn a generated text belongs to, for keys of the form `NAME:IDX` (e.g. a moderator's pick)."""
    tail = key.rpartition(":")[2]
    return int(tail) if tail.isdigit() else None


@dataclass(frozen=True)
class Fork:
    """A replay of a stored episode from turn `at` on: the parent's earlier turns are kept, the rest regenerated."""

    parent: Episode
    at: int

    def plan(self, scenario: Scenario) -> EpisodePlan:
        """The parent's plan under the replaying scenario; refuses a scenario whose turns cannot be cut."""
        if not scenario.forkable:
            raise SimError(f"episodes of scenario {scenario.name!r} cannot be forked at a turn (they are not made one request per turn)")
        index = episode_index_of(self.parent.id)
        plan = next((plan for plan in scenario.plan() if plan.index == index), None)
        if plan is None:
            raise SimError(f"the replaying scenario plans no episode {index}; keep its items as in the parent's run")
        return plan

    def start(self, store: Store, run_id: str, plan: EpisodePlan) -> None:
        """Store the child episode with the parent's first `at` turns, in one transaction, so that playing it
        continues from there as after a resume; texts the parent generated for later turns are dropped. Its task
        and roles are the plan's, which the later turns are generated from (overrides may have changed them). A
        child already stored (the fork run is being resumed) is kept as it is."""
        if store.find_episode_row(episode_id_of(run_id, plan.index)) is not None:
            return
        generated = {
            key: text for key, text in self.parent.meta.get("generated", {}).items()
            if (turn := _turn_of_key(key)) is None or turn < self.at
        }
        child = Episode(
            id=episode_id_of(run_id, plan.index), run_id=run_id, source="generated", kind=self.parent.kind,
            task=plan.task, roles=plan.roles, status="running", termination_reason=None,
            meta={**plan.meta, "generated": generated}, parent_id=self.parent.id, fork_turn=self.at,
        )
        with store.db.atomic():
            store.start_episode(child)
            for turn in self.parent.turns[: self.at]:
                # Kept, not requested: the new run's token, latency, cache and retry totals leave them out.
                store.add_turn(child.id, Turn(turn.idx, turn.speaker, turn.role, turn.content, finish_reason=turn.finish_reason,
                                              request_hash=turn.request_hash, logprob=turn.logprob, kind=turn.kind))


class StoredEpisodeContext:
    """The runner's side of one episode: seeds, requests, storage, progress, and turns kept from before a resume."""

    def __init__(
        self,
        store: Store,
        executor: RequestExecutor,
        episode_id: str,
        seed: int,
        plan: EpisodePlan,
        kept_turns: list[Turn],
        meta: dict[str, Any],
        progress: RunProgress,
        guards: list[Guard],
        run_id: str,
        revision: int,
    ) -> None:
        self.store = store
        self.executor = executor
        self.episode_id = episode_id
        self.seed = seed
        self.plan = plan
        self.kept_turns = {turn.idx: turn for turn in kept_turns}
        self.meta = meta
        self.progress = progress
        self.guards = guards
        self.run_id = run_id
        self.revision = revision
        # The tokens of each turn requested in this session: the store keeps only their summed log-probability.
        self._token_logprobs: dict[int, Optional[list[tuple[str, float]]]] = {}

    def _params(self, sampling: SamplingParams, key: str) -> SamplingParams:
        return replace(sampling, seed=derive_seed(self.seed, self.plan.index, key))

    async def generate_turn(
        self, idx: int, speaker: str, role: str, messages: list[ChatMessage], sampling: SamplingParams
    ) -> Turn:
        """Turn `idx`: the one stored before a resume, or a new one from the backend, committed at once
        after the live guards have seen it (raises GuardStop after storing a turn a `stop` guard flagged)."""
        self.progress.turn_done()
        if idx in self.kept_turns:
            return self.kept_turns[idx]
        turn = await self._request_turn(idx, speaker, role, messages, sampling, f"turn:{idx}")
        flagged, tries = self._flags(turn), 1
        while any(guard.action == "regenerate" and tries < guard.max_tries for guard, _ in flagged):
            tries += 1
            turn = await self._request_turn(idx, speaker, role, messages, sampling, f"turn:{idx}:try:{tries}")
            flagged = self._flags(turn)
        self.store.add_turn(self.episode_id, turn)
        actions = [guard.annotation(self.episode_id, turn, reason, tries) for guard, reason in flagged]
        if tries > 1 and not flagged:
            regenerator = next(guard for guard in self.guards if guard.action == "regenerate")
            actions.append(regenerator.annotation(self.episode_id, turn, "passed", tries))
        self.store.add_annotations(GUARD_ANALYZER, "1", actions)
        stop = next(((guard, reason) for guard, reason in flagged if guard.action == "stop"), None)
        if stop is not None:
            raise GuardStop(f"guard_stop: {stop[0].analyzer.name} ({stop[1]}) at turn {idx}")
        return turn

    def _flags(self, turn: Turn) -> list[tuple[Guard, str]]:
        return [(guard, reason) for guard in self.guards if (reason := guard.flags(turn)) is not None]

    async def _request_turn(
        self, idx: int, speaker: str, role: str, messages: list[ChatMessage], sampling: SamplingParams, key: str
    ) -> Turn:
        call = Call("turn", "turn", self.run_id, self.episode_id)
        result = await self.executor.complete(messages, self._params(sampling, key), self.plan.index, call)
        completion = result.completion
        self._token_logprobs[idx] = completion.token_logprobs
        return Turn(
            idx=idx,
            speaker=speaker,
            role=role,
            content=completion.text.strip(),
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=round(completion.latency_ms, 3),
            finish_reason=completion.finish_reason,
            request_hash=result.request_hash,
            cache_hit=int(result.cache_hit),
            retries=result.retries,
            logprob=completion.logprob,
            revision=self.revision,
        )

    def token_logprobs(self, idx: int) -> Optional[list[tuple[str, float]]]:
        """Each token of turn `idx` with its log-probability, where the backend gave them; None for a turn kept
        from before a resume, whose tokens were not stored."""
        return self._token_logprobs.get(idx)

    def record_turn(self, idx: int, speaker: str, role: str, content: str) -> Turn:
        """Store a turn that needs no request of its own; the stored one after a resume."""
        if idx in self.kept_turns:
            return self.kept_turns[idx]
        turn = Turn(idx=idx, speaker=speaker, role=role, content=content, revision=self.revision)
        self.store.add_turn(self.episode_id, turn)
        return turn

    def earlier_episode(self, index: int) -> Episode:
        """Episode `index` of this run, with its turns, as stored."""
        return self.store.episode(episode_id_of(self.run_id, index))

    def rng(self) -> random.Random:
        """A random generator seeded from the run seed and the episode index."""
        return random.Random(derive_seed(self.seed, self.plan.index, "rng"))

    async def generate_text(self, key: str, messages: list[ChatMessage], sampling: SamplingParams) -> str:
        """Text that is not a turn; kept in the episode's meta so that a resumed episode reuses it."""
        generated = self.meta.setdefault("generated", {})
        if key not in generated:
            call = Call("text", key.partition(":")[0], self.run_id, self.episode_id)
            result = await self.executor.complete(messages, self._params(sampling, key), self.plan.index, call)
            generated[key] = result.completion.text
            self.store.update_episode_meta(self.episode_id, meta_json=json.dumps(self.meta))
        return generated[key]

    def update_episode(self, task: Optional[str] = None, meta: Optional[dict[str, Any]] = None) -> None:
        """Set the task and merge metadata decided while playing."""
        self.meta.update(meta or {})
        fields: dict[str, Any] = {"meta_json": json.dumps(self.meta)}
        if task is not None:
            fields["task"] = task
        self.store.update_episode_meta(self.episode_id, **fields)


@dataclass
class EpisodeRunner:
    """Plays the episodes of one run, many at once, each one's turns in order."""

    store: Store
    executor: RequestExecutor
    scenario: Scenario
    run_id: str
    seed: int
    concurrency: int
    progress: bool
    # The run revision (run_revisions) the turns played now are generated under.
    revision: int
    guards: list[Guard] = field(default_factory=list)
    # The episodes to play; by default the scenario's whole plan.
    plans: Optional[list[EpisodePlan]] = None

    async def play_all(self) -> list[Outcome]:
        """Play every planned episode with at most `concurrency` in flight, each after those it depends on;
        a setup error stops them all."""
        plans = self.scenario.plan() if self.plans is None else self.plans
        slots = asyncio.Semaphore(self.concurrency)
        ended: dict[int, asyncio.Future[None]] = {plan.index: asyncio.get_running_loop().create_future() for plan in plans}
        with RunProgress(len(plans), self.progress, self.executor.stats) as progress:

            async def play_in_slot(plan: EpisodePlan) -> Outcome:
                await asyncio.gather(*(ended[index] for index in plan.depends_on))
                async with slots:
                    # Once the budget stopped the run, an episode not yet begun is left unplayed, with no row.
                    stopped = self.executor.stopped and self.store.find_episode_row(episode_id_of(self.run_id, plan.index)) is None
                    outcome = Outcome(EPISODE_STOPPED, "budget") if stopped else await self.play_one(plan, progress)
                ended[plan.index].set_result(None)
                progress.episode_done()
                return outcome

            tasks = [asyncio.ensure_future(play_in_slot(plan)) for plan in plans]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise

    async def play_one(self, plan: EpisodePlan, progress: RunProgress) -> Outcome:
        """Play (or finish, after a resume) one episode and record how it ended."""
        episode_id = episode_id_of(self.run_id, plan.index)
        row = self.store.find_episode_row(episode_id)
        if row is not None and row["status"] in FINISHED:
            return Outcome(row["status"], row["termination_reason"])
        if row is None:
            self.store.start_episode(
                Episode(
                    id=episode_id,
                    run_id=self.run_id,
                    source="generated",
                    kind=self.scenario.kind,
                    task=plan.task,
                    roles=plan.roles,
                    status="running",
                    termination_reason=None,
                    meta=plan.meta,
                )
            )
            kept, meta = [], dict(plan.meta)
        else:
            kept, meta = self.store.turns(episode_id), json.loads(row["meta_json"] or "{}")
        ctx = StoredEpisodeContext(
            self.store, self.executor, episode_id, self.seed, plan, kept, meta, progress, self.guards, self.run_id, self.revision
        )
        failed_attempts = 0
        try:
            outcome = await self.scenario.play(plan, ctx)
        except GuardStop as stop:
            outcome = Outcome("done", stop.reason)
        except BudgetStop:
            # Unfinished and resumable: a resume with a higher cap plays it on from its stored turns.
            outcome = Outcome(EPISODE_STOPPED, "budget")
        except BackendError as exc:
            outcome = Outcome("failed", f"backend_error: {exc}")
            failed_attempts = exc.attempts
        except BaseException:
            # Cancelled (Ctrl-C, or a setup error in another episode): resumable, so not finished.
            self.store.finish_episode(episode_id, "interrupted", "run_interrupted")
            raise
        if self.guards and not outcome.termination_reason.startswith("guard_stop"):
            if actions := self.store.action_counts(GUARD_ANALYZER, episode_id):
                summary = ", ".join(f"{n} {name}" for name, n in actions.items())
                outcome = Outcome(outcome.status, f"{outcome.termination_reason} (guards: {summary})")
        self.store.finish_episode(episode_id, outcome.status, outcome.termination_reason, failed_attempts)
        return outcome


async def _generate(runner: EpisodeRunner, backend: Backend) -> list[Outcome]:
    try:
        await backend.check()
        return await runner.play_all()
    finally:
        await backend.aclose()


@dataclass
class Resume:
    """An unfinished run taken up again: the config it goes on with, and its revision, new when `changes` is not
    empty (it is recorded as the run restarts)."""

    cfg: DictConfig
    revision: int
    changes: dict[str, dict[str, Any]]
    overrides: list[str]

    def record(self, store: Store, run_id: str) -> None:
        """Record the changes as the run's next revision, if there are any."""
        if self.changes:
            generation = any(map(_changes_generation, self.changes))
            store.add_run_revision(run_id, self.revision, self.changes, self.overrides, generation)


def _changes_generation(key: str) -> bool:
    """Whether a change to this config key changes what the run generates."""
    return key not in CONNECTION_KEYS and not key.startswith(RUN_SETTINGS)


def _describe(change: dict[str, Any]) -> str:
    """One changed value, `OLD -> NEW`, with `unset` for a side without it."""
    old, new = (json.dumps(change[side]) if side in change else "unset" for side in ("old", "new"))
    return f"{old} -> {new}"


def _resumable_config(store: Store, run_id: str, cfg: DictConfig, overrides: list[str]) -> Optional[Resume]:
    """How an unfinished run goes on: its config as last revised (the stored one with its revisions applied), with
    this command's runner and store settings and its other overrides applied on top. Changes to what is generated
    are refused unless `run.allow_changes`; another backend or scenario is refused."""
    row = store.find_run(run_id)
    if row is None:
        return None
    revisions = store.run_revisions(run_id)
    current = OmegaConf.to_container(with_schema_defaults(OmegaConf.create(revised_config(row["config_yaml"], revisions))))
    stored = OmegaConf.create(current)
    for key in map(override_key, overrides):
        if key in GROUPS and OmegaConf.select(cfg, f"{key}._target_") != OmegaConf.select(stored, f"{key}._target_"):
            raise SimError(f"run {run_id!r} already exists with another {key}; resume it with its own, or use a new run.id")
    resumed = OmegaConf.create(current)
    resumed.runner = cfg.runner
    resumed.store = cfg.store
    applied = [o for o in overrides if override_key(o) not in UNCOMPARED and override_key(o).split(".")[0] not in ("runner", "store")]
    apply_overrides(resumed, cfg, applied)
    resumed.run.id = run_id
    changes = config_changes(redacted(stored), redacted(resumed), ignored=UNCOMPARED)
    if (generating := [key for key in changes if _changes_generation(key)]) and not cfg.run.allow_changes:
        changed = ", ".join(f"{key} {_describe(changes[key])}" for key in generating)
        raise SimError(
            f"run {run_id!r} was generated with other settings than this resume's ({changed}); resume it without "
            "these changes, add run.allow_changes=true to go on with them as a recorded revision, or use a new run.id"
        )
    return Resume(resumed, len(revisions) + 1 if changes else len(revisions), changes, [redacted_override(o) for o in overrides])


def execute(
    cfg: DictConfig,
    sweep_id: Optional[str] = None,
    overrides: Optional[list[str]] = None,
    on_start: Optional[Callable[[str, Path, bool], None]] = None,
) -> RunReport:
    """Run (or resume) one job of the given config end to end, then run the configured analyzers on it.

    `overrides` are the command line's; when the run already exists they are applied to its stored config.
    `on_start(run_id, db_path, resumed)` is called once the run is in the store, before its first request.
    A run with `run.fork_of` (or `run.fork_episodes`) plays only those episodes again, from turn `run.fork_at` on
    (`sim replay`)."""
    post_run_analyzers = build_analyzers(cfg.get("analyzer"), cfg.runner.analyze, cfg.runner)  # fails on a typo before any generation
    for key in ("concurrency", "max_attempts"):
        require_positive(f"runner.{key}", cfg.runner[key])
    for key in ("backoff_initial_s", "backoff_max_s", "retry_after_max_s"):
        require_at_least(f"runner.{key}", cfg.runner[key], 0)
    for key in ("max_cost_usd", "max_tokens"):
        require_positive(f"runner.{key}", cfg.runner[key], null_means="no cap")
    if not -(2**63) <= cfg.seed < 2**63:  # stored in an SQLite INTEGER column
        raise SimError(f"seed must fit in 64 bits (below 2**63 in size), got {cfg.seed}")
    store: Optional[Store] = None
    run_id = cfg.run.id or new_run_id()
    resume: Optional[Resume] = None
    try:
        if cfg.run.id and Path(cfg.store.path).expanduser().exists():
            store = Store.open(cfg.store.path)
            existing = store.find_run(run_id)
            if existing is not None and existing["status"] == "done":
                return RunReport(run_id, store.path, already_done=True)
            resume = _resumable_config(store, run_id, cfg, overrides or [])
            if resume is not None:
                cfg = resume.cfg
        # Checked on the config the run goes on with: a resumed run keeps the pricing it was started with.
        if cfg.runner.max_cost_usd is not None and cfg.backend.get("pricing") is None:
            raise SimError("runner.max_cost_usd needs backend.pricing (input_usd_per_mtok and output_usd_per_mtok) to count cost")
        scenario: Scenario = build(cfg.scenario, "scenario")
        guards = build_guards(scenario.guards, cfg.get("analyzer"))
        scenario.prepare(Path(cfg.store.path))
        backend: Backend = build_backend(cfg.backend, "backend")
        store = store or Store.open(cfg.store.path)
        parents = [cfg.run.fork_of] if cfg.run.get("fork_of") else list(cfg.run.get("fork_episodes") or [])
        forks = [Fork(store.episode(parent), cfg.run.fork_at) for parent in parents]
        fork_plans = [fork.plan(scenario) for fork in forks]
        if resume is not None:
            store.restart_run(run_id, [redacted_override(override) for override in overrides or []])
            resume.record(store, run_id)
        else:
            store.start_run(
                {
                    "id": run_id,
                    "scenario": scenario.name,
                    "backend": backend.name,
                    "model": backend.model,
                    "seed": cfg.seed,
                    "sweep_id": cfg.run.sweep_id or sweep_id,
                    "config_yaml": redacted_yaml(cfg),
                    "git_sha": source_git_sha(),
                    "versions_json": json.dumps(package_versions()),
                    "overrides_json": json.dumps([[redacted_override(override) for override in overrides or []]]),
                }
            )
        for fork, plan in zip(forks, fork_plans):
            fork.start(store, run_id, plan)  # on a resume, once more: it keeps the child it finds
        if on_start is not None:
            on_start(run_id, store.path, resume is not None)
        policy = retry_policy(cfg.runner)
        budget = Budget(cfg.runner.max_cost_usd, cfg.runner.max_tokens)
        # An `auto` limit grows up to runner.concurrency, a request for each episode in flight.
        limit = request_limit(backend.max_concurrency, cfg.runner.concurrency)
        runner = EpisodeRunner(
            store=store,
            executor=RequestExecutor(store, backend, policy, cfg.runner.use_cache, budget, store.run_spend(run_id), limit),
            scenario=scenario,
            run_id=run_id,
            seed=cfg.seed,
            concurrency=cfg.runner.concurrency,
            progress=cfg.runner.progress,
            revision=resume.revision if resume is not None else 0,
            guards=guards,
            plans=fork_plans or None,
        )
        started, cpu_started = time.perf_counter(), time.process_time()
        try:
            outcomes = asyncio.run(_generate(runner, backend))
        except SimError:
            store.finish_run(run_id, "failed", time.perf_counter() - started)
            raise
        except BaseException:
            store.finish_run(run_id, "interrupted", time.perf_counter() - started)
            raise
        finally:
            reached = limit.state()
            store.record_request_limit(run_id, reached.current, reached.low, reached.high, reached.overloads)
        cpu_s = time.process_time() - cpu_started
        if runner.executor.stopped:
            # Not analyzed: the analyzers run on the whole run once a resume has finished it.
            totals = store.finish_run(run_id, BUDGET_STOPPED, time.perf_counter() - started)
            totals.update(wall_s=round(time.perf_counter() - started, 3), cpu_s=round(cpu_s, 3))
            totals.update({key: store.ledger_total(run_id)[key] for key in ("requests", "cost_usd")})
            return RunReport(
                run_id, store.path, outcomes, [], totals, resumed=resume is not None, stopped=True, caveat=backend.caveat, request_limit=reached
            )
        # `analyzing` until the analyzers are through: a run killed meanwhile is resumed, and analyzed, not done.
        totals = store.finish_run(run_id, "analyzing", time.perf_counter() - started)
        totals.update(wall_s=round(time.perf_counter() - started, 3), cpu_s=round(cpu_s, 3))
        summaries = analyze(store, post_run_analyzers, run_id=run_id, progress=cfg.runner.progress)
        store.set_run_status(run_id, "done")
        totals.update({key: store.ledger_total(run_id)[key] for key in ("requests", "cost_usd")})  # the judges' too
        return RunReport(
            run_id, store.path, outcomes, summaries, totals, resumed=resume is not None, caveat=backend.caveat, request_limit=reached
        )
    finally:
        if store is not None:
            store.close()
