"""The studio library in the app: adding pieces, the demo library, track cards, notices."""

from __future__ import annotations

from typing import TYPE_CHECKING

import streamlit as st

from engine.errors import EngineError
from ui import charts, models
from ui.errors import show_error

if TYPE_CHECKING:
    from engine.library import Track
    from engine.similar import Added, Match

_QUERY_TRACK = "similar_query_track"  # session_state key: the library track Similar searches with
_PICKER = "similar_pick_track"  # widget key of library_track_picker
TOP_MOODS = 3  # moods named on a track card
_REANALYSED = "library_reanalysed"  # session_state key: what the last reanalysis did


def show_notices() -> None:
    """Show what the library has to tell (e.g. its search index was rebuilt) as warnings."""
    with models.LIBRARY_LOCK:
        notices = models.library().take_notices()
    for notice in notices:
        st.warning(notice, icon=":material/build:")


def searchable_tracks() -> int:
    """How many tracks the library can search (those with stored segments)."""
    with models.LIBRARY_LOCK:
        index = models.library().search_index()
    show_notices()
    return 0 if index is None else len(set(index.track_ids.tolist()))


def add_piece(data: bytes, name: str, *, title: str, source: str) -> Added | None:
    """Add audio, MIDI or score (MusicXML, MXL) bytes to the library (analysed once, cached;
    a score, or the score made of a MIDI file, is kept with its track); None on a user error,
    which is shown."""
    from engine import similar
    from engine.scored import scored_track

    try:
        scored = scored_track(data, name)
        if scored is not None:
            description = models.describe_for_library(scored.clip)
            with models.LIBRARY_LOCK:
                added = similar.add_clip(models.library(), scored.clip, title=title,
                                         source=source, description=description)
                similar.keep_score(models.library(), added.track.track_id, scored)
            show_notices()
            return added
        clip = models.load_music(data, name)
        description = models.describe_bytes(data, name)
        with models.LIBRARY_LOCK:
            added = similar.add_clip(
                models.library(), clip, title=title, source=source, description=description
            )
    except EngineError as error:
        show_error(error)
        return None
    show_notices()
    return added


def added_toast(added: Added) -> None:
    """Say what adding did: added, or already there."""
    if added.new:
        st.toast(f"Added “{added.track.title}” to the library.", icon=":material/library_add:")
    else:
        st.toast(
            f"Already in the library as “{added.track.title}”.", icon=":material/library_music:"
        )


def start_first_run_demo() -> None:
    """On the studio's first run, start building the demo library in the background (once per
    server; see engine.demo.start_first_run_build)."""
    with models.LIBRARY_LOCK:
        _first_run(str(models.library().home))


@st.cache_resource(show_spinner=False)
def _first_run(home: str) -> None:
    """Start the first-run build for the library in `home` (cached: asked once per folder)."""
    from engine.demo import start_first_run_build

    try:
        with models.LIBRARY_LOCK:
            start_first_run_build(models.library())
    except EngineError as error:
        show_error(error)


def reanalyse_offer() -> None:
    """When earlier models analysed some tracks, say so and offer to analyse them again (with
    a progress bar); nothing when the models cannot be read (the pages that need them say so).
    What the last run did is shown once, after it."""
    from engine import similar

    done = st.session_state.pop(_REANALYSED, None)
    if done is not None:
        count, failed = done
        for title, problem in failed:
            st.warning(f"“{title}” keeps its earlier analysis: {problem}", icon=":material/error:")
        st.success(f"{count} tracks analysed again.", icon=":material/check:")
    try:
        identity = models.analysis_identity()
        with models.LIBRARY_LOCK:
            counts = models.library().analysis_counts()
    except EngineError:
        return
    outdated = sum(counts.values()) - counts.get(identity, 0)
    if not outdated:
        return
    with st.container(border=True):
        st.markdown(
            f"**{outdated} of the library's {sum(counts.values())} tracks were analysed by an "
            "earlier version of the studio's models.** Their genres, moods and search segments "
            "are the old models' and may not match what new clips are compared with. Analysing "
            "them again reads their stored audio once more; what is done is kept if you leave."
        )
        if not st.button("Analyse them again", icon=":material/refresh:", key="reanalyse"):
            return
    bar = st.progress(0.0, text="Analysing…")

    def progress(part: float, title: str) -> None:
        bar.progress(part, text=f"Analysing {title}…" if part < 1 else title)

    try:
        search = models.search_models()
        with models.LIBRARY_LOCK, models.MODEL_LOCK:
            outcome = similar.reanalyse(models.library(), search, progress=progress)
    except EngineError as error:
        bar.empty()
        show_error(error)
        return
    failed = [(track.title, problem) for track, problem in outcome.failed]
    st.session_state[_REANALYSED] = (outcome.done, failed)
    st.rerun()


