"""Engraving with verovio: MusicXML -> SVG pages, where each staff and bar lies on them, and
page images (rasterised with resvg)."""

from __future__ import annotations

import functools
import io
import re
import threading
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

SVG = "{http://www.w3.org/2000/svg}"
FONTS = ("Leipzig", "Bravura", "Gootville", "Leland", "Petaluma")  # verovio's music fonts
LINE = re.compile(r"M([-\d.]+) ([-\d.]+) L([-\d.]+) ([-\d.]+)")  # a staff line's SVG path
UNITS_PER_SPACE = 180  # verovio SVG units between two staff lines at its default unit (9 MEI)
VEROVIO_THREAD = "verovio"  # the name of the one thread that uses verovio
_VEROVIO = ThreadPoolExecutor(max_workers=1, thread_name_prefix=VEROVIO_THREAD)
T = TypeVar("T")


@dataclass(frozen=True)
class Layout:
    """How verovio lays out a page; the defaults are verovio's."""

    font: str = "Leipzig"  # one of FONTS
    page_width: int = 2100  # page width in tenths of a millimetre (A4 is 2100)
    page_height: int = 2970  # page height in tenths of a millimetre
    scale: int = 40  # percent: the engraving's size on the page
    spacing_staff: int = 12  # least space between the staves of a system (MEI units)
    spacing_system: int = 12  # least space between systems (MEI units)
    spacing_linear: float = 0.25  # horizontal spacing: linear factor
    spacing_non_linear: float = 0.6  # horizontal spacing: non-linear factor
    staff_line_width: float = 0.15  # staff line thickness (MEI units)
    stem_width: float = 0.2  # stem thickness
    lyric_size: float = 4.5  # lyric text size (MEI units)
    header: bool = True  # title and composer above the first system
    adjust_page_height: bool = False  # crop the page to its content (one-page snippets)
    breaks: str = "auto"  # "auto" fills systems; "none" puts everything on one system

    def options(self) -> dict:
        """The verovio toolkit options for this layout."""
        return {
            "font": self.font,
            "pageWidth": self.page_width,
            "pageHeight": self.page_height,
            "scale": self.scale,
            "spacingStaff": self.spacing_staff,
            "spacingSystem": self.spacing_system,
            "spacingLinear": self.spacing_linear,
            "spacingNonLinear": self.spacing_non_linear,
            "staffLineWidth": self.staff_line_width,
            "stemWidth": self.stem_width,
            "lyricSize": self.lyric_size,
            "header": "auto" if self.header else "none",
            "footer": "none",
            "adjustPageHeight": self.adjust_page_height,
            "breaks": self.breaks,
            "svgViewBox": False,
            "xmlIdSeed": 1,
        }


@dataclass(frozen=True)
class StaffBox:
    """Where one staff of one system lies on a page image, in pixels."""

    system: int  # system index on the page, top to bottom
    staff: int  # staff index within the system, top to bottom
    top: float  # y of the top staff line
    bottom: float  # y of the bottom staff line
    left: float  # x where the staff lines start
    right: float  # x where they end
    measures: tuple[str, ...]  # the bar numbers ("n") the system holds, left to right
    bar_edges: tuple[float, ...] = ()  # x where each bar starts, then where the last one ends

    @property
    def spacing(self) -> float:
        """Distance between two staff lines."""
        return (self.bottom - self.top) / 4


def on_verovio_thread(function: Callable[..., T]) -> Callable[..., T]:
    """Run the decorated function on the one thread of this process that uses verovio.

    Verovio reads MusicXML only on the first thread that used it (6.4.1: loadData returns
    False on any other), and Streamlit runs every rerun of a page on a new thread; its
    maintainers advise one thread as a "rendering server". Everything that makes or uses a
    toolkit goes through here.
    """

    @functools.wraps(function)
    def on_thread(*args: object, **kwargs: object) -> T:
        if threading.current_thread().name.startswith(VEROVIO_THREAD):
            return function(*args, **kwargs)
        return _VEROVIO.submit(function, *args, **kwargs).result()

    return on_thread


