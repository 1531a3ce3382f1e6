"""The generator's corpus: real pieces of every style, as normalised MIDI and token ids.

    python -m engine.train.generator_data --data ../shared/data --seed 0

Sources per style (see STYLE_SOURCES): classical (music21's Bach chorales and classical works,
OpenScore Lieder), folk (Nottingham, O'Neill's 1850, Ryan's Mammoth Collection), chinese folk
(the Chinese tunes of music21's Essen collection, han1 and han2), pop (POP909), renaissance
(Palestrina, Monteverdi, Josquin, Lusitano in music21), and drum grooves rock, funk, jazz, latin
and hiphop (Groove MIDI beats).

Every piece becomes one MIDI file in the cache (tempo, time signatures, one track per
instrument, General MIDI programs chosen per style), then token ids. Exactly 10% of each
style's pieces (rounded up) are held out by piece, chosen by a hash of the piece id, so the
split does not depend on the seed; the seed only picks pieces when a source is capped. The build
is resumable (converted pieces are kept) and a bad piece is counted and skipped, never fatal.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import logging
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import symusic

from engine.generate import DRUM_STYLES, STYLES
from engine.midi import (
    TOKENIZER_FILE,
    encode,
    first_tempo,
    load_score,
    make_tokenizer,
    music21_first_tempo,
    music21_part_notes,
    normalise_score,
    score_to_bytes,
)
from engine.train.dataset import (
    GROOVE_TO_GM,
    _abc_tunes,
    _corpus_id,
    _corpus_paths,
    _slug,
    _split_nottingham,
    _stable_hash,
    default_cache_dir,
)

log = logging.getLogger("engine.train.generator_data")

CORPUS_VERSION = 1  # bump when pieces would convert differently: the cached MIDI is redone
DEFAULT_DATA_DIR = Path("../shared/data")
CORPUS_DIR = "generator"  # inside the cache folder
HELDOUT_FRACTION = 0.10  # of each style's pieces, never trained on
TICKS_PER_BEAT = 480
# Performed music (Groove, POP909) is snapped to this grid, in twelfths of a beat: sixteenths
# and triplet eighths, so human timing does not scatter notes over every position token.
GRID_TWELFTHS = np.array([0, 3, 4, 6, 8, 9, 12])


@dataclass(frozen=True)
class Source:
    """Where one source's pieces come from and how to play them."""

    name: str  # unique source name, part of every piece id
    style: str  # generator style
    kind: str  # loader: score, abc, lieder, nottingham, pop909, groove
    refs: str  # music21 composers (space separated), a data folder, or a Groove style
    cap: int | None = None  # most pieces taken (seeded choice); None: all
    tempo: float = 100.0  # bpm when a score gives none
    programs: tuple[int, ...] = (0,)  # General MIDI program per part, last one repeated


STYLE_SOURCES: tuple[Source, ...] = (
    Source("bach", "classical", "score", "bach", tempo=84, programs=(40, 40, 41, 42)),
    Source(
        "classical-works",
        "classical",
        "score",
        "beethoven mozart haydn schubert schumann_robert schumann_clara chopin handel corelli "
        "cpebach weber verdi beach",
        cap=40,
        tempo=100,
        programs=(40, 40, 41, 42),
    ),  # fmt: skip
    Source("lieder", "classical", "lieder", "scores/lieder", cap=120, tempo=84, programs=(52, 0)),
    Source("nottingham", "folk", "nottingham", "midi/nottingham", tempo=110, programs=(40, 24)),
    Source("oneills", "folk", "abc", "oneills1850", cap=400, tempo=110, programs=(40,)),
    Source("ryans", "folk", "abc", "ryansMammoth", cap=400, tempo=110, programs=(40,)),
    Source("essen-china", "chinese folk", "abc", "essenFolksong/han", tempo=90, programs=(73,)),
    Source("pop909", "pop", "pop909", "midi/pop909", programs=(53, 48, 0)),
    Source(
        "renaissance",
        "renaissance",
        "score",
        "palestrina monteverdi josquin lusitano",
        cap=200,
        tempo=120,
        programs=(52,),
    ),  # fmt: skip
    *(Source(f"groove-{s}", s, "groove", s) for s in DRUM_STYLES),
)


