"""The Score search page's Streamlit side: the shared cross-modal model, the library's passages
(cut once per set of scored tracks, with progress), both searches, and how a hit is shown."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import streamlit as st

from ui import charts, models
from ui.library import track_audio

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from engine.score_search import Hit, PassageIndex, SearchModel

SNIPPET_TYPES = ["png", "jpg", "jpeg", "tif", "tiff", "bmp", "webp", "pdf"]
_INDEX_LOCK = threading.Lock()  # one session cuts the library's passages; the others wait


@st.cache_resource(show_spinner="Loading the score search model…")
def search_model() -> SearchModel:
    """The shipped cross-modal model, loaded once per server.

    Raises:
        ModelUnavailable: when checkpoints/crossmodal.pt is missing or unreadable.
    """
    from engine.score_search import load_model

    return load_model()


@st.cache_resource(show_spinner=False)
def _indexes() -> dict[str, PassageIndex]:
    """The passage index of the current scored tracks, by stamp (one kept), per server."""
    return {}


def passage_index() -> PassageIndex:
    """The library's passages, cut (with a progress bar) when its scored tracks changed.

    Raises:
        NothingToMatch: when no track of the library keeps a score.
        ModelUnavailable: when the model is missing.
    """
    from engine.score_search import index_stamp
    from engine.score_search import passage_index as build

    model = search_model()
    with _INDEX_LOCK:
        with models.LIBRARY_LOCK:
            stamp = index_stamp(models.library(), model)
        kept = _indexes()
        if stamp not in kept:
            bar = st.progress(0.0, text="Cutting the library's scores into passages…")
            try:
                with models.LIBRARY_LOCK, models.MODEL_LOCK:
                    index = build(models.library(), model,
                                  progress=lambda share, text: bar.progress(share, text=text))
            finally:
                bar.empty()
            kept.clear()
            kept[stamp] = index
        return kept[stamp]


def match_snippet(data: bytes, name: str, k: int) -> list[Hit]:
    """The tracks that play a snippet of sheet music.

    Raises:
        InvalidScore, NoStaves, NothingToMatch, ModelUnavailable: as the engine says.
    """
    from engine.score_search import match_image

    index = passage_index()
    with models.MODEL_LOCK:
        return match_image(index, search_model(), data, name=name, k=k)


def match_sound(data: bytes, name: str, k: int) -> list[Hit]:
    """The scores that hold an excerpt of sound (audio or MIDI).

    Raises:
        InvalidAudio, InvalidMidi, NothingToMatch, ModelUnavailable: as the engine says.
    """
    from engine.score_search import match_audio

    index = passage_index()
    clip = models.load_music(data, name)
    with models.MODEL_LOCK:
        return match_audio(index, search_model(), clip, k=k)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}:{rest:02d}"


def recording_card(hit: Hit) -> None:
    """A track that plays the snippet, with a player that starts where it does."""
    with st.container(border=True):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**{hit.track.title}**")
        head.badge(f"score {hit.score:.2f}", color="blue", icon=":material/equalizer:")
        st.caption(f"Plays it at {_clock(hit.passage.start)}–{_clock(hit.passage.end)} "
                   f"(page {hit.page}, system {hit.system}, bars {'–'.join(hit.measures)}) · "
                   f"{hit.track.source}")
        sound = track_audio(hit.track)
        if sound is None:
            st.caption("Its audio file is missing from the library folder.")
        else:
            st.audio(sound, format="audio/ogg", start_time=int(hit.passage.start))


def hit_figure(hit: Hit) -> go.Figure | None:
    """The engraved page of a hit with its bars outlined (None when the page file is gone)."""
    import cv2

    from engine.scored import PAGE_SPACE_PX

    index = passage_index()
    score = index.scores[hit.track.track_id]
    system = score.systems[hit.passage.system]
    page = cv2.imread(str(score.pages[system.page]), cv2.IMREAD_GRAYSCALE)
    if page is None:
        return None
    first, last = system.bars[hit.passage.first], system.bars[hit.passage.last]
    margin = 2 * PAGE_SPACE_PX
    box = (first.left, system.top - margin, last.right, system.bottom + margin, 0,
           f"bars {'–'.join(hit.measures)}")
    return charts.score_page(page, [box], [])


def score_card(hit: Hit, key: str) -> None:
    """A score that holds the excerpt: its page with the bars outlined, and a player there."""
    with st.container(border=True):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**{hit.track.title}**")
        head.badge(f"score {hit.score:.2f}", color="blue", icon=":material/equalizer:")
        st.caption(f"Page {hit.page}, system {hit.system}, bars {'–'.join(hit.measures)} · "
                   f"{hit.track.source}")
        figure = hit_figure(hit)
        if figure is None:
            st.caption("Its engraved page is missing from the library folder.")
        else:
            st.plotly_chart(figure, key=key)
        sound = track_audio(hit.track)
        if sound is not None:
            st.audio(sound, format="audio/ogg", start_time=int(hit.passage.start))
