"""Classic genre baseline: MFCC statistics + PCA + RBF-SVM tuned by particle swarm optimisation.

The method we follow tunes the SVM's C and gamma with PSO; the fitness is the hit accuracy of
a grouped (by artist or piece) cross-validation on the training split only. Same data and split
as the neural model (engine.train.genre); figures on mer4q val and held-out rendered pieces.

    python -m engine.train.genre_baseline --out bench/results/genre_baseline.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.decomposition import PCA
from sklearn.model_selection import GroupKFold
from sklearn.multiclass import OneVsRestClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC
from tqdm import tqdm

from engine.features import mfcc_statistics
from engine.train.dataset import Example, default_cache_dir, load_audio, load_manifest
from engine.train.genre_data import example_groups, genre_selection, genre_targets, summarise

PCA_VARIANCE = 0.95  # share of variance the PCA keeps
LOG2_C = (-3.0, 10.0)  # PSO search range of log2(C)
LOG2_GAMMA = (-12.0, 2.0)  # PSO search range of log2(gamma), after scaling and PCA


def mfcc_table(examples: list[Example], cache_dir: Path) -> np.ndarray:
    """MFCC statistics of every example, cached in one .npy beside the manifest."""
    path = cache_dir / "features" / "mfcc_statistics.npz"
    ids = [e.cache_name for e in examples]
    stored: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path) as archive:
            stored = dict(zip(archive["ids"].tolist(), archive["values"], strict=True))
    missing = [e for e in examples if e.cache_name not in stored]
    for example in tqdm(missing, desc="MFCC statistics"):
        stored[example.cache_name] = mfcc_statistics(load_audio(example))
    if missing:
        path.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(stored)
        np.savez(path, ids=np.array(keys), values=np.stack([stored[k] for k in keys]))
    return np.stack([stored[i] for i in ids])


def make_svm(c: float, gamma: float, *, probability: bool = False) -> Pipeline:
    """Scaler -> PCA -> one-vs-rest RBF-SVM (with Platt probabilities if asked)."""
    svm = SVC(C=c, gamma=gamma, kernel="rbf", probability=probability, random_state=0)
    return make_pipeline(
        StandardScaler(),
        PCA(n_components=PCA_VARIANCE, svd_solver="full"),
        OneVsRestClassifier(svm),
    )


def cross_validated_hit_accuracy(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, c: float, gamma: float
) -> float:
    """Hit accuracy of 3-fold grouped cross-validation (fitness of one PSO particle)."""
    from engine.train.metrics import hit_accuracy

    scores = []
    for train, test in GroupKFold(n_splits=3).split(x, y, groups):
        model = make_svm(c, gamma)
        model.fit(x[train], y[train])
        scores.append(hit_accuracy(model.decision_function(x[test]), y[test]))
    return float(np.mean(scores))


def tune_with_pso(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray, *, particles: int, iterations: int, seed: int
) -> tuple[float, float, float]:
    """Particle swarm search over (log2 C, log2 gamma); returns (C, gamma, cv hit accuracy)."""
    import pyswarms as ps

    np.random.seed(seed)  # pyswarms draws from numpy's global generator
    bounds = (np.array([LOG2_C[0], LOG2_GAMMA[0]]), np.array([LOG2_C[1], LOG2_GAMMA[1]]))
    progress = tqdm(total=particles * iterations, desc="PSO")

    def cost(positions: np.ndarray) -> np.ndarray:
        values = []
        for log_c, log_gamma in positions:
            values.append(-cross_validated_hit_accuracy(x, y, groups, 2.0**log_c, 2.0**log_gamma))
            progress.update()
        return np.array(values)

    optimizer = ps.single.GlobalBestPSO(
        n_particles=particles,
        dimensions=2,
        options={"c1": 1.5, "c2": 1.5, "w": 0.7},
        bounds=bounds,
    )
    best_cost, best = optimizer.optimize(cost, iters=iterations, verbose=False)
    progress.close()
    return 2.0 ** best[0], 2.0 ** best[1], -float(best_cost)


def main() -> None:
    """Tune, fit and evaluate the baseline; write its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--out", type=Path, default=Path("bench/results/genre_baseline.json"))
    parser.add_argument("--particles", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    examples = genre_selection(load_manifest(args.cache))
    x = mfcc_table(examples, args.cache)
    y = genre_targets(examples)
    train = np.array([e.split == "train" for e in examples])
    groups = np.array(example_groups(examples, args.data))
    c, gamma, cv_score = tune_with_pso(
        x[train],
        y[train],
        groups[train],
        particles=args.particles,
        iterations=args.iterations,
        seed=args.seed,
    )
    model = make_svm(c, gamma, probability=True)
    model.fit(x[train], y[train])
    probabilities = model.predict_proba(x)
    figures = {
        "model": "MFCC statistics + PCA + RBF-SVM (PSO-tuned)",
        "C": c,
        "gamma": gamma,
        "cv_hit_accuracy": cv_score,
        **summarise(examples, probabilities, y),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
