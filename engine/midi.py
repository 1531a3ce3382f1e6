"""MIDI in and out, the generator's tokenizer, and piano rolls for display.

Scores travel as `symusic.Score` (tick time), the type miditok reads and writes. The tokenizer is
miditok's REMI with Program, Tempo and TimeSig tokens in one stream, plus one special token per
generator style (`Style_<name>`); its config is saved as JSON beside the generator's weights.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi
import symusic
from miditok import REMI, TokenizerConfig
from symusic.core import ScoreQuarter, ScoreSecond, ScoreTick

from engine.errors import InvalidMidi

log = logging.getLogger("engine.midi")

Score = ScoreTick  # symusic.Score(...) builds one of these: a score in tick time
ScoreSource = Score | ScoreQuarter | ScoreSecond | pretty_midi.PrettyMIDI | bytes | str | Path

TOKENIZER_FILE = "generator_tokenizer.json"  # beside generator.pt in checkpoints/
DRUM_PROGRAM = -1  # miditok's program number for drum tracks
DEFAULT_TEMPO = 120.0  # quarter notes per minute, when a file gives none
DEFAULT_TIME_SIGNATURE = (4, 4)
MAX_MIDI_BYTES = 20 * 1024 * 1024  # larger "MIDI" files are refused: no real song is that big

# Tokenizer settings. Twelve positions per beat hold both sixteenths (3) and triplet eighths
# (4), which swung jazz and shuffles need; long notes are coarser.
PITCH_RANGE = (21, 109)  # piano range, A0..C8
BEAT_RESOLUTION = {(0, 4): 12, (4, 12): 4}  # positions per beat, by note length in beats
VELOCITY_BINS = 8
TEMPO_BINS = 32
TEMPO_RANGE = (40, 250)  # bpm covered by Tempo tokens (log spaced)
TIME_SIGNATURES = {8: [3, 6, 9, 12], 4: [2, 3, 4, 5, 6], 2: [2, 3, 4]}  # denominator: numerators
SPECIAL_TOKENS = ("PAD", "BOS", "EOS")
STYLE_PREFIX = "Style_"
NO_STYLE_TOKEN = "BOS_None"  # conditioning in place of a style token: music of no named style


# --------------------------------------------------------------------------------------------
# Reading and writing


def load_score(source: ScoreSource, *, name: str | None = None) -> Score:
    """Read MIDI from a path, bytes, a PrettyMIDI or a Score.

    Args:
        source: what to read.
        name: how to call the source in error messages (default: the file name).

    Returns:
        The score in tick time.

    Raises:
        InvalidMidi: when the file is missing, empty, too large, not MIDI, or holds no notes.
    """
    if isinstance(source, ScoreTick | ScoreQuarter | ScoreSecond):
        score = source.to("tick")
        label = name or "The MIDI"
    elif isinstance(source, pretty_midi.PrettyMIDI):
        buffer = io.BytesIO()
        source.write(buffer)
        return load_score(buffer.getvalue(), name=name)
    else:
        if isinstance(source, bytes | bytearray | memoryview):
            data, label = bytes(source), name or "The MIDI data"
        else:
            path = Path(source)
            label = name or path.name
            if not path.is_file():
                raise InvalidMidi(f"{path}: no such MIDI file.")
            data = path.read_bytes()
        if not data:
            raise InvalidMidi(f"{label} is empty (0 bytes).")
        if len(data) > MAX_MIDI_BYTES:
            raise InvalidMidi(
                f"{label} is {len(data) / 2**20:.0f} MiB; MIDI files of at most "
                f"{MAX_MIDI_BYTES // 2**20} MiB are read."
            )
        if data[:4] != b"MThd":
            raise InvalidMidi(
                f"{label} is not a Standard MIDI File (it does not start with 'MThd'). "
                "Export it again as a .mid file."
            )
        try:
            score = symusic.Score.from_midi(data)
        except Exception as err:  # symusic raises RuntimeError/ValueError for damaged files
            raise InvalidMidi(
                f"{label} is damaged or truncated and cannot be read ({err}). "
                "Export it again as a Standard MIDI File (.mid)."
            ) from None
    if score.note_num() == 0:
        raise InvalidMidi(f"{label} holds no notes.")
    return score


def score_to_bytes(score: Score) -> bytes:
    """The score as Standard MIDI File bytes (deterministic for the same score)."""
    return bytes(score.dumps_midi())


def score_to_pretty_midi(score: Score) -> pretty_midi.PrettyMIDI:
    """The score as a PrettyMIDI (what engine.synth renders)."""
    return pretty_midi.PrettyMIDI(io.BytesIO(score_to_bytes(score)))


def duration_seconds(score: Score) -> float:
    """Seconds from the start to the end of the last note."""
    return float(score.to("second").end())


def first_tempo(score: Score) -> float:
    """The score's first tempo in quarter notes per minute (DEFAULT_TEMPO when none is set)."""
    return float(score.tempos[0].qpm) if len(score.tempos) else DEFAULT_TEMPO


