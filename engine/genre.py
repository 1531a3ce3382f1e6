"""Genre classification of a clip: overall and over time."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.audio import Clip
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
    """A loaded encoder with its genre head, ready for inference."""

    encoder: StudioEncoder  # in eval mode
    labels: tuple[str, ...]  # genre name of each output
    device: torch.device  # where the encoder runs
    bfloat16: bool = False  # run in bfloat16 on a CPU with native bf16 (about 2x faster)


def load_classifier(path: Path | None = None) -> GenreClassifier:
    """Load the genre classifier (CUDA when present, else CPU).

    Raises:
        ModelUnavailable: when the checkpoint is missing or unreadable.
    """
    path = Path(path or os.environ.get(CHECKPOINT_ENV) or DEFAULT_CHECKPOINT)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    encoder, labels, _ = StudioEncoder.from_checkpoint(path, device=device)
    return GenreClassifier(
        encoder=encoder,
        labels=tuple(labels["genre"]),
        device=device,
        bfloat16=device.type == "cpu" and cpu_has_native_bfloat16(),
    )


def cpu_has_native_bfloat16() -> bool:
    """True when this CPU computes bfloat16 in hardware (AVX-512 BF16 or AMX): elsewhere
    bfloat16 is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def encoder_patches(samples: np.ndarray, config: EncoderConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cut a clip's encoder input into patches.

    Returns:
        (patches (N, channels, mels, frames), start time of each patch in seconds)
    """
    if config.input_channels == 3:
        log_mel = encoder_hpss_log_mel(samples)
    else:
        log_mel = encoder_log_mel(samples)[None]
    patches, starts = cut_patches(
        log_mel, patch_frames=config.patch_frames, hop_frames=PATCH_HOP_FRAMES
    )
    return patches, np.asarray(starts, dtype=np.float64) * ENCODER_HOP / ENCODER_RATE


def patch_probabilities(
    patches: np.ndarray, classifier: GenreClassifier
) -> tuple[np.ndarray, np.ndarray]:
    """One encoder forward pass over patches.

    Returns:
        (genre probabilities (patches, genres), embeddings (patches, dim))
    """
    with torch.inference_mode(), torch.autocast("cpu", torch.bfloat16, enabled=classifier.bfloat16):
        embedding, logits = classifier.encoder(torch.from_numpy(patches).to(classifier.device))
        embedding, logits = embedding.float(), {k: v.float() for k, v in logits.items()}
        return torch.sigmoid(logits["genre"]).cpu().numpy(), embedding.cpu().numpy()


def classify(clip: Clip, classifier: GenreClassifier) -> GenrePrediction:
    """Genre probabilities of a clip, overall and per window of about SEGMENT_SECONDS.

    Args:
        clip: audio from engine.audio.load.
        classifier: from load_classifier.
    """
    patches, starts = encoder_patches(clip.samples, classifier.encoder.config)
    probabilities, _ = patch_probabilities(patches, classifier)
    overall = probabilities.mean(axis=0)
    windows = max(1, round(clip.duration / SEGMENT_SECONDS))
    edges = np.linspace(0.0, clip.duration, windows + 1)
    centres = starts + PATCH_SECONDS / 2
    segments = []
    for start, end in zip(edges[:-1], edges[1:], strict=True):
        inside = (centres >= start) & (centres < end)
        if not inside.any():  # a window narrower than the patch hop: take the nearest patch
            inside = (
                np.abs(centres - (start + end) / 2) == np.abs(centres - (start + end) / 2).min()
            )
        window = probabilities[inside].mean(axis=0)
        segments.append(
            GenreSegment(
                start=float(start),
                end=float(end),
                top=classifier.labels[int(window.argmax())],
                genres=_named(window, classifier.labels),
            )
        )
    return GenrePrediction(
        genres=_named(overall, classifier.labels),
        top=classifier.labels[int(overall.argmax())],
        segments=tuple(segments),
        warnings=clip.warnings,
    )


def _named(values: np.ndarray, labels: tuple[str, ...]) -> dict[str, float]:
    return {label: round(float(value), 4) for label, value in zip(labels, values, strict=True)}
