"""Mood of a clip as the crowd hears it: 12 mood tags, valence/arousal and Russell quadrant.

The mood heads sit on the studio encoder (checkpoints/genre.pt), so one forward pass gives the
genre and the mood of a clip (engine.genre.analyse); this module reads the mood heads' outputs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.special import expit, softmax

from engine.audio import AudioSource, Clip, load
from engine.errors import ModelUnavailable
from engine.genre import ClipAnalysis, GenreClassifier, analyse, load_classifier, named, windows

MOOD_TAGS: tuple[str, ...] = (
    "moving",
    "loneliness",
    "quiet",
    "warmth",
    "romance",
    "healing",
    "sadness",
    "missing",
    "passion",
    "joy",
    "lovelorn",
    "nostalgia",
)
QUADRANTS: tuple[str, ...] = ("Q1", "Q2", "Q3", "Q4")  # Russell quadrants
# (valence, arousal) sign of each quadrant: Q1 happy/excited, Q2 angry/tense, Q3 sad/tired,
# Q4 calm/content.
QUADRANT_SIGNS: dict[str, tuple[int, int]] = {
    "Q1": (1, 1),
    "Q2": (-1, 1),
    "Q3": (-1, -1),
    "Q4": (1, -1),
}
TOP_TAGS = 3  # tags named in MoodPrediction.top_tags


@dataclass(frozen=True)
class MoodSegment:
    """The mood of one window of a clip."""

    start: float  # seconds from the clip's start
    end: float  # seconds from the clip's start
    tags: dict[str, float]  # probability per tag in this window
    valence: float  # -1 (negative) .. 1 (positive)
    arousal: float  # -1 (calm) .. 1 (energetic)
    quadrant: str  # "Q1".."Q4"


@dataclass(frozen=True)
class MoodPrediction:
    """The crowd's mood of a whole clip and of its windows."""

    tags: dict[str, float]  # probability per tag in MOOD_TAGS (independent, multilabel)
    valence: float  # -1 (negative) .. 1 (positive): P(Q1) + P(Q4) - P(Q2) - P(Q3)
    arousal: float  # -1 (calm) .. 1 (energetic): P(Q1) + P(Q2) - P(Q3) - P(Q4)
    quadrant: str  # the quadrant of (valence, arousal), "Q1".."Q4"
    quadrants: dict[str, float]  # probability per quadrant
    top_tags: tuple[str, ...]  # the TOP_TAGS most likely tags, most likely first
    segments: tuple[MoodSegment, ...]  # about engine.genre.SEGMENT_SECONDS each, in time order
    warnings: tuple[str, ...]  # carried over from loading (silence, cut to 10 minutes)


@dataclass(frozen=True)
class TagReliability:
    """How well the mood heads rank clips by one tag, measured on clips never trained on."""

    tag: str
    roc_auc: float  # 0.5 is guessing; 1.0 ranks every clip that carries the tag first
    clips: int  # how many of the measured clips carry the tag (few: a rough figure)
    measured: int  # how many clips it was measured on


def tag_reliability(classifier: GenreClassifier) -> tuple[TagReliability, ...]:
    """Each tag's ROC-AUC on mer4q val, as `engine.train.mood` stored it in the checkpoint;
    empty when the checkpoint holds no such figures."""
    try:
        val = classifier.metrics["mood"]["val"]
        aucs, positives = val["roc_auc"], val.get("positives", {})
        return tuple(
            TagReliability(tag, float(aucs[tag]), int(positives.get(tag, 0)), int(val["clips"]))
            for tag in MOOD_TAGS
            if tag in aucs
        )
    except (KeyError, AttributeError, TypeError, ValueError):  # none stored, or another shape
        return ()


def quadrant_of(valence: float, arousal: float) -> str:
    """The Russell quadrant of a (valence, arousal) point; zero counts as positive."""
    signs = (1 if valence >= 0 else -1, 1 if arousal >= 0 else -1)
    return next(q for q, s in QUADRANT_SIGNS.items() if s == signs)


def valence_arousal(quadrant_probabilities: np.ndarray) -> tuple[float, float]:
    """Expected (valence, arousal) signs under probabilities over QUADRANTS, each in [-1, 1]."""
    signs = np.array([QUADRANT_SIGNS[q] for q in QUADRANTS], dtype=np.float64)
    valence, arousal = np.asarray(quadrant_probabilities, dtype=np.float64) @ signs
    return float(valence), float(arousal)


def require_mood_heads(
    labels: Mapping[str, tuple[str, ...]], outputs: Iterable[str] | None = None
) -> None:
    """Check that a model's heads (name -> output labels; and the heads that gave `outputs`,
    when given) include the mood and quadrant heads.

    Raises:
        ModelUnavailable: when they do not.
    """
    heads = set(labels if outputs is None else outputs)
    if (
        labels.get("mood") != MOOD_TAGS
        or labels.get("quadrant") != QUADRANTS
        or not {"mood", "quadrant"} <= heads
    ):
        raise ModelUnavailable(
            "The studio's model has no mood heads. Retrain them with "
            "`python -m engine.train.mood` (see checkpoints/genre.md)."
        )


def moods_from(analysis: ClipAnalysis) -> MoodPrediction:
    """The mood view of an analysis (engine.genre.analyse): overall and per window.

    Tag and quadrant probabilities are the means over the patches.

    Raises:
        ModelUnavailable: when the encoder has no mood heads.
    """
    require_mood_heads(analysis.labels, outputs=analysis.logits)
    tags = expit(analysis.logits["mood"])
    quadrants = softmax(analysis.logits["quadrant"], axis=1)

    def view(inside: np.ndarray) -> tuple[dict[str, float], float, float, str]:
        valence, arousal = valence_arousal(quadrants[inside].mean(axis=0))
        probabilities = named(tags[inside].mean(axis=0), MOOD_TAGS)
        return probabilities, round(valence, 4), round(arousal, 4), quadrant_of(valence, arousal)

    segments = tuple(
        MoodSegment(start, end, *view(inside)) for start, end, inside in windows(analysis)
    )
    overall, valence, arousal, quadrant = view(np.ones(len(tags), dtype=bool))
    return MoodPrediction(
        tags=overall,
        valence=valence,
        arousal=arousal,
        quadrant=quadrant,
        quadrants=named(quadrants.mean(axis=0), QUADRANTS),
        top_tags=tuple(sorted(MOOD_TAGS, key=lambda tag: -overall[tag])[:TOP_TAGS]),
        segments=segments,
        warnings=analysis.warnings,
    )


def predict_moods(
    clip_or_path: Clip | ClipAnalysis | AudioSource, classifier: GenreClassifier | None = None
) -> MoodPrediction:
    """The crowd's mood of a clip: tag probabilities, valence/arousal, quadrant, over time.

    Args:
        clip_or_path: a Clip (engine.audio.load), a file path or its bytes, or an analysis
            from engine.genre.analyse (then no encoder runs again).
        classifier: the loaded encoder (engine.genre.load_classifier); loaded here when None.
            Pass it when analysing many clips.

    Raises:
        InvalidAudio: (a subclass) when the file is not usable audio.
        ModelUnavailable: when the model file is missing or unreadable, or has no mood heads.
    """
    if isinstance(clip_or_path, ClipAnalysis):
        return moods_from(clip_or_path)
    clip = clip_or_path if isinstance(clip_or_path, Clip) else load(clip_or_path)
    return moods_from(analyse(clip, classifier or load_classifier()))
