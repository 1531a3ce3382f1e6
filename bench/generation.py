"""Benchmark of music generation (issue 3): ours and the Markov baseline, side by side.

    python -m bench.generation --pieces 50 --seconds 30 --out bench/results/generation.json
    python -m bench.generation --select-strength 1 2 3 --pieces 10 --seed 1000 --out X.json
    python -m bench.generation --classifier-cv --out bench/results/style_classifier.json

Per style, each model generates `--pieces` pieces of `--seconds` (seeds seed, seed + 1, ...; the
app's default sampling), each timed from settings to rendered audio, and each is measured:

- style accuracy: a gradient-boosted classifier trained only on real training pieces (excerpts
  as long as the generated pieces, cut at bar lines; symbolic features: no instruments, tempo
  or loudness but for the velocity of drum hits) labels it. The classifier's own accuracy on
  held-out real excerpts is reported beside it. Accuracies carry 95% intervals (Wilson per
  style; over styles, a normal approximation of the mean).
- closeness to held-out real music of its style: overlapping area of pooled histograms of pitch
  class (relative to each piece's key; for drum styles: which drum sounds), note duration (not
  for drums: hits have none), inter-onset interval, note density and polyphony. Real training
  excerpts measured the same way give the score real music gets.
- held-out perplexity: as stored in each checkpoint when it was trained (both models on the same
  held-out windows; see checkpoints/generator.md).
- originality: the longest run of consecutive notes that also occurs, note for note, in some
  training piece of its style. Notes are compared by their pitch interval and onset interval to
  the note before (in twelfths of a beat), so a copy is found whatever its key or tempo.
  Targets: median longest copied run <= 12 notes; no piece copies 32.
- speed: wall time to generate and render, after a warm-up; target >= 10x faster than real time.

--select-strength measures ours alone at several style strengths (classifier-free guidance),
which is how the app's default strength is chosen, on seeds the benchmark does not use.
--classifier-cv measures the style classifier alone on real music (cross-validated on the
training excerpts, grouped by piece; and on the held-out excerpts).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import SetSettings, add_set_arguments, rounded, set_settings, write_figures
from engine.midi import Score, ScoreSource, first_tempo, load_score
from engine.originality import (
    COPY_LIMIT,
    ONSET_STEPS_PER_BEAT,
    CopyIndex,
    PieceNotes,
    interval_symbols,
    note_intervals,
    piece_notes,
)

WINDOWS_PER_PIECE = 4  # excerpts taken from each real piece, one after another from its start
SPAN_BEATS = 4  # note density is counted in spans of this many beats
BAR_SIXTEENTHS = 16  # positions of drum hits in a bar of 4/4
Z_95 = 1.959964  # standard normal quantile of 97.5%: two-sided 95% intervals
# Drum hits softer than this are ghost notes: an edge between two of the tokenizer's eight
# velocities (47 | 63), so real hits and generated ones (always one of the eight) count alike.
GHOST_VELOCITY = 56
# Durations and inter-onset intervals (in beats) are binned two bins per octave, centred on the
# powers of sqrt(2), so that 1/4, 1/2, 1 and 2 beats sit in the middle of their bins.
LOG_BEAT_EDGES = np.r_[0.0, 2.0 ** ((np.arange(-10, 10) + 0.5) / 2), np.inf]
CLOSENESS_EDGES: dict[str, np.ndarray] = {
    "pitch_class": np.arange(129) - 0.5,  # pitch class relative to the key, or drum sound
    "duration": LOG_BEAT_EDGES,  # beats
    "ioi": LOG_BEAT_EDGES,  # beats between one onset and the next
    "density": np.r_[np.arange(0.0, 16.5, 0.5), np.inf],  # notes per beat, per span
    "polyphony": np.r_[np.arange(0.5, 16.5), np.inf],  # notes sounding at each onset
}
# Drum sounds (General MIDI keys) whose rhythm the style classifier looks at, group by group.
DRUM_GROUPS: dict[str, tuple[int, ...]] = {
    "kick": (35, 36),
    "snare": (37, 38, 39, 40),
    "hi-hat": (42, 44, 46),
    "toms": (41, 43, 45, 47, 48, 50),
    "cymbals": (49, 51, 52, 53, 55, 57, 59),
}
# Krumhansl & Kessler (1982) key profiles, tonic first.
MAJOR_PROFILE = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR_PROFILE = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
MODELS = ("ours", "markov")
TARGETS = {
    "style_accuracy": 0.90,  # ours, over all generated pieces
    "median_copied_run": 12,  # notes, at most
    "copied_run_limit": COPY_LIMIT,  # notes no piece may copy (the guard's limit too)
    "real_time_factor": 10.0,  # seconds of music per second of wall time, at least
}


# --------------------------------------------------------------------------------------------
# Excerpts of real pieces


def excerpts(
    score: Score, *, seconds: float, most: int = WINDOWS_PER_PIECE, whole_bars: bool = False
) -> list[Score]:
    """Consecutive excerpts of `seconds` (at the piece's first tempo) from the start; with
    `whole_bars`, rounded to whole bars of the first time signature (at least one bar), so that
    each starts at a bar line.

    A last excerpt shorter than half of the others is left out, unless it is the only one; so
    are excerpts without notes. Each starts at time 0; notes keep their full length.
    """
    quarters = seconds * first_tempo(score) / 60.0
    if whole_bars:
        signature = score.time_signatures[0] if len(score.time_signatures) else None
        bar = 4.0 * signature.numerator / signature.denominator if signature else 4.0
        quarters = max(1, round(quarters / bar)) * bar
    length = max(1, round(quarters * score.ticks_per_quarter))
    end = score.end()
    out = []
    for start in range(0, end, length)[:most]:
        if start and end - start < length / 2:
            break
        window = score.clip(start, start + length).shift_time(-start)
        if window.note_num():
            out.append(window)
    return out


# --------------------------------------------------------------------------------------------
# Closeness to real music


def key_tonic(pitches: np.ndarray, weights: np.ndarray) -> int:
    """Tonic pitch class (0 = C) of the key whose Krumhansl-Kessler profile, major or minor,
    correlates best with the weighted pitch-class histogram (0 when it is flat)."""
    histogram = np.bincount(np.asarray(pitches) % 12, weights=weights, minlength=12)
    if np.ptp(histogram) == 0:
        return 0
    keys = np.stack([np.roll(p, t) for p in (MAJOR_PROFILE, MINOR_PROFILE) for t in range(12)])
    keys = (keys - keys.mean(axis=1, keepdims=True)) / keys.std(axis=1, keepdims=True)
    return int(np.argmax(keys @ (histogram - histogram.mean()))) % 12


def note_statistics(notes: PieceNotes) -> dict[str, np.ndarray]:
    """The values each closeness metric pools over pieces (keys of CLOSENESS_EDGES).

    pitch_class: per note, its pitch class relative to the piece's tonic (drums: the drum
    sound); duration: per note, in beats (drums: none); ioi: beats between distinct onsets;
    density: notes per beat in each SPAN_BEATS span from the start; polyphony: notes sounding
    at each distinct onset (drums: hits at it).
    """
    if not len(notes.onsets):
        return {metric: np.zeros(0) for metric in CLOSENESS_EDGES}
    onsets, hits = np.unique(notes.onsets, return_counts=True)
    if notes.drums:
        pitch_class, durations, sounding = notes.pitches, np.zeros(0), hits
    else:
        pitch_class = (notes.pitches - key_tonic(notes.pitches, notes.durations)) % 12
        durations = notes.durations
        ends = np.sort(notes.onsets + notes.durations)
        sounding = np.searchsorted(notes.onsets, onsets, side="right")
        sounding = sounding - np.searchsorted(ends, onsets, side="right")
    spans = (notes.onsets // SPAN_BEATS).astype(np.int64)
    return {
        "pitch_class": pitch_class.astype(np.float64),
        "duration": durations,
        "ioi": np.diff(onsets),
        "density": np.bincount(spans) / SPAN_BEATS,
        "polyphony": sounding.astype(np.float64),
    }


def overlapping_area(counts: np.ndarray, reference: np.ndarray) -> float | None:
    """Overlapping area of two histograms, each normalised to sum 1: 1 = the same, 0 = disjoint.

    Returns:
        The area, or None when either histogram is empty.
    """
    counts, reference = np.asarray(counts, float), np.asarray(reference, float)
    if counts.sum() <= 0 or reference.sum() <= 0:
        return None
    return float(np.minimum(counts / counts.sum(), reference / reference.sum()).sum())


def closeness(
    pieces: Sequence[dict[str, np.ndarray]], reference: Sequence[dict[str, np.ndarray]]
) -> dict[str, float | None]:
    """Overlapping area per metric of the pooled statistics of `pieces` and `reference`.

    Args:
        pieces: `note_statistics` of each piece measured.
        reference: `note_statistics` of each real piece it is compared with.

    Returns:
        metric -> overlapping area (None when a side has no values, e.g. drum durations).
    """
    out: dict[str, float | None] = {}
    for metric, edges in CLOSENESS_EDGES.items():
        counts = [
            np.histogram(np.concatenate([s[metric] for s in group] or [np.zeros(0)]), edges)[0]
            for group in (pieces, reference)
        ]
        out[metric] = overlapping_area(*counts)
    return out


# --------------------------------------------------------------------------------------------
# The style classifier


def top_line_intervals(notes: PieceNotes) -> np.ndarray:
    """Semitones from each onset's highest note to the next onset's, clipped to an octave."""
    if not len(notes.onsets):
        return np.zeros(0, dtype=np.int64)
    _, starts = np.unique(notes.onsets, return_index=True)
    return np.clip(np.diff(np.maximum.reduceat(notes.pitches, starts)), -12, 12)


def _shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    counts = np.histogram(values, edges)[0].astype(np.float64)
    return counts / max(counts.sum(), 1.0)


def drum_groove(notes: PieceNotes) -> np.ndarray:
    """Per DRUM_GROUPS group: the share of its hits on each sixteenth of a 4/4 bar
    (BAR_SIXTEENTHS), its hits per beat, its mean velocity / 127 and its share of ghost notes
    (velocity below GHOST_VELOCITY). Zeros for pitched notes."""
    blocks = []
    beats = max(float(np.ceil(notes.onsets.max() + 1e-9)), 1.0) if len(notes.onsets) else 1.0
    sixteenths = np.round(notes.onsets * 4).astype(np.int64) % BAR_SIXTEENTHS
    for keys in DRUM_GROUPS.values():
        hit = np.isin(notes.pitches, keys) if notes.drums else np.zeros(len(notes.pitches), bool)
        velocity = notes.velocities[hit]
        blocks.append(_shares(sixteenths[hit], np.arange(BAR_SIXTEENTHS + 1) - 0.5))
        blocks.append(
            [
                hit.sum() / beats,
                velocity.mean() / 127 if len(velocity) else 0.0,
                np.mean(velocity < GHOST_VELOCITY) if len(velocity) else 0.0,
            ]
        )
    return np.concatenate(blocks)


def style_features(notes: PieceNotes) -> np.ndarray:
    """What the style classifier sees of a piece: shares of histogram bins, and register.

    Blocks: drums or not (1); pitch class relative to the key (12) and drum sounds (128);
    top-line melodic intervals (25); durations, inter-onset intervals (21 each); onset position
    within the beat (12), and of each DRUM_GROUPS group's hits (5 x 12); note density (33);
    polyphony (17); mean and spread of pitch / 127 (2); the drum groove (drum_groove, 5 x 19).
    Blocks that do not apply (drum sounds of a melody, ...) are zeros. Instruments, tempo and
    metadata are left out, and loudness but for drum velocities, so the classifier judges the
    notes alone.
    """
    stats = note_statistics(notes)
    melodic = not notes.drums
    none = np.zeros(0)
    positions = np.unique(notes.onset_steps) % ONSET_STEPS_PER_BEAT
    beat_edges = np.arange(ONSET_STEPS_PER_BEAT + 1) - 0.5
    drum_rhythm = [
        _shares(
            notes.onset_steps[np.isin(notes.pitches, keys)] % ONSET_STEPS_PER_BEAT
            if notes.drums
            else none,
            beat_edges,
        )
        for keys in DRUM_GROUPS.values()
    ]
    register = (
        np.array([notes.pitches.mean(), notes.pitches.std()]) / 127
        if melodic and len(notes.pitches)
        else np.zeros(2)
    )
    return np.concatenate(
        [
            [float(notes.drums)],
            _shares(stats["pitch_class"] if melodic else none, np.arange(13) - 0.5),
            _shares(notes.pitches if notes.drums else none, np.arange(129) - 0.5),
            _shares(top_line_intervals(notes) if melodic else none, np.arange(-12, 14) - 0.5),
            _shares(stats["duration"], LOG_BEAT_EDGES),
            _shares(stats["ioi"], LOG_BEAT_EDGES),
            _shares(positions, beat_edges),
            *drum_rhythm,
            _shares(stats["density"], CLOSENESS_EDGES["density"]),
            _shares(stats["polyphony"], CLOSENESS_EDGES["polyphony"]),
            register,
            drum_groove(notes),
        ]
    )


@dataclass(frozen=True)
class MeasuredPiece:
    """What the benchmark measures of one piece: generated, or an excerpt of a real one."""

    style: str
    statistics: dict[str, np.ndarray]  # note_statistics
    features: np.ndarray  # style_features
    intervals: np.ndarray  # interval symbols (originality)
    piece_id: str = ""  # the real piece an excerpt comes from
    draws: int = 1  # generated: draws it took to pass the originality guard (engine.generate)


def measure(source: ScoreSource, style: str, piece_id: str = "") -> MeasuredPiece:
    """Statistics, classifier features and interval symbols of a piece of `style`."""
    notes = piece_notes(source)
    return MeasuredPiece(
        style=style,
        statistics=note_statistics(notes),
        features=style_features(notes),
        intervals=interval_symbols(notes.onset_steps, notes.pitches),
        piece_id=piece_id,
    )


def train_style_classifier(pieces: Sequence[MeasuredPiece], *, seed: int) -> Any:
    """Gradient-boosted trees over `style_features`, styles weighted equally.

    (Boosting beat a random forest on the drum styles, the hard ones, in 5-fold cross-validation
    grouped by piece on the training excerpts: mean per-style accuracy 0.84 against 0.79. The
    drum groove block, with excerpts cut at bar lines, raised it to 0.88, drum styles 0.70 to
    0.78 (--classifier-cv); stronger regularisation did not help.)
    """
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(class_weight="balanced", random_state=seed)
    return model.fit(np.stack([p.features for p in pieces]), [p.style for p in pieces])


def cross_validate_classifier(
    pieces: Sequence[MeasuredPiece], *, seed: int, folds: int = 5
) -> dict[str, Any]:
    """The style classifier's label_accuracy in `folds`-fold cross-validation on real excerpts,
    folds grouped by piece (no piece on both sides) and stratified by style."""
    from sklearn.model_selection import StratifiedGroupKFold

    features = np.stack([p.features for p in pieces])
    styles = np.array([p.style for p in pieces])
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    labels = np.empty(len(pieces), dtype=object)
    for fit, held in splitter.split(features, styles, [p.piece_id for p in pieces]):
        model = train_style_classifier([pieces[i] for i in fit], seed=seed)
        labels[held] = model.predict(features[held])
    return label_accuracy(labels.tolist(), styles.tolist())


def accuracy_interval(correct: int, total: int) -> list[float]:
    """Wilson score interval (95%) of a share of `correct` labels among `total` (> 0)."""
    from scipy.stats import binomtest

    interval = binomtest(correct, total).proportion_ci(confidence_level=0.95, method="wilson")
    return [float(interval.low), float(interval.high)]


def balanced_interval(counts: Sequence[tuple[int, int]]) -> list[float]:
    """95% interval of the mean over styles of per-style accuracies, from (correct, total > 0)
    per style: normal approximation, each style's variance taken at (correct + 2) / (total + 4)
    (the "plus four" form of Agresti-Coull) so that a style at 0 or 1 still counts its
    uncertainty."""
    mean = float(np.mean([c / n for c, n in counts]))
    spread = float(np.sqrt(sum((c + 2) * (n - c + 2) / (n + 4) ** 3 for c, n in counts)))
    spread /= len(counts)
    return [max(mean - Z_95 * spread, 0.0), min(mean + Z_95 * spread, 1.0)]


def own_label_count(style: str, labelled_as: dict[str, int]) -> tuple[int, int]:
    """(pieces labelled `style`, all pieces) from what the pieces of `style` were labelled as."""
    return labelled_as.get(style, 0), sum(labelled_as.values())


def label_accuracy(labels: Sequence[str], styles: Sequence[str]) -> dict[str, Any]:
    """Share of pieces labelled with their own style: over all pieces, per style (with its 95%
    interval), and the mean over styles (balanced, with its interval); also what the pieces of
    each style were labelled as."""
    labels, styles = np.asarray(labels), np.asarray(styles)
    per_style = {}
    for style in dict.fromkeys(styles.tolist()):
        mine = labels[styles == style]
        labelled_as = dict(Counter(mine.tolist()).most_common())
        per_style[style] = {
            "accuracy": float(np.mean(mine == style)),
            "ci95": accuracy_interval(*own_label_count(style, labelled_as)),
            "labelled_as": labelled_as,
        }
    counts = [own_label_count(s, v["labelled_as"]) for s, v in per_style.items()]
    return {
        "accuracy": float(np.mean(labels == styles)),
        "balanced_accuracy": float(np.mean([s["accuracy"] for s in per_style.values()])),
        "balanced_accuracy_ci95": balanced_interval(counts),
        "per_style": per_style,
    }


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
        "share_at_least_32": float(np.mean(values >= TARGETS["copied_run_limit"])),
        "median_target_met": bool(np.median(values) <= TARGETS["median_copied_run"]),
        "no_copy_of_32": bool(values.max() < TARGETS["copied_run_limit"]),
    }


# --------------------------------------------------------------------------------------------
# Running the benchmark


@dataclass(frozen=True)
class RealCorpus:
    """Excerpts of the generator's real pieces, measured, and its training pieces indexed."""

    train: dict[str, list[MeasuredPiece]]  # style -> excerpts of training pieces
    heldout: dict[str, list[MeasuredPiece]]  # style -> excerpts of held-out pieces
    copies: dict[str, CopyIndex]  # style -> whole training pieces, for originality


