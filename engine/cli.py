"""The studio's command line (`python -m engine ...`); see DESIGN.md for the contract."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from tqdm import tqdm

from engine.errors import EngineError

EXIT_OK = 0
EXIT_SOME_FAILED = 1  # at least one input file could not be processed
EXIT_UNAVAILABLE = 2  # a model or tool the command needs is missing


def _quiet(files: Sequence[str]) -> bool:
    """No progress bar for a single file or when stderr is not a terminal."""
    return len(files) < 2 or not sys.stderr.isatty()


def _genres(args: argparse.Namespace) -> int:
    from engine.genre import GENRES

    if args.json:
        print(json.dumps({"genres": list(GENRES)}))
    else:
        print("\n".join(GENRES))
    return EXIT_OK


def _classify(args: argparse.Namespace) -> int:
    from engine.audio import load
    from engine.genre import classify, load_classifier

    try:
        classifier = load_classifier()
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    status = EXIT_OK
    for path in tqdm(args.files, desc="classify", unit="file", disable=_quiet(args.files)):
        try:
            prediction = classify(load(path), classifier)
        except EngineError as err:
            tqdm.write(f"{path}: {err}", file=sys.stderr)
            status = EXIT_SOME_FAILED
            continue
        if args.json:
            record = {
                "file": path,
                "genres": prediction.genres,
                "top": prediction.top,
                "segments": [
                    {"start": round(s.start, 2), "end": round(s.end, 2), "top": s.top}
                    for s in prediction.segments
                ],
                "warnings": list(prediction.warnings),
            }
            tqdm.write(json.dumps(record))
        else:
            ranked = sorted(prediction.genres.items(), key=lambda item: -item[1])[:3]
            summary = ", ".join(f"{name} {value:.2f}" for name, value in ranked)
            tqdm.write(f"{path}: {prediction.top} ({summary})")
            for warning in prediction.warnings:
                tqdm.write(f"{path}: warning: {warning}", file=sys.stderr)
    return status


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subcommand per capability."""
    parser = argparse.ArgumentParser(
        prog="python -m engine", description="Music Studio from the command line."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    genres = commands.add_parser("genres", help="list the genre names the classifier knows")
    genres.add_argument("--json", action="store_true", help="print JSON")
    genres.set_defaults(run=_genres)

    classify = commands.add_parser(
        "classify", help="tell the genre of audio files, overall and over time"
    )
    classify.add_argument("files", nargs="+", metavar="FILE", help="WAV, FLAC, OGG, Opus or MP3")
    classify.add_argument("--json", action="store_true", help="one JSON object per line per file")
    classify.set_defaults(run=_classify)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    return args.run(args)
