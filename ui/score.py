"""The Read page's Streamlit side: the shared staff reader, reading an uploaded page once per
session, the reading's engraving and sound, corrections, and sending the piece on."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import streamlit as st

from engine.errors import EngineError
from ui import charts, models
from ui.clip import compare_the_current_clip, set_current_clip

if TYPE_CHECKING:
    from engine.score.reader import LoadedReader
    from engine.score.reading import ReadStaff, ScoreReading

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "scores"
PAGE_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp", "pdf"]
_READINGS = "score_readings"  # session_state key: {sha256: ScoreReading} as read, then corrected
KEPT_READINGS = 3  # readings kept per session (each holds its page images), newest last
_CURRENT = "score_current"  # session_state key: sha256 of the reading on show
_PROMPT = "score_prompt_midi"  # session_state key: (name, MIDI bytes) offered to Generate
READ_START = "Continue the score I read"  # the Generate page's start option for it


@dataclass(frozen=True)
class ExamplePage:
    """A bundled page of sheet music (see examples/scores/README.md)."""

    title: str  # what the person sees
    path: Path  # the image in examples/scores/


@st.cache_resource(show_spinner="Loading the score reader…")
def score_reader() -> LoadedReader:
    """The shipped staff reader, loaded once per server.

    Raises:
        ModelUnavailable: when checkpoints/score_reader.pt is missing or unreadable.
    """
    from engine.score.reader import load_reader

    return load_reader()


def example_pages() -> list[ExamplePage]:
    """The bundled example pages, as listed in examples/scores/index.json."""
    index = EXAMPLES / "index.json"
    if not index.is_file():
        return []
    entries = json.loads(index.read_text())
    return [ExamplePage(e["title"], EXAMPLES / e["file"]) for e in entries
            if (EXAMPLES / e["file"]).is_file()]


def read_file(data: bytes, name: str) -> ScoreReading:
    """Read a page image or PDF once per session (corrections are kept with it).

    Raises:
        InvalidScore, ModelUnavailable: for unreadable files or a missing model.
    """
    from engine.score.reading import read_score

    key = models.sha256_of(data)
    readings = st.session_state.setdefault(_READINGS, {})
    st.session_state[_CURRENT] = key
    if key in readings:
        readings[key] = readings.pop(key)  # now the newest
        return readings[key]
    reader = score_reader()
    bar = st.progress(0.0, text=f"Reading {name}…")
    try:
        with models.MODEL_LOCK:
            reading = read_score(data, reader, name=name,
                                 progress=lambda share, text: bar.progress(share, text=text))
    finally:
        bar.empty()
    readings[key] = reading
    while len(readings) > KEPT_READINGS:
        readings.pop(next(iter(readings)))
    return reading


def reading_key() -> str:
    """A short name of the reading on show, for widget keys: a new file gets new widgets."""
    return st.session_state.get(_CURRENT, "")[:12]


def correct_staff(reading: ScoreReading, index: int, text: str) -> ScoreReading:
    """Replace one staff's symbols with typed ones and keep the corrected reading.

    Raises:
        InvalidScore: naming the words that are not symbols.
    """
    from engine.score.reading import parse_tokens, with_staff_tokens

    corrected = with_staff_tokens(reading, index, parse_tokens(text))
    st.session_state[_READINGS][st.session_state[_CURRENT]] = corrected
    return corrected


def page_figure(reading: ScoreReading, page: int):  # -> plotly Figure
    """One page with its staves outlined and the unsure symbols marked."""
    from engine.score.staves import SIDE_SPACES

    boxes, unsure = [], []
    for staff in reading.staves:
        if staff.page != page:
            continue
        geometry = staff.staff
        boxes.append((geometry.left, geometry.top, geometry.right, geometry.bottom,
                      geometry.system, f"S{geometry.system + 1}.{geometry.index + 1}"))
        x0 = geometry.left - SIDE_SPACES * geometry.spacing
        width = geometry.right - geometry.left + 2 * SIDE_SPACES * geometry.spacing
        middle = (geometry.top + geometry.bottom) / 2
        unsure += [(x0 + symbol.column * width, middle,
                    f"{symbol.token}: {symbol.confidence:.0%} sure") for symbol in staff.unsure]
    return charts.score_page(reading.pages[page], boxes, unsure)


def staff_text(staff: ReadStaff) -> str:
    """A staff's symbols as editable text: one bar per line."""
    from engine.score.encoding import BARLINE_TOKENS, REPEAT_START

    lines, current = [], []
    for token in staff.tokens:
        current.append(token)
        if token in BARLINE_TOKENS and token != REPEAT_START:
            lines.append(" ".join(current))
            current = []
    if current:
        lines.append(" ".join(current))
    return "\n".join(lines)


