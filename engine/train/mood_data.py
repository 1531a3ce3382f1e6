"""Labels and figures shared by the mood model, its baseline and its end-to-end evaluation.

The 12 product tags are sets of AllMusic moods (mood_tags.json in the mer4q folder): a clip
carries a tag when any of its AllMusic moods, compared case-insensitively, is in the tag's set.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.mood import MOOD_TAGS, QUADRANT_SIGNS, QUADRANTS
from engine.train.dataset import Example
from engine.train.metrics import (
    bootstrap_interval,
    macro_auc,
    mean_average_precision,
    per_class_auc,
    per_class_average_precision,
)


@dataclass(frozen=True)
class MoodClip:
    """One mer4q clip as the mood model sees it."""

    clip_id: str  # mer4q id, e.g. MT0000004637
    artist: str  # cross-validation group: artists never cross mer4q's splits
    quadrant: str  # Russell quadrant, "Q1".."Q4"
    moods: tuple[str, ...]  # AllMusic moods, lower case
    split: str  # "train" or "val"


def read_clips(data_dir: Path) -> list[MoodClip]:
    """The clips of mer4q/metadata.csv, in file order."""
    with (data_dir / "mer4q" / "metadata.csv").open(newline="") as handle:
        return [
            MoodClip(
                clip_id=row["id"],
                artist=row["artist"],
                quadrant=row["quadrant"],
                moods=tuple(m.strip().lower() for m in row["moods"].split(";") if m.strip()),
                split=row["split"],
            )
            for row in csv.DictReader(handle)
        ]


def read_tag_sets(data_dir: Path) -> dict[str, frozenset[str]]:
    """Each product tag's AllMusic moods (lower case), from mer4q/mood_tags.json.

    Raises:
        ValueError: when the file's tags are not MOOD_TAGS in that order.
    """
    tags = json.loads((data_dir / "mer4q" / "mood_tags.json").read_text())["tags"]
    if tuple(tags) != MOOD_TAGS:
        raise ValueError(f"mood_tags.json lists {tuple(tags)}, the studio expects {MOOD_TAGS}")
    return {tag: frozenset(m.lower() for m in moods) for tag, moods in tags.items()}


def tag_targets(moods: list[tuple[str, ...]], tag_sets: dict[str, frozenset[str]]) -> np.ndarray:
    """Multi-hot (clips, len(MOOD_TAGS)) float32: a tag is on when any mood is in its set.

    Args:
        moods: each clip's AllMusic moods (any case).
        tag_sets: tag -> its AllMusic moods in lower case (read_tag_sets).
    """
    return np.array(
        [[bool(tag_sets[tag] & {m.lower() for m in clip}) for tag in MOOD_TAGS] for clip in moods],
        dtype=np.float32,
    ).reshape(len(moods), len(MOOD_TAGS))


def quadrant_indices(clips: list[MoodClip]) -> np.ndarray:
    """Index into QUADRANTS of each clip's quadrant, (clips,) int64."""
    return np.array([QUADRANTS.index(clip.quadrant) for clip in clips], dtype=np.int64)


def mer4q_examples(clips: list[MoodClip], manifest: list[Example]) -> list[Example]:
    """The dataset example (cached audio and musicnn outputs) of each clip, in clip order.

    Raises:
        FileNotFoundError: when a clip was not cached by engine.train.dataset.
    """
    real = {e.piece_id: e for e in manifest if e.source == "mer4q"}
    missing = [c.clip_id for c in clips if c.clip_id not in real]
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} mer4q clips (e.g. {missing[0]}) are not in the dataset cache: "
            "run python -m engine.train.dataset first."
        )
    return [real[c.clip_id] for c in clips]


def summarise(
    tag_probabilities: np.ndarray,
    tags: np.ndarray,
    predicted_quadrants: np.ndarray,
    quadrants: np.ndarray,
) -> dict:
    """Figures of one set of clips.

    Args:
        tag_probabilities: (clips, 12) scores.
        tags: (clips, 12) multi-hot targets.
        predicted_quadrants: (clips,) predicted indices into QUADRANTS.
        quadrants: (clips,) true indices into QUADRANTS.

    Returns:
        clips, macro ROC-AUC and MAP over the tags, per-tag AUC and AP, positives per tag,
        quadrant accuracy, and the accuracy of the valence and arousal signs alone.
    """
    signs = np.array([QUADRANT_SIGNS[q] for q in QUADRANTS])
    predicted, true = signs[predicted_quadrants], signs[quadrants]
    return {
        "clips": len(quadrants),
        "macro_roc_auc": macro_auc(tag_probabilities, tags, MOOD_TAGS),
        "mean_average_precision": mean_average_precision(tag_probabilities, tags, MOOD_TAGS),
        "quadrant_accuracy": float((predicted_quadrants == quadrants).mean()),
        "valence_accuracy": float((predicted[:, 0] == true[:, 0]).mean()),
        "arousal_accuracy": float((predicted[:, 1] == true[:, 1]).mean()),
        "roc_auc": per_class_auc(tag_probabilities, tags, MOOD_TAGS),
        "average_precision": per_class_average_precision(tag_probabilities, tags, MOOD_TAGS),
        "positives": {tag: int(n) for tag, n in zip(MOOD_TAGS, tags.sum(axis=0), strict=True)},
    }


def intervals(
    tag_probabilities: np.ndarray,
    tags: np.ndarray,
    predicted_quadrants: np.ndarray,
    quadrants: np.ndarray,
    *,
    resamples: int = 1000,
) -> dict:
    """95% percentile bootstrap intervals (clips resampled, seed 0) of the headline figures of
    `summarise`: how far a figure on so few clips moves with the draw of clips."""
    figures = {
        "macro_roc_auc": lambda i: macro_auc(tag_probabilities[i], tags[i], MOOD_TAGS),
        "mean_average_precision": lambda i: mean_average_precision(
            tag_probabilities[i], tags[i], MOOD_TAGS
        ),
        "quadrant_accuracy": lambda i: float((predicted_quadrants[i] == quadrants[i]).mean()),
    }
    bounds = {
        name: [round(x, 4) for x in bootstrap_interval(f, len(quadrants), resamples=resamples)]
        for name, f in figures.items()
    }
    return {"level": 0.95, "resamples": resamples, **bounds}