def real_corpus(
    cache_dir: Path | None, styles: Sequence[str], *, seconds: float, windows: int
) -> RealCorpus:
    """Measure excerpts of every corpus piece of `styles` (see engine.train.generator_data).

    Raises:
        FileNotFoundError: when the generator's corpus has not been built.
    """
    from tqdm import tqdm

    from engine.train.dataset import default_cache_dir
    from engine.train.generator_data import corpus_dir, load_index

    root = cache_dir if cache_dir is not None else default_cache_dir()
    folder = corpus_dir(root)
    pieces = [p for p in load_index(root) if p.style in styles]
    measured: dict[str, dict[str, list[MeasuredPiece]]] = {"train": {}, "heldout": {}}
    training: dict[str, list[np.ndarray]] = {s: [] for s in styles}
    for piece in tqdm(pieces, desc="real pieces", unit="piece", smoothing=0.05):
        score = load_score(folder / piece.midi_path)
        if piece.split == "train":
            training[piece.style].append(note_intervals(score))
        measured[piece.split].setdefault(piece.style, []).extend(
            measure(w, piece.style, piece.piece_id)
            for w in excerpts(score, seconds=seconds, most=windows, whole_bars=True)
        )
    return RealCorpus(
        train=measured["train"],
        heldout=measured["heldout"],
        copies={s: CopyIndex(training[s]) for s in styles},
    )


