"""Read the verdict a judge's answer gives: an explicit verdict line first (the last one when there are several),
otherwise the last unambiguous statement of a verdict; None when the answer gives none (it is unanswered).

Never the first letter or word the answer meets: "Comparing Response A and Response B, B is better." is B, and
"No doubt about it: ..." is not a no."""

from __future__ import annotations

import re
from typing import Iterable, Optional

CHOICE_VERDICT = 'End your answer with one line: "Verdict: A", "Verdict: B" or "Verdict: tie".'
YES_NO_VERDICT = 'End your answer with one line: "Verdict: yes" or "Verdict: no".'

# Emphasis, code spans, headings and quote markers are formatting: "**Final answer:** B" is "Final answer: B".
MARKDOWN = re.compile(r"[*_`#>]+")
# "response b" means Response B; a lone lowercase "a" elsewhere is the article, so only a named option is raised.
NAMED_OPTION = re.compile(r"\b(response|output|assistant|option|candidate)\s+([\[(]?)([ab])\b", re.IGNORECASE)
# A clause: statements are judged within one, so that "If brevity matters, A is better" keeps its "if".
CLAUSE = re.compile(r"[^.;:!?\n]+|[.;:!?\n]")
BUT = re.compile(r"\bbut\b", re.IGNORECASE)

# Pieces of the choice patterns. The letters are capitals only ((?-i:...)): lowercase a is the article.
NOUN = r"(?:(?:response|output|assistant|option|candidate|answer)\s+)?"
LETTER = r"[\[(\"']*(?P<letter>(?-i:A|B))[\])\"']*"
TIE = r"[\[(\"']*(?P<tie>(?:an?\s+)?(?:tie|draw)|neither|both|equal)[\])\"']*"
# What may follow a letter that is an option: a capital A followed by another word ("A better answer is B",
# "A good response ...") is the article, so the next word must be one that continues a verdict.
AFTER_LETTER = r"(?=\s*(?:$|[^\w\s]|(?:is|was|wins|won|over|because|since|as|for|here|overall|by|which|due|and|than|in|with)\b))"
CHOICE = rf"(?:{NOUN}{LETTER}{AFTER_LETTER}|{TIE}(?=\s*(?:$|[^\w\s])))"
LABEL = r"(?:verdict|answer|choice|decision|judge?ment|winner|conclusion|preference|selection|pick)"

EXPLICIT_CHOICE = [
    # MT-Bench's format: [[A]], [[B]], and [[C]] for a tie.
    re.compile(r"\[\[\s*(?:(?P<letter>(?-i:A|B))|(?P<tie>C|tie))\s*\]\]", re.IGNORECASE),
    # A labeled verdict: "Verdict: B", "Final answer - Response B", "Answer:\nB".
    re.compile(rf"\b(?:final\s+)?{LABEL}\s*[:=\-–—]\s*{CHOICE}", re.IGNORECASE | re.MULTILINE),
    # A verdict sentence: "The better response is B", "A better answer is B", "My final verdict is A".
    re.compile(
        r"\b(?:better|best|stronger|superior|preferred|preferable|winning)\s+(?:response|answer|output|one|option|choice|reply)"
        rf"\s+(?:here\s+)?(?:is|would\s+be)\s*:?\s*{CHOICE}",
        re.IGNORECASE | re.MULTILINE,
    ),
    re.compile(rf"\b(?:my|the)\s+(?:final\s+)?{LABEL}\s+(?:is|would\s+be)\s*:?\s*{CHOICE}", re.IGNORECASE | re.MULTILINE),
    # A line that is nothing but a choice: a short judge answering "B" or "Response B."
    re.compile(rf"^\s*{CHOICE}\s*[.!]?\s*$", re.IGNORECASE | re.MULTILINE),
]