# --------------------------------------------------------------------------------------------
# The tokenizer


def style_token(style: str) -> str:
    """The special token naming a generator style, e.g. "Style_chinese-folk"."""
    return STYLE_PREFIX + style.replace(" ", "-")


def make_tokenizer(styles: Sequence[str]) -> REMI:
    """A new REMI tokenizer with one `Style_` token per style.

    Args:
        styles: the generator's style names, in a fixed order.

    Returns:
        The tokenizer (save it with `tokenizer.save(path)`).
    """
    config = TokenizerConfig(
        pitch_range=PITCH_RANGE,
        beat_res=BEAT_RESOLUTION,
        num_velocities=VELOCITY_BINS,
        special_tokens=[*SPECIAL_TOKENS, *(style_token(s) for s in styles)],
        use_tempos=True,
        use_time_signatures=True,
        use_programs=True,
        one_token_stream_for_programs=True,
        num_tempos=TEMPO_BINS,
        tempo_range=TEMPO_RANGE,
        log_tempos=True,
        use_note_duration_programs=list(range(128)),  # drum hits carry no Duration token
        time_signature_range=TIME_SIGNATURES,
        delete_equal_successive_tempo_changes=True,
        delete_equal_successive_time_sig_changes=True,
        remove_duplicated_notes=True,
    )
    return REMI(config)


