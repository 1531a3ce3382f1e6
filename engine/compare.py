"""Compare two pieces of music (audio or MIDI): spectrograms, their difference, and distances.

    from engine.compare import compare, load_music
    result = compare(load_music("original.ogg"), load_music("generated.mid"))
    result.log_spectral_distance, result.chroma_similarity, result.embedding_cosine

Both clips are loudness-matched (equal RMS) and compared over the length of the shorter one.
The frame-by-frame measures (log-spectral distance, spectral convergence) say how far apart the
two sound moment by moment; the clip-level ones (chroma similarity, embedding cosine) say how
alike their harmony and overall sound are, whatever happens when. A generated piece is not
time-aligned with its original, so read the clip-level ones first.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine import audio, features
from engine.audio import Clip
from engine.errors import InvalidMidi, MissingFile, UnsupportedFormat

if TYPE_CHECKING:
    from engine.genre import GenreClassifier

MusicSource = str | Path | bytes
MIDI_SUFFIXES = (".mid", ".midi")
LENGTH_WARNING_SECONDS = 1.0  # lengths differing by more than this are mentioned
_EPSILON = 1e-10


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

    if isinstance(source, bytes | bytearray | memoryview):
        data, label = bytes(source), name or "clip"
    else:
        path = Path(source)
        label = name or path.name
        if not path.is_file():
            raise MissingFile(f"There is no file called {path.name} there; check the path.")
        data = path.read_bytes()
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


def clip_embedding(clip: Clip, classifier: GenreClassifier) -> np.ndarray:
    """The clip's encoder embedding: the mean over its patches."""
    from engine.genre import encoder_patches, patch_probabilities

    patches, _ = encoder_patches(clip.samples, classifier.encoder.config)
    _, embeddings = patch_probabilities(patches, classifier)
    return embeddings.mean(axis=0)


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


def compare(a: Clip, b: Clip, classifier: GenreClassifier | None = None) -> Comparison:
    """Spectrograms, difference and distances of two clips.

    Args:
        a: the reference (the original).
        b: the clip compared with it (e.g. the generated piece).
        classifier: the studio encoder for the embedding cosine (None: left out).

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
    a_chroma = features.chroma(a_samples).mean(axis=1)
    b_chroma = features.chroma(b_samples).mean(axis=1)
    embedding = None
    if classifier is not None:
        embedding = cosine(clip_embedding(a, classifier), clip_embedding(b, classifier))
    return Comparison(
        a_name=a.name,
        b_name=b.name,
        seconds=seconds,
        log_spectral_distance=log_spectral_distance(*_shared_db(a_power, b_power)),
        spectral_convergence=spectral_convergence(np.sqrt(a_power), np.sqrt(b_power)),
        chroma_similarity=cosine(a_chroma, b_chroma),
        embedding_cosine=embedding,
        a_db=a_db,
        b_db=b_db,
        frame_seconds=features.frame_times(a_db.shape[1]),
        band_hz=features.mel_frequencies(n_mels=a_db.shape[0]),
        warnings=tuple(warnings),
    )


def _shared_db(a_power: np.ndarray, b_power: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both powers in dB on one scale, floored TOP_DB below the louder one's peak.

    The floor keeps near-silent bins (where the dB value is arbitrary) from dominating.
    """
    peak = max(float(a_power.max(initial=0.0)), float(b_power.max(initial=0.0)), _EPSILON)
    floor = peak * 10.0 ** (-features.TOP_DB / 10.0)
    return tuple(10.0 * np.log10(np.maximum(p, floor) / peak) for p in (a_power, b_power))
