"""The demo library and its simulated community, built from what ships here alone.

Tracks: the bundled example clips (examples/), the generator's held-out real pieces
(checkpoints/generator_heldout/, ten styles), and, for the full demo library, 275 pieces of
music21's corpus (chorales, renaissance masses and madrigals, trecento songs, German, Chinese
and Irish folk tunes), each played on its collection's instruments and rendered with
FluidSynth (30 s excerpts). The community is SIMULATED (engine.community):
200 listeners in four groups, marked as such everywhere.

On the studio's first run (a library that has never held a track), `start_first_run_build`
builds the full demo library in a background process at low priority: the app stays usable
and what is built is searchable at once.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.audio import Clip
from engine.errors import EngineError, InvalidMidi
from engine.library import Library

if TYPE_CHECKING:
    from engine.similar import TrackDescription

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DEMO_LISTENERS = 200
DEMO_SEED = 0
EXCERPT_SECONDS = 30.0  # corpus pieces are cut to this length
FIRST_RUN_ENV = "MUSIC_STUDIO_DEMO"  # "0": no demo library is built on the first run
BUILD_RECORD = "demo-build.json"  # in the library folder: the first-run build, once started
BUILD_LOG = "demo-build.log"

Describe = Callable[[Clip], "TrackDescription"]  # clip -> what the library stores about it


@dataclass(frozen=True)
class DemoPiece:
    """A piece of the demo library: bundled audio, a shipped MIDI excerpt, or a score (or one
    tune of an ABC file) of music21's corpus."""

    title: str
    source: str  # what the library shows as its source
    path: Path  # audio, MIDI, or a music21 corpus file
    tune: int | None = None  # which tune of an ABC file (X: field, counted from 0)
    programs: tuple[int, ...] = ()  # General MIDI programs a score's parts are played on
    tempo: float = 100.0  # bpm of a score that names none

    def data(self) -> tuple[bytes, str]:
        """Its file's bytes and name; a corpus score becomes a Standard MIDI File excerpt.

        Raises:
            InvalidMidi: when a score cannot be read.
        """
        if not self.programs:
            return self.path.read_bytes(), self.path.name
        return corpus_midi(self), f"{self.path.stem}.mid"


@dataclass(frozen=True)
class CorpusCollection:
    """Pieces of music21's corpus taken into the demo library."""

    name: str  # as the source shows it
    style: str  # as titles show it
    folders: tuple[str, ...]  # corpus folders (composers) it comes from
    files: str  # regular expression the file names match
    pieces: int  # how many are taken (spread evenly over the collection)
    programs: tuple[tuple[int, ...], ...]  # instrument sets, one per piece in turn
    tempo: float  # bpm when the score names none


# General MIDI programs (0-based): 19 church organ, 40 violin, 41 viola, 42 cello, 48 strings,
# 52 choir, 21 accordion, 24 nylon guitar, 68 oboe, 71 clarinet, 73 flute, 74 recorder,
# 75 pan flute, 77 shakuhachi, 78 whistle, 104 sitar, 105 banjo, 107 koto, 6 harpsichord.
CORPUS: tuple[CorpusCollection, ...] = (
    CorpusCollection("Bach chorales", "chorale", ("bach",), r"^bwv.*\.mxl$", 70,
                     ((19,), (48,), (52,), (40, 40, 41, 42), (68, 71, 41, 42)), 80.0),
    CorpusCollection("Palestrina", "renaissance mass", ("palestrina",), r"\.krn$", 40,
                     ((52,), (74, 74, 71, 42)), 90.0),
    CorpusCollection("Monteverdi madrigals", "madrigal", ("monteverdi",), r"\.mxl$", 20,
                     ((52,), (40, 40, 41, 42, 42)), 90.0),
    CorpusCollection("trecento songs", "trecento", ("trecento",), r"\.xml$", 20,
                     ((74, 24, 42), (6,)), 100.0),
    CorpusCollection("Essen German folk songs", "german folk", ("essenFolksong",),
                     r"^(altdeu|ballad|boehme|erk|kinder)", 35, ((73,), (21,), (71,), (24,)),
                     100.0),
    CorpusCollection("Essen Chinese folk songs", "chinese folk", ("essenFolksong",),
                     r"^han", 35, ((77,), (107,), (75,), (104,)), 90.0),
    CorpusCollection("Ryan's Mammoth Collection", "irish folk", ("ryansMammoth",), r"\.abc$",
                     35, ((40,), (78,), (21,), (105,)), 120.0),
    CorpusCollection("O'Neill's Music of Ireland", "irish folk", ("oneills1850",), r"\.abc$",
                     20, ((40,), (73,), (21,)), 120.0),
)  # fmt: skip


def demo_pieces() -> list[DemoPiece]:
    """The bundled and held-out pieces, in a fixed order (corpus pieces: `corpus_pieces`)."""
    from engine.generate import heldout_pieces

    pieces = []
    index = EXAMPLES / "index.json"
    if index.is_file():
        for entry in json.loads(index.read_text(encoding="utf-8")):
            pieces.append(
                DemoPiece(entry["title"], "demo: bundled example", EXAMPLES / entry["file"])
            )
    for piece in heldout_pieces():
        pieces.append(
            DemoPiece(
                f"{piece.title} ({piece.style})",
                f"demo: {piece.source}, {piece.licence}",
                piece.path,
            )
        )
    return [p for p in pieces if p.path.is_file()]


