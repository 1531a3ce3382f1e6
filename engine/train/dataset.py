"""The genre dataset: real clips (4Q MER) and rendered symbolic music, cached as 22,050 Hz audio.

    python -m engine.train.dataset --data ../shared/data --cache ~/.cache/music-studio --seed 0

Real clips carry AllMusic genres mapped onto the studio's taxonomy. Rendered examples come from
scores and MIDI of every genre -- composed pieces (classical, folk, pop) and style arrangements
laid over human drum performances or programmed drums (the other genres) -- so that "sounds
synthetic" never identifies a genre. Each rendered piece is cut into 10-30 s segments, each with
its own soundfont and instrumentation; about 15% of the pieces of each source are held out
("heldout" split, never trained on), and Groove keeps its own split.

The build is deterministic from the seed, resumable (finished pieces are skipped on a re-run)
and never crashes on one bad piece: it counts and logs the reason instead.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import pretty_midi

from engine.audio import RELEASED_RMS_DB, SAMPLE_RATE
from engine.errors import EngineError, InvalidAudio, InvalidMidi, RenderingUnavailable
from engine.genre import GENRES
from engine.midi import music21_first_tempo, music21_part_notes

log = logging.getLogger("engine.train.dataset")

BUILD_VERSION = 2  # bump when segments would come out differently: cached pieces are redone
DEFAULT_DATA_DIR = Path("../shared/data")
CACHE_ENV = "MUSIC_STUDIO_CACHE"  # overrides the default cache folder
MANIFEST_NAME = "genre_manifest.csv"
REPORT_NAME = "genre_build.json"
SHORTEST_SEGMENT = 10.0  # seconds: a piece shorter than its planned segment is used whole if
# at least this long, else repeated
HELDOUT_FRACTION = 0.15  # share of each rendered source's pieces never trained on
SOUNDFONTS = ("FluidR3_GM.sf2", "MuseScore_General.sf3", "TimGM6mb.sf2")  # rendered with
MANIFEST_COLUMNS = (
    "example_id",
    "audio_path",
    "genres",
    "domain",
    "source",
    "piece_id",
    "soundfont",
    "split",
    "duration",
    "style",
    "render_digest",
)

# AllMusic genre -> taxonomy name; the other AllMusic genres (International, Vocal, New Age,
# Stage & Screen, Easy Listening, Avant-Garde, Holiday, ...) are dropped.
ALLMUSIC_GENRES = {
    "Blues": "blues",
    "Classical": "classical",
    "Country": "country",
    "Electronic": "electronic",
    "Folk": "folk",
    "Jazz": "jazz",
    "Latin": "latin",
    "Pop/Rock": "pop/rock",
    "R&B": "r&b",
    "Rap": "rap",
    "Reggae": "reggae",
}

# Groove MIDI style -> taxonomy name. Dropped: gospel, afrobeat, highlife, middleeastern (no
# taxonomy genre fits them without muddying another); dance -> electronic.
GROOVE_GENRES = {
    "rock": "pop/rock",
    "punk": "pop/rock",
    "pop": "pop/rock",
    "jazz": "jazz",
    "neworleans": "jazz",
    "latin": "latin",
    "afrocuban": "latin",
    "hiphop": "rap",
    "reggae": "reggae",
    "country": "country",
    "funk": "r&b",
    "soul": "r&b",
    "blues": "blues",
    "dance": "electronic",
}


# --------------------------------------------------------------------------------------------
# The manifest: what training scripts read


@dataclass(frozen=True)
class Example:
    """One labelled clip of the genre dataset."""

    example_id: str  # unique, stable across builds with the same seed
    audio_path: Path  # cached mono float16 .npy at SAMPLE_RATE
    genres: tuple[str, ...]  # taxonomy names; empty for a real clip with none of ours
    domain: str  # "real" or "rendered"
    source: str  # mer4q, bach, lieder, nottingham, oneills, pop909, groove, programmed, ...
    piece_id: str  # the piece the clip comes from: segments of one piece share it
    soundfont: str  # soundfont file name; "" for real clips
    split: str  # mer4q: train/val; rendered: train/heldout
    duration: float  # seconds
    style: str = ""  # finer style: Groove style, dance type, composer, arrangement
    render_digest: str = ""  # digest of the piece plan that rendered the audio; "" for real

    @property
    def cache_name(self) -> str:
        """Names the example's derived caches (features, embeddings): its id, with the digest of
        the plan that rendered it, so that a rebuild which renders it otherwise (another
        soundfont installed, another seed) never reads an earlier build's features."""
        return f"{self.example_id}-{self.render_digest}" if self.render_digest else self.example_id

    def target(self) -> np.ndarray:
        """Multi-hot float32 target over GENRES."""
        return np.array([g in self.genres for g in GENRES], dtype=np.float32)


def default_cache_dir() -> Path:
    """The cache folder: $MUSIC_STUDIO_CACHE, else ~/.cache/music-studio."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "music-studio").expanduser()


def load_manifest(cache_dir: str | Path | None = None) -> list[Example]:
    """Read the genre manifest written by a build.

    Args:
        cache_dir: the build's cache folder (default: `default_cache_dir()`).

    Returns:
        The examples in manifest order, with absolute audio paths.

    Raises:
        FileNotFoundError: when no build has written a manifest there yet.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = root / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: build the dataset first "
            f"(python -m engine.train.dataset --cache {root})."
        )
    examples = []
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            examples.append(
                Example(
                    example_id=row["example_id"],
                    audio_path=root / row["audio_path"],
                    genres=tuple(g for g in row["genres"].split(";") if g),
                    domain=row["domain"],
                    source=row["source"],
                    piece_id=row["piece_id"],
                    soundfont=row["soundfont"],
                    split=row["split"],
                    duration=float(row["duration"]),
                    style=row.get("style", ""),
                    render_digest=row.get("render_digest", ""),
                )
            )
    return examples


def load_audio(example: Example) -> np.ndarray:
    """The example's cached audio as mono float32 at SAMPLE_RATE."""
    return np.load(example.audio_path).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Build configuration and plans


@dataclass(frozen=True)
class BuildConfig:
    """What to build and where; the caps bound the build time."""

    data_dir: Path = DEFAULT_DATA_DIR  # the shared data folder
    cache_dir: Path = field(default_factory=default_cache_dir)  # audio, manifest and report
    seed: int = 0  # everything random (choices, windows, arrangements) follows from it
    workers: int = 2  # processes rendering at once
    min_seconds: float = SHORTEST_SEGMENT  # shortest segment
    max_seconds: float = 30.0  # longest segment
    segments_per_piece: int = 2  # segments per composed piece (each with its own soundfont)
    bach_pieces: int = 80  # Bach chorales from music21's corpus
    quartet_pieces: int = 40  # Mozart, Beethoven and Haydn quartet movements (3 segments each)
    renaissance_pieces: int = 30  # Palestrina and Monteverdi from music21's corpus
    lieder_pieces: int = 80  # OpenScore Lieder songs
    nottingham_pieces: int = 110  # Nottingham folk tunes
    oneills_pieces: int = 90  # O'Neill's 1850 Irish tunes
    ryans_pieces: int = 80  # Ryan's Mammoth Collection tunes
    pop909_pieces: int = 120  # POP909 songs
    pop909_drums: float = 0.6  # share of POP909 segments with a Groove rock/pop drum part
    genre_segments: int = 320  # rendered segments per drum-driven genre (Groove + programmed)
    groove_segments_per_performance: int = 4  # most segments cut from one Groove performance
    min_programmed_pieces: int = 12  # programmed pieces per drum-driven genre, at least
    limit: int | None = None  # keep only the first N jobs (smoke tests)


@dataclass(frozen=True)
class SegmentPlan:
    """One segment to cut from a piece and render."""

    example_id: str  # also the audio file's stem
    soundfont: str  # soundfont file name
    seconds: float  # segment length
    seed: int  # seeds the window, instrumentation and arrangement
    drums: str = ""  # Groove MIDI path (relative to the data dir) to lay under, or ""
    drums_bpm: float = 0.0  # that performance's tempo


@dataclass(frozen=True)
class PiecePlan:
    """One piece of one rendered source, and the segments to make from it."""

    source: str  # manifest source name
    piece_id: str  # unique within the source
    kind: str  # loader: score, lieder, nottingham, abc, pop909, groove, programmed
    ref: str  # what to load: a path, "path#n" for the n-th ABC tune, or "" when programmed
    genres: tuple[str, ...]  # taxonomy labels of every segment
    split: str  # train or heldout
    style: str  # arrangement / instrumentation style name
    segments: tuple[SegmentPlan, ...]  # what to render
    bpm: float = 0.0  # the performance's tempo (Groove)


@dataclass(frozen=True)
class ClipPlan:
    """One real clip to decode and cache."""

    example_id: str
    path: str  # audio file
    genres: tuple[str, ...]
    split: str
    piece_id: str


def _stable_hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")


def _heldout(source: str, piece_id: str) -> bool:
    """Deterministic ~HELDOUT_FRACTION of pieces, the same for every seed and cap."""
    return (_stable_hash(f"heldout:{source}:{piece_id}") % 10_000) / 10_000 < HELDOUT_FRACTION


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:80]


def _pick(items: Sequence, n: int, rng: np.random.Generator) -> list:
    """Up to n items in a seeded random order."""
    order = rng.permutation(len(items))[: max(0, n)]
    return [items[i] for i in order]


def _segments(
    piece_key: str, count: int, config: BuildConfig, fonts: Sequence[str]
) -> tuple[SegmentPlan, ...]:
    """`count` segments, each with the next soundfont in turn and its own length and seed.

    Seeded by the piece alone, so changing a cap leaves the other pieces' segments (and their
    cached audio) as they were.
    """
    rng = np.random.default_rng([config.seed, _stable_hash(piece_key)])
    first = _stable_hash(piece_key) % len(fonts)
    return tuple(
        SegmentPlan(
            example_id=f"{piece_key}-s{k}",
            soundfont=fonts[(first + k) % len(fonts)],
            seconds=round(float(rng.uniform(config.min_seconds, config.max_seconds)), 2),
            seed=int(rng.integers(2**31)),
        )
        for k in range(count)
    )


def plan_real(config: BuildConfig) -> list[ClipPlan]:
    """The 4Q MER clips, with their genres mapped and their split kept."""
    folder = config.data_dir / "mer4q"
    plans = []
    with (folder / "metadata.csv").open(newline="") as f:
        for row in csv.DictReader(f):
            genres = {ALLMUSIC_GENRES.get(g.strip()) for g in row["genres"].split(";")}
            plans.append(
                ClipPlan(
                    example_id=f"mer4q-{row['id']}",
                    path=str(folder / row["file"]),
                    genres=tuple(g for g in GENRES if g in genres),
                    split=row["split"],
                    piece_id=row["id"],
                )
            )
    return plans


