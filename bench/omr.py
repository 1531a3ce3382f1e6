"""Benchmark the score reader against its baseline and ablations on held-out music; JSON out.

Staff level, on the test split of the staff data (pieces never trained on): symbol error rate
(edit distance over the true length), sequence error rate (staves with any error), pitch and
duration error rates (the same over pitch tokens alone and duration tokens alone), on the
staves as engraved ("clean") and damaged as scans and photos damage them ("degraded"), split
by the fonts used in training and the font held out from it; milliseconds per staff.
Page level, on whole held-out pages (all parts, random layout) engraved by verovio, by
MuseScore and by LilyPond (an engraver the reader never trains on), clean and degraded: the note
error of each part (edit distance over its notes and rests, each pitch set with its duration)
and seconds per page, through the full reader (page straightening, staff finding, reading,
assembly).

    python -m bench.omr --data ~/.cache/music-studio/omr --out bench/results/omr.json
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from bench.common import rounded, write_figures
from engine.score.assemble import join_staves
from engine.score.encoding import split_kinds, token_kind
from engine.score.reader import LoadedReader, load_reader, read_staves
from engine.score.reading import read_pages
from engine.train.degrade import degrade
from engine.train.metrics import edit_distance, error_rate
from engine.train.omr import StaffSet
from engine.train.omr_data import (
    ENGRAVERS,
    HELD_OUT_FONT,
    engrave_page,
    sources,
    split_of,
)
from engine.train.piece_files import DEFAULT_DATA_DIR

MODELS = {
    "reader": "checkpoints/score_reader.pt",  # residual CNN + multiscale fusion + BiSRU + CTC
    "baseline": "checkpoints/score_reader_baseline.pt",  # CRNN + BiLSTM (PrIMuS papers)
}


def note_events(tokens: list[str]) -> list[str]:
    """A part's notes and rests, each as one event: its pitches (or "rest") and duration."""
    events, pending = [], []
    for token in tokens:
        kind = token_kind(token)
        if kind == "pitch":
            pending.append(token)
        elif token == "rest":
            pending = ["rest"]
        elif token == "rest:measure":
            events.append("rest:measure")
            pending = []
        elif kind == "duration" and pending:
            events.append("+".join(pending) + "/" + token)
            pending = []
    return events


def staff_figures(reader: LoadedReader, staves: StaffSet, indices: list[int],
                  *, degraded: bool, grammar: bool = True) -> dict:
    """Error rates and speed of one reader on the given test staves."""
    truths, guesses, fonts, times = [], [], [], []
    for index in tqdm(indices, desc="staves", leave=False):
        image = staves.image(index)
        if degraded:
            image = degrade(image, np.random.default_rng(index), page=False)
        started = time.perf_counter()
        symbols = read_staves([image], reader, grammar=grammar)[0]
        times.append(1000 * (time.perf_counter() - started))
        guesses.append([s.token for s in symbols])
        truths.append(staves.records[index]["tokens"])
        fonts.append(staves.records[index]["font"])

    def rates(picked: list[int]) -> dict:
        t = [truths[i] for i in picked]
        g = [guesses[i] for i in picked]
        return {
            "staves": len(picked),
            "ser": error_rate(t, g),
            "sequence_error_rate": float(np.mean([a != b for a, b in zip(t, g, strict=True)])),
            "pitch_error_rate": error_rate([split_kinds(s, ["pitch"]) for s in t],
                                           [split_kinds(s, ["pitch"]) for s in g]),
            "duration_error_rate": error_rate([split_kinds(s, ["duration"]) for s in t],
                                              [split_kinds(s, ["duration"]) for s in g]),
        }

    everything = list(range(len(truths)))
    musescore = [i for i in everything if fonts[i].startswith("MuseScore")]
    return {
        **rates(everything),
        "trained_fonts": rates([i for i in everything if fonts[i] != HELD_OUT_FONT]),
        "held_out_font": rates([i for i in everything if fonts[i] == HELD_OUT_FONT]),
        **({"musescore": rates(musescore)} if musescore else {}),
        "ms_per_staff_p50": statistics.median(times),
        "ms_per_staff_mean": float(np.mean(times)),
    }


