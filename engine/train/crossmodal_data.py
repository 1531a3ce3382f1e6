"""Data for cross-modal search: engraved systems and the audio that plays them, bar by bar.

Pieces as for the score reader (`engine.train.omr_data.sources`: music21's corpus and the
OpenScore Lieder), split by piece with the same hash, so a piece held out there is held out
here. Per piece (up to PIECES_PER_FILE of a file of many tunes), a run of up to RUN_BARS
bars of all its parts (at most MAX_PARTS) gets a random tempo (its own tempo marks removed)
and is engraved by verovio on pages of random layout; each system is cut out as a strip at
SPACE_PX pixels per staff space with every bar's x-extent and time (verovio's time map,
`engine.score.timemap`). The audio is verovio's own MIDI of the run, with random General MIDI
instruments, rendered by FluidSynth (log-mel: 96 bands, 22.05 kHz, hop 512). Test pieces are
taken whole (up to TEST_RUN_BARS bars, and up to TEST_PIECES_PER_FILE tunes of a file), as a
library holds them and for passages enough to search among, and rendered again with a
soundfont never used in training (HELD_OUT_SOUNDFONT). Snippet pairs (a window of a strip and
the audio sounding under it) are cut from these while training.

    python -m engine.train.crossmodal_data --data ../shared/data \
        --out ~/.cache/music-studio/crossmodal

Writes <out>/pieces/<hash>.npz per source file as it is done (a killed build resumes): per
piece k of the file its strips (`p<k>_strip<i>`), log-mels (`p<k>_mel`, and `p<k>_mel_held_out`
for test pieces, float16), and a JSON `meta` with each piece's id, tempo, soundfont and each
strip's bars [left, right, start, end] (pixels in the strip, seconds in the audio).
"""

from __future__ import annotations

import argparse
import io
import json
import random
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import music21
import numpy as np
import pretty_midi

from engine.audio import SAMPLE_RATE
from engine.features import log_mel_db
from engine.passages import SPACE_PX, system_strip
from engine.score.assemble import musicxml_bytes
from engine.score.engrave import FONTS, UNITS_PER_SPACE
from engine.score.timemap import timed_score
from engine.synth import available_soundfonts, render_midi
from engine.train.omr_data import (
    SKIPPED_CHUNK,
    Source,
    prepare_run,
    random_layout,
    score_of,
    source_scores,
    sources,
    split_of,
)
from engine.train.piece_files import add_build_arguments, build_all

RUN_BARS = 24  # bars engraved and rendered per piece, at most
TEST_RUN_BARS = 128  # for test pieces: whole pieces, as a library holds, and passages enough
MIN_BARS = 4  # pieces with fewer bars are left out
MAX_PARTS = 4  # pieces with more parts are left out (their systems would be too tall)
PIECES_PER_FILE = 4  # pieces taken from one file of many tunes
TEST_PIECES_PER_FILE = 16  # for test files: passages enough to search among
TEMPO_RANGE = (50, 150)  # quarter notes per minute, drawn per piece
DEFAULT_TEMPO = 120.0  # verovio's tempo where a score has no tempo mark
TRAIN_SOUNDFONTS = ("FluidR3_GM.sf2", "TimGM6mb.sf2")
HELD_OUT_SOUNDFONT = "MuseScore_General.sf3"  # renders test pieces a second time only
# General MIDI programs drawn for the parts: piano, harpsichord, organ, guitar, strings,
# violin, cello, choir, flute, oboe, clarinet, horn, vibraphone.
PROGRAMS = (0, 6, 19, 24, 48, 40, 42, 52, 73, 68, 71, 60, 11)


@dataclass
class PairedPiece:
    """One piece's engraved systems and rendered audio, aligned bar by bar."""

    piece: str
    strips: list[np.ndarray]  # grey system strips
    bars: list[list[list[float]]]  # per strip, per bar: [left, right, start, end]
    mel: np.ndarray  # (96, frames) float16 log-mel of the audio
    mel_held_out: np.ndarray | None  # the same music with the held-out soundfont (test only)
    tempo: int
    soundfont: str
    engraver: str = "verovio"  # of the strips


def load_pieces(folder: Path, split: str) -> list[PairedPiece]:
    """The pieces of one split, as `main` wrote them under `folder`."""
    pieces = []
    for path in sorted((folder / "pieces").glob("*.npz")):
        stored = np.load(path)
        meta = json.loads(str(stored["meta"]))
        if meta["split"] != split:
            continue
        for key, piece in enumerate(meta["pieces"]):
            strips = [stored[f"p{key}_strip{i}"] for i in range(len(piece["bars"]))]
            pieces.append(PairedPiece(piece["piece"], strips, piece["bars"],
                                      stored[f"p{key}_mel"],
                                      stored.get(f"p{key}_mel_held_out", None),
                                      piece["tempo"], piece["soundfont"],
                                      piece.get("engraver", "verovio")))
    return pieces


def soundfont_paths() -> dict[str, Path]:
    """The installed General MIDI soundfonts by file name."""
    return {path.name: path for path in available_soundfonts()}


def run_of(score: music21.stream.Score, rng: random.Random,
           length: int = RUN_BARS) -> list[music21.stream.Part] | None:
    """A run of up to `length` bars of every part, without tempo marks (None if unsuitable)."""
    parts = list(score.parts)
    counts = {len(part.getElementsByClass("Measure")) for part in parts}
    if not 0 < len(parts) <= MAX_PARTS or len(counts) != 1 or min(counts) < MIN_BARS:
        return None
    count = counts.pop()
    first = rng.randint(0, max(0, count - length))
    prepared = [prepare_run(part, first, min(count, first + length), rng, decorate=False)
                for part in parts]
    for part in prepared:
        for mark in list(part.recurse().getElementsByClass(music21.tempo.TempoIndication)):
            mark.activeSite.remove(mark)
    return prepared


