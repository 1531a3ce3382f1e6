"""Staves on a page image: find them and group them into systems, and cut one out as the
reader sees it (a fixed height, the staff straightened and in the middle, room for ledger
lines)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

STAFF_HEIGHT_PX = 64  # the height of a staff image the reader reads
MARGIN_SPACES = 3.0  # staff spaces kept above the top line and below the bottom line
SIDE_SPACES = 1.0  # staff spaces kept left of the first and right of the last line end
MAX_SKEW_DEGREES = 8.0  # pages turned further than this are not straightened
LEAST_LINE_SHARE = 0.3  # a staff line row covers at least this share of the longest one


@dataclass(frozen=True)
class Staff:
    """One staff found on a page (pixels of the straightened page)."""

    top: float  # y of the top line at the staff's left end
    bottom: float  # y of the bottom line there
    left: float  # x where the lines start
    right: float  # x where they end
    bend: tuple[float, ...]  # polynomial (numpy order) of the lines' vertical drift along x
    system: int  # index of its system on the page, top to bottom
    index: int  # index within its system, top to bottom

    @property
    def spacing(self) -> float:
        """Distance between two staff lines."""
        return (self.bottom - self.top) / 4


def crop_staff(
    page: np.ndarray, *, top: float, bottom: float, left: float, right: float,
    bend: tuple[float, ...] = (0.0,), height: int = STAFF_HEIGHT_PX,
) -> np.ndarray:
    """Cut one staff out of a grey page, straightened, scaled to `height` rows.

    Args:
        page: grey page (uint8, ink dark).
        top, bottom: y of the staff's top and bottom lines (at its left end).
        left, right: x where its lines start and end.
        bend: the lines' vertical drift along x, a numpy polynomial in x - left (a photo of
            a page that does not lie flat); (0,) for a straight staff.
        height: rows of the result; the width keeps the aspect ratio.

    Returns:
        uint8 image (height, width), paper white; areas outside the page are white.
    """
    spacing = max((bottom - top) / 4, 1.0)
    y0 = top - MARGIN_SPACES * spacing
    y1 = bottom + MARGIN_SPACES * spacing
    x0 = left - SIDE_SPACES * spacing
    x1 = right + SIDE_SPACES * spacing
    scale = height / (y1 - y0)
    width = max(int(round((x1 - x0) * scale)), 8)
    if scale < 0.7:
        # Cut the staff's region out and shrink it first, so that the remap below samples an
        # image of about the output's scale (no aliasing of thin lines).
        drifts = np.polyval(np.asarray(bend, dtype=np.float64), np.array([0.0, x1 - left,
                                                                           (x1 - left) / 2]))
        ry0 = max(int(y0 + min(drifts.min(), 0)) - 2, 0)
        ry1 = min(int(y1 + max(drifts.max(), 0)) + 3, page.shape[0])
        rx0, rx1 = max(int(x0) - 2, 0), min(int(x1) + 3, page.shape[1])
        if ry1 <= ry0 or rx1 <= rx0:
            return np.full((height, width), 255, np.uint8)
        factor = scale * 1.4
        small = cv2.resize(page[ry0:ry1, rx0:rx1], None, fx=factor, fy=factor,
                           interpolation=cv2.INTER_AREA)
        degree = len(bend) - 1
        return crop_staff(
            small, top=(top - ry0) * factor, bottom=(bottom - ry0) * factor,
            left=(left - rx0) * factor, right=(right - rx0) * factor,
            bend=tuple(c * factor ** (1 - (degree - i)) for i, c in enumerate(bend)),
            height=height,
        )
    xs = x0 + (np.arange(width, dtype=np.float32) + 0.5) / scale
    ys = y0 + (np.arange(height, dtype=np.float32) + 0.5) / scale
    drift = np.polyval(np.asarray(bend, dtype=np.float64), xs - left).astype(np.float32)
    map_x = np.broadcast_to(xs[None, :], (height, width)).astype(np.float32)
    map_y = (ys[:, None] + drift[None, :]).astype(np.float32)
    return cv2.remap(page, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                     borderValue=255)


def ink_mask(page: np.ndarray) -> np.ndarray:
    """Ink as 1, paper as 0: pixels darker than the paper around them, either clearly (a local
    mean threshold) or by a sixth of the paper's own brightness there (estimated by a local
    maximum): thin grey lines beside dense symbols count, shadows and grey paper do not."""
    block = max(int(min(page.shape) / 40) | 1, 15)
    local = cv2.adaptiveThreshold(page, 1, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV,
                                  block, 12)
    smooth = cv2.GaussianBlur(page, (0, 0), 0.8)  # sensor noise and paper grain out
    paper = cv2.blur(cv2.dilate(smooth, np.ones((31, 31), np.uint8)), (31, 31))
    faint = smooth.astype(np.float32) < 0.8 * np.maximum(paper.astype(np.float32), 1.0)
    return (local.astype(bool) | faint).astype(np.uint8)


def line_spacing(lines: np.ndarray) -> float:
    """The distance between staff lines in pixels: the most common distance from the top of
    one vertical run of line pixels to the next, over sampled columns.

    Args:
        lines: the page's long horizontal lines (0/1).
    """
    pitches = np.zeros(256, np.int64)
    for column in lines[:, :: max(lines.shape[1] // 300, 1)].T:
        edges = np.flatnonzero(np.diff(np.concatenate([[0], column, [0]])))
        starts = edges[::2]
        if len(starts) > 1:
            pitches += np.bincount(np.minimum(np.diff(starts), 255), minlength=256)[:256]
    pitches[:3] = 0
    pitches[255] = 0
    return float(pitches.argmax())


def skew_angle(ink: np.ndarray) -> float:
    """The page's turn in degrees (positive: counter-clockwise), from the angle that makes
    the rows of ink most peaked (staff lines horizontal)."""
    scale = min(1.0, 1000 / max(ink.shape))
    small = cv2.resize(ink * 255, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    centre = (small.shape[1] / 2, small.shape[0] / 2)

    def sharpness(angle: float) -> float:
        matrix = cv2.getRotationMatrix2D(centre, angle, 1.0)
        turned = cv2.warpAffine(small, matrix, (small.shape[1], small.shape[0]))
        profile = turned.astype(np.float64).sum(axis=1)
        return float(np.square(np.diff(profile)).sum())

    best = max(np.arange(-MAX_SKEW_DEGREES, MAX_SKEW_DEGREES + 0.01, 0.5), key=sharpness)
    fine = np.arange(best - 0.5, best + 0.51, 0.05)
    return float(max(fine, key=sharpness))


def straighten(page: np.ndarray) -> tuple[np.ndarray, float]:
    """The page turned so that its staff lines are horizontal, and the angle it was turned."""
    angle = skew_angle(ink_mask(page))
    if abs(angle) < 0.05:
        return page, 0.0
    height, width = page.shape
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    turned = cv2.warpAffine(page, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=255)
    return turned, angle


def _line_rows(lines: np.ndarray) -> list[float]:
    """Centres of the row bands where long horizontal lines lie."""
    profile = lines.sum(axis=1).astype(np.float64)
    if profile.max() <= 0:
        return []
    above = profile >= LEAST_LINE_SHARE * profile.max()
    edges = np.flatnonzero(np.diff(np.concatenate([[0], above.astype(np.int8), [0]])))
    centres = []
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        rows = np.arange(start, end)
        centres.append(float((rows * profile[start:end]).sum() / profile[start:end].sum()))
    return centres


def _group_lines(rows: list[float], spacing: float) -> list[list[float]]:
    """Runs of five rows evenly spaced about `spacing` apart: the staves."""
    staves, index = [], 0
    while index + 5 <= len(rows):
        five = rows[index : index + 5]
        gaps = np.diff(five)
        if (
            gaps.min() > 0.5 * spacing and gaps.max() < 1.6 * spacing
            and gaps.max() / gaps.min() < 1.4
        ):
            staves.append(five)
            index += 5
        else:
            index += 1
    return staves


def _staff_rows(lines: np.ndarray, spacing: float) -> list[list[float]]:
    """The five line rows of every staff, top to bottom, each read where its lines are least
    bent: in the middle third of the page, else the left or the right third (short staves)."""
    width = lines.shape[1]
    found: list[list[float]] = []
    for x0, x1 in ((width // 3, 2 * width // 3), (0, width // 3), (2 * width // 3, width)):
        for five in _group_lines(_line_rows(lines[:, x0:x1]), spacing):
            if not any(five[0] <= other[4] and other[0] <= five[4] for other in found):
                found.append(five)
    return sorted(found)


def _extent(
    lines: np.ndarray, five: list[float], spacing: float, *, band: float,
    drift: np.ndarray | None = None,
) -> tuple[int, int]:
    """Columns where at least three of a staff's five lines are present: the longest stretch
    without a gap wider than two spaces.

    Args:
        lines: the page's long horizontal lines (0/1).
        five: the staff's five line rows.
        spacing: distance between lines.
        band: rows above and below each line searched for it.
        drift: per column, how far the lines have drifted from `five` (None: not at all).
    """
    columns = np.arange(lines.shape[1])
    shift = np.zeros(lines.shape[1]) if drift is None else drift
    reach = max(int(round(band)), 1)
    present = np.zeros(lines.shape[1], np.int32)
    for row in five:
        centre = np.round(row + shift).astype(np.int64)
        hit = np.zeros(lines.shape[1], np.uint8)
        for offset in range(-reach, reach + 1):
            hit |= lines[np.clip(centre + offset, 0, lines.shape[0] - 1), columns]
        present += hit
    found = np.flatnonzero(present >= 3)
    if len(found) == 0:
        return 0, 0
    stretches = np.split(found, np.flatnonzero(np.diff(found) > 2 * spacing) + 1)
    longest = max(stretches, key=len)
    return int(longest[0]), int(longest[-1])


def _drift(lines: np.ndarray, five: list[float], left: int, right: int,
           spacing: float) -> np.poly1d:
    """How the staff's lines drift vertically from `five` along x: a quadratic (a cubic on long
    staves) fitted to the
    offset that best matches five evenly spaced lines in strips of the staff (0 when the
    staff is straight or too short to tell)."""
    strip = max(int(6 * spacing), 16)
    reach = int(1.2 * spacing)
    top = int(round(five[0])) - reach
    comb_rows = [int(round(r - five[0])) + reach for r in five]
    xs, offsets = [], []
    for start in range(left, right - strip // 2, strip):
        window = lines[max(top, 0) : int(round(five[4])) + reach + 1, start : start + strip]
        if top < 0 or window.shape[0] < comb_rows[-1] + reach + 1:
            continue
        profile = window.sum(axis=1).astype(np.float64)
        # Every one of the five lines must be there: a comb shifted by a whole space would
        # still find four of them.
        scores = [min(profile[r + d] for r in comb_rows) for d in range(-reach, reach + 1)]
        if max(scores) < 0.5 * window.shape[1]:
            continue
        xs.append(start + window.shape[1] / 2)
        offsets.append(int(np.argmax(scores)) - reach)
    if len(xs) < 4:
        return np.poly1d([0.0])
    xs_array, offsets_array = np.array(xs), np.array(offsets, dtype=np.float64)
    degree = 3 if len(xs) >= 8 else 2
    fitted = np.poly1d(np.polyfit(xs_array, offsets_array, degree))
    inliers = np.abs(fitted(xs_array) - offsets_array) <= max(0.3 * spacing, 1.0)
    if inliers.sum() >= 4 and not inliers.all():
        fitted = np.poly1d(np.polyfit(xs_array[inliers], offsets_array[inliers], degree))
    if np.abs(fitted(xs_array)).max() < 0.5:
        return np.poly1d([0.0])
    return fitted


def _connected(ink: np.ndarray, upper: Staff, lower: Staff) -> bool:
    """Whether a vertical line joins two staves at their left end (a system's barline)."""
    y0, y1 = int(upper.bottom), int(lower.top) + 1
    if y1 <= y0:
        return True
    x0 = max(int(max(upper.left, lower.left) - 1.5 * upper.spacing), 0)
    x1 = int(min(upper.left, lower.left) + 1.5 * upper.spacing) + 1
    region = ink[y0:y1, x0:x1]
    if region.size == 0:
        return False
    return bool((region.mean(axis=0) > 0.9).any())


def find_staves(page: np.ndarray) -> list[Staff]:
    """The staves on a straightened page, top to bottom, grouped into systems.

    Args:
        page: grey page image (see `straighten`).

    Returns:
        Staves with their system and index within it; empty when there is none.
    """
    ink = ink_mask(page)
    # Long horizontal runs of ink: staff lines (thickened a pixel each way first, so that a
    # line slanting across pixel rows still makes long runs), without notes, text or noise.
    thick = cv2.dilate(cv2.morphologyEx(ink, cv2.MORPH_CLOSE, np.ones((1, 3), np.uint8)),
                       np.ones((3, 1), np.uint8))
    length = max(int(page.shape[1] / 40), 15)
    lines = cv2.morphologyEx(thick, cv2.MORPH_OPEN, np.ones((1, length), np.uint8))
    spacing = line_spacing(lines)
    if spacing < 4:
        return []
    columns = np.arange(page.shape[1])
    found: list[Staff] = []
    for five in _staff_rows(lines, spacing):
        # A wide band first finds a bent staff's ends too; then follow its lines there.
        left, right = _extent(lines, five, spacing, band=spacing / 2)
        for _ in range(2):
            drift = _drift(lines, five, left, right, spacing)
            shift = np.clip(drift(columns), -3 * spacing, 3 * spacing)
            left, right = _extent(lines, five, spacing, band=0.4 * spacing, drift=shift)
        if right - left < 10 * spacing:
            continue
        start = float(drift(left))
        # The bend is kept relative to the staff's left end, where top and bottom are given.
        bend = drift(np.poly1d([1.0, float(left)])) - start
        found.append(Staff(top=five[0] + start, bottom=five[4] + start, left=float(left),
                           right=float(right), bend=tuple(float(c) for c in bend.coeffs),
                           system=0, index=0))
    staves: list[Staff] = []
    system, index = 0, 0
    for position, staff in enumerate(found):
        if position > 0:
            if _connected(ink, found[position - 1], staff):
                index += 1
            else:
                system, index = system + 1, 0
        staves.append(replace(staff, system=system, index=index))
    return staves


def cut_staff(page: np.ndarray, staff: Staff, height: int = STAFF_HEIGHT_PX) -> np.ndarray:
    """A found staff as the reader reads it."""
    return crop_staff(page, top=staff.top, bottom=staff.bottom, left=staff.left,
                      right=staff.right, bend=staff.bend, height=height)
