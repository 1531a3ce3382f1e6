"""The score reader's data: staves of real music engraved with verovio, each with its tokens.

Pieces come from music21's corpus (Bach chorales, Palestrina, Monteverdi, trecento songs,
Irish and German folk tunes, string quartets, ...) and the OpenScore Lieder in ../shared. Each
piece is split whole into train, val or test by a hash of its name, so held-out pieces are
never seen in training. Runs of bars the encoding can say (one voice per staff, no grace
notes) are engraved on pages of random layout (font, size, spacing, page width, line
thickness, lyrics, slurs, dynamics and text added where the source has none), alone or with the
piece's other parts, and every staff of every system is cut out where verovio put it. The
pages' own damage (scans, photos) is added while training (engine.train.degrade).

    python -m engine.train.omr_data --data ../shared/data --out ~/.cache/music-studio/omr

Writes <out>/pieces/<piece>.npz as each piece is done (a killed build resumes), then
<out>/<split>.npz: the staff images side by side (`images`, uint8, STAFF_HEIGHT_PX rows),
`offsets` of each staff, and `<split>.json`: each staff's tokens, piece, font and source.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import random
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import music21
import numpy as np
from tqdm import tqdm

from engine.errors import EngineError
from engine.score.assemble import musicxml_bytes
from engine.score.encoding import (
    NotEncodable,
    StaffContext,
    clef_token,
    header_tokens,
    measure_tokens,
    time_token,
)
from engine.score.engrave import (
    FONTS,
    UNITS_PER_SPACE,
    Layout,
    on_verovio_thread,
    rasterise,
    staff_boxes,
    toolkit,
)
from engine.score.staves import crop_staff, cut_staff, find_staves
from engine.train.engravers import (
    MUSESCORE,
    EngraverError,
    lilypond_pages,
    musescore_pages,
    random_musescore_style,
    require,
)
from engine.train.piece_files import (
    add_build_arguments,
    build_all,
)

# What a run of bars that music21 or verovio cannot take raises: the run is skipped.
SKIPPED_CHUNK = (NotEncodable, EngineError, EngraverError, music21.exceptions21.Music21Exception,
                 ValueError, IndexError, KeyError, AttributeError, TypeError, ZeroDivisionError)
MUSESCORE_SHARE = 0.3  # runs of bars engraved by MuseScore instead of verovio
ENGRAVERS = ("verovio", "musescore", "lilypond")  # for held-out pages; LilyPond never trains
HELD_OUT_FONT = "Gootville"  # never used for training pages: measures a look the reader never saw
TRAIN_FONTS = tuple(font for font in FONTS if font != HELD_OUT_FONT)
# music21 corpus collections and how many of their files to use.
CORPUS_FILES = {
    "bach": 260, "palestrina": 160, "ryansMammoth": 220, "trecento": 60, "monteverdi": 60,
    "oneills1850": 39, "essenFolksong": 31, "beethoven": 26, "mozart": 16, "haydn": 9,
    "josquin": 8, "schumann_robert": 7, "schumann_clara": 5, "airdsAirs": 6, "demos": 13,
    "handel": 1, "corelli": 1, "cpebach": 1, "schubert": 1, "weber": 1, "verdi": 1,
    "joplin": 1, "beach": 1, "chopin": 1, "luca": 1, "ciconia": 1, "liliuokalani": 1,
}
NOTATION_SUFFIXES = (".mxl", ".xml", ".musicxml", ".krn", ".abc")  # not analyses, not MIDI
TUNES_PER_COLLECTION = 12  # pieces taken from one file that holds many tunes (ABC, Essen)
LIEDER_FILES = 420
CHUNKS_PER_PART = 3  # runs of bars engraved per part of a piece
DYNAMICS = ("pp", "p", "mp", "mf", "f", "ff", "sf", "fp")
WORDS = ("dolce", "cresc.", "dim.", "rit.", "a tempo", "espress.", "legato", "poco rit.",
         "Allegro", "Andante", "tranquillo", "con moto", "sempre p")
SYLLABLES = ("la", "da", "Ky", "ri", "e", "glo", "ri", "a", "in", "the", "sun", "and", "my",
             "heart", "Lie", "be", "Herz", "mein", "love", "o")


def split_of(piece_id: str) -> str:
    """train / val / test for a piece, fixed by a hash of its id (90 / 5 / 5)."""
    bucket = int(hashlib.sha1(piece_id.encode()).hexdigest(), 16) % 100
    return "train" if bucket < 90 else ("val" if bucket < 95 else "test")


@dataclass(frozen=True)
class Source:
    """One file to read pieces from."""

    piece_id: str  # collection/file name
    path: str  # the file (a music21 corpus path or a lieder .mxl)
    collection: str  # where it comes from (for the card)


def sources(data_dir: Path, seed: int) -> list[Source]:
    """The files the build reads, a seeded sample of each collection."""
    rng = random.Random(seed)
    found: list[Source] = []
    by_collection: dict[str, list[str]] = {}
    for path in music21.corpus.getCorePaths():
        if path.suffix not in NOTATION_SUFFIXES:
            continue
        collection = str(path).split("/corpus/")[1].split("/")[0]
        by_collection.setdefault(collection, []).append(str(path))
    for collection, count in CORPUS_FILES.items():
        paths = sorted(by_collection.get(collection, []))
        rng.shuffle(paths)
        for path in paths[:count]:
            name = str(path).split("/corpus/")[1]
            found.append(Source(f"m21/{name}", path, collection))
    lieder = sorted((data_dir / "scores" / "lieder").rglob("*.mxl"))
    rng.shuffle(lieder)
    for path in lieder[:LIEDER_FILES]:
        name = str(path.relative_to(data_dir / "scores" / "lieder"))
        found.append(Source(f"lieder/{name}", str(path), "lieder"))
    return found


def source_scores(source: Source) -> list[tuple[str, music21.stream.Score]]:
    """The pieces in a source file, each with its id (several for a file of tunes)."""
    parsed = music21.converter.parse(source.path)
    if isinstance(parsed, music21.stream.Opus):
        scores = list(parsed.scores)[:TUNES_PER_COLLECTION]
        return [(f"{source.piece_id}#{i}", s) for i, s in enumerate(scores)]
    return [(source.piece_id, parsed)]


def _flags(part: music21.stream.Part) -> list[bool]:
    """Per bar of a part: can the encoding say it (one voice, a known clef, durations it has)?

    One pass over the bars, the clef and time in force carried along (music21's per-bar
    context look-up rebuilds a tree of the whole part each time: minutes on a long quartet).
    """
    flags = []
    clef: music21.clef.Clef | None = None
    time: music21.meter.TimeSignature | None = None
    for measure in part.getElementsByClass("Measure"):
        changes = list(measure.getElementsByClass(["Clef", "TimeSignature"]))
        for element in changes:
            if element.offset == 0:
                clef, time = _carry(element, clef, time)
        flags.append(_encodable(measure, clef, time))
        for element in changes:
            if element.offset > 0:
                clef, time = _carry(element, clef, time)
    return flags


def _carry(
    element: music21.base.Music21Object, clef: music21.clef.Clef | None,
    time: music21.meter.TimeSignature | None,
) -> tuple[music21.clef.Clef | None, music21.meter.TimeSignature | None]:
    """The clef and time in force once `element` (a clef or a time signature) is read."""
    if isinstance(element, music21.clef.Clef):
        return element, time
    return clef, element


def _encodable(measure: music21.stream.Measure, clef: music21.clef.Clef | None,
               time: music21.meter.TimeSignature | None) -> bool:
    bar = Fraction(time.barDuration.quarterLength) if time else Fraction(4)
    try:
        measure_tokens(measure, system_start=False, bar_quarters=bar)
        if clef is None:
            return False
        clef_token(clef)
    except (NotEncodable, music21.exceptions21.Music21Exception):
        return False
    return not measure.getElementsByClass("Voice")[1:] or all(
        not len(v.notesAndRests) for v in measure.voices[1:]
    )


def _runs(flags: list[bool], least: int) -> list[tuple[int, int]]:
    runs, start = [], None
    for index, flag in enumerate([*flags, False]):
        if flag and start is None:
            start = index
        elif not flag and start is not None:
            if index - start >= least:
                runs.append((start, index))
            start = None
    return runs


def prepare_run(part: music21.stream.Part, first: int, last: int, rng: random.Random,
             *, decorate: bool) -> music21.stream.Part:
    """Bars first..last-1 of a part as a part of its own, with what is in force restated."""
    measures = list(part.getElementsByClass("Measure"))
    out = music21.stream.Part()
    for index in range(first, last):
        measure = copy.deepcopy(measures[index])
        measure.number = index - first + 1
        # The source's own line and page breaks go: the engraver lays the run out afresh.
        measure.removeByClass(["SystemLayout", "PageLayout", "StaffLayout"])
        out.append(measure)
    opening = out.getElementsByClass("Measure")[0]
    source = measures[first]
    for kind in (music21.clef.Clef, music21.key.KeySignature, music21.meter.TimeSignature):
        if not opening.getElementsByOffset(0, classList=[kind.__name__]):
            context = source.getContextByClass(kind)
            if context is not None:
                opening.insert(0, copy.deepcopy(context))
    for measure in out.getElementsByClass("Measure"):
        time = measure.getContextByClass(music21.meter.TimeSignature)
        bar = time.barDuration.quarterLength if time else 4.0
        rests = list(measure.notesAndRests)
        if len(rests) == 1 and rests[0].isRest and rests[0].quarterLength in (bar, 4.0):
            rests[0].fullMeasure = True
    if decorate:
        _decorate(out, rng)
    return out


def _decorate(part: music21.stream.Part, rng: random.Random) -> None:
    """Slurs, dynamics, words and (where there are none) lyrics, as real pages have."""
    notes = [n for n in part.recurse().notes if not n.duration.isGrace]
    if not notes:
        return
    for _ in range(rng.randint(0, 3)):
        start = rng.randrange(len(notes))
        end = min(start + rng.randint(1, 5), len(notes) - 1)
        if end > start:
            part.insert(0, music21.spanner.Slur(notes[start], notes[end]))
    for _ in range(rng.randint(0, 3)):
        note = rng.choice(notes)
        measure = note.getContextByClass(music21.stream.Measure)
        if measure is not None and rng.random() < 0.6:
            measure.insert(note.offset, music21.dynamics.Dynamic(rng.choice(DYNAMICS)))
        elif measure is not None:
            words = music21.expressions.TextExpression(rng.choice(WORDS))
            words.placement = rng.choice(("above", "below"))
            measure.insert(note.offset, words)
    if rng.random() < 0.25 and not any(n.lyrics for n in notes):
        for note in notes:
            if rng.random() < 0.8:
                note.addLyric(rng.choice(SYLLABLES))


def _contexts(part: music21.stream.Part) -> list[tuple[StaffContext, Fraction]]:
    """Per bar: the header a system starting there would show, and the bar's length."""
    contexts = []
    clef, key, time = None, 0, None
    for index, measure in enumerate(part.getElementsByClass("Measure")):
        shown_time = None
        for element in measure.getElementsByOffset(0):
            if isinstance(element, music21.clef.Clef):
                clef = clef_token(element)
            elif isinstance(element, music21.key.KeySignature):
                key = element.sharps
            elif isinstance(element, music21.meter.TimeSignature):
                time = element
                shown_time = time_token(element)
        if index == 0 and time is not None:
            shown_time = time_token(time)
        if clef is None:
            raise NotEncodable("no clef")
        bar = Fraction(time.barDuration.quarterLength) if time is not None else Fraction(4)
        contexts.append((StaffContext(clef=clef, key=key, time=shown_time), bar))
        # Later bars' clef/key/time changes update the state as the loop goes on.
        for element in measure.getElementsByClass(["Clef", "KeySignature", "TimeSignature"]):
            if element.offset > 0:
                if isinstance(element, music21.clef.Clef):
                    clef = clef_token(element)
                elif isinstance(element, music21.key.KeySignature):
                    key = element.sharps
                else:
                    time = element
    return contexts


