"""Classic mood baseline: random k-labelsets (RAkEL) over MFCC statistics.

RAkEL (Tsoumakas, Katakis & Vlahavas 2011) trains one label-powerset classifier per small
random labelset: each sees the labelset's label combinations as classes. A label's score is
the mean, over the models whose labelset holds it, of the probability of the combinations
that contain it. RAkEL-o draws `models` overlapping labelsets; RAkEL-d splits the labels
into disjoint ones. The label space is the 12 tags plus two Russell signs (positive valence,
high arousal); the quadrant is the one of the two signs. Base classifier: standardised MFCC
statistics -> L2 logistic regression (multinomial over the labelset's combinations). Same
data and split as the neural model (engine.train.mood); figures on mer4q val.

Implemented here over scikit-learn: scikit-multilearn (last release 0.2.0, 2018) has no
probabilities for RAkEL-o (its predict_proba raises) and seeds RAkEL-d from Python's global
random module. An RBF-SVM base needs SVC(probability=True), deprecated in scikit-learn 1.9.

    python -m engine.train.mood_baseline --out bench/results/mood_baseline.json
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm import tqdm

from engine.mood import MOOD_TAGS, QUADRANT_SIGNS, QUADRANTS, quadrant_of
from engine.train.dataset import DEFAULT_DATA_DIR, default_cache_dir, load_manifest
from engine.train.genre_baseline import mfcc_table
from engine.train.mood_data import (
    mer4q_examples,
    quadrant_indices,
    read_clips,
    read_tag_sets,
    summarise,
    tag_targets,
)


class Rakel:
    """RAkEL over any scikit-learn classifier with predict_proba."""

    def __init__(
        self, base: Pipeline, *, labelset_size: int, models: int, disjoint: bool, seed: int
    ) -> None:
        """
        Args:
            base: the label-powerset classifier, cloned for each labelset.
            labelset_size: labels per labelset (k).
            models: labelsets drawn for RAkEL-o (ignored for RAkEL-d).
            disjoint: RAkEL-d (disjoint labelsets covering every label) instead of RAkEL-o.
            seed: seeds the labelset draw.
        """
        self.base = base
        self.labelset_size = labelset_size
        self.models = models
        self.disjoint = disjoint
        self.seed = seed
        self.fitted: list[tuple[np.ndarray, Pipeline, np.ndarray]] = []
        self.labels = 0

    def labelsets(self, labels: int) -> list[np.ndarray]:
        """RAkEL-d: a random partition of the labels; RAkEL-o: `models` distinct k-subsets."""
        rng = np.random.default_rng(self.seed)
        order = rng.permutation(labels)
        if self.disjoint:
            return [np.sort(order[i : i + self.labelset_size])
                    for i in range(0, labels, self.labelset_size)]  # fmt: skip
        subsets = list(itertools.combinations(range(labels), self.labelset_size))
        chosen = [subsets[i] for i in rng.permutation(len(subsets))[: self.models]]
        return [np.array(s) for s in chosen]

    def fit(self, x: np.ndarray, y: np.ndarray) -> Rakel:
        """Fit one label-powerset classifier per labelset on features x, multi-hot y."""
        self.fitted, self.labels = [], y.shape[1]
        for labelset in tqdm(self.labelsets(y.shape[1]), desc="RAkEL labelsets", leave=False):
            codes = y[:, labelset].astype(int) @ (1 << np.arange(len(labelset)))
            model = clone(self.base).fit(x, codes)
            classes = model.classes_
            contains = (classes[:, None] >> np.arange(len(labelset))) & 1  # (classes, k)
            self.fitted.append((labelset, model, contains.astype(float)))
        return self

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """(items, labels) score of each label: mean over its models of P(label on)."""
        total, count = np.zeros((len(x), self.labels)), np.zeros(self.labels)
        for labelset, model, contains in self.fitted:
            total[:, labelset] += model.predict_proba(x) @ contains
            count[labelset] += 1
        return total / np.maximum(count, 1)


def make_base(c: float) -> Pipeline:
    """Standardised features -> L2-regularised multinomial logistic regression."""
    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))


def sign_targets(quadrants: np.ndarray) -> np.ndarray:
    """(clips, 2) float32: positive valence, high arousal."""
    signs = np.array([QUADRANT_SIGNS[q] for q in QUADRANTS])
    return (signs[quadrants] > 0).astype(np.float32)


def main() -> None:
    """Fit RAkEL on mer4q train and write its val figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--labelset-size", type=int, default=3)
    parser.add_argument("--models", type=int, default=28, help="RAkEL-o labelsets (2 x labels)")
    parser.add_argument("--disjoint", action="store_true", help="RAkEL-d instead of RAkEL-o")
    parser.add_argument("--c", type=float, default=0.1, help="inverse L2 strength")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("bench/results/mood_baseline.json"))
    args = parser.parse_args()
    clips = read_clips(args.data)
    x = mfcc_table(mer4q_examples(clips, load_manifest(args.cache)), args.cache)
    quadrants = quadrant_indices(clips)
    tags = tag_targets([c.moods for c in clips], read_tag_sets(args.data))
    y = np.concatenate([tags, sign_targets(quadrants)], axis=1)
    train = np.array([c.split == "train" for c in clips])
    val = np.array([c.split == "val" for c in clips])
    model = Rakel(
        make_base(args.c),
        labelset_size=args.labelset_size,
        models=args.models,
        disjoint=args.disjoint,
        seed=args.seed,
    ).fit(x[train], y[train])
    scores = model.predict_proba(x[val])
    tag_scores, valence_arousal = scores[:, : len(MOOD_TAGS)], 2 * scores[:, len(MOOD_TAGS) :] - 1
    predicted = np.array([QUADRANTS.index(quadrant_of(v, a)) for v, a in valence_arousal])
    figures = {
        "model": f"RAkEL-{'d' if args.disjoint else 'o'}, MFCC statistics, logistic regression",
        "labelset_size": args.labelset_size,
        "labelsets": len(model.fitted),
        "C": args.c,
        "seed": args.seed,
        "val": summarise(tag_scores, tags[val], predicted, quadrants[val]),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