ADVERBS = r"(?:(?:clearly|slightly|much|far|significantly|somewhat|definitely|marginally|noticeably|overall|the|a|an|simply|still|also)\s+)*"
BETTER = (
    r"(?:better|superior|stronger|preferable|preferred|the\s+winner|more\s+(?:helpful|accurate|complete|informative|"
    r"relevant|useful|correct|appropriate|thorough|comprehensive))"
)
WORSE = r"(?:worse|inferior|weaker|less\s+(?:helpful|accurate|complete|informative|relevant|useful|correct|appropriate))"
STATED_CHOICE = [
    # "B is better", "Response A is clearly superior to Response B", "A would be preferable".
    (re.compile(rf"\b{NOUN}{LETTER}\s+(?:is|was|seems|appears|would\s+be)\s+{ADVERBS}{BETTER}\b", re.IGNORECASE), False),
    # "I prefer Response A", "I'd go with B over A", "I choose B", "I think B."
    (re.compile(
        rf"\b(?:prefer|choose|pick|select|go\s+with|vote\s+for|favou?r|recommend|i\s+think|i\s+believe|i\s+would\s+say|i'd\s+say)"
        rf"\s+{NOUN}{LETTER}{AFTER_LETTER}",
        re.IGNORECASE,
    ), False),
    # "Response B wins", "A outperforms B".
    (re.compile(rf"\b{NOUN}{LETTER}\s+(?:clearly\s+)?(?:wins|outperforms|comes\s+out\s+ahead|edges\s+out)\b", re.IGNORECASE), False),
    # "Response A is worse": the verdict is the other one.
    (re.compile(rf"\b{NOUN}{LETTER}\s+(?:is|was|seems|appears)\s+{ADVERBS}{WORSE}\b", re.IGNORECASE), True),
    # Ties: "Both are equally good", "it's a tie", "neither response is better", "I'd call it a tie".
    (re.compile(
        r"\b(?P<tie>(?:both|the\s+two)(?:\s+(?:responses|answers|outputs))?\s+(?:are|seem|appear)\s+(?:\w+\s+)?"
        r"(?:equally|equivalent|equal|comparable|the\s+same|on\s+par)"
        r"|(?:it'?s|it\s+is|this\s+is|that'?s|call\s+it|declare\s+it|be)\s+a\s+tie"
        r"|neither\s+(?:(?:response|one|answer|output)\s+)?(?:(?-i:A|B)\s+nor\s+(?:response\s+)?(?-i:A|B)\s+)?"
        r"is\s+(?:clearly\s+|really\s+)?better)\b",
        re.IGNORECASE,
    ), False),
]
# An answer that opens with its choice, "B. Response B translates the phrase.": the earliest statement of all.
OPENING_CHOICE = re.compile(rf"\s*{LETTER}\.(?=\s|$)")
# Words that make a statement no verdict: said conditionally ("if", "depending"), as a hedge ("could", "might"),
# or negated; and "A or B is better", which names both.
CONDITIONAL = re.compile(r"\b(?:if|unless|whether|depending)\b|\?", re.IGNORECASE)
HEDGED_BEFORE = re.compile(
    r"\b(?:not|never|cannot|could|might|may|neither|hard\s+to\s+say)\b|n't\b|\b(?-i:A|B)\s+(?:or|and|nor)\s+$", re.IGNORECASE
)

# "No doubt", "no longer": the word opens a phrase, not a verdict.
YES_NO = r"[\[(\"']*(?P<answer>yes|no)\b(?!\s+(?:doubt|question|matter|one|longer|more|less|need|way)\b)[\])\"']*"
EXPLICIT_YES_NO = [
    # [[yes]] in MT-Bench's bracket style.
    re.compile(r"\[\[\s*(?P<answer>yes|no)\s*\]\]", re.IGNORECASE),
    # "Verdict: yes", "Final answer: No".
    re.compile(rf"\b(?:final\s+)?(?:verdict|answer|decision|judge?ment|conclusion)\s*[:=\-–—]\s*{YES_NO}", re.IGNORECASE),
    # "Therefore, the answer is yes.", "My verdict would be no".
    re.compile(rf"\b(?:my|the)\s+(?:final\s+)?(?:verdict|answer|decision|judge?ment)\s+(?:is|would\s+be)\s*:?\s*{YES_NO}", re.IGNORECASE),
    # A line that is nothing but yes or no.
    re.compile(rf"^\s*{YES_NO}\s*[.!]?\s*$", re.IGNORECASE | re.MULTILINE),
]
# A clause that opens with yes or no followed by punctuation or nothing ("Yes, it digresses", "No."), after an
# optional lead-in ("I would say no"): "No doubt about it" and "Yes and no" are no verdicts.
STATED_YES_NO = re.compile(
    r"^\s*(?:(?:i\s+would\s+say|i'd\s+say|i\s+say|i\s+think|i\s+believe|i\s+would\s+answer|i'd\s+answer|so|thus|hence|"
    r"therefore|overall|in\s+short|in\s+summary|in\s+conclusion|well|then|definitely|clearly|certainly)\s*,?\s+)?"
    rf"{YES_NO}\s*(?:[,.!;:—–]|$)",
    re.IGNORECASE,
)

