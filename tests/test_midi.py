"""MIDI in/out, the generator's tokenizer and piano rolls, on pieces the tests make."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from engine import midi
from engine.errors import InvalidMidi

STYLES = ("classical", "chinese folk", "rock")
TEMPO = 100.0
BEAT = 60.0 / TEMPO


def small_piece() -> pretty_midi.PrettyMIDI:
    """A bar of 3/4 violin melody over cello, and a drum part: every note on the grid."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=TEMPO)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0.0))
    violin = pretty_midi.Instrument(program=40)
    cello = pretty_midi.Instrument(program=42)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    for beat, pitch in enumerate([72, 74, 76, 77, 79, 81]):
        violin.notes.append(pretty_midi.Note(96, pitch, beat * BEAT, (beat + 0.5) * BEAT))
        drums.notes.append(pretty_midi.Note(100, 36 if beat % 3 == 0 else 42, beat * BEAT,
                                            (beat + 0.25) * BEAT))  # fmt: skip
    cello.notes.append(pretty_midi.Note(80, 48, 0.0, 3 * BEAT))
    cello.notes.append(pretty_midi.Note(80, 43, 3 * BEAT, 6 * BEAT))
    pm.instruments.extend([violin, cello, drums])
    return pm


def midi_bytes(pm: pretty_midi.PrettyMIDI) -> bytes:
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def notes_in_beats(score) -> set[tuple[int, bool, int, float, float]]:
    """(program, is_drum, pitch, start beat, duration in beats) of every note."""
    tpq = score.ticks_per_quarter
    out = set()
    for track in score.tracks:
        for note in track.notes:
            duration = 0.0 if track.is_drum else round(note.duration / tpq, 3)
            out.add((track.program, track.is_drum, note.pitch, round(note.time / tpq, 3), duration))
    return out


def test_tokenizer_round_trip_keeps_notes_programs_tempo_and_metre() -> None:
    tokenizer = midi.make_tokenizer(STYLES)
    score = midi.load_score(small_piece())
    ids = midi.encode(tokenizer, score)
    tokens = [tokenizer[i] for i in ids]
    assert tokens[:2] == ["Bar_None", "TimeSig_3/4"]
    assert "Program_40" in tokens and "Program_-1" in tokens and "PitchDrum_36" in tokens
    decoded = midi.decode(tokenizer, [tokenizer.vocab[midi.style_token("rock")], *ids])
    assert notes_in_beats(decoded) == notes_in_beats(score)
    assert (decoded.time_signatures[0].numerator, decoded.time_signatures[0].denominator) == (3, 4)
    assert decoded.tempos[0].qpm == pytest.approx(TEMPO, rel=0.05)  # nearest tempo bin


def test_tokenizer_json_round_trip(tmp_path: Path) -> None:
    tokenizer = midi.make_tokenizer(STYLES)
    path = tmp_path / midi.TOKENIZER_FILE
    tokenizer.save(path)
    again = midi.load_tokenizer(path)
    assert again.vocab == tokenizer.vocab
    assert midi.tokenizer_styles(again) == list(STYLES)
    assert midi.style_token("chinese folk") in again.vocab


def test_tempo_token_is_the_nearest_bin() -> None:
    tokenizer = midi.make_tokenizer(STYLES)
    assert tokenizer[midi.tempo_token(tokenizer, 40)] == "Tempo_40.0"
    assert tokenizer[midi.tempo_token(tokenizer, 1000)] == "Tempo_250.0"
    score = midi.load_score(small_piece())
    ids = midi.encode(tokenizer, score)
    assert midi.tempo_token(tokenizer, TEMPO) in ids


@pytest.mark.parametrize(
    ("signature", "expected"),
    [((3, 4), (3, 4)), ((2, 1), (4, 2)), ((12, 4), (6, 4)), ((7, 8), (4, 4)), ((4, 4), (4, 4))],
)
def test_unsupported_time_signatures_map_to_known_ones(signature, expected) -> None:
    assert midi.supported_time_signature(*signature) == expected


def test_load_score_reads_paths_bytes_and_pretty_midi(tmp_path: Path) -> None:
    data = midi_bytes(small_piece())
    path = tmp_path / "piece.mid"
    path.write_bytes(data)
    for source in (path, str(path), data, small_piece()):
        assert midi.load_score(source).note_num() == 14
    assert midi.load_score(data) is not None
    again = midi.load_score(midi.score_to_bytes(midi.load_score(data)))
    assert notes_in_beats(again) == notes_in_beats(midi.load_score(data))


@pytest.mark.parametrize(
    "make",
    [
        lambda tmp: tmp / "missing.mid",
        lambda tmp: b"",
        lambda tmp: b"RIFF....WAVEfmt not midi at all",
        lambda tmp: midi_bytes(small_piece())[:40],  # truncated
        lambda tmp: midi_bytes(pretty_midi.PrettyMIDI()),  # no notes
    ],
    ids=["missing", "empty", "not-midi", "truncated", "no-notes"],
)
def test_bad_midi_raises_invalid_midi(make, tmp_path: Path) -> None:
    with pytest.raises(InvalidMidi):
        midi.load_score(make(tmp_path))


def test_piano_roll_arrays_are_sorted_and_in_seconds() -> None:
    roll = midi.piano_roll(midi_bytes(small_piece()))
    assert len(roll) == 14
    assert np.all(np.diff(roll.start) >= 0)
    assert roll.duration == pytest.approx(6 * BEAT, abs=0.01)
    assert set(roll.program.tolist()) == {40, 42, midi.DRUM_PROGRAM}
    assert roll.is_drum.sum() == 6
    assert np.all(roll.end > roll.start)


def test_piano_roll_matrix_shape_and_values() -> None:
    roll = midi.piano_roll(small_piece())
    matrix = midi.piano_roll_matrix(roll, frames_per_second=10)
    assert matrix.shape == (128, int(np.ceil(roll.duration * 10)))
    assert matrix[72, 0] == pytest.approx(96 / 127)
    assert matrix[36].max() == 0  # drums left out by default
    with_drums = midi.piano_roll_matrix(roll, frames_per_second=10, include_drums=True)
    assert with_drums[36].max() > 0


def test_music21_part_notes_joins_ties_splits_chords_and_drops_grace_notes() -> None:
    from music21 import chord, note, stream, tie

    part = stream.Part()
    first, second = note.Note("C4", quarterLength=1.0), note.Note("C4", quarterLength=1.0)
    first.tie, second.tie = tie.Tie("start"), tie.Tie("stop")
    grace = note.Note("D4").getGrace()
    part.append([first, second, grace, chord.Chord(["E4", "G4"], quarterLength=0.5)])
    notes = midi.music21_part_notes(part)
    assert notes == [(0.0, 2.0, 60, 80), (2.0, 0.5, 64, 80), (2.0, 0.5, 67, 80)]
