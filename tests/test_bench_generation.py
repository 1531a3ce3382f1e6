"""bench/generation.py and engine.originality: the longest copied run of notes, closeness, the style
classifier's features, and the real-corpus plumbing, on tiny hand-made pieces."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from bench.generation import (
    BAR_SIXTEENTHS,
    CLOSENESS_EDGES,
    DRUM_GROUPS,
    MeasuredPiece,
    accuracy_interval,
    balanced_interval,
    closeness,
    cross_validate_classifier,
    drum_groove,
    excerpts,
    key_tonic,
    label_accuracy,
    mean_by_kind,
    note_statistics,
    originality_summary,
    overlapping_area,
    own_label_count,
    real_corpus,
    score_style,
    speed_summary,
    style_features,
    top_line_intervals,
)
from engine.midi import load_score
from engine.originality import (
    CopyIndex,
    PieceNotes,
    interval_symbols,
    longest_copied_run,
    note_intervals,
    piece_notes,
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


# --------------------------------------------------------------------------------------------
# Closeness, features and summaries


def midi_bytes(
    notes: list[tuple[float, float, int]], *, drums: Sequence[float] = (), bpm: float = 120
) -> bytes:
    """A MIDI file of (start s, end s, pitch) piano notes and kick-drum hits at `drums` s."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=bpm)
    piano = pretty_midi.Instrument(0)
    piano.notes.extend(pretty_midi.Note(80, p, a, b) for a, b, p in notes)
    kit = pretty_midi.Instrument(0, is_drum=True)
    kit.notes.extend(pretty_midi.Note(90, 36, t, t + 0.1) for t in drums)
    pm.instruments.extend([i for i in (piano, kit) if i.notes])
    buffer = io.BytesIO()
    pm.write(buffer)
    return buffer.getvalue()


