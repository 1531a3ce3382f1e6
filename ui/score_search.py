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
# Chorales of music21's corpus (installed with it) a library can take as example scores: BWV
# 66.6 is also the bundled example clip, BWV 342 the Read page's example page.
EXAMPLE_SCORES = {"bach/bwv66.6": "Bach: chorale BWV 66.6", "bach/bwv342": "Bach: chorale BWV 342",
                  "bach/bwv269": "Bach: chorale BWV 269"}
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


def add_example_scores() -> int:
    """Add the EXAMPLE_SCORES to the library as scored tracks, with progress; how many were
    added (errors are shown)."""
    import music21

    from engine.score.assemble import musicxml_bytes
    from ui.library import add_piece

    added = 0
    bar = st.progress(0.0)
    for number, (name, title) in enumerate(EXAMPLE_SCORES.items()):
        bar.progress(number / len(EXAMPLE_SCORES), text=f"Engraving and playing {title}…")
        xml = musicxml_bytes(music21.corpus.parse(name))
        if add_piece(xml, f"{name.replace('/', '-')}.musicxml", title=title,
                     source=f"example: music21 corpus {name}") is not None:
            added += 1
    bar.empty()
    return added


def snippet_picker() -> tuple[bytes, str] | None:
    """Upload, photograph or choose (the Read page's example pages) a snippet of sheet music:
    its bytes and name, or None."""
    from ui.score import example_pages

    upload, photo = st.columns(2, gap="large")
    snippet = upload.file_uploader(
        "A snippet of sheet music", type=SNIPPET_TYPES, key="score_search_upload",
        help="A photo or scan of a few bars or a whole system, printed, straight on.")
    examples = {example.title: example for example in example_pages()}
    picked = upload.selectbox("…or an example page", list(examples), index=None,
                              placeholder="Choose an example", key="score_search_example")
    taken = photo.camera_input("…or take a photo", key="score_search_camera")
    if snippet is not None or taken is not None:
        given = snippet if snippet is not None else taken
        return given.getvalue(), given.name
    if picked is not None:
        return examples[picked].path.read_bytes(), examples[picked].path.name
    return None


def match_snippet(index: PassageIndex, data: bytes, name: str, k: int) -> list[Hit]:
    """The tracks of `index` (`passage_index`) that play a snippet of sheet music.

    Raises:
        InvalidScore, NoStaves: when the snippet is not an image or holds no staff.
    """
    from engine.score_search import match_image

    with models.MODEL_LOCK:
        return match_image(index, search_model(), data, name=name, k=k)


def match_sound(index: PassageIndex, data: bytes, name: str, k: int) -> list[Hit]:
    """The scores of `index` (`passage_index`) that hold an excerpt of sound (audio or MIDI).

    Raises:
        InvalidAudio, InvalidMidi, NothingToMatch: when it cannot be read, or is silent.
    """
    from engine.score_search import match_audio

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


def hit_figure(index: PassageIndex, hit: Hit) -> go.Figure | None:
    """The engraved page of a hit with its bars outlined (None when the page file is gone)."""
    import cv2

    from engine.scored import PAGE_SPACE_PX

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


def score_card(index: PassageIndex, hit: Hit, key: str) -> None:
    """A score that holds the excerpt: its page with the bars outlined, and a player there."""
    with st.container(border=True):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**{hit.track.title}**")
        head.badge(f"score {hit.score:.2f}", color="blue", icon=":material/equalizer:")
        st.caption(f"Page {hit.page}, system {hit.system}, bars {'–'.join(hit.measures)} · "
                   f"{hit.track.source}")
        figure = hit_figure(index, hit)
        if figure is None:
            st.caption("Its engraved page is missing from the library folder.")
        else:
            st.plotly_chart(figure, key=key)
        sound = track_audio(hit.track)
        if sound is not None:
            st.audio(sound, format="audio/ogg", start_time=int(hit.passage.start))
