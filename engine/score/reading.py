"""Reading a file of sheet music: pages -> staves -> symbols -> one score, with what a person
needs to check it (where each staff was found, how sure the reader was of each symbol)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction
from functools import cached_property
from pathlib import Path

import music21
import numpy as np

from engine.audio import read_source
from engine.errors import InvalidScore, NoStaves
from engine.score.assemble import (
    build_score,
    count_measures,
    count_notes,
    join_staves,
    midi_bytes,
    musicxml_bytes,
)
from engine.score.encoding import time_signature, token_kind, uneven_bars, vocabulary
from engine.score.pages import load_pages
from engine.score.reader import UNSURE_BELOW, LoadedReader, Symbol, load_reader, read_staves
from engine.score.staves import Staff, cut_staff, find_staves, straighten

Progress = Callable[[float, str], None]  # (share done 0..1, what is being done)


@dataclass(frozen=True)
class ReadStaff:
    """One staff as found and read."""

    page: int  # page index in the file
    staff: Staff  # where it lies on the straightened page (system, index within it)
    symbols: tuple[Symbol, ...]  # what the reader read, left to right

    @property
    def tokens(self) -> list[str]:
        """The symbols' tokens."""
        return [symbol.token for symbol in self.symbols]

    @property
    def unsure(self) -> list[Symbol]:
        """Symbols read with a confidence below UNSURE_BELOW."""
        return [s for s in self.symbols if s.confidence < UNSURE_BELOW]


@dataclass(frozen=True)
class ScoreReading:
    """A file of sheet music as read: its pages, its staves and the score they make."""

    name: str  # file name
    pages: tuple[np.ndarray, ...]  # the straightened grey pages
    staves: tuple[ReadStaff, ...]  # in reading order: page, system, staff
    score: music21.stream.Score  # the score built from the staves' tokens
    seconds: float  # time the reading took
    warnings: tuple[str, ...] = field(default=())  # what the person should check

    @property
    def parts(self) -> int:
        """Parts (staves per system)."""
        return max((s.staff.index for s in self.staves), default=-1) + 1

    @property
    def systems(self) -> int:
        """Systems over all pages."""
        return len({(s.page, s.staff.system) for s in self.staves})

    @property
    def mean_confidence(self) -> float:
        """Mean confidence of every symbol read."""
        values = [symbol.confidence for staff in self.staves for symbol in staff.symbols]
        return float(np.mean(values)) if values else 0.0

    def uneven_bars(self, index: int) -> list[int]:
        """Bars of staff `index` whose notes do not add up to the time signature in force
        (see engine.score.encoding.uneven_bars): the places to check first."""
        staff = self.staves[index]
        part = [i for i, s in enumerate(self.staves) if s.staff.index == staff.staff.index]
        quarters = Fraction(4)
        for earlier in part[: part.index(index)]:
            for token in self.staves[earlier].tokens:
                if token_kind(token) == "time":
                    quarters = Fraction(time_signature(token).barDuration.quarterLength)
        return uneven_bars(staff.tokens, bar_quarters=quarters, opens=index == part[0],
                           closes=index == part[-1])

    def system_staves(self, page: int, system: int) -> list[tuple[int, ReadStaff]]:
        """(index, staff) of every staff of one system, top to bottom."""
        return [(i, s) for i, s in enumerate(self.staves)
                if s.page == page and s.staff.system == system]

    def systems_on(self, page: int) -> list[int]:
        """The systems found on a page, top to bottom."""
        return sorted({s.staff.system for s in self.staves if s.page == page})

    @cached_property
    def musicxml(self) -> bytes:
        """The score as MusicXML (written once).

        Raises:
            InvalidScore: when music21 cannot write what was read.
        """
        return musicxml_bytes(self.score)

    @cached_property
    def midi(self) -> bytes:
        """The score as MIDI (written once).

        Raises:
            InvalidScore: when music21 cannot write what was read.
        """
        return midi_bytes(self.score)

    def summary(self) -> dict:
        """The figures the command line prints (without the file paths)."""
        return {
            "pages": len(self.pages),
            "systems": self.systems,
            "staves": len(self.staves),
            "parts": self.parts,
            "measures": count_measures(self.score),
            "notes": count_notes(self.score),
            "mean_confidence": round(self.mean_confidence, 4),
            "seconds": round(self.seconds, 3),
            "warnings": list(self.warnings),
        }


def score_from_staves(staves: Sequence[ReadStaff], *, title: str) -> music21.stream.Score:
    """Join each part's staves across systems and pages into one score."""
    parts = max((s.staff.index for s in staves), default=-1) + 1
    per_part = [
        join_staves([s.tokens for s in staves if s.staff.index == part]) for part in range(parts)
    ]
    return build_score(per_part, title=title)