def generate_pieces(
    generator: Any,
    styles: Sequence[str],
    *,
    pieces: int,
    seconds: float,
    seed: int,
    name: str,
    style_strength: float | None = None,
) -> tuple[dict[str, list[MeasuredPiece]], dict[str, list[float]], bool]:
    """Generate and render `pieces` pieces per style, timing each after one warm-up piece
    (at `style_strength`, or the app's default).

    Returns:
        (style -> measured pieces, {"wall", "cpu"}: seconds per piece, whether every piece
        was rendered).
    """
    from tqdm import tqdm

    from engine.generate import GenerationSettings, generate

    strength = {} if style_strength is None else {"style_strength": style_strength}
    # Warm-up: loads the soundfont and builds the token grammar, once per process or model.
    generate(GenerationSettings(style=styles[0], seconds=seconds, seed=seed), generator)
    measured: dict[str, list[MeasuredPiece]] = {s: [] for s in styles}
    times: dict[str, list[float]] = {"wall": [], "cpu": []}
    rendered = True
    with tqdm(total=len(styles) * pieces, desc=name, unit="piece", smoothing=0.05) as bar:
        for style in styles:
            for i in range(pieces):
                settings = GenerationSettings(
                    style=style, seconds=seconds, seed=seed + i, **strength
                )
                started, cpu = time.perf_counter(), time.process_time()
                result = generate(settings, generator)
                times["wall"].append(time.perf_counter() - started)
                times["cpu"].append(time.process_time() - cpu)
                rendered &= result.audio is not None
                piece = measure(result.midi, style)
                measured[style].append(replace(piece, draws=result.pieces[0].draws))
                bar.update()
    return measured, times, rendered