def score_of(parts: list[music21.stream.Part], rng: random.Random) -> music21.stream.Score:
    """Parts engraved together, bracketed or braced as printed scores join a system's staves."""
    score = music21.stream.Score(parts)
    if len(parts) > 1:
        symbol = rng.choice(("bracket", "brace", "line", "square"))
        score.insert(0, music21.layout.StaffGroup(parts, symbol=symbol,
                                                  barTogether=rng.random() < 0.4))
    return score


def random_layout(rng: random.Random, *, fonts: tuple[str, ...], parts: int) -> Layout:
    """A page layout drawn at random within what printed music uses."""
    return Layout(
        font=rng.choice(fonts),
        page_width=rng.randint(1300, 2600),
        page_height=2970,
        scale=rng.randint(30, 55),
        spacing_staff=rng.randint(6, 16) if parts > 1 else 12,
        spacing_system=rng.randint(4, 18),
        spacing_linear=rng.uniform(0.15, 0.4),
        spacing_non_linear=rng.uniform(0.45, 0.75),
        staff_line_width=rng.uniform(0.1, 0.28),
        stem_width=rng.uniform(0.12, 0.45),
        lyric_size=rng.uniform(3.5, 6.0),
        header=rng.random() < 0.3,
        adjust_page_height=True,
    )


