"""LLM judges for the analyzers: a named backend asked through the request executor (answers cached in the store
and retried with the run's policy), a protocol that says what is asked in which stages, and verdicts read from
what each answer concludes (agents/verdicts.py). An answer without a verdict is unanswered: kept, counted and
reported, never read as yes or no."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import yaml
from omegaconf import MISSING, OmegaConf

from agents.verdicts import YES_NO_VERDICT, read_category, read_yes_no
from analyzers import embeddings as sentence_embeddings
from analyzers.base import Analyzer, Scored
from sim.backends import Backend
from sim.backends.base import build_backend
from sim.errors import SimError, require_one_of, require_positive
from sim.messages import ChatMessage, SamplingParams
from sim.records import Annotation
from sim.stats import Estimate, estimate

if TYPE_CHECKING:
    from sim.records import Episode
    from sim.requests import RequestExecutor
    from sim.store import Store

# What stage 2 of the paper protocol shows back when stage 1 gave no verdict.
NO_VERDICT = "unclear"
TEMPLATE_KEYS = ("ask", "explain", "classify", "system")


@dataclass(frozen=True)
class Protocol:
    """How one judgment is asked: `ask` (stage 1), `explain` (stage 2: the stage-1 verdict shown back, the judge
    asked for the statements behind it and its rationale, and allowed to change its answer; None for one stage),
    `classify` (sort the rationale into categories; None for none), whether each prompt goes as one system message
    (as the paper sent it) or as a user message, and the answer length. Prompts are `str.format` templates over
    `{task}`, `{transcript}`, `{verdict}` (stage 2) and `{rationale}` (classify)."""

    name: str
    ask: str
    explain: Optional[str] = None
    classify: Optional[str] = None
    system: bool = False
    max_tokens: int = 128

    def with_template(self, path: Optional[str], analyzer: str) -> "Protocol":
        """This protocol with the prompts of a user's template file (YAML: ask, explain, classify, system)."""
        if path is None:
            return self
        where = f"analyzer.{analyzer}.template"
        file = Path(path).expanduser()
        if not file.is_file():
            raise SimError(f"{where}: no such file {file}")
        try:
            texts = yaml.safe_load(file.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise SimError(f"{where}: {file} is not valid YAML ({str(exc).splitlines()[0]})") from None
        if not isinstance(texts, dict) or not set(texts) <= set(TEMPLATE_KEYS) or "ask" not in texts:
            raise SimError(f"{where}: {file} must map ask (and optionally {', '.join(TEMPLATE_KEYS[1:])}) to prompt texts")
        return Protocol(
            f"{self.name}+{file.name}", texts["ask"], texts.get("explain", self.explain), texts.get("classify", self.classify),
            bool(texts.get("system", self.system)), self.max_tokens,
        )


def paper_yes_no(question: str, reasons: str) -> Protocol:
    """The paper's two-stage yes/no protocol over `question` (which shows the task and transcript): ask, then show
    the verdict back and ask for `reasons`, allowing a change; as one system message, 256 tokens, as the paper sent it."""
    return Protocol(
        "paper",
        ask=question + "### Answer: ",
        explain=question + "### Answer: {verdict}\n\n"
        f"{reasons} If on reflection your answer changes, give the reason for the change. {YES_NO_VERDICT}",
        system=True,
        max_tokens=256,
    )


@dataclass
class Judgment:
    """What a judge concluded about one item: its verdict (None: unanswered), each stage's answer, and the
    category it sorted a yes into (None: not asked or not answered)."""

    verdict: Optional[bool]
    answers: list[str] = field(default_factory=list)
    category: Optional[int] = None

    @property
    def rationale(self) -> str:
        """The last stage's answer: the judge's reasons."""
        return self.answers[-1] if self.answers else ""


class Judge:
    """A backend that answers the analyzers' questions: built from a backend config when the analysis starts,
    asked through a request executor with the store's cache and the run's retry policy, closed when it ends."""

    def __init__(self, backend: Any, analyzer: str, max_tokens: int) -> None:
        if backend is None or (isinstance(backend, str) and backend == "self"):
            raise SimError(
                f"analyzer.{analyzer}.judge is not set: name a backend preset as judge (e.g. analyzer.{analyzer}.judge="
                f"openai analyzer.{analyzer}.judge.model=gpt-4o), or analyzer.{analyzer}.judge=self to let the composed "
                "backend judge (results marked self-judged when it generated the data)"
            )
        config = OmegaConf.to_container(backend, resolve=True) if OmegaConf.is_config(backend) else backend
        if not isinstance(config, dict) or "_target_" not in config:
            raise SimError(f"analyzer.{analyzer}.judge must be a backend preset name, self, or a backend config, got {backend!r}")
        self.backend_config = config
        self.analyzer = analyzer
        self.params = SamplingParams(temperature=0.0, top_p=1.0, max_tokens=max_tokens, seed=0)
        self.runner: Any = None  # the run's runner settings, once inherited
        self.loop: Optional[asyncio.AbstractEventLoop] = None
        self.backend: Optional[Backend] = None
        self.executor: Optional["RequestExecutor"] = None

    def inherit(self, runner: Any) -> None:
        """Ask with the run's `runner` settings: its retries, its cache setting and its most requests in flight."""
        self.runner = runner

    def open(self, store: "Store") -> None:
        """Build the backend and its executor (one event loop for the whole analysis, as backends keep clients)."""
        from sim.config import RunnerConfig
        from sim.limits import request_limit
        from sim.requests import Budget, RequestExecutor, retry_policy

        self.loop = asyncio.new_event_loop()
        self.backend = build_backend(OmegaConf.create(self.backend_config), "judge backend")
        # Outside a run (an analyzer used from Python), the runner's defaults. Judges are not capped:
        # runner.max_cost_usd and runner.max_tokens bound a run's generation.
        runner = self.runner or RunnerConfig()
        limit = request_limit(self.backend.max_concurrency, runner.concurrency)
        self.executor = RequestExecutor(
            store, self.backend, retry_policy(runner), runner.use_cache, Budget(None, None), (0.0, 0), limit
        )

    @property
    def identity(self) -> str:
        """Who judges: `backend:model`."""
        if self.backend is None:
            raise RuntimeError("Judge.open(store) must come first")
        return f"{self.backend.name}:{self.backend.model}"

    def ask(self, prompts: list[str], about: "Episode", system: bool = False) -> list[str]:
        """The backend's answers to several independent one-message prompts about one episode (the ledger records
        them with it), asked concurrently; each prompt is sent as a user message, or as one system message when
        `system`."""
        if self.loop is None or self.executor is None:
            raise RuntimeError("Judge.open(store) must come first")
        from sim.requests import Call

        executor = self.executor
        call = Call("judge", self.analyzer, about.run_id, about.id)

        async def one(prompt: str) -> str:
            result = await executor.complete([ChatMessage("system" if system else "user", prompt)], self.params, 0, call)
            return result.completion.text

        async def every() -> list[str]:
            return list(await asyncio.gather(*(one(prompt) for prompt in prompts)))

        return self.loop.run_until_complete(every())

    def judge(self, protocol: Protocol, shown: dict[str, str], about: "Episode", categories: int = 0) -> Judgment:
        """Ask `protocol` about one item: stage 1, then (two-stage protocols) stage 2 with the stage-1 verdict
        shown back, whose verdict wins where it gives one; then, for a yes and `categories` > 0, the category of
        the rationale."""
        (first,) = self.ask([protocol.ask.format(**shown)], about, protocol.system)
        judgment = Judgment(read_yes_no(first), [first])
        if protocol.explain is not None:
            label = NO_VERDICT if judgment.verdict is None else ("yes" if judgment.verdict else "no")
            (second,) = self.ask([protocol.explain.format(**shown, verdict=label)], about, protocol.system)
            judgment.answers.append(second)
            # Stage 2 invites a change of answer stated at its end; an explanation that states none keeps stage 1's.
            if (changed := read_yes_no(second)) is not None:
                judgment.verdict = changed
        if judgment.verdict and categories and protocol.classify is not None:
            (reply,) = self.ask([protocol.classify.format(**shown, rationale=judgment.rationale)], about, protocol.system)
            judgment.answers.append(reply)
            judgment.category = read_category(reply, categories)
        return judgment

    def close(self) -> None:
        """Release the backend and the event loop."""
        if self.loop is None:
            return
        if self.backend is not None:
            self.loop.run_until_complete(self.backend.aclose())
        self.loop.close()
        self.loop = self.backend = self.executor = None


MODES = ("embedding", "judge")


def judge_for_mode(mode: str, judge: Any, analyzer: str, max_tokens: int) -> Optional[Judge]:
    """Check an analyzer's `mode`: the Judge for `judge` mode, None for `embedding` mode, which needs the
    embeddings extra installed."""
    require_one_of(f"analyzer.{analyzer}.mode", mode, MODES)
    if mode == "embedding":
        sentence_embeddings.wanted("true", f"analyzer.{analyzer}.mode=embedding")
        return None
    return Judge(judge, analyzer, max_tokens)


def protocol_named(protocols: dict[str, Protocol], name: str, template: Optional[str], analyzer: str) -> Protocol:
    """The analyzer's protocol `name` (with a user's template, if given); a SimError naming the known ones."""
    require_one_of(f"analyzer.{analyzer}.protocol", name, protocols)
    return protocols[name].with_template(template, analyzer)


class UsesJudge:
    """`open`, `close`, the run's request settings and the judge's identity for analyzers with an optional
    `judge` (None when they run without one)."""

    judge: Optional[Judge] = None
    name: str
    # run id -> `backend:model` that generated it, to mark judgments of a model's own output as self-judged.
    generators: dict[str, str]

    def use_requests(self, runner: Any) -> None:
        """Send the judge's requests with the run's `runner` settings."""
        if self.judge is not None:
            self.judge.inherit(runner)

    def open(self, store: "Store") -> None:
        """Build the judge backend, if there is a judge, and learn which model generated each run."""
        if self.judge is not None:
            self.judge.open(store)
        self.generators = {row["id"]: f"{row['backend']}:{row['model']}" for row in store.runs()}

    def close(self) -> None:
        """Release the judge backend."""
        if self.judge is not None:
            self.judge.close()

    def judged_by(self, episode: "Episode") -> dict[str, Any]:
        """Who judged an episode, recorded with its judgments: the judge and whether it generated the episode."""
        assert self.judge is not None
        return {"judge": self.judge.identity, "self_judged": self.generators.get(episode.run_id or "") == self.judge.identity}

    def judge_notes(self, scored: list[Scored]) -> list[str]:
        """Who judged the group, with which protocol, and how much of it was the judge's own output."""
        identities: dict[tuple[str, str], int] = defaultdict(int)
        own = 0
        for _, annotations in scored:
            detail = next((a.detail for a in annotations if a.name == "unanswered_rate" and a.detail), None)
            if detail:
                identities[(detail["judge"], detail.get("protocol", ""))] += 1
                own += bool(detail.get("self_judged"))
        notes = [f"judged by {judge} (protocol {protocol}) on {n} of {len(scored)} items" for (judge, protocol), n in identities.items()]
        if own:
            notes.append(f"self-judged: the judge generated {own} of the {sum(identities.values())} judged items itself")
        return notes


@dataclass
class ConversationJudgeConfig:
    """The settings every judge of whole conversations has: `judge` names a backend preset or config (or `self`:
    the composed backend); `protocol` names one of the analyzer's protocols, `template` a YAML file of the user's
    own prompts (ask, explain, classify, system); transcripts are cut to `max_turns` and `max_chars`."""

    _target_: str = MISSING
    _recursive_: bool = False  # the judge's backend is built when the analysis starts, not with the analyzer
    judge: Any = None
    protocol: str = "short"
    template: Optional[str] = None
    max_turns: int = 40
    max_chars: int = 6000


class JudgesConversations(UsesJudge):
    """Analyzers whose judge reads whole conversations (digression, human-likeness, collaboration): the
    protocol, the transcript limits, and one judgment per conversation as annotations."""

    protocol: Protocol
    max_turns: int
    max_chars: int

    def judged_conversation(self, episode: "Episode", verdict_name: str, categories: tuple[str, ...] = ()) -> list[Annotation]:
        """Per conversation `unanswered_rate` (0 or 1, carrying who judged, the protocol and every answer) and,
        when answered, the verdict under `verdict_name` with the judge's rationale; for a yes and `categories`,
        `category[NAME]` of the category the judge sorted it into (`category_unanswered` when it named none)."""
        assert self.judge is not None
        shown = {"task": episode.task or "", "transcript": transcript(episode, self.max_turns, self.max_chars)}
        judgment = self.judge.judge(self.protocol, shown, episode, len(categories))
        detail = {**self.judged_by(episode), "protocol": self.protocol.name, "answers": judgment.answers}
        annotations = [Annotation(episode.id, "unanswered_rate", float(judgment.verdict is None), detail=detail)]
        if judgment.verdict is None:
            return annotations
        annotations.append(Annotation(episode.id, verdict_name, float(judgment.verdict), detail={"rationale": judgment.rationale}))
        if judgment.verdict and categories and self.protocol.classify is not None:
            annotations.append(Annotation(episode.id, "category_unanswered", float(judgment.category is None)))
            if judgment.category is not None:
                annotations.append(Annotation(episode.id, f"category[{categories[judgment.category - 1]}]", 1.0))
        return annotations


def accuracy_by(scored: list[Scored], verdict_name: str, labels: tuple[str, str]) -> dict[str, Estimate]:
    """Task accuracy (`meta.correct`) of the episodes the judge said yes to and of those it said no to, named
    `accuracy[labels[0]]` and `accuracy[labels[1]]` (as the paper splits SPP accuracy by digression)."""
    correct: dict[bool, list[float]] = {True: [], False: []}
    for episode, annotations in scored:
        verdict = next((a.value for a in annotations if a.name == verdict_name), None)
        if verdict is not None and isinstance(episode.meta.get("correct"), bool):
            correct[bool(verdict)].append(float(episode.meta["correct"]))
    return {f"accuracy[{labels[not verdict]}]": estimate(values) for verdict, values in correct.items() if values}


def transcript_limits(analyzer: str, max_turns: int, max_chars: int) -> tuple[int, int]:
    """`max_turns` and `max_chars` of an analyzer that shows transcripts to a judge, refused unless positive:
    a negative cut would silently slice from the end (`turns[:-1]`) and zero would show the judge nothing."""
    require_positive(f"analyzer.{analyzer}.max_turns", max_turns)
    require_positive(f"analyzer.{analyzer}.max_chars", max_chars)
    return max_turns, max_chars


def transcript(episode: "Episode", max_turns: int, max_chars: int) -> str:
    """The episode's turns as `speaker (role): text` lines, its first `max_turns` turns cut to `max_chars` in all."""
    lines = [f"{turn.speaker} ({turn.role}): {turn.content.strip()}" for turn in episode.turns[:max_turns]]
    text = "\n".join(lines)
    return text if len(text) <= max_chars else text[:max_chars] + " [...]"


class ConversationVerdict(JudgesConversations, Analyzer):
    """A judge's yes/no verdict on each whole conversation, named `verdict_name`, with the task accuracy (where
    episodes carry `meta.correct`) split by it under `split_labels` (yes, no)."""

    verdict_name: str
    split_labels: tuple[str, str]
    protocols: dict[str, Protocol]
    uses_corpus = True  # accuracy split by the verdict, and who judged, are properties of the group
    always_judges = True

    def __init__(self, judge: Any, protocol: str, template: Optional[str], max_turns: int, max_chars: int) -> None:
        self.max_turns, self.max_chars = transcript_limits(self.name, max_turns, max_chars)
        self.protocol = protocol_named(self.protocols, protocol, template, self.name)
        self.judge = Judge(judge, self.name, self.protocol.max_tokens)

    def applies_to(self, episode: "Episode") -> bool:
        """Conversations of two turns or more."""
        return episode.kind == "conversation" and len(episode.turns) >= 2

    def annotate(self, episode: "Episode") -> list[Annotation]:
        """The judge's verdict on the whole conversation."""
        return self.judged_conversation(episode, self.verdict_name)

    def corpus_metrics(self, scored: list[Scored]) -> dict[str, Estimate]:
        """Task accuracy of the conversations the judge said yes to, and of those it said no to."""
        return accuracy_by(scored, self.verdict_name, self.split_labels)

    def notes(self, scored: list[Scored]) -> list[str]:
        """Who judged."""
        return self.judge_notes(scored)
