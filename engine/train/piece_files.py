"""Data sets built one source file at a time, in parallel, resumably: one .npz per file.

Shared by the data builds over the scored corpora (engine.train.omr_data,
engine.train.crossmodal_data): each source file becomes <out>/pieces/<sha1 of its id>.npz,
written whole or not at all, so a killed build starts again where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

DEFAULT_DATA_DIR = Path("../shared/data")


def add_build_arguments(parser: argparse.ArgumentParser, *, name: str) -> None:
    """--data, --out (default ~/.cache/music-studio/<name>), --seed, --workers and --limit."""
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="shared data folder")
    parser.add_argument("--out", type=Path,
                        default=Path.home() / ".cache" / "music-studio" / name)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="at most this many files (0: all)")


def piece_file(out_dir: Path, piece_id: str) -> Path:
    """Where the data of one source file goes."""
    return out_dir / "pieces" / (hashlib.sha1(piece_id.encode()).hexdigest() + ".npz")


def save_piece(target: Path, **arrays: np.ndarray | str) -> None:
    """Write one source file's arrays at once (a temporary file, then renamed)."""
    np.savez(str(target) + ".tmp.npz", **arrays)
    os.replace(str(target) + ".tmp.npz", target)


# A source file's build: (source, seed) -> (the arrays to save, how many items they hold).
Job = Callable[[Any, int], tuple[dict[str, Any], int]]


def _build_one(args: tuple[Job, Any, int, Path]) -> tuple[str, int]:
    job, source, seed, out_dir = args
    target = piece_file(out_dir, source.piece_id)
    if target.exists():
        return source.piece_id, -1
    warnings.simplefilter("ignore")  # music21's and verovio's complaints about corpus files
    arrays, count = job(source, seed)
    save_piece(target, **arrays)
    return source.piece_id, count


def build_all(job: Job, todo: list, *, seed: int, out_dir: Path,
              workers: int) -> Iterator[tuple[str, int]]:
    """Build every source file of `todo` not yet built, in `workers` processes, with
    progress: (its id, items built; -1 when it was already there) as each is done.

    Args:
        job: a module-level function (it is sent to the worker processes).
    """
    (out_dir / "pieces").mkdir(parents=True, exist_ok=True)
    jobs = [(job, source, seed, out_dir) for source in todo]
    with multiprocessing.get_context("spawn").Pool(workers, maxtasksperchild=20) as pool:
        yield from tqdm(pool.imap_unordered(_build_one, jobs), total=len(jobs), unit="file")
