"""Score search: a snippet of sheet music finds the recordings that play it, and where; an
excerpt of sound finds the scores that hold it, with the page, system and bars."""

import streamlit as st

from engine.errors import EngineError
from engine.score_search import NothingToMatch
from ui import score_search
from ui.clip import clip_picker, clip_player
from ui.errors import show_error

st.title("Score search")
st.caption(
    "Between sheet music and sound, over the library's tracks that keep a score (MusicXML, "
    "MXL or MIDI added on the Library page, or a page read on the Read page). Each score is "
    "cut into passages of two bars; a query is matched passage by passage."
)

try:
    index = score_search.passage_index()
except NothingToMatch as error:
    st.info(f"{error} Then search here.", icon=":material/library_music:")
    added = st.button("Add three example scores (Bach chorales)", icon=":material/library_add:",
                      key="score_search_examples") and score_search.add_example_scores()
    if added:
        st.rerun()
    st.stop()
except EngineError as error:
    show_error(error)
    st.stop()

for reason in index.skipped:
    st.warning(f"Left out of the search: {reason}", icon=":material/warning:")
k = st.slider("Results to show", 1, 10, 3, key="score_search_k")
sheet_tab, sound_tab = st.tabs([":material/image_search: Sheet music → recordings",
                                ":material/hearing: Sound → scores"])

with sheet_tab:
    chosen = score_search.snippet_picker()
    if chosen is None:
        st.info("Upload, photograph or choose a few bars to find the recordings that play them.",
                icon=":material/image_search:")
    else:
        data, name = chosen
        if not name.lower().endswith(".pdf"):
            st.image(data, caption=name, width=480)
        try:
            with st.spinner("Reading the snippet and searching…", show_time=True):
                hits = score_search.match_snippet(index, data, name, k)
        except EngineError as error:
            show_error(error)
        else:
            st.subheader("Recordings that play it, best first")
            for hit in hits:
                score_search.recording_card(hit)

with sound_tab:
    clip = clip_picker()
    if clip is None:
        st.info("Upload, record or choose a clip to find the scores and bars it plays.",
                icon=":material/hearing:")
    else:
        clip_player(clip, download=False)
        try:
            with st.spinner("Listening and searching…", show_time=True):
                hits = score_search.match_sound(index, clip.data, clip.name, k)
        except EngineError as error:
            show_error(error)
        else:
            st.subheader("Scores that hold it, best first")
            for number, hit in enumerate(hits):
                score_search.score_card(index, hit, key=f"score_search_page_{number}")
