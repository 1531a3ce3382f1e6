"""Benchmark cross-modal search between sheet music and audio on held-out pieces; JSON out.

Every 2-bar passage of every test piece (pieces never trained on) is a query and a candidate,
both ways: score -> audio (a passage's snippet finds its audio among all the passages' audio)
and audio -> score. The candidates are embedded together, their graph over all of them (as a
library's items are); each query joins that graph on its own (`direction` of
engine.train.crossmodal, also the trainer's validation). R@1, R@10, MRR and median rank per
direction, with the audio rendered by the training soundfonts and by one never used in
training; milliseconds per query (its CNN, its graph neighbourhood, the ranking of every
candidate). The shipped graph model, the baseline and the ablation side by side.

    python -m bench.crossmodal --data ~/.cache/music-studio/crossmodal \
        --out bench/results/crossmodal.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import rounded, write_figures
from engine.models.crossmodal import CrossModalNet
from engine.train.crossmodal import direction, features, passages
from engine.train.crossmodal_data import load_pieces

MODELS = {
    "graph": "checkpoints/crossmodal.pt",  # CNN + FC + k-NN graph encoders, fused
    "baseline": "checkpoints/crossmodal_baseline.pt",  # two branches, pairwise ranking loss
    "no-graph": "checkpoints/crossmodal_no_graph.pt",  # the shipped losses, no graph encoder
}


def query_milliseconds(model: CrossModalNet, sheets: np.ndarray, audio: np.ndarray,
                       count: int = 50) -> float:
    """Median time to answer one score snippet against every audio candidate."""
    with torch.inference_mode():
        stored = model.sheet.nodes(features(model.sheet, sheets))
        candidates = model.audio.embed_library(model.audio.nodes(features(model.audio, audio)))
        times = []
        for index in np.random.default_rng(0).choice(len(sheets), min(count, len(sheets))):
            started = time.perf_counter()
            query = model.sheet.features(torch.from_numpy(sheets[index:index + 1]))
            embedded = model.sheet.embed_among(model.sheet.nodes(query), stored)
            (embedded @ candidates.T).topk(10)
            times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> None:
    """Measure every model found, side by side, and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path.home() / ".cache" / "music-studio" / "crossmodal")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="more models to measure")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/crossmodal.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = dict(MODELS)
    models.update(dict(entry.split("=", 1) for entry in args.model))
    test = load_pieces(args.data.expanduser(), "test")
    sheets, audio, _ = passages(test)
    _, held_out_audio, _ = passages(test, held_out_audio=True)
    figures: dict = {"test_pieces": len(test), "passages": len(sheets),
                     "threads": args.threads, "models": {}}
    for name, path in models.items():
        if not Path(path).is_file():
            print(f"{name}: {path} is missing; skipped")
            continue
        model, metrics = CrossModalNet.from_checkpoint(Path(path))
        figures["models"][name] = {
            "checkpoint": str(path),
            "config": model.config.__dict__,
            "parameters": sum(p.numel() for p in model.parameters()),
            "training": metrics,
            "score_to_audio": direction(model.sheet, sheets, model.audio, audio),
            "audio_to_score": direction(model.audio, audio, model.sheet, sheets),
            "held_out_soundfont": {
                "score_to_audio": direction(model.sheet, sheets, model.audio, held_out_audio),
                "audio_to_score": direction(model.audio, held_out_audio, model.sheet, sheets),
            },
            "ms_per_query": query_milliseconds(model, sheets, audio),
        }
    write_figures(rounded(figures, 4), args.out)


if __name__ == "__main__":
    main()