def _corpus_paths(composer: str) -> list[Path]:
    """music21 corpus files of a composer: scores only, one format per work (.mxl first)."""
    from music21 import corpus

    best: dict[str, Path] = {}
    rank = {".mxl": 0, ".xml": 1, ".musicxml": 1, ".krn": 2, ".abc": 3}
    for raw in corpus.getComposer(composer):
        path = Path(raw)
        if path.suffix not in rank:
            continue  # .rntxt and the like hold analyses, not music
        stem = str(path.with_suffix(""))
        if stem not in best or rank[path.suffix] < rank[best[stem].suffix]:
            best[stem] = path
    return sorted(best.values())


def _corpus_id(path: Path) -> str:
    text = str(path)
    return _slug(text.split("/corpus/", 1)[-1].rsplit(".", 1)[0])


def _abc_tunes(paths: Iterable[Path]) -> list[str]:
    """References "path#n" to every tune (X: field) of ABC files."""
    refs = []
    for path in paths:
        text = path.read_text(errors="replace")
        count = len(re.findall(r"^X:", text, flags=re.MULTILINE))
        refs.extend(f"{path}#{n}" for n in range(count))
    return refs


def _piece_plans(
    source: str,
    kind: str,
    refs: Sequence[str],
    ids: Sequence[str],
    genres: tuple[str, ...],
    style: str | Sequence[str],
    cap: int,
    segments: int,
    config: BuildConfig,
    fonts: Sequence[str],
) -> list[PiecePlan]:
    rng = np.random.default_rng([config.seed, _stable_hash(source)])
    chosen = _pick(list(range(len(refs))), cap, rng)
    plans = []
    for i in sorted(chosen):
        key = f"{source}-{ids[i]}"
        piece_style = style if isinstance(style, str) else style[i]
        plans.append(
            PiecePlan(
                source=source,
                piece_id=ids[i],
                kind=kind,
                ref=refs[i],
                genres=genres,
                split="heldout" if _heldout(source, ids[i]) else "train",
                style=piece_style,
                segments=_segments(key, segments, config, fonts),
            )
        )
    return plans


def _has_melody(path: Path) -> bool:
    """True when a MIDI file plays above middle C at all (Nottingham chords stay below it)."""
    import mido

    try:
        for message in mido.MidiFile(str(path)):
            if message.type == "note_on" and message.velocity > 0 and message.note >= 60:
                return True
    except (OSError, ValueError, EOFError):
        return False
    return False


def _groove_rows(data_dir: Path) -> list[dict[str, str]]:
    """Groove beats in 4/4 of at least 12 s (fills are 1-3 s: too short to cut segments from)."""
    with (data_dir / "midi" / "groove" / "info.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        r
        for r in rows
        if r["beat_type"] == "beat" and r["time_signature"] == "4-4" and float(r["duration"]) >= 12
    ]


def plan_rendered(config: BuildConfig, fonts: Sequence[str]) -> tuple[list[PiecePlan], list[str]]:
    """Every rendered piece and its segments; also notes on sources that could not be planned."""
    data = config.data_dir
    plans: list[PiecePlan] = []
    notes: list[str] = []
    per_piece = config.segments_per_piece

    def add(name: str, make: Callable[[], list[PiecePlan]]) -> None:
        try:
            plans.extend(make())
        except Exception as err:  # a missing folder or corpus must not stop the others
            notes.append(f"{name}: not planned ({type(err).__name__}: {err})")
            log.warning("source %s not planned: %s", name, err)

    def corpus_source(source: str, composers: Sequence[str], cap: int, count: int, style: str):
        def make() -> list[PiecePlan]:
            paths = [p for c in composers for p in _corpus_paths(c)]
            ids = [_corpus_id(p) for p in paths]
            return _piece_plans(
                source, "score", [str(p) for p in paths], ids, ("classical",), style, cap,
                count, config, fonts,
            )  # fmt: skip

        add(source, make)

    corpus_source("bach", ["bach"], config.bach_pieces, per_piece, "chorale")
    corpus_source("quartets", ["mozart", "beethoven", "haydn"], config.quartet_pieces, 3, "quartet")
    corpus_source(
        "renaissance", ["palestrina", "monteverdi"], config.renaissance_pieces, per_piece, "consort"
    )

    def lieder() -> list[PiecePlan]:
        root = data / "scores" / "lieder"
        paths = sorted(root.rglob("*.mxl"))
        ids = [_slug(str(p.relative_to(root).with_suffix(""))) for p in paths]
        return _piece_plans(
            "lieder", "lieder", [str(p) for p in paths], ids, ("classical",), "lied",
            config.lieder_pieces, per_piece, config, fonts,
        )  # fmt: skip

    def nottingham() -> list[PiecePlan]:
        every = sorted((data / "midi" / "nottingham").glob("*.mid"))
        paths = [p for p in every if _has_melody(p)]
        if len(paths) < len(every):
            notes.append(
                f"nottingham: {len(every) - len(paths)} of {len(every)} files hold only the "
                "chord track (no melody): not used"
            )
        ids = [p.stem for p in paths]
        dances = [re.sub(r"\d+$", "", p.stem) for p in paths]
        return _piece_plans(
            "nottingham", "nottingham", [str(p) for p in paths], ids, ("folk",), dances,
            config.nottingham_pieces, per_piece, config, fonts,
        )  # fmt: skip

    def abc_source(source: str, composer: str, cap: int) -> Callable[[], list[PiecePlan]]:
        def make() -> list[PiecePlan]:
            refs = _abc_tunes(_corpus_paths(composer))
            ids = [_slug(Path(r.split("#")[0]).stem) + f"_{r.split('#')[1]}" for r in refs]
            return _piece_plans(
                source, "abc", refs, ids, ("folk",), "session", cap, per_piece, config, fonts
            )

        return make

    add("lieder", lieder)
    add("nottingham", nottingham)
    add("oneills", abc_source("oneills", "oneills1850", config.oneills_pieces))
    add("ryans", abc_source("ryans", "ryansMammoth", config.ryans_pieces))

    groove: list[dict[str, str]] = []
    try:
        groove = _groove_rows(data)
    except Exception as err:
        notes.append(f"groove: not planned ({type(err).__name__}: {err})")

    def pop909() -> list[PiecePlan]:
        root = data / "midi" / "pop909"
        paths = sorted(root.glob("*.mid")) + sorted(root.glob("*/*.mid"))
        ids = [p.stem for p in paths]
        pieces = _piece_plans(
            "pop909", "pop909", [str(p) for p in paths], ids, ("pop/rock",), "pop",
            config.pop909_pieces, per_piece, config, fonts,
        )  # fmt: skip
        # Drums under some segments: Groove rock/pop beats of the same split, so a held-out
        # song never borrows a drum performance that training examples use.
        drum_pool = {
            split: [r for r in groove if r["style"].split("/")[0] in ("rock", "pop")
                    and _groove_split(r) == split]
            for split in ("train", "heldout")
        }  # fmt: skip
        rng = np.random.default_rng([config.seed, _stable_hash("pop909-drums")])
        out = []
        for piece in pieces:
            pool = drum_pool[piece.split] or drum_pool["train"]
            segments = []
            for seg in piece.segments:
                if pool and rng.random() < config.pop909_drums:
                    row = pool[int(rng.integers(len(pool)))]
                    path = str(Path("midi/groove") / row["midi_filename"])
                    seg = replace(seg, drums=path, drums_bpm=float(row["bpm"]))
                segments.append(seg)
            out.append(replace(piece, segments=tuple(segments)))
        return out

    add("pop909", pop909)
    pop_segments = sum(len(p.segments) for p in plans if p.source == "pop909")
    add("groove", lambda: _plan_drum_genres(config, groove, fonts, pop_segments))
    if config.limit is not None:
        plans = _spread(plans, config.limit)
    return plans, notes


def _groove_split(row: dict[str, str]) -> str:
    return "train" if row["split"] == "train" else "heldout"


