"""Test pieces of the cross-modal data engraved by other software too: MuseScore and LilyPond.

For the benchmark only (never trained on). Each test piece is the same run as in the paired
data (`engine.train.crossmodal_data`, same seed: the same bars, tempo, verovio layout and
audio); its MusicXML is also engraved by MuseScore 3 (a random style: font, staff size,
spacing) and by LilyPond (musicxml2ly, a random resolution). Those pages are read as a snippet
of sheet music is read at search time (`engine.score_search.system_strips`: staves found,
systems cut into strips at SPACE_PX pixels per space, barlines found), and a system's bars take
the times of the bars they are, counted from the run's start, from verovio's time map. An
engraver's layout of a piece is kept only when its barlines add up to the run's bars (repeats
and split bars are drawn differently by each engraver), and the benchmark compares it with
verovio's layout of the same pieces.

    python -m engine.train.crossmodal_engravers --data ../shared/data \
        --out ~/.cache/music-studio/crossmodal-engravers

Writes <out>/pieces/<hash>.npz per test source file (a killed build resumes), as the paired
data's piece files, one entry per piece and engraver (meta `engraver`), so that
`load_pieces(out, "test")` reads them.
"""

from __future__ import annotations

import argparse
import json
import random

import music21
import numpy as np

from engine.score.staves import straighten
from engine.score_search import system_strips
from engine.train.crossmodal_data import (
    PROGRAMS,
    TEST_PIECES_PER_FILE,
    TEST_RUN_BARS,
    TRAIN_SOUNDFONTS,
    PairedPiece,
    engraved_run,
    piece_file_arrays,
    render_mel,
    soundfont_paths,
)
from engine.train.engravers import (
    LILYPOND,
    MUSESCORE,
    EngraverError,
    lilypond_pages,
    musescore_pages,
    random_musescore_style,
    require,
)
from engine.train.omr_data import SKIPPED_CHUNK, Source, source_scores, sources, split_of
from engine.train.piece_files import add_build_arguments, build_all


def read_bars(pages: list[np.ndarray], times: list[tuple[float, float]]
              ) -> tuple[list[np.ndarray], list[list[list[float]]]] | None:
    """Pages as a snippet is read: system strips and each bar's [left, right, start, end],
    the bars timed in order by `times`; None when the barlines found are not the run's bars."""
    systems = [(system.image, system.bar_edges()) for page in pages
               for system in system_strips(straighten(page)[0])]
    systems = [(image, edges) for image, edges in systems if len(edges) > 1]
    if sum(len(edges) - 1 for _, edges in systems) != len(times):
        return None
    timed = iter(times)
    bars = [[[a, b, *next(timed)] for a, b in zip(edges, edges[1:], strict=False)]
            for _, edges in systems]
    return [image for image, _ in systems], bars


def engraved_arrays(source: Source, seed: int) -> tuple[dict, int]:
    """One test source file's pieces as every engraver lays them out (none for other splits)."""
    laid_out: list[PairedPiece] = []
    if split_of(source.piece_id) == "test":
        rng = random.Random(f"{seed}/crossmodal/{source.piece_id}")  # as the paired data's
        engraving = random.Random(f"{seed}/engravers/{source.piece_id}")
        try:
            pieces = source_scores(source)[:TEST_PIECES_PER_FILE]
        except Exception as err:  # noqa: BLE001 - a broken corpus file is skipped, not fatal
            print(f"{source.piece_id}: skipped ({type(err).__name__}: {err})", flush=True)
            pieces = []
        for piece_id, score in pieces:
            try:
                laid_out += _engraved_piece(score, piece_id, rng, engraving)
            except (*SKIPPED_CHUNK, EngraverError):
                continue
    return piece_file_arrays(source, laid_out)


def _engraved_piece(score: music21.stream.Score, piece_id: str, rng: random.Random,
                    engraving: random.Random) -> list[PairedPiece]:
    """One piece's run as verovio lays it out and as those of MuseScore and LilyPond whose
    barlines are the run's bars, the same audio under each (none when the piece has no run
    or neither other engraver's bars are the run's)."""
    run = engraved_run(score, rng, TEST_RUN_BARS)
    if run is None:
        return []
    programs = [rng.choice(PROGRAMS) for _ in range(16)]
    soundfont = rng.choice(TRAIN_SOUNDFONTS)
    times = [(bar[2], bar[3]) for strip in run.bars for bar in strip]
    others = {"musescore": read_bars(musescore_pages(
                  run.musicxml, random_musescore_style(engraving)), times),
              "lilypond": read_bars(lilypond_pages(
                  run.musicxml, dpi=engraving.randint(110, 190)), times)}
    laid_out = {"verovio": (run.strips, run.bars),
                **{name: found for name, found in others.items() if found is not None}}
    if len(laid_out) == 1:
        return []
    mel = render_mel(run.midi, soundfont_paths()[soundfont], programs)
    return [PairedPiece(piece_id, strips, bars, mel, None, run.tempo, soundfont, engraver)
            for engraver, (strips, bars) in laid_out.items()]


def main() -> None:
    """Build the other engravers' test pieces (resumable), then count them per engraver."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_build_arguments(parser, name="crossmodal-engravers")
    args = parser.parse_args()
    require(MUSESCORE, LILYPOND)
    missing = set(TRAIN_SOUNDFONTS) - set(soundfont_paths())
    if missing:
        parser.error(f"soundfonts not installed: {', '.join(sorted(missing))}")
    todo = [source for source in sources(args.data, args.seed)
            if split_of(source.piece_id) == "test"][: args.limit or None]
    built = sum(max(count, 0) for _, count in build_all(
        engraved_arrays, todo, seed=args.seed, out_dir=args.out.expanduser(),
        workers=args.workers))
    print(json.dumps({"test_files": len(todo), "layouts_built_now": built}))


if __name__ == "__main__":
    main()