def parse_tokens(text: str) -> list[str]:
    """A staff's symbols typed as text (spaces or new lines between them).

    Raises:
        InvalidScore: naming the words that are not symbols of the encoding.
    """
    known = set(vocabulary())
    tokens = text.split()
    unknown = [t for t in tokens if t not in known]
    if unknown:
        shown = ", ".join(dict.fromkeys(unknown[:5]))
        raise InvalidScore(
            f"Not symbols the reader knows: {shown}. Write notes as pitch then duration "
            "(C#5 quarter, Bb3 eighth.), rests as 'rest half', bars as |."
        )
    return tokens


def with_staff_tokens(reading: ScoreReading, index: int, tokens: Sequence[str]) -> ScoreReading:
    """The reading with staff `index` corrected to `tokens` (as a person typed them, each
    then counted as certain) and the score built again."""
    staves = list(reading.staves)
    staff = staves[index]
    staves[index] = replace(staff, symbols=tuple(
        Symbol(token, 1.0, (i + 0.5) / max(len(tokens), 1)) for i, token in enumerate(tokens)
    ))
    return replace(reading, staves=tuple(staves),
                   score=score_from_staves(staves, title=_title(reading.name)))


def _title(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def read_pages(
    pages: Sequence[np.ndarray], reader: LoadedReader, *, name: str = "page",
    progress: Progress | None = None,
) -> ScoreReading:
    """Read grey page images into a score.

    Raises:
        NoStaves: when no page holds a staff.
    """
    started = time.perf_counter()
    warnings: list[str] = []
    straightened: list[np.ndarray] = []
    found: list[tuple[int, Staff]] = []
    for number, page in enumerate(pages):
        if progress:
            progress(number / max(len(pages), 1) * 0.5, f"Finding staves on page {number + 1}")
        turned, angle = straighten(page)
        straightened.append(turned)
        staves = find_staves(turned)
        if abs(angle) >= 0.5:
            warnings.append(f"Page {number + 1} was turned {angle:.1f} degrees to straighten it.")
        if not staves and len(pages) > 1:
            warnings.append(f"Page {number + 1}: no staves found; it was skipped.")
        counts = {}
        for staff in staves:
            counts[staff.system] = counts.get(staff.system, 0) + 1
        if len(set(counts.values())) > 1:
            warnings.append(
                f"Page {number + 1}: its systems have different numbers of staves "
                f"({', '.join(str(c) for c in counts.values())}); parts are joined by position "
                "in the system, so check them."
            )
        found += [(number, staff) for staff in staves]
    if not found:
        raise NoStaves(
            f"No staff of five lines was found in {name}. Use a photo or scan of printed "
            "sheet music, straight on, with the staves sharp and at least about 8 pixels "
            "between lines."
        )
    if progress:
        progress(0.5, f"Reading {len(found)} staves")
    images = [cut_staff(straightened[page], staff, reader.height) for page, staff in found]
    symbols = read_staves(images, reader)
    staves = tuple(
        ReadStaff(page, staff, tuple(read)) for (page, staff), read in zip(found, symbols,
                                                                        strict=True)
    )
    unsure = sum(len(s.unsure) for s in staves)
    total = sum(len(s.symbols) for s in staves)
    if total and unsure / total > 0.2:
        warnings.append(
            f"{unsure} of {total} symbols were read with low confidence: the page may be "
            "blurred, handwritten or unusual; check the reading against the image."
        )
    score = score_from_staves(staves, title=_title(name))
    if progress:
        progress(1.0, "Done")
    return ScoreReading(name, tuple(straightened), staves, score,
                        time.perf_counter() - started, tuple(warnings))


def read_score(
    source: bytes | str | Path, reader: LoadedReader | None = None, *, name: str | None = None,
    progress: Progress | None = None,
) -> ScoreReading:
    """Read an image or PDF of sheet music (all its pages make one score).

    Args:
        source: the file's bytes, or its path.
        reader: a loaded staff reader (default: the studio's, loaded now).
        name: what to call the file in messages (default: its file name, else "page").
        progress: called with (share done, what is being done) as the reading goes on.

    Raises:
        MissingFile: when there is no file at the path.
        InvalidScore: when the file is not a readable image or PDF, or holds no staves.
        ModelUnavailable: when no reader is given and the studio's cannot be loaded.
    """
    is_bytes = isinstance(source, bytes | bytearray | memoryview)
    data, name = read_source(source, name or ("page" if is_bytes else None))
    reader = reader or load_reader()
    return read_pages(load_pages(data, name), reader, name=name, progress=progress)
