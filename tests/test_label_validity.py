"""Labels that are labels: answers outside the scheme counted invalid and left out, a label's confidence read from
its own tokens, and each backend honoring `scenario.logprobs` or refusing it in one line."""

import asyncio
import json
import math
from collections import Counter
from pathlib import Path

import pytest
from omegaconf import OmegaConf
from scipy.spatial.distance import jensenshannon

from agents.annotator import find_label, label_probability
from analyzers.task_labels import TaskLabelsAnalyzer, clean_labels, majority_set, minority_set
from helpers import DATA
from scripted_server import ScriptedServer
from sim.analysis import analyze
from sim.backends import langchain_chat  # noqa: F401  (registers it)
from sim.backends.base import BackendSetupError, Completion, backends
from sim.importing import import_file
from sim.messages import ChatMessage, SamplingParams
from sim.records import Episode
from test_bad_input import assert_one_line_error
from test_scenarios import annotation_values

GHC = DATA / "task_labels" / "artifacts-llmgendata" / "ghc_intermodel.jsonl"
SCHEME = {"0": "negative", "1": "neutral", "2": "positive"}
FAKE_CHAT = "langchain_core.language_models.fake_chat_models.FakeListChatModel"

# Three annotators, told apart by their personas, and the tokens of each one's answer.
ANSWERS = {
    "a careful reader": [("The", -0.05), (" label", -0.1), (" is", -0.2), (" 2", -0.4), (".", -0.3)],
    "a hasty reader": [("Pos", -0.5), ("itive", -0.25)],
    "a confused reader": [("7", -1.5)],
}
PERSONAS = "scenario.personas=[" + ",".join(ANSWERS) + "]"


def persona_of(messages: list[dict]) -> str:
    return next(persona for persona in ANSWERS if persona in messages[0]["content"])


class TokenServer(ScriptedServer):
    """A scripted annotator that gives each answer's tokens with their log-probabilities when asked for them."""

    def __init__(self) -> None:
        super().__init__(lambda messages: "".join(token for token, _ in ANSWERS[persona_of(messages)]))

    def completion(self, body: dict) -> dict:
        """The scripted reply, with `logprobs.content` holding one entry per token of the answer."""
        response = super().completion(body)
        if body.get("logprobs"):
            tokens = ANSWERS[persona_of(body["messages"])]
            response["choices"][0]["logprobs"] = {
                "content": [{"token": token, "logprob": logprob, "bytes": None, "top_logprobs": []} for token, logprob in tokens]
            }
        return response


def test_a_label_is_found_where_the_answer_names_it() -> None:
    assert find_label("The label is 2.", SCHEME).__dict__ == {"value": "2", "start": 13, "end": 14}
    assert find_label("POSITIVE, clearly", SCHEME).__dict__ == {"value": "2", "start": 0, "end": 8}
    # A number outside the scheme is kept as that number, so that it counts as invalid rather than as no answer.
    assert find_label("I'd say 7 out of 10", SCHEME).value == "7"
    assert find_label("version 2.5 of the text", SCHEME) is None and find_label("no idea", SCHEME) is None


def test_confidence_is_the_probability_of_the_labels_own_tokens() -> None:
    tokens = ANSWERS["a careful reader"]
    assert label_probability(tokens, SCHEME, "2") == pytest.approx(math.exp(-0.4))
    # A label spelled by two tokens takes both; the whole answer's probability is another, smaller number.
    assert label_probability(ANSWERS["a hasty reader"], SCHEME, "2") == pytest.approx(math.exp(-0.75))
    assert label_probability(tokens, SCHEME, "2") > math.exp(sum(logprob for _, logprob in tokens))
    # Tokens that do not spell the parsed label give no confidence rather than another label's.
    assert label_probability(tokens, SCHEME, "1") is None


