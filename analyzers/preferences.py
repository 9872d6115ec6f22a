"""Preferences: agreement of LLM judges with human judges, position bias, and coupling of choices with surface
features (length, overlap with the prompt or reference, style lexicons) — per judge, human and LLM alike.

Human ceiling: where several people judged the same pair, `human_human_agreement` is the chance that two distinct
humans, drawn at random for a pair drawn at random, make the same choice (as MT-Bench's agreement of Zheng et al.
2023): per pair, the share of its pairs of distinct humans who agree, then the mean over pairs. The MT-Bench
importer keeps one episode per human judgment (the CSV's rows), so a pair is the episodes sharing question, turn
and the two models (`pair_of`), and humans are told apart by `meta.human_judge`. Beside it,
`judge_human_agreement[JUDGE]` is the LLM judge's agreement with those same humans on the same pairs, each pair
weighted once, so the two differ only in who is compared. Both also without ties (pairs of choices where neither
is a tie). The unit is the pair: the intervals resample pairs, never single judgments.

Judge-bias audit (`BIAS_AUDIT`, one row per judge and measure in `sim compare`), from every ask the scenario stored
(`repeated_judgments`: each order, `scenario.repeats` times; None where the answer gave no verdict):
`unanswered_rate[JUDGE]` (share of the pair's asks without a verdict; denominator: the pairs asked),
`position_consistent[JUDGE]` (share of repeats whose two orders agree), `first_position_wins[JUDGE]` (preference
fairness: among repeats whose orders disagree, the share of decisive choices that went to the output shown first;
0.5 is fair), `repetition_agreement[JUDGE]` (share of pairs of repeated asks of one order that agree),
`picks_longer[JUDGE]` and `length_log_odds[JUDGE]` (the coefficient of a logistic regression of choosing output 1
over output 2, ties left out, on the length difference in hundreds of words)."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Optional, Sequence

import numpy as np

from analyzers.base import Analyzer, Ceiling, ReportFigures, Scored, MetricInfo, analyzers
from analyzers.text import overlap, words
from sim.errors import SimError
from sim.records import Annotation, Episode
from sim.stats import Estimate, compare_paired, correlation, estimate, estimate_statistic

if TYPE_CHECKING:
    from sim.summary import AnalyzerSummary, Metric
    from sim.compare import ReportView
    from sim.figures import Chart
    from sim.report import Tabular

# A choice as a number, so that it can be correlated with a feature difference (output_1 minus output_2).
CHOICE_CODES = {"output_1": 1.0, "output_2": -1.0, "tie": 0.0}
HUMAN = "human"
LEXICON_SUFFIX = "_features.tsv"
# The choice that goes to the output shown first, in each order a pair is shown in.
FIRST_SHOWN = {"as_shown": "output_1", "swapped": "output_2"}
# The length coefficient is per this many words of difference: per word it would read 0.00x.
LENGTH_UNIT = 100


@dataclass(frozen=True)
class AuditMeasure:
    """One measure of the judge-bias audit: what it is called, its metric (`{judge}` stands for the judge), and the
    value a judge free of that bias would have (None where there is no such value)."""

    label: str
    metric: str
    unbiased: Optional[float]


BIAS_AUDIT = (
    AuditMeasure("unanswered rate", "unanswered_rate[{judge}]", 0.0),
    AuditMeasure("position consistency", "position_consistent[{judge}]", 1.0),
    AuditMeasure("preference fairness", "first_position_wins[{judge}]", 0.5),
    AuditMeasure("repetition stability", "repetition_agreement[{judge}]", 1.0),
    AuditMeasure("P(prefers longer)", "picks_longer[{judge}]", 0.5),
    AuditMeasure(f"length log-odds per {LENGTH_UNIT} words", "length_log_odds[{judge}]", 0.0),
    AuditMeasure("agreement with humans", "agrees_with_human[{judge}]", None),
    AuditMeasure("agreement with humans, ties left out", "agrees_without_ties[{judge}]", None),
    AuditMeasure("Cohen's kappa with humans", "kappa[{judge}]", None),
)


def load_lexicons(folder: Path) -> dict[str, dict[str, float]]:
    """Hummingbird-style lexicons: `<style>_features.tsv` files with `word` and `avg_attr` columns."""
    if not folder.is_dir():
        raise SimError(f"analyzer.preferences.lexicons: {folder} is not a folder")
    lexicons: dict[str, dict[str, float]] = {}
    for path in sorted(folder.glob(f"*{LEXICON_SUFFIX}")):
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter="\t")
            if not {"word", "avg_attr"} <= set(reader.fieldnames or []):
                raise SimError(f"{path}: a lexicon needs the columns word and avg_attr")
            try:
                lexicons[path.name.removesuffix(LEXICON_SUFFIX)] = {row["word"].lower(): float(row["avg_attr"]) for row in reader}
            except ValueError as exc:
                raise SimError(f"{path}:{reader.line_num}: avg_attr is not a number ({exc})") from None
    if not lexicons:
        raise SimError(f"analyzer.preferences.lexicons: {folder} holds no *{LEXICON_SUFFIX} files")
    return lexicons


def lexicon_score(tokens: list[str], lexicon: dict[str, float]) -> float:
    """Mean attribution of the tokens the lexicon knows (0 when it knows none)."""
    scores = [lexicon[token] for token in tokens if token in lexicon]
    return float(np.mean(scores)) if scores else 0.0


def judge_choices(episode: Episode) -> dict[str, str]:
    """Each judge's pairwise choice (output_1, output_2 or tie); unparsed and non-pairwise judgments left out."""
    return {judge: choice for judge, choice in (episode.meta.get("judgments") or {}).items() if choice in CHOICE_CODES}