def score_style(
    mine: Sequence[MeasuredPiece], style: str, classifier: Any, real: RealCorpus
) -> dict[str, Any]:
    """Style accuracy (and labels), closeness and longest copied runs of generated pieces."""
    copied = [real.copies[style].longest_copied_run(p.intervals) for p in mine]
    labels = classifier.predict(np.stack([p.features for p in mine]))
    accuracy = label_accuracy(labels, [style] * len(mine))["per_style"][style]
    return {
        "style_accuracy": accuracy["accuracy"],
        "style_accuracy_ci95": accuracy["ci95"],
        "labelled_as": accuracy["labelled_as"],
        "closeness": closeness(
            [p.statistics for p in mine], [p.statistics for p in real.heldout[style]]
        ),
        "copied_runs": copied,
        "redrawn": sum(p.draws > 1 for p in mine),
    }


def speed_summary(
    wall: Sequence[float], cpu: Sequence[float], seconds: float
) -> dict[str, float | bool]:
    """Median and 90th percentile wall time per piece, and the real-time factor of the median.

    The CPU time of the process beside it shows how much of the wall time other work on a
    shared machine took; the target is judged on wall time.
    """
    median = float(np.median(wall))
    median_cpu = float(np.median(cpu))
    return {
        "pieces": len(wall),
        "median_s": round(median, 4),
        "p90_s": round(float(np.percentile(wall, 90)), 4),
        "real_time_factor": round(seconds / median, 2),
        "median_cpu_s": round(median_cpu, 4),
        "cpu_real_time_factor": round(seconds / median_cpu, 2),
        "target_met": bool(seconds / median >= TARGETS["real_time_factor"]),
    }


