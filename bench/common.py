"""What the generation benchmarks share: their command-line settings and their JSON output."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SetSettings:
    """What a benchmark over sets of generated and real pieces generates and reads."""

    pieces: int  # per style
    seconds: float  # length of each piece
    seed: int  # generated pieces use seed, seed + 1, ...
    windows: int  # excerpts taken at most per real piece
    styles: Sequence[str]
    cache_dir: Path | None  # the studio's cache folder (None: the default)


def add_set_arguments(
    parser: argparse.ArgumentParser, *, pieces: int, seconds: float, windows: int, out: str
) -> None:
    """--pieces, --seconds, --seed, --windows, --styles, --cache and --out, with these defaults."""
    from engine.generate import STYLES

    parser.add_argument("--pieces", type=int, default=pieces, help="pieces per style")
    parser.add_argument("--seconds", type=float, default=seconds, help="length of each piece")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--windows", type=int, default=windows,
                        help="excerpts taken at most per real piece")  # fmt: skip
    parser.add_argument("--styles", nargs="+", default=list(STYLES), choices=STYLES)
    parser.add_argument("--cache", type=Path, default=None, help="the studio's cache folder")
    parser.add_argument("--out", type=Path, default=Path(out))


def set_settings(args: argparse.Namespace) -> SetSettings:
    """The settings given by add_set_arguments' arguments."""
    return SetSettings(
        pieces=args.pieces,
        seconds=args.seconds,
        seed=args.seed,
        windows=args.windows,
        styles=args.styles,
        cache_dir=args.cache,
    )


def rounded(value: Any, digits: int) -> Any:
    """Floats rounded to `digits`, all through dicts and lists (for the JSON)."""
    if isinstance(value, float):
        return round(value, digits)
    if isinstance(value, dict):
        return {k: rounded(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, digits) for v in value]
    return value


def write_figures(figures: dict[str, Any], out: Path) -> None:
    """Print the figures as JSON and write them to `out`."""
    text = json.dumps(figures, indent=1)
    print(text)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text + "\n")
