"""Evaluate a shipped genre checkpoint end to end, exactly as the app runs it.

Each clip goes through engine.genre.classify (the inference path, bfloat16 where the CPU
has it); figures on mer4q val (real) and held-out rendered segments, per domain.

    python -m engine.train.evaluate_genre --checkpoint checkpoints/genre.pt \
        --out bench/results/genre_eval.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.audio import SAMPLE_RATE, from_array
from engine.genre import DEFAULT_CHECKPOINT, classify, load_classifier
from engine.train.dataset import default_cache_dir, load_audio, load_manifest
from engine.train.genre_data import genre_selection, genre_targets, summarise


def main() -> None:
    """Classify every val and held-out example and print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--out", type=Path, default=Path("bench/results/genre_eval.json"))
    args = parser.parse_args()
    classifier = load_classifier(args.checkpoint)
    examples = [e for e in genre_selection(load_manifest(args.cache)) if e.split != "train"]
    probabilities = []
    for example in tqdm(examples, desc="classify"):
        clip = from_array(load_audio(example), SAMPLE_RATE, name=example.example_id)
        prediction = classify(clip, classifier)
        probabilities.append([prediction.genres[g] for g in classifier.labels])
    figures = {
        "checkpoint": str(args.checkpoint),
        "bfloat16": classifier.bfloat16,
        **summarise(examples, np.array(probabilities), genre_targets(examples)),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
