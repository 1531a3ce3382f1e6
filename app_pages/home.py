"""Home: what the studio does, and one click to try each capability that has landed."""

from typing import Any

import streamlit as st

from engine.errors import EngineError
from engine.generate import GenerationSettings
from ui import models
from ui.clip import bundled_examples, use_example
from ui.errors import show_error
from ui.generation import keep_generation, request_generation
from ui.machine import rendering_problem
from ui.score import example_pages


def card(
    column: Any,
    title: str,
    text: str,
    action: str,
    page: str,
    link: tuple[str, str],
    **button: Any,
) -> bool:
    """A capability's card: what it does, its one-click example (True when clicked), and a link
    to its `page` (`link`: label and icon)."""
    with column.container(border=True, height="stretch"):
        st.subheader(title)
        st.markdown(text)
        clicked = st.button(action, type="primary", icon=":material/play_arrow:", **button)
        st.page_link(page, label=link[0], icon=link[1])
    return clicked


st.title("Music Studio")
st.markdown(
    "Make music by genre, set it beside real music, and find out what a recording is: "
    "its **genre** overall and moment by moment, its **moods**, and the tracks it resembles. "
    "Everything runs on this machine; your clips never leave it."
)

examples = bundled_examples()
pages = example_pages()
top_row, bottom_row, third_row = st.columns(3), st.columns(3), st.columns(3)
UPLOAD = ":material/upload_file:"

if card(
    top_row[0],
    ":material/category: Classify",
    "Upload, record or pick a clip and see which genres it sounds like: "
    "overall and in every 5-second window, beside its spectrogram.",
    "Classify an example clip",
    "app_pages/classify.py",
    ("Or bring your own clip", UPLOAD),
    disabled=not examples,
    help=f"Loads “{examples[0].title}” and opens Classify." if examples else "No examples bundled.",
):
    use_example(examples[0])
    st.switch_page("app_pages/classify.py")

if card(
    top_row[1],
    ":material/piano: Generate",
    "Compose new music in a style (classical, folk, chinese folk, pop, renaissance, or "
    "drum grooves): hear it, see its piano roll, download MIDI and audio.",
    "Generate a folk tune",
    "app_pages/generate.py",
    ("Or choose every setting", ":material/tune:"),
):
    request_generation(style="folk", seconds=20, seed=7)
    st.switch_page("app_pages/generate.py")

if card(
    top_row[2],
    ":material/compare: Compare",
    "Set a generated piece beside real music of its style that the generator never heard: "
    "spectrograms, their difference, and four distances.",
    "Compare a new chorale with Bach",
    "app_pages/compare.py",
    ("Or compare your own files", UPLOAD),
):
    try:
        with st.spinner("Composing a chorale…"):
            result = models.generate_music(
                GenerationSettings(style="classical", seconds=20, seed=1)
            )
    except EngineError as error:
        show_error(error)
    else:
        keep_generation(result)
        st.switch_page("app_pages/compare.py")

if card(
    bottom_row[0],
    ":material/mood: Mood",
    "Tag a clip's moods, with valence and arousal, as the crowd hears them and as a "
    "listener of the (simulated) demo community would.",
    "Tag the moods of an example",
    "app_pages/mood.py",
    ("Or bring your own clip", UPLOAD),
    disabled=not examples,
):
    use_example(examples[-1])
    st.switch_page("app_pages/mood.py")

if card(
    bottom_row[1],
    ":material/travel_explore: Similar",
    "Find the tracks in your library that sound most like a clip: an excerpt finds the "
    "whole piece, and a tune finds its kin.",
    "Find tracks like an example",
    "app_pages/similar.py",
    ("Or search with your own clip", UPLOAD),
    disabled=not examples,
):
    use_example(examples[min(1, len(examples) - 1)])
    st.switch_page("app_pages/similar.py")

if card(
    bottom_row[2],
    ":material/library_music: Library",
    "Your collection, analysed once and searchable by sound: add files, find them by "
    "title, play or delete them. A demo library is built from installed music on the first run.",
    "Open the library",
    "app_pages/library.py",
    ("Or add your own music", ":material/library_add:"),
):
    st.switch_page("app_pages/library.py")

if card(
    third_row[0],
    ":material/queue_music: Read",
    "Photograph or scan a page of printed sheet music: the studio reads it into a score to "
    "check against the page, correct, play, download as MusicXML or MIDI, and use elsewhere.",
    "Read an example page",
    "app_pages/read.py",
    ("Or read your own page", UPLOAD),
    disabled=not pages,
):
    st.session_state["read_example"] = pages[0].title
    st.switch_page("app_pages/read.py")

if card(
    third_row[1],
    ":material/plagiarism: Score search",
    "Photograph a few bars of sheet music and find the recordings in your library that play "
    "them, and when; or play an excerpt and see the page and bars it comes from.",
    "Open score search",
    "app_pages/score_search.py",
    ("Or search with your own snippet", UPLOAD),
):
    st.switch_page("app_pages/score_search.py")

problem = rendering_problem()
if problem:
    st.warning(
        f"{problem} Classifying works without it; generated pieces will have no audio, and "
        "MIDI files cannot be compared.",
        icon=":material/build:",
    )
