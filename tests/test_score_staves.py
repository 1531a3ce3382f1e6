"""Finding staves and systems on pages, straightening turned and bent pages, cutting staves."""

from __future__ import annotations

import numpy as np
import pytest

from engine.score.staves import (
    MARGIN_SPACES,
    STAFF_HEIGHT_PX,
    crop_staff,
    cut_staff,
    find_staves,
    straighten,
)
from engine.train.degrade import rotate, warp
from tests.score_pages import engraved_page, melody_score


@pytest.fixture(scope="module")
def quartet_page() -> tuple[np.ndarray, list]:
    """Four staves per system, several systems."""
    return engraved_page(melody_score(parts=4, bars=12))


def test_staves_and_systems_are_where_verovio_put_them(quartet_page) -> None:
    page, boxes = quartet_page
    staves = find_staves(page)
    assert len(staves) == len(boxes) >= 8
    for found, truth in zip(staves, boxes, strict=True):
        assert (found.system, found.index) == (truth.system, truth.staff)
        assert abs(found.top - truth.top * 1.5) < 0.4 * found.spacing
        assert abs(found.bottom - truth.bottom * 1.5) < 0.4 * found.spacing
        assert abs(found.left - truth.left * 1.5) < found.spacing
        assert abs(found.right - truth.right * 1.5) < found.spacing


def test_single_staves_are_systems_of_their_own() -> None:
    page, boxes = engraved_page(melody_score(parts=1, bars=16))
    staves = find_staves(page)
    assert len(staves) == len(boxes) >= 2
    assert [s.system for s in staves] == list(range(len(staves)))
    assert {s.index for s in staves} == {0}


def test_a_turned_page_is_straightened(quartet_page) -> None:
    page, boxes = quartet_page
    turned = rotate(np.pad(page, 80, constant_values=255), 2.5)
    straight, angle = straighten(turned)
    assert angle == pytest.approx(-2.5, abs=0.2)
    assert len(find_staves(straight)) == len(boxes)


@pytest.mark.parametrize("amplitude", [6.0, 12.0])
def test_a_bent_page_is_followed_staff_by_staff(amplitude: float) -> None:
    page, boxes = engraved_page(melody_score(parts=1, bars=8))
    bent = warp(np.pad(page, 40, constant_values=255), amplitude, np.random.default_rng(1))
    staves = find_staves(bent)
    assert len(staves) == len(boxes)
    spacing = STAFF_HEIGHT_PX / (4 + 2 * MARGIN_SPACES)
    expected = [(MARGIN_SPACES + line) * spacing for line in range(5)]
    for staff, truth in zip(staves, boxes, strict=True):
        assert abs(staff.left - (truth.left * 1.5 + 40)) < staff.spacing  # the clef is kept
        crop = cut_staff(bent, staff)
        darkness = (255.0 - crop).mean(axis=1)
        # The five lines lie straight along the rows where the reader expects them.
        for row in expected:
            near = darkness[int(round(row)) - 1 : int(round(row)) + 2].max()
            assert near > 4 * np.median(darkness), (row, darkness.round(1).tolist())
    assert any(len(s.bend) > 1 for s in staves)


def test_a_blank_page_has_no_staves() -> None:
    assert find_staves(np.full((900, 700), 255, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (600, 600)).astype(np.uint8)
    assert find_staves(noise) == []


def test_a_staff_crop_has_the_reader_height_and_white_outside_the_page() -> None:
    page = np.full((100, 300), 255, np.uint8)
    page[40:61:5, 20:280] = 0
    crop = crop_staff(page, top=40, bottom=60, left=20, right=280)
    assert crop.shape[0] == STAFF_HEIGHT_PX
    assert crop.shape[1] == pytest.approx((260 + 10) * STAFF_HEIGHT_PX / 50, abs=2)
    far = crop_staff(page, top=-500, bottom=-480, left=0, right=100)
    assert (far == 255).all()
