"""The parsers and graph helpers the scenarios rely on, on hand-built answers with known results."""

from agents.annotator import parse_label
from agents.group import parse_next_speaker
from agents.self_instruct import parse_instance, parse_instruction
from agents.verdicts import read_choice
from sim.graphs import graph_summary, transition_graph
from sim.records import Turn
from sim.spp import final_answer, is_correct, split_transcript

SCHEME = {"0": "negative", "1": "neutral", "2": "positive"}


def test_parse_label_prefers_a_standalone_value_then_a_meaning() -> None:
    assert parse_label("2", SCHEME) == "2"
    assert parse_label("Label: 0 (negative)", SCHEME) == "0"
    assert parse_label("I would say it is positive.", SCHEME) == "2"
    assert parse_label("Neutral, maybe negative", SCHEME) == "1"
    assert parse_label("version 2.5 of the text", SCHEME) is None
    assert parse_label("no idea", SCHEME) is None


def test_read_choice_reads_a_b_or_tie() -> None:
    assert read_choice("Response B is better.") == "B"
    assert read_choice("A") == "A"
    assert read_choice("It's a tie.") == "tie"
    assert read_choice("TIE") == "tie"
    assert read_choice("Both are fine") is None


def test_self_instruct_parsers() -> None:
    assert parse_instruction("\nTask 9: Write a haiku about rain.\nTask 10: ...") == "Write a haiku about rain."
    assert parse_instruction("3. Sort the list.") == "Sort the list."
    assert parse_instruction("   \n") == ""
    assert parse_instance("Input: 3, 1, 2\nOutput: 1, 2, 3") == ("3, 1, 2", "1, 2, 3")
    assert parse_instance("Input: None\nOutput: A short poem.") == ("", "A short poem.")
    assert parse_instance("Just some text") == ("", None)


def test_spp_transcript_and_scoring() -> None:
    text = (
        "Participants: AI Assistant (you); Logic Expert\n"
        "AI Assistant (you): Let's place the dog first.\n"
        "Logic Expert: Then the cat is in house 2,\nso the fish is in 3.\n"
        "Finish collaboration!\n"
        "Final answer: 3"
    )
    personas, turns = split_transcript(text)
    assert personas == ["AI Assistant (you)", "Logic Expert"]
    assert [t[0] for t in turns] == ["AI Assistant (you)", "Logic Expert", "AI Assistant (you)"]
    assert turns[1][2] == "Then the cat is in house 2,\nso the fish is in 3."
    assert turns[2][1] == "final_answer"
    assert final_answer(text) == "3"
    assert final_answer("no answer here") is None
    assert is_correct("House 3.", ["3"]) is True
    assert is_correct("2", ["3"]) is False
    assert is_correct(None, ["3"]) is False
    assert is_correct("3", None) is None


def test_transition_graph_counts_who_follows_whom() -> None:
    speakers = ["A", "B", "C", "A", "B", "B"]
    turns = [Turn(i, s, s, "...") for i, s in enumerate(speakers)]
    summary = graph_summary(transition_graph(turns))
    assert summary["n_speakers"] == 3
    assert summary["edges"] == [["A", "B", 2], ["B", "B", 1], ["B", "C", 1], ["C", "A", 1]]
    assert summary["self_loops"] == 1
    assert summary["reciprocity"] == 0.0
    assert parse_next_speaker("I think Tom should speak.", ["Maria", "Tom"]) == "Tom"
    assert parse_next_speaker("END", ["Maria", "Tom"]) == "END"
    assert parse_next_speaker("nobody", ["Maria", "Tom"]) is None
