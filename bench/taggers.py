"""Seconds per 30 s clip of each converted MTG-Jamendo tagger, beside the shipped analysis.

What a second network would add to every clip's analysis (Classify, Mood, library add): per
tagger, after warm-up, the median wall time of its whole pass over a decoded clip (resampling,
its log-mel, the network, rows on the encoder's patches), and of the shipped
`engine.genre.classify(load(mp3))` on the same clip, on this machine's threads.

    python -m bench.taggers --threads 1 --out bench/results/taggers_speed.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.classify import CLIP_SECONDS, median_seconds, synthetic_mp3
from engine.audio import load
from engine.genre import classify, load_classifier
from engine.models.taggers import Tagger
from engine.train.convert_taggers import MODELS
from engine.train.dataset import default_cache_dir
from engine.train.tagger_cache import on_patches


def main() -> None:
    """Measure and print the figures (and write them to --out)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--taggers", type=Path, default=default_cache_dir() / "taggers")
    parser.add_argument("--out", type=Path, default=Path("bench/results/taggers_speed.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = synthetic_mp3(0)
    clip = load(data)
    classifier = load_classifier()
    seconds = {
        "shipped_classify_total_s": median_seconds(
            lambda: classify(load(data), classifier), args.repeats
        )
    }
    for name in MODELS:
        tagger = Tagger.from_checkpoint(args.taggers / f"{name}.pt")
        seconds[f"{name}_s"] = median_seconds(
            lambda t=tagger: on_patches(t, clip.samples), args.repeats
        )
    figures = {
        "clip_seconds": CLIP_SECONDS,
        "torch_threads": torch.get_num_threads(),
        "bfloat16": classifier.bfloat16,
        "per_clip_median": {k: round(v, 4) for k, v in seconds.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