@dataclass(frozen=True)
class CorpusConfig:
    """What to build and where."""

    data_dir: Path = DEFAULT_DATA_DIR  # the shared data folder
    cache_dir: Path = field(default_factory=default_cache_dir)  # MIDI, tokens and index
    seed: int = 0  # picks pieces of capped sources
    workers: int = 2  # processes converting at once
    limit: int | None = None  # at most this many pieces per source (smoke tests)


@dataclass(frozen=True)
class PiecePlan:
    """One piece to convert."""

    piece_id: str  # "<source>/<id>", unique over the corpus
    style: str
    source: str
    kind: str
    ref: str  # path, "path#n" for the n-th ABC tune, or a data-relative path
    tempo: float  # default bpm
    programs: tuple[int, ...]
    split: str = "train"  # or "heldout"


@dataclass(frozen=True)
class CorpusPiece:
    """One converted piece of the corpus."""

    piece_id: str
    style: str
    source: str
    split: str  # train or heldout
    tempo: float  # first tempo, bpm
    seconds: float  # length
    midi_path: str  # relative to the corpus folder


# --------------------------------------------------------------------------------------------
# Planning


def corpus_dir(cache_dir: Path) -> Path:
    """The corpus folder inside a cache folder."""
    return Path(cache_dir).expanduser() / CORPUS_DIR


def _essen_refs(prefix: str) -> list[str]:
    """ABC tune refs of music21 corpus files whose path starts with `prefix`."""
    from music21 import corpus

    folder, stem = prefix.split("/")
    paths = sorted(Path(p) for p in corpus.getPaths() if f"/{folder}/" in str(p))
    paths = [p for p in paths if p.stem.startswith(stem)]
    return _abc_tunes(paths)


def _groove_refs(data_dir: Path, style: str) -> list[tuple[str, float]]:
    """Groove MIDI beats (not fills) of one style: (data-relative path, bpm)."""
    with (data_dir / "midi" / "groove" / "info.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [
        (str(Path("midi/groove") / r["midi_filename"]), float(r["bpm"]))
        for r in rows
        if r["beat_type"] == "beat" and r["style"].split("/")[0] == style
    ]


def _source_candidates(source: Source, data_dir: Path) -> list[tuple[str, str, float]]:
    """(piece id, ref, default tempo) of every piece a source offers, in a stable order."""
    if source.kind == "score":
        paths = [p for c in source.refs.split() for p in _corpus_paths(c)]
        if source.name == "bach":
            paths = [p for p in paths if p.name.startswith("bwv")]  # the chorales
        return [(_corpus_id(p), str(p), source.tempo) for p in paths]
    if source.kind == "abc":
        refs = (
            _essen_refs(source.refs)
            if "/" in source.refs
            else _abc_tunes(_corpus_paths(source.refs))
        )
        return [
            (_slug(Path(r.split("#")[0]).stem) + f"_{r.split('#')[1]}", r, source.tempo)
            for r in refs
        ]
    if source.kind == "groove":
        return [
            (_slug(ref.split("/", 2)[2].rsplit(".", 1)[0]), ref, bpm)
            for ref, bpm in _groove_refs(data_dir, source.refs)
        ]
    root = data_dir / source.refs
    suffix = "*.mxl" if source.kind == "lieder" else "*.mid"
    paths = sorted(root.rglob(suffix))
    return [(_slug(str(p.relative_to(root).with_suffix(""))), str(p), source.tempo) for p in paths]


