"""Compare two pieces of music (audio or MIDI): spectrograms, their difference, and distances.

    from engine.compare import compare, load_music
    result = compare(load_music("original.ogg"), load_music("generated.mid"))
    result.log_spectral_distance, result.chroma_similarity, result.embedding_cosine
    compare_sets("folk", load_generator(), load_markov(), load_classifier()).ours  # a set

Both clips are loudness-matched (equal RMS) and compared over the length of the shorter one.
The frame-by-frame measures (log-spectral distance, spectral convergence) say how far apart the
two sound moment by moment; the clip-level ones (chroma similarity, embedding cosine) say how
alike their harmony and overall sound are, whatever happens when. A generated piece is not
time-aligned with its original, so read the clip-level ones first.

For a whole set of pieces, `compare_sets` measures the Frechet distance between the audio
encoder's embeddings of generated pieces of a style and of real pieces of it (see
`frechet_distance`), for our generator and for the Markov baseline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine import audio, features
from engine.audio import Clip, read_source
from engine.errors import InvalidMidi, InvalidSettings, UnsupportedFormat

if TYPE_CHECKING:
    from engine.generate import Generator
    from engine.genre import GenreClassifier

MusicSource = str | Path | bytes
MIDI_SUFFIXES = (".mid", ".midi")
LENGTH_WARNING_SECONDS = 1.0  # lengths differing by more than this are mentioned
SILENT_FRAME_DB = -60.0  # frames whose loudest band is this far below the clip's peak: no chroma
PITCH_CLASS_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
MIN_SET_PIECES = 2  # a set's covariance needs at least two embeddings, and a set two pieces
SET_SECONDS = 15.0  # audio embedded per piece of a set by default
_EPSILON = 1e-10


@dataclass(frozen=True)
class PitchClasses:
    """How much of a piece is in each of the 12 pitch classes."""

    shares: np.ndarray  # (12,) float64, C first; sums to 1 (all zeros: nothing pitched)
    from_notes: bool  # True: MIDI note durations; False: the audio's chroma

    @property
    def source(self) -> str:
        """Where the shares come from, in words."""
        return "MIDI notes" if self.from_notes else "audio chroma"


@dataclass(frozen=True)
class Comparison:
    """How two clips differ: spectrograms over the compared span, and distances."""

    a_name: str  # the first clip (the original)
    b_name: str  # the second clip (e.g. the generated piece)
    seconds: float  # length compared: the shorter clip's
    log_spectral_distance: float  # dB, RMS over mel bands, mean over frames (0 = identical)
    spectral_convergence: float  # ||A - B|| / ||A|| of mel magnitudes (0 = identical)
    chroma_similarity: float  # cosine of the mean chroma vectors (1 = same harmony profile)
    embedding_cosine: float | None  # cosine of the encoder embeddings (None without a model)
    a_db: np.ndarray = field(repr=False)  # log-mel of A in dB re its peak, (mel bands, frames)
    b_db: np.ndarray = field(repr=False)  # log-mel of B, same shape
    frame_seconds: np.ndarray = field(repr=False)  # start time of each frame
    band_hz: np.ndarray = field(repr=False)  # centre frequency of each mel band
    a_chroma: np.ndarray = field(repr=False)  # chromagram of A, (12, frames), frames max 1
    b_chroma: np.ndarray = field(repr=False)  # chromagram of B, same shape
    a_pitch_classes: PitchClasses = field(repr=False)  # over the compared span
    b_pitch_classes: PitchClasses = field(repr=False)
    warnings: tuple[str, ...] = ()  # e.g. lengths differ, a clip is silent

    @property
    def difference_db(self) -> np.ndarray:
        """A minus B in dB, frame by frame: positive where A is louder."""
        return self.a_db - self.b_db

    def distances(self) -> dict[str, float | None]:
        """The four distances by name (the CLI's JSON keys)."""
        return {
            "log_spectral_distance": round(self.log_spectral_distance, 4),
            "spectral_convergence": round(self.spectral_convergence, 4),
            "chroma_similarity": round(self.chroma_similarity, 4),
            "embedding_cosine": (
                None if self.embedding_cosine is None else round(self.embedding_cosine, 4)
            ),
        }


def is_midi(data: bytes) -> bool:
    """True for a Standard MIDI File (its header chunk)."""
    return data[:4] == b"MThd"


def load_music(
    source: MusicSource, *, name: str | None = None, soundfont: str | Path | None = None
) -> Clip:
    """Audio as `engine.audio.load` reads it, or MIDI rendered with FluidSynth.

    Args:
        source: a path or the file's bytes: WAV, FLAC, OGG, Opus, MP3 or Standard MIDI.
        name: what to call it in messages (default: the file name, or "clip").
        soundfont: for rendering MIDI (default: the best installed).

    Raises:
        InvalidAudio: for unusable audio (missing, empty, unsupported, corrupt ...).
        InvalidMidi: for MIDI that cannot be read or holds no notes.
        RenderingUnavailable: for MIDI when FluidSynth or a soundfont is missing.
    """
    from engine.synth import render_midi

    data, label = read_source(source, name)
    if not is_midi(data):
        if Path(label).suffix.lower() in MIDI_SUFFIXES and data:
            raise InvalidMidi(f"{label} is not a Standard MIDI File (it lacks the MIDI header).")
        try:
            return audio.load(data, name=label)
        except UnsupportedFormat:
            raise UnsupportedFormat(
                f"{label} is neither audio nor MIDI the studio can read. Supported formats: "
                f"{audio.SUPPORTED_FORMATS}, and Standard MIDI files (.mid)."
            ) from None
    samples = render_midi(data, soundfont=soundfont, sample_rate=audio.SAMPLE_RATE, name=label)
    # Keyed by the MIDI's bytes: renders differ a little from run to run (FluidSynth's
    # chorus and reverb carry state), and the same MIDI must stay the same clip.
    rendered = audio.from_array(samples, audio.SAMPLE_RATE, name=label)
    return replace(rendered, sha256=hashlib.sha256(data).hexdigest())


def patch_embeddings(samples: np.ndarray, classifier: GenreClassifier) -> np.ndarray:
    """The encoder embedding of each patch (~3 s) of mono audio, (patches, dim) float32."""
    from engine.genre import encoder_patches, patch_logits

    patches, _ = encoder_patches(samples, classifier.encoder.config)
    embeddings, _ = patch_logits(patches, classifier)
    return embeddings


def clip_embedding(clip: Clip, classifier: GenreClassifier) -> np.ndarray:
    """The clip's encoder embedding: the mean over its patches."""
    return patch_embeddings(clip.samples, classifier).mean(axis=0)


def pitch_classes_from_notes(midi: bytes, *, seconds: float | None = None) -> PitchClasses | None:
    """Share of sounding time per pitch class of a MIDI file's pitched notes (drums left out).

    Args:
        midi: Standard MIDI File bytes.
        seconds: count only the notes' time within the first `seconds` (None: all of it).

    Returns:
        The shares, or None when the file has no pitched notes in that span.

    Raises:
        InvalidMidi: when the bytes cannot be read or hold no notes.
    """
    from engine.midi import piano_roll

    roll = piano_roll(midi)
    end = roll.end if seconds is None else np.minimum(roll.end, seconds)
    sounding = np.where(roll.is_drum, 0.0, np.maximum(end - roll.start, 0.0))
    shares = np.bincount(roll.pitch.astype(np.int64) % 12, weights=sounding, minlength=12)
    total = float(shares.sum())
    return PitchClasses(shares / total, from_notes=True) if total > 0 else None


def pitch_classes_from_chroma(chromagram: np.ndarray) -> PitchClasses:
    """The mean chroma vector of a chromagram (12, frames), normalised to sum 1."""
    profile = chromagram.astype(np.float64).mean(axis=1) if chromagram.size else np.zeros(12)
    total = float(profile.sum())
    return PitchClasses(profile / total if total > _EPSILON else profile, from_notes=False)


def log_spectral_distance(a_db: np.ndarray, b_db: np.ndarray) -> float:
    """Mean over frames of the RMS difference over bands, in dB; inputs (bands, frames)."""
    return float(np.sqrt(np.mean((a_db - b_db) ** 2, axis=0)).mean())


def spectral_convergence(a_magnitude: np.ndarray, b_magnitude: np.ndarray) -> float:
    """Frobenius norm of the difference relative to A's: 0 for identical spectrograms."""
    reference = max(float(np.linalg.norm(a_magnitude)), _EPSILON)
    return float(np.linalg.norm(a_magnitude - b_magnitude)) / reference


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors; 0 when either is all zeros."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > _EPSILON else 0.0


def _loudness_matched(samples: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return samples if rms < _EPSILON else (samples * (0.1 / rms)).astype(np.float32)


def compare(
    a: Clip,
    b: Clip,
    classifier: GenreClassifier | None = None,
    *,
    a_midi: bytes | None = None,
    b_midi: bytes | None = None,
) -> Comparison:
    """Spectrograms, chroma, pitch classes, difference and distances of two clips.

    Args:
        a: the reference (the original).
        b: the clip compared with it (e.g. the generated piece).
        classifier: the studio encoder for the embedding cosine (None: left out).
        a_midi: the MIDI `a` was rendered from: its pitch classes then come from the notes.
        b_midi: the same for `b`.

    Returns:
        The comparison over the shorter clip's length.
    """
    frames = min(len(a.samples), len(b.samples))
    seconds = frames / audio.SAMPLE_RATE
    warnings = list(dict.fromkeys(a.warnings + b.warnings))
    if abs(a.duration - b.duration) > LENGTH_WARNING_SECONDS:
        shorter, longer = (a, b) if a.duration < b.duration else (b, a)
        warnings.append(
            f"{shorter.name} lasts {shorter.duration:.1f} s and {longer.name} "
            f"{longer.duration:.1f} s: the first {seconds:.1f} s of each are compared."
        )
    a_samples = _loudness_matched(a.samples[:frames])
    b_samples = _loudness_matched(b.samples[:frames])
    a_power = features.mel_power(a_samples)
    b_power = features.mel_power(b_samples)
    a_db = features.log_mel_db(a_samples)
    b_db = features.log_mel_db(b_samples)
    a_chroma = _audible_chroma(a_samples, a_db)
    b_chroma = _audible_chroma(b_samples, b_db)
    embedding = None
    if classifier is not None:
        embedding = cosine(clip_embedding(a, classifier), clip_embedding(b, classifier))
    return Comparison(
        a_name=a.name,
        b_name=b.name,
        seconds=seconds,
        log_spectral_distance=log_spectral_distance(*_shared_db(a_power, b_power)),
        spectral_convergence=spectral_convergence(np.sqrt(a_power), np.sqrt(b_power)),
        chroma_similarity=cosine(a_chroma.mean(axis=1), b_chroma.mean(axis=1)),
        embedding_cosine=embedding,
        a_db=a_db,
        b_db=b_db,
        frame_seconds=features.frame_times(a_db.shape[1]),
        band_hz=features.mel_frequencies(n_mels=a_db.shape[0]),
        a_chroma=a_chroma,
        b_chroma=b_chroma,
        a_pitch_classes=_pitch_classes(a_midi, a_chroma, seconds),
        b_pitch_classes=_pitch_classes(b_midi, b_chroma, seconds),
        warnings=tuple(warnings),
    )


def _audible_chroma(samples: np.ndarray, db: np.ndarray) -> np.ndarray:
    """The chromagram with near-silent frames zeroed: normalising each frame to max 1 would
    otherwise turn their noise into full-strength chroma."""
    chroma = features.chroma(samples)
    chroma[:, db.max(axis=0, initial=-features.TOP_DB) < SILENT_FRAME_DB] = 0.0
    return chroma


def _pitch_classes(midi: bytes | None, chromagram: np.ndarray, seconds: float) -> PitchClasses:
    """From the notes when there is MIDI with pitched notes, else from the chroma."""
    from_notes = pitch_classes_from_notes(midi, seconds=seconds) if midi is not None else None
    return from_notes if from_notes is not None else pitch_classes_from_chroma(chromagram)


def _shared_db(a_power: np.ndarray, b_power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both powers in dB on one scale, floored TOP_DB below the louder one's peak.

    The floor keeps near-silent bins (where the dB value is arbitrary) from dominating.
    """
    peak = max(float(a_power.max(initial=0.0)), float(b_power.max(initial=0.0)), _EPSILON)
    floor = peak * 10.0 ** (-features.TOP_DB / 10.0)
    return tuple(10.0 * np.log10(np.maximum(p, floor) / peak) for p in (a_power, b_power))


# --------------------------------------------------------------------------------------------
# Sets of pieces: the Frechet distance between embedding distributions


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of embeddings (one per row).

    ||mean_a - mean_b||^2 + Tr(C_a + C_b - 2 (C_a^1/2 C_b C_a^1/2)^1/2), with C the sample
    covariances. With fewer embeddings than dimensions a covariance is singular; the trace of
    the matrix square root is then still well defined, and computed exactly from the
    eigenvalues of the symmetric positive semi-definite C_a^1/2 C_b C_a^1/2 (eigenvalues
    below the rank tolerance count as zero), never from an inverse or a non-symmetric
    `sqrtm`. No shrinkage is applied, so the distance is biased upwards for small sets:
    compare only distances from sets of the same sizes, beside a real-against-real reference.

    Args:
        a: (n_a, dim) embeddings of the first set.
        b: (n_b, dim) embeddings of the second set.

    Raises:
        InvalidSettings: when a set has fewer than MIN_SET_PIECES rows, the dimensions differ,
            or a value is not finite.
    """
    sets = [np.asarray(x, dtype=np.float64) for x in (a, b)]
    for which, x in zip(("first", "second"), sets, strict=True):
        if x.ndim != 2 or len(x) < MIN_SET_PIECES:
            count = len(x) if x.ndim == 2 else 0
            raise InvalidSettings(
                f"The Frechet distance needs at least {MIN_SET_PIECES} embeddings per set; the "
                f"{which} set has {count}. Compare larger sets."
            )
        if not np.isfinite(x).all():
            raise InvalidSettings(f"The {which} set of embeddings holds non-finite values.")
    if sets[0].shape[1] != sets[1].shape[1]:
        raise InvalidSettings(
            f"The sets' embeddings differ in size ({sets[0].shape[1]} and {sets[1].shape[1]}): "
            "embed both with the same encoder."
        )
    means = [x.mean(axis=0) for x in sets]
    cov_a, cov_b = (np.atleast_2d(np.cov(x, rowvar=False)) for x in sets)
    root_a = _psd_square_root(cov_a)
    middle = root_a @ cov_b @ root_a
    trace_root = float(np.sqrt(_nonnegative(np.linalg.eigvalsh((middle + middle.T) / 2.0))).sum())
    shift = float(np.sum((means[0] - means[1]) ** 2))
    return max(shift + float(np.trace(cov_a) + np.trace(cov_b)) - 2.0 * trace_root, 0.0)


def _psd_square_root(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a symmetric positive semi-definite matrix."""
    eigenvalues, vectors = np.linalg.eigh((matrix + matrix.T) / 2.0)
    return (vectors * np.sqrt(_nonnegative(eigenvalues))) @ vectors.T


def _nonnegative(eigenvalues: np.ndarray) -> np.ndarray:
    """Eigenvalues of a PSD matrix with round-off zeroed: those below the rank tolerance
    (as `np.linalg.matrix_rank`'s), whose square roots would otherwise add up to noise."""
    tolerance = max(float(eigenvalues.max(initial=0.0)), 0.0) * len(eigenvalues)
    return np.where(eigenvalues > tolerance * np.finfo(np.float64).eps, eigenvalues, 0.0)


@dataclass(frozen=True)
class SetComparison:
    """Frechet distances from generated sets to a set of real pieces of one style (0 = same)."""

    style: str
    pieces: int  # pieces in every set
    seconds: float  # audio embedded per piece, at most (its encoder patches are the samples)
    ours: float  # our generator's set against the real set
    markov: float  # the Markov baseline's set against the real set
    reference: float | None  # another real set against it: what real music scores (None: none)
    embeddings: dict[str, int]  # set name -> embeddings (encoder patches) it holds


def compare_sets(
    style: str,
    generator: Generator,
    markov: Generator,
    classifier: GenreClassifier,
    *,
    pieces: int = 4,
    seconds: float = SET_SECONDS,
    seed: int = 0,
    real: Sequence[MusicSource] | None = None,
    reference: Sequence[MusicSource] | None = None,
    soundfont: str | Path | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> SetComparison:
    """Generate `pieces` pieces of a style with each model and measure how far each set's
    sound is from real pieces of the style.

    Every piece, generated or real, is rendered the same way (FluidSynth), cut to its first
    `seconds`, and embedded by the audio encoder patch by patch (~3 s each); a set's
    embeddings are all its pieces' patches, as Frechet Audio Distance pools its frames.

    Args:
        style: a style of both models.
        generator: our generator (`engine.generate.load_generator`).
        markov: the baseline (`engine.generate.load_markov`).
        classifier: the audio encoder (`engine.genre.load_classifier`).
        pieces: pieces per set (seeds seed .. seed + pieces - 1), at least MIN_SET_PIECES.
        seconds: audio of each piece embedded; also the length generated.
        seed: the first seed.
        real: the real pieces, audio or MIDI (default: the shipped held-out pieces of the
            style); the first `pieces` are used.
        reference: other real pieces for a real-against-real reference (None: no reference).
        soundfont: for rendering (default: the best installed).
        progress: called with (fraction done, what is being done).

    Raises:
        InvalidSettings: for a bad style, length or seed, fewer than MIN_SET_PIECES pieces, or
            fewer real (or reference) pieces than `pieces`.
        InvalidMidi, InvalidAudio: for an unusable real piece.
        RenderingUnavailable: when FluidSynth or a soundfont is missing.
    """
    from engine.generate import GenerationSettings, generate, heldout_pieces, normalise_style

    if isinstance(pieces, bool) or not isinstance(pieces, int) or pieces < MIN_SET_PIECES:
        raise InvalidSettings(
            f"pieces = {pieces!r}: a set needs a whole number of at least {MIN_SET_PIECES} pieces."
        )
    style = normalise_style(style)
    if real is None:
        real = [piece.path for piece in heldout_pieces(style)]
    sources = {"real": list(real)}
    if reference is not None:
        sources["reference"] = list(reference)
    labels = {"ours": "Ours", "markov": "Markov", "real": "Real", "reference": "Reference real"}
    for name, found in sources.items():
        if len(found) < pieces:
            raise InvalidSettings(
                f"Only {len(found)} {name} pieces of {style!r} are at hand for sets of {pieces}: "
                f"choose at most {len(found)} pieces."
            )
    steps = pieces * (2 + len(sources))
    done = 0

    def embed(clip: Clip, message: str) -> np.ndarray:
        nonlocal done
        embeddings = patch_embeddings(clip.samples[: round(seconds * clip.sample_rate)], classifier)
        done += 1
        if progress is not None:
            progress(done / steps, message)
        return embeddings

    sets: dict[str, np.ndarray] = {}
    for name, model in (("ours", generator), ("markov", markov)):
        rows = []
        for i in range(pieces):
            settings = GenerationSettings(style=style, seconds=seconds, seed=seed + i)
            midi = generate(settings, model, render=False).midi
            clip = load_music(midi, name=f"{labels[name]} {i + 1}", soundfont=soundfont)
            rows.append(embed(clip, f"{labels[name]}: piece {i + 1} of {pieces}"))
        sets[name] = np.concatenate(rows)
    for name, found in sources.items():
        rows = []
        for i, source in enumerate(found[:pieces]):
            label = None if isinstance(source, str | Path) else f"{labels[name]} {i + 1}"
            clip = load_music(source, name=label, soundfont=soundfont)
            rows.append(embed(clip, f"{labels[name]} music: piece {i + 1} of {pieces}"))
        sets[name] = np.concatenate(rows)
    return SetComparison(
        style=style,
        pieces=pieces,
        seconds=seconds,
        ours=frechet_distance(sets["ours"], sets["real"]),
        markov=frechet_distance(sets["markov"], sets["real"]),
        reference=(
            frechet_distance(sets["reference"], sets["real"]) if "reference" in sets else None
        ),
        embeddings={name: len(rows) for name, rows in sets.items()},
    )
