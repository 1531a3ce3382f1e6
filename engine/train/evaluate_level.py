"""How the shipped genre and mood heads hold up on clips quieter or louder than released music.

Every mer4q val clip is played back at each level offset (e.g. -20 dB: a quiet microphone
recording of the same music) and analysed once, as the app analyses it: brought to the level of
released music first (engine.audio.released_level), and, side by side, read at its own level
(the baseline). Figures: mood macro ROC-AUC, MAP and quadrant accuracy, genre hit accuracy and
macro ROC-AUC, and how often the top tags, quadrant and top genre stay those of the clip as
released (offset 0, read as it is).

    python -m engine.train.evaluate_level --out bench/results/level_eval.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from engine.audio import SAMPLE_RATE, from_array
from engine.genre import DEFAULT_CHECKPOINT, analyse, genres_from, load_classifier
from engine.mood import MOOD_TAGS, QUADRANTS, moods_from
from engine.train.dataset import DEFAULT_DATA_DIR, default_cache_dir, load_audio, load_manifest
from engine.train.genre_data import genre_selection, genre_targets
from engine.train.metrics import hit_accuracy, macro_auc
from engine.train.mood_data import (
    mer4q_examples,
    quadrant_indices,
    read_clips,
    read_tag_sets,
    summarise,
    tag_targets,
)

OFFSETS_DB = (10.0, 0.0, -10.0, -20.0, -30.0)  # level changes played back
WAYS = {"levelled": True, "as is": False}  # how the encoder reads the clip


def main() -> None:
    """Analyse every val clip at every offset, both ways, and write the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--offsets-db", type=float, nargs="+", default=list(OFFSETS_DB))
    parser.add_argument("--out", type=Path, default=Path("bench/results/level_eval.json"))
    args = parser.parse_args()
    classifier = load_classifier(args.checkpoint)
    clips = [c for c in read_clips(args.data) if c.split == "val"]
    manifest = load_manifest(args.cache)
    examples = mer4q_examples(clips, manifest)
    genre_ids = {e.example_id for e in genre_selection(manifest) if e.split == "val"}
    genre_rows = [i for i, e in enumerate(examples) if e.example_id in genre_ids]
    genres = genre_targets([examples[i] for i in genre_rows])
    offsets = dict.fromkeys([0.0, *args.offsets_db])  # 0 read as is is the reference
    runs = [(way, offset) for way in WAYS for offset in offsets]
    tags = {run: [] for run in runs}
    quadrants = {run: [] for run in runs}
    tops = {run: [] for run in runs}
    genre_probabilities = {run: [] for run in runs}
    for example in tqdm(examples, desc="levels"):
        audio = load_audio(example)
        for way, offset in runs:
            scaled = audio * np.float32(10.0 ** (offset / 20.0))
            clip = from_array(scaled, SAMPLE_RATE, name=example.example_id)
            analysis = analyse(clip, classifier, levelled=WAYS[way])
            moods = moods_from(analysis)
            run = way, offset
            tags[run].append([moods.tags[tag] for tag in MOOD_TAGS])
            quadrants[run].append(QUADRANTS.index(moods.quadrant))
            tops[run].append(frozenset(moods.top_tags))
            genre = genres_from(analysis).genres
            genre_probabilities[run].append([genre[g] for g in classifier.labels])
    reference = "as is", 0.0
    true_quadrants = quadrant_indices(clips)
    targets = tag_targets([c.moods for c in clips], read_tag_sets(args.data))
    figures: dict = {"checkpoint": str(args.checkpoint), "bfloat16": classifier.bfloat16}
    for way, offset in runs:
        run = way, offset
        mood = summarise(np.array(tags[run]), targets, np.array(quadrants[run]), true_quadrants)
        p = np.array(genre_probabilities[run])[genre_rows]
        top_genre = p.argmax(axis=1)
        reference_genre = np.array(genre_probabilities[reference])[genre_rows].argmax(axis=1)
        figures.setdefault(way, {})[f"{offset:+g} dB"] = {
            "mood_macro_roc_auc": mood["macro_roc_auc"],
            "mood_mean_average_precision": mood["mean_average_precision"],
            "quadrant_accuracy": mood["quadrant_accuracy"],
            "genre_hit_accuracy": hit_accuracy(p, genres),
            "genre_macro_roc_auc": macro_auc(p, genres, classifier.labels),
            "same_top_tags": float(np.mean(np.equal(tops[run], tops[reference]))),
            "same_quadrant": float(np.mean(np.equal(quadrants[run], quadrants[reference]))),
            "same_top_genre": float(np.mean(top_genre == reference_genre)),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