def load_tokenizer(path: str | Path) -> REMI:
    """Rebuild a tokenizer saved with `tokenizer.save(path)`.

    Raises:
        FileNotFoundError: when there is no file at `path`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no tokenizer file.")
    return REMI(params=path)


def tokenizer_styles(tokenizer: REMI) -> list[str]:
    """The style names a tokenizer has tokens for, in vocabulary order."""
    names = sorted((i, t) for t, i in tokenizer.vocab.items() if t.startswith(STYLE_PREFIX))
    return [t[len(STYLE_PREFIX) :].replace("-", " ") for _, t in names]


def tempo_token(tokenizer: REMI, bpm: float) -> int:
    """The id of the Tempo token nearest to `bpm`, measured as miditok does (in us per beat)."""
    tempos = np.asarray(tokenizer.tempos, dtype=np.float64)
    index = int(np.argmin(np.abs(60e6 / tempos - 60e6 / max(bpm, 1e-3))))
    return tokenizer.vocab[f"Tempo_{tempos[index]}"]


def token_value(tokenizer: REMI, token_id: int) -> str:
    """The token string of an id, e.g. "Pitch_60"."""
    return tokenizer[int(token_id)]


def supported_time_signature(numerator: int, denominator: int) -> tuple[int, int]:
    """The nearest time signature the tokenizer has a token for.

    A signature with the same bar length is preferred (2/1 -> 4/2), then the longest one that
    divides the bar evenly, with the same beat unit first (12/4 -> 6/4), else 4/4.
    """
    if numerator in TIME_SIGNATURES.get(denominator, ()):
        return numerator, denominator
    quarters = numerator * 4 / denominator
    for denom, numerators in TIME_SIGNATURES.items():
        for num in numerators:
            if abs(num * 4 / denom - quarters) < 1e-9:
                return num, denom
    # Longest bar that divides it, the same beat unit first.
    candidates = sorted(
        ((num, denom) for denom, nums in TIME_SIGNATURES.items() for num in nums),
        key=lambda s: (s[1] != denominator, -s[0] * 4 / s[1]),
    )
    for num, denom in candidates:
        if quarters % (num * 4 / denom) == 0:
            return num, denom
    return DEFAULT_TIME_SIGNATURE


def normalise_score(score: Score) -> Score:
    """A copy ready to tokenise: time signatures the tokenizer knows, no empty tracks.

    Args:
        score: any score.

    Returns:
        A new score; the input is not changed.
    """
    score = score.copy()
    signatures = symusic.Score(score.ticks_per_quarter).time_signatures
    for ts in score.time_signatures:
        num, denom = supported_time_signature(ts.numerator, ts.denominator)
        signatures.append(symusic.TimeSignature(ts.time, num, denom))
    score.time_signatures = signatures
    tracks = [t for t in score.tracks if t.note_num() > 0]
    score.tracks = type(score.tracks)(tracks) if tracks else score.tracks
    return score


def encode(tokenizer: REMI, score: Score) -> list[int]:
    """Token ids of a score, in one stream over all its instruments."""
    sequence = tokenizer.encode(normalise_score(score))
    if isinstance(sequence, list):  # one stream per track: not how ours is configured
        raise AssertionError("the tokenizer must put every program in one token stream")
    return list(sequence.ids)


def decode(tokenizer: REMI, ids: Sequence[int]) -> Score:
    """A score from token ids; special tokens (styles, padding) are skipped."""
    special = set(tokenizer.special_tokens_ids)
    kept = [int(i) for i in ids if int(i) not in special]
    return tokenizer.decode(kept)


# --------------------------------------------------------------------------------------------
# Piano rolls


@dataclass(frozen=True)
class PianoRoll:
    """Every note of a piece, as parallel arrays in seconds (for drawing)."""

    start: np.ndarray  # float64 seconds
    end: np.ndarray  # float64 seconds
    pitch: np.ndarray  # int16 MIDI pitch
    velocity: np.ndarray  # int16 1..127
    program: np.ndarray  # int16 General MIDI program (0..127); DRUM_PROGRAM for drums
    is_drum: np.ndarray  # bool

    @property
    def duration(self) -> float:
        """Seconds to the end of the last note (0 for an empty roll)."""
        return float(self.end.max(initial=0.0))

    def __len__(self) -> int:
        return len(self.start)


def piano_roll(source: ScoreSource) -> PianoRoll:
    """The notes of a piece as a `PianoRoll`, sorted by start then pitch.

    Raises:
        InvalidMidi: when `source` cannot be read (see `load_score`).
    """
    score = load_score(source).to("second")
    columns: dict[str, list[np.ndarray]] = {k: [] for k in ("start", "end", "pitch", "vel", "prog")}
    drums: list[np.ndarray] = []
    for track in score.tracks:
        if track.note_num() == 0:
            continue
        notes = track.notes.numpy()
        columns["start"].append(notes["time"].astype(np.float64))
        columns["end"].append((notes["time"] + notes["duration"]).astype(np.float64))
        columns["pitch"].append(notes["pitch"].astype(np.int16))
        columns["vel"].append(notes["velocity"].astype(np.int16))
        program = DRUM_PROGRAM if track.is_drum else track.program
        columns["prog"].append(np.full(len(notes["time"]), program, dtype=np.int16))
        drums.append(np.full(len(notes["time"]), track.is_drum, dtype=bool))
    start = np.concatenate(columns["start"])
    pitch = np.concatenate(columns["pitch"])
    order = np.lexsort((pitch, start))
    return PianoRoll(
        start=start[order],
        end=np.concatenate(columns["end"])[order],
        pitch=pitch[order],
        velocity=np.concatenate(columns["vel"])[order],
        program=np.concatenate(columns["prog"])[order],
        is_drum=np.concatenate(drums)[order],
    )


def piano_roll_matrix(
    roll: PianoRoll, *, frames_per_second: float = 20.0, include_drums: bool = False
) -> np.ndarray:
    """Rasterise a piano roll: velocity (0..1) per pitch and frame.

    Args:
        roll: the notes.
        frames_per_second: time resolution.
        include_drums: also draw drum hits (at their drum-map pitches).

    Returns:
        float32 array of shape (128, frames); the loudest note wins where notes overlap.
    """
    frames = int(np.ceil(roll.duration * frames_per_second))
    matrix = np.zeros((128, max(frames, 1)), dtype=np.float32)
    for i in range(len(roll)):
        if roll.is_drum[i] and not include_drums:
            continue
        a = int(np.floor(roll.start[i] * frames_per_second))
        b = max(a + 1, int(np.ceil(roll.end[i] * frames_per_second)))
        row = matrix[int(roll.pitch[i]), a:b]
        np.maximum(row, roll.velocity[i] / 127.0, out=row)
    return matrix


def music21_part_notes(part: Any) -> list[tuple[float, float, int, int]]:
    """The notes of a music21 part, ties joined and grace notes dropped.

    Returns:
        (onset in quarter notes, length in quarter notes, MIDI pitch, velocity) per note;
        chords give one entry per pitch; velocity 80 where the score gives none.
    """
    flat = part.flatten()
    with contextlib.suppress(Exception):  # odd tie structures: notes stay re-attacked
        flat = flat.stripTies()
    notes = []
    for element in flat.notes:
        length = float(element.quarterLength)
        if length <= 0 or element.duration.isGrace:
            continue
        velocity = getattr(getattr(element, "volume", None), "velocity", None) or 80
        for pitch in getattr(element, "pitches", ()):
            notes.append((float(element.offset), length, int(pitch.midi), int(velocity)))
    return notes


def music21_first_tempo(score: Any, default: float) -> float:
    """The quarter-note tempo (bpm) of a music21 score's first metronome mark, else `default`."""
    from music21 import tempo

    for mark in score.flatten().getElementsByClass(tempo.MetronomeMark):
        quarter = mark.getQuarterBPM()
        if quarter:
            return float(quarter)
    return default