def _plan_drum_genres(
    config: BuildConfig, groove: list[dict[str, str]], fonts: Sequence[str], pop_segments: int
) -> list[PiecePlan]:
    """Groove performances with arrangements, topped up with programmed pieces, per genre."""
    rng = np.random.default_rng([config.seed, _stable_hash("groove")])
    plans: list[PiecePlan] = []
    by_genre: dict[str, list[dict[str, str]]] = {}
    for row in groove:
        genre = GROOVE_GENRES.get(row["style"].split("/")[0])
        if genre:
            by_genre.setdefault(genre, []).append(row)
    for genre in GENRES:
        if genre not in DRUM_GENRES:
            continue
        target = config.genre_segments
        if genre == "pop/rock":
            target = max(config.genre_segments // 3, target - pop_segments)
        made = 0
        rows = by_genre.get(genre, [])
        # Genres with few performances (blues, country, reggae, dance) cut more from each.
        per_performance = config.groove_segments_per_performance * (1 if len(rows) >= 10 else 3)
        for i in rng.permutation(len(rows)):
            if made >= target:
                break
            row = rows[i]
            duration = float(row["duration"])
            count = min(
                per_performance,
                max(1, int(duration // (config.max_seconds * 0.9))),
                target - made,
            )
            piece_id = _slug(row["id"])
            key = f"groove-{piece_id}"
            segs = _segments(key, count, config, fonts)
            segs = tuple(replace(s, seconds=min(s.seconds, duration - 0.5)) for s in segs)
            plans.append(
                PiecePlan(
                    source="groove",
                    piece_id=piece_id,
                    kind="groove",
                    ref=str(Path("midi/groove") / row["midi_filename"]),
                    genres=(genre,),
                    split=_groove_split(row),
                    style=row["style"].split("/")[0],
                    segments=segs,
                    bpm=float(row["bpm"]),
                )
            )
            made += count
        # Programmed pieces: drum patterns of the genre's styles, with the same arranger.
        pieces = max(config.min_programmed_pieces, math.ceil((target - made) / 2))
        styles = DRUM_GENRES[genre]
        for n in range(pieces):
            style = styles[n % len(styles)]
            piece_id = f"{_slug(genre)}_{n:03d}"
            plans.append(
                PiecePlan(
                    source="programmed",
                    piece_id=piece_id,
                    kind="programmed",
                    ref="",
                    genres=(genre,),
                    split="heldout" if _heldout("programmed", piece_id) else "train",
                    style=style,
                    segments=_segments(f"programmed-{piece_id}", 2, config, fonts),
                )
            )
    return plans


def _spread(plans: list[PiecePlan], limit: int) -> list[PiecePlan]:
    """At most `limit` plans, taken round-robin over sources (for smoke tests)."""
    by_source: dict[str, list[PiecePlan]] = {}
    for plan in plans:
        by_source.setdefault(plan.source, []).append(plan)
    out: list[PiecePlan] = []
    while len(out) < limit and any(by_source.values()):
        for queue in by_source.values():
            if queue and len(out) < limit:
                out.append(queue.pop(0))
    return out


# --------------------------------------------------------------------------------------------
# Loading pieces as parts with roles


@dataclass
class Part:
    """One instrument line of a piece and what it plays."""

    role: str  # melody, chords, bass, drums, part0..n, piano, counter
    notes: list[pretty_midi.Note]
    controls: list[pretty_midi.ControlChange] = field(default_factory=list)  # e.g. sustain pedal


def _score_to_parts(score: Any, default_bpm: float) -> tuple[list[Part], float]:
    """Convert a music21 score to parts in seconds at its first tempo (repeats not expanded)."""
    bpm = float(np.clip(music21_first_tempo(score, default_bpm), 40, 180))
    beat = 60.0 / bpm
    parts = []
    for i, part in enumerate(score.parts):
        notes = [
            pretty_midi.Note(80, int(np.clip(pitch, 0, 127)), onset * beat, (onset + length) * beat)
            for onset, length, pitch, _ in music21_part_notes(part)
        ]
        if notes:
            parts.append(Part(f"part{i}", notes))
    return parts, bpm


def _parts_to_midi(parts: Sequence[Part], path: Path) -> None:
    score = pretty_midi.PrettyMIDI()
    for part in parts:
        instrument = pretty_midi.Instrument(0, is_drum=part.role == "drums", name=part.role)
        instrument.notes = list(part.notes)
        instrument.control_changes = list(part.controls)
        score.instruments.append(instrument)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    score.write(str(tmp))
    tmp.replace(path)


def _midi_to_parts(path: Path) -> list[Part]:
    score = pretty_midi.PrettyMIDI(str(path))
    return [Part(i.name, list(i.notes), list(i.control_changes)) for i in score.instruments]


def _load_music21(plan: PiecePlan, cache_dir: Path) -> list[Part]:
    """Parse a score once with music21 and keep its notes as MIDI in the cache."""
    cached = cache_dir / "midi" / plan.source / f"{plan.piece_id}.mid"
    if cached.is_file():
        return _midi_to_parts(cached)
    from music21 import converter

    if plan.kind == "abc":
        file, index = plan.ref.rsplit("#", 1)
        text = Path(file).read_text(errors="replace")
        starts = [m.start() for m in re.finditer(r"^X:", text, flags=re.MULTILINE)]
        n = int(index)
        block = text[starts[n] : starts[n + 1] if n + 1 < len(starts) else len(text)]
        parsed = converter.parse(block, format="abc")
        default_bpm = 110.0
    else:
        parsed = converter.parse(plan.ref)
        default_bpm = 80.0 if plan.style in ("chorale", "consort") else 100.0
    if hasattr(parsed, "scores") and not hasattr(parsed, "parts"):
        parsed = parsed.scores[0]  # an Opus: the first score
    parts, _ = _score_to_parts(parsed, default_bpm)
    if plan.kind == "lieder" and parts:
        parts[0].role = "melody"
        for part in parts[1:]:
            part.role = "piano"
    if plan.kind == "abc" and parts:
        parts = [Part("melody", parts[0].notes)]
    _parts_to_midi(parts, cached)
    return parts


def _split_nottingham(path: Path) -> list[Part]:
    """Nottingham files hold melody and block chords in one track: separate them."""
    score = pretty_midi.PrettyMIDI(str(path))
    notes = [n for i in score.instruments for n in i.notes]
    groups: dict[tuple[float, float], list[pretty_midi.Note]] = {}
    for note in notes:
        groups.setdefault((round(note.start, 3), round(note.end, 3)), []).append(note)
    melody, chords = [], []
    for group in groups.values():
        if len(group) == 1:
            melody.extend(group)
            continue
        group.sort(key=lambda n: n.pitch)
        # A melody note sharing start and end with a chord sits well above it.
        if group[-1].pitch - group[-2].pitch > 7:
            melody.append(group[-1])
            group = group[:-1]
        chords.extend(group)
    parts = [Part("melody", sorted(melody, key=lambda n: n.start))]
    if chords:
        parts.append(Part("chords", sorted(chords, key=lambda n: n.start)))
    return parts


def _load_pop909(path: Path) -> tuple[list[Part], pretty_midi.PrettyMIDI]:
    score = pretty_midi.PrettyMIDI(str(path))
    roles = {"MELODY": "melody", "BRIDGE": "counter", "PIANO": "piano"}
    parts = [
        Part(roles.get(i.name.upper(), "piano"), list(i.notes), list(i.control_changes))
        for i in score.instruments
    ]
    piano = [n for p in parts if p.role == "piano" for n in p.notes]
    if piano:
        parts.append(Part("bass", _bass_from(piano)))
    return parts, score


def _bass_from(notes: Sequence[pretty_midi.Note]) -> list[pretty_midi.Note]:
    """A bass line: the lowest note of each onset of an accompaniment, in the bass register."""
    by_onset: dict[float, pretty_midi.Note] = {}
    for note in notes:
        key = round(note.start, 2)
        if key not in by_onset or note.pitch < by_onset[key].pitch:
            by_onset[key] = note
    bass = []
    for note in sorted(by_onset.values(), key=lambda n: n.start):
        if note.pitch > 60:
            continue  # right-hand only onsets are not bass
        pitch = note.pitch
        while pitch > 50:
            pitch -= 12
        while pitch < 28:
            pitch += 12
        bass.append(pretty_midi.Note(min(110, note.velocity + 10), pitch, note.start, note.end))
    return bass


# --------------------------------------------------------------------------------------------
# Instrumentation of composed pieces (General MIDI programs, counted from 0)

# Per source style: ensembles as {role: programs to choose from}; "part" covers part0..n in
# order (the last program repeats for extra parts).
ENSEMBLES: dict[str, tuple[dict[str, tuple[int, ...]], ...]] = {
    "chorale": (
        {"part": (19,)},  # church organ
        {"part": (40, 40, 41, 42)},  # string quartet
        {"part": (52,)},  # choir
        {"part": (73, 68, 71, 70)},  # wind quartet
        {"part": (56, 60, 57, 58)},  # brass
        {"part": (0,)},  # piano
        {"part": (6,)},  # harpsichord
        {"part": (48,)},  # string orchestra
    ),
    "quartet": (
        {"part": (40, 40, 41, 42)},
        {"part": (40, 40, 41, 42)},
        {"part": (48, 48, 48, 42)},
        {"part": (0,)},
        {"part": (73, 68, 71, 70)},
    ),
    "consort": (
        {"part": (52,)},
        {"part": (53,)},
        {"part": (19,)},
        {"part": (74, 74, 74, 74)},  # recorder consort
        {"part": (40, 40, 41, 42)},
        {"part": (48,)},
    ),
    "lied": ({"melody": (53, 52, 40, 42, 73, 71, 68, 60, 41, 69), "piano": (0, 0, 0, 1, 46, 48)},),
    "folk": (
        {
            "melody": (110, 110, 73, 21, 78, 22, 74, 40, 105, 24, 25, 75, 109),
            "counter": (110, 73, 21, 78, 74, 40, 24, 25),  # a second player doubling the tune
            "chords": (25, 24, 21, 0, 105, 46, 25),
            "bass": (32,),
        },
    ),
    "pop": (
        {
            "melody": (53, 54, 73, 65, 66, 40, 56, 81, 80, 27, 29, 0, 4, 85, 22),
            "counter": (48, 49, 4, 27, 25, 89, 50, 24, 0, 73, 61, 11),
            "piano": (0, 0, 1, 4, 5, 25, 24, 27, 2, 16),
            "bass": (33, 34, 38, 35, 32),
        },
    ),
}
LOW_PROGRAMS = frozenset({32, 33, 34, 35, 36, 37, 38, 39, 42, 43, 57, 58, 66, 67, 70})


def _instrument(part: Part, notes: list[pretty_midi.Note], program: int) -> pretty_midi.Instrument:
    instrument = pretty_midi.Instrument(program, is_drum=part.role == "drums", name=part.role)
    instrument.notes = notes
    instrument.control_changes = list(part.controls)
    return instrument


def _orchestrate(
    parts: Sequence[Part], style: str, rng: np.random.Generator
) -> list[pretty_midi.Instrument]:
    """Give each part a General MIDI program from one of the style's ensembles."""
    ensemble = ENSEMBLES[style][int(rng.integers(len(ENSEMBLES[style])))]
    out = []
    numbered = [p for p in parts if p.role.startswith("part")]
    for part in parts:
        if part.role == "drums":
            out.append(_instrument(part, list(part.notes), 0))
            continue
        if part.role.startswith("part"):
            choices = ensemble["part"]
            index = numbered.index(part)
            program = choices[min(index, len(choices) - 1)]
        else:
            choices = ensemble.get(part.role, ensemble.get("piano", (0,)))
            program = int(rng.choice(choices))
        out.append(_instrument(part, [_humanise(n, rng) for n in part.notes], program))
    return out


def _humanise(note: pretty_midi.Note, rng: np.random.Generator) -> pretty_midi.Note:
    shift = float(rng.normal(0, 0.006))
    velocity = int(np.clip(note.velocity + rng.normal(0, 7), 25, 122))
    start = max(0.0, note.start + shift)
    return pretty_midi.Note(velocity, note.pitch, start, max(start + 0.03, note.end + shift))


def _strum(chords: Sequence[pretty_midi.Note], beat: float, rng: np.random.Generator) -> list:
    """Folk accompaniment from block chords: bass on the beat, chord after it ("boom-chick")."""
    out = []
    by_onset: dict[float, list[pretty_midi.Note]] = {}
    for note in chords:
        by_onset.setdefault(round(note.start, 3), []).append(note)
    for start, group in sorted(by_onset.items()):
        end = max(n.end for n in group)
        pitches = sorted(n.pitch for n in group)
        t, k = start, 0
        while t < end - 0.05:
            step = min(beat, end - t)
            if k % 2 == 0:
                bass = pitches[0] - 12 if pitches[0] >= 48 else pitches[0]
                out.append(pretty_midi.Note(88, bass, t, t + step * 0.9))
            else:
                for j, pitch in enumerate(pitches):
                    at = t + j * 0.012  # a strum, low to high
                    out.append(pretty_midi.Note(int(70 + rng.integers(10)), pitch, at, t + step))
            t += step
            k += 1
    return out


def _folk_arrangement(parts: list[Part], beat: float, rng: np.random.Generator) -> list[Part]:
    """Folk tunes as played: melody alone, doubled, or over strummed chords."""
    melody = next((p for p in parts if p.role == "melody"), parts[0])
    chords = next((p for p in parts if p.role == "chords"), None)
    roll = rng.random()
    out = [Part("melody", melody.notes)]
    if chords is not None and roll < 0.75:
        out.append(Part("chords", _strum(chords.notes, beat, rng) if roll < 0.5 else chords.notes))
    elif roll > 0.6:  # a second melody instrument in unison or an octave apart
        shift = int(rng.choice([0, 12, -12]))
        doubled = [
            pretty_midi.Note(n.velocity, n.pitch + shift, n.start + 0.01, n.end)
            for n in melody.notes
        ]
        out.append(Part("counter", doubled))
    return out


# --------------------------------------------------------------------------------------------
# The arranger: bass, chords and a lead line in a genre's idiom over a drum part

CHORD_TONES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7),
    "min": (0, 3, 7),
    "7": (0, 4, 7, 10),
    "maj7": (0, 4, 7, 11),
    "m7": (0, 3, 7, 10),
    "9": (0, 4, 7, 10, 14),
    "m9": (0, 3, 7, 10, 14),
    "m7b5": (0, 3, 6, 10),
    "6": (0, 4, 7, 9),
    "5": (0, 7, 12),
}
Chord = tuple[int, str]  # (semitones above the key, quality)

# Bass patterns: (beat, length in beats, tone) with tone r=root 5=fifth 8=octave 3=third
# 7=seventh 6=sixth a=approach to the next chord; "walk" builds a walking line instead.
BASS_PATTERNS: dict[str, tuple[tuple[float, float, str], ...]] = {
    "eighths": tuple((i * 0.5, 0.45, "r") for i in range(8)),
    "rock": ((0, 1.4, "r"), (1.5, 0.5, "r"), (2, 1.0, "r"), (3, 0.5, "5"), (3.5, 0.5, "8")),
    "pop": ((0, 1.5, "r"), (1.5, 1.0, "r"), (2.5, 0.5, "5"), (3, 1.0, "r")),
    "boogie": (
        (0, 0.5, "r"),
        (0.5, 0.5, "3"),
        (1, 0.5, "5"),
        (1.5, 0.5, "6"),
        (2, 0.5, "7"),
        (2.5, 0.5, "6"),
        (3, 0.5, "5"),
        (3.5, 0.5, "3"),
    ),  # fmt: skip
    "walk": (),
    "tumbao": ((1.5, 1.4, "r"), (3, 0.9, "5")),
    "bossa": ((0, 1.4, "r"), (1.5, 0.5, "5"), (2, 1.4, "r"), (3.5, 0.5, "5")),
    "boombap": ((0, 1.4, "r"), (1.75, 0.25, "r"), (2.5, 1.2, "r")),
    "sub": ((0, 3.5, "r"),),
    "funk": (
        (0, 0.2, "r"),
        (0.75, 0.2, "8"),
        (1.5, 0.2, "r"),
        (2, 0.2, "7"),
        (2.5, 0.2, "8"),
        (2.75, 0.2, "r"),
        (3.5, 0.2, "5"),
    ),  # fmt: skip
    "soul": ((0, 0.9, "r"), (1.5, 0.4, "5"), (2, 0.9, "r"), (3, 0.4, "3"), (3.5, 0.4, "5")),
    "onedrop": ((0, 0.75, "r"), (1, 0.4, "r"), (1.5, 0.4, "3"), (2.5, 0.9, "5"), (3.5, 0.4, "8")),
    "steppers": tuple((i, 0.8, "r" if i % 2 == 0 else "5") for i in range(4)),
    "boomchick": ((0, 0.9, "r"), (2, 0.9, "5")),
    "twostep": ((0, 0.9, "r"), (1, 0.9, "5"), (2, 0.9, "r"), (3, 0.9, "a")),
    "offbeat": tuple((i + 0.5, 0.4, "r") for i in range(4)),
    "octaves": tuple((i * 0.25, 0.2, "r" if i % 2 == 0 else "8") for i in range(16)),
}

# Comping: (beat, length in beats) hits and a voicing: block, power, shell, arp, stab.
COMP_PATTERNS: dict[str, tuple[tuple[tuple[float, float], ...], str]] = {
    "power8": (tuple((i * 0.5, 0.45) for i in range(8)), "power"),
    "powerhalf": (((0, 1.9), (2, 1.9)), "power"),
    "pianoquarters": (tuple((i, 0.9) for i in range(4)), "block"),
    "pad": (((0, 3.95),), "block"),
    "halves": (((0, 1.9), (2, 1.9)), "block"),
    "shuffle": (((1, 0.6), (3, 0.6)), "block"),
    "charleston": (((0, 0.9), (1.5, 0.4)), "shell"),
    "comp": (((0.5, 0.4), (2.5, 0.9)), "shell"),
    "montuno": (tuple((b, 0.4) for b in (0, 1, 1.5, 2.5, 3, 3.5)), "arp"),
    "bossacomp": (((0, 0.4), (1.5, 0.9), (3, 0.4), (3.5, 0.4)), "block"),
    "loop": (((0, 1.4), (1.5, 0.9), (3, 0.9)), "block"),
    "bells": (tuple((i * 0.5, 0.4) for i in range(8)), "arp"),
    "scratch": (
        tuple((b, 0.12) for b in (0, 0.5, 0.75, 1.5, 2, 2.25, 2.75, 3.5)),
        "stab",
    ),  # fmt: skip
    "stabs": (((0, 0.3), (1.75, 0.3), (3.5, 0.3)), "stab"),
    "skank": (((1, 0.25), (3, 0.25)), "stab"),
    "offskank": (tuple((i + 0.5, 0.25) for i in range(4)), "stab"),
    "strum": (((0, 0.9), (1, 0.45), (1.5, 0.45), (2, 0.9), (3, 0.45), (3.5, 0.45)), "block"),
    "roll": (tuple((i * 0.5, 0.45) for i in range(8)), "arp"),
    "arp16": (tuple((i * 0.25, 0.22) for i in range(16)), "arp"),
}

# Drum patterns: 16 steps per bar; X accent, x normal, o ghost. Pitches are General MIDI drums.
DRUM_PATTERNS: dict[str, dict[int, str]] = {
    "rock": {36: "x.......x.x.....", 38: "....X.......X...", 42: "x.x.x.x.x.x.x.x."},
    "punk": {36: "x.....x.x.......", 38: "....X.......X...", 42: "xxxxxxxxxxxxxxxx"},
    "shuffle": {36: "x.......x.......", 38: "....X.......X...", 42: "x.x.x.x.x.x.x.x."},
    "train": {36: "x.......x.......", 38: "o.o.X.o.o.o.X.o.", 42: "x.x.x.x.x.x.x.x."},
    "twostep": {36: "x.......x.......", 37: "....x.......x...", 42: "x.x.x.x.x.x.x.x."},
    "onedrop": {36: "........X.......", 37: "........x.......", 42: "x.x.x.x.x.x.x.x."},
    "steppers": {36: "x...x...x...x...", 37: "........x.......", 42: "..x...x...x...x."},
    "house": {36: "X...X...X...X...", 39: "....x.......x...", 46: "..x...x...x...x."},
    "techno": {36: "X...X...X...X...", 42: "..x...x...x...x.", 51: "x.x.x.x.x.x.x.x."},
    "dnb": {36: "x.........x.....", 38: "....X.......X...", 42: "x.x.x.x.x.x.x.x."},
    "swing": {51: "x...x.x.x...x.x.", 44: "....x.......x...", 36: "o.......o......."},
    "bossa": {36: "x..x....x..x....", 37: "x..x..x...x..x..", 42: "oooooooooooooooo"},
    "son": {
        75: "x..x..x...x.x...",
        36: "...x.......x....",
        63: "......xx......xx",
        64: "...........x...x",
        56: "x...x...x...x...",
    },  # fmt: skip
    "boombap": {36: "x......x..x.....", 38: "....X.......X...", 42: "x.x.x.x.x.x.x.x."},
    "trap": {36: "x.....x....x....", 39: "........X.......", 42: "xxxxxxxxxxxxxxxx"},
    "funk": {36: "x..x......x.....", 38: "....X..o.o..X..o", 42: "xxxxxxxxxxxxxxxx"},
    "soul": {
        36: "x.......x.x.....",
        38: "....X.......X...",
        42: "x.x.x.x.x.x.x.x.",
        54: "....x.......x...",
    },  # fmt: skip
}
DRUM_VELOCITY = {"X": 112, "x": 90, "o": 42}
# Groove's Roland kit notes that General MIDI lacks or misnames: hi-hat edges and the floor
# tom rim (58 is a vibraslap in General MIDI).
GROOVE_TO_GM = {22: 42, 26: 46, 58: 43}
SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "mixolydian": (0, 2, 4, 5, 7, 9, 10),
    "blues": (0, 3, 5, 6, 7, 10),
    "majpent": (0, 2, 4, 7, 9),
    "minpent": (0, 3, 5, 7, 10),
}


