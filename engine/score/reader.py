"""Reading staves: staff images -> tokens of engine.score.encoding, each with a confidence."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from engine.models.omr import StaffReader
from engine.score.encoding import token_kind

CHECKPOINT = Path(__file__).resolve().parents[2] / "checkpoints" / "score_reader.pt"
CHECKPOINT_ENV = "MUSIC_STUDIO_SCORE_READER_CHECKPOINT"  # overrides CHECKPOINT
UNSURE_BELOW = 0.8  # a symbol read with less confidence than this is marked for checking


@dataclass(frozen=True)
class Symbol:
    """One symbol read from a staff."""

    token: str  # the symbol in the reader's encoding
    confidence: float  # the reader's probability for it, 0..1
    column: float  # where it was read, as a share of the staff image's width (0..1)


@dataclass(frozen=True)
class LoadedReader:
    """A staff reader ready to use."""

    model: StaffReader
    vocab: tuple[str, ...]  # token of each output index (index 0, the CTC blank, excluded)
    metrics: dict

    @property
    def height(self) -> int:
        """Rows of the staff images it reads."""
        return self.model.config.height


def load_reader(path: Path | None = None) -> LoadedReader:
    """The staff reader of the studio ($MUSIC_STUDIO_SCORE_READER_CHECKPOINT, else the shipped
    checkpoint), or the one at `path`; on CUDA when present.

    Raises:
        ModelUnavailable: when the checkpoint is missing or unreadable.
    """
    path = Path(path or os.environ.get(CHECKPOINT_ENV) or CHECKPOINT)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, vocab, metrics = StaffReader.from_checkpoint(path, device=device)
    return LoadedReader(model, tuple(vocab), metrics)


def to_batch(images: Sequence[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey staff images (paper white) -> (B, 1, H, W) ink-is-1 tensor, padded, and widths."""
    widths = torch.tensor([image.shape[1] for image in images])
    batch = torch.zeros(len(images), 1, images[0].shape[0], int(widths.max()))
    for index, image in enumerate(images):
        batch[index, 0, :, : image.shape[1]] = torch.from_numpy(
            (255 - image.astype(np.float32)) / 255
        )
    return batch, widths


def _allowed(previous: str | None, kinds: np.ndarray) -> np.ndarray:
    """Which tokens may follow `previous` (None: the staff's start) in the encoding: a pitch
    takes more pitches or its duration, "rest" takes a duration, a duration is never followed
    by another, and a tie only follows a duration."""
    allowed = np.ones(len(kinds) + 1, bool)  # index 0 is the blank, always allowed
    body = allowed[1:]
    if previous is not None and token_kind(previous) == "pitch":
        body &= (kinds == "pitch") | (kinds == "duration")
    elif previous == "rest":
        body &= kinds == "duration"
    else:
        body &= kinds != "duration"
        if previous is None or token_kind(previous) != "duration":
            body &= kinds != "tie"
    return allowed


def greedy_decode(
    log_probs: torch.Tensor, frames: int, vocab: Sequence[str], *, grammar: bool = True
) -> list[Symbol]:
    """Best path CTC decoding of one staff: the most likely symbol per column, repeats merged,
    blanks dropped; a symbol's confidence is its highest probability over its columns.

    With `grammar`, a column whose likeliest symbol cannot follow the last one read (a
    duration with no pitch before it, a bar line inside a note, a tie after a pitch) takes
    the likeliest symbol that can, or nothing when the blank is likelier.

    Args:
        log_probs: (T, vocab + 1) log-probabilities of one staff.
        frames: how many of the T columns belong to the staff (the rest is padding).
        vocab: the token of each non-blank index.
        grammar: keep to the encoding's grammar.
    """
    probs = log_probs[:frames].exp().numpy()
    kinds = np.array([token_kind(token) for token in vocab])
    symbols: list[Symbol] = []
    previous = 0
    cache: dict[str | None, np.ndarray] = {}
    for t, column in enumerate(probs):
        index = int(column.argmax())
        if grammar and index not in (0, previous):
            last = symbols[-1].token if symbols else None
            if last not in cache:
                cache[last] = _allowed(last, kinds)
            allowed = cache[last]
            if not allowed[index]:
                index = int(np.where(allowed, column, -1.0).argmax())
        probability = float(column[index])
        if index != 0 and index != previous:
            symbols.append(Symbol(vocab[index - 1], probability, (t + 0.5) / max(frames, 1)))
        elif index != 0 and symbols:
            last_symbol = symbols[-1]
            if probability > last_symbol.confidence:
                symbols[-1] = Symbol(last_symbol.token, probability, last_symbol.column)
        previous = index
    return symbols


@torch.inference_mode()
def read_staves(
    images: Sequence[np.ndarray], reader: LoadedReader, *, grammar: bool = True
) -> list[list[Symbol]]:
    """Read staff images (as engine.score.staves.crop_staff cuts them), one symbol list each
    (decoded within the encoding's grammar unless `grammar` is False).

    Each staff is read on its own: padded beside wider ones, the backward recurrence would
    start on the padding and a staff would read differently depending on its neighbours.
    """
    device = next(reader.model.parameters()).device
    read = []
    for image in images:
        batch, widths = to_batch([image])
        log_probs = reader.model(batch.to(device)).cpu()
        read.append(greedy_decode(log_probs[:, 0], int(StaffReader.frames(widths)[0]),
                                  reader.vocab, grammar=grammar))
    return read