def render_mel(midi_bytes: bytes, soundfont: Path, programs: list[int]) -> np.ndarray:
    """MIDI rendered with `soundfont`, its instruments set to `programs`: the log-mel."""
    with warnings.catch_warnings():  # verovio keeps key and time on the notes' track: harmless
        warnings.filterwarnings("ignore", message="Tempo, Key or Time signature")
        midi = pretty_midi.PrettyMIDI(io.BytesIO(midi_bytes))
    for instrument, program in zip(midi.instruments, programs, strict=False):
        if not instrument.is_drum:
            instrument.program = program
    samples = render_midi(midi, soundfont=soundfont, sample_rate=SAMPLE_RATE)
    return log_mel_db(samples).astype(np.float16)


@dataclass(frozen=True)
class EngravedRun:
    """A run of a piece engraved by verovio at a drawn tempo: its MusicXML, its system strips
    with every bar's x-extent and time, and its MIDI."""

    musicxml: bytes
    tempo: int
    strips: list[np.ndarray]
    bars: list[list[list[float]]]
    midi: bytes


def engraved_run(score: music21.stream.Score, rng: random.Random,
                 length: int) -> EngravedRun | None:
    """A run of up to `length` bars of a piece, engraved on a random layout (None when the
    piece has no run to take)."""
    parts = run_of(score, rng, length)
    if parts is None:
        return None
    tempo = rng.randint(*TEMPO_RANGE)
    layout = replace(random_layout(rng, fonts=FONTS, parts=len(parts)), header=False)
    zoom = SPACE_PX / (UNITS_PER_SPACE * layout.scale / 1000)
    musicxml = musicxml_bytes(score_of(parts, rng))
    timed = timed_score(musicxml.decode(), layout, zoom=zoom, tempo_scale=tempo / DEFAULT_TEMPO)
    strips, bars = zip(*(system_strip(timed.pages[s.page], s) for s in timed.systems), strict=True)
    return EngravedRun(musicxml, tempo, list(strips), list(bars), timed.midi)


def pair_piece(score: music21.stream.Score, piece: str, rng: random.Random,
               fonts: dict[str, Path], *, held_out: bool) -> PairedPiece | None:
    """Engrave and render a run of a piece; None when it has no run to take."""
    run = engraved_run(score, rng, TEST_RUN_BARS if held_out else RUN_BARS)
    if run is None:
        return None
    programs = [rng.choice(PROGRAMS) for _ in range(16)]
    soundfont = rng.choice(TRAIN_SOUNDFONTS)
    mel = render_mel(run.midi, fonts[soundfont], programs)
    other = render_mel(run.midi, fonts[HELD_OUT_SOUNDFONT], programs) if held_out else None
    return PairedPiece(piece, run.strips, run.bars, mel, other, run.tempo, soundfont)


def piece_file_arrays(source: Source, pieces: list[PairedPiece]) -> tuple[dict, int]:
    """A source file's pieces as the arrays of its piece file (`load_pieces` reads them), and
    how many."""
    arrays: dict = {}
    meta = []
    for key, paired in enumerate(pieces):
        for index, strip in enumerate(paired.strips):
            arrays[f"p{key}_strip{index}"] = strip
        arrays[f"p{key}_mel"] = paired.mel
        if paired.mel_held_out is not None:
            arrays[f"p{key}_mel_held_out"] = paired.mel_held_out
        meta.append({"piece": paired.piece, "bars": paired.bars, "tempo": paired.tempo,
                     "soundfont": paired.soundfont, "engraver": paired.engraver})
    arrays["meta"] = json.dumps({"source": source.piece_id, "collection": source.collection,
                                 "split": split_of(source.piece_id), "pieces": meta})
    return arrays, len(meta)


def paired_arrays(source: Source, seed: int) -> tuple[dict, int]:
    """One source file's paired pieces as the arrays of its piece file, and how many."""
    rng = random.Random(f"{seed}/crossmodal/{source.piece_id}")
    split = split_of(source.piece_id)
    fonts = soundfont_paths()
    try:
        pieces = source_scores(source)[:TEST_PIECES_PER_FILE if split == "test"
                                       else PIECES_PER_FILE]
    except Exception as err:  # noqa: BLE001 - a broken corpus file is skipped, not fatal
        print(f"{source.piece_id}: skipped ({type(err).__name__}: {err})", flush=True)
        pieces = []
    paired = []
    for piece_id, score in pieces:
        try:
            made = pair_piece(score, piece_id, rng, fonts, held_out=split == "test")
        except SKIPPED_CHUNK:
            continue
        if made is not None:
            paired.append(made)
    return piece_file_arrays(source, paired)


def main() -> None:
    """Build the paired data (resumable), then list the pieces per split."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_build_arguments(parser, name="crossmodal")
    args = parser.parse_args()
    missing = {*TRAIN_SOUNDFONTS, HELD_OUT_SOUNDFONT} - set(soundfont_paths())
    if missing:
        parser.error(f"soundfonts not installed: {', '.join(sorted(missing))} "
                     "(Debian: fluid-soundfont-gm, musescore-general-soundfont)")
    todo = sources(args.data, args.seed)[: args.limit or None]
    counts: dict[str, int] = {}
    for piece, count in build_all(paired_arrays, todo, seed=args.seed,
                                  out_dir=args.out.expanduser(), workers=args.workers):
        split = split_of(piece)
        counts[split] = counts.get(split, 0) + max(count, 0)
    print(json.dumps({"files": len(todo), "pieces_built_now": counts}))


if __name__ == "__main__":
    main()
