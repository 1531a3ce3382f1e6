"""Passages for cross-modal search: a few bars of an engraved system and the audio under them.

A passage is a window over a system measured in bars: its image is the system's strip
between the window's x-positions, its audio the log-mel between the window's times, both
resized to the fixed sizes the cross-modal model reads (`engine.models.crossmodal`), so a
passage at any tempo and any engraving width becomes the same two inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from engine.audio import SAMPLE_RATE
from engine.features import HOP_LENGTH, TOP_DB
from engine.models.crossmodal import AUDIO_SIZE, SHEET_SIZE
from engine.score.timemap import SystemSpan

FRAMES_PER_SECOND = SAMPLE_RATE / HOP_LENGTH
WINDOW_BARS = 2  # bars per passage of a library score
SPACE_PX = 6.0  # pixels per staff space in the system strips passages are cut from
MARGIN_SPACES = 4.0  # staff spaces kept above a system's top line and below its bottom line


@dataclass(frozen=True)
class Window:
    """A passage of one system: bars first..last (indices in the system), its extent and time."""

    first: int
    last: int
    left: float  # x in the system's strip, pixels
    right: float
    start: float  # seconds in the audio
    end: float


def along(edges: Sequence[float], position: float) -> float:
    """The value at a fractional bar position, linear within bars (edges: one per bar start
    and one for the last bar's end)."""
    index = min(max(int(position), 0), len(edges) - 2)
    share = min(max(position - index, 0.0), 1.0)
    return edges[index] + share * (edges[index + 1] - edges[index])


def system_strip(page: np.ndarray, system: SystemSpan, space_px: float = SPACE_PX
                 ) -> tuple[np.ndarray, list[list[float]]]:
    """A system cut out of its engraved page (`space_px` pixels per staff space) and brought to
    SPACE_PX, with its bars [left, right, start, end] relative to the cut."""
    margin = MARGIN_SPACES * space_px
    top = max(int(system.top - margin), 0)
    bottom = min(int(system.bottom + margin), page.shape[0])
    left = max(int(system.bars[0].left - space_px), 0)
    right = min(int(system.bars[-1].right + space_px), page.shape[1])
    strip = np.ascontiguousarray(page[top:bottom, left:right])
    scale = SPACE_PX / space_px
    if scale != 1.0:
        size = (max(round(strip.shape[1] * scale), 1), max(round(strip.shape[0] * scale), 1))
        strip = cv2.resize(strip, size, interpolation=cv2.INTER_AREA)
    bars = [[(b.left - left) * scale, (b.right - left) * scale, b.start, b.end]
            for b in system.bars]
    return strip, bars


def window(bars: Sequence[Sequence[float]], first: float, last: float) -> Window:
    """The passage from fractional bar position `first` to `last` of a system whose bars are
    [left, right, start, end] each."""
    lefts = [bar[0] for bar in bars] + [bars[-1][1]]
    starts = [bar[2] for bar in bars] + [bars[-1][3]]
    return Window(int(first), int(np.ceil(last)) - 1, along(lefts, first), along(lefts, last),
                  along(starts, first), along(starts, last))


def bar_windows(bars: Sequence[Sequence[float]], size: int = WINDOW_BARS) -> list[Window]:
    """Windows of `size` bars, one bar apart, over a system (one window if it is shorter)."""
    count = len(bars)
    if count <= size:
        return [window(bars, 0, count)]
    return [window(bars, first, first + size) for first in range(count - size + 1)]


def sheet_input(strip: np.ndarray, left: float, right: float) -> np.ndarray:
    """A window of a grey system strip (paper white) as the model reads it: SHEET_SIZE,
    float32, ink 1 and paper 0."""
    start = int(np.clip(np.floor(left), 0, strip.shape[1] - 1))
    stop = int(np.clip(np.ceil(right), start + 1, strip.shape[1]))
    crop = strip[:, start:stop]
    resized = cv2.resize(crop, (SHEET_SIZE[1], SHEET_SIZE[0]), interpolation=cv2.INTER_AREA)
    return (255 - resized.astype(np.float32)) / 255


def audio_input(mel: np.ndarray, start: float, end: float) -> np.ndarray:
    """The log-mel (dB, floor -TOP_DB) between two times as the model reads it: AUDIO_SIZE,
    float32 in [0, 1]."""
    first = int(np.clip(np.floor(start * FRAMES_PER_SECOND), 0, mel.shape[1] - 1))
    last = int(np.clip(np.ceil(end * FRAMES_PER_SECOND), first + 1, mel.shape[1]))
    crop = mel[:, first:last].astype(np.float32)
    resized = cv2.resize(crop, (AUDIO_SIZE[1], AUDIO_SIZE[0]), interpolation=cv2.INTER_LINEAR)
    return np.clip((resized + TOP_DB) / TOP_DB, 0.0, 1.0)