def asks_of(episode: Episode) -> dict[str, dict[str, list[Optional[str]]]]:
    """Every ask of each LLM judge by order (`as_shown`, `swapped`), None where the answer gave no verdict: the
    scenario's `repeated_judgments`, or, where a store has none (imported judgments, older runs), the one choice
    of each order it holds."""
    repeated = episode.meta.get("repeated_judgments")
    if repeated:
        return repeated
    swapped = episode.meta.get("swapped_judgments") or {}
    return {
        judge: {"as_shown": [choice], **({"swapped": [swapped[judge]]} if judge in swapped else {})}
        for judge, choice in (episode.meta.get("judgments") or {}).items()
        if judge != HUMAN and (choice is None or choice in CHOICE_CODES)  # not rankings
    }


def answered_orders(asks: dict[str, list[Optional[str]]]) -> list[tuple[str, str]]:
    """(as shown, swapped) choices of the repeats where both orders were answered."""
    return [(a, b) for a, b in zip(asks.get("as_shown", []), asks.get("swapped", [])) if a is not None and b is not None]


def first_position_wins(asks: dict[str, list[Optional[str]]]) -> Optional[float]:
    """Among the repeats whose two answered orders disagree, the share of their decisive (non-tie) choices that
    went to the output shown first; None when there is none."""
    firsts = [
        choice == FIRST_SHOWN[order]
        for shown, swapped in answered_orders(asks) if shown != swapped
        for order, choice in (("as_shown", shown), ("swapped", swapped)) if choice != "tie"
    ]
    return float(np.mean(firsts)) if firsts else None


def repetition_agreement(asks: dict[str, list[Optional[str]]]) -> Optional[float]:
    """The share of pairs of repeated asks of one order, both answered, that agree; None without repeats."""
    agree = [a == b for choices in asks.values() for a, b in combinations([c for c in choices if c is not None], 2)]
    return float(np.mean(agree)) if agree else None


def pair_of(episode: Episode) -> str:
    """The compared pair an episode holds a judgment of: question, turn and models for MT-Bench rows (one row per
    human judgment), the episode itself elsewhere."""
    if episode.meta.get("question_id") is None:
        return episode.id
    models = [turn.speaker for turn in episode.turns if turn.role in ("output_1", "output_2")]
    return json.dumps([episode.meta["question_id"], episode.meta.get("turn"), *models])


def human_of(episode: Episode) -> str:
    """Who the human judge was; without a recorded identity every judgment is taken as a different person."""
    return str(episode.meta.get("human_judge") or episode.id)


def panels(episodes: Iterable[Episode]) -> list[list[Episode]]:
    """The human-judged episodes of each pair that at least two distinct humans judged."""
    by_pair: dict[str, list[Episode]] = defaultdict(list)
    for episode in episodes:
        if HUMAN in judge_choices(episode):
            by_pair[pair_of(episode)].append(episode)
    return [panel for panel in by_pair.values() if len({human_of(e) for e in panel}) >= 2]


def agreement(pairs: list[tuple[str, str]], without_ties: bool) -> Optional[float]:
    """Share of (choice, choice) pairs that agree, ties left out if asked; None when no pair is left."""
    kept = [first == second for first, second in pairs if not (without_ties and "tie" in (first, second))]
    return float(np.mean(kept)) if kept else None