@dataclass(frozen=True)
class Style:
    """How the arranger plays one style (a Groove style or a programmed one)."""

    genre: str  # taxonomy label
    progressions: tuple[tuple[Chord, ...], ...]  # one chord per bar, looped
    scale: str  # melody scale (SCALES key), relative to the key
    bass: tuple[str, ...]  # BASS_PATTERNS names to choose from
    comp: tuple[str, ...]  # COMP_PATTERNS names to choose from
    bass_programs: tuple[int, ...]  # General MIDI programs
    comp_programs: tuple[int, ...]
    lead_programs: tuple[int, ...]
    drums: tuple[str, ...] = ()  # DRUM_PATTERNS for programmed pieces
    tempo: tuple[float, float] = (90, 130)  # bpm range of programmed pieces
    swing: float = 0.5  # where the off-beat eighth falls within a beat (0.5 straight)
    lead_rate: float = 1.5  # lead notes per beat, about
    kits: tuple[int, ...] = (0,)  # drum kit programs (bank 128)
    quantised: bool = False  # programmed drums without human timing (electronic music)


def _chords(text: str) -> tuple[tuple[Chord, ...], ...]:
    """Progressions written "0:maj 7:7 | 2:m7 ...": semitones above the key, quality."""
    return tuple(
        tuple((int(c.split(":")[0]), c.split(":")[1]) for c in bars.split())
        for bars in text.split("|")
    )