@dataclass
class Staff:
    """One engraved staff image and its tokens."""

    image: np.ndarray
    tokens: list[str]
    font: str


@on_verovio_thread
def engrave_chunk(
    parts: list[music21.stream.Part], labelled: list[bool], layout: Layout,
    rng: random.Random, *, jitter: bool = True,
) -> list[Staff]:
    """Engrave prepared parts together and cut out every labelled staff of every system."""
    contexts = [_contexts(part) for part in parts]
    score = score_of(parts, rng)
    tk = toolkit(layout)
    if not tk.loadData(musicxml_bytes(score).decode()):
        return []
    staves: list[Staff] = []
    measures = [list(p.getElementsByClass("Measure")) for p in parts]
    for page in range(1, tk.getPageCount() + 1):
        svg = tk.renderToSVG(page)
        boxes = staff_boxes(svg, tk)
        if not boxes:
            continue
        spacing = boxes[0].spacing
        zoom = rng.uniform(8, 15) / spacing
        image = rasterise(svg, zoom=zoom)
        for box in boxes:
            if box.staff >= len(parts) or not labelled[box.staff]:
                continue
            try:
                numbers = [int(n) - 1 for n in box.measures]
            except ValueError:
                continue
            part_measures = measures[box.staff]
            if not numbers or min(numbers) < 0 or max(numbers) >= len(part_measures):
                continue
            context, _ = contexts[box.staff][numbers[0]]
            tokens = header_tokens(context)
            try:
                for position, number in enumerate(numbers):
                    tokens += measure_tokens(
                        part_measures[number], system_start=position == 0,
                        bar_quarters=contexts[box.staff][number][1],
                    )
            except NotEncodable:
                continue
            # Where a staff finder would put the staff: a little off verovio's lines.
            shakes = [rng.uniform(-0.25, 0.25) * box.spacing if jitter else 0.0 for _ in range(4)]
            crop = crop_staff(
                image, top=(box.top + shakes[0]) * zoom, bottom=(box.bottom + shakes[1]) * zoom,
                left=(box.left + 2 * shakes[2]) * zoom, right=(box.right + 2 * shakes[3]) * zoom,
            )
            staves.append(Staff(crop, tokens, layout.font))
    return staves


