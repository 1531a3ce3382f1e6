"""The reader's encoding: music21 bars <-> tokens, both ways."""

from __future__ import annotations

from fractions import Fraction

import music21
import pytest

from engine.score.assemble import build_score, join_staves
from engine.score.encoding import (
    NotEncodable,
    StaffContext,
    header_tokens,
    measure_tokens,
    to_measures,
    token_kind,
    vocabulary,
)


def bar(*elements: music21.base.Music21Object) -> music21.stream.Measure:
    measure = music21.stream.Measure()
    for element in elements:
        measure.append(element)
    return measure


def test_vocabulary_is_unique_and_names_every_kind() -> None:
    tokens = vocabulary()
    assert len(tokens) == len(set(tokens))
    kinds = {token_kind(t) for t in tokens}
    assert kinds == {"clef", "key", "time", "barline", "pitch", "duration", "rest", "tie"}
    for token in ("clef:G2-8", "key:-3", "time:6/8", "time:C/", "F##5", "Bb3", "16th.^3"):
        assert token in tokens


def test_a_bar_with_notes_chord_rest_tie_and_triplet() -> None:
    tied = music21.note.Note("B-4", quarterLength=1)
    tied.tie = music21.tie.Tie("start")
    triplet = [music21.note.Note(p, quarterLength=Fraction(1, 3)) for p in ("C5", "D5", "E5")]
    measure = bar(
        music21.note.Note("F#4", quarterLength=1.5),
        music21.chord.Chord(["G4", "C4", "E4"], quarterLength=0.5),
        music21.note.Rest(quarterLength=0.5),
        *triplet,
        tied,
    )
    measure.rightBarline = music21.bar.Barline("final")
    tokens = measure_tokens(measure, system_start=False, bar_quarters=Fraction(4))
    assert tokens == [
        "F#4", "quarter.", "C4", "E4", "G4", "eighth", "rest", "eighth",
        "C5", "eighth^3", "D5", "eighth^3", "E5", "eighth^3", "Bb4", "quarter", "tie", "|]",
    ]


def test_tokens_decode_to_the_same_bars() -> None:
    tokens = [
        "clef:F4", "key:-2", "time:3/4", "Bb2", "half.", "|", "rest:measure", "|",
        "C3", "Eb3", "G3", "quarter", "tie", "C3", "Eb3", "G3", "eighth", "rest", "eighth",
        "D3", "quarter", ":|",
    ]
    measures = to_measures(tokens)
    assert len(measures) == 3
    assert measures[1].notesAndRests[0].fullMeasure
    again = [measure_tokens(m, system_start=i == 0, bar_quarters=Fraction(3))
             for i, m in enumerate(measures)]
    body = [t for m in again for t in m]
    assert body == [t for t in tokens if token_kind(t) not in ("clef", "key", "time")]


def test_grace_notes_are_left_out_of_the_tokens() -> None:
    measure = bar(music21.note.Note("C4").getGrace(), music21.note.Note("D4", quarterLength=4))
    assert measure_tokens(measure, system_start=False, bar_quarters=Fraction(4)) == [
        "D4", "whole", "|"]


def test_the_decoder_skips_what_is_out_of_place() -> None:
    measures = to_measures(["quarter", "tie", "C4", "|", "E4", "half"])
    assert [len(m.notesAndRests) for m in measures] == [0, 1]
    assert measures[1].notes[0].pitch.nameWithOctave == "E4"


@pytest.mark.parametrize("case", ["voices", "quintuplet"])
def test_what_the_encoding_cannot_say_is_refused(case: str) -> None:
    if case == "voices":
        measure = music21.stream.Measure()
        for pitch in ("C5", "E4"):
            voice = music21.stream.Voice()
            voice.append(music21.note.Note(pitch, quarterLength=4))
            measure.insert(0, voice)
    else:
        note = music21.note.Note("C4", quarterLength=0.5)
        note.duration.appendTuplet(music21.duration.Tuplet(5, 4))
        measure = bar(note)
    with pytest.raises(NotEncodable):
        measure_tokens(measure, system_start=False, bar_quarters=Fraction(4))


def test_a_system_header_and_joined_staves_keep_only_changes() -> None:
    header = header_tokens(StaffContext(clef="clef:G2", key=-1, time="time:C"))
    assert header == ["clef:G2", "key:-1", "time:C"]
    first = [*header, "F4", "whole", "|"]
    second = ["clef:G2", "key:-1", "G4", "whole", "|"]
    third = ["clef:F4", "key:-1", "A2", "whole", "|]"]
    joined = join_staves([first, second, third])
    assert joined == [*header, "F4", "whole", "|", "G4", "whole", "|", "clef:F4", "A2", "whole",
                      "|]"]
    score = build_score([joined], title="test")
    assert len(score.parts[0].getElementsByClass("Measure")) == 3
    assert [n.pitch.nameWithOctave for n in score.recurse().notes] == ["F4", "G4", "A2"]


def test_bars_that_do_not_add_up_are_found() -> None:
    from engine.score.encoding import token_quarters, uneven_bars

    assert token_quarters("quarter.") == Fraction(3, 2)
    assert token_quarters("eighth^3") == Fraction(1, 3)
    assert token_quarters("half..") == Fraction(7, 2)
    text = ("clef:G2 time:3/4 C4 quarter | C4 half. | D4 half | rest:measure | "
            "E4 eighth^3 E4 eighth^3 E4 eighth^3 C4 E4 half | F4 half |")
    staff = text.split()
    assert uneven_bars(staff) == [3]  # the pickup and the last bar are not judged
