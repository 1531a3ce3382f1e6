"""Train the cross-modal passage model, its baseline or its ablation on the paired data.

    nice python -m engine.train.crossmodal --data ~/.cache/music-studio/crossmodal \
        --variant no-graph --steps 1600 --threads 1 --out checkpoints/crossmodal.pt

Variants: `graph` (the method: graph encoder; semantic + modality-invariance losses),
`baseline` (no graph encoder, pairwise ranking loss, as audio-sheet music retrieval work on
MSMD), `no-graph` (the method's losses without the graph encoder: what the graph adds; it
measured better than the method, and is the one the studio ships).
A batch holds PIECES_PER_BATCH pieces with WINDOWS_PER_PIECE passages each, so the k-NN graph
within the batch has neighbours from the same piece, as a library has. A passage is a random
window of 1-2.5 bars within one system; its audio window is jittered a little on its own
(alignment and tempo are never exact). Budgeted in minutes or steps, saved as it goes and
resumed when started again (engine.train.budget).
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.models.crossmodal import CrossModalConfig, CrossModalNet, Nodes
from engine.passages import audio_input, bar_windows, sheet_input, window
from engine.train.budget import Run, add_budget_arguments
from engine.train.crossmodal_data import PairedPiece, load_pieces

VARIANTS = {
    "graph": dict(graph=True, loss="semantic"),
    "baseline": dict(graph=False, loss="ranking"),
    "no-graph": dict(graph=False, loss="semantic"),
}
PIECES_PER_BATCH = 12
WINDOWS_PER_PIECE = 6
TEMPERATURE = 0.1  # of the semantic loss's softmax over the batch
INVARIANCE_WEIGHT = 0.2  # of the modality-invariance loss (larger: the space collapses early)
MARGIN = 0.7  # of the baseline's ranking loss


def _audio_augment(excerpt: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Noise under the music and a spectral tilt, as rooms and microphones add."""
    floor = rng.uniform(0.0, 0.35) * rng.random(excerpt.shape).astype(np.float32)
    tilt = rng.uniform(-0.1, 0.1) * np.linspace(-1, 1, excerpt.shape[0], dtype=np.float32)
    return np.clip(np.maximum(excerpt, floor) + tilt[:, None], 0.0, 1.0)