def corpus_pieces(collection: CorpusCollection) -> list[DemoPiece]:
    """A collection's pieces: `collection.pieces` of its scores or tunes, evenly spread."""
    from music21 import corpus

    paths = sorted(
        {
            Path(p)
            for folder in collection.folders
            for p in corpus.getComposer(folder)
            if re.search(collection.files, Path(p).name)
        }
    )
    refs: list[tuple[Path, int | None, str]] = []
    for path in paths:
        if path.suffix == ".abc":
            for n, tune in enumerate(abc_tunes(path.read_text(errors="replace"))):
                title = re.search(r"^T:\s*(.+?)\s*$", tune, flags=re.MULTILINE)
                refs.append((path, n, title.group(1) if title else f"{path.stem} {n + 1}"))
        else:
            refs.append((path, None, path.stem.replace("_", " ")))
    if not refs:
        return []
    chosen = np.unique(np.linspace(0, len(refs) - 1, min(collection.pieces, len(refs))).round())
    pieces = []
    for i, position in enumerate(chosen.astype(int)):
        path, tune, title = refs[position]
        programs = collection.programs[i % len(collection.programs)]
        folder = path.parent.name if path.parent.name != "corpus" else ""
        pieces.append(
            DemoPiece(
                title=f"{title} ({collection.style})",
                source=f"demo: music21 corpus, {collection.name}, {folder}/{path.name}"
                + (f" tune {tune + 1}" if tune is not None else ""),
                path=path,
                tune=tune,
                programs=programs,
                tempo=collection.tempo,
            )
        )
    return pieces


def abc_tunes(text: str) -> list[str]:
    """The tunes of an ABC file, each from its X: line to the next."""
    starts = [m.start() for m in re.finditer(r"^X:", text, flags=re.MULTILINE)]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def corpus_midi(piece: DemoPiece) -> bytes:
    """A corpus piece as a Standard MIDI File: its first EXCERPT_SECONDS, each part on the
    piece's instruments in turn.

    Raises:
        InvalidMidi: when music21 cannot read the score or it holds no notes.
    """
    import pretty_midi
    from music21 import converter

    from engine.midi import music21_first_tempo, music21_part_notes

    try:
        if piece.tune is not None:
            tune = abc_tunes(piece.path.read_text(errors="replace"))[piece.tune]
            score = converter.parse(tune, format="abc")
        else:
            score = converter.parse(str(piece.path))
        if hasattr(score, "scores") and not hasattr(score, "parts"):
            score = score.scores[0]  # an Opus: its first score
        beat = 60.0 / float(np.clip(music21_first_tempo(score, piece.tempo), 40, 200))
        parts = [music21_part_notes(part) for part in score.parts] or [music21_part_notes(score)]
    except Exception as err:  # music21 raises many types for scores it cannot read
        raise InvalidMidi(f"{piece.title}: music21 cannot read it ({err}).") from None
    midi = pretty_midi.PrettyMIDI()
    for i, notes in enumerate(p for p in parts if p):
        instrument = pretty_midi.Instrument(program=piece.programs[i % len(piece.programs)])
        for onset, length, pitch, velocity in notes:
            start = onset * beat
            if start < EXCERPT_SECONDS:
                end = min(start + length * beat, EXCERPT_SECONDS)
                instrument.notes.append(pretty_midi.Note(velocity, pitch, start, end))
        midi.instruments.append(instrument)
    if not any(instrument.notes for instrument in midi.instruments):
        raise InvalidMidi(f"{piece.title} holds no notes.")
    buffer = io.BytesIO()
    midi.write(buffer)
    return buffer.getvalue()


def has_demo_community(library: Library) -> bool:
    """True once the simulated community has been stored."""
    return any(listener.simulated for listener in library.listeners())