def unsure_markdown(staff: ReadStaff) -> str:
    """The staff's symbols with the unsure ones in red and their confidence."""
    from engine.score.reader import UNSURE_BELOW

    return " ".join(
        f":red[**{s.token}** ({s.confidence:.0%})]" if s.confidence < UNSURE_BELOW
        else s.token.replace("|", "\\|")
        for s in staff.symbols
    ) or "(nothing read)"


@st.cache_data(show_spinner=False, max_entries=64)
def engraving(musicxml: bytes, *, width: int = 2100) -> list[str]:
    """SVG pages of a score engraved by verovio (empty when verovio cannot lay it out)."""
    from engine.score.engrave import Layout, engrave

    try:
        return engrave(musicxml.decode("utf-8"), Layout(page_width=width, scale=40,
                                                        header=False, adjust_page_height=True))
    except ValueError:
        return []


def system_engraving(reading: ScoreReading, page: int, system: int) -> list[str]:
    """One system of the reading engraved on its own, to set under its image (empty when
    what was read cannot be written)."""
    parts = tuple(tuple(staff.tokens) for _, staff in reading.system_staves(page, system))
    try:
        return engraving(_parts_musicxml(parts), width=3000)
    except EngineError:
        return []


@st.cache_data(show_spinner=False, max_entries=256)
def _parts_musicxml(parts: tuple[tuple[str, ...], ...]) -> bytes:
    from engine.score.assemble import build_score, musicxml_bytes

    return musicxml_bytes(build_score([list(tokens) for tokens in parts]))


def system_image(reading: ScoreReading, page: int, system: int) -> np.ndarray:
    """The part of the page that holds one system."""
    staves = [staff.staff for _, staff in reading.system_staves(page, system)]
    spacing = staves[0].spacing
    image = reading.pages[page]
    top = int(max(min(s.top for s in staves) - 4 * spacing, 0))
    bottom = int(min(max(s.bottom for s in staves) + 4 * spacing, image.shape[0]))
    left = int(max(min(s.left for s in staves) - 3 * spacing, 0))
    right = int(min(max(s.right for s in staves) + spacing, image.shape[1]))
    return image[top:bottom, left:right]


@st.cache_data(show_spinner="Rendering…", max_entries=32)
def rendered_wav(midi: bytes, name: str) -> bytes:
    """The score's MIDI rendered with FluidSynth, as WAV bytes.

    Raises:
        InvalidMidi, RenderingUnavailable: when it has no notes or cannot be rendered here.
    """
    from engine.audio import SAMPLE_RATE, encode_wav
    from engine.synth import render_midi

    return encode_wav(render_midi(midi, name=name), SAMPLE_RATE)


def stem(reading: ScoreReading) -> str:
    """File name stem for downloads."""
    return Path(reading.name).stem or "score"


def send_to_page(reading: ScoreReading, page: str) -> None:
    """Make the read score's sound the current clip and open Compare (as the piece compared)
    or Classify."""
    try:
        wav = rendered_wav(reading.midi, f"{stem(reading)}.mid")
    except EngineError as error:
        from ui.errors import show_error

        show_error(error)
        return
    set_current_clip(wav, f"{stem(reading)}.wav", source="score")
    if page == "compare":
        compare_the_current_clip()
    st.switch_page(f"app_pages/{page}.py")


def send_to_generate(reading: ScoreReading) -> None:
    """Offer the read score to Generate as a prompt to continue, and open it."""
    st.session_state[_PROMPT] = (f"{stem(reading)}.mid", reading.midi)
    st.session_state["generate_start"] = READ_START
    st.switch_page("app_pages/generate.py")


def read_prompt() -> tuple[str, bytes] | None:
    """The score the Read page offered to Generate: (file name, MIDI), if any."""
    return st.session_state.get(_PROMPT)