def plan(config: CorpusConfig) -> tuple[list[PiecePlan], list[str]]:
    """Every piece to convert, with its split; also notes on sources that could not be planned."""
    plans: list[PiecePlan] = []
    notes: list[str] = []
    for source in STYLE_SOURCES:
        try:
            candidates = _source_candidates(source, config.data_dir)
        except Exception as err:  # a missing folder must not stop the other sources
            notes.append(f"{source.name}: not planned ({type(err).__name__}: {err})")
            log.warning("source %s not planned: %s", source.name, err)
            continue
        cap = source.cap if config.limit is None else min(source.cap or 10**9, config.limit)
        if cap is not None and len(candidates) > cap:
            rng = np.random.default_rng([config.seed, _stable_hash(source.name)])
            keep = sorted(rng.permutation(len(candidates))[:cap])
            candidates = [candidates[i] for i in keep]
        seen: set[str] = set()
        for piece_id, ref, tempo in candidates:
            full_id = f"{source.name}/{piece_id}"
            if full_id in seen:
                continue
            seen.add(full_id)
            plans.append(
                PiecePlan(
                    piece_id=full_id,
                    style=source.style,
                    source=source.name,
                    kind=source.kind,
                    ref=ref,
                    tempo=tempo,
                    programs=source.programs,
                )
            )
    return assign_splits(plans), notes


def assign_splits(plans: Sequence[PiecePlan]) -> list[PiecePlan]:
    """Hold out ceil(10%) of each style's pieces: those whose id hashes lowest."""
    by_style: dict[str, list[PiecePlan]] = {}
    for p in plans:
        by_style.setdefault(p.style, []).append(p)
    heldout: set[str] = set()
    for pieces in by_style.values():
        count = math.ceil(len(pieces) * HELDOUT_FRACTION)
        ranked = sorted(pieces, key=lambda p: _stable_hash(f"generator-heldout:{p.piece_id}"))
        heldout.update(p.piece_id for p in ranked[:count])
    return [
        PiecePlan(**{**asdict(p), "split": "heldout" if p.piece_id in heldout else "train"})
        for p in plans
    ]


# --------------------------------------------------------------------------------------------
# Converting one piece


def _empty_score(tempo: float, numerator: int = 4, denominator: int = 4) -> symusic.Score:
    score = symusic.Score(TICKS_PER_BEAT)
    score.tempos.append(symusic.Tempo(0, float(tempo)))
    score.time_signatures.append(symusic.TimeSignature(0, numerator, denominator))
    return score


def _add_track(
    score: Any, program: int, notes: Sequence[tuple[int, int, int, int]], *, is_drum: bool = False
) -> None:
    """Append a track of (start tick, duration ticks, pitch, velocity) notes."""
    track = symusic.Track(program=0 if is_drum else program, is_drum=is_drum)
    for start, length, pitch, velocity in notes:
        note = symusic.Note(int(start), max(1, int(length)), int(pitch), int(velocity))
        track.notes.append(note)
    if track.note_num():
        score.tracks.append(track)


def music21_to_score(parsed: Any, default_tempo: float, programs: Sequence[int]) -> symusic.Score:
    """A music21 score as MIDI ticks: first tempo, its time signatures, pickup bar aligned.

    Args:
        parsed: a music21 Score (an Opus gives its first score).
        default_tempo: bpm when the score has no metronome mark.
        programs: General MIDI program per part (the last one repeats).

    Returns:
        The score; repeats are not expanded.
    """
    from music21 import meter

    if hasattr(parsed, "scores") and not hasattr(parsed, "parts"):
        parsed = parsed.scores[0]
    bpm = float(np.clip(music21_first_tempo(parsed, default_tempo), 40, 200))
    parts = list(parsed.parts) or [parsed]
    shift = 0.0  # a pickup bar: move everything so bar lines fall where the score has them
    measures = parts[0].getElementsByClass("Measure")
    if measures:
        first = measures[0]
        if first.paddingLeft:
            shift = float(first.paddingLeft)
        else:
            with contextlib.suppress(Exception):
                bar = float(first.barDuration.quarterLength)
                if 0 < float(first.duration.quarterLength) < bar:
                    shift = bar - float(first.duration.quarterLength)
    signatures = parts[0].flatten().getElementsByClass(meter.TimeSignature)
    first_ts = signatures[0] if signatures else None
    score = _empty_score(bpm)
    score.time_signatures = symusic.Score(TICKS_PER_BEAT).time_signatures
    if first_ts is None:
        score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for ts in signatures:
        at = 0 if ts is first_ts else int(round((float(ts.offset) + shift) * TICKS_PER_BEAT))
        score.time_signatures.append(symusic.TimeSignature(at, ts.numerator, ts.denominator))
    for i, part in enumerate(parts):
        notes = [
            (
                round((onset + shift) * TICKS_PER_BEAT),
                round(length * TICKS_PER_BEAT),
                pitch,
                velocity,
            )
            for onset, length, pitch, velocity in music21_part_notes(part)
        ]
        _add_track(score, programs[min(i, len(programs) - 1)], notes)
    return score