def _programs(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split())


STYLES: dict[str, Style] = {
    "rock": Style(
        genre="pop/rock",
        progressions=_chords(
            "0:5 7:5 9:5 5:5 | 0:5 5:5 7:5 5:5"
            " | 9:5 5:5 0:5 7:5 | 0:5 10:5 5:5 0:5"
        ),
        scale="minpent", bass=("eighths", "rock"), comp=("power8", "powerhalf", "pianoquarters"),
        bass_programs=_programs("33 34 33"), comp_programs=_programs("29 30 29 27 18"),
        lead_programs=_programs("30 29 81 53 0 66"),
        drums=("rock",), tempo=(95, 150), kits=(0, 16, 8),
    ),
    "punk": Style(
        genre="pop/rock",
        progressions=_chords("0:5 5:5 7:5 5:5 | 0:5 10:5 5:5 7:5"),
        scale="minpent", bass=("eighths",), comp=("power8",),
        bass_programs=_programs("34 33"), comp_programs=_programs("30 29"),
        lead_programs=_programs("30 29 81"),
        drums=("punk",), tempo=(150, 200), kits=(0, 16),
    ),
    "pop": Style(
        genre="pop/rock",
        progressions=_chords(
            "0:maj 7:maj 9:min 5:maj | 9:min 5:maj 0:maj 7:maj"
            " | 0:maj 9:min 5:maj 7:maj"
        ),
        scale="majpent", bass=("pop", "eighths"),
        comp=("pianoquarters", "halves", "strum", "power8"),
        bass_programs=_programs("33 34 38"), comp_programs=_programs("0 4 25 27 48 89"),
        lead_programs=_programs("53 54 73 81 66 40 0"),
        drums=("rock", "soul"), tempo=(90, 128), kits=(0, 8),
    ),
    "blues": Style(
        genre="blues",
        progressions=_chords(
            "0:7 5:7 0:7 0:7 5:7 5:7 0:7 0:7 7:7 5:7 0:7 7:7"
            " | 0:m7 5:m7 0:m7 0:m7 5:m7 5:m7 0:m7 0:m7 8:7 7:7 0:m7 7:7"
        ),
        scale="blues", bass=("boogie", "walk", "boogie"), comp=("shuffle", "pad", "comp"),
        bass_programs=_programs("32 33 34"), comp_programs=_programs("0 3 16 17 26 27 29"),
        lead_programs=_programs("22 65 66 29 27 30 26 56 0"),
        drums=("shuffle",), tempo=(70, 130), swing=0.66, kits=(0, 8, 32),
    ),
    "jazz": Style(
        genre="jazz",
        progressions=_chords(
            "2:m7 7:7 0:maj7 0:maj7 | 0:maj7 9:7 2:m7 7:7"
            " | 2:m7 7:7 0:maj7 9:7 2:m7 7:7 4:m7 9:7 | 2:m7b5 7:7 0:m7 0:m7"
        ),
        scale="dorian", bass=("walk",), comp=("charleston", "comp"),
        bass_programs=_programs("32 32 33 35"), comp_programs=_programs("0 0 26 11 4"),
        lead_programs=_programs("65 66 64 56 59 57 71 11 26 73"),
        drums=("swing",), tempo=(100, 220), swing=0.64, lead_rate=2.0, kits=(32, 40, 0),
    ),
    "neworleans": Style(
        genre="jazz",
        progressions=_chords(
            "0:maj 0:maj 7:7 7:7 7:7 7:7 0:maj 0:maj | 0:maj 0:7 5:maj 5:6 0:maj 7:7 0:maj 0:maj"
        ),
        scale="majpent", bass=("walk", "boomchick"), comp=("pianoquarters", "charleston"),
        bass_programs=_programs("58 32 32"), comp_programs=_programs("0 3 24"),
        lead_programs=_programs("56 71 57 56 66"),
        drums=("swing",), tempo=(90, 180), swing=0.62, lead_rate=2.0, kits=(32, 0),
    ),
    "latin": Style(
        genre="latin",
        progressions=_chords(
            "0:maj 5:maj 7:7 5:maj | 0:min 5:min 7:7 0:min"
            " | 2:m7 7:7 0:maj7 0:maj7"
        ),
        scale="major", bass=("tumbao", "bossa"), comp=("montuno", "bossacomp"),
        bass_programs=_programs("32 33 35"), comp_programs=_programs("0 1 24 61 12"),
        lead_programs=_programs("56 73 61 65 71 24 40"),
        drums=("son", "bossa"), tempo=(90, 200), kits=(0, 8),
    ),
    "afrocuban": Style(
        genre="latin",
        progressions=_chords("0:min 7:7 0:min 7:7 | 0:maj 7:7"),
        scale="minor", bass=("tumbao",), comp=("montuno",),
        bass_programs=_programs("32 33"), comp_programs=_programs("0 1 24"),
        lead_programs=_programs("56 73 61 40"),
        drums=("son",), tempo=(100, 200), kits=(0,),
    ),
    "hiphop": Style(
        genre="rap",
        progressions=_chords(
            "0:m7 8:maj7 3:maj 10:maj | 0:min 0:min 5:m7 5:m7 | 0:m9 5:m9 | 0:min 8:maj 5:min 7:min"
        ),
        scale="minpent", bass=("boombap", "sub"), comp=("loop", "pad", "bells"),
        bass_programs=_programs("38 39 33 87"), comp_programs=_programs("4 5 48 89 10 0 8 11 50"),
        lead_programs=_programs("10 9 80 4 54 73 85"),
        drums=("boombap", "trap"), tempo=(80, 100), swing=0.56, lead_rate=1.0, kits=(25, 24, 0),
    ),
    "funk": Style(
        genre="r&b",
        progressions=_chords("0:9 0:9 | 0:m7 5:7 | 0:m7 0:m7 3:maj 5:7"),
        scale="dorian", bass=("funk",), comp=("scratch", "stabs"),
        bass_programs=_programs("33 36 37 34"), comp_programs=_programs("27 28 7 16 61"),
        lead_programs=_programs("66 65 56 61 27 7"),
        drums=("funk",), tempo=(90, 120), kits=(0, 8),
    ),
    "soul": Style(
        genre="r&b",
        progressions=_chords("0:maj7 9:m7 2:m7 7:7 | 5:maj7 4:m7 2:m7 0:maj7 | 0:m9 5:9"),
        scale="majpent", bass=("soul",), comp=("halves", "pad", "loop"),
        bass_programs=_programs("33 38 34"), comp_programs=_programs("4 5 16 48 0"),
        lead_programs=_programs("66 65 54 85 4 40"),
        drums=("soul",), tempo=(70, 110), swing=0.55, lead_rate=1.2, kits=(0, 8),
    ),
    "reggae": Style(
        genre="reggae",
        progressions=_chords("0:maj 5:maj | 0:min 5:min | 0:maj 7:maj 9:min 5:maj | 0:min 10:maj"),
        scale="majpent", bass=("onedrop", "steppers"), comp=("skank", "offskank"),
        bass_programs=_programs("33 34 38 32"), comp_programs=_programs("27 28 16 17 0 4"),
        lead_programs=_programs("22 21 56 66 80 73"),
        drums=("onedrop", "steppers"), tempo=(66, 90), swing=0.55, lead_rate=1.0, kits=(0, 8),
    ),
    "country": Style(
        genre="country",
        progressions=_chords(
            "0:maj 0:maj 5:maj 0:maj 0:maj 7:maj 7:7 0:maj"
            " | 0:maj 5:maj 7:7 0:maj"
        ),
        scale="majpent", bass=("boomchick", "twostep"), comp=("strum", "roll"),
        bass_programs=_programs("32 33"), comp_programs=_programs("25 24 105 3 0"),
        lead_programs=_programs("110 22 25 27 105 26"),
        drums=("train", "twostep"), tempo=(90, 170), lead_rate=2.0, kits=(0, 8, 40),
    ),
    "dance": Style(
        genre="electronic",
        progressions=_chords(
            "0:m7 8:maj7 3:maj7 10:maj | 0:min 5:min 8:maj 7:maj"
            " | 0:m9 0:m9 8:maj7 10:maj"
        ),
        scale="minor", bass=("offbeat", "octaves", "sub"), comp=("pad", "arp16", "stabs"),
        bass_programs=_programs("38 39 81 87"), comp_programs=_programs("88 89 90 94 95 50 62 4"),
        lead_programs=_programs("80 81 84 87 82 90 10 9"),
        drums=("house", "techno", "dnb"), tempo=(118, 140), lead_rate=2.0, kits=(24, 25),
        quantised=True,
    ),
}  # fmt: skip
# Each drum-driven genre and the styles its programmed pieces take, in turn.
DRUM_GENRES: dict[str, tuple[str, ...]] = {
    "blues": ("blues",),
    "country": ("country",),
    "electronic": ("dance",),
    "jazz": ("jazz", "neworleans"),
    "latin": ("latin", "afrocuban"),
    "pop/rock": ("rock", "pop", "punk"),
    "r&b": ("funk", "soul"),
    "rap": ("hiphop",),
    "reggae": ("reggae",),
}


def _swung(beat: float, swing: float) -> float:
    """Move off-beat eighths to the swing position."""
    whole, frac = divmod(beat, 1.0)
    if abs(frac - 0.5) < 1e-6:
        return whole + swing
    if abs(frac - 0.75) < 1e-6:  # the 16th before the beat follows its eighth
        return whole + swing + (1 - swing) / 2
    return beat


def _voicing(chord: Chord, key: int, kind: str, previous: float) -> list[int]:
    """Chord pitches near `previous` (voice leading) in the given voicing."""
    offset, quality = chord
    root = key + offset
    tones = CHORD_TONES[quality]
    if kind == "power":
        base = 40 + (root - 40) % 12
        return [base, base + 7, base + 12]
    if kind == "shell" and len(tones) >= 4:
        tones = (tones[1], tones[3]) + tones[4:]
    candidates = []
    for octave in (36, 48, 60, 72):
        pitches = [octave + (root + t) % 12 for t in tones]
        pitches = sorted(p + 12 if p < octave + (root % 12) - 12 else p for p in pitches)
        candidates.append(pitches)
    return min(candidates, key=lambda ps: abs(float(np.mean(ps)) - previous))


