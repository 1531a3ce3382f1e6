"""Benchmark cross-modal search between sheet music and audio on held-out pieces; JSON out.

Every 2-bar passage of every test piece (pieces never trained on) is a query and a candidate,
both ways: score -> audio (a passage's snippet finds its audio among all the passages' audio)
and audio -> score. The candidates are embedded together, their graph over all of them (as a
library's items are); each query joins that graph on its own (`direction` of
engine.train.crossmodal, also the trainer's validation). R@1, R@10, MRR and median rank per
direction, with the audio rendered by the training soundfonts and by one never used in
training; milliseconds per query (its CNN, its graph neighbourhood, the ranking of every
candidate). The method's graph model, the baseline and the ablation without the graph (the
one the studio ships) side by side. Also, where
built (`engine.train.crossmodal_engravers`), the same both ways on test pieces whose sheet side
was engraved by MuseScore or by LilyPond and read as a snippet is (barlines found on the page),
each beside verovio's engraving of the same pieces.

For the shipped model also a search as the studio runs it (`engine.score_search`) in a library
of LIBRARY_TRACKS scored tracks: the test pieces' passages repeated (each copy a track of its
own, with a little noise so that no two are alike) stand in for a library's, and a snippet of
sheet music (the first system of a bundled page) and 30 s of a bundled recording are the
queries: the seconds to join the library's graph once, and the
milliseconds per query (cut into windows, embedded among the stored passages, ranked).

    python -m bench.crossmodal --data ~/.cache/music-studio/crossmodal \
        --engravers ~/.cache/music-studio/crossmodal-engravers --out bench/results/crossmodal.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import rounded, write_figures
from engine.models.crossmodal import CrossModalNet, Nodes
from engine.score_search import (
    Passage,
    PassageIndex,
    SearchModel,
    match_audio,
    match_image,
    nodes_of,
)
from engine.train.crossmodal import direction, features, passages
from engine.train.crossmodal_data import load_pieces

LIBRARY_TRACKS = 1000
QUERY_PAGE = Path("examples/scores/bach-chorale-bwv342.png")  # its first system is the snippet
QUERY_AUDIO = Path("examples/bach-chorale-bwv66-6.ogg")
MODELS = {
    "graph": "checkpoints/crossmodal_graph.pt",  # the method: CNN + FC + k-NN graph encoders
    "baseline": "checkpoints/crossmodal_baseline.pt",  # two branches, pairwise ranking loss
    "no-graph": "checkpoints/crossmodal.pt",  # the method's losses, no graph encoder (shipped)
}
SHIPPED = "no-graph"


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


def _noisy(nodes: Nodes, rng: np.random.Generator) -> Nodes:
    """A copy of stored passages with a little noise, so that no two tracks are alike."""
    def noise() -> torch.Tensor:
        return 0.05 * torch.from_numpy(rng.standard_normal(nodes.dense.shape, np.float32))

    return Nodes(nodes.dense + noise(), None if nodes.graph is None else nodes.graph + noise())


def _library_of(model: CrossModalNet, test: list, tracks: int) -> tuple[PassageIndex, float]:
    """A passage index of `tracks` scored tracks made of the test pieces' passages, and the
    seconds its graphs took to join (once per change of the library's scored tracks)."""
    from engine.library import StoredScore, Track
    from engine.score.timemap import BarSpan, SystemSpan

    rng = np.random.default_rng(0)
    items, sheet, sound, stored, scores = [], [], [], {}, {}
    for track_id in range(1, tracks + 1):
        piece = test[(track_id - 1) % len(test)]
        if track_id <= len(test):
            sheets, audio, names = passages([piece])
            stored[track_id] = (nodes_of(model.sheet, sheets[:, 0]),
                                nodes_of(model.audio, audio[:, 0]), names)
        first, second, names = stored[(track_id - 1) % len(test) + 1]
        sheet.append(_noisy(first, rng))
        sound.append(_noisy(second, rng))
        systems = [SystemSpan(0, index, tuple(BarSpan(str(n + 1), *bar) for n, bar
                                              in enumerate(bars)), 0.0, 1.0)
                   for index, bars in enumerate(piece.bars)]
        scores[track_id] = StoredScore(b"", systems, [])
        items += [Passage(track_id, system, first_bar, first_bar + 1, 0.0, 1.0)
                     for _, system, first_bar in names]
    joined = [Nodes.joined(*side) for side in (sheet, sound)]
    started = time.perf_counter()
    with torch.inference_mode():
        embeddings = [model.sheet.embed_library(joined[0]), model.audio.embed_library(joined[1])]
    join_seconds = time.perf_counter() - started
    tracks_by_id = {i: Track(i, f"track {i}", "bench", "", 0.0, {}, {}, 0.0, "")
                    for i in scores}
    return PassageIndex(items, joined[0], joined[1], embeddings[0], embeddings[1],
                        tracks_by_id, scores), join_seconds


def library_search(model: CrossModalNet, test: list, tracks: int = LIBRARY_TRACKS,
                   repeats: int = 10) -> dict:
    """A search as the studio runs it in a library of `tracks` scored tracks."""
    import cv2

    from engine import audio
    from engine.score.staves import find_staves

    index, join_seconds = _library_of(model, test, tracks)
    page = cv2.imread(str(QUERY_PAGE), cv2.IMREAD_GRAYSCALE)
    staves = [staff for staff in find_staves(page) if staff.system == 0]
    space = staves[0].spacing
    snippet = page[int(staves[0].top - 4 * space):int(staves[-1].bottom + 4 * space)]
    image = cv2.imencode(".png", snippet)[1].tobytes()
    clip = audio.load(QUERY_AUDIO)
    clip = audio.from_array(clip.samples[: int(30 * clip.sample_rate)], clip.sample_rate)
    search = SearchModel(model, "bench")
    timings: dict[str, list[float]] = {"match_score_ms": [], "match_audio_ms": []}
    for _ in range(repeats):
        for name, run in (("match_score_ms", lambda: match_image(index, search, image, k=10)),
                          ("match_audio_ms", lambda: match_audio(index, search, clip, k=10))):
            began = time.perf_counter()
            run()
            timings[name].append(1000 * (time.perf_counter() - began))
    return {"tracks": tracks, "passages": len(index.passages),
            "join_seconds": join_seconds,
            **{name: statistics.median(times) for name, times in timings.items()}}


def _by_engraver(folder: Path) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray, list[str]]]]:
    """Per other engraver, its test passages (sheet and audio inputs, pieces) and verovio's of
    the same pieces; none when that data was not built."""
    if not (folder / "pieces").is_dir():
        print(f"{folder}: no other engravers' test pieces; their figures are left out")
        return {}
    pieces = load_pieces(folder, "test")
    found = {}
    for name in sorted({piece.engraver for piece in pieces} - {"verovio"}):
        names = {piece.piece for piece in pieces if piece.engraver == name}
        found[name] = {}
        for engraver in (name, "verovio"):
            sheets, audio, keys = passages([piece for piece in pieces
                                            if piece.engraver == engraver and piece.piece in names])
            found[name][engraver] = sheets, audio, [key[0] for key in keys]
    return found


