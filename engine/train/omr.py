"""Train the staff reader (or its baseline and ablations) on the engraved staves.

    nice python -m engine.train.omr --data ~/.cache/music-studio/omr --variant reader \
        --minutes 90 --threads 1 --out checkpoints/score_reader.pt

Budgeted in minutes or steps, saved as it goes and resumed when started again
(engine.train.budget); the slim checkpoint (weights, config, vocabulary, val figures) is
written at each save. Half the training staves are damaged on the fly as scans and photos
damage them (engine.train.degrade).
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from engine.models.omr import ReaderConfig, StaffReader
from engine.score.encoding import vocabulary
from engine.score.reader import greedy_decode, to_batch
from engine.train.budget import Run, add_budget_arguments
from engine.train.degrade import degrade
from engine.train.metrics import error_rate

# The model we ship, the CRNN-BiLSTM baseline of end-to-end OMR on PrIMuS, and the ablations.
VARIANTS = {
    "reader": dict(residual=True, fusion=True, recurrent="sru"),
    "baseline": dict(residual=False, fusion=False, recurrent="lstm"),
    "no-fusion": dict(residual=True, fusion=False, recurrent="sru"),
    "lstm": dict(residual=True, fusion=True, recurrent="lstm"),
}
VAL_STAVES = 300


@dataclass
class StaffSet:
    """A split of the staff data: images side by side, and each staff's tokens."""

    images: np.ndarray  # (height, total width) uint8
    offsets: np.ndarray  # staff i is images[:, offsets[i]:offsets[i + 1]]
    records: list[dict]  # tokens, font, piece, collection

    @classmethod
    def load(cls, folder: Path, split: str) -> StaffSet:
        """Read <folder>/<split>.npz and .json (python -m engine.train.omr_data)."""
        stored = np.load(folder / f"{split}.npz")
        records = json.loads((folder / f"{split}.json").read_text())
        return cls(stored["images"], stored["offsets"], records)

    def __len__(self) -> int:
        return len(self.records)

    def image(self, index: int) -> np.ndarray:
        """Staff `index` as a grey image."""
        return self.images[:, self.offsets[index] : self.offsets[index + 1]]

    def width(self, index: int) -> int:
        """Its width in pixels."""
        return int(self.offsets[index + 1] - self.offsets[index])


def batches(staves: StaffSet, size: int, rng: random.Random) -> list[list[int]]:
    """Staves in batches of similar width (little padding), the batches in random order."""
    order = list(range(len(staves)))
    rng.shuffle(order)
    # Sort within windows of 50 batches so batches differ from epoch to epoch.
    window = size * 50
    grouped: list[list[int]] = []
    for start in range(0, len(order), window):
        part = sorted(order[start : start + window], key=staves.width)
        grouped += [part[i : i + size] for i in range(0, len(part), size)]
    rng.shuffle(grouped)
    return grouped


def augment(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A staff as a scan or photo might give it: stretched a little, damaged half the time."""
    import cv2

    stretch = rng.uniform(0.85, 1.15)
    width = max(int(image.shape[1] * stretch), 16)
    out = cv2.resize(image, (width, image.shape[0]), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.5:
        out = degrade(out, rng, page=False)
    return out


def evaluate(model: StaffReader, staves: StaffSet, indices: list[int],
             vocab: list[str]) -> float:
    """Symbol error rate of greedy decoding on the given staves."""
    model.eval()
    truths, guesses = [], []
    with torch.inference_mode():
        for start in range(0, len(indices), 16):
            chunk = indices[start : start + 16]
            batch, widths = to_batch([staves.image(i) for i in chunk])
            log_probs = model(batch)
            frames = StaffReader.frames(widths)
            for column, index in enumerate(chunk):
                symbols = greedy_decode(log_probs[:, column], int(frames[column]), vocab)
                guesses.append([s.token for s in symbols])
                truths.append(staves.records[index]["tokens"])
    model.train()
    return error_rate(truths, guesses)


def main() -> None:
    """Train one variant within its budget, resuming where a killed run stopped."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path.home() / ".cache" / "music-studio" / "omr")
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="reader")
    add_budget_arguments(parser, minutes=90.0)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1.5e-3)
    parser.add_argument("--out", type=Path, default=Path("checkpoints/score_reader.pt"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    vocab = vocabulary()
    index_of = {token: i + 1 for i, token in enumerate(vocab)}
    train = StaffSet.load(args.data.expanduser(), "train")
    val = StaffSet.load(args.data.expanduser(), "val")
    val_indices = random.Random(args.seed).sample(range(len(val)), min(VAL_STAVES, len(val)))
    model = StaffReader(ReaderConfig(vocab_size=len(vocab), **VARIANTS[args.variant]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    run = Run(args.out, model, optimizer, args=args, lr=args.lr, warmup=300, label=args.variant)
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    rng = random.Random(f"{args.seed}/{run.state['epoch']}")
    np_rng = np.random.default_rng([args.seed, run.state["epoch"]])

    def measure() -> dict:
        return {"val_ser": round(evaluate(model, val, val_indices, vocab), 4)}

    def write(metrics: dict) -> None:
        model.save(args.out, vocab=vocab, metrics={**metrics, "train_staves": len(train)})

    model.train()
    while not run.done():
        for batch_indices in batches(train, args.batch, rng):
            if run.done():
                break
            images = [augment(train.image(i), np_rng) for i in batch_indices]
            batch, widths = to_batch(images)
            targets = [torch.tensor([index_of[t] for t in train.records[i]["tokens"]])
                       for i in batch_indices]
            log_probs = model(batch)
            run.update(ctc(log_probs, torch.cat(targets), StaffReader.frames(widths),
                           torch.tensor([len(t) for t in targets])))
            run.save_if_due(measure, write)
        else:
            run.state["epoch"] += 1
    run.save(measure, write)


if __name__ == "__main__":
    main()