def mean_by_kind(per_style: dict[str, float]) -> dict[str, float]:
    """Mean of per-style figures over the melodic styles and over the drum styles."""
    from engine.generate import DRUM_STYLES

    kinds: dict[str, list[float]] = {}
    for style, value in per_style.items():
        kinds.setdefault("drums" if style in DRUM_STYLES else "melodic", []).append(value)
    return {kind: float(np.mean(values)) for kind, values in kinds.items()}


def _geometric_mean(values: Sequence[float]) -> float:
    return float(np.exp(np.mean(np.log(values))))


def _mean_closeness(per_style: Sequence[dict[str, float | None]]) -> dict[str, float | None]:
    """Mean over styles of each closeness metric (styles without the metric left out)."""
    out: dict[str, float | None] = {}
    for metric in CLOSENESS_EDGES:
        values = [c[metric] for c in per_style if c[metric] is not None]
        out[metric] = float(np.mean(values)) if values else None
    return out


def run(settings: SetSettings) -> dict[str, Any]:
    """The whole benchmark; returns the JSON figures."""
    pieces, seconds, seed = settings.pieces, settings.seconds, settings.seed
    windows, styles, cache_dir = settings.windows, settings.styles, settings.cache_dir
    from engine.generate import GenerationSettings, load_generator, load_markov

    defaults = GenerationSettings()
    started = time.perf_counter()
    load_before = os.getloadavg()
    real = real_corpus(cache_dir, styles, seconds=seconds, windows=windows)
    train = [p for s in styles for p in real.train.get(s, [])]
    heldout = [p for s in styles for p in real.heldout.get(s, [])]
    print(f"style classifier: fitting on {len(train)} real excerpts", file=sys.stderr)
    classifier_model = train_style_classifier(train, seed=seed)
    real_labels = classifier_model.predict(np.stack([p.features for p in heldout]))
    classifier = label_accuracy(real_labels, [p.style for p in heldout])
    rng = np.random.default_rng(seed)
    report: dict[str, Any] = {"styles": {s: {} for s in styles}}
    for style in styles:  # real training excerpts: the closeness and copying real music shows
        sample = rng.permutation(len(real.train[style]))[:pieces]
        heldout_stats = [p.statistics for p in real.heldout[style]]
        judged = classifier["per_style"][style]
        report["styles"][style]["real"] = {
            "style_accuracy": judged["accuracy"],
            "style_accuracy_ci95": judged["ci95"],
            "labelled_as": judged["labelled_as"],
            "closeness": closeness(
                [real.train[style][i].statistics for i in sample], heldout_stats
            ),
            "originality": originality_summary(
                [real.copies[style].longest_copied_run(p.intervals) for p in real.heldout[style]]
            ),
        }
    speed, runs = {}, {}
    for name, generator in (("ours", load_generator()), ("markov", load_markov())):
        generated, times, rendered = generate_pieces(
            generator, styles, pieces=pieces, seconds=seconds, seed=seed, name=name
        )
        speed[name] = {**speed_summary(times["wall"], times["cpu"], seconds), "rendered": rendered}
        perplexity = generator.metrics["heldout_perplexity"]
        runs[name] = []
        for style in styles:
            scored = score_style(generated[style], style, classifier_model, real)
            copied = scored.pop("copied_runs")
            runs[name].extend(copied)
            report["styles"][style][name] = {
                **scored,
                "heldout_perplexity": perplexity[style],
                "originality": originality_summary(copied),
            }
    overall: dict[str, Any] = {}
    for name in (*MODELS, "real"):
        rows = [report["styles"][s][name] for s in styles]
        overall[name] = {
            "style_accuracy": float(np.mean([r["style_accuracy"] for r in rows])),
            "style_accuracy_ci95": balanced_interval(
                [own_label_count(s, r["labelled_as"]) for s, r in zip(styles, rows, strict=True)]
            ),
            "style_accuracy_by_kind": mean_by_kind(
                {s: r["style_accuracy"] for s, r in zip(styles, rows, strict=True)}
            ),
            "closeness": _mean_closeness([r["closeness"] for r in rows]),
        }
        if name in MODELS:
            overall[name]["heldout_perplexity"] = _geometric_mean(
                [r["heldout_perplexity"] for r in rows]
            )
            overall[name]["originality"] = originality_summary(runs[name])
            overall[name]["redrawn"] = sum(r["redrawn"] for r in rows)
    ours = overall["ours"]
    return rounded(
        {
            "settings": {
                "pieces_per_style": pieces,
                "seconds": seconds,
                "seeds": [seed, seed + pieces - 1],
                "sampling": f"temperature {defaults.temperature}, top-p {defaults.top_p}",
                "real_excerpts_per_piece": windows,
                "styles": list(styles),
            },
            "classifier": {
                "kind": "gradient-boosted trees (scikit-learn), styles weighted equally",
                "trained_on": f"{len(train)} excerpts of real training pieces",
                "heldout_excerpts": len(heldout),
                "heldout_accuracy": classifier["accuracy"],
                "heldout_balanced_accuracy": classifier["balanced_accuracy"],
                "heldout_per_style": classifier["per_style"],
            },
            "overall": overall,
            "styles": report["styles"],
            "speed": speed,
            "targets": {
                "style_accuracy_ours": ours["style_accuracy"] >= TARGETS["style_accuracy"],
                "median_copied_run_ours": ours["originality"]["median_target_met"],
                "no_copy_of_32_ours": ours["originality"]["no_copy_of_32"],
                "real_time_factor_ours": speed["ours"]["target_met"],
            },
            "notes": {
                "real": "style_accuracy: the classifier on held-out real excerpts; closeness: "
                "as many training excerpts as generated pieces (seeded choice) against the "
                "held-out ones; originality: held-out excerpts against the training pieces",
                "closeness": "overlapping area (0..1) of pooled histograms, against excerpts "
                "of the style's held-out pieces",
                "heldout_perplexity": "read from each checkpoint's stored metrics (training "
                "time, same held-out windows for both models; see checkpoints/generator.md)",
                "speed": "wall time of engine.generate.generate with rendering, per piece, "
                "after one warm-up piece",
                "redrawn": "pieces drawn again because a draw played 32 notes in a row of a "
                "training piece (engine.originality; generation timed with the redraws)",
            },
            "machine": {
                "cpus": os.cpu_count(),
                "load_average_before": list(load_before),
                "load_average_after": list(os.getloadavg()),
                "minutes": (time.perf_counter() - started) / 60,
            },
        },
        4,
    )


