"""bench/frechet.py: choosing real excerpts for the sets, on tiny hand-made pieces."""

from __future__ import annotations

from pathlib import Path

from bench.frechet import real_excerpts
from engine.midi import piano_roll
from tests.helpers import arpeggio_piece, midi_bytes


def test_real_excerpts_take_first_excerpts_before_second_ones(tmp_path: Path) -> None:
    paths = []
    for k in range(3):  # three 2 s pieces at 120 bpm, each in its own key
        path = tmp_path / f"piece{k}.mid"
        path.write_bytes(midi_bytes(arpeggio_piece(tuple(p + k for p in (60, 64, 67, 72)))))
        paths.append(path)

    def lowest_pitches(chosen: list[bytes]) -> list[int]:
        return [int(piano_roll(m).pitch[~piano_roll(m).is_drum].min()) for m in chosen]

    firsts = real_excerpts(paths, count=3, seconds=1.0, seed=0, most=2)
    assert sorted(lowest_pitches(firsts)) == [60, 61, 62]  # one first excerpt of each piece
    more = real_excerpts(paths, count=5, seconds=1.0, seed=0, most=2)
    assert more[:3] == firsts and len(more) == 5  # then second excerpts (from 1 s: E, G, C)
    assert min(lowest_pitches(more[3:])) >= 67
    assert len(real_excerpts(paths, count=10, seconds=1.0, seed=0, most=2)) == 6  # all there is
    assert real_excerpts(paths, count=3, seconds=1.0, seed=0, most=1) == firsts  # seeded