def sample_batch(pieces: list[PairedPiece], rng: random.Random,
                 np_rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random passages of random pieces: (sheets, audio) input batches, pairs in order."""
    sheets, audio = [], []
    for piece in rng.sample(pieces, min(PIECES_PER_BATCH, len(pieces))):
        for _ in range(WINDOWS_PER_PIECE):
            strip = rng.randrange(len(piece.strips))
            bars = piece.bars[strip]
            width = rng.uniform(1.0, min(2.5, len(bars)))
            first = rng.uniform(0, len(bars) - width)
            seen = window(bars, first, first + width)
            jitter = width * 0.08
            heard = window(bars, max(first + rng.uniform(-jitter, jitter), 0),
                           min(first + width + rng.uniform(-jitter, jitter), len(bars)))
            sheets.append(sheet_input(piece.strips[strip], seen.left, seen.right))
            audio.append(_audio_augment(audio_input(piece.mel, heard.start, heard.end), np_rng))
    return (torch.from_numpy(np.stack(sheets))[:, None],
            torch.from_numpy(np.stack(audio))[:, None])


def passages(pieces: list[PairedPiece], *, held_out_audio: bool = False
             ) -> tuple[np.ndarray, np.ndarray, list[tuple[str, int, int]]]:
    """Every 2-bar passage of every system: sheet inputs, audio inputs, (piece, system, bar)."""
    sheets, audio, names = [], [], []
    for piece in pieces:
        mel = piece.mel_held_out if held_out_audio and piece.mel_held_out is not None else piece.mel
        for index, (strip, bars) in enumerate(zip(piece.strips, piece.bars, strict=True)):
            for passage in bar_windows(bars):
                sheets.append(sheet_input(strip, passage.left, passage.right))
                audio.append(audio_input(mel, passage.start, passage.end))
                names.append((piece.piece, index, passage.first))
    return np.stack(sheets)[:, None], np.stack(audio)[:, None], names


def features(branch: nn.Module, inputs: np.ndarray, batch: int = 256) -> torch.Tensor:
    """A branch's CNN features of many inputs, in batches."""
    return torch.cat([branch.features(torch.from_numpy(inputs[i:i + batch]))
                      for i in range(0, len(inputs), batch)])


def direction(query_branch: nn.Module, query_inputs: np.ndarray,
              candidate_branch: nn.Module, candidate_inputs: np.ndarray,
              pieces: list[str] | None = None) -> dict:
    """Retrieval one way: every passage's query among all candidates, its own passage the
    right answer (and, given each passage's piece, its own piece: `piece_figures`). The
    candidates are embedded together, their graph over all of them (as a library's items
    are); each query joins the graph of the other queries' items on its own
    (`Branch.embed_among`), as a search does."""
    with torch.inference_mode():
        stored = query_branch.nodes(features(query_branch, query_inputs))
        candidates = candidate_branch.embed_library(
            candidate_branch.nodes(features(candidate_branch, candidate_inputs)))
        queries = torch.cat([
            query_branch.embed_among(stored.take(slice(i, i + 1)), Nodes.joined(
                stored.take(slice(0, i)), stored.take(slice(i + 1, None))))
            for i in range(len(stored))
        ])
    figures = retrieval_figures(queries, candidates)
    if pieces is not None:
        figures["piece"] = piece_figures(queries, candidates, pieces)
    return figures


def piece_figures(queries: torch.Tensor, candidates: torch.Tensor, pieces: list[str]) -> dict:
    """R@1 and R@10 of each query's own piece, the pieces ranked by their best passage, as the
    studio ranks a library's tracks (query i and candidate i are of piece `pieces[i]`)."""
    number = {piece: index for index, piece in enumerate(dict.fromkeys(pieces))}
    of = torch.tensor([number[piece] for piece in pieces])
    best = torch.full((len(queries), len(number)), -2.0).scatter_reduce(
        1, of.expand(len(queries), -1), queries @ candidates.T, "amax")
    ranks = (best > best.gather(1, of[:, None])).sum(dim=1).float() + 1
    return {"pieces": len(number), "r_at_1": float((ranks <= 1).float().mean()),
            "r_at_10": float((ranks <= 10).float().mean())}


def retrieval_figures(queries: torch.Tensor, candidates: torch.Tensor) -> dict:
    """R@1, R@10, MRR and median rank of each query's own passage among all candidates."""
    similarity = queries @ candidates.T
    truth = similarity.diagonal()[:, None]
    ranks = (similarity > truth).sum(dim=1).float() + 1
    return {"queries": len(ranks), "r_at_1": float((ranks <= 1).float().mean()),
            "r_at_10": float((ranks <= 10).float().mean()),
            "mrr": float((1 / ranks).mean()), "median_rank": float(ranks.median())}


def evaluate(model: CrossModalNet, sheets: np.ndarray, audio: np.ndarray) -> dict:
    """Both directions over the given passages."""
    model.eval()
    return {"score_to_audio": direction(model.sheet, sheets, model.audio, audio),
            "audio_to_score": direction(model.audio, audio, model.sheet, sheets)}


def loss_of(sheets: torch.Tensor, audio: torch.Tensor, kind: str) -> torch.Tensor:
    """The variant's loss on paired embeddings (row i of each is passage i)."""
    similarity = sheets @ audio.T
    if kind == "ranking":
        truth = similarity.diagonal()
        off = ~torch.eye(len(truth), dtype=torch.bool)
        hinge = (MARGIN - truth[:, None] + similarity).clamp(min=0)
        hinge_t = (MARGIN - truth[None, :] + similarity).clamp(min=0)
        return hinge[off].mean() + hinge_t[off].mean()
    labels = torch.arange(len(sheets))
    semantic = (nn.functional.cross_entropy(similarity / TEMPERATURE, labels)
                + nn.functional.cross_entropy(similarity.T / TEMPERATURE, labels))
    invariance = (sheets - audio).pow(2).sum(dim=1).mean()
    return semantic + INVARIANCE_WEIGHT * invariance


def main() -> None:
    """Train one variant within its budget, resuming where a killed run stopped."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path.home() / ".cache" / "music-studio" / "crossmodal")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="no-graph")
    add_budget_arguments(parser, minutes=60.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, default=Path("checkpoints/crossmodal.pt"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    variant = VARIANTS[args.variant]
    folder = args.data.expanduser()
    train, val = load_pieces(folder, "train"), load_pieces(folder, "val")
    val_sheets, val_audio, _ = passages(val)
    model = CrossModalNet(CrossModalConfig(graph=variant["graph"]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    run = Run(args.out, model, optimizer, args=args, lr=args.lr, warmup=200, label=args.variant)
    rng = random.Random(f"{args.seed}/{run.step}")
    np_rng = np.random.default_rng([args.seed, run.step])

    def measure() -> dict:
        figures = evaluate(model, val_sheets, val_audio)
        return {f"val_{direction}_{name}": round(value, 4)
                for direction, by_name in figures.items() for name, value in by_name.items()
                if name in ("r_at_1", "mrr")}

    def write(metrics: dict) -> None:
        model.save(args.out, metrics={**metrics, "train_pieces": len(train),
                                      "val_passages": len(val_sheets)})

    model.train()
    while not run.done():
        sheets, audio = sample_batch(train, rng, np_rng)
        run.update(loss_of(*model(sheets, audio), variant["loss"]))
        run.save_if_due(measure, write)
    run.save(measure, write)


if __name__ == "__main__":
    main()