def classifier_figures(settings: SetSettings) -> dict[str, Any]:
    """The style classifier on real music alone: cross-validated on the training excerpts
    (grouped by piece), and fitted on them and scored on the held-out excerpts."""
    real = real_corpus(
        settings.cache_dir, settings.styles, seconds=settings.seconds, windows=settings.windows
    )
    train = [p for s in settings.styles for p in real.train.get(s, [])]
    heldout = [p for s in settings.styles for p in real.heldout.get(s, [])]
    print(f"style classifier: cross-validating on {len(train)} real excerpts", file=sys.stderr)
    figures = {
        "cross_validation": cross_validate_classifier(train, seed=settings.seed),
        "heldout": label_accuracy(
            train_style_classifier(train, seed=settings.seed).predict(
                np.stack([p.features for p in heldout])
            ),
            [p.style for p in heldout],
        ),
    }
    for result in figures.values():
        result["balanced_accuracy_by_kind"] = mean_by_kind(
            {s: v["accuracy"] for s, v in result["per_style"].items()}
        )
    return rounded(
        {
            "settings": {
                "seconds": settings.seconds,
                "windows": settings.windows,
                "seed": settings.seed,
                "styles": list(settings.styles),
            },
            "excerpts": {"train": len(train), "heldout": len(heldout)},
            **figures,
        },
        4,
    )


