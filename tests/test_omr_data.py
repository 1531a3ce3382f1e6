"""The score reader's data build: which bars it can say, and pages from other engravers."""

from __future__ import annotations

import random
import shutil

import music21
import numpy as np
import pytest

from engine.score.staves import STAFF_HEIGHT_PX, find_staves
from engine.train.engravers import EngraverError, lilypond_pages, require
from engine.train.omr_data import _flags, _system_starts, engrave_chunk_musescore
from tests.helpers import needs_lilypond, needs_musescore
from tests.score_pages import melody_score


def _part(*bars: list[music21.base.Music21Object]) -> music21.stream.Part:
    part = music21.stream.Part()
    for number, elements in enumerate(bars, start=1):
        measure = music21.stream.Measure(number=number)
        for element in elements:
            measure.append(element)
        part.append(measure)
    return part


def _notes(count: int, length: float) -> list[music21.note.Note]:
    return [music21.note.Note("C5", quarterLength=length) for _ in range(count)]


def test_the_first_bar_and_bars_after_a_time_change_are_said() -> None:
    part = _part(
        [music21.clef.TrebleClef(), music21.meter.TimeSignature("4/4"), *_notes(4, 1)],
        _notes(4, 1),
        [music21.meter.TimeSignature("3/4"), *_notes(3, 1)],
        _notes(3, 1),
    )
    assert _flags(part) == [True, True, True, True]


def test_bars_with_durations_it_cannot_say_or_two_voices_are_left_out() -> None:
    two = music21.stream.Measure(number=3)
    for _ in range(2):
        voice = music21.stream.Voice()
        voice.append(_notes(4, 1))
        two.insert(0, voice)
    part = _part([music21.clef.TrebleClef(), music21.meter.TimeSignature("4/4"),
                  *_notes(4, 1)], [*_notes(5, 0.2), *_notes(3, 1)])
    part.append(two)
    assert _flags(part) == [True, False, False]


def test_a_part_without_a_clef_is_not_said() -> None:
    assert _flags(_part([music21.meter.TimeSignature("4/4"), *_notes(4, 1)])) == [False]


def test_system_breaks_cover_every_bar_every_two_to_five_bars() -> None:
    starts = _system_starts(23, random.Random(0))
    assert starts[0] == 0 and starts[-1] < 23
    assert all(2 <= b - a <= 5 for a, b in zip(starts, starts[1:], strict=False))


def test_a_missing_engraver_is_named(monkeypatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda program: None)
    with pytest.raises(EngraverError, match="lilypond"):
        require("mscore3", "lilypond")


@needs_musescore
def test_musescore_staves_are_cut_with_the_bars_of_their_system() -> None:
    parts = list(melody_score(parts=2, bars=7, key=2).parts)
    rng = random.Random(4)
    staves = engrave_chunk_musescore(parts, [True, False], rng)
    starts = _system_starts(7, random.Random(4))
    assert len(staves) == len(starts)  # the first part of every system, the second unlabelled
    for staff, first, last in zip(staves, starts, [*starts[1:], 7], strict=True):
        assert staff.image.shape[0] == STAFF_HEIGHT_PX
        assert staff.font.startswith("MuseScore ")
        assert staff.tokens[:2] == ["clef:G2", "key:+2"]
        assert staff.tokens.count("|") + staff.tokens.count("|]") == last - first
        # Dark staff lines run across the crop: the finder cut a staff, not a gap.
        assert (staff.image.mean(axis=1) < 200).sum() >= 5


@needs_lilypond
def test_lilypond_engraves_a_page_the_finder_reads() -> None:
    from engine.score.assemble import musicxml_bytes

    pages = lilypond_pages(musicxml_bytes(melody_score(parts=2, bars=4)), dpi=120)
    staves = find_staves(pages[0])
    assert pages[0].dtype == np.uint8
    assert len(staves) >= 2 and {s.index for s in staves} == {0, 1}


def test_engravers_pages_are_read_in_page_order_whatever_their_naming(tmp_path) -> None:
    import cv2

    from engine.train.engravers import _pages

    for folder, names in (("musescore", ["page-2.png", "page-1.png", "page-10.png"]),
                          ("lilypond", ["page-page2.png", "page-page1.png", "page-page10.png"]),
                          ("single", ["page.png"])):
        (tmp_path / folder).mkdir()
        for name in names:
            number = int("".join(c for c in name if c.isdigit()) or 0)
            cv2.imwrite(str(tmp_path / folder / name), np.full((20, 10 + number), 255, np.uint8))
        widths = [page.shape[1] for page in _pages(tmp_path / folder, "page")]
        assert widths == sorted(widths) and len(widths) == len(names)
    with pytest.raises(EngraverError, match="no page"):
        _pages(tmp_path, "page")