def _abc_block(ref: str) -> str:
    """The text of the n-th tune of an ABC file, from a "path#n" ref."""
    file, index = ref.rsplit("#", 1)
    text = Path(file).read_text(errors="replace")
    starts = [m.start() for m in re.finditer(r"^X:", text, flags=re.MULTILINE)]
    n = int(index)
    return text[starts[n] : starts[n + 1] if n + 1 < len(starts) else len(text)]


def _snap(score: symusic.Score) -> symusic.Score:
    """Snap onsets and ends of performed notes to GRID_TWELFTHS of a beat."""
    tpq = score.ticks_per_quarter
    twelfth = tpq / 12

    def snap(ticks: np.ndarray) -> np.ndarray:
        beats, rest = np.divmod(ticks, tpq)
        distance = np.abs(rest[:, None] / twelfth - GRID_TWELFTHS[None, :])
        return beats * tpq + np.round(GRID_TWELFTHS[distance.argmin(axis=1)] * twelfth)

    for track in score.tracks:
        if track.note_num() == 0:
            continue
        notes = track.notes.numpy()
        start = snap(notes["time"].astype(np.float64))
        end = snap((notes["time"] + notes["duration"]).astype(np.float64))
        end = np.maximum(end, start + round(twelfth))
        track.notes = symusic.Note.from_numpy(
            time=start.astype(np.int32),
            duration=(end - start).astype(np.int32),
            pitch=notes["pitch"],
            velocity=notes["velocity"],
        )
    return score


def _load_groove(path: Path) -> symusic.Score:
    score = symusic.Score(str(path))
    notes = [
        (n.time, n.duration, GROOVE_TO_GM.get(n.pitch, n.pitch), n.velocity)
        for track in score.tracks
        for n in track.notes
    ]
    out = symusic.Score(score.ticks_per_quarter)
    out.tempos = score.tempos
    out.time_signatures = score.time_signatures
    _add_track(out, 0, notes, is_drum=True)
    return _snap(out)


def _load_pop909(path: Path, programs: Sequence[int]) -> symusic.Score:
    """POP909 in 4/4 (its files say 2/4), melody, bridge and piano on their own programs."""
    score = symusic.Score(str(path))
    roles = {"MELODY": 0, "BRIDGE": 1, "PIANO": 2}
    for track in score.tracks:
        track.program = programs[roles.get(track.name.upper(), 2)]
    score.time_signatures = symusic.Score(score.ticks_per_quarter).time_signatures
    score.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    return _snap(score)


def _load_nottingham(path: Path, tempo: float, programs: Sequence[int]) -> symusic.Score:
    """Nottingham tunes: melody and chords separated onto their own programs."""
    raw = symusic.Score(str(path))
    parts = _split_nottingham(path)
    if len(parts[0].notes) < 8:
        raise ValueError("no melody (the file holds only chords)")
    seconds_per_beat = 60.0 / 120.0  # pretty_midi reads these files at the MIDI default tempo
    out = _empty_score(tempo)
    out.time_signatures = symusic.Score(TICKS_PER_BEAT).time_signatures
    for ts in raw.time_signatures:
        at = round(ts.time * TICKS_PER_BEAT / raw.ticks_per_quarter)
        out.time_signatures.append(symusic.TimeSignature(at, ts.numerator, ts.denominator))
    if len(out.time_signatures) == 0:
        out.time_signatures.append(symusic.TimeSignature(0, 4, 4))
    for i, part in enumerate(parts):
        notes = [
            (
                round(n.start / seconds_per_beat * TICKS_PER_BEAT),
                round((n.end - n.start) / seconds_per_beat * TICKS_PER_BEAT),
                n.pitch,
                n.velocity,
            )
            for n in part.notes
        ]
        _add_track(out, programs[min(i, len(programs) - 1)], notes)
    return out


