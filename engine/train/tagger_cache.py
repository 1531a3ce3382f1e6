"""Cache the MTG-Jamendo taggers' outputs of every real clip, on the encoder's patch grid.

For the mood heads' variants (engine.train.mood): per clip, one row per encoder patch (the
grid of engine.train.teacher), holding the tagger's penultimate layer and tag logits for the
model input nearest that patch (musicnn reads the patches themselves; the CNNs read ~29 s, so
the patches of a 30 s clip share one input, its centred crop). Convert the taggers first
(``python -m engine.train.convert_taggers``).

    python -m engine.train.tagger_cache --models jamendo-moodtheme jamendo-fcn jamendo-musicnn
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.audio import SAMPLE_RATE
from engine.features import ENCODER_HOP, ENCODER_RATE, patch_starts
from engine.models.taggers import Tagger
from engine.train.convert_taggers import MODELS
from engine.train.dataset import Example, default_cache_dir, load_audio, load_manifest
from engine.train.teacher import TEACHER_HOP_FRAMES

PATCH_FRAMES = 187  # the encoder's patch length in frames of ENCODER_HOP at ENCODER_RATE


def tagger_path(cache_dir: Path, example: Example, name: str) -> Path:
    """Where one example's outputs of the tagger `name` are cached."""
    return cache_dir / "features" / f"tagger_{name}" / f"{example.cache_name}.npy"


def encoder_patch_centres(samples: int, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Centre (seconds) of each encoder patch of a clip of `samples` (teacher's grid)."""
    resampled = -(-samples * ENCODER_RATE // sample_rate)
    frames = 1 + resampled // ENCODER_HOP
    starts = patch_starts(frames, patch_frames=PATCH_FRAMES, hop_frames=TEACHER_HOP_FRAMES)
    return (np.asarray(starts) + PATCH_FRAMES / 2) * ENCODER_HOP / ENCODER_RATE


def on_patches(tagger: Tagger, audio: np.ndarray, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(encoder patches, penultimate + tags): each patch's row is the tagger's input nearest it.

    Returns:
        float32 array, one row per encoder patch of `audio`.
    """
    out, starts = tagger.embed(audio, sample_rate)
    centres = starts + tagger.input_seconds / 2
    patches = encoder_patch_centres(len(audio), sample_rate)
    nearest = np.abs(patches[:, None] - centres[None, :]).argmin(axis=1)
    return out.features.numpy()[nearest].astype(np.float32)


def cache_tagger(examples: list[Example], cache_dir: Path, name: str, checkpoint: Path) -> None:
    """Compute and store one tagger's patch rows of every example not cached yet."""
    tagger = Tagger.from_checkpoint(checkpoint)
    todo = [e for e in examples if not tagger_path(cache_dir, e, name).exists()]
    for example in tqdm(todo, desc=name):
        rows = on_patches(tagger, load_audio(example))
        path = tagger_path(cache_dir, example, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npy")
        np.save(temporary, rows)
        temporary.replace(path)


def main() -> None:
    """Fill the cache of the chosen taggers (resumable)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    examples = [e for e in load_manifest(args.cache) if e.domain == "real"]
    for name in args.models:
        cache_tagger(examples, args.cache, name, args.cache / "taggers" / f"{name}.pt")


if __name__ == "__main__":
    main()