def human_human_agreement(panel: list[Episode], without_ties: bool) -> Optional[float]:
    """Agreement of the pairs of distinct humans who judged one pair."""
    pairs = [(judge_choices(a)[HUMAN], judge_choices(b)[HUMAN]) for a, b in combinations(panel, 2) if human_of(a) != human_of(b)]
    return agreement(pairs, without_ties)


def judge_human_agreement(panel: list[Episode], judge: str, without_ties: bool) -> Optional[float]:
    """Agreement of one LLM judge with each human who judged one pair."""
    pairs = [(choices[judge], choices[HUMAN]) for choices in map(judge_choices, panel) if judge in choices]
    return agreement(pairs, without_ties)


def ceiling_metrics(episodes: list[Episode], judges: list[str]) -> dict[str, Estimate]:
    """Human-human agreement over pairs judged by several people, and each LLM judge's agreement with the same people."""
    found = panels(episodes)
    result: dict[str, Estimate] = {}
    for suffix, without_ties in (("", False), ("_without_ties", True)):
        per_pair = {f"human_human_agreement{suffix}": [human_human_agreement(panel, without_ties) for panel in found]}
        for judge in judges:
            per_pair[f"judge_human_agreement{suffix}[{judge}]"] = [judge_human_agreement(panel, judge, without_ties) for panel in found]
        for name, values in per_pair.items():
            defined = [value for value in values if value is not None]
            if defined:
                result[name] = estimate(defined)  # one value per pair: the pair is the unit resampled
    return result


@dataclass
class PreferencesConfig:
    """Schema of `analyzer.preferences`: `lexicons` is a folder of Hummingbird `<style>_features.tsv` files
    (null: no lexicon features). `r[JUDGE, FEATURE]` is Pearson's r between the judge's choice coded +1 (output 1),
    0 (tie), -1 (output 2) and the feature of output 1 minus that of output 2."""

    _target_: str = "analyzers.preferences.PreferencesAnalyzer"
    lexicons: Optional[str] = None