def _bass_line(
    chords: Sequence[Chord], key: int, pattern: str, rng: np.random.Generator
) -> list[tuple[float, float, int]]:
    """(beat, length, pitch) over all bars, beats counted from the first bar."""
    out = []
    low = 28

    def pitch_of(offset: int) -> int:
        return low + (key + offset - low) % 12

    for bar, chord in enumerate(chords):
        root = pitch_of(chord[0])
        tones = CHORD_TONES[chord[1]]
        following = pitch_of(chords[(bar + 1) % len(chords)][0])
        if pattern == "walk":
            third, fifth = root + tones[1], root + tones[2]
            line = [
                root,
                int(rng.choice([third, fifth, root + 12])),
                int(rng.choice([fifth, third])),
            ]
            line.append(following + int(rng.choice([-1, 1, 2])))
            out.extend((bar * 4 + b, 0.95, p) for b, p in enumerate(line))
            continue
        for beat, length, tone in BASS_PATTERNS[pattern]:
            if tone == "r":
                pitch = root
            elif tone == "5":
                pitch = root + 7
            elif tone == "8":
                pitch = root + 12
            elif tone == "3":
                pitch = root + tones[1]
            elif tone == "7":
                pitch = root + (tones[3] if len(tones) > 3 else 10)
            elif tone == "6":
                pitch = root + 9
            else:
                pitch = following - 1
            out.append((bar * 4 + beat, length, pitch))
    return out