def test_overlapping_area_of_hand_made_histograms() -> None:
    assert overlapping_area([1, 1, 0, 2], [0, 2, 2, 0]) == 0.25
    assert overlapping_area([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert overlapping_area([1, 0], [0, 5]) == 0.0
    assert overlapping_area([0, 0], [1, 1]) is None


def test_closeness_pools_pieces_and_skips_empty_metrics() -> None:
    def stats(pitch: list[float], ioi: list[float]) -> dict[str, np.ndarray]:
        out = {metric: np.zeros(0) for metric in CLOSENESS_EDGES}
        out.update(pitch_class=np.array(pitch), ioi=np.array(ioi), polyphony=np.array([1.0]))
        return out

    generated = [stats([0, 0], [1.0]), stats([7, 7], [1.0])]  # pooled: half C, half G
    reference = [stats([0, 0, 0, 4], [0.5, 1.0])]  # 3/4 C, 1/4 E
    result = closeness(generated, reference)
    assert result["pitch_class"] == 0.5  # min(1/2, 3/4) at C
    assert result["ioi"] == 0.5  # one beat in both, half a beat only in the reference
    assert result["polyphony"] == 1.0
    assert result["duration"] is None and result["density"] is None


def test_key_tonic_finds_major_and_minor_keys() -> None:
    c_major = np.array([60, 62, 64, 65, 67, 69, 71])
    weights = np.array([2.0, 1, 1, 1, 1, 1, 1])  # the tonic lasts longest
    assert key_tonic(c_major, weights) == 0
    assert key_tonic(c_major + 7, weights) == 7  # G major
    a_harmonic_minor = np.array([69, 71, 72, 74, 76, 77, 80])
    assert key_tonic(a_harmonic_minor, weights) == 9
    # The same notes, A held longest: the weights decide, and A minor wins.
    assert key_tonic(c_major, np.array([1.0, 1, 1, 1, 1, 3, 1])) == 9
    assert key_tonic(np.array([60, 62]), np.array([1.0, 1.0])) == 0  # flat: no key, C


def test_note_statistics_of_a_melody_and_of_drums() -> None:
    # C and E together for 4 and 2 beats, G at beat 1, the high C at beat 1.5.
    melody = PieceNotes(
        np.array([0.0, 0.0, 1.0, 1.5]), np.array([4.0, 2.0, 0.5, 0.5]),
        np.array([60, 64, 67, 72]), drums=False, velocities=np.full(4, 80),
    )  # fmt: skip
    stats = note_statistics(melody)
    assert list(stats["pitch_class"]) == [0, 4, 7, 0]
    assert list(stats["duration"]) == [4, 2, 0.5, 0.5]
    assert list(stats["ioi"]) == [1.0, 0.5]
    assert list(stats["polyphony"]) == [2, 3, 3]  # G has ended when the high C comes
    assert list(stats["density"]) == [1.0]  # 4 notes in the first 4 beats
    kit = PieceNotes(
        np.array([0.0, 0.0, 0.5, 5.0]), np.ones(4), np.array([36, 42, 42, 38]), True,
        np.full(4, 80),
    )  # fmt: skip
    stats = note_statistics(kit)
    assert list(stats["pitch_class"]) == [36, 42, 42, 38]  # drum sounds
    assert len(stats["duration"]) == 0
    assert list(stats["polyphony"]) == [2, 1, 1]  # hits at each onset
    assert list(stats["density"]) == [0.75, 0.25]


def test_piece_notes_reads_beats_and_picks_drums_only_when_alone() -> None:
    data = midi_bytes([(0.0, 0.5, 64), (0.5, 1.5, 60)], drums=[0.0, 0.25])  # 120 bpm
    notes = piece_notes(data)
    assert not notes.drums
    assert list(notes.onsets) == [0.0, 1.0]
    assert list(notes.durations) == [1.0, 2.0]
    assert list(notes.onset_steps) == [0, 12]
    drums = piece_notes(data, drums=True)
    assert drums.drums and list(drums.onsets) == [0.0, 0.5]
    assert piece_notes(midi_bytes([], drums=[0.0, 1.0])).drums


def test_excerpts_cut_consecutive_windows_from_the_start() -> None:
    # One note per beat for 10 beats at 120 bpm (5 s); 2 s windows are 4 beats.
    score = load_score(midi_bytes([(b / 2, b / 2 + 0.25, 60 + b) for b in range(10)]))
    windows = excerpts(score, seconds=2.0)
    assert len(windows) == 2  # beats 8-9 are less than half a window: left out
    assert [list(piece_notes(w).pitches) for w in windows] == [[60, 61, 62, 63], [64, 65, 66, 67]]
    assert piece_notes(windows[1]).onsets[0] == 0.0
    assert len(excerpts(score, seconds=2.0, most=1)) == 1
    assert len(excerpts(score, seconds=60.0)) == 1  # a short piece is one window
    notes = [(b / 2, b / 2 + 0.25, 60 + b) for b in range(9)]
    waltz = pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes(notes)))
    waltz.time_signature_changes = [pretty_midi.TimeSignature(3, 4, 0.0)]
    buffer = io.BytesIO()
    waltz.write(buffer)
    waltz_score = load_score(buffer.getvalue())
    assert len(excerpts(waltz_score, seconds=2.0)) == 2  # 4 beats each: the last 1 is left out
    windows = excerpts(waltz_score, seconds=2.0, whole_bars=True)  # 4 beats: one 3/4 bar
    assert [list(piece_notes(w).pitches) for w in windows] == [[60, 61, 62], [63, 64, 65]] + [
        [66, 67, 68]
    ]


