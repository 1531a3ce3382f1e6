"""Build the generator's originality guard from the training pieces of the generator corpus.

    python -m engine.train.originality --cache ~/.cache/music-studio --checkpoints checkpoints

For every style, the hashes of every run of COPY_LIMIT consecutive notes of its training pieces
(the corpus's "train" split, which both generator checkpoints learn from) go into
checkpoints/generator_originality.npz. `engine.generate` draws a piece again when it replays
one. Deterministic: the same corpus gives the same file. Build the corpus first with
`python -m engine.train.generator_data`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from engine.originality import COPY_LIMIT, GUARD_FILE, CopyGuard, note_intervals

DEFAULT_CHECKPOINTS = Path(__file__).resolve().parents[2] / "checkpoints"


def training_intervals(cache_dir: Path) -> dict[str, list[np.ndarray]]:
    """Style -> the interval symbols of each of its training pieces, in corpus order.

    Raises:
        FileNotFoundError: when the generator corpus has not been built.
    """
    from tqdm import tqdm

    from engine.midi import load_score
    from engine.train.generator_data import corpus_dir, load_index

    folder = corpus_dir(cache_dir)
    pieces = [p for p in load_index(cache_dir) if p.split == "train"]
    training: dict[str, list[np.ndarray]] = {}
    for piece in tqdm(pieces, desc="training pieces", unit="piece", smoothing=0.05):
        training.setdefault(piece.style, []).append(
            note_intervals(load_score(folder / piece.midi_path))
        )
    return training


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry: build and write the guard; prints hashed runs per style as JSON."""
    from engine.train.dataset import default_cache_dir

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=None, help="generator corpus folder")
    parser.add_argument("--checkpoints", type=Path, default=DEFAULT_CHECKPOINTS)
    parser.add_argument("--limit", type=int, default=COPY_LIMIT, help="notes in a copied run")
    args = parser.parse_args(argv)
    try:
        training = training_intervals(args.cache or default_cache_dir())
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    guard = CopyGuard.build(training, args.limit)
    path = args.checkpoints / GUARD_FILE
    guard.save(path)
    runs = {s: len(t) for s, t in guard.tables.items()}
    print(json.dumps({"path": str(path), "limit": guard.limit, "hashed_runs": runs}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
