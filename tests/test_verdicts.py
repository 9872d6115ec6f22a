"""The verdict reader on realistic judge answers: the verdict an answer gives, never the first letter or word it meets."""

from typing import Optional

import pytest

from agents.verdicts import CHOICE_VERDICT, YES_NO_VERDICT, read_category, read_choice, read_yes_no

PAIRWISE = [
    # Explicit verdict lines.
    ("Response A is more detailed, but Response B answers the question directly.\n\nVerdict: B", "B"),
    ("Verdict: A", "A"),
    ("Both responses are grammatical. A gives steps; B gives a fact that does not answer the question.\nVerdict: A", "A"),
    ("Comparing the two, Response A has a factual error about boiling time.\n\nFinal verdict: [[B]]", "B"),
    ("After careful consideration of helpfulness, relevance and accuracy, my final verdict is: [[A]]", "A"),
    ("**Evaluation**\n\n- Response A: accurate, concise.\n- Response B: accurate, adds useful context.\n\n**Final answer:** B", "B"),
    ("## Analysis\nResponse B is shorter. Response A covers edge cases.\n\n## Verdict\n**A**", "A"),
    ("Answer: B", "B"),
    ("Answer:\nResponse B, because it actually translates the phrase into French.", "B"),
    ("The better response is B. It names a prime greater than 10 and explains why.", "B"),
    ("Response A repeats the question. The better answer here is Response B.", "B"),
    ("A better answer is B: it is correct and complete.", "B"),
    ("A good response should answer the question directly. A better answer is B.", "B"),
    ("[[A]]", "A"),
    ("[[B]]", "B"),
    ("Both outputs are correct primes, so neither is preferable.\n\n[[C]]", "tie"),
    ("Verdict: tie", "tie"),
    ("Both answers name a correct prime number. Verdict: Tie.", "tie"),
    ("I first leaned towards Response A.\nVerdict: A\n\nOn reflection, A misstates the time.\nVerdict: B", "B"),
    ("Winner: Response A", "A"),
    ("My choice is B.", "B"),
    ("B", "B"),
    ("Response A.", "A"),
    ("tie", "tie"),
    ("response b", "B"),
    ("Verdict: (B)", "B"),
    # Statements without a verdict line: the last unambiguous one.
    ("Comparing Response A and Response B, B is better.", "B"),
    ("Response A is better than Response B.", "A"),
    ("Response B is better than Response A because it gives a complete procedure.", "B"),
    ("I prefer Response A. It is concise and correct, while B is off topic.", "A"),
    ("Response A mentions protein, which is irrelevant. Response B explains the method. Overall, B is clearly better.", "B"),
    ("Response B is somewhat vague, and Response A is more helpful.", "A"),
    ("Response A is worse than Response B: it does not answer the question.", "B"),
    ("A has more words but B wins on accuracy.", "B"),
    ("Response A is better in style, but Response B is better overall.", "B"),
    ("I'd go with B over A, since it is correct.", "B"),
    ("Both are equally good: each names a correct prime.", "tie"),
    ("Both responses are equally helpful and accurate. It's a tie.", "tie"),
    ("Neither response is better; they say the same thing in different words.", "tie"),
    ("response a is better because it actually answers.", "A"),
    ("Response A provides a complete answer. Response B is incorrect. Therefore, Response A is the better response.", "A"),
    ("Overall, I would choose Response B.", "B"),
    ("B. Response B directly translates the phrase, while Response A gives Spanish.", "B"),
    ("Output (a) is better: it answers the question that was asked.", "A"),
    ("Neither A nor B is better; both name a correct prime.", "tie"),
    # No verdict: hedges, refusals, answers naming both options without concluding, questions.
    ("It could be A or B, depending on what the user wants.", None),
    ("If you value brevity, A is better; if you value detail, B is better.", None),
    ("I'm sorry, but I can't determine which response is better without more context.", None),
    ("As an AI, I do not have personal preferences between Response A and Response B.", None),
    ("Response A is concise. Response B is detailed. Both have merits.", None),
    ("Is A better than B? That depends on the reader.", None),
    ("Response A says Gracias, which is Spanish. Response B says Merci.", None),
    ("A or B is better, it is hard to say.", None),
    ("Response A. Concise, one sentence.\nResponse B. Detailed, three steps.", None),
    ("I don't think A is better.", None),
    ("", None),
    # The verdict instruction echoed back is not a verdict.
    (f"Sure. {CHOICE_VERDICT}", None),
]

YES_NO = [
    ("Yes.", True),
    ("No.", False),
    ("Yes, the conversation moves from planning the trip to discussing football.", True),
    ("No, both participants stay on the task of writing the poem throughout.", False),
    ("The assistants discuss the task, then drift into unrelated jokes.\n\nVerdict: yes", True),
    ("They remain on topic the whole time.\nVerdict: No", False),
    ("**Final answer:** Yes", True),
    ("Let me look at each turn. Turn 3 changes the subject to cooking. Therefore, the answer is yes.", True),
    ("No doubt about it: the conversation digresses.", None),
    ("No doubt about it: yes, the conversation digresses.", True),
    ("Yes and no: the task is mentioned, but most turns are about something else.", None),
    ("I would say no. The speakers return to the task after a brief aside.", False),
    ("It is hard to tell from the transcript.", None),
    ("At first it seems to digress. Yes, it does: turns 4-9 are about a film.\n\nFinal verdict: no — on closer reading they are examples for the task.", False),
    ('Verdict: "yes".', True),
    ("[[no]]", False),
    ("No one would mistake this for a human conversation; it is formulaic.", None),
    ("The answer is no, the conversation stays focused on the recipe.", False),
    (f"Understood. {YES_NO_VERDICT}", None),
]

CATEGORIES = [
    ("[4]", 4),
    ("Category 4", 4),
    ("4. Irrelevant: the rationale talks about the weather.", 4),
    ("Looking at the rationale, the answer is [2].", 2),
    ("Category: [3] (off-task chatter)", 3),
    ("The rationale repeats the task, so it is Category 5. It is not category 2, which would need a new topic.", 5),
    ("[1] Task drift [2] Chit-chat [3] Role confusion", None),
    ("[9]", None),
    ("I cannot classify this rationale.", None),
    ("1. Task drift\n2. Chit-chat\n3. Role confusion", None),
]


@pytest.mark.parametrize(("answer", "verdict"), PAIRWISE)
def test_read_choice(answer: str, verdict: Optional[str]) -> None:
    assert read_choice(answer) == verdict


@pytest.mark.parametrize(("answer", "verdict"), YES_NO)
def test_read_yes_no(answer: str, verdict: Optional[bool]) -> None:
    assert read_yes_no(answer) is verdict


@pytest.mark.parametrize(("answer", "category"), CATEGORIES)
def test_read_category(answer: str, category: Optional[int]) -> None:
    assert read_category(answer, 7) == category


def test_the_verdict_is_read_in_both_orders() -> None:
    # The same judgment of the same pair, shown in the two orders: the verdict must follow the letter, not the position.
    shown = "Response A gives a full method; Response B is off topic. Response A is better than Response B."
    swapped = "Response A is off topic; Response B gives a full method. Response B is better than Response A."
    assert (read_choice(shown), read_choice(swapped)) == ("A", "B")