def test_completion_sums_its_tokens_and_survives_the_cache_as_json() -> None:
    completion = Completion("Positive", "stop", 3, 2, 1.0, token_logprobs=ANSWERS["a hasty reader"])
    assert completion.logprob == pytest.approx(-0.75)
    cached = Completion(**json.loads(json.dumps(vars(completion))))
    assert cached.token_logprobs == ANSWERS["a hasty reader"] and cached.logprob == completion.logprob


def ghc_part(tmp_path: Path, items: int = 300) -> tuple[Path, list[dict]]:
    """The first `items` GHC items, as labeled by each of the five models, as a file of their own."""
    records = [json.loads(line) for line in GHC.read_text(encoding="utf-8").splitlines()]
    kept = set(sorted({record["text_ind"] for record in records})[:items])
    part = [record for record in records if record["text_ind"] in kept]
    path = tmp_path / "ghc_part.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in part), encoding="utf-8")
    return path, part


@pytest.mark.slow
def test_ghc_labels_outside_the_binary_scheme_are_invalid_per_model(store, tmp_path: Path) -> None:
    path, records = ghc_part(tmp_path)
    import_file(store, "task_labels", path, progress=False)
    (summary,) = analyze(store, [TaskLabelsAnalyzer()], progress=False)
    metrics = {(m.group, m.name): m for m in summary.metrics}
    # The binary scheme is read from the humans' labels, counted here straight from the file.
    assert {label for record in records for label in clean_labels(record["human_annots"])} == {0.0, 1.0}
    by_model: dict[str, list[float]] = {}
    for record in records:
        present = clean_labels(record["model_annots"])
        by_model.setdefault(record["model_name"], []).append(sum(label not in (0, 1) for label in present) / len(present))
    assert sum(rate > 0 for rates in by_model.values() for rate in rates) > 20
    for model, rates in by_model.items():
        metric = metrics[("ghc_part / " + model, "invalid_label_rate")]
        assert metric.n == len(rates) == 300
        assert metric.mean == pytest.approx(sum(rates) / len(rates))
        assert metric.ci_low <= metric.mean + 1e-12 and metric.mean <= metric.ci_high  # Wilson's low end at 0 is 0 up to rounding
    assert metrics[("ghc_part / open_ai_gpt35turbo", "invalid_label_rate")].mean == 0
    assert metrics[("ghc_part / baize", "invalid_label_rate")].mean > 0.01

    stored: dict[str, dict[str, float]] = {}
    for episode_id, name, value in store.db.execute("SELECT episode_id, name, value FROM annotations WHERE turn_idx IS NULL"):
        stored.setdefault(episode_id, {})[name] = value
    episodes = list(store.episodes(dataset="ghc_part"))
    checked = 0
    for episode, record in zip(episodes, records):
        present = clean_labels(record["model_annots"])
        valid = [label for label in present if label in (0, 1)]
        values = stored[episode.id]
        if not valid:
            assert set(values) == {"invalid_label_rate"} and values["invalid_label_rate"] == 1
            continue
        if len(valid) == len(present):
            continue
        human = clean_labels(record["human_annots"])
        # Majority, minority and the distance between distributions are those of the valid labels alone.
        human_majority, model_majority = majority_set(human), majority_set(valid)
        assert values["majority_match"] == float(bool(human_majority and model_majority and human_majority & model_majority))
        human_minority, model_minority = minority_set(human), minority_set(valid)
        assert values["minority_match"] == float(bool(human_minority and model_minority and human_minority & model_minority))
        human_p = [Counter(human)[label] / len(human) for label in (0.0, 1.0)]
        model_p = [Counter(valid)[label] / len(valid) for label in (0.0, 1.0)]
        assert values["js_distance"] == pytest.approx(float(jensenshannon(human_p, model_p, base=2)), abs=1e-7)
        assert values["model_unanimous"] == float(len(set(valid)) == 1)
        checked += 1
    assert checked > 20


