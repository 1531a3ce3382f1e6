"""Library: browse the studio's tracks, find them by title, play, delete, and add your own."""

import streamlit as st

from engine import similar
from engine.compare import MIDI_SUFFIXES
from engine.errors import EngineError
from engine.scored import SCORE_SUFFIXES
from ui import charts, models
from ui.clip import UPLOAD_TYPES
from ui.errors import show_error
from ui.library import (
    add_piece,
    demo_offer,
    reanalyse_offer,
    search_with_track,
    searchable_tracks,
    track_card,
)

_CONFIRM = "library_confirm_delete"  # session_state key: the track id awaiting confirmation

st.title("Library")

try:
    with models.LIBRARY_LOCK:
        library = models.library()
        home = library.home
    count = searchable_tracks()
except EngineError as error:
    show_error(error)
    st.stop()
st.caption(
    f"Every track here is analysed once (genre, moods, and its search segments) and stored in "
    f"`{home}` (set `MUSIC_STUDIO_HOME` to keep it elsewhere). The same audio is never added "
    "twice."
)
reanalyse_offer()

with st.expander("Add your own music", icon=":material/library_add:", expanded=not count):
    uploads = st.file_uploader(
        "Audio, MIDI or score files",
        type=[*UPLOAD_TYPES, *(s.lstrip(".") for s in (*MIDI_SUFFIXES, *SCORE_SUFFIXES))],
        accept_multiple_files=True,
        key="library_uploads",
        help="A MusicXML or MXL score is engraved and played, and its track keeps the score "
        "(for Score search); so is MIDI, made a score, when it can be (else it is rendered "
        "with FluidSynth as sound only).",
    )
    if st.button("Add to library", icon=":material/add:", disabled=not uploads, key="add_uploads"):
        bar = st.progress(0.0, text="Adding…")
        added = already = 0
        for i, upload in enumerate(uploads):
            bar.progress(i / len(uploads), text=f"Analysing {upload.name}…")
            result = add_piece(
                upload.getvalue(),
                upload.name,
                title=similar.title_of(upload.name),
                source=f"upload: {upload.name}",
            )
            if result is not None:
                added += result.new
                already += not result.new
        bar.empty()
        st.success(
            f"{added} added" + (f", {already} already in the library" if already else "") + ".",
            icon=":material/check:",
        )
        count = searchable_tracks()  # the demo offer below sees what was just added

demo_offer(key="library_demo", empty=not count)

title = st.text_input("Find by title", placeholder="e.g. chorale", key="library_title")
with models.LIBRARY_LOCK:
    tracks = library.tracks(title)
if not tracks:
    st.info(
        "No track has that title." if title else "The library has no tracks yet.",
        icon=":material/library_music:",
    )
    st.stop()

st.dataframe(
    [
        {
            "title": t.title,
            "genre": charts.genre_label(t.top_genre) if t.top_genre else "",
            "length": f"{int(t.duration) // 60}:{int(t.duration) % 60:02d}",
            "source": t.source,
        }
        for t in tracks
    ],
    hide_index=True,
    height=min(400, 36 * (len(tracks) + 1)),
)
by_id = {t.track_id: t for t in tracks}
chosen = st.selectbox(
    f"Track ({len(tracks)})",
    list(by_id),
    format_func=lambda track_id: by_id[track_id].title,
    key="library_track",
)
track = by_id[chosen]
track_card(track)

actions = st.container(horizontal=True)
if actions.button("Find similar tracks", icon=":material/travel_explore:", key="find_similar"):
    search_with_track(track.track_id)
if st.session_state.get(_CONFIRM) != track.track_id:
    if actions.button("Delete", icon=":material/delete:", key="delete"):
        st.session_state[_CONFIRM] = track.track_id
        st.rerun()
else:
    st.warning(f"Delete “{track.title}” and its audio from the library?", icon=":material/delete:")
    confirm = st.container(horizontal=True)
    if confirm.button("Yes, delete it", type="primary", key="confirm_delete"):
        with models.LIBRARY_LOCK:
            library.delete_track(track.track_id)
        st.session_state.pop(_CONFIRM, None)
        st.toast(f"Deleted “{track.title}”.", icon=":material/delete:")
        st.rerun()
    if confirm.button("Cancel", key="cancel_delete"):
        st.session_state.pop(_CONFIRM, None)
        st.rerun()
