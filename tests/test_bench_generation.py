"""The originality measure of bench/generation.py: longest copied run of notes."""

from __future__ import annotations

import io

import numpy as np
import pretty_midi
import pytest

from bench.generation import (
    CopyIndex,
    interval_symbols,
    longest_copied_run,
    note_intervals,
    originality_summary,
)


def symbols_of(pitches: list[int], step: int = 6) -> np.ndarray:
    """Interval symbols of a melody with evenly spaced onsets."""
    return interval_symbols(np.arange(len(pitches)) * step, np.array(pitches))


def melody(rng: np.random.Generator, notes: int) -> list[int]:
    return list(60 + np.cumsum(rng.integers(-4, 5, size=notes)) % 24)


def test_a_copied_passage_is_found_at_its_full_length(rng: np.random.Generator) -> None:
    training = melody(rng, 200)
    generated = [40, 47, 41, *training[50:70], 90, 20, 91]
    assert longest_copied_run(symbols_of(generated), [symbols_of(training)]) == 20


def test_copies_are_found_in_any_key_and_tempo(rng: np.random.Generator) -> None:
    training = melody(rng, 100)
    transposed = [p + 5 for p in training[10:40]]
    slower = interval_symbols(np.arange(30) * 12, np.array(transposed))
    faster_training = interval_symbols(np.arange(100) * 12, np.array(training))
    assert longest_copied_run(slower, [faster_training]) == 30
    # the same pitches with another rhythm are not a copy
    other_rhythm = interval_symbols(np.cumsum(rng.integers(1, 9, size=30)), np.array(transposed))
    assert longest_copied_run(other_rhythm, [faster_training]) < 10


def test_runs_never_cross_training_pieces() -> None:
    first, second = [60, 62, 64, 65], [67, 69, 71, 72]
    joined = first + second
    result = longest_copied_run(symbols_of(joined), [symbols_of(first), symbols_of(second)])
    assert result == 4  # 4 notes of either piece, not all 8


def test_nothing_copied_gives_one_note_and_empty_gives_zero() -> None:
    training = [symbols_of([60, 61, 62, 63])]
    assert longest_copied_run(symbols_of([60, 72, 50, 80]), training) == 1
    assert longest_copied_run(np.zeros(0, dtype=np.int64), training) == 0


def test_index_agrees_with_brute_force(rng: np.random.Generator) -> None:
    pieces = [symbols_of(melody(rng, 60)) for _ in range(5)]
    index = CopyIndex(pieces)
    for _ in range(10):
        source = pieces[int(rng.integers(5))]
        start = int(rng.integers(0, 40))
        generated = np.concatenate([symbols_of(melody(rng, 5)), source[start : start + 8],
                                    symbols_of(melody(rng, 5))])  # fmt: skip

        def brute(g: np.ndarray) -> int:
            best = 0
            for piece in pieces:
                for i in range(len(g)):
                    for j in range(len(piece)):
                        k = 0
                        while i + k < len(g) and j + k < len(piece) and g[i + k] == piece[j + k]:
                            k += 1
                        best = max(best, k)
            return best + 1

        assert index.longest_copied_run(generated) == brute(generated)


def test_note_intervals_reads_midi_and_orders_chords_by_pitch() -> None:
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(0)
    drums = pretty_midi.Instrument(0, is_drum=True)
    for start, pitch in [(0.0, 64), (0.0, 60), (0.5, 67), (1.0, 72)]:
        piano.notes.append(pretty_midi.Note(80, pitch, start, start + 0.4))
        drums.notes.append(pretty_midi.Note(80, 36, start, start + 0.1))
    pm.instruments.extend([piano, drums])
    buffer = io.BytesIO()
    pm.write(buffer)
    symbols = note_intervals(buffer.getvalue())
    assert list(symbols % 256 - 128) == [4, 3, 5]  # 60 -> 64 -> 67 -> 72
    assert list(symbols // 256) == [0, 12, 12]  # same onset, then a beat apart each
    assert len(note_intervals(buffer.getvalue(), drums=True)) == 3


def test_summary_checks_the_targets() -> None:
    summary = originality_summary([3, 5, 8, 12, 40])
    assert summary["median"] == 8
    assert summary["median_target_met"] is True
    assert summary["no_copy_of_32"] is False
    assert originality_summary([]) == {"pieces": 0}


@pytest.mark.parametrize("k", [1, 3, 7])
def test_window_hashes_match_equal_windows(k: int) -> None:
    symbols = np.array([5, 9, 5, 9, 5, 9, 5, 9], dtype=np.int64)
    index = CopyIndex([symbols])
    assert index.occurs(symbols[1 : 1 + k], k)