def page_figures(reader: LoadedReader, pages: list, *, degraded: bool) -> dict:
    """Note error per part and seconds per page of the whole reading on held-out pages."""
    errors, lengths, seconds, part_mismatch = 0, 0, [], 0
    for number, page in enumerate(tqdm(pages, desc="pages", leave=False)):
        images = page.images
        if degraded:
            rng = np.random.default_rng(1000 + number)
            images = [degrade(image, rng, page=True, back=images[-1]) for image in images]
        started = time.perf_counter()
        try:
            reading = read_pages(images, reader, name=page.piece)
            read_parts = [
                join_staves([s.tokens for s in reading.staves if s.staff.index == p])
                for p in range(reading.parts)
            ]
        except Exception:  # noqa: BLE001 - a page the reader cannot read counts as all wrong
            read_parts = []
        seconds.append((time.perf_counter() - started) / len(images))
        if len(read_parts) != len(page.parts):
            part_mismatch += 1
        for index, truth in enumerate(page.parts):
            true_events = note_events(truth)
            guess = note_events(read_parts[index]) if index < len(read_parts) else []
            errors += edit_distance(true_events, guess)
            lengths += len(true_events)
    return {
        "pages": len(pages),
        "note_error_rate": errors / max(lengths, 1),
        "pages_with_wrong_part_count": part_mismatch,
        "seconds_per_page_p50": statistics.median(seconds) if seconds else None,
        "seconds_per_page_max": max(seconds) if seconds else None,
    }


def main() -> None:
    """Measure every model found, side by side, and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path,
                        default=Path.home() / ".cache" / "music-studio" / "omr",
                        help="the staff data (python -m engine.train.omr_data)")
    parser.add_argument("--shared", type=Path, default=DEFAULT_DATA_DIR,
                        help="shared data folder (held-out pages are engraved from it)")
    parser.add_argument("--model", action="append", default=[], metavar="NAME=PATH",
                        help="more models to measure (ablations)")
    parser.add_argument("--staves", type=int, default=1000, help="test staves at most")
    parser.add_argument("--pages", type=int, default=30, help="held-out pages")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench/results/omr.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = dict(MODELS)
    models.update(dict(entry.split("=", 1) for entry in args.model))
    staves = StaffSet.load(args.data.expanduser(), "test")
    rng = np.random.default_rng(args.seed)
    indices = sorted(rng.permutation(len(staves))[: args.staves].tolist())
    held_out = [s for s in sources(args.shared, args.seed) if split_of(s.piece_id) == "test"]
    pages: dict[str, list] = {}
    for engraver in ENGRAVERS:
        pages[engraver] = []
        for source in tqdm(held_out, desc=f"engraving held-out pages ({engraver})", leave=False):
            if len(pages[engraver]) >= args.pages:
                break
            try:
                page = engrave_page(source, args.seed, engraver=engraver)
            except Exception:  # noqa: BLE001 - a file music21 or an engraver cannot take
                page = None
            if page is not None:
                pages[engraver].append(page)
    figures: dict = {"test_staves": len(indices), "held_out_font": HELD_OUT_FONT,
                     "threads": args.threads, "models": {}}
    for name, path in models.items():
        if not Path(path).is_file():
            print(f"{name}: {path} is missing; skipped")
            continue
        reader = load_reader(Path(path))
        read_staves([staves.image(indices[0])], reader)  # warm-up
        figures["models"][name] = {
            "checkpoint": str(path),
            "config": reader.model.config.__dict__,
            "parameters": sum(p.numel() for p in reader.model.parameters()),
            "training": reader.metrics,
            "staff_clean": staff_figures(reader, staves, indices, degraded=False),
            "staff_degraded": staff_figures(reader, staves, indices, degraded=True),
            "page_clean": page_figures(reader, pages["verovio"], degraded=False),
            "page_degraded": page_figures(reader, pages["verovio"], degraded=True),
            "page_musescore": page_figures(reader, pages["musescore"], degraded=False),
            "page_lilypond": page_figures(reader, pages["lilypond"], degraded=False),
            "page_lilypond_degraded": page_figures(reader, pages["lilypond"], degraded=True),
        }
        if name == "reader":
            figures["models"]["reader, decoded without the grammar"] = {
                "staff_clean": staff_figures(reader, staves, indices, degraded=False,
                                             grammar=False),
                "staff_degraded": staff_figures(reader, staves, indices, degraded=True,
                                                grammar=False),
            }
    write_figures(rounded(figures, 4), args.out)


if __name__ == "__main__":
    main()