def select_strength(settings: SetSettings, strengths: Sequence[float]) -> dict[str, Any]:
    """Ours at each style strength: style accuracy, closeness and copying (to choose the app's
    default; run it on other seeds than the benchmark's, e.g. --seed 1000)."""
    pieces, seconds, seed = settings.pieces, settings.seconds, settings.seed
    windows, styles, cache_dir = settings.windows, settings.styles, settings.cache_dir
    from engine.generate import load_generator

    real = real_corpus(cache_dir, styles, seconds=seconds, windows=windows)
    train = [p for s in styles for p in real.train.get(s, [])]
    classifier = train_style_classifier(train, seed=seed)
    generator = load_generator()
    rows = []
    for strength in strengths:
        generated, times, _ = generate_pieces(
            generator,
            styles,
            pieces=pieces,
            seconds=seconds,
            seed=seed,
            name=f"strength {strength:g}",
            style_strength=strength,
        )
        scored = {s: score_style(generated[s], s, classifier, real) for s in styles}
        per_style = {s: r["style_accuracy"] for s, r in scored.items()}
        rows.append(
            {
                "style_strength": strength,
                "style_accuracy": float(np.mean(list(per_style.values()))),
                "style_accuracy_ci95": balanced_interval(
                    [own_label_count(s, r["labelled_as"]) for s, r in scored.items()]
                ),
                "style_accuracy_by_kind": mean_by_kind(per_style),
                "per_style": per_style,
                "per_style_longest_copied_run": {
                    s: max(r["copied_runs"], default=0) for s, r in scored.items()
                },
                "closeness": _mean_closeness([r["closeness"] for r in scored.values()]),
                "originality": originality_summary(
                    [run for r in scored.values() for run in r["copied_runs"]]
                ),
                "median_wall_s": float(np.median(times["wall"])),
            }
        )
    return rounded(
        {
            "settings": {
                "pieces_per_style": pieces,
                "seconds": seconds,
                "seeds": [seed, seed + pieces - 1],
                "styles": list(styles),
            },
            "strengths": rows,
        },
        4,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; print the JSON figures and write them to --out."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_set_arguments(
        parser,
        pieces=50,
        seconds=30.0,
        windows=WINDOWS_PER_PIECE,
        out="bench/results/generation.json",
    )
    parser.add_argument("--select-strength", type=float, nargs="+", metavar="S",
                        help="instead: ours only, at each of these style strengths")  # fmt: skip
    parser.add_argument("--classifier-cv", action="store_true",
                        help="instead: the style classifier alone, cross-validated on real "
                        "training excerpts")  # fmt: skip
    args = parser.parse_args(argv)
    if args.classifier_cv:
        figures = classifier_figures(set_settings(args))
    elif args.select_strength:
        figures = select_strength(set_settings(args), args.select_strength)
    else:
        figures = run(set_settings(args))
    write_figures(figures, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