def test_style_features_blocks() -> None:
    melody = piece_notes(midi_bytes([(0.0, 1.0, 60), (0.0, 1.0, 64), (0.5, 1.0, 67)]))
    assert list(top_line_intervals(melody)) == [3]  # E (the top of the chord) to G
    kit = piece_notes(midi_bytes([], drums=[0.0, 0.5, 1.0]))
    a, b = style_features(melody), style_features(kit)
    assert a.shape == b.shape
    assert a[0] == 0.0 and b[0] == 1.0  # drums or not
    assert a[1:13].sum() == pytest.approx(1.0) and b[1:13].sum() == 0  # pitch classes
    assert a[13:141].sum() == 0 and b[13 + 36] == 1.0  # drum sounds: all kicks
    shares = slice(0, len(a) - len(drum_groove(kit)))  # the groove block holds hits per beat
    assert np.all((a[shares] >= 0) & (a[shares] <= 1)) and np.all(b[shares] >= 0)
    assert np.all(b[shares] <= 1)
    assert not np.any(drum_groove(melody))  # no groove in a melody


def test_drum_groove_of_a_hand_made_bar() -> None:
    # One 4/4 bar: kicks on 1 and 3, snares on 2 and 4 and a ghost before 3, eighth hi-hats.
    hits = sorted(
        [(0.0, 36, 100), (2.0, 36, 100), (1.0, 38, 90), (3.0, 38, 110), (1.75, 38, 30)]
        + [(b / 2, 42, 70) for b in range(8)]
    )
    onsets, pitches, velocities = (np.array(column) for column in zip(*hits, strict=True))
    notes = PieceNotes(onsets, np.full(len(hits), 0.1), pitches, True, velocities)
    groove = drum_groove(notes).reshape(len(DRUM_GROUPS), BAR_SIXTEENTHS + 3)
    kick, snare, hihat, toms, cymbals = groove
    assert list(np.flatnonzero(kick[:16])) == [0, 8] and kick[0] == 0.5
    assert list(np.flatnonzero(snare[:16])) == [4, 7, 12]
    assert snare[7] == pytest.approx(1 / 3)
    assert list(np.flatnonzero(hihat[:16])) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert list(kick[16:]) == pytest.approx([0.5, 100 / 127, 0.0])  # per beat, velocity, ghosts
    assert list(snare[16:]) == pytest.approx([0.75, 230 / 3 / 127, 1 / 3])
    assert hihat[16] == 2.0 and hihat[18] == 0.0
    assert not toms.any() and not cymbals.any()


def test_cross_validation_keeps_each_piece_on_one_side(rng: np.random.Generator) -> None:
    # 40 pieces of 4 excerpts; a piece's excerpts share a fingerprint, its style is a coin toss.
    # Only a classifier that had seen a piece's other excerpts could name its style.
    pieces = []
    for k in range(40):
        fingerprint, style = rng.normal(size=6), ["folk", "pop"][k % 2]
        pieces += [
            MeasuredPiece(style, {}, fingerprint + 0.01 * rng.normal(size=6), np.zeros(0), f"p{k}")
            for _ in range(4)
        ]
    assert cross_validate_classifier(pieces, seed=0)["balanced_accuracy"] < 0.8
    # Styles the features do tell apart are learnt across pieces.
    told = [replace(p, features=np.r_[p.features, p.style == "pop"]) for p in pieces]
    assert cross_validate_classifier(told, seed=0)["balanced_accuracy"] == 1.0


def test_mean_by_kind() -> None:
    assert mean_by_kind({"folk": 1.0, "pop": 0.5, "funk": 0.2}) == {"melodic": 0.75, "drums": 0.2}


def test_accuracy_intervals() -> None:
    # Wilson score intervals, worked by hand: 8 of 10, none of 10, all of 10.
    assert accuracy_interval(8, 10) == pytest.approx([0.4902, 0.9433], abs=1e-4)
    assert accuracy_interval(0, 10) == pytest.approx([0.0, 0.2775], abs=1e-4)
    assert accuracy_interval(10, 10) == pytest.approx([0.7225, 1.0], abs=1e-4)
    # Mean of 50/50 and 25/50 = 0.75; variances at 52/54 and 27/54 over 54: half-width 0.0713.
    assert balanced_interval([(50, 50), (25, 50)]) == pytest.approx([0.6787, 0.8213], abs=1e-4)
    assert balanced_interval([(10, 10)])[1] == 1.0  # clipped, and still an interval
    assert balanced_interval([(10, 10)])[0] < 1.0
    assert own_label_count("folk", {"folk": 3, "pop": 1}) == (3, 4)
    assert own_label_count("pop", {"folk": 2}) == (0, 2)