CATEGORY_NUMBER = r"[\[(]*(?P<number>\d+)[\])]*"
# A labeled category: "Category 4", "Category: [4]", "the answer is [2]", "Verdict: 3".
LABELED_CATEGORY = [
    re.compile(rf"\b(?:category|class|label)\s*(?:number|no\.?|#)?\s*[:=\-–—]?\s*{CATEGORY_NUMBER}", re.IGNORECASE),
    re.compile(rf"\b(?:final\s+)?(?:verdict|answer)\s*[:=\-–—]\s*{CATEGORY_NUMBER}", re.IGNORECASE),
    re.compile(rf"\b(?:the|my)\s+(?:final\s+)?(?:answer|verdict|category)\s+(?:is|would\s+be)\s*:?\s*{CATEGORY_NUMBER}", re.IGNORECASE),
    re.compile(rf"^\s*{CATEGORY_NUMBER}\s*[.!]?\s*$", re.MULTILINE),
]
# Unlabeled forms count only when they name one category: an answer that lists several ("[1] ... [2] ...",
# a numbered list) is echoing the scheme, not choosing.
UNLABELED_CATEGORY = [
    re.compile(r"\[(?P<number>\d+)\]"),
    re.compile(r"^\s*(?P<number>\d+)\s*[.):\-–]\s+\S", re.MULTILINE),
]

# "It is not category 2", "rather than [3]": a category named to rule it out.
RULED_OUT = re.compile(r"\b(?:not|unlike|rather\s+than|instead\s+of|except)\b|n't\b", re.IGNORECASE)


def clause_before(text: str, end: int) -> str:
    """The part of the clause that ends at `end`, from the last sentence or clause break before it."""
    start = max(text.rfind(mark, 0, end) for mark in ".;:!?\n")
    return text[start + 1 : end]


def normalized(text: str, instruction: str) -> str:
    """The answer without markdown, the echoed verdict instruction, or lowercase option letters."""
    plain = MARKDOWN.sub("", text.replace(instruction, " "))
    return NAMED_OPTION.sub(lambda match: f"{match.group(1)} {match.group(2)}{match.group(3).upper()}", plain)


def last_explicit(patterns: Iterable[re.Pattern[str]], text: str, group: str) -> Optional[re.Match[str]]:
    """The explicit verdict that ends last in the answer, over all patterns."""
    found = [match for pattern in patterns for match in pattern.finditer(text) if match.group(group) or match.groupdict().get("tie")]
    return max(found, key=lambda match: (match.end(), match.start()), default=None)


def clauses(text: str) -> list[str]:
    """The answer's clauses, with the punctuation that ends each kept on it (so a question keeps its "?")."""
    pieces: list[str] = []
    for piece in CLAUSE.findall(text):
        if pieces and piece in ".;:!?\n":
            pieces[-1] += piece
        else:
            pieces.extend(BUT.split(piece))
    return pieces


def choice_of(match: re.Match[str], inverted: bool = False) -> str:
    """A, B or tie from a match of a choice pattern; `inverted` where the match names the worse option."""
    if match.groupdict().get("tie"):
        return "tie"
    letter = match.group("letter")
    return {"A": "B", "B": "A"}[letter] if inverted else letter


def read_choice(text: str) -> Optional[str]:
    """A, B or tie: the pairwise verdict an answer gives; None when it gives none (unanswered)."""
    plain = normalized(text, CHOICE_VERDICT)
    explicit = last_explicit(EXPLICIT_CHOICE, plain, "letter")
    if explicit is not None:
        return choice_of(explicit)
    opening = OPENING_CHOICE.match(plain)
    stated = opening.group("letter") if opening else None
    for clause in clauses(plain):
        if CONDITIONAL.search(clause):
            continue
        found = [
            (match.start(), choice_of(match, inverted))
            for pattern, inverted in STATED_CHOICE
            for match in pattern.finditer(clause)
            if not HEDGED_BEFORE.search(clause[: match.start()])
        ]
        if found:
            stated = max(found)[1]
    return stated


def read_yes_no(text: str) -> Optional[bool]:
    """True for yes, False for no: the verdict a yes/no judge's whole answer gives; None when it gives none."""
    plain = normalized(text, YES_NO_VERDICT)
    explicit = last_explicit(EXPLICIT_YES_NO, plain, "answer")
    if explicit is not None:
        return explicit.group("answer").lower() == "yes"
    stated = [match.group("answer").lower() for clause in clauses(plain) if (match := STATED_YES_NO.match(clause))]
    return stated[-1] == "yes" if stated else None


def read_category(text: str, highest: int) -> Optional[int]:
    """A category number from 1 to `highest`: the last labeled one, else the only one the answer names; None
    when it names none, or several without a label."""
    plain = MARKDOWN.sub("", text)

    def in_scheme(patterns: list[re.Pattern[str]]) -> list[re.Match[str]]:
        matches = [match for pattern in patterns for match in pattern.finditer(plain) if 1 <= int(match.group("number")) <= highest]
        return sorted(matches, key=lambda match: match.end())

    labeled = [match for match in in_scheme(LABELED_CATEGORY) if not RULED_OUT.search(clause_before(plain, match.start()))]
    if labeled:
        return int(labeled[-1].group("number"))
    named = {int(match.group("number")) for match in in_scheme(UNLABELED_CATEGORY)}
    return named.pop() if len(named) == 1 else None
