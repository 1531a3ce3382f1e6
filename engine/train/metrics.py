"""Evaluation figures shared by the training and evaluation scripts."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.stats import bootstrap
from sklearn.metrics import average_precision_score, roc_auc_score


def hit_accuracy(probabilities: np.ndarray, targets: np.ndarray) -> float:
    """Share of labelled items whose top-scored class is one of their classes.

    Args:
        probabilities: (items, classes) scores.
        targets: (items, classes) multi-hot labels; items with no label are skipped.
    """
    labelled = targets.sum(axis=1) > 0
    if not labelled.any():
        return float("nan")
    top = probabilities[labelled].argmax(axis=1)
    return float(targets[labelled][np.arange(len(top)), top].mean())


def per_class_auc(
    probabilities: np.ndarray, targets: np.ndarray, names: tuple[str, ...]
) -> dict[str, float]:
    """ROC-AUC of each class that has both positive and negative items."""
    scores: dict[str, float] = {}
    for index, name in enumerate(names):
        column = targets[:, index]
        if 0 < column.sum() < len(column):
            scores[name] = float(roc_auc_score(column, probabilities[:, index]))
    return scores


def macro_auc(probabilities: np.ndarray, targets: np.ndarray, names: tuple[str, ...]) -> float:
    """Mean ROC-AUC over the classes that can be scored (both labels present)."""
    scores = per_class_auc(probabilities, targets, names)
    return float(np.mean(list(scores.values()))) if scores else float("nan")


def top1_accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the top class against one true class index per item."""
    return float((probabilities.argmax(axis=1) == labels).mean())


def per_class_average_precision(
    probabilities: np.ndarray, targets: np.ndarray, names: tuple[str, ...]
) -> dict[str, float]:
    """Average precision (area under precision-recall) of each class with a positive item."""
    return {
        name: float(average_precision_score(targets[:, index], probabilities[:, index]))
        for index, name in enumerate(names)
        if targets[:, index].sum() > 0
    }


def mean_average_precision(
    probabilities: np.ndarray, targets: np.ndarray, names: tuple[str, ...]
) -> float:
    """Mean over classes of the average precision (MAP), classes with a positive item only."""
    scores = per_class_average_precision(probabilities, targets, names)
    return float(np.mean(list(scores.values()))) if scores else float("nan")


def bootstrap_interval(
    statistic: Callable[[np.ndarray], float],
    items: int,
    *,
    resamples: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `statistic` over `items` items drawn with replacement.

    Args:
        statistic: the figure of a resample, given the indices of its items.
        items: how many items the figure was measured on.
    """
    result = bootstrap(
        (np.arange(items),),
        statistic,
        n_resamples=resamples,
        vectorized=False,
        confidence_level=level,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def edit_distance(truth: Sequence[object], guess: Sequence[object]) -> int:
    """Levenshtein distance: insertions, deletions and substitutions turning `guess` into
    `truth`."""
    previous = list(range(len(guess) + 1))
    for i, want in enumerate(truth, start=1):
        current = [i]
        for j, got in enumerate(guess, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1,
                               previous[j - 1] + (want != got)))
        previous = current
    return previous[-1]


def error_rate(truths: Sequence[Sequence[object]], guesses: Sequence[Sequence[object]]) -> float:
    """Summed edit distance over summed true length (symbol error rate when the items are
    token sequences)."""
    errors = sum(edit_distance(t, g) for t, g in zip(truths, guesses, strict=True))
    return errors / max(sum(len(t) for t in truths), 1)