def build_demo(
    library: Library,
    describe: Describe,
    *,
    corpus: bool = False,
    progress: Callable[[float, str], None] | None = None,
    listeners: int = DEMO_LISTENERS,
    seed: int = DEMO_SEED,
) -> dict[str, int]:
    """Add the demo pieces (analysed, searchable) to the library, and a simulated community.

    Pieces that cannot be read or rendered here are skipped (and counted); the rest go on.
    Each piece is stored as it is done, so an interrupted build keeps what it added, and
    building again adds nothing twice.

    Args:
        library: where to store it.
        describe: clip -> what the library stores (engine.similar.describe with the models).
        corpus: also add the music21 corpus pieces (a few hundred; minutes of work).
        progress: called with (fraction done, what is being done).
        listeners: size of the simulated community (made once, over the tracks there then).
        seed: the same seed gives the same community.

    Returns:
        {"tracks": added, "skipped": pieces that failed, "listeners": simulated listeners}.
    """
    from engine.community import simulate
    from engine.compare import load_music
    from engine.mood import MOOD_TAGS
    from engine.similar import add_clip

    pieces = demo_pieces()
    if corpus:
        pieces += [piece for collection in CORPUS for piece in corpus_pieces(collection)]
    added = skipped = 0
    for i, piece in enumerate(pieces):
        if progress is not None:
            progress(i / (len(pieces) + 1), f"{i + 1}/{len(pieces)}: {piece.title}")
        try:
            data, name = piece.data()
            if library.is_searchable(hashlib.sha256(data).hexdigest()):
                continue
            clip = load_music(data, name=name)
        except EngineError:
            skipped += 1
            continue
        added += add_clip(
            library, clip, title=piece.title, source=piece.source, description=describe(clip)
        ).new
    result = {"tracks": added, "skipped": skipped, "listeners": 0}
    if not has_demo_community(library):
        if progress is not None:
            progress(len(pieces) / (len(pieces) + 1), "Simulating the community")
        moods = library.track_moods()
        base = {t: [m.get(tag, 0.0) for tag in MOOD_TAGS] for t, m in moods.items()}
        if base:
            community = simulate(base, MOOD_TAGS, listeners=listeners, seed=seed)
            with tempfile.TemporaryDirectory() as folder:
                library.import_community(community.write_csv(folder), tags=MOOD_TAGS)
            result["listeners"] = len(community.listeners)
    if progress is not None:
        progress(1.0, "Done")
    return result


@dataclass(frozen=True)
class DemoBuild:
    """The first-run demo build: its process, when it started, and how many pieces it adds."""

    pid: int
    started: float  # time.time()
    pieces: int  # pieces it goes through (some may already be there or be skipped)

    def running(self) -> bool:
        """True while its process is alive (a finished child of this process is reaped)."""
        try:
            finished, _ = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child: it is reaped elsewhere, so ask the OS
            try:
                os.kill(self.pid, 0)
            except ProcessLookupError:
                return False
            except PermissionError:
                return True
            return True
        return finished == 0


def demo_build(home: Path) -> DemoBuild | None:
    """The first-run build recorded in a library folder, or None when none was started."""
    try:
        return DemoBuild(**json.loads((home / BUILD_RECORD).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def demo_piece_count() -> int:
    """How many pieces the full demo library goes through."""
    return len(demo_pieces()) + sum(collection.pieces for collection in CORPUS)


def build_command(home: Path) -> list[str]:
    """The CLI command that builds the full demo library in `home`, at low priority."""
    command = [sys.executable, "-m", "engine", "library", "demo", "--library", str(home)]
    nice = shutil.which("nice")
    return [nice, "-n", "10", *command] if nice else command


def start_first_run_build(
    library: Library, *, command: Sequence[str] | None = None
) -> DemoBuild | None:
    """On the first run, start building the demo library in the background.

    The first run is a library folder that holds no track and has never started a build
    (`BUILD_RECORD`); after that, nothing is started again, even when every track is deleted
    (the pages then offer to build it). Set MUSIC_STUDIO_DEMO=0 to never start it.

    Args:
        library: the studio library; the build writes into its folder.
        command: what to run (default `build_command`; tests pass a stand-in).

    Returns:
        The build started now, or None when nothing was started.
    """
    if os.environ.get(FIRST_RUN_ENV, "1") == "0" or library.tracks():
        return None
    record = library.home / BUILD_RECORD
    try:
        with record.open("x", encoding="utf-8") as out:  # only one process starts it
            build = _spawn(library.home, command)
            json.dump(asdict(build), out)
    except FileExistsError:
        return None
    except OSError as err:
        record.unlink(missing_ok=True)
        raise EngineError(f"The demo library could not be started ({err}).") from None
    return build


def build_interrupted(home: Path) -> bool:
    """True when a background build was started and stopped before its end (its process is gone
    and its log ends without the summary the command prints last)."""
    build = demo_build(home)
    if build is None or build.running():
        return False
    try:
        lines = (home / BUILD_LOG).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return True
    last = next((line for line in reversed(lines) if line.strip()), "")
    return not last.startswith('{"tracks":')


def continue_build(library: Library, *, command: Sequence[str] | None = None) -> DemoBuild:
    """Start the background build again (it skips what is already there).

    Raises:
        EngineError: when it cannot be started.
    """
    try:
        build = _spawn(library.home, command)
        temporary = library.home / f"{BUILD_RECORD}.tmp"
        temporary.write_text(json.dumps(asdict(build)), encoding="utf-8")
        os.replace(temporary, library.home / BUILD_RECORD)
    except OSError as err:
        raise EngineError(f"The demo library could not be started ({err}).") from None
    return build


def _spawn(home: Path, command: Sequence[str] | None) -> DemoBuild:
    """Start the build command (default `build_command`) detached, its output in the log."""
    with (home / BUILD_LOG).open("ab") as log:
        process = subprocess.Popen(
            list(command or build_command(home)),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            start_new_session=True,  # it goes on when the server stops
        )
    return DemoBuild(pid=process.pid, started=time.time(), pieces=demo_piece_count())