@analyzers.register("preferences", config=PreferencesConfig)
class PreferencesAnalyzer(Analyzer):
    """Per pair: each judge's choice, agreement with the human judge, the judge-bias audit values of its asks, and
    the two outputs' differences in length, overlap and lexicon scores; per group: Cohen's kappa, the length
    log-odds and choice-feature correlations (`BIAS_AUDIT` names the audit's measures)."""

    version = "2"
    metrics = {
        "choice[JUDGE]": MetricInfo("JUDGE's choice: +1 output 1, 0 tie, -1 output 2", "episode", "choice"),
        "agrees_with_human[JUDGE]": MetricInfo("1 where JUDGE's choice equals the human's (3-way, ties included)", "episode", "binary", "lower"),
        "agrees_without_ties[JUDGE]": MetricInfo("1 where JUDGE's choice equals the human's, where neither called a tie", "episode", "binary", "lower"),
        "picks_longer[JUDGE]": MetricInfo("1 where JUDGE chose the output with more words", "episode", "binary", "higher"),
        "position_consistent[JUDGE]": MetricInfo("share of JUDGE's asks in both orders that chose the same output", "episode", "proportion", "lower"),
        "unanswered_rate[JUDGE]": MetricInfo("share of JUDGE's asks whose answer named no choice", "episode", "proportion"),
        "first_position_wins[JUDGE]": MetricInfo("share of JUDGE's decided asks won by the output shown first (0.5: fair)", "episode", "proportion"),
        "repetition_agreement[JUDGE]": MetricInfo("share of JUDGE's repeated asks that agree", "episode", "proportion", "lower"),
        "length_diff": MetricInfo("words of output 1 - words of output 2", "episode", "score"),
        "overlap_diff": MetricInfo("word-set Jaccard overlap with the reference or prompt, output 1 - output 2", "episode", "score"),
        "lexicon_diff[STYLE]": MetricInfo("lexicon score of output 1 - output 2 for the Hummingbird style STYLE", "episode", "score"),
        "kappa[JUDGE]": MetricInfo("Cohen's kappa of JUDGE's choices against the human's", "corpus", "score", "lower"),
        "r[JUDGE, FEATURE]": MetricInfo("Pearson r over compared pairs between JUDGE's choice and FEATURE (a *_diff)", "corpus", "score"),
        "picks_longer_minus_human[JUDGE]": MetricInfo("how much more often JUDGE than the humans takes the longer output, pair by pair", "corpus", "score", "higher"),
        "length_log_odds[JUDGE]": MetricInfo("log-odds of JUDGE choosing output 1 per 100 words it is longer (ties left out)", "corpus", "score", "higher"),
        "human_human_agreement": MetricInfo("ceiling: chance that two people who judged one pair agree (3-way)", "corpus", "proportion"),
        "human_human_agreement_without_ties": MetricInfo("ceiling: chance that two people who judged one pair agree, ties left out", "corpus", "proportion"),
        "judge_human_agreement[JUDGE]": MetricInfo("JUDGE's agreement with the people who judged the same pairs (3-way)", "corpus", "proportion", "lower"),
        "judge_human_agreement_without_ties[JUDGE]": MetricInfo("JUDGE's agreement with the same people, ties left out", "corpus", "proportion", "lower"),
    }
    uses_corpus = True
    ceilings = (
        Ceiling("judge_human_agreement[*]", "human_human_agreement"),
        Ceiling("judge_human_agreement_without_ties[*]", "human_human_agreement_without_ties"),
    )

    def __init__(self, lexicons: Optional[str]) -> None:
        self.lexicons = load_lexicons(Path(lexicons).expanduser()) if lexicons else {}

    def cluster_of(self, episode: Episode) -> str:
        """The compared pair: MT-Bench rows of one pair (one per human judgment) share the LLM judge's choice."""
        return pair_of(episode)

    def applies_to(self, episode: Episode) -> bool:
        """Pairs of two outputs that a judge chose between or was asked about."""
        roles = {turn.role for turn in episode.turns}
        return (episode.kind == "preference" and {"output_1", "output_2"} <= roles and "output_3" not in roles
                and bool(judge_choices(episode) or asks_of(episode)))

    def features(self, episode: Episode) -> dict[str, float]:
        """Output 1 minus output 2: words, overlap with the reference (or prompt), and each lexicon's score."""
        first, second = episode.content_of("output_1") or "", episode.content_of("output_2") or ""
        first_words, second_words = words(first), words(second)
        values = {"length_diff": float(len(first_words) - len(second_words))}
        anchor = episode.meta.get("reference") or episode.content_of("prompt")
        if anchor:
            values["overlap_diff"] = overlap(first, anchor) - overlap(second, anchor)
        for style, lexicon in self.lexicons.items():
            values[f"lexicon_diff[{style}]"] = lexicon_score(first_words, lexicon) - lexicon_score(second_words, lexicon)
        return values

    def annotate(self, episode: Episode) -> list[Annotation]:
        """Surface-feature differences; per LLM judge its asks' audit values (unanswered share, position
        consistency, first-shown wins, repetition agreement); per judge its choice, whether it took the longer
        output, and whether it agrees with the human judge (3-way, and where neither called a tie)."""
        features = self.features(episode)
        values = dict(features)
        choices = judge_choices(episode)
        human = choices.get(HUMAN)
        for judge, asks in asks_of(episode).items():
            every = [choice for choices_of_order in asks.values() for choice in choices_of_order]
            values[f"unanswered_rate[{judge}]"] = sum(choice is None for choice in every) / len(every)
            both = answered_orders(asks)
            if both:
                values[f"position_consistent[{judge}]"] = float(np.mean([a == b for a, b in both]))
            for name, value in (("first_position_wins", first_position_wins(asks)), ("repetition_agreement", repetition_agreement(asks))):
                if value is not None:
                    values[f"{name}[{judge}]"] = value
        for judge, choice in choices.items():
            values[f"choice[{judge}]"] = CHOICE_CODES[choice]
            if choice != "tie" and features["length_diff"] != 0:
                values[f"picks_longer[{judge}]"] = float((choice == "output_1") == (features["length_diff"] > 0))
            if judge != HUMAN and human is not None:
                values[f"agrees_with_human[{judge}]"] = float(choice == human)
                if "tie" not in (choice, human):
                    values[f"agrees_without_ties[{judge}]"] = float(choice == human)
        return [Annotation(episode.id, name, value) for name, value in values.items()]

    def corpus_metrics(self, scored: list[Scored]) -> dict[str, Estimate]:
        """Per judge: Cohen's kappa with the human judge, its length preference against the people's (paired), its
        length log-odds (`length_log_odds`) and Pearson's r of its choices with each feature difference, all with
        compared pairs as units (`cluster_of`); human-human agreement and the LLM judges' agreement with the same
        humans where pairs have several humans."""
        rows = [{a.name: a.value for a in annotations} for _, annotations in scored]
        units = [self.cluster_of(episode) for episode, _ in scored]
        judges = sorted({name[len("choice["):-1] for row in rows for name in row if name.startswith("choice[")})
        features = sorted({name for row in rows for name in row if name.endswith("_diff") or name.startswith("lexicon_diff[")})
        result: dict[str, Estimate] = {}
        for judge in judges:
            if judge != HUMAN:
                both = [(row[f"choice[{HUMAN}]"], row[f"choice[{judge}]"], unit) for row, unit in zip(rows, units)
                        if f"choice[{HUMAN}]" in row and f"choice[{judge}]" in row]
                if both:
                    pairs = np.array([(human, llm) for human, llm, _ in both])
                    result[f"kappa[{judge}]"] = estimate_statistic(
                        len(pairs), lambda idx, p=pairs: kappa(p[idx]), clusters=[unit for _, _, unit in both]
                    )
                paired = length_preference_against_humans(scored, judge)
                if paired is not None:
                    result[f"picks_longer_minus_human[{judge}]"] = paired
            length = length_log_odds(rows, units, judge)
            if length is not None:
                result[f"length_log_odds[{judge}]"] = length
            for feature in features:
                per_unit = unit_means(rows, units, feature, f"choice[{judge}]")
                if len(per_unit) >= 3:
                    xs, ys = zip(*per_unit)
                    result[f"r[{judge}, {feature}]"] = correlation(xs, ys)
        result.update(ceiling_metrics([episode for episode, _ in scored], [judge for judge in judges if judge != HUMAN]))
        return result

    @classmethod
    def report_figures(cls, view: "ReportView") -> ReportFigures:
        """The judge-bias audit as a table and a figure, where there are preference judgments."""
        table = judge_bias_table(view.summary)
        return ReportFigures(tables=[table] if table is not None else [], charts=[judge_bias_chart(view.summary)])


