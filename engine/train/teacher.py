"""Cache pretrained musicnn outputs of every dataset example, patch by patch.

The MSD model's outputs serve three times: as frozen features for the "musicnn + head"
variant and the mood heads, and as the teacher targets that distil musicnn into the studio's
fast CNN encoder. The MagnaTagATune model's (``--model mtt``) are features the mood heads can
read beside them; only real clips need them. Patches lie on a fixed grid (TEACHER_HOP_FRAMES
apart) so a student sees exactly the teacher's input.

    python -m engine.train.teacher --cache ~/.cache/music-studio
    python -m engine.train.teacher --model mtt
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
# Converted musicnn models (engine.train.convert_musicnn): name -> checkpoint.
TEACHERS = {"msd": MUSICNN_CHECKPOINT, "mtt": Path("checkpoints/musicnn_mtt.pt")}


def teacher_path(cache_dir: Path, example: Example, model: str = "msd") -> Path:
    """Where one example's outputs of the musicnn `model` (a key of TEACHERS) are cached."""
    folder = "musicnn" if model == "msd" else f"musicnn_{model}"
    return cache_dir / "features" / folder / f"{example.cache_name}.npz"


def grid_patches(audio: np.ndarray) -> np.ndarray:
    """The encoder log-mel of a clip cut on the teacher's grid: (N, 1, 96, 187) float32."""
    patches, _ = cut_patches(
        encoder_log_mel(audio)[None], patch_frames=187, hop_frames=TEACHER_HOP_FRAMES
    )
    return patches


def cache_teacher_outputs(
    examples: list[Example], cache_dir: Path, model: Musicnn, name: str = "msd"
) -> None:
    """Compute and store, per example: log-mel patches, tag logits, penultimate, pooled."""
    todo = [e for e in examples if not teacher_path(cache_dir, e, name).exists()]
    for example in tqdm(todo, desc=f"musicnn {name}"):
        patches = grid_patches(load_audio(example))
        with torch.inference_mode():
            out = model.features(torch.from_numpy(patches[:, 0]).transpose(1, 2))
        path = teacher_path(cache_dir, example, name)
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


def teacher_selection(examples: list[Example], model: str) -> list[Example]:
    """What to cache: every real clip (the mood heads read them all) and, for the MSD model,
    the genre model's rendered draw too."""
    real = [e for e in examples if e.domain == "real"]
    if model != "msd":
        return real
    chosen = genre_selection(examples)
    ids = {e.example_id for e in chosen}
    return chosen + [e for e in real if e.example_id not in ids]


def main() -> None:
    """Fill the cache of one musicnn model (resumable)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=default_cache_dir())
    parser.add_argument("--model", choices=tuple(TEACHERS), default="msd")
    args = parser.parse_args()
    torch.manual_seed(0)
    examples = teacher_selection(load_manifest(args.cache), args.model)
    model = Musicnn.from_checkpoint(TEACHERS[args.model])
    cache_teacher_outputs(examples, args.cache, model, args.model)


if __name__ == "__main__":
    main()
