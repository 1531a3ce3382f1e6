"""Where each system of an engraved score sounds: verovio's pages joined to its time map.

A score engraved here keeps, per system, the bars it holds, where it lies on its page and
when it sounds in the audio rendered from verovio's own MIDI of the same score, so a passage
found on a page can be played, and a moment of the audio shown on its page.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np

from engine.score.engrave import Layout, on_verovio_thread, rasterise, staff_boxes, toolkit

TAIL_SECONDS = 1.0  # the last system sounds this long after its last note starts and ends


@dataclass(frozen=True)
class BarSpan:
    """One bar of an engraved system: where it lies across the page and when it sounds."""

    number: str  # its bar number ("n")
    left: float  # x on the page image where it starts, in pixels
    right: float  # and where it ends
    start: float  # seconds into the score's audio where it starts
    end: float  # where the next bar starts (the end of the music for the last one)


@dataclass(frozen=True)
class SystemSpan:
    """One system of an engraved score: its bars, its box on its page, its time in the audio."""

    page: int  # page index from 0
    system: int  # system index on its page, top to bottom
    bars: tuple[BarSpan, ...]  # left to right
    top: float  # y of its first staff's top line on the page image, in pixels
    bottom: float  # y of its last staff's bottom line

    @property
    def start(self) -> float:
        """Seconds into the audio where the system starts."""
        return self.bars[0].start

    @property
    def end(self) -> float:
        """Seconds into the audio where the next system starts."""
        return self.bars[-1].end

    def x_at(self, seconds: float) -> float:
        """Where on the page the music at `seconds` is (linear within a bar)."""
        for bar in self.bars:
            if seconds < bar.end or bar is self.bars[-1]:
                share = (seconds - bar.start) / max(bar.end - bar.start, 1e-6)
                return bar.left + min(max(share, 0.0), 1.0) * (bar.right - bar.left)
        return self.bars[-1].right


@dataclass
class TimedScore:
    """An engraved score with each system's place on the page and in time."""

    pages: list[np.ndarray]  # grey page images
    systems: list[SystemSpan]  # every system of every page, in reading order
    midi: bytes  # verovio's MIDI of the score: render it for audio that matches the spans

    def system_at(self, seconds: float) -> SystemSpan | None:
        """The system sounding at `seconds` into the audio (None past the end)."""
        return next((s for s in self.systems if s.start <= seconds < s.end), None)


@on_verovio_thread
def timed_score(musicxml: str, layout: Layout | None = None, zoom: float = 1.0,
                tempo_scale: float = 1.0) -> TimedScore:
    """Engrave MusicXML with verovio and time every bar of every system.

    The score plays at its own tempo marks (120 quarters a minute without any), times
    `tempo_scale`.

    Raises:
        ValueError: when verovio cannot read the score or it holds no bars.
    """
    tk = toolkit(layout or Layout())
    tk.setOptions({"midiTempoAdjustment": tempo_scale})
    if not tk.loadData(musicxml):
        raise ValueError("verovio could not read the score")
    starts: dict[str, float] = {}
    last_event = 0.0
    for event in tk.renderToTimemap({"includeMeasures": True, "includeRests": True}):
        seconds = float(event.get("tstamp", 0)) / 1000
        last_event = max(last_event, seconds)
        if "measureOn" in event:
            starts.setdefault(event["measureOn"], seconds)
    pages, found = [], []
    for number in range(1, tk.getPageCount() + 1):
        svg = tk.renderToSVG(number)
        pages.append(rasterise(svg, zoom=zoom))
        by_system: dict[int, list] = {}
        for box in staff_boxes(svg):
            by_system.setdefault(box.system, []).append(box)
        for system, boxes in sorted(by_system.items()):
            first = boxes[0]
            bars = [(ident, first.bar_edges[i] * zoom, first.bar_edges[i + 1] * zoom)
                    for i, ident in enumerate(first.measures) if ident in starts]
            if bars:
                found.append((number - 1, system, bars, first.top * zoom, boxes[-1].bottom * zoom))
    if not found:
        raise ValueError("the score has no bars to engrave")
    # A bar ends where the next one starts; the last where the music ends.
    timeline = [starts[ident] for *_, bars, _, _ in found for ident, _, _ in bars]
    ends = iter([*timeline[1:], last_event + TAIL_SECONDS])
    systems = []
    for page, system, bars, top, bottom in found:
        spans = tuple(
            BarSpan(number=tk.getElementAttr(ident).get("n", ident), left=left, right=right,
                    start=starts[ident], end=max(next(ends), starts[ident]))
            for ident, left, right in bars
        )
        systems.append(SystemSpan(page=page, system=system, bars=spans, top=top, bottom=bottom))
    return TimedScore(pages, systems, base64.b64decode(tk.renderToMIDI()))