def _system_starts(count: int, rng: random.Random) -> list[int]:
    """The first bar of each system when `count` bars are broken every 2-5 bars."""
    starts, bar = [], 0
    while bar < count:
        starts.append(bar)
        bar += rng.randint(2, 5)
    return starts


def engrave_chunk_musescore(
    parts: list[music21.stream.Part], labelled: list[bool], rng: random.Random,
) -> list[Staff]:
    """Engrave prepared parts with MuseScore, a system break every few bars, and cut out
    every labelled staff where the page finder finds it (none when MuseScore broke the
    lines elsewhere or the finder missed a staff: the run is then left out)."""
    contexts = [_contexts(part) for part in parts]
    measures = [list(p.getElementsByClass("Measure")) for p in parts]
    count = min(len(m) for m in measures)
    starts = _system_starts(count, rng)
    for part_measures in measures:
        for start in starts[1:]:
            part_measures[start].insert(0, music21.layout.SystemLayout(isNew=True))
    style = random_musescore_style(rng)
    pages = musescore_pages(musicxml_bytes(score_of(parts, rng)), style)
    systems = []
    for page in pages:
        found = find_staves(page)
        for number in sorted({staff.system for staff in found}):
            systems.append((page, [staff for staff in found if staff.system == number]))
    if len(systems) != len(starts) or any(len(staves) != len(parts) for _, staves in systems):
        return []
    out: list[Staff] = []
    for (page, staves), first, last in zip(systems, starts, [*starts[1:], count], strict=True):
        for index, staff in enumerate(staves):
            if not labelled[index]:
                continue
            tokens = header_tokens(contexts[index][first][0])
            try:
                for number in range(first, last):
                    tokens += measure_tokens(measures[index][number],
                                             system_start=number == first,
                                             bar_quarters=contexts[index][number][1])
            except NotEncodable:
                continue
            out.append(Staff(cut_staff(page, staff), tokens, f"MuseScore {style.font}"))
    return out


