"""Engraved systems joined to the time their bars sound, and the paired data built from them."""

from __future__ import annotations

import random

import pytest

from engine.score.assemble import musicxml_bytes
from engine.score.engrave import Layout
from engine.score.timemap import timed_score
from engine.synth import available_soundfonts
from engine.train.crossmodal_data import SPACE_PX, pair_piece
from tests.score_pages import melody_score

BAR_SECONDS = 2.0  # a 4/4 bar at verovio's 120 quarters a minute


def test_every_bar_is_placed_and_timed_in_order() -> None:
    layout = Layout(header=False, page_width=1200, page_height=1500)
    timed = timed_score(musicxml_bytes(melody_score(parts=2, bars=12)).decode(), layout)
    bars = [bar for system in timed.systems for bar in system.bars]
    assert [bar.number for bar in bars] == [str(n) for n in range(1, 13)]
    assert len(timed.systems) > 1
    for index, bar in enumerate(bars):
        assert bar.start == pytest.approx(index * BAR_SECONDS, abs=0.01)
        assert bar.left < bar.right
    for system in timed.systems:
        assert system.top < system.bottom
        assert [b.left for b in system.bars] == sorted(b.left for b in system.bars)
        middle = system.bars[0]
        assert system.x_at((middle.start + middle.end) / 2) == pytest.approx(
            (middle.left + middle.right) / 2)
    assert timed.system_at(BAR_SECONDS * 11.5) is timed.systems[-1]
    assert timed.system_at(10_000.0) is None


def test_a_slower_tempo_stretches_time_not_the_page() -> None:
    xml = musicxml_bytes(melody_score(bars=4)).decode()
    normal, slow = timed_score(xml), timed_score(xml, tempo_scale=0.5)
    assert slow.systems[0].bars[1].start == pytest.approx(2 * normal.systems[0].bars[1].start)
    assert slow.systems[0].bars[1].left == pytest.approx(normal.systems[0].bars[1].left)


def test_unreadable_music_is_refused() -> None:
    with pytest.raises(ValueError):
        timed_score("<not music/>")


@pytest.mark.skipif(len(available_soundfonts()) < 1, reason="no General MIDI soundfont")
def test_a_paired_piece_has_strips_and_audio_of_the_same_length() -> None:
    fonts = {name: available_soundfonts()[0] for name in
             ("FluidR3_GM.sf2", "TimGM6mb.sf2", "MuseScore_General.sf3")}
    paired = pair_piece(melody_score(parts=2, bars=8), "melody", random.Random(0), fonts,
                        held_out=True)
    assert paired is not None
    seconds = paired.mel.shape[1] * 512 / 22_050
    last_bar_end = paired.bars[-1][-1][3]
    assert last_bar_end == pytest.approx(seconds, abs=0.6)
    assert paired.mel_held_out is not None and paired.mel_held_out.shape == paired.mel.shape
    for strip, bars in zip(paired.strips, paired.bars, strict=True):
        # Two staves of 4 spaces, the gap between them and the margins, at SPACE_PX a space.
        assert 14 * SPACE_PX < strip.shape[0] < 40 * SPACE_PX
        assert all(0 <= left < right <= strip.shape[1] for left, right, _, _ in bars)
    assert sum(len(bars) for bars in paired.bars) == 8


def test_a_piece_too_short_to_pair_is_left_out() -> None:
    assert pair_piece(melody_score(bars=2), "short", random.Random(0), {},
                      held_out=False) is None


def test_verovio_engraves_from_any_thread() -> None:
    """Verovio reads MusicXML only on the first thread that used it; every rerun of a page
    is a new thread, so all engraving goes through one thread of its own."""
    import threading

    from engine.score.engrave import engrave, toolkit

    xml = musicxml_bytes(melody_score(bars=2)).decode()
    pages: list[int] = []
    for _ in range(2):
        worker = threading.Thread(target=lambda: pages.append(len(engrave(xml))))
        worker.start()
        worker.join()
    assert pages == [1, 1] and len(engrave(xml)) == 1
    with pytest.raises(RuntimeError, match="off its thread"):
        toolkit(Layout())
