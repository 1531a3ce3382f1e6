"""Genre classification of a clip: overall and over time."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from scipy.special import expit

from engine.audio import Clip, released_level
from engine.features import (
    ENCODER_HOP,
    ENCODER_RATE,
    cut_patches,
    encoder_hpss_log_mel,
    encoder_log_mel,
)
from engine.models.encoder import EncoderConfig, StudioEncoder

GENRES: tuple[str, ...] = (
    "blues",
    "classical",
    "country",
    "electronic",
    "folk",
    "jazz",
    "latin",
    "pop/rock",
    "r&b",
    "rap",
    "reggae",
)
SEGMENT_SECONDS = 5.0  # length of one window of the genre-over-time view
PATCH_SECONDS = 187 * ENCODER_HOP / ENCODER_RATE  # length of one encoder patch (~3 s)


@dataclass(frozen=True)
class GenreSegment:
    """The genre of one window of a clip."""

    start: float  # seconds from the clip's start
    end: float  # seconds from the clip's start
    top: str  # most likely genre in this window
    genres: dict[str, float]  # probability per genre name in this window


@dataclass(frozen=True)
class GenrePrediction:
    """Genre probabilities of a whole clip and of its windows."""

    genres: dict[str, float]  # probability per genre name (independent, multilabel)
    top: str  # most likely genre
    segments: tuple[GenreSegment, ...]  # about SEGMENT_SECONDS each, in time order
    warnings: tuple[str, ...]  # carried over from loading (silence, cut to 10 minutes)


PATCH_HOP_FRAMES = 187  # encoder patches follow each other without overlap (~3 s each)
DEFAULT_CHECKPOINT = Path(__file__).resolve().parent.parent / "checkpoints" / "genre.pt"
CHECKPOINT_ENV = "MUSIC_STUDIO_GENRE_CHECKPOINT"  # overrides DEFAULT_CHECKPOINT


@dataclass(frozen=True)
class GenreClassifier:
    """A loaded studio encoder, ready for inference: its genre head, and its other heads
    (mood, quadrant) when the checkpoint has them."""

    encoder: StudioEncoder  # in eval mode
    labels: tuple[str, ...]  # genre name of each output
    device: torch.device  # where the encoder runs
    bfloat16: bool = False  # run in bfloat16 on a CPU with native bf16 (about 2x faster)
    head_labels: dict[str, tuple[str, ...]] = field(default_factory=dict)  # other heads' outputs
    metrics: dict = field(default_factory=dict)  # the figures stored in the checkpoint


@dataclass(frozen=True)
class ClipAnalysis:
    """Everything one encoder pass says about a clip, patch by patch: the input of the genre,
    mood and similarity fronts."""

    duration: float  # clip length in seconds
    starts: np.ndarray  # (patches,) start of each patch in seconds
    embeddings: np.ndarray  # (patches, dim) the shared embedding of each patch
    logits: dict[str, np.ndarray]  # head name -> (patches, outputs) float32 logits
    labels: dict[str, tuple[str, ...]]  # head name -> the name of each output
    warnings: tuple[str, ...]  # carried over from loading (silence, cut to 10 minutes)


def default_checkpoint() -> Path:
    """The encoder checkpoint used by default ($MUSIC_STUDIO_GENRE_CHECKPOINT overrides)."""
    return Path(os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT)


def load_classifier(path: Path | None = None) -> GenreClassifier:
    """Load the genre classifier (CUDA when present, else CPU).

    Raises:
        ModelUnavailable: when the checkpoint is missing or unreadable.
    """
    path = Path(path or default_checkpoint())
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    encoder, labels, metrics = StudioEncoder.from_checkpoint(path, device=device)
    return GenreClassifier(
        encoder=encoder,
        labels=tuple(labels["genre"]),
        device=device,
        bfloat16=device.type == "cpu" and cpu_has_native_bfloat16(),
        head_labels={head: tuple(names) for head, names in labels.items() if head != "genre"},
        metrics=metrics if isinstance(metrics, dict) else {},
    )


def cpu_has_native_bfloat16() -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX): elsewhere
    bfloat16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def encoder_patches(
    samples: np.ndarray,
    config: EncoderConfig,
    *,
    hop_frames: int = PATCH_HOP_FRAMES,
    levelled: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Cut a clip's encoder input into patches, `hop_frames` apart (default: no overlap), from
    the samples brought to the level of released music (`released_level`; `levelled=False`:
    as they are, to measure what that changes).

    Returns:
        (patches (N, channels, mels, frames), start time of each patch in seconds)
    """
    if levelled:
        samples = released_level(samples)
    if config.input_channels == 3:
        log_mel = encoder_hpss_log_mel(samples)
    else:
        log_mel = encoder_log_mel(samples)[None]
    patches, starts = cut_patches(log_mel, patch_frames=config.patch_frames, hop_frames=hop_frames)
    return patches, np.asarray(starts, dtype=np.float64) * ENCODER_HOP / ENCODER_RATE