def build_piece(source: Source, seed: int) -> list[dict]:
    """All staves of one source file (a piece, or several tunes)."""
    rng = random.Random(f"{seed}/{source.piece_id}")
    fonts = FONTS if split_of(source.piece_id) != "train" else TRAIN_FONTS
    out: list[dict] = []
    for piece_id, score in source_scores(source):
        parts = list(score.parts)
        if not parts:
            continue
        counts = {len(p.getElementsByClass("Measure")) for p in parts}
        flags = [_flags(p) for p in parts]
        for index, part_flags in enumerate(flags):
            runs = _runs(part_flags, least=3)
            rng.shuffle(runs)
            for start, stop in runs[:CHUNKS_PER_PART]:
                length = rng.randint(4, 20)
                first = rng.randint(start, max(start, stop - length))
                last = min(stop, first + length)
                together = len(counts) == 1 and 1 < len(parts) <= 4 and rng.random() < 0.5
                chosen = range(len(parts)) if together else [index]
                try:
                    prepared = [
                        prepare_run(parts[i], first, last, rng, decorate=rng.random() < 0.7)
                        for i in chosen
                    ]
                    labelled = [all(flags[i][first:last]) for i in chosen]
                    if rng.random() < MUSESCORE_SHARE:
                        staves = engrave_chunk_musescore(prepared, labelled, rng)
                    else:
                        layout = random_layout(rng, fonts=fonts, parts=len(prepared))
                        staves = engrave_chunk(prepared, labelled, layout, rng)
                except SKIPPED_CHUNK:
                    continue
                out += [{"image": s.image, "tokens": s.tokens, "font": s.font,
                         "piece": piece_id} for s in staves]
    return out


@dataclass
class TruePage:
    """A held-out page engraved whole, with what each part really holds."""

    images: list[np.ndarray]  # the pages, grey
    parts: list[list[str]]  # each part's tokens, bar after bar (headers of the first bar only)
    piece: str
    font: str