def unit_means(rows: list[dict[str, float]], units: list[str], first: str, second: str) -> list[tuple[float, float]]:
    """Per unit (compared pair) that has both values, their means over the unit's rows: a correlation over pairs,
    since MT-Bench rows of one pair repeat its outputs and the LLM judge's choice."""
    by_unit: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for row, unit in zip(rows, units):
        if first in row and second in row:
            by_unit[unit].append((row[first], row[second]))
    return [(float(np.mean([a for a, _ in values])), float(np.mean([b for _, b in values]))) for values in by_unit.values()]


def length_preference_against_humans(scored: list[Scored], judge: str) -> Optional[Estimate]:
    """How much more often the LLM judge than the human judges takes the longer output, on the same pairs: a paired
    comparison (`compare_paired`) with the compared pair as the unit, each pair's human value the mean over the
    people who judged it (MT-Bench rows of one pair share the LLM judge's choice, so rows are not independent)."""
    by_pair: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for episode, annotations in scored:
        values = {a.name: a.value for a in annotations}
        if f"picks_longer[{judge}]" in values and f"picks_longer[{HUMAN}]" in values:
            by_pair[pair_of(episode)].append((values[f"picks_longer[{HUMAN}]"], values[f"picks_longer[{judge}]"]))
    if len(by_pair) < 2:
        return None
    humans, llm = zip(*((float(np.mean([h for h, _ in rows])), float(np.mean([j for _, j in rows]))) for rows in by_pair.values()))
    difference = compare_paired(humans, llm)
    return Estimate(len(by_pair), difference.difference, difference.ci_low, difference.ci_high, difference.p_value,
                    interval=f"{difference.interval}, {difference.test}")


def length_log_odds(rows: list[dict[str, float]], units: Sequence[str], judge: str) -> Optional[Estimate]:
    """The length-controlled preference: the slope of a logistic regression of choosing output 1 over output 2
    (ties left out) on output 1's length minus output 2's in hundreds of words, with a bootstrap interval that
    resamples compared pairs (`units`); None with fewer than three decisive choices."""
    kept = [(row["length_diff"] / LENGTH_UNIT, row[f"choice[{judge}]"] > 0, unit) for row, unit in zip(rows, units)
            if row.get(f"choice[{judge}]", 0.0) != 0.0]
    if len(kept) < 3:
        return None
    lengths, chose_first, clusters = zip(*kept)
    x, y = np.array(lengths), np.array(chose_first)
    return estimate_statistic(len(kept), lambda idx: length_slope(x[idx], y[idx]), clusters=list(clusters))


