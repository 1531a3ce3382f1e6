"""Similar: the library tracks that sound most like a clip, a library track or a generated piece."""

import streamlit as st

from engine import similar
from engine.errors import EngineError
from engine.genre import GENRES
from ui import charts, models
from ui.clip import clip_picker, clip_player, set_current_clip
from ui.errors import show_error
from ui.generation import chosen_track
from ui.library import (
    add_piece,
    added_toast,
    demo_offer,
    forget_query_track,
    library_track_picker,
    query_track,
    reanalyse_offer,
    searchable_tracks,
    show_notices,
    track_card,
)

ALL_GENRES = "Any genre"

st.title("Similar")
st.caption(
    "Which tracks of your library sound most like a clip? Every track is indexed as "
    "overlapping 10-second segments, so an excerpt finds the whole piece it comes from; "
    "tracks are ranked by how closely their best segments match (score 1 is identical)."
)

try:
    count = searchable_tracks()
except EngineError as error:
    show_error(error)
    st.stop()
demo_offer(key="similar_demo", empty=not count)
reanalyse_offer()

with models.LIBRARY_LOCK:
    library = models.library()
    track_id = query_track()
    query_track_row = library.track(track_id) if track_id is not None else None

if query_track_row is not None:
    with st.container(border=True):
        row = st.container(horizontal=True, vertical_alignment="center")
        row.markdown(f"Searching with the library track **{query_track_row.title}**.")
        if row.button("Search with a clip instead", icon=":material/upload_file:"):
            forget_query_track()
            st.rerun()
        track_card(query_track_row)
    clip = None
else:
    generated = chosen_track()
    if (
        generated is not None
        and generated.wav is not None
        and st.button(
            f"Search with the generated piece ({generated.title})",
            icon=":material/piano:",
            key="use_generated",
        )
    ):
        set_current_clip(generated.wav, f"{generated.file_stem}.wav", source="generated")
    clip = clip_picker()
    library_track_picker()
    if clip is None:
        st.info(
            "Upload, record or choose a clip (or pick a track on the Library page) to find "
            "the tracks like it.",
            icon=":material/travel_explore:",
        )
        st.stop()
    clip_player(clip)

controls = st.columns([1, 1, 2], vertical_alignment="bottom")
k = controls[0].slider("Tracks to show", 1, 20, 5, key="similar_k")
genre = controls[1].selectbox(
    "Genre", [ALL_GENRES, *GENRES], format_func=lambda g: g if g == ALL_GENRES else g.title()
)

if clip is not None:
    summary = st.container(horizontal=True, vertical_alignment="center")
    try:
        prediction = models.classify_bytes(clip.data, clip.name)
        moods = models.moods_bytes(clip.data, clip.name)
    except EngineError:
        pass  # the clip's own genre and moods are a courtesy; the search stands without them
    else:
        summary.markdown(
            f"The clip sounds like **{charts.genre_label(prediction.top)}**, "
            f"{', '.join(moods.top_tags)}."
        )
    if summary.button("Add to library", icon=":material/library_add:", key="add_query"):
        title = similar.title_of(clip.name)
        added = add_piece(clip.data, clip.name, title=title, source=f"{clip.source}: {clip.name}")
        if added is not None:
            added_toast(added)

try:
    with st.spinner("Listening and searching…", show_time=True):
        if clip is not None:
            query = models.describe_bytes(clip.data, clip.name).segments
        else:
            with models.LIBRARY_LOCK:
                query = library.track_segments(query_track_row.track_id)
            if query is None:
                st.info(
                    "This track was stored before the studio could search: add its file again "
                    "(Library page) to make it searchable.",
                    icon=":material/search_off:",
                )
                st.stop()
        with models.LIBRARY_LOCK:
            matches = similar.search(
                library,
                query,
                k=k,
                genre=None if genre == ALL_GENRES else genre,
                exclude=None if clip is not None else query_track_row.track_id,
            )
except similar.EmptyLibrary as error:
    st.info(str(error), icon=":material/library_music:")
    st.stop()
except EngineError as error:
    show_error(error)
    st.stop()
show_notices()

if not matches:
    st.info(
        "No track of the library matches"
        + (f" in {genre.title()}" if genre != ALL_GENRES else "")
        + ".",
        icon=":material/search_off:",
    )
    st.stop()

st.subheader(f"The {len(matches)} closest tracks")
for match in matches:
    track_card(match.track, match=match)