def convert(piece: PiecePlan, data_dir: Path) -> symusic.Score:
    """Load one planned piece as a normalised score.

    Raises:
        Exception: whatever the parser raises for a bad file (the build counts it).
    """
    if piece.kind == "groove":
        return _load_groove(data_dir / piece.ref)
    if piece.kind == "pop909":
        return _load_pop909(Path(piece.ref), piece.programs)
    if piece.kind == "nottingham":
        return _load_nottingham(Path(piece.ref), piece.tempo, piece.programs)
    from music21 import converter

    if piece.kind == "abc":
        parsed = converter.parse(_abc_block(piece.ref), format="abc")
    else:
        parsed = converter.parse(piece.ref)
    return music21_to_score(parsed, piece.tempo, piece.programs)


def _midi_name(piece_id: str) -> str:
    return f"midi/{piece_id}.mid"


def _convert_job(piece: PiecePlan, data_dir: Path, folder: Path) -> tuple[CorpusPiece | None, str]:
    """Convert and cache one piece; returns the piece or None and why it was skipped."""
    path = folder / _midi_name(piece.piece_id)
    try:
        if path.is_file():
            score = load_score(path)
        else:
            score = normalise_score(convert(piece, data_dir))
            if score.note_num() < 8:
                return None, "fewer than 8 notes"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(score_to_bytes(score))
            tmp.replace(path)
        seconds = float(score.to("second").end())
    except Exception as err:  # any parser failure: count it and go on
        return None, f"{type(err).__name__}: {str(err)[:200]}"
    return (
        CorpusPiece(
            piece_id=piece.piece_id,
            style=piece.style,
            source=piece.source,
            split=piece.split,
            tempo=round(first_tempo(score), 3),
            seconds=round(seconds, 3),
            midi_path=_midi_name(piece.piece_id),
        ),
        "",
    )


def _worker_init() -> None:
    import warnings

    logging.getLogger("music21").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")


# --------------------------------------------------------------------------------------------
# The corpus on disk: index.json, MIDI files, and token ids per tokenizer


@dataclass(frozen=True)
class TokenisedPiece:
    """A corpus piece and its token ids."""

    piece: CorpusPiece
    ids: np.ndarray  # int16 token ids (no style or tempo prefix)