def _lead_line(
    chords: Sequence[Chord], key: int, style: Style, register: int, rng: np.random.Generator
) -> list[tuple[float, float, int]]:
    """A lead: two-bar motifs, repeated with variations, on the style's scale."""
    grid = 0.25 if style.lead_rate > 1.6 else 0.5
    steps = int(4 / grid)
    scale = [register + (key % 12) + s for s in SCALES[style.scale]]
    scale = [p - 12 for p in scale] + scale + [p + 12 for p in scale]
    out: list[tuple[float, float, int]] = []
    motif: list[tuple[float, int]] = []  # (beat within two bars, scale step offset)
    for bar_pair in range(0, len(chords), 2):
        if bar_pair % 8 == 4 or not motif:  # a fresh motif every other phrase half
            motif = []
            position = len(scale) // 2
            for step in range(2 * steps):
                beat = step * grid
                strong = abs(beat % 1.0) < 1e-6
                if rng.random() < style.lead_rate * grid * (1.3 if strong else 0.8):
                    position = int(np.clip(position + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 2,
                                           len(scale) - 3))  # fmt: skip
                    motif.append((beat, position))
        varied = bar_pair % 4 == 2
        for i, (beat, position) in enumerate(motif):
            bar = bar_pair + int(beat // 4)
            if bar >= len(chords):
                break
            if varied and i >= len(motif) // 2:
                position = int(np.clip(position + rng.choice([-1, 0, 1]), 0, len(scale) - 1))
            pitch = scale[position]
            if abs(beat % 1.0) < 1e-6:  # strong beats land on a chord tone
                offset, quality = chords[bar]
                tones = [(key + offset + t) % 12 for t in CHORD_TONES[quality]]
                pitch = min((p for p in range(pitch - 3, pitch + 4) if p % 12 in tones),
                            key=lambda p: abs(p - pitch), default=pitch)  # fmt: skip
            following = motif[i + 1][0] if i + 1 < len(motif) else 8.0
            length = min(following - beat, 1.5) * float(rng.uniform(0.6, 0.95))
            out.append((bar_pair * 4 + beat, max(length, 0.12), pitch))
    return out


def _programmed_drums(
    style: Style, bars: int, rng: np.random.Generator
) -> list[tuple[float, float, int, int]]:
    """(beat, length, pitch, velocity) of a drum pattern with crashes and fills."""
    pattern = DRUM_PATTERNS[str(rng.choice(style.drums))]
    out = []
    for bar in range(bars):
        fill = bar % 4 == 3 and rng.random() < 0.5
        for pitch, steps in pattern.items():
            for step, mark in enumerate(steps):
                if mark == "." or (fill and step >= 12):
                    continue
                out.append((bar * 4 + step / 4, 0.1, pitch, DRUM_VELOCITY[mark]))
        if fill:
            for k, tom in enumerate((50, 48, 47, 45)):
                out.append((bar * 4 + 3 + k / 4, 0.1, tom, 95))
        if bar % 8 == 0 and rng.random() < 0.6:
            out.append((bar * 4.0, 0.5, 49, 100))
    return out


def _arrange(
    style: Style,
    bars: int,
    bpm: float,
    start: float,
    rng: np.random.Generator,
    *,
    programmed: bool,
) -> list[pretty_midi.Instrument]:
    """Bass, comping, maybe a lead, and (when programmed) drums, from `start` seconds."""
    beat = 60.0 / bpm
    key = int(rng.integers(12))
    progression = style.progressions[int(rng.integers(len(style.progressions)))]
    chords = [progression[b % len(progression)] for b in range(bars)]
    swing = style.swing
    jitter = 0.0 if style.quantised else 0.008

    def seconds(position: float) -> float:
        return start + _swung(position, swing) * beat + float(rng.normal(0, jitter))

    def note(velocity: float, pitch: int, position: float, length: float) -> pretty_midi.Note:
        t0 = max(0.0, seconds(position))
        velocity = velocity if style.quantised else velocity + rng.normal(0, 6)
        return pretty_midi.Note(int(np.clip(velocity, 20, 124)), int(pitch), t0,
                                t0 + max(0.05, length * beat))  # fmt: skip

    parts = []
    texture = rng.random()  # full band, no lead, bass and drums, or drums alone
    with_lead = texture < 0.6
    with_comp = texture < 0.9
    with_bass = texture < 0.95
    if with_bass:
        bass = pretty_midi.Instrument(int(rng.choice(style.bass_programs)), name="bass")
        pattern = str(rng.choice(style.bass))
        bass.notes = [note(92, p, b, n) for b, n, p in _bass_line(chords, key, pattern, rng)]
        parts.append(bass)
    if with_comp:
        comp = pretty_midi.Instrument(int(rng.choice(style.comp_programs)), name="comp")
        hits, voicing = COMP_PATTERNS[str(rng.choice(style.comp))]
        centre = 60.0
        for bar, chord in enumerate(chords):
            pitches = _voicing(chord, key, voicing, centre)
            centre = float(np.mean(pitches))
            for k, (position, length) in enumerate(hits):
                if voicing == "arp":
                    chosen = [pitches[k % len(pitches)] + (12 if k % 4 == 3 else 0)]
                else:
                    chosen = pitches
                velocity = 88 if voicing == "stab" else 74
                comp.notes.extend(note(velocity, p, bar * 4 + position, length) for p in chosen)
        parts.append(comp)
    if with_lead:
        program = int(rng.choice(style.lead_programs))
        register = 48 if program in LOW_PROGRAMS else 60
        lead = pretty_midi.Instrument(program, name="lead")
        lead.notes = [
            note(96, p, b, n) for b, n, p in _lead_line(chords, key, style, register, rng)
        ]
        parts.append(lead)
    if programmed:
        drums = pretty_midi.Instrument(int(rng.choice(style.kits)), is_drum=True, name="drums")
        for position, length, pitch, velocity in _programmed_drums(style, bars, rng):
            drums.notes.append(note(velocity, pitch, position, length))
        parts.append(drums)
    return parts


def _beat_phase(drums: Sequence[pretty_midi.Note], beat: float) -> tuple[float, int]:
    """Where beats fall (seconds, within one beat) and which beat starts a bar, from the drums."""
    anchors = [n for n in drums if n.pitch in (35, 36, 37, 38, 40)]
    if not anchors:
        return 0.0, 0
    angles = np.array([2 * np.pi * n.start / beat for n in anchors])
    weights = np.array([n.velocity for n in anchors], dtype=float)
    phase = float(np.angle((weights * np.exp(1j * angles)).sum())) % (2 * np.pi)
    phase_seconds = phase / (2 * np.pi) * beat
    score = np.zeros(4)
    for n in anchors:
        index = int(round((n.start - phase_seconds) / beat)) % 4
        score[index] += 1 if n.pitch in (35, 36) else -0.5
    return phase_seconds, int(np.argmax(score))


# --------------------------------------------------------------------------------------------
# Rendering a piece's segments


def _crop(
    instruments: Sequence[pretty_midi.Instrument], start: float, end: float
) -> pretty_midi.PrettyMIDI:
    """The notes sounding in [start, end), moved to start at zero."""
    score = pretty_midi.PrettyMIDI()
    for instrument in instruments:
        kept = pretty_midi.Instrument(instrument.program, instrument.is_drum, instrument.name)
        for n in instrument.notes:
            if n.end <= start or n.start >= end or (n.start < start and n.end - start < 0.25):
                continue
            s, e = max(n.start, start) - start, min(n.end, end) - start
            if e - s >= 0.02:
                kept.notes.append(pretty_midi.Note(n.velocity, n.pitch, s, e))
        before: dict[int, int] = {}  # each controller's value when the window opens
        for c in sorted(instrument.control_changes, key=lambda c: c.time):
            if c.time < start:
                before[c.number] = c.value
            elif c.time < end:
                kept.control_changes.append(
                    pretty_midi.ControlChange(c.number, c.value, c.time - start)
                )
        kept.control_changes[:0] = [pretty_midi.ControlChange(k, v, 0.0) for k, v in before.items()]
        if kept.notes:
            score.instruments.append(kept)
    return score


def _tile(instruments: list[pretty_midi.Instrument], seconds: float) -> None:
    """Repeat a short piece end to end until it lasts `seconds` (tunes are played twice anyway)."""
    length = max((n.end for i in instruments for n in i.notes), default=0.0)
    if length <= 0:
        return
    copies = math.ceil(seconds / length)
    for instrument in instruments:
        base = list(instrument.notes)
        for k in range(1, copies):
            instrument.notes.extend(
                pretty_midi.Note(n.velocity, n.pitch, n.start + k * length, n.end + k * length)
                for n in base
            )


def _time_stretch(notes: Iterable[pretty_midi.Note], factor: float, shift: float) -> list:
    return [
        pretty_midi.Note(n.velocity, n.pitch, n.start * factor + shift, n.end * factor + shift)
        for n in notes
    ]


def _groove_notes(path: Path) -> list[pretty_midi.Note]:
    """A Groove performance's notes on the General MIDI drum map."""
    groove = pretty_midi.PrettyMIDI(str(path))
    return [
        pretty_midi.Note(n.velocity, GROOVE_TO_GM.get(n.pitch, n.pitch), n.start, n.end)
        for i in groove.instruments
        for n in i.notes
    ]


def _drums_under(
    seg: SegmentPlan, data_dir: Path, song: pretty_midi.PrettyMIDI, start: float, seconds: float
) -> pretty_midi.Instrument | None:
    """A Groove drum performance scaled to the song's tempo, its bar lines on the song's."""
    notes = _groove_notes(data_dir / seg.drums)
    if not notes:
        return None
    groove_beat = 60.0 / seg.drums_bpm
    downbeats = [d for d in song.get_downbeats() if d >= start]
    beats = [b for b in song.get_beats() if b >= start]
    if len(beats) < 2 or not downbeats:
        return None
    song_beat = float(np.median(np.diff(beats[:16])))
    factor = song_beat / groove_beat
    for candidate in (factor * 2, factor / 2):  # double or half time when closer to 1
        if abs(math.log(candidate)) < abs(math.log(factor)):
            factor = candidate
    phase, bar_beat = _beat_phase(notes, groove_beat)
    first_bar = phase + bar_beat * groove_beat
    scaled = _time_stretch(notes, factor, downbeats[0] - first_bar * factor)
    drums = pretty_midi.Instrument(0, is_drum=True, name="drums")
    drums.notes = [n for n in scaled if start - 1 <= n.start < start + seconds]
    if len(drums.notes) < 8:
        return None
    return drums


def _window(length: float, seconds: float, k: int, count: int, rng: np.random.Generator) -> float:
    """Start of segment k of count: drawn inside the k-th share of the piece."""
    room = max(0.0, length - seconds)
    lo, hi = room * k / count, room * (k + 1) / count
    return float(rng.uniform(lo, hi)) if hi > lo else 0.0


def _enough_music(score: pretty_midi.PrettyMIDI, seconds: float) -> bool:
    notes = [n for i in score.instruments for n in i.notes]
    if len(notes) < 8:
        return False
    return max(n.end for n in notes) - min(n.start for n in notes) >= 0.6 * seconds


def _finish(audio: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Exact length, short fades at the cuts, and the loudness of released recordings.

    Released music sits at about -24..-11 dB RMS (`RELEASED_RMS_DB`); renders peak-normalised
    to 0.9 sit ~7 dB lower, a cue that would give the domain away. So each segment gets an RMS
    level drawn from that range, its peaks softly limited below 1.
    """
    n = int(round(seconds * SAMPLE_RATE))
    out = np.zeros(n, dtype=np.float32)
    out[: min(n, len(audio))] = audio[:n]
    fade = int(0.01 * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    out[:fade] *= ramp
    out[-fade:] *= ramp[::-1]
    rms = float(np.sqrt(np.mean(out**2)))
    if rms < 1e-6:
        return out
    out *= np.float32(10 ** (rng.uniform(*RELEASED_RMS_DB) / 20) / rms)
    return _soft_limit(out)


def _soft_limit(audio: np.ndarray, knee: float = 0.8) -> np.ndarray:
    """Leave samples below `knee` alone and bend louder ones smoothly under 1.0."""
    over = np.abs(audio) > knee
    if over.any():
        a = np.abs(audio[over])
        audio[over] = np.sign(audio[over]) * (knee + (1 - knee) * np.tanh((a - knee) / (1 - knee)))
    return audio


def _save(path: Path, audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.stem + ".tmp.npy")
    np.save(tmp, audio.astype(np.float16))
    tmp.replace(path)


@dataclass(frozen=True)
class JobResult:
    """What one job made: manifest rows, and why anything was skipped."""

    rows: tuple[dict[str, str], ...]
    skipped: tuple[tuple[str, str], ...]  # (item id, reason)
    seconds: float  # CPU time the job took (other processes on the machine do not count)


def _row(
    example_id: str, audio: Path, cache_dir: Path, plan: PiecePlan | ClipPlan, **kw: str
) -> dict:
    return {
        "example_id": example_id,
        "audio_path": str(audio.relative_to(cache_dir)),
        "genres": ";".join(plan.genres),
        "piece_id": plan.piece_id,
        "split": plan.split,
        **kw,
    }


def run_clip(plan: ClipPlan, cache_dir: Path) -> JobResult:
    """Decode one real clip (engine.audio.load) and cache it."""
    from engine.audio import load

    started = time.process_time()
    path = cache_dir / "audio" / "mer4q" / f"{plan.example_id}.npy"
    try:
        if path.is_file():
            samples = np.load(path, mmap_mode="r")
        else:
            samples = load(plan.path).samples
            _save(path, samples)
    except (InvalidAudio, OSError, ValueError) as err:
        return JobResult((), ((plan.example_id, f"audio unreadable: {err}"),), 0.0)
    row = _row(plan.example_id, path, cache_dir, plan, domain="real", source="mer4q",
               soundfont="", duration=f"{len(samples) / SAMPLE_RATE:.2f}", style="")  # fmt: skip
    return JobResult((row,), (), time.process_time() - started)


def _plan_digest(plan: PiecePlan) -> str:
    text = json.dumps([BUILD_VERSION, asdict(plan)], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def run_piece(plan: PiecePlan, data_dir: Path, cache_dir: Path, fonts: dict[str, str]) -> JobResult:
    """Load, arrange and render every segment of one piece; cached pieces are skipped."""
    started = time.process_time()
    marker = cache_dir / "pieces" / plan.source / f"{plan.piece_id}.json"
    digest = _plan_digest(plan)
    if marker.is_file():
        try:
            done = json.loads(marker.read_text())
            if (
                done["digest"] == digest
                and not done.get("error")
                and all((cache_dir / r["audio_path"]).is_file() for r in done["rows"])
            ):
                skipped = tuple(tuple(s) for s in done["skipped"])
                return JobResult(_stamped(done["rows"], digest), skipped, 0.0)  # type: ignore[arg-type]
        except (OSError, ValueError, KeyError):
            pass
    rows: list[dict[str, str]] = []
    skipped: list[tuple[str, str]] = []
    error = False  # an unexpected failure: tried again on the next run, unlike a known skip
    try:
        rows, skipped = _render_piece(plan, data_dir, cache_dir, fonts)
    except Exception as err:  # one bad piece must never stop the build
        skipped = [(f"{plan.source}-{plan.piece_id}", f"{type(err).__name__}: {err}"[:300])]
        error = True
    marker.parent.mkdir(parents=True, exist_ok=True)
    record = {"digest": digest, "rows": rows, "skipped": skipped, "error": error}
    marker.write_text(json.dumps(record))
    return JobResult(_stamped(rows, digest), tuple(skipped), time.process_time() - started)


def _stamped(rows: list[dict[str, str]], digest: str) -> tuple[dict[str, str], ...]:
    """Manifest rows naming the plan digest that rendered their audio (`render_digest`)."""
    return tuple({**row, "render_digest": digest} for row in rows)


class _Unrenderable(InvalidMidi):
    """A piece or segment left out of the build for a known reason (counted, not fatal)."""


def _piece_material(
    plan: PiecePlan, data_dir: Path, cache_dir: Path
) -> tuple[list[Part], pretty_midi.PrettyMIDI | None, float]:
    """Load what a piece's segments are arranged from: (parts, the song or None, beat seconds).

    Raises:
        _Unrenderable: when the piece holds no usable notes.
    """
    song: pretty_midi.PrettyMIDI | None = None
    parts: list[Part] = []
    beat = 0.5
    if plan.kind in ("score", "lieder", "abc"):
        parts = _load_music21(plan, cache_dir)
    elif plan.kind == "nottingham":
        parts = _split_nottingham(Path(plan.ref))
    elif plan.kind == "pop909":
        parts, song = _load_pop909(Path(plan.ref))
    elif plan.kind == "groove":
        parts = [Part("drums", _groove_notes(data_dir / plan.ref))]
    if plan.kind != "programmed" and not any(p.notes for p in parts):
        raise _Unrenderable("no notes after parsing")
    if plan.kind in ("nottingham", "abc") and not any(p.notes for p in parts if p.role == "melody"):
        # Some Nottingham files lost their melody track and hold only the chords.
        raise _Unrenderable("no melody (chords only)")
    if plan.kind == "nottingham":
        song = pretty_midi.PrettyMIDI(plan.ref)
        tempo = song.get_tempo_changes()[1]
        beat = 60.0 / float(tempo[0]) if len(tempo) else 0.5
        if song.time_signature_changes and song.time_signature_changes[0].denominator == 8:
            beat *= 1.5  # compound metre: a dotted-quarter pulse
    return parts, song, beat


def _render_segment(
    plan: PiecePlan,
    k: int,
    material: tuple[list[Part], pretty_midi.PrettyMIDI | None, float],
    data_dir: Path,
    soundfont: str,
) -> tuple[np.ndarray, pretty_midi.PrettyMIDI, float]:
    """Arrange and render segment k of a piece with a soundfont file.

    Returns:
        (finished audio at SAMPLE_RATE, the score played, seconds)

    Raises:
        _Unrenderable: when the segment holds too little music or renders silent.
        EngineError: when rendering fails.
    """
    from engine.synth import render_midi

    seg = plan.segments[k]
    parts, song, beat = material
    rng = np.random.default_rng([seg.seed, BUILD_VERSION])
    instruments, start, seconds = _segment_instruments(
        plan, seg, k, parts, song, beat, data_dir, rng
    )
    score = _crop(instruments, start, start + seconds)
    if not _enough_music(score, seconds):
        raise _Unrenderable("segment holds too little music")
    audio = render_midi(score, soundfont=soundfont, sample_rate=SAMPLE_RATE)
    window = audio[: int(round(seconds * SAMPLE_RATE))]
    if float(np.sqrt(np.mean(window**2))) < 1e-3:  # renders peak at 0.9 unless silent
        raise _Unrenderable("silent render")
    return _finish(audio, seconds, rng), score, seconds


def _render_piece(
    plan: PiecePlan, data_dir: Path, cache_dir: Path, fonts: dict[str, str]
) -> tuple[list[dict[str, str]], list[tuple[str, str]]]:
    try:
        material = _piece_material(plan, data_dir, cache_dir)
    except _Unrenderable as err:
        return [], [(f"{plan.source}-{plan.piece_id}", str(err))]
    rows, skipped = [], []
    for k, seg in enumerate(plan.segments):
        try:
            audio, score, seconds = _render_segment(
                plan, k, material, data_dir, fonts[seg.soundfont]
            )
        except _Unrenderable as err:
            skipped.append((seg.example_id, str(err)))
            continue
        except EngineError as err:
            skipped.append((seg.example_id, f"render failed: {err}"))
            continue
        path = cache_dir / "audio" / plan.source / f"{seg.example_id}.npy"
        _save(path, audio)
        programs = "+".join(
            f"{'drums' if i.is_drum else i.name}:{i.program}" for i in score.instruments
        )
        rows.append(
            _row(
                seg.example_id,
                path,
                cache_dir,
                plan,
                domain="rendered",
                source=plan.source,
                soundfont=seg.soundfont,
                duration=f"{seconds:.2f}",
                style=f"{plan.style} [{programs}]",
            )  # fmt: skip
        )
    return rows, skipped


def segment_plans(config: BuildConfig) -> dict[str, tuple[PiecePlan, int]]:
    """Where each rendered example of a build comes from: example_id -> (piece plan, segment).

    Plans as the build did with the soundfonts installed here, so every example can be rendered
    again (see `render_again`).
    """
    plans, _ = plan_rendered(config, tuple(_fonts()))
    return {seg.example_id: (plan, k) for plan in plans for k, seg in enumerate(plan.segments)}


def render_again(
    example: Example,
    plans: dict[str, tuple[PiecePlan, int]],
    *,
    soundfont: str,
    data_dir: Path = DEFAULT_DATA_DIR,
    cache_dir: Path | None = None,
) -> np.ndarray:
    """A rendered example with the same notes, instruments, window and loudness in another
    soundfont: the same recording played on another synthesizer.

    Args:
        example: a rendered example of the manifest.
        plans: from `segment_plans` with the build's configuration.
        soundfont: a soundfont file name of SOUNDFONTS installed here.
        data_dir: the shared data folder.
        cache_dir: the build's cache folder (parsed scores are read from it).

    Raises:
        InvalidMidi: when the example cannot be rendered again (unknown or unplayable).
        RenderingUnavailable: when the soundfont is not installed.
    """
    if example.example_id not in plans:
        raise InvalidMidi(f"{example.example_id} is not a rendered example of this build.")
    fonts = _fonts()
    if soundfont not in fonts:
        raise RenderingUnavailable(f"The soundfont {soundfont} is not installed here.")
    plan, k = plans[example.example_id]
    material = _piece_material(plan, data_dir, cache_dir or default_cache_dir())
    audio, _, _ = _render_segment(plan, k, material, data_dir, fonts[soundfont])
    return audio


def _segment_instruments(
    plan: PiecePlan,
    seg: SegmentPlan,
    k: int,
    parts: list[Part],
    song: pretty_midi.PrettyMIDI | None,
    beat: float,
    data_dir: Path,
    rng: np.random.Generator,
) -> tuple[list[pretty_midi.Instrument], float, float]:
    """The instruments of one segment and its window (start, seconds)."""
    seconds = seg.seconds
    count = len(plan.segments)
    if plan.kind in ("groove", "programmed"):
        style = STYLES[plan.style]
        if plan.kind == "programmed":
            bpm = float(rng.uniform(*style.tempo))
            bar = 4 * 60.0 / bpm
            bars = math.ceil(seconds / bar) + 1
            return _arrange(style, bars, bpm, 0.0, rng, programmed=True), 0.0, seconds
        drums = parts[0].notes
        length = max(n.end for n in drums)
        seconds = min(seconds, length)
        start = _window(length, seconds, k, count, rng)
        beat_seconds = 60.0 / plan.bpm
        phase, bar_beat = _beat_phase(drums, beat_seconds)
        bar = 4 * beat_seconds
        first = phase + bar_beat * beat_seconds
        first += math.floor((start - first) / bar) * bar  # the bar line at or before start
        bars = math.ceil((start + seconds - first) / bar) + 1
        kit = pretty_midi.Instrument(int(rng.choice(style.kits)), is_drum=True, name="drums")
        kit.notes = list(drums)
        band = _arrange(style, bars, plan.bpm, first, rng, programmed=False)
        return [*band, kit], start, seconds

    if plan.kind in ("nottingham", "abc"):
        parts = _folk_arrangement(parts, beat, rng)
        instruments = _orchestrate(parts, "folk", rng)
    elif plan.kind == "pop909":
        keep = [p for p in parts if p.role != "counter" or rng.random() < 0.7]
        instruments = _orchestrate(keep, "pop", rng)
    elif plan.kind == "lieder":
        instruments = _orchestrate(parts, "lied", rng)
    else:
        instruments = _orchestrate(parts, plan.style, rng)
    length = max((n.end for i in instruments for n in i.notes), default=0.0)
    if length <= 0:
        raise InvalidMidi("no notes left to play")
    if length < seconds:
        if length >= SHORTEST_SEGMENT:
            seconds = length
        else:
            _tile(instruments, seconds)
            length = max(n.end for i in instruments for n in i.notes)
    start = _window(length, seconds, k, count, rng)
    if seg.drums and song is not None:
        drums = _drums_under(seg, data_dir, song, start, seconds)
        if drums is not None:
            instruments.append(drums)
    return instruments, start, seconds


# --------------------------------------------------------------------------------------------
# The build


def _fonts() -> dict[str, str]:
    """Soundfont file name -> path, for the SOUNDFONTS installed here."""
    from engine.synth import available_soundfonts

    found = {p.name: str(p) for p in available_soundfonts()}
    return {name: found[name] for name in SOUNDFONTS if name in found}


def _job(job: ClipPlan | PiecePlan, data_dir: Path, cache_dir: Path, fonts: dict[str, str]):
    if isinstance(job, ClipPlan):
        return run_clip(job, cache_dir)
    return run_piece(job, data_dir, cache_dir, fonts)


def _worker_init() -> None:
    logging.getLogger("music21").setLevel(logging.ERROR)
    import warnings

    warnings.filterwarnings("ignore")


def build(config: BuildConfig) -> dict:
    """Build (or complete) the genre dataset in `config.cache_dir`.

    Returns:
        The build report (also written to REPORT_NAME): counts, skips and timings.

    Raises:
        RenderingUnavailable: when no soundfont at all is installed.
    """
    from tqdm import tqdm

    from engine.synth import INSTALL_HINT

    started = time.perf_counter()
    cache_dir = config.cache_dir.expanduser()
    cache_dir.mkdir(parents=True, exist_ok=True)
    fonts = _fonts()
    if not fonts:
        raise RenderingUnavailable(f"No soundfont to render with. Install one: {INSTALL_HINT}.")
    names = tuple(fonts)
    clips = plan_real(config)
    pieces, notes = plan_rendered(config, names)
    if config.limit is not None:
        clips = clips[: config.limit]
    # The slowest jobs first, so the pool does not end on one long score.
    cost = {"score": 0, "lieder": 1, "pop909": 2, "groove": 3}
    pieces.sort(key=lambda p: cost.get(p.kind, 9))
    jobs: list[ClipPlan | PiecePlan] = [*pieces, *clips]
    log.info(
        "planned %d rendered pieces and %d real clips; fonts: %s", len(pieces), len(clips), names
    )

    rows: list[dict[str, str]] = []
    skipped: list[tuple[str, str]] = []
    job_seconds: Counter[str] = Counter()
    plan_seconds = time.perf_counter() - started

    def collect(job: ClipPlan | PiecePlan, result: JobResult) -> None:
        rows.extend(result.rows)
        for item, reason in result.skipped:
            log.warning("skipped %s: %s", item, reason)
            skipped.append((item, reason))
        job_seconds[job.source if isinstance(job, PiecePlan) else "mer4q"] += result.seconds

    progress = tqdm(total=len(jobs), desc="genre dataset", unit="job", smoothing=0.05)
    if config.workers <= 1:
        _worker_init()
        for job in jobs:
            collect(job, _job(job, config.data_dir, cache_dir, fonts))
            progress.update()
    else:
        with ProcessPoolExecutor(config.workers, initializer=_worker_init) as pool:
            futures = {pool.submit(_job, j, config.data_dir, cache_dir, fonts): j for j in jobs}
            for future in as_completed(futures):
                job = futures[future]
                try:
                    collect(job, future.result())
                except Exception as err:  # a crashed worker: count it, go on
                    name = job.example_id if isinstance(job, ClipPlan) else job.piece_id
                    collect(job, JobResult((), ((name, f"worker failed: {err}"),), 0.0))
                progress.update()
    progress.close()

    rows.sort(key=lambda r: r["example_id"])
    _write_manifest(cache_dir / MANIFEST_NAME, rows)
    report = _report(config, rows, skipped, notes, job_seconds, plan_seconds, started)
    (cache_dir / REPORT_NAME).write_text(json.dumps(report, indent=1, default=str))
    return report


def _write_manifest(path: Path, rows: list[dict[str, str]]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def _report(
    config: BuildConfig,
    rows: list[dict[str, str]],
    skipped: list[tuple[str, str]],
    notes: list[str],
    job_seconds: Counter[str],
    plan_seconds: float,
    started: float,
) -> dict:
    counts: Counter[str] = Counter()
    for row in rows:
        for genre in row["genres"].split(";") if row["genres"] else ["(none)"]:
            counts[f"{genre} | {row['domain']} | {row['split']}"] += 1
    reasons = Counter(re.sub(r"[:(].*", "", reason).strip() for _, reason in skipped)
    return {
        "examples": len(rows),
        "by_source": dict(sorted(Counter(r["source"] for r in rows).items())),
        "by_genre_domain_split": dict(sorted(counts.items())),
        "hours": round(sum(float(r["duration"]) for r in rows) / 3600, 2),
        "skipped": len(skipped),
        "skipped_by_reason": dict(reasons.most_common()),
        "notes": notes,
        "build_seconds": round(time.perf_counter() - started, 1),
        "plan_seconds": round(plan_seconds, 1),
        "job_cpu_seconds_by_source": {k: round(v, 1) for k, v in sorted(job_seconds.items())},
        "job_cpu_seconds": round(sum(job_seconds.values()), 1),
        "config": {f.name: str(getattr(config, f.name)) for f in fields(config)},
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: build the genre dataset and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="shared data folder")
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help=f"cache folder (default ${CACHE_ENV} or ~/.cache/music-studio)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="only N jobs (smoke test)")
    defaults = BuildConfig()
    caps = [f.name for f in fields(BuildConfig) if f.name.endswith(("_pieces", "_segments"))]
    for name in caps:
        parser.add_argument(
            f"--{name.replace('_', '-')}", type=int, default=getattr(defaults, name)
        )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("music21").setLevel(logging.ERROR)
    config = BuildConfig(
        data_dir=args.data.expanduser(),
        cache_dir=args.cache or default_cache_dir(),
        seed=args.seed,
        workers=args.workers,
        limit=args.limit,
        **{name: getattr(args, name) for name in caps},
    )
    report = build(config)
    print(json.dumps({k: v for k, v in report.items() if k != "config"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
