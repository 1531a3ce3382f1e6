"""Cache the pretrained musicnn (MSD) outputs of every dataset example, patch by patch.

The outputs serve twice: as frozen features for the "musicnn + head" variant, and as the
teacher targets that distil musicnn into the studio's fast CNN encoder. Patches lie on a
fixed grid (TEACHER_HOP_FRAMES apart) so a student sees exactly the teacher's input.

    python -m engine.train.teacher --cache ~/.cache/music-studio
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from engine.features import cut_patches, encoder_log_mel
from engine.models.musicnn import Musicnn
from engine.train.dataset import Example, default_cache_dir, load_audio, load_manifest
from engine.train.genre_data import genre_selection

TEACHER_HOP_FRAMES = 187  # non-overlapping 3 s patches: the teacher is slow
MUSICNN_CHECKPOINT = Path("checkpoints/musicnn_msd.pt")


def teacher_path(cache_dir: Path, example: Example) -> Path:
    """Where one example's teacher outputs are cached."""
    return cache_dir / "features" / "musicnn" / f"{example.example_id}.npz"


def grid_patches(audio: np.ndarray) -> np.ndarray:
    """The encoder log-mel of a clip cut on the teacher's grid: (N, 1, 96, 187) float32."""
    patches, _ = cut_patches(
        encoder_log_mel(audio)[None], patch_frames=187, hop_frames=TEACHER_HOP_FRAMES
    )
    return patches


def cache_teacher_outputs(examples: list[Example], cache_dir: Path, model: Musicnn) -> None:
    """Compute and store, per example: log-mel patches, tag logits, penultimate, pooled."""
    todo = [e for e in examples if not teacher_path(cache_dir, e).exists()]
    for example in tqdm(todo, desc="musicnn teacher"):
        patches = grid_patches(load_audio(example))
        with torch.inference_mode():
            out = model.features(torch.from_numpy(patches[:, 0]).transpose(1, 2))
        path = teacher_path(cache_dir, example)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp.npz")
        np.savez(
            temporary,
            patches=patches.astype(np.float16),
            logits=out.logits.numpy(),
            penultimate=out.penultimate.numpy(),
            pooled=torch.cat([out.mean_pool, out.max_pool], dim=1).numpy().astype(np.float16),
        )
        temporary.replace(path)


def main() -> None:
    """Fill the teacher cache for the genre selection of the manifest (resumable)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    args = parser.parse_args()
    torch.manual_seed(0)
    examples = genre_selection(load_manifest(args.cache))
    cache_teacher_outputs(examples, args.cache, Musicnn.from_checkpoint(MUSICNN_CHECKPOINT))


if __name__ == "__main__":
    main()