def demo_offer(*, key: str, empty: bool) -> None:
    """While the demo library is built in the background, its progress (updating by itself);
    else, when the library is `empty`, offer to build it with a progress bar."""
    from engine.demo import build_interrupted, demo_build, demo_piece_count

    with models.LIBRARY_LOCK:
        build = demo_build(models.library().home)
    if build is not None and build.running():
        with models.LIBRARY_LOCK:
            shown = len(models.library().tracks())
        _build_progress(build.pieces, shown)
        return
    with models.LIBRARY_LOCK:
        interrupted = build_interrupted(models.library().home)
    if interrupted:
        _continue_offer(key)
        return
    if not empty:
        return
    with st.container(border=True):
        st.markdown(
            f"**The library is empty.** The studio can build a demo library of about "
            f"{demo_piece_count()} pieces from what is installed here: Bach chorales, "
            "Palestrina, Monteverdi, trecento songs, German, Chinese and Irish folk tunes "
            "rendered from music21's corpus, plus the bundled and held-out pieces. It takes "
            "several minutes on a small machine (each piece is rendered and analysed); what is "
            "added stays if you leave."
        )
        if not st.button("Build the demo library", icon=":material/library_add:", key=key):
            return
    summary = build_demo_library(corpus=True)
    if summary is not None:
        st.toast(f"{summary['tracks']} pieces added to the library.", icon=":material/library_add:")
        st.rerun()


def _continue_offer(key: str) -> None:
    """Offer to carry on with a background build of the demo library that stopped early."""
    from engine.demo import continue_build

    with st.container(border=True, horizontal=True, vertical_alignment="center"):
        st.markdown(
            "The demo library's build stopped before its end (the studio was stopped, or the "
            "machine restarted). What it added is here; it can carry on with the rest."
        )
        if not st.button("Continue building", icon=":material/library_add:", key=key):
            return
    try:
        with models.LIBRARY_LOCK:
            continue_build(models.library())
    except EngineError as error:
        show_error(error)
        return
    st.rerun()


@st.fragment(run_every=5)
def _build_progress(pieces: int, shown: int) -> None:
    """The background build's progress; the page reruns when its first track arrives (it showed
    `shown` tracks) and once the build has finished."""
    from engine.demo import demo_build

    with models.LIBRARY_LOCK:
        library = models.library()
        build = demo_build(library.home)
        count = len(library.tracks())
    if build is None or not build.running() or (count and not shown):
        st.rerun()
    st.progress(
        min(count / max(pieces, 1), 1.0),
        text=f"Building the demo library in the background: {count} of about {pieces} pieces "
        "so far. What is there can be searched and played already; this updates by itself.",
    )


def build_demo_library(*, corpus: bool) -> dict[str, int] | None:
    """Build the demo (engine.demo.build_demo) with a progress bar; its summary, or None after
    an error (shown)."""
    from engine.demo import build_demo

    bar = st.progress(0.0, text="Building the demo library…")
    try:
        with models.LIBRARY_LOCK:
            summary = build_demo(
                models.library(),
                models.describe_for_library,
                corpus=corpus,
                progress=lambda fraction, text: bar.progress(min(fraction, 1.0), text=text),
            )
    except EngineError as error:
        bar.empty()
        show_error(error)
        return None
    bar.empty()
    show_notices()
    return summary


def track_audio(track: Track) -> bytes | None:
    """The stored audio of a track, or None when its file is gone."""
    with models.LIBRARY_LOCK:
        path = models.library().audio_path(track.sha256)
    try:
        return path.read_bytes()
    except OSError:
        return None


def track_card(track: Track, *, match: Match | None = None) -> None:
    """A track in a bordered box: title, score, genre, moods, source and a player."""
    with st.container(border=True):
        head = st.container(horizontal=True, vertical_alignment="center")
        head.markdown(f"**{track.title}**")
        if match is not None:
            head.badge(f"score {match.score:.2f}", color="blue", icon=":material/equalizer:")
        if track.top_genre:
            head.badge(charts.genre_label(track.top_genre), color="violet")
        moods = sorted(track.moods, key=lambda m: -track.moods[m])[:TOP_MOODS]
        minutes, seconds = divmod(int(track.duration), 60)
        st.caption(
            f"{minutes}:{seconds:02d}"
            + (f" · moods: {', '.join(moods)}" if moods else "")
            + f" · {track.source}"
        )
        audio = track_audio(track)
        if audio is None:
            st.caption("Its audio file is missing from the library folder.")
        else:
            st.audio(audio, format="audio/ogg")


def search_with_track(track_id: int) -> None:
    """Make a library track the Similar page's query (and open it)."""
    st.session_state[_QUERY_TRACK] = track_id
    st.switch_page("app_pages/similar.py")


def library_track_picker() -> None:
    """A selectbox that makes a library track Similar's query."""
    with models.LIBRARY_LOCK:
        titles = {t.track_id: t.title for t in models.library().tracks()}
    if not titles:
        return

    def chosen() -> None:
        st.session_state[_QUERY_TRACK] = st.session_state[_PICKER]
        st.session_state[_PICKER] = None

    st.selectbox(
        "Or search with a library track",
        list(titles),
        index=None,
        format_func=titles.get,
        placeholder="Choose a track of the library…",
        key=_PICKER,
        on_change=chosen,
    )


def query_track() -> int | None:
    """The library track chosen as Similar's query, if any."""
    return st.session_state.get(_QUERY_TRACK)


def forget_query_track() -> None:
    """Search with a clip again instead of a library track."""
    st.session_state.pop(_QUERY_TRACK, None)
