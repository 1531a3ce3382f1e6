"""Benchmark of music generation (issue 3): ours against the Markov baseline.

So far: originality -- for a generated piece, the longest run of consecutive notes that also
occurs, note for note, in some training piece of its style. Notes are compared by their pitch
interval and onset interval to the note before (in twelfths of a beat), so a copy is found
whatever its key or tempo. Targets: median longest copied run <= 12 notes; no piece copies 32.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from engine.midi import ScoreSource, load_score

ONSET_STEPS_PER_BEAT = 12  # onset intervals are compared on this grid
MAX_ONSET_STEPS = 4 * 4 * ONSET_STEPS_PER_BEAT  # longer gaps (4 bars of 4/4) count as one gap
_HASH_BASE = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplication by it is invertible mod 2^64
_SEPARATOR = -1  # between training pieces


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
    score = load_score(source)
    tpq = score.ticks_per_quarter
    pitched = [t for t in score.tracks if not t.is_drum and t.note_num()]
    if drums is None:
        drums = not pitched
    tracks = [t for t in score.tracks if t.is_drum == drums and t.note_num()]
    if not tracks:
        return np.zeros(0, dtype=np.int64)
    onsets = np.concatenate([t.notes.numpy()["time"] for t in tracks]).astype(np.int64)
    pitches = np.concatenate([t.notes.numpy()["pitch"] for t in tracks]).astype(np.int64)
    order = np.lexsort((pitches, onsets))
    steps = np.round(onsets[order] * ONSET_STEPS_PER_BEAT / tpq).astype(np.int64)
    return interval_symbols(steps, pitches[order])


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
        return bool(len(windows)) and bool(np.isin(windows, self.hashes(k)).any())

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
        low, high = 0, len(symbols)  # low intervals are known to occur; find the largest
        while low < high:  # runs are monotone: a copied run of k holds copied runs of k - 1
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


def originality_summary(runs: Sequence[int]) -> dict[str, float]:
    """Distribution of longest copied runs, with the issue's two targets checked."""
    values = np.asarray(runs, dtype=np.float64)
    if not len(values):
        return {"pieces": 0}
    return {
        "pieces": int(len(values)),
        "median": float(np.median(values)),
        "p90": float(np.percentile(values, 90)),
        "max": float(values.max()),
        "share_at_least_32": float(np.mean(values >= 32)),
        "median_target_met": bool(np.median(values) <= 12),
        "no_copy_of_32": bool(values.max() < 32),
    }
