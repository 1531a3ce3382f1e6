"""Evaluate the shipped mood heads end to end, exactly as the app runs them.

Each mer4q val clip goes through engine.mood.predict_moods (the inference path: patches cut
as the app cuts them, bfloat16 where the CPU has it); the classic baseline's figures
(engine.train.mood_baseline, run first) are copied beside them. 95% bootstrap intervals of
the headline figures show how far the draw of so few clips moves them.

    python -m engine.train.mood_baseline
    python -m engine.train.evaluate_mood --out bench/results/mood_eval.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.audio import SAMPLE_RATE, from_array
from engine.genre import DEFAULT_CHECKPOINT, load_classifier
from engine.mood import MOOD_TAGS, QUADRANTS, predict_moods
from engine.train.dataset import DEFAULT_DATA_DIR, default_cache_dir, load_audio, load_manifest
from engine.train.mood_data import (
    intervals,
    mer4q_examples,
    quadrant_indices,
    read_clips,
    read_tag_sets,
    summarise,
    tag_targets,
)


def main() -> None:
    """Predict the moods of every val clip and write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--baseline", type=Path, default=Path("bench/results/mood_baseline.json"))
    parser.add_argument("--out", type=Path, default=Path("bench/results/mood_eval.json"))
    args = parser.parse_args()
    if not args.baseline.is_file():
        parser.error(f"{args.baseline} is missing: run python -m engine.train.mood_baseline")
    classifier = load_classifier(args.checkpoint)
    clips = [c for c in read_clips(args.data) if c.split == "val"]
    examples = mer4q_examples(clips, load_manifest(args.cache))
    tags, quadrants = [], []
    for example in tqdm(examples, desc="moods"):
        clip = from_array(load_audio(example), SAMPLE_RATE, name=example.example_id)
        prediction = predict_moods(clip, classifier)
        tags.append([prediction.tags[tag] for tag in MOOD_TAGS])
        quadrants.append(QUADRANTS.index(prediction.quadrant))
    targets = tag_targets([c.moods for c in clips], read_tag_sets(args.data))
    baseline = json.loads(args.baseline.read_text())
    scored = np.array(tags), targets, np.array(quadrants), quadrant_indices(clips)
    figures = {
        "checkpoint": str(args.checkpoint),
        "bfloat16": classifier.bfloat16,
        "val": summarise(*scored),
        "val_intervals": intervals(*scored),
        "baseline": {"model": baseline["model"], "val": baseline["val"]},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