def toolkit(layout: Layout):  # -> verovio.toolkit
    """A verovio toolkit set up for `layout` (verovio is imported here: it is heavy).

    Raises:
        RuntimeError: when called off the verovio thread (see `on_verovio_thread`).
    """
    import verovio

    if not threading.current_thread().name.startswith(VEROVIO_THREAD):
        raise RuntimeError("verovio is used off its thread: call it through on_verovio_thread")

    verovio.enableLog(verovio.LOG_OFF)
    tk = verovio.toolkit()
    tk.setOptions(layout.options())
    return tk


@on_verovio_thread
def engrave(data: str, layout: Layout = Layout()) -> list[str]:
    """Engrave MusicXML (or MEI, ABC, Humdrum) text into one SVG string per page.

    Raises:
        ValueError: when verovio cannot read the data.
    """
    tk = toolkit(layout)
    if not tk.loadData(data):
        raise ValueError("verovio could not read the score")
    return [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]


def _translate(element: ElementTree.Element) -> tuple[float, float]:
    match = re.search(r"translate\(([-\d.]+),\s*([-\d.]+)\)", element.get("transform", ""))
    return (float(match.group(1)), float(match.group(2))) if match else (0.0, 0.0)


def staff_boxes(svg: str, tk=None) -> list[StaffBox]:  # noqa: ANN001 - verovio toolkit
    """Every staff of every system on an SVG page, in the page's pixels.

    Args:
        svg: one page from `engrave`.
        tk: the toolkit that engraved it, to read each bar's number; without it bars are
            named by their SVG ids.
    """
    root = ElementTree.fromstring(svg)
    width_px = float(root.get("width", "0").removesuffix("px"))
    inner = root.find(f"{SVG}svg")
    assert inner is not None
    view = [float(v) for v in inner.get("viewBox", "0 0 1 1").split()]
    to_px = width_px / view[2]
    margin = next(
        (g for g in inner.iter(f"{SVG}g") if "page-margin" in g.get("class", "")), None
    )
    dx, dy = _translate(margin) if margin is not None else (0.0, 0.0)
    boxes: list[StaffBox] = []
    systems = [g for g in inner.iter(f"{SVG}g") if g.get("class") == "system"]
    for system_index, system in enumerate(systems):
        extents: dict[int, list[float]] = {}
        numbers: list[str] = []
        edges: list[tuple[float, float]] = []  # each bar's left and right end
        for measure in system.iter(f"{SVG}g"):
            if "measure" not in measure.get("class", "").split():
                continue
            ident = measure.get("id", "")
            numbers.append(tk.getElementAttr(ident).get("n", ident) if tk else ident)
            staves = [g for g in measure if g.get("class") == "staff"]
            for staff_index, staff in enumerate(staves):
                lines = []
                for path in staff.findall(f"{SVG}path"):
                    match = LINE.match(path.get("d", ""))
                    if match:
                        lines.append([float(v) for v in match.groups()])
                if len(lines) < 5:
                    continue
                lines = lines[:5]
                x0 = min(min(line[0], line[2]) for line in lines)
                x1 = max(max(line[0], line[2]) for line in lines)
                y0, y1 = lines[0][1], lines[4][1]
                box = extents.setdefault(staff_index, [x0, x1, y0, y1])
                box[0], box[1] = min(box[0], x0), max(box[1], x1)
                if staff_index == 0:
                    edges.append((x0, x1))
        lefts = [left for left, _ in edges] + [right for _, right in edges[-1:]]
        bar_edges = tuple((x + dx) * to_px for x in lefts)
        for staff_index, (x0, x1, y0, y1) in sorted(extents.items()):
            boxes.append(
                StaffBox(
                    system=system_index,
                    staff=staff_index,
                    top=(y0 + dy) * to_px,
                    bottom=(y1 + dy) * to_px,
                    left=(x0 + dx) * to_px,
                    right=(x1 + dx) * to_px,
                    measures=tuple(numbers),
                    bar_edges=bar_edges,
                )
            )
    return boxes


def rasterise(svg: str, *, zoom: float = 1.0) -> np.ndarray:
    """An SVG page as a grey image (uint8, white paper, black ink) at `zoom` x its pixel size."""
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, background="#ffffff", zoom=zoom)
    return np.asarray(Image.open(io.BytesIO(bytes(png))).convert("L"))