def _both_ways(model: CrossModalNet, sheets: np.ndarray, audio: np.ndarray,
               pieces: list[str]) -> dict:
    """R@1, R@10, MRR and median rank score -> audio and audio -> score, of the passage and
    of its piece."""
    return {"score_to_audio": direction(model.sheet, sheets, model.audio, audio, pieces),
            "audio_to_score": direction(model.audio, audio, model.sheet, sheets, pieces)}


def main() -> None:
    """Measure every model found, side by side, and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path.home() / ".cache" / "music-studio" / "crossmodal")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="more models to measure")
    parser.add_argument("--engravers", type=Path,
                        default=Path.home() / ".cache" / "music-studio" / "crossmodal-engravers",
                        help="test pieces engraved by other software too "
                             "(engine.train.crossmodal_engravers); left out when missing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/crossmodal.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = dict(MODELS)
    models.update(dict(entry.split("=", 1) for entry in args.model))
    test = load_pieces(args.data.expanduser(), "test")
    sheets, audio, keys = passages(test)
    pieces = [key[0] for key in keys]
    _, held_out_audio, _ = passages(test, held_out_audio=True)
    engraved = _by_engraver(args.engravers.expanduser())
    figures: dict = {"test_pieces": len(test), "passages": len(sheets),
                     "threads": args.threads, "models": {},
                     "engraver_passages": {name: len(layouts[name][0])
                                           for name, layouts in engraved.items()}}
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
            **_both_ways(model, sheets, audio, pieces),
            "held_out_soundfont": _both_ways(model, sheets, held_out_audio, pieces),
            "ms_per_query": query_milliseconds(model, sheets, audio),
            "engravers": {name: {engraver: _both_ways(model, *inputs)
                                 for engraver, inputs in layouts.items()}
                          for name, layouts in engraved.items()},
        }
        if name == SHIPPED:
            figures["models"][name]["library_search"] = library_search(model, test)
    write_figures(rounded(figures, 4), args.out)


if __name__ == "__main__":
    main()
