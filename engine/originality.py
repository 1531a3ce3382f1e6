"""Originality: does a piece replay a run of notes of a training piece?

Notes are compared by their pitch interval and onset interval to the note before (in twelfths
of a beat), so a copy is found whatever its key or tempo. `CopyIndex` measures the longest
copied run against whole training pieces (bench/generation.py); `CopyGuard` holds only the
hashes of every run of `COPY_LIMIT` notes of each style's training pieces (no notes, so it
ships beside the generator) and tells `engine.generate` to draw a piece again that replays one.

    guard = CopyGuard.load("checkpoints/generator_originality.npz")
    guard.copies("rock", note_intervals("groove.mid", drums=True))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ModelUnavailable
from engine.midi import ScoreSource, load_score

COPY_LIMIT = 32  # notes: no generated piece may play this many of a training piece in a row
GUARD_FILE = "generator_originality.npz"  # the CopyGuard, beside the generator

ONSET_STEPS_PER_BEAT = 12  # onset intervals are compared on this grid
MAX_ONSET_STEPS = 4 * 4 * ONSET_STEPS_PER_BEAT  # longer gaps (4 bars of 4/4) count as one gap
_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplication by it is invertible mod 2^64
_SEPARATOR = -1  # between training pieces

# --------------------------------------------------------------------------------------------
# Notes of a piece


@dataclass(frozen=True)
class PieceNotes:
    """The notes of one piece (its drum hits or its pitched notes), in beats."""

    onsets: np.ndarray  # float64 quarter notes from the start; ascending, then by pitch
    durations: np.ndarray  # float64 quarter notes
    pitches: np.ndarray  # int64 MIDI pitch (for drums: the General MIDI drum sound)
    drums: bool  # the notes are drum hits
    velocities: np.ndarray  # int64 MIDI velocity, 1-127

    @property
    def onset_steps(self) -> np.ndarray:
        """Onsets in ONSET_STEPS_PER_BEAT steps per beat, int64."""
        return np.round(self.onsets * ONSET_STEPS_PER_BEAT).astype(np.int64)


def piece_notes(source: ScoreSource, *, drums: bool | None = None) -> PieceNotes:
    """The notes of a piece, sorted by onset, then pitch.

    Args:
        source: MIDI path, bytes or score.
        drums: take drum notes (True), pitched notes (False), or pitched notes unless the piece
            has only drums (None).

    Raises:
        InvalidMidi: when `source` cannot be read or holds no notes.
    """
    score = load_score(source)
    pitched = [t for t in score.tracks if not t.is_drum and t.note_num()]
    if drums is None:
        drums = not pitched
    notes = [t.notes.numpy() for t in score.tracks if t.is_drum == drums and t.note_num()]
    if not notes:
        empty = np.zeros(0)
        return PieceNotes(empty, empty, empty.astype(np.int64), drums, empty.astype(np.int64))
    onsets, durations, pitches, velocities = (
        np.concatenate([n[key] for n in notes]).astype(np.int64)
        for key in ("time", "duration", "pitch", "velocity")
    )
    order = np.lexsort((pitches, onsets))
    tpq = score.ticks_per_quarter
    return PieceNotes(
        onsets[order] / tpq, durations[order] / tpq, pitches[order], drums, velocities[order]
    )


def note_intervals(source: ScoreSource, *, drums: bool | None = None) -> np.ndarray:
    """A piece as interval symbols: one per note after the first.

    Notes are ordered by onset, then pitch. Each symbol packs the pitch interval and the onset
    interval (in ONSET_STEPS_PER_BEAT steps, capped) to the previous note.

    Args:
        source: MIDI path, bytes or score.
        drums: compare drum notes (True), pitched notes (False), or pitched notes unless the
            piece has only drums (None).

    Returns:
        int64 symbols, len = notes - 1 (empty for fewer than two notes).
    """
    notes = piece_notes(source, drums=drums)
    return interval_symbols(notes.onset_steps, notes.pitches)


def interval_symbols(onset_steps: np.ndarray, pitches: np.ndarray) -> np.ndarray:
    """Pack (pitch interval, onset interval) of consecutive notes into one int64 each."""
    if len(pitches) < 2:
        return np.zeros(0, dtype=np.int64)
    gaps = np.clip(np.diff(onset_steps), 0, MAX_ONSET_STEPS)
    intervals = np.diff(pitches) + 128  # 1..255 for MIDI pitches
    return gaps * 256 + intervals


def _window_hashes(symbols: np.ndarray, k: int) -> np.ndarray:
    """A 64-bit polynomial hash of every window of k consecutive symbols."""
    n = len(symbols) - k + 1
    if n <= 0:
        return np.zeros(0, dtype=np.uint64)
    values = symbols.astype(np.uint64) + np.uint64(1)
    hashes = np.zeros(n, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for t in range(k):
            hashes = hashes * _HASH_BASE + values[t : t + n]
    return hashes


class CopyIndex:
    """The training pieces of one style, ready to be searched for copied runs.

    Window hashes are computed per run length on first use and kept, so measuring many
    generated pieces against the same training set costs little more than measuring one.
    """

    def __init__(self, training: Sequence[np.ndarray]) -> None:
        pieces = [np.asarray(t, dtype=np.int64) for t in training if len(t)]
        # One array, pieces separated by -1: symbols are >= 0, so a window that spans two
        # pieces holds a -1 and can never equal a window of a generated piece.
        parts = [x for t in pieces for x in (t, np.array([_SEPARATOR]))]
        self.symbols = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        self._hashes: dict[int, np.ndarray] = {}

    def hashes(self, k: int) -> np.ndarray:
        """Sorted unique hashes of every k-symbol window of the training pieces."""
        if k not in self._hashes:
            windows = _window_hashes(self.symbols, k)
            if k > 1:  # drop windows across a piece boundary
                ends = np.flatnonzero(self.symbols == _SEPARATOR)
                spans = np.zeros(len(self.symbols) + 1, dtype=np.int64)
                spans[ends + 1] = 1
                crossed = np.cumsum(spans)
                windows = windows[crossed[k : k + len(windows)] == crossed[: len(windows)]]
            self._hashes[k] = np.unique(windows)
        return self._hashes[k]

    def occurs(self, symbols: np.ndarray, k: int) -> bool:
        """True when some k consecutive symbols of `symbols` occur in a training piece."""
        if k == 0:
            return True
        windows = _window_hashes(np.asarray(symbols, dtype=np.int64), k)
        return _any_in(windows, self.hashes(k))

    def longest_copied_run(self, symbols: np.ndarray) -> int:
        """Longest run of consecutive notes of a piece that a training piece also plays.

        Args:
            symbols: the piece's interval symbols (`note_intervals`).

        Returns:
            Notes in the longest copied run: matched intervals + 1; 1 when no interval
            matches; 0 for a piece without notes.
        """
        symbols = np.asarray(symbols, dtype=np.int64)
        if not len(symbols):
            return 0
        # Runs are monotone (a copied run of k holds copied runs of k - 1): gallop up from 1,
        # then bisect. Copied runs are short, and each run length probed costs a pass over the
        # training pieces that grows with it, so the search stays among short lengths.
        low, high = 0, len(symbols)  # low intervals are known to occur; find the largest
        k = 1
        while k <= high and self.occurs(symbols, k):
            low, k = k, 2 * k
        high = min(high, k - 1)
        while low < high:
            mid = (low + high + 1) // 2
            if self.occurs(symbols, mid):
                low = mid
            else:
                high = mid - 1
        return low + 1


def longest_copied_run(generated: np.ndarray, training: Sequence[np.ndarray]) -> int:
    """Longest run of consecutive notes of `generated` found in any of `training`.

    Pure function over interval symbols (see `note_intervals`); builds a `CopyIndex` -- keep
    one instead when measuring many pieces against the same training set.
    """
    return CopyIndex(training).longest_copied_run(generated)


def _any_in(windows: np.ndarray, table: np.ndarray) -> bool:
    """True when some window hash is in the sorted `table`."""
    if not len(windows) or not len(table):
        return False
    # A binary search per window in the sorted table (np.isin would sort the table again).
    at = np.minimum(np.searchsorted(table, windows), len(table) - 1)
    return bool((table[at] == windows).any())


class CopyGuard:
    """Per style, the sorted hashes of every run of `limit` notes of its training pieces."""

    def __init__(self, tables: Mapping[str, np.ndarray], limit: int = COPY_LIMIT) -> None:
        self.tables = {s: np.asarray(t, dtype=np.uint64) for s, t in tables.items()}
        self.limit = int(limit)

    @classmethod
    def build(
        cls, training: Mapping[str, Sequence[np.ndarray]], limit: int = COPY_LIMIT
    ) -> CopyGuard:
        """The guard of each style's training pieces (their `note_intervals`)."""
        return cls({s: CopyIndex(p).hashes(limit - 1) for s, p in training.items()}, limit)

    def copies(self, style: str, symbols: np.ndarray) -> bool:
        """True when the piece (its interval symbols) plays `limit` consecutive notes of one of
        the style's training pieces; False too for a style the guard does not know."""
        windows = _window_hashes(np.asarray(symbols, dtype=np.int64), self.limit - 1)
        return _any_in(windows, self.tables.get(style, np.zeros(0, dtype=np.uint64)))

    def save(self, path: str | Path) -> None:
        """Write the guard as one .npz (styles, the limit, and the hash tables end to end)."""
        styles = list(self.tables)
        sizes = [len(self.tables[s]) for s in styles]
        hashes = np.concatenate([self.tables[s] for s in styles] or [np.zeros(0, np.uint64)])
        np.savez(path, styles=np.array(styles, dtype=str), sizes=np.array(sizes, dtype=np.int64),
                 hashes=hashes, limit=np.array(self.limit))  # fmt: skip

    @classmethod
    def load(cls, path: str | Path) -> CopyGuard:
        """Read a guard written by `save`.

        Raises:
            ModelUnavailable: when the file is missing or unreadable.
        """
        try:
            with np.load(path, allow_pickle=False) as data:
                styles = [str(s) for s in data["styles"]]
                ends = np.cumsum(data["sizes"])
                hashes = data["hashes"].astype(np.uint64)
                limit = int(data["limit"])
        except (OSError, ValueError, KeyError) as err:
            raise ModelUnavailable(f"The originality guard {path} is unreadable ({err}).") from None
        starts = np.r_[0, ends[:-1]]
        return cls({s: hashes[a:b] for s, a, b in zip(styles, starts, ends, strict=True)}, limit)