@on_verovio_thread
def engrave_page(source: Source, seed: int, *, fonts: tuple[str, ...] = FONTS,
                 bars: int = 16, engraver: str = "verovio") -> TruePage | None:
    """The first run of `bars` bars of a piece in which every part can be said, engraved whole
    by `engraver` (one of ENGRAVERS) on pages of random layout (None when the piece has no
    such run)."""
    rng = random.Random(f"{seed}/page/{source.piece_id}")
    for piece_id, score in source_scores(source)[:1]:
        parts = list(score.parts)
        if not 0 < len(parts) <= 4:
            return None
        flags = [_flags(p) for p in parts]
        if len({len(f) for f in flags}) != 1:
            return None
        runs = _runs([all(column) for column in zip(*flags, strict=True)], least=bars // 2)
        if not runs:
            return None
        first, stop = runs[0]
        last = min(stop, first + bars)
        prepared = [prepare_run(p, first, last, rng, decorate=True) for p in parts]
        truth = []
        for part in prepared:
            contexts = _contexts(part)
            tokens = header_tokens(contexts[0][0])
            for index, measure in enumerate(part.getElementsByClass("Measure")):
                tokens += measure_tokens(measure, system_start=index == 0,
                                         bar_quarters=contexts[index][1])
            truth.append(tokens)
        if engraver == "musescore":
            style = random_musescore_style(rng)
            images = musescore_pages(musicxml_bytes(score_of(prepared, rng)), style)
            return TruePage(images, truth, piece_id, f"MuseScore {style.font}")
        if engraver == "lilypond":
            images = lilypond_pages(musicxml_bytes(score_of(prepared, rng)),
                                    dpi=rng.randint(110, 190))
            return TruePage(images, truth, piece_id, "LilyPond")
        layout = random_layout(rng, fonts=fonts, parts=len(prepared))
        tk = toolkit(replace(layout, adjust_page_height=False, page_height=2970))
        if not tk.loadData(musicxml_bytes(score_of(prepared, rng)).decode()):
            return None
        svgs = [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]
        spacing = UNITS_PER_SPACE * layout.scale / 1000
        zoom = rng.uniform(10, 16) / spacing
        return TruePage([rasterise(svg, zoom=zoom) for svg in svgs], truth, piece_id,
                        layout.font)
    return None


def staff_arrays(source: Source, seed: int) -> tuple[dict, int]:
    """One source file's staves as the arrays of its piece file, and how many there are."""
    try:
        staves = build_piece(source, seed)
    except Exception as err:  # noqa: BLE001 - a broken corpus file is skipped, not fatal
        staves = []
        print(f"{source.piece_id}: skipped ({type(err).__name__}: {err})", flush=True)
    images = [s["image"] for s in staves]
    meta = [{k: s[k] for k in ("tokens", "font", "piece")} for s in staves]
    return {
        "images": np.concatenate(images, axis=1) if images else np.zeros((64, 0), np.uint8),
        "widths": np.array([i.shape[1] for i in images], dtype=np.int64),
        "meta": json.dumps({"source": source.piece_id, "collection": source.collection,
                            "split": split_of(source.piece_id), "staves": meta}),
    }, len(staves)


def collect(out_dir: Path) -> dict[str, int]:
    """Join the per-piece files into one file per split; counts of staves per split."""
    by_split: dict[str, tuple[list[np.ndarray], list[dict]]] = {}
    for path in sorted((out_dir / "pieces").glob("*.npz")):
        stored = np.load(path)
        meta = json.loads(str(stored["meta"]))
        images, widths = stored["images"], stored["widths"]
        offsets = np.concatenate([[0], np.cumsum(widths)])
        chunks, records = by_split.setdefault(meta["split"], ([], []))
        for i, staff in enumerate(meta["staves"]):
            chunks.append(images[:, offsets[i]:offsets[i + 1]])
            records.append({**staff, "collection": meta["collection"]})
    counts = {}
    for split, (chunks, records) in by_split.items():
        widths = np.array([c.shape[1] for c in chunks], dtype=np.int64)
        np.savez(out_dir / f"{split}.npz", images=np.concatenate(chunks, axis=1),
                 offsets=np.concatenate([[0], np.cumsum(widths)]))
        (out_dir / f"{split}.json").write_text(json.dumps(records))
        counts[split] = len(records)
    return counts


def main() -> None:
    """Build the staff data set (resumable), then join it per split."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_build_arguments(parser, name="omr")
    args = parser.parse_args()
    require(MUSESCORE)
    out_dir = args.out.expanduser()
    todo = sources(args.data, args.seed)[: args.limit or None]
    for piece, count in build_all(staff_arrays, todo, seed=args.seed, out_dir=out_dir,
                                  workers=args.workers):
        if count == 0:
            tqdm.write(f"{piece}: no staves")
    print(json.dumps(collect(out_dir)))


if __name__ == "__main__":
    main()