@pytest.fixture
def item(episode):
    """`item(model, human, id="e1", dataset=None, **meta)`: an imported item with a model's labels and human ones."""

    def make(model: list, human: list, id: str = "e1", dataset: str | None = None, **meta) -> Episode:
        return episode(id, kind="task_label", dataset=dataset, meta={"human_labels": human, "model_labels": model, **meta})

    return make


def values_of(analyzer: TaskLabelsAnalyzer, episode: Episode) -> dict[str, float]:
    return {a.name: a.value for a in analyzer.annotate(episode)}


def test_a_declared_scheme_decides_and_an_unknown_one_invalidates_nothing(item) -> None:
    analyzer = TaskLabelsAnalyzer()
    declared = item([1, 2, 5, -1, None], [1, 1, 2], label_scheme={"1": "low", "2": "mid", "3": "high"})
    values = values_of(analyzer, declared)
    assert values["invalid_label_rate"] == pytest.approx(1 / 3)  # of the three present labels, 5 is outside 1-3
    assert values["model_unanimous"] == 0.0 and values["majority_match"] == 0.0  # {1, 2} has no majority
    # No scheme declared and no dataset scheme read from a store: every present label counts, and no rate is given.
    assert "invalid_label_rate" not in values_of(analyzer, item([1, 2, 5], [1, 1, 2], dataset="ds"))


def test_generated_labels_outside_the_scheme_and_their_token_confidences(sim, tmp_path: Path, db_rows) -> None:
    with TokenServer() as server:
        result = sim(
            "run", "scenario=task_labels", *server.backend_args(), "scenario.n_episodes=2", "scenario.annotators=3",
            PERSONAS, "runner.progress=false", "runner.analyze=[task_labels]",
        )
    assert result.returncode == 0, result.stderr
    assert all(request["logprobs"] is True for request in server.requests)
    db = tmp_path / "runs" / "sim.db"
    metas = [json.loads(meta) for (meta,) in db_rows(db, "SELECT meta_json FROM episodes ORDER BY id")]
    assert [meta["model_labels"] for meta in metas] == [[2.0, 2.0, 7.0]] * 2
    for meta in metas:
        assert meta["model_confidences"] == pytest.approx([math.exp(-0.4), math.exp(-0.75), math.exp(-1.5)])
    # The turn keeps the whole answer's log-probability; the confidence is its label's part of it.
    assert sorted({round(lp, 6) for (lp,) in db_rows(db, "SELECT logprob FROM turns WHERE role = 'model_annotator'")}) == [-1.5, -1.05, -0.75]
    values = annotation_values(db, "task_labels")
    assert len(values) == 2
    for episode_values in values.values():
        assert episode_values["invalid_label_rate"] == pytest.approx(1 / 3)
        assert episode_values["model_unanimous"] == 1.0  # the two valid labels agree; the 7 is no third category
    assert "task_labels (v4" in result.stdout


def test_a_server_that_ignores_logprobs_is_refused_in_one_line(sim, tmp_path: Path) -> None:
    with ScriptedServer(lambda messages: "2") as server:
        result = sim("run", "scenario=task_labels", *server.backend_args(), "scenario.n_episodes=1", "runner.progress=false")
        assert_one_line_error(
            result, f"backend=openai: {server.base_url} returned no log-probabilities for model 'scripted'; set scenario.logprobs=false"
        )
        fixed = sim("run", "scenario=task_labels", *server.backend_args(), "scenario.n_episodes=1", "runner.progress=false", "scenario.logprobs=false")
    assert fixed.returncode == 0, fixed.stderr


def test_langchain_chat_openai_returns_token_logprobs() -> None:
    with TokenServer() as server:
        chat_model = OmegaConf.create({"_target_": "langchain_openai.ChatOpenAI", "model": server.model, "base_url": server.base_url})
        backend = backends.create("langchain", chat_model=chat_model)
        messages = [ChatMessage("system", "You are a hasty reader."), ChatMessage("user", "Label it.")]
        completion = asyncio.run(backend.complete(messages, SamplingParams(logprobs=True)))
    assert completion.text == "Positive" and completion.token_logprobs == ANSWERS["a hasty reader"]
    assert server.requests[-1]["logprobs"] is True