def build(config: CorpusConfig) -> dict:
    """Convert every planned piece (skipping those already cached) and write the index.

    Returns:
        The build report (also written to build.json): counts per style, split and skips.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    folder = corpus_dir(config.cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    version_file = folder / "version"
    if version_file.is_file() and version_file.read_text().strip() != str(CORPUS_VERSION):
        import shutil

        shutil.rmtree(folder / "midi", ignore_errors=True)
    version_file.write_text(str(CORPUS_VERSION))
    plans, notes = plan(config)
    # Quick MIDI sources first, the slow music21 parses last.
    cost = {"groove": 0, "pop909": 0, "nottingham": 0, "abc": 1, "score": 2, "lieder": 3}
    plans.sort(key=lambda p: (cost.get(p.kind, 9), p.piece_id))
    pieces: list[CorpusPiece] = []
    skipped: list[tuple[str, str]] = []

    def collect(plan_: PiecePlan, result: tuple[CorpusPiece | None, str]) -> None:
        piece, reason = result
        if piece is None:
            skipped.append((plan_.piece_id, reason))
            log.warning("skipped %s: %s", plan_.piece_id, reason)
        else:
            pieces.append(piece)

    progress = tqdm(total=len(plans), desc="generator corpus", unit="piece", smoothing=0.05)
    if config.workers <= 1:
        _worker_init()
        for p in plans:
            collect(p, _convert_job(p, config.data_dir, folder))
            progress.update()
    else:
        with ProcessPoolExecutor(config.workers, initializer=_worker_init) as pool:
            futures = {pool.submit(_convert_job, p, config.data_dir, folder): p for p in plans}
            for future in as_completed(futures):
                p = futures[future]
                try:
                    collect(p, future.result())
                except Exception as err:  # a crashed worker
                    collect(p, (None, f"worker failed: {err}"))
                progress.update()
    progress.close()
    pieces.sort(key=lambda p: p.piece_id)
    (folder / "index.json").write_text(json.dumps([asdict(p) for p in pieces], indent=0))
    counts = Counter((p.style, p.split) for p in pieces)
    report = {
        "config": {k: str(v) for k, v in asdict(config).items()},
        "pieces": len(pieces),
        "per_style": {
            s: {"train": counts[(s, "train")], "heldout": counts[(s, "heldout")]} for s in STYLES
        },
        "hours": {
            s: round(sum(p.seconds for p in pieces if p.style == s) / 3600, 2) for s in STYLES
        },
        "skipped": len(skipped),
        "skipped_reasons": Counter(r.split(":")[0] for _, r in skipped).most_common(10),
        "notes": notes,
        "seconds": round(time.perf_counter() - started, 1),
    }
    (folder / "build.json").write_text(json.dumps(report, indent=1))
    return report


def load_index(cache_dir: Path | str | None = None) -> list[CorpusPiece]:
    """The corpus pieces written by `build`.

    Raises:
        FileNotFoundError: when no corpus has been built there.
    """
    folder = corpus_dir(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    path = folder / "index.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: build the corpus first "
            "(python -m engine.train.generator_data)."
        )
    return [CorpusPiece(**row) for row in json.loads(path.read_text())]


def tokenise(
    cache_dir: Path | str | None = None, tokenizer: Any = None
) -> tuple[Any, list[TokenisedPiece]]:
    """Token ids of every corpus piece, cached per tokenizer config.

    Args:
        cache_dir: the cache folder holding the corpus.
        tokenizer: a miditok tokenizer (default: `make_tokenizer(STYLES)`).

    Returns:
        The tokenizer and the tokenised pieces, in index order (pieces that give no tokens
        are left out).
    """
    from tqdm import tqdm

    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = corpus_dir(root)
    pieces = load_index(root)
    tokenizer = tokenizer if tokenizer is not None else make_tokenizer(STYLES)
    digest = hashlib.sha256(
        json.dumps(tokenizer.config.to_dict(serialize=True), sort_keys=True).encode()
        + json.dumps([p.piece_id for p in pieces]).encode()
    ).hexdigest()[:12]
    cached = folder / f"tokens-{digest}.npz"
    if cached.is_file():
        data = np.load(cached)
        offsets, ids = data["offsets"], data["ids"]
        kept = [p for p in pieces if p.piece_id in set(data["piece_ids"].tolist())]
        return tokenizer, [
            TokenisedPiece(p, ids[offsets[i] : offsets[i + 1]]) for i, p in enumerate(kept)
        ]
    out: list[TokenisedPiece] = []
    for piece in tqdm(pieces, desc="tokenise", unit="piece"):
        try:
            ids = encode(tokenizer, load_score(folder / piece.midi_path))
        except Exception as err:  # a piece miditok cannot read: leave it out
            log.warning("not tokenised %s: %s", piece.piece_id, err)
            continue
        if len(ids) >= 16:
            out.append(TokenisedPiece(piece, np.asarray(ids, dtype=np.int16)))
    offsets = np.cumsum([0] + [len(t.ids) for t in out])
    np.savez(
        cached,
        ids=np.concatenate([t.ids for t in out]) if out else np.zeros(0, np.int16),
        offsets=offsets,
        piece_ids=np.array([t.piece.piece_id for t in out]),
    )
    return tokenizer, out


# Licence of each source's pieces, for the shipped held-out excerpts and the model card.
LICENCES = {
    "bach": "public domain (music21 corpus)",
    "classical-works": "public domain (music21 corpus)",
    "lieder": "CC0 (OpenScore Lieder)",
    "nottingham": "GPL-3 (Nottingham Music Database)",
    "oneills": "public domain (music21 corpus)",
    "ryans": "public domain (music21 corpus)",
    "essen-china": "public domain (music21 corpus, Essen Folksong Collection)",
    "pop909": "MIT (POP909, Music X Lab)",
    "renaissance": "public domain (music21 corpus)",
    **{f"groove-{s}": "CC BY 4.0 (Groove MIDI Dataset, Magenta)" for s in DRUM_STYLES},
}
SHIPPABLE = frozenset(s for s, licence in LICENCES.items() if not licence.startswith("GPL"))


def export_heldout(
    cache_dir: Path | str | None,
    out_dir: Path,
    *,
    per_style: int = 4,
    seconds: float = 30.0,
) -> list[dict[str, str]]:
    """Ship short excerpts of held-out pieces (prompts and Compare originals).

    Takes `per_style` held-out pieces of each style (GPL-licensed sources left out), each cut
    to the whole bars of its first `seconds`, and writes them with an index.json.

    Returns:
        The index rows written.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    folder = corpus_dir(root)
    pieces = [p for p in load_index(root) if p.split == "heldout" and p.source in SHIPPABLE]
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for style in STYLES:
        chosen = sorted(
            (p for p in pieces if p.style == style and p.seconds >= 8),
            key=lambda p: _stable_hash(f"ship:{p.piece_id}"),
        )[:per_style]
        for piece in chosen:
            score = load_score(folder / piece.midi_path)
            tpq = score.ticks_per_quarter
            signature = score.time_signatures[0] if len(score.time_signatures) else None
            bar = tpq * (signature.numerator * 4 / signature.denominator if signature else 4)
            bars = max(1, int(seconds * piece.tempo / 60 * tpq // bar))
            score = score.clip(0, int(bars * bar), clip_end=True)
            name = f"{_slug(piece.piece_id)}.mid"
            (out_dir / name).write_bytes(score_to_bytes(score))
            rows.append(
                {
                    "piece_id": piece.piece_id,
                    "style": style,
                    "title": piece.piece_id.split("/", 1)[1].replace("_", " "),
                    "source": piece.source,
                    "licence": LICENCES.get(piece.source, ""),
                    "file": name,
                }
            )
    (out_dir / "index.json").write_text(json.dumps(rows, indent=1))
    return rows


def save_tokenizer(tokenizer: Any, checkpoints: Path) -> Path:
    """Write the tokenizer's JSON beside the generator's weights."""
    path = Path(checkpoints) / TOKENIZER_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tokenizer.save(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Build the corpus and tokenise it; prints the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR, help="shared data folder")
    parser.add_argument("--cache", type=Path, default=None, help="cache folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--limit", type=int, default=None, help="pieces per source (smoke test)")
    parser.add_argument(
        "--export-heldout", type=Path, default=None, metavar="DIR",
        help="also ship held-out excerpts there (e.g. checkpoints/generator_heldout)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("engine.train.generator_data").setLevel(logging.ERROR)
    config = CorpusConfig(
        data_dir=args.data,
        cache_dir=args.cache if args.cache is not None else default_cache_dir(),
        seed=args.seed,
        workers=args.workers,
        limit=args.limit,
    )
    report = build(config)
    _, tokenised = tokenise(config.cache_dir)
    report["tokens"] = {
        s: int(sum(len(t.ids) for t in tokenised if t.piece.style == s)) for s in STYLES
    }
    if args.export_heldout is not None:
        report["shipped_heldout"] = len(export_heldout(config.cache_dir, args.export_heldout))
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
