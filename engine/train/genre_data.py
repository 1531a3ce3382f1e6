"""Labels, groups and figures shared by the genre model and its baseline."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from engine.genre import GENRES
from engine.train.dataset import Example
from engine.train.metrics import hit_accuracy, macro_auc, per_class_auc, top1_accuracy


def genre_targets(examples: list[Example]) -> np.ndarray:
    """Multi-hot (examples, len(GENRES)) float32 targets."""
    return np.stack([example.target() for example in examples])


def example_groups(examples: list[Example], data_dir: Path) -> list[str]:
    """Cross-validation groups: the artist of a real clip, the piece of a rendered one."""
    artists: dict[str, str] = {}
    metadata = data_dir / "mer4q" / "metadata.csv"
    if metadata.exists():
        with metadata.open(newline="") as handle:
            artists = {row["id"]: row["artist"] for row in csv.DictReader(handle)}
    return [
        "artist:" + artists.get(e.piece_id, e.piece_id)
        if e.domain == "real"
        else "piece:" + e.piece_id
        for e in examples
    ]


def summarise(examples: list[Example], probabilities: np.ndarray, targets: np.ndarray) -> dict:
    """Figures per domain: mer4q val (real) and held-out rendered pieces.

    Returns:
        {"val": {...}, "heldout_rendered": {...}} with hit accuracy, macro and per-genre
        ROC-AUC on val, top-1 accuracy on held-out renders, and the share of val clips whose top
        genre is classical (the "synthetic sound = classical" trap: val holds no classical clip).
    """
    split = np.array([e.split for e in examples])
    domain = np.array([e.domain for e in examples])
    val = (split == "val") & (domain == "real")
    held = (split == "heldout") & (domain == "rendered")
    figures: dict = {}
    if val.any():
        p, y = probabilities[val], targets[val]
        top = p.argmax(axis=1)
        figures["val"] = {
            "clips": int(val.sum()),
            "labelled_clips": int((y.sum(axis=1) > 0).sum()),
            "hit_accuracy": hit_accuracy(p, y),
            "macro_roc_auc": macro_auc(p, y, GENRES),
            "roc_auc": per_class_auc(p, y, GENRES),
            "top_is_classical": float((top == GENRES.index("classical")).mean()),
        }
    if held.any():
        p, y = probabilities[held], targets[held]
        by_source = {}
        for source in sorted({e.source for e, h in zip(examples, held, strict=True) if h}):
            mask = np.array([e.source == source for e in examples])[held]
            by_source[source] = hit_accuracy(p[mask], y[mask])
        figures["heldout_rendered"] = {
            "segments": int(held.sum()),
            "accuracy": top1_accuracy(p, y.argmax(axis=1)),
            "accuracy_by_source": by_source,
        }
    return figures


def genre_selection(
    examples: list[Example],
    *,
    rendered_train_per_genre: int = 60,
    rendered_heldout_per_genre: int = 25,
    seed: int = 0,
) -> list[Example]:
    """The examples the genre model and its baseline use: every real clip with a genre,
    and a seeded, per-genre capped draw of rendered segments (the teacher is slow on CPU).
    """
    rng = np.random.default_rng(seed)
    caps = {"train": rendered_train_per_genre, "heldout": rendered_heldout_per_genre}
    chosen = [e for e in examples if e.domain == "real" and e.genres]
    for split, cap in caps.items():
        for genre in GENRES:
            pool = [e for e in examples if e.domain == "rendered" and e.split == split]
            pool = [e for e in pool if e.genres and e.genres[0] == genre]
            picks = rng.permutation(len(pool))[:cap]
            chosen += [pool[i] for i in sorted(picks)]
    return chosen