def test_langchain_chat_model_without_logprobs_is_refused_in_one_line(sim, tmp_path: Path) -> None:
    chat_model = OmegaConf.create({"_target_": FAKE_CHAT, "responses": ["2"]})
    backend = backends.create("langchain", chat_model=chat_model)
    assert asyncio.run(backend.complete([ChatMessage("user", "Label it.")], SamplingParams())).text == "2"
    with pytest.raises(BackendSetupError, match="^backend=langchain: chat model FakeListChatModel does not return log-probabilities"):
        asyncio.run(backend.complete([ChatMessage("user", "Label it.")], SamplingParams(logprobs=True)))
    args = [
        "run", "scenario=task_labels", "scenario.n_episodes=1", "runner.progress=false", "backend=langchain",
        f"backend.chat_model._target_={FAKE_CHAT}", "+backend.chat_model.responses=['2']", "backend.api_key_env=null",
    ]
    assert_one_line_error(
        sim(*args),
        "backend=langchain: chat model FakeListChatModel does not return log-probabilities (it has no logprobs setting);"
        " set scenario.logprobs=false",
    )
    fixed = sim(*args, "scenario.logprobs=false")
    assert fixed.returncode == 0, fixed.stderr


@pytest.mark.slow
def test_embedded_run_gives_label_confidences_without_logits_all(sim, tmp_path: Path, db_rows) -> None:
    result = sim("run", "scenario=task_labels", "scenario.n_episodes=2", "scenario.annotators=2", "backend.n_ctx=1024", "runner.progress=false")
    assert result.returncode == 0, result.stderr
    db = tmp_path / "runs" / "sim.db"
    assert "logits_all: false" in db_rows(db, "SELECT config_yaml FROM runs")[0][0]
    metas = [json.loads(meta) for (meta,) in db_rows(db, "SELECT meta_json FROM episodes ORDER BY id")]
    answers = db_rows(db, "SELECT logprob FROM turns WHERE role = 'model_annotator' ORDER BY episode_id, idx")
    pairs = [(label, confidence) for meta in metas for label, confidence in zip(meta["model_labels"], meta["model_confidences"])]
    assert len(pairs) == len(answers) == 4 and any(label is not None for label, _ in pairs)
    for (label, confidence), (answer_logprob,) in zip(pairs, answers):
        assert answer_logprob is not None and answer_logprob <= 0
        assert (confidence is None) == (label is None)
        # The label's tokens are part of the answer: at least as probable as the whole answer, at most certain.
        assert confidence is None or math.exp(answer_logprob) - 1e-9 <= confidence <= 1


def test_compare_label_distributions_leave_out_labels_outside_the_scheme(store, item) -> None:
    from analyzers.task_labels import task_label_values
    from sim.summary import AnalyzerSummary
    from sim.compare import Group, ReportView, Selection

    for index, (model, human) in enumerate([([0, 1, 7], [0, 1]), ([1, 9, 1], [1, 1])]):
        store.add_imported_episode(item(model, human, id=f"e{index}", dataset="toy", item_id=f"i{index}"))
    store.add_imported_episode(item([1, 3, 2], [1], id="d0", dataset="declared", item_id="d0", label_scheme={"1": "low", "2": "high"}))
    selection = Selection([Group("toy", dataset="toy"), Group("declared", dataset="declared")], "dataset", "")
    values = task_label_values(ReportView(store, selection, AnalyzerSummary("task_labels", "4", 3, [])))
    # toy's scheme is what its humans used, {0, 1}: 7 and 9 are not labels; "declared" names its own scheme.
    assert values["toy"] == {"human": [0.0, 1.0, 1.0, 1.0], "model": [0.0, 1.0, 1.0, 1.0]}
    assert values["declared"] == {"human": [1.0], "model": [1.0, 2.0]}