def test_label_accuracy_and_speed_summary() -> None:
    result = label_accuracy(["a", "a", "b", "b"], ["a", "b", "b", "b"])
    assert result["accuracy"] == 0.75
    b = result["per_style"]["b"]
    assert b["accuracy"] == 2 / 3 and b["labelled_as"] == {"b": 2, "a": 1}
    assert b["ci95"] == accuracy_interval(2, 3)
    assert result["balanced_accuracy"] == pytest.approx((1 + 2 / 3) / 2)
    assert result["balanced_accuracy_ci95"] == balanced_interval([(1, 1), (2, 3)])
    fast = speed_summary([1.0, 2.0, 3.0], [1.0, 1.0, 1.5], 30.0)
    assert fast["median_s"] == 2.0 and fast["real_time_factor"] == 15.0 and fast["target_met"]
    assert fast["median_cpu_s"] == 1.0 and fast["cpu_real_time_factor"] == 30.0
    assert not speed_summary([4.0, 4.0], [1.0, 1.0], 30.0)["target_met"]  # 7.5x in wall time


def test_real_corpus_splits_excerpts_and_indexes_training_pieces(tmp_path: Path) -> None:
    tune = [(b / 2, b / 2 + 0.4, p) for b, p in enumerate([60, 62, 64, 65, 67, 65, 64, 62])]
    other = [(b / 2, b / 2 + 0.4, p) for b, p in enumerate([60, 67, 59, 72, 57, 70, 61, 66])]
    folder = tmp_path / "generator"
    rows = []
    for name, split, notes in [("a", "train", tune), ("b", "train", other), ("c", "heldout", tune)]:
        path = folder / "midi" / f"{name}.mid"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(midi_bytes(notes))
        rows.append({"piece_id": f"x/{name}", "style": "folk", "source": "x", "split": split,
                     "tempo": 120.0, "seconds": 4.0, "midi_path": f"midi/{name}.mid"})  # fmt: skip
    (folder / "index.json").write_text(json.dumps(rows))
    real = real_corpus(tmp_path, ["folk"], seconds=2.0, windows=4)
    assert len(real.train["folk"]) == 4 and len(real.heldout["folk"]) == 2  # 2 windows a piece
    assert [p.piece_id for p in real.train["folk"]] == ["x/a", "x/a", "x/b", "x/b"]
    copied = real.copies["folk"].longest_copied_run(real.heldout["folk"][0].intervals)
    assert copied == 4  # the held-out window is the first half of training piece "a"


class _Classifier:
    """Labels every piece with one style."""

    def __init__(self, style: str) -> None:
        self.style = style

    def predict(self, features: np.ndarray) -> list[str]:
        return [self.style] * len(features)


def test_score_style_labels_measures_and_finds_copies(tmp_path: Path) -> None:
    test_real_corpus_splits_excerpts_and_indexes_training_pieces(tmp_path)
    real = real_corpus(tmp_path, ["folk"], seconds=2.0, windows=4)
    generated = real.heldout["folk"]  # as if a generator had replayed the held-out piece

    right = score_style(generated, "folk", _Classifier("folk"), real)
    assert right["style_accuracy"] == 1.0 and right["labelled_as"] == {"folk": 2}
    assert right["copied_runs"][0] == 4
    assert right["closeness"]["pitch_class"] == pytest.approx(1.0)  # the held-out notes
    wrong = score_style(generated, "folk", _Classifier("pop"), real)
    assert wrong["style_accuracy"] == 0.0 and wrong["labelled_as"] == {"pop": 2}
