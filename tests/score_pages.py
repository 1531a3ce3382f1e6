"""Fixtures of sheet music for the score reader's tests: small scores engraved with verovio."""

from __future__ import annotations

import io

import music21
import numpy as np
from PIL import Image

from engine.score.assemble import musicxml_bytes
from engine.score.engrave import Layout, on_verovio_thread, rasterise, staff_boxes, toolkit

MELODY = "C4 D4 E4 F4 G4 A4 B4 C5 B4 A4 G4 F4 E4 D4 C4 C4"


def melody_score(parts: int = 1, bars: int = 4, key: int = 0) -> music21.stream.Score:
    """A score of `parts` staves of a quarter-note scale in 4/4, treble and bass clefs."""
    score = music21.stream.Score()
    for index in range(parts):
        part = music21.stream.Part()
        part.append(music21.clef.TrebleClef() if index % 2 == 0 else music21.clef.BassClef())
        part.append(music21.key.KeySignature(key))
        part.append(music21.meter.TimeSignature("4/4"))
        pitches = MELODY.split()
        for i in range(bars * 4):
            note = music21.note.Note(pitches[i % len(pitches)], quarterLength=1)
            if index % 2:
                note.octave -= 2
            part.append(note)
        score.insert(0, part.makeMeasures())
    return score


@on_verovio_thread
def engraved_page(
    score: music21.stream.Score, *, layout: Layout | None = None, zoom: float = 1.5
) -> tuple[np.ndarray, list]:
    """The score's first page as a grey image, and verovio's staff boxes scaled to it."""
    layout = layout or Layout(header=False, adjust_page_height=True)
    tk = toolkit(layout)
    assert tk.loadData(musicxml_bytes(score).decode())
    svg = tk.renderToSVG(1)
    return rasterise(svg, zoom=zoom), staff_boxes(svg, tk)


def image_bytes(image: np.ndarray, format: str = "PNG") -> bytes:  # noqa: A002 - PIL's word
    """A grey image encoded as PNG, JPEG, TIFF..."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format=format)
    return buffer.getvalue()


def pdf_bytes(pages: list[np.ndarray]) -> bytes:
    """Grey images as the pages of one PDF."""
    frames = [Image.fromarray(page) for page in pages]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PDF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()