def length_slope(lengths: np.ndarray, chose_first: np.ndarray) -> float:
    """The logistic-regression slope of `chose_first` on `lengths` (statsmodels Logit); nan where it is unbounded:
    one outcome only, or lengths that separate the outcomes (a judge that always takes the longer output has no
    finite maximum-likelihood slope)."""
    from statsmodels.discrete.discrete_model import Logit  # loaded only where judges are compared

    if chose_first.all() or not chose_first.any():
        return float("nan")
    first, second = lengths[chose_first], lengths[~chose_first]
    if first.min() >= second.max() or second.min() >= first.max():
        return float("nan")
    fit = Logit(chose_first.astype(float), np.column_stack([np.ones_like(lengths), lengths])).fit(disp=0)
    return float(fit.params[1])


def kappa(pairs: np.ndarray) -> float:
    """Cohen's kappa of two judges' coded choices; nan when it is undefined (one category only)."""
    from sklearn.metrics import cohen_kappa_score  # loaded only where judges are compared (half a second)

    if len(np.unique(pairs)) < 2:
        return float("nan")
    return float(cohen_kappa_score(pairs[:, 0], pairs[:, 1]))


def bias_audit(summary: "AnalyzerSummary") -> list[tuple[str, str, AuditMeasure, "Metric"]]:
    """(group, judge, measure, metric) of every judge-bias audit value of a preferences summary, by group, then
    judge, then measure in BIAS_AUDIT order."""
    by_name = {(metric.group, metric.name): metric for metric in summary.metrics}
    groups = list(dict.fromkeys(metric.group for metric in summary.metrics))
    judges = sorted({
        name[len(prefix) : -1]
        for _, name in by_name
        for prefix in (measure.metric.split("{judge}")[0] for measure in BIAS_AUDIT)
        if name.startswith(prefix) and name.endswith("]")
    })
    return [
        (group, judge, measure, by_name[(group, measure.metric.format(judge=judge))])
        for group in groups for judge in judges for measure in BIAS_AUDIT
        if (group, measure.metric.format(judge=judge)) in by_name
    ]


def judge_bias_table(summary: "AnalyzerSummary") -> Optional["Tabular"]:
    """The judge-bias audit as one table: a row per group, judge and measure with its value, 95% CI, n and how the
    interval was made (every interval resamples compared pairs); None without preference judgments."""
    # Imported here: sim.report imports sim.analysis, which imports every analyzer.
    from sim.report import Tabular, interval, metric_size

    rows = [
        [group, judge, measure.label, f"{metric.mean:.3f}{interval(metric.ci_low, metric.ci_high)}", metric_size(metric),
         metric.interval, "" if measure.unbiased is None else f"{measure.unbiased:g}"]
        for group, judge, measure, metric in bias_audit(summary)
    ]
    columns = ["group", "judge", "measure", "value [95% CI]", "n", "interval", "unbiased judge"]
    return Tabular(f"{summary.analyzer}: judge-bias audit", columns, rows) if rows else None


def judge_bias_chart(summary: "AnalyzerSummary") -> Optional["Chart"]:
    """A panel per audit measure, a bar per judge (and group, where there are several) with its 95% CI, and a
    dotted line at what an unbiased judge would score."""
    # Imported here: the figures import sim.analysis, which imports every analyzer.
    from sim.figures import metric_bars

    audit = bias_audit(summary)
    several_groups = len({group for group, _, _, _ in audit}) > 1
    bars = [
        replace(metric, name=measure.label, group=f"{judge} / {group}" if several_groups else judge)
        for group, judge, measure, metric in audit
    ]
    return metric_bars(
        f"{summary.analyzer}_judge_bias", "Judge-bias audit per judge",
        "Per judge: the share of asks without a verdict, position consistency (both orders agree), preference"
        " fairness (first-shown wins among inconsistent pairs; 0.5 is fair), repetition stability, P(prefers"
        " longer), the length log-odds of a logistic regression of the choice on the length difference, and"
        " agreement and Cohen's kappa with humans; bars are 95% CIs over compared pairs, dotted lines what an"
        " unbiased judge would score.",
        bars, [measure.label for measure in BIAS_AUDIT],
        references={measure.label: measure.unbiased for measure in BIAS_AUDIT if measure.unbiased is not None},
    )