def patch_logits(
    patches: np.ndarray, classifier: GenreClassifier
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """One encoder forward pass over patches.

    Returns:
        (embeddings (patches, dim), {head name: logits (patches, outputs)}), float32
    """
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=classifier.bfloat16):
        embedding, logits = classifier.encoder(torch.from_numpy(patches).to(classifier.device))
        return (
            embedding.float().cpu().numpy(),
            {head: values.float().cpu().numpy() for head, values in logits.items()},
        )


def patch_probabilities(
    patches: np.ndarray, classifier: GenreClassifier
) -> tuple[np.ndarray, np.ndarray]:
    """One encoder forward pass over patches.

    Returns:
        (genre probabilities (patches, genres), embeddings (patches, dim))
    """
    embeddings, logits = patch_logits(patches, classifier)
    return expit(logits["genre"]), embeddings


def analyse(
    clip: Clip,
    classifier: GenreClassifier,
    *,
    hop_frames: int = PATCH_HOP_FRAMES,
    levelled: bool = True,
) -> ClipAnalysis:
    """Run the encoder once over a clip: every head's outputs and the embedding, per patch.

    Args:
        clip: audio from engine.audio.load.
        classifier: from load_classifier.
        hop_frames: encoder frames between patch starts (default: patches do not overlap;
            similar-track search reads half-overlapping ones).
        levelled: read the clip at the level of released music (see `encoder_patches`).
    """
    patches, starts = encoder_patches(
        clip.samples, classifier.encoder.config, hop_frames=hop_frames, levelled=levelled
    )
    embeddings, logits = patch_logits(patches, classifier)
    return ClipAnalysis(
        duration=clip.duration,
        starts=starts,
        embeddings=embeddings,
        logits=logits,
        labels={"genre": classifier.labels, **classifier.head_labels},
        warnings=clip.warnings,
    )


def windows(analysis: ClipAnalysis) -> list[tuple[float, float, np.ndarray]]:
    """The windows of the over-time views: about SEGMENT_SECONDS each, covering the clip.

    Returns:
        (start, end, mask of the patches whose centre lies inside) per window, in time order;
        a window narrower than the patch hop takes its nearest patch.
    """
    count = max(1, round(analysis.duration / SEGMENT_SECONDS))
    edges = np.linspace(0.0, analysis.duration, count + 1)
    centres = analysis.starts + PATCH_SECONDS / 2
    spans = []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        inside = (centres >= start) & (centres < end)
        if not inside.any():
            distance = np.abs(centres - (start + end) / 2)
            inside = distance == distance.min()
        spans.append((float(start), float(end), inside))
    return spans


def genres_from(analysis: ClipAnalysis) -> GenrePrediction:
    """The genre view of an analysis: probabilities overall and per window."""
    labels = analysis.labels["genre"]
    probabilities = expit(analysis.logits["genre"])
    overall = probabilities.mean(axis=0)
    segments = []
    for start, end, inside in windows(analysis):
        window = probabilities[inside].mean(axis=0)
        segments.append(
            GenreSegment(
                start=start,
                end=end,
                top=labels[int(window.argmax())],
                genres=named(window, labels),
            )
        )
    return GenrePrediction(
        genres=named(overall, labels),
        top=labels[int(overall.argmax())],
        segments=tuple(segments),
        warnings=analysis.warnings,
    )


def classify(clip: Clip, classifier: GenreClassifier) -> GenrePrediction:
    """Genre probabilities of a clip, overall and per window of about SEGMENT_SECONDS.

    Args:
        clip: audio from engine.audio.load.
        classifier: from load_classifier.
    """
    return genres_from(analyse(clip, classifier))


def named(values: np.ndarray, labels: tuple[str, ...]) -> dict[str, float]:
    """{label: value rounded to 4 decimals}, in label order."""
    return {label: round(float(value), 4) for label, value in zip(labels, values, strict=True)}
